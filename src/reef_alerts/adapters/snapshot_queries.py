"""The statements that read a cycle's snapshot: every enabled alert with its device, its device's
newest reading, its open events, its options and state, in a few statements, none per alert
(ADR 3).

PostgreSQL reads it in one statement (`snapshot_query`). SQLite reads it in two,
`watched_devices_query` and `alerts_query`, in one transaction: the one-statement form makes
SQLite copy every newest reading into a temporary table and index it, and hands each device's
columns back once per alert.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Dialect,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    null,
    or_,
    select,
    true,
)

from reef_alerts.adapters.tables import (
    SharedTables,
    alert_state,
    alert_status,
    trend_rules,
    trend_state,
)
from reef_alerts.adapters.tables import rules as rules_table
from reef_alerts.domain import EventKind
from reef_alerts.ports import WHOLE, Focus, Shard, StoredRule, StoredTrend

ALERT_COLUMNS: Final = (
    *("id", "device_id", "metric", "operator", "threshold_value", "trend_enabled"),
    "is_enabled",
)
"""An alert's columns, in StoredAlert's order."""

DEVICE_COLUMNS: Final = (
    *("device_row_id", "name", "device_type", "unit", "is_active", "poll_enabled"),
    "poll_interval",
)
READING_COLUMNS: Final = (
    *("reading_id", "timestamp", "value", "json_value", "metadata"),
    "untimed_reading_id",
)
"""The newest timestamped reading's columns, then, for a device that has none, the id of its
newest reading without a timestamp."""

CONTEXT_COLUMNS: Final = (*DEVICE_COLUMNS, *READING_COLUMNS)
"""What SQLite's first statement reads of each watched device."""

EVENT_COLUMNS: Final = ("event_id", "no_data_event_id", "forecast_event_id", "rate_event_id")
"""The alert's open events of each kind: threshold, no-data (ADR 15), forecast and rate
(issue 13)."""

STATUS_COLUMNS: Final = ("status_state", "status_code", "status_since")
"""The alert's recorded status (ADR 13); NULL when it has none, or there is no status table."""

RULE_COLUMNS: Final = (*StoredRule._fields, "pending_since")
"""The alert's options, then what the state machine remembers of it (ADR 15, ADR 16); NULL
where it has none, or there are no such tables."""

TREND_COLUMNS: Final = ("trend_alert_id", *StoredTrend._fields, "forecast_since", "rate_since")
"""Whether the alert has a trend rules or trend state row (its id, NULL when it has neither, so
that the nearly all alerts that have none cost one test), its trend options, then its trend
events' pending instants (issue 13); NULL where it has none, or there are no such tables."""

SNAPSHOT_COLUMNS: Final = (
    *ALERT_COLUMNS,
    *CONTEXT_COLUMNS,
    *EVENT_COLUMNS,
    *STATUS_COLUMNS,
    *RULE_COLUMNS,
    *TREND_COLUMNS,
)
"""The columns of PostgreSQL's one-statement snapshot, in order."""


