"""`reef-alerts alerts`: every alert with the state the worker last found it in, read in one
statement from the shared tables and the worker's status table (ADR 13)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import Engine, Text, cast, func, inspect, null, select

from reef_alerts.adapters.rows import parse_timestamp
from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.tables import SharedTables, alert_status

STATES = ("ok", "firing", "skipped", "error", "disabled", "unknown")


@attrs.frozen
class AlertLine:
    """One alert, as `reef-alerts alerts` shows it."""

    alert_id: int
    device: str
    """The device's name, or what is known of it."""
    condition: str
    """`metric operator threshold`, as stored."""
    state: str
    """One of STATES: `unknown` where the database has no status table to tell skips by."""
    since: datetime | None
    reason: str
    """Why it is skipped or in error; empty otherwise."""


@attrs.frozen
class AlertReport:
    lines: list[AlertLine]
    recorded: bool
    """Whether the database has the status table, so skipped alerts can be told from ok ones."""


def alert_report(engine: Engine) -> AlertReport:
    """Every alert, by id, with its device, condition and state."""
    with engine.connect() as connection:
        tables = detect_tables(connection)
        recorded = inspect(connection).has_table(alert_status.name)
        rows = connection.execute(_query(tables, recorded)).all()
    return AlertReport([_line(row, recorded) for row in rows], recorded)


def _query(tables: SharedTables, recorded: bool) -> Any:
    alerts, devices, events = tables.alerts, tables.devices, tables.alert_events
    # Timestamps as text, read as _instant can: a row the web app (or a person) got wrong must
    # not stop the report.
    firing = (
        select(
            events.c.alert_id,
            func.min(cast(events.c.triggered_at, Text)).label("triggered_at"),
        )
        .where(tables.open_event_predicate)
        .group_by(events.c.alert_id)
        .subquery("firing")
    )
    joined = alerts.outerjoin(devices, devices.c.id == alerts.c.device_id).outerjoin(
        firing, firing.c.alert_id == alerts.c.id
    )
    status_columns: tuple[Any, ...] = (
        null().label("state"),
        null().label("reason"),
        null().label("since"),
    )
    if recorded:
        joined = joined.outerjoin(alert_status, alert_status.c.alert_id == alerts.c.id)
        status_columns = (
            alert_status.c.state,
            alert_status.c.reason,
            cast(alert_status.c.since, Text).label("since"),
        )
    return (
        select(
            alerts.c.id.label("alert_id"),
            alerts.c.device_id,
            devices.c.name,
            alerts.c.metric,
            alerts.c.operator,
            alerts.c.threshold_value.label("threshold"),
            alerts.c.is_enabled.label("enabled"),
            firing.c.triggered_at,
            *status_columns,
        )
        .select_from(joined)
        .order_by(alerts.c.id)
    )


def _line(row: Any, recorded: bool) -> AlertLine:
    state, reason, since = row.state, row.reason, row.since
    if row.enabled is False or row.enabled == 0:
        state, reason, since = "disabled", "", None
    elif state is None:
        if row.triggered_at is not None:
            state, since = "firing", _instant(row.triggered_at)
        else:
            state = "ok" if recorded else "unknown"
    else:
        since = _instant(since)
    device = row.name if isinstance(row.name, str) else f"device {row.device_id} (no such device)"
    threshold = row.threshold
    shown = f"{threshold:g}" if isinstance(threshold, float) else str(threshold)
    condition = f"{row.metric} {row.operator} {shown}"
    return AlertLine(row.alert_id, device, condition, state, since, reason or "")


def _instant(value: Any) -> datetime | None:
    """A timestamp as the driver gives it (SQLite: text) as an aware datetime, if it is one."""
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
