"""`reef-alerts rules`: alerts' options in the worker's rules table, read and written one alert
at a time (ADR 15). A NULL option is the worker's default."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import ColumnElement, Connection, Engine, Table, inspect, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.tables import (
    SharedTables,
    has_alert_tables,
    has_trend_tables,
    rules,
    trend_rules,
)
from reef_alerts.ports import StoredRule, StoredTrend

OPTION_COLUMNS = StoredRule._fields
"""The options' columns: a StoredRule's fields, by the same names."""
TREND_OPTION_COLUMNS = StoredTrend._fields
"""The trend options' columns, in the trend rules table."""


class NoRulesTableError(Exception):
    """The database has no rules table: `db upgrade` has not been run since options came."""

    def __init__(self) -> None:
        super().__init__(
            "this database has no rules table; `reef-alerts db upgrade` adds it (and the "
            "alert-state table beside it)"
        )


class NoTrendTablesError(Exception):
    """The database has no trend rules table: `db upgrade` has not been run since trends came."""

    def __init__(self) -> None:
        super().__init__("this database has no trend rules table; `reef-alerts db upgrade` adds it")


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
    trend_enabled: bool = False
    """The alert's trend_enabled column: whether its trend options apply."""
    trend: StoredTrend | None = None
    poll_interval: timedelta | None = None
    """How often its device is polled, where that is known."""


def rules_of(engine: Engine, alert_id: int | None = None) -> list[AlertRule]:
    """Every alert that has options of its own, or alert `alert_id` whether it has or not."""
    with engine.connect() as connection:
        tables = _tables(connection)
        trends = has_trend_tables(inspect(connection).get_table_names())
        alerts, devices = tables.alerts, tables.devices
        joined = alerts.outerjoin(devices, devices.c.id == alerts.c.device_id).outerjoin(
            rules, rules.c.alert_id == alerts.c.id
        )
        trend_columns: list[Any] = [null().label(name) for name in TREND_OPTION_COLUMNS]
        if trends:
            joined = joined.outerjoin(trend_rules, trend_rules.c.alert_id == alerts.c.id)
            trend_columns = [trend_rules.c[name] for name in TREND_OPTION_COLUMNS]
        query = (
            select(
                alerts.c.id,
                alerts.c.device_id,
                devices.c.name,
                devices.c.poll_interval,
                alerts.c.metric,
                alerts.c.operator,
                alerts.c.threshold_value,
                alerts.c.trend_enabled,
                *(rules.c[name] for name in OPTION_COLUMNS),
                *trend_columns,
            )
            .select_from(joined)
            .order_by(alerts.c.id)
        )
        if alert_id is None:
            own: ColumnElement[bool] = rules.c.alert_id.is_not(None)
            if trends:
                own = or_(own, trend_rules.c.alert_id.is_not(None))
            query = query.where(own)
        else:
            query = query.where(alerts.c.id == alert_id)
        rows = connection.execute(query).all()
    if alert_id is not None and not rows:
        raise UnknownAlertError(alert_id)
    return [_alert_rule(row) for row in rows]


def set_rule(
    engine: Engine,
    alert_id: int,
    changes: Mapping[str, float | None],
    trend_changes: Mapping[str, float | bool | None] | None = None,
) -> StoredRule:
    """Set some of alert `alert_id`'s options and trend options (by column name; None: the
    default), keeping the others, in one transaction; its options as now stored. Raises
    NoTrendTablesError, changing nothing, for trend options where there is no table for
    them."""
    with engine.begin() as connection:
        _require_alert(connection, alert_id)
        if trend_changes:
            if not has_trend_tables(inspect(connection).get_table_names()):
                raise NoTrendTablesError
            _set(connection, trend_rules, TREND_OPTION_COLUMNS, alert_id, trend_changes)
        values = _set(connection, rules, OPTION_COLUMNS, alert_id, changes)
    return StoredRule(*(values[name] for name in OPTION_COLUMNS))


def _set(
    connection: Connection,
    table: Table,
    names: tuple[str, ...],
    alert_id: int,
    changes: Mapping[str, Any],
) -> dict[str, Any]:
    """Set some of an alert's columns `names` of `table`; its row goes where all are NULL."""
    current = connection.execute(
        select(*(table.c[name] for name in names)).where(table.c.alert_id == alert_id)
    ).first()
    values: dict[str, Any] = dict(zip(names, current or (None,) * len(names), strict=True))
    values.update(changes)
    if all(value is None for value in values.values()):  # every option the default again
        connection.execute(table.delete().where(table.c.alert_id == alert_id))
        return values
    row = {"alert_id": alert_id, **values, "updated_at": datetime.now(UTC)}
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table).values(row)
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.alert_id],
            set_={name: insert.excluded[name] for name in (*names, "updated_at")},
        )
    )
    return values


def clear_rule(engine: Engine, alert_id: int) -> bool:
    """Remove alert `alert_id`'s options and trend options, so that it takes the defaults;
    whether it had any."""
    with engine.begin() as connection:
        _require_alert(connection, alert_id)
        removed = connection.execute(rules.delete().where(rules.c.alert_id == alert_id))
        had = removed.rowcount > 0
        if has_trend_tables(inspect(connection).get_table_names()):
            table = trend_rules
            had |= (
                connection.execute(table.delete().where(table.c.alert_id == alert_id)).rowcount > 0
            )
    return had


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
    return AlertRule(
        row.id,
        device,
        f"{row.metric} {row.operator} {shown}",
        row.operator,
        rule,
        row.trend_enabled in (True, 1),
        StoredTrend.of(row),
        _poll(row.poll_interval),
    )


def _poll(seconds: Any) -> timedelta | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return timedelta(seconds=seconds) if 0 < seconds < 10**9 else None