def snapshot_query(
    tables: SharedTables,
    shard: Shard = WHOLE,
    *,
    statuses: bool = True,
    rules: bool = True,
    trends: bool = True,
    focus: Focus | None = None,
) -> Select[Any]:
    """PostgreSQL's snapshot in one statement: every enabled alert of `shard` (and of `focus`,
    where a live pass gives one) with its device, its device's newest reading and its open
    event; the columns of SNAPSHOT_COLUMNS.

    Each watched device is joined with its row and its newest reading once, and then with its
    alerts. PostgreSQL can then merge-join the watched devices with the device rows in id order,
    and the rows stream from the first, where a hash of every device row made the first one wait
    for all of them.
    """
    alerts, devices, alert_events = tables.alerts, tables.devices, tables.alert_events
    enabled = _enabled(alerts, shard, focus)
    watched = select(alerts.c.device_id).where(enabled).distinct().cte("watched")
    history = tables.history
    c = history.c
    latest = newest_reading(
        history, watched.c.device_id, c.id, c.timestamp, c.value, c.json_value, c.metadata_
    ).lateral("latest")
    contexts = (
        select(
            watched.c.device_id,
            *device_columns(devices),
            latest.c.id.label("reading_id"),
            *reading_columns(latest.c, as_text=True),
            _untimed_reading(history, watched.c.device_id, latest.c.id),
        )
        .select_from(
            watched.join(devices, devices.c.id == watched.c.device_id).outerjoin(latest, true())
        )
        .subquery("contexts")
    )
    open_events = (
        select(
            alert_events.c.alert_id,
            *(
                func.min(alert_events.c.id).filter(tables.event_kind == kind.value).label(name)
                for name, kind in _KINDS.items()
            ),
        )
        .where(tables.open_event_predicate)
        .group_by(alert_events.c.alert_id)
        .subquery("open_events")
    )
    joined = alerts.outerjoin(contexts, contexts.c.device_id == alerts.c.device_id).outerjoin(
        open_events, open_events.c.alert_id == alerts.c.id
    )
    return (
        select(
            *_alert_columns(alerts),
            *(contexts.c[name] for name in CONTEXT_COLUMNS),
            *(open_events.c[name] for name in EVENT_COLUMNS),
            *_worker_columns(statuses, rules, trends, as_text=True),
        )
        .select_from(_with_worker_tables(joined, alerts, statuses, rules, trends))
        .where(enabled)
    )


def compile_snapshot(
    dialect: Dialect,
    tables: SharedTables,
    shard: Shard,
    statuses: bool,
    rules: bool,
    trends: bool,
    focus: Focus | None = None,
) -> tuple[str, Mapping[str, Any]]:
    """`snapshot_query(tables, shard, statuses=..., rules=..., trends=..., focus=...)` as SQL
    text and parameters."""
    query = snapshot_query(
        tables, shard, statuses=statuses, rules=rules, trends=trends, focus=focus
    )
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), MappingProxyType(dict(compiled.params))


@functools.lru_cache(maxsize=64)
def compiled_snapshot(
    dialect: Dialect,
    tables: SharedTables,
    shard: Shard,
    statuses: bool,
    rules: bool,
    trends: bool,
) -> tuple[str, Mapping[str, Any]]:
    """The full cycle's `compile_snapshot`, compiled once per shard rather than every cycle
    (ADR 7); a live pass's focus is seldom seen twice, so it is compiled each time."""
    return compile_snapshot(dialect, tables, shard, statuses, rules, trends)


def watched_devices_query(
    tables: SharedTables, shard: Shard = WHOLE, focus: Focus | None = None
) -> Select[Any]:
    """SQLite's first statement: each device an enabled alert of `shard` (and `focus`) watches,
    with its newest reading; the columns of CONTEXT_COLUMNS."""
    alerts, devices, history = tables.alerts, tables.devices, tables.history
    watched = select(alerts.c.device_id).where(_enabled(alerts, shard, focus))
    # SQLite has no LATERAL: the newest reading's id is a correlated subquery, one index probe.
    newer = history.alias("newer")
    newest_id = newest_reading(newer, devices.c.id, newer.c.id).scalar_subquery()
    return (
        select(
            *device_columns(devices),
            history.c.id.label("reading_id"),
            *reading_columns(history.c, as_text=False),
            _untimed_reading(newer, devices.c.id, history.c.id),
        )
        .select_from(devices.outerjoin(history, history.c.id == newest_id))
        .where(devices.c.id.in_(watched))
    )


