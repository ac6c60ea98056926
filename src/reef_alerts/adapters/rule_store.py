"""`reef-alerts rules`: alerts' options in the worker's rules table, read and written one alert
at a time (ADR 15). A NULL option is the worker's default."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
from sqlalchemy import Connection, Engine, inspect, select
from sqlalchemy.dialects import postgresql, sqlite

from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.tables import SharedTables, has_alert_tables, rules
from reef_alerts.ports import StoredRule

OPTION_COLUMNS = StoredRule._fields
"""The options' columns: a StoredRule's fields, by the same names."""


class NoRulesTableError(Exception):
    """The database has no rules table: `db upgrade` has not been run since options came."""

    def __init__(self) -> None:
        super().__init__(
            "this database has no rules table; `reef-alerts db upgrade` adds it (and the "
            "alert-state table beside it)"
        )


class UnknownAlertError(LookupError):
    """No alert has the id given."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"there is no alert {alert_id}")
        self.alert_id = alert_id


@attrs.frozen
class AlertRule:
    """One alert with its options as stored: None where it takes the default."""

    alert_id: int
    device: str
    condition: str
    """`metric operator threshold`, as stored."""
    operator: str
    rule: StoredRule | None


def rules_of(engine: Engine, alert_id: int | None = None) -> list[AlertRule]:
    """Every alert that has options of its own, or alert `alert_id` whether it has or not."""
    with engine.connect() as connection:
        tables = _tables(connection)
        alerts, devices = tables.alerts, tables.devices
        query = (
            select(
                alerts.c.id,
                alerts.c.device_id,
                devices.c.name,
                alerts.c.metric,
                alerts.c.operator,
                alerts.c.threshold_value,
                *(rules.c[name] for name in OPTION_COLUMNS),
            )
            .select_from(
                alerts.outerjoin(devices, devices.c.id == alerts.c.device_id).outerjoin(
                    rules, rules.c.alert_id == alerts.c.id
                )
            )
            .order_by(alerts.c.id)
        )
        if alert_id is None:
            query = query.where(rules.c.alert_id.is_not(None))
        else:
            query = query.where(alerts.c.id == alert_id)
        rows = connection.execute(query).all()
    if alert_id is not None and not rows:
        raise UnknownAlertError(alert_id)
    return [_alert_rule(row) for row in rows]


def set_rule(engine: Engine, alert_id: int, changes: Mapping[str, float | None]) -> StoredRule:
    """Set some of alert `alert_id`'s options (by column name; None: the default), keeping the
    others; its options as now stored."""
    with engine.begin() as connection:
        _require_alert(connection, alert_id)
        current = connection.execute(
            select(*(rules.c[name] for name in OPTION_COLUMNS)).where(rules.c.alert_id == alert_id)
        ).first()
        values: dict[str, Any] = dict(zip(OPTION_COLUMNS, current or (None,) * 3, strict=True))
        values.update(changes)
        if all(value is None for value in values.values()):  # every option the default again
            connection.execute(rules.delete().where(rules.c.alert_id == alert_id))
            return StoredRule(None, None, None)
        row = {"alert_id": alert_id, **values, "updated_at": datetime.now(UTC)}
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(rules).values(row)
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=[rules.c.alert_id],
                set_={name: insert.excluded[name] for name in (*OPTION_COLUMNS, "updated_at")},
            )
        )
    return StoredRule(*(values[name] for name in OPTION_COLUMNS))


def clear_rule(engine: Engine, alert_id: int) -> bool:
    """Remove alert `alert_id`'s options, so that it takes the defaults; whether it had any."""
    with engine.begin() as connection:
        _require_alert(connection, alert_id)
        removed = connection.execute(rules.delete().where(rules.c.alert_id == alert_id))
    return removed.rowcount > 0


def _tables(connection: Connection) -> SharedTables:
    """The shared tables, once the rules table is known to be there."""
    if not has_alert_tables(inspect(connection).get_table_names()):
        raise NoRulesTableError
    return detect_tables(connection)


def _require_alert(connection: Connection, alert_id: int) -> None:
    alerts = _tables(connection).alerts
    if connection.scalar(select(alerts.c.id).where(alerts.c.id == alert_id)) is None:
        raise UnknownAlertError(alert_id)


def _alert_rule(row: Any) -> AlertRule:
    device = row.name if isinstance(row.name, str) else f"device {row.device_id} (no such device)"
    threshold = row.threshold_value
    shown = f"{threshold:g}" if isinstance(threshold, float) else str(threshold)
    rule = StoredRule.of(row)
    return AlertRule(row.id, device, f"{row.metric} {row.operator} {shown}", row.operator, rule)
