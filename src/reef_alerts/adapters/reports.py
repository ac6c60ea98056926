"""`reef-alerts alerts`: every alert with the state the worker last found it in, and its
options, read in one statement from the shared tables and the worker's status, rules and state
tables (ADR 13, ADR 15). The web app's router reads one alert's line, and its open events, with
the same statements (`report_query`, `open_events_query`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from sqlalchemy import Connection, Engine, Select, Text, cast, func, null, select

from reef_alerts.adapters.rows import decode_windows, parse_timestamp
from reef_alerts.adapters.schema import Catalogue, catalogue
from reef_alerts.adapters.snapshot_queries import windows_query
from reef_alerts.adapters.tables import (
    SharedTables,
    alert_state,
    alert_status,
    rules,
    trend_rules,
)
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Alert,
    EvaluationPolicy,
    EventKind,
    NoTrend,
    TrendOptions,
    TrendReading,
    read_window,
    window_starts,
)
from reef_alerts.ports import StoredRule, StoredTrend

STATES = (
    *("ok", "pending", "firing", "forecast", "rate", "no_data", "skipped", "error"),
    *("disabled", "unknown"),
)


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
    """Why it is skipped or in error, or what keeps it pending; empty otherwise."""
    rule: StoredRule | None = None
    """Its own options; None when it takes the defaults."""
    trend: str = ""
    """For a trend alert, what its window says now: its rate, its forecast, or why none."""
    trend_rule: StoredTrend | None = None
    """Its own trend options; None when it takes the defaults."""


@attrs.frozen
class AlertReport:
    lines: list[AlertLine]
    recorded: bool
    """Whether the database has the status table, so skipped alerts can be told from ok ones."""
    remembers: bool = True
    """Whether it has the rules and state tables (migration 0004)."""


_POLICY = EvaluationPolicy()


def alert_report(
    engine: Engine, now: datetime | None = None, policy: EvaluationPolicy = _POLICY
) -> AlertReport:
    """Every alert, by id, with its device, condition, state and options; for trend alerts,
    what their windows say at `now` (the clock's when None), judged with `policy`."""
    with engine.connect() as connection:
        found = catalogue(connection)
        rows = connection.execute(report_query(found)).all()
        trends = {}
        if found.trends:
            trends = _trends(connection, found, rows, now or datetime.now(UTC), policy)
    lines = [line_of(row, found.recorded) for row in rows]
    lines = [
        attrs.evolve(line, trend=trends[line.alert_id]) if line.alert_id in trends else line
        for line in lines
    ]
    return AlertReport(lines, found.recorded, found.remembers)


def _trends(
    connection: Connection,
    found: Catalogue,
    rows: Sequence[Any],
    now: datetime,
    policy: EvaluationPolicy,
) -> dict[int, str]:
    """What each enabled trend alert's window says at `now`, for a person; read as the worker
    reads them (windows_query), in one statement."""
    judged: list[tuple[Any, Alert, TrendOptions]] = []
    said: dict[int, str] = {}
    for row in rows:
        if row.trend_enabled not in (True, 1) or row.enabled in (False, 0):
            continue
        try:
            stored = StoredTrend.of(row) or StoredTrend(None, None, None, None, None)
            options = stored.options(DEFAULT_OPTIONS.trend)
            alert = Alert(
                row.alert_id, row.device_id, row.metric, row.operator, row.threshold, True, True
            )
        except (TypeError, ValueError) as error:
            said[row.alert_id] = f"not judged: {error}"
            continue
        judged.append((row, alert, options))
    since = window_starts(((alert.device_id, options.window) for _, alert, options in judged), now)
    if not since:
        return said
    until = now + policy.clock_skew
    as_text = connection.dialect.name == "postgresql"
    query = windows_query(found.tables, since, until, as_text=as_text)
    # The driver's rows, as the worker decodes them: SQLAlchemy's would parse them first.
    windows = decode_windows(connection.execute(query).cursor.fetchall())
    for row, alert, options in judged:
        window = windows.get(alert.device_id, ())
        trend = read_window(alert, window, now, until, options, policy.tolerance)
        said[row.alert_id] = _trend_text(alert, trend, row)
    return said


def _trend_text(alert: Alert, trend: TrendReading | NoTrend, row: Any) -> str:
    if isinstance(trend, NoTrend):
        parts = [f"no trend: {trend.reason}"]
    else:
        line = trend.line
        parts = [f"{line.rate_per_hour:+.3g}/h over {line.samples} readings"]
        if trend.forecast is not None:
            at = trend.forecast.crossing_at
            parts.append(
                f"forecast {alert.operator.value} {alert.threshold:g} at {at:%Y-%m-%d %H:%M} UTC"
            )
        if trend.too_fast is not None:
            parts.append(f"faster than {trend.too_fast.limit:g}/h")
    for kind, opened in (("forecast", row.forecast_since), ("rate", row.rate_since)):
        if opened is not None:
            parts.append(f"{kind} event open")
    return "; ".join(parts)


@attrs.frozen
class OpenEvent:
    """An unresolved alert_events row, as the web app's router shows it."""

    id: int
    kind: str
    triggered_at: datetime | None
    current_value: float | None


def open_events_query(tables: SharedTables, alert_id: int) -> Select[Any]:
    """Alert `alert_id`'s unresolved events, oldest first, for `open_event`."""
    events = tables.alert_events
    return (
        select(
            events.c.id,
            tables.event_kind.label("kind"),
            cast(events.c.triggered_at, Text).label("triggered_at"),
            events.c.current_value,
        )
        .where(events.c.alert_id == alert_id, tables.open_event_predicate)
        .order_by(events.c.triggered_at, events.c.id)
    )


def open_event(row: Any) -> OpenEvent:
    """open_events_query's row, read however the web app (or a person) wrote it."""
    value = row.current_value
    number = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
    return OpenEvent(row.id, str(row.kind), _instant(row.triggered_at), number)


def report_query(found: Catalogue, alert_id: int | None = None) -> Select[Any]:
    """Every alert's line, or alert `alert_id`'s alone, for `line_of`."""
    query = _query(found)
    return query if alert_id is None else query.where(found.tables.alerts.c.id == alert_id)


def _query(found: Catalogue) -> Select[Any]:
    tables, recorded, remembers = found.tables, found.recorded, found.remembers
    alerts, devices, events = tables.alerts, tables.devices, tables.alert_events
    # Timestamps as text, read as _instant can: a row the web app (or a person) got wrong must
    # not stop the report.
    firing = (
        select(
            events.c.alert_id,
            *(
                func.min(cast(events.c.triggered_at, Text))
                .filter(tables.event_kind == kind.value)
                .label(name)
                for name, kind in (
                    ("triggered_at", EventKind.THRESHOLD),
                    ("silent_since", EventKind.NO_DATA),
                    ("forecast_since", EventKind.FORECAST),
                    ("rate_since", EventKind.RATE),
                )
            ),
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
    rule_columns: tuple[Any, ...] = tuple(
        null().label(name) for name in (*StoredRule._fields, "pending_since")
    )
    if remembers:
        joined = joined.outerjoin(rules, rules.c.alert_id == alerts.c.id).outerjoin(
            alert_state, alert_state.c.alert_id == alerts.c.id
        )
        rule_columns = (
            *(rules.c[name] for name in StoredRule._fields),
            cast(alert_state.c.pending_since, Text).label("pending_since"),
        )
    trend_columns: tuple[Any, ...] = tuple(null().label(name) for name in StoredTrend._fields)
    if found.trends:
        joined = joined.outerjoin(trend_rules, trend_rules.c.alert_id == alerts.c.id)
        trend_columns = tuple(trend_rules.c[name] for name in StoredTrend._fields)
    return (
        select(
            alerts.c.id.label("alert_id"),
            alerts.c.device_id,
            devices.c.name,
            alerts.c.metric,
            alerts.c.operator,
            alerts.c.threshold_value.label("threshold"),
            alerts.c.is_enabled.label("enabled"),
            alerts.c.trend_enabled,
            firing.c.triggered_at,
            firing.c.silent_since,
            firing.c.forecast_since,
            firing.c.rate_since,
            *status_columns,
            *rule_columns,
            *trend_columns,
        )
        .select_from(joined)
        .order_by(alerts.c.id)
    )


def line_of(row: Any, recorded: bool) -> AlertLine:
    """report_query's row as the line `reef-alerts alerts` shows."""
    state, reason, since = row.state, row.reason, row.since
    if row.enabled is False or row.enabled == 0:
        state, reason, since = "disabled", "", None
    elif row.silent_since is not None:
        # Before a skip: a silent device's alerts are skipped too, and this says more.
        state, since = "no_data", _instant(row.silent_since)
        reason = "its no-data event is open: the device has sent no reading for too long"
        if row.triggered_at is not None:
            reason += "; its threshold event is open too"
    elif state is None:
        if row.triggered_at is not None:
            state, since = "firing", _instant(row.triggered_at)
        elif row.pending_since is not None:
            state, since = "pending", _instant(row.pending_since)
            reason = "its condition holds; the event opens once it has held for the pending time"
        elif row.forecast_since is not None:
            state, since = "forecast", _instant(row.forecast_since)
            reason = "its forecast event is open: the value is forecast to meet the condition"
        elif row.rate_since is not None:
            state, since = "rate", _instant(row.rate_since)
            reason = "its rate event is open: the value moves towards the condition too fast"
        else:
            state = "ok" if recorded else "unknown"
    else:
        since = _instant(since)
    device = row.name if isinstance(row.name, str) else f"device {row.device_id} (no such device)"
    threshold = row.threshold
    shown = f"{threshold:g}" if isinstance(threshold, float) else str(threshold)
    condition = f"{row.metric} {row.operator} {shown}"
    rule = StoredRule.of(row)
    return AlertLine(
        row.alert_id, device, condition, state, since, reason or "", rule, "", StoredTrend.of(row)
    )


def _instant(value: Any) -> datetime | None:
    """A timestamp as the driver gives it (SQLite: text) as an aware datetime, if it is one."""
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