def alerts_query(
    tables: SharedTables,
    shard: Shard = WHOLE,
    *,
    statuses: bool = True,
    rules: bool = True,
    trends: bool = True,
    focus: Focus | None = None,
) -> Select[Any]:
    """SQLite's second statement: every enabled alert of `shard` (and `focus`), its open events, its
    recorded status, its options and state; the columns of ALERT_COLUMNS, then EVENT_COLUMNS,
    STATUS_COLUMNS, RULE_COLUMNS and TREND_COLUMNS."""
    alerts, alert_events = tables.alerts, tables.alert_events
    # An alert's open threshold and no-data events, one probe of the open-event index each; its
    # trend events, which nearly no alert has, from one pass over those open, joined: two more
    # probes an alert cost a tenth of a steady cycle at 100,000 alerts.
    open_events = (
        select(func.min(alert_events.c.id))
        .where(
            alert_events.c.alert_id == alerts.c.id,
            tables.open_event_predicate,
            tables.event_kind == kind.value,
        )
        .scalar_subquery()
        .label(name)
        for name, kind in list(_KINDS.items())[:2]
    )
    trend_kinds = list(_KINDS.items())[2:]
    open_trend_events = (
        select(
            alert_events.c.alert_id,
            *(
                func.min(alert_events.c.id).filter(tables.event_kind == kind.value).label(name)
                for name, kind in trend_kinds
            ),
        )
        .where(
            tables.open_event_predicate,
            tables.event_kind.in_([kind.value for _, kind in trend_kinds]),
        )
        .group_by(alert_events.c.alert_id)
        .subquery("open_trend_events")
    )
    joined = alerts.outerjoin(open_trend_events, open_trend_events.c.alert_id == alerts.c.id)
    return (
        select(
            *_alert_columns(alerts),
            *open_events,
            *(open_trend_events.c[name] for name, _ in trend_kinds),
            *_worker_columns(statuses, rules, trends, as_text=False),
        )
        .select_from(_with_worker_tables(joined, alerts, statuses, rules, trends))
        .where(_enabled(alerts, shard, focus))
    )


_KINDS: Final = dict(
    zip(
        EVENT_COLUMNS,
        (EventKind.THRESHOLD, EventKind.NO_DATA, EventKind.FORECAST, EventKind.RATE),
        strict=True,
    )
)
"""EVENT_COLUMNS' kinds."""


def _with_worker_tables(
    joined: Any, alerts: Table, statuses: bool, rules: bool, trends: bool
) -> Any:
    """`joined` with each alert's recorded status, options and state, where the database has
    those tables and the alert has such rows."""
    if statuses:
        joined = joined.outerjoin(alert_status, alert_status.c.alert_id == alerts.c.id)
    if rules:
        joined = joined.outerjoin(rules_table, rules_table.c.alert_id == alerts.c.id).outerjoin(
            alert_state, alert_state.c.alert_id == alerts.c.id
        )
    if trends:
        joined = joined.outerjoin(trend_rules, trend_rules.c.alert_id == alerts.c.id).outerjoin(
            trend_state, trend_state.c.alert_id == alerts.c.id
        )
    return joined


def _worker_columns(statuses: bool, rules: bool, trends: bool, *, as_text: bool) -> tuple[Any, ...]:
    """STATUS_COLUMNS, RULE_COLUMNS and TREND_COLUMNS, from the worker's tables or NULLs in
    their place."""
    return (
        *_status_columns(statuses, as_text=as_text),
        *_rule_columns(rules, as_text=as_text),
        *_trend_columns(trends, as_text=as_text),
    )


def _trend_columns(trends: bool, *, as_text: bool) -> tuple[Any, ...]:
    """The trend rule and state columns, or NULLs in their place where there are no such
    tables."""
    if not trends:
        return tuple(null().label(name) for name in TREND_COLUMNS)
    instants = (trend_state.c.forecast_since, trend_state.c.rate_since)
    return (
        func.coalesce(trend_rules.c.alert_id, trend_state.c.alert_id).label("trend_alert_id"),
        *(trend_rules.c[name] for name in StoredTrend._fields),
        *((cast(c, Text) if as_text else c).label(c.name) for c in instants),
    )


def _rule_columns(rules: bool, *, as_text: bool) -> tuple[Any, ...]:
    """The rule and state columns, or NULLs in their place where there are no such tables."""
    if not rules:
        return tuple(null().label(name) for name in RULE_COLUMNS)
    since = alert_state.c.pending_since
    return (
        *(rules_table.c[name] for name in RULE_COLUMNS[:-1]),
        (cast(since, Text) if as_text else since).label("pending_since"),
    )


def _status_columns(statuses: bool, *, as_text: bool) -> tuple[Any, ...]:
    """The status columns, or NULLs in their place where there is no status table to read."""
    if not statuses:
        return tuple(null().label(name) for name in STATUS_COLUMNS)
    c = alert_status.c
    since = cast(c.since, Text) if as_text else c.since
    return (c.state.label("status_state"), c.code.label("status_code"), since.label("status_since"))


def _enabled(alerts: Table, shard: Shard, focus: Focus | None = None) -> ColumnElement[bool]:
    """The alerts a cycle evaluates: those not disabled (a NULL is_enabled too, ADR 12); of
    them, a live pass's those its `focus` names."""
    enabled: ColumnElement[bool] = alerts.c.is_enabled.is_not(false())
    if not shard.whole:
        enabled = and_(enabled, (alerts.c.id % shard.count).in_(sorted(shard.owned)))
    if focus is None:
        return enabled
    return and_(
        enabled,
        or_(alerts.c.device_id.in_(sorted(focus.devices)), alerts.c.id.in_(sorted(focus.alerts))),
    )


def windows_query(
    tables: SharedTables, since: Mapping[int, datetime], until: datetime, *, as_text: bool
) -> Select[Any]:
    """Trend alerts' windows (issue 13): the timestamped readings of each device of `since`
    after its instant there and at `until` or before, by device, oldest first; the device id,
    then the reading's columns as `newest_reading`'s callers read them. One range of the
    (device_id, timestamp) index per device; devices that share an instant share a condition."""
    history = tables.history
    c = history.c
    by_instant: dict[datetime, list[int]] = {}
    for device_id, instant in since.items():
        by_instant.setdefault(instant, []).append(device_id)
    ranges = [
        and_(c.device_id.in_(sorted(ids)), c.timestamp > instant)
        for instant, ids in sorted(by_instant.items())
    ]
    return (
        select(c.device_id, c.id, *reading_columns(c, as_text=as_text))
        .where(or_(*ranges), c.timestamp <= until)
        .order_by(c.device_id, c.timestamp, c.id)
    )


def newest_reading(readings: Any, device_id: Any, *columns: Any) -> Select[Any]:
    """`columns` of the newest timestamped reading of `device_id`, found through an index on
    history (device_id, timestamp): its cost grows with devices, not with history (ADR 11)."""
    return (
        select(*columns)
        .where(readings.c.device_id == device_id, readings.c.timestamp.is_not(None))
        .order_by(readings.c.timestamp.desc(), readings.c.id.desc())
        .limit(1)
    )


def _untimed_reading(readings: Any, device_id: Any, newest_id: Any) -> Any:
    """For a device with no timestamped reading, the id of its newest reading (whose timestamp
    is NULL), so that a skip can say so; worked out only for such devices (ADR 12)."""
    newest_untimed = select(func.max(readings.c.id)).where(readings.c.device_id == device_id)
    return case((newest_id.is_(None), newest_untimed.scalar_subquery())).label("untimed_reading_id")


def _alert_columns(alerts: Table) -> tuple[Any, ...]:
    return tuple(alerts.c[name] for name in ALERT_COLUMNS)


def device_columns(devices: Table) -> tuple[Any, ...]:
    c = devices.c
    return (c.id.label("device_row_id"), *(c[name] for name in DEVICE_COLUMNS[1:]))


def reading_columns(c: Any, *, as_text: bool) -> tuple[Any, ...]:
    """The timestamp and the JSON columns as text, decoded once per device in Python (ADR 7 and
    ADR 10): psycopg2 decoded them on every alert row, and cannot represent every timestamp
    PostgreSQL can. SQLite's driver gives them as stored, text if the web app wrote them, and
    whatever else SQLite was given otherwise, which the decoding then sees for what it is."""
    if not as_text:
        return (c.timestamp, c.value, c.json_value, c.metadata_.label("metadata"))
    return (
        cast(c.timestamp, Text).label("timestamp"),
        c.value,
        cast(c.json_value, Text).label("json_value"),
        cast(c.metadata_, Text).label("metadata"),
    )
