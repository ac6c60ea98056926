"""The storage ports on SQLAlchemy Core: one snapshot query, batched event writes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    column,
    exists,
    false,
    func,
    select,
    true,
    types,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from reef_alerts.adapters.tables import (
    OPEN_EVENT_PREDICATE,
    UTCDateTime,
    alert_events,
    alerts,
    devices,
    history,
    open_event_index,
)
from reef_alerts.domain import AlertEvent, Device, Reading
from reef_alerts.domain.model import JSON
from reef_alerts.ports import (
    WHOLE,
    AlertSnapshot,
    AppliedChanges,
    EventChanges,
    Resolution,
    Shard,
)

_DEFAULT_POLL_INTERVAL = 60


SNAPSHOT_COLUMNS = (
    *("id", "device_id", "metric", "operator", "threshold_value", "trend_enabled"),
    *("device_row_id", "name", "device_type", "unit", "is_active", "poll_enabled"),
    *("poll_interval", "reading_id", "timestamp", "value", "json_value", "metadata", "event_id"),
)
"""The snapshot's columns, in the order SqlSnapshotReader unpacks them by position."""


def snapshot_query(dialect_name: str, shard: Shard = WHOLE) -> Select[Any]:
    """Every enabled alert of `shard` with its device, its device's newest reading and its open
    event: the columns of SNAPSHOT_COLUMNS, in that order."""
    enabled: ColumnElement[bool] = alerts.c.is_enabled.is_(True)
    if not shard.whole:
        enabled = and_(enabled, (alerts.c.id % shard.count).in_(sorted(shard.owned)))
    watched = select(alerts.c.device_id).where(enabled).distinct().cte("watched")
    newest = _newest_reading_per_device(watched.c.device_id, dialect_name, watched)
    open_events = (
        select(alert_events.c.alert_id, func.min(alert_events.c.id).label("event_id"))
        .where(OPEN_EVENT_PREDICATE)
        .group_by(alert_events.c.alert_id)
        .subquery("open_events")
    )
    return (
        select(
            alerts.c.id,
            alerts.c.device_id,
            alerts.c.metric,
            alerts.c.operator,
            alerts.c.threshold_value,
            alerts.c.trend_enabled,
            devices.c.id.label("device_row_id"),
            devices.c.name,
            devices.c.device_type,
            devices.c.unit,
            devices.c.is_active,
            devices.c.poll_enabled,
            devices.c.poll_interval,
            newest.c.id.label("reading_id"),
            newest.c.timestamp,
            newest.c.value,
            # As text, decoded once per device in Python: the driver would decode them once per
            # alert row, and that was most of a 100,000-alert cycle's fetch time.
            cast(newest.c.json_value, Text).label("json_value"),
            cast(newest.c.metadata_, Text).label("metadata"),
            open_events.c.event_id,
        )
        .select_from(
            alerts.outerjoin(devices, devices.c.id == alerts.c.device_id)
            .outerjoin(newest, newest.c.device_id == alerts.c.device_id)
            .outerjoin(open_events, open_events.c.alert_id == alerts.c.id)
        )
        .where(enabled)
    )


def _newest_reading_per_device(device_id: Any, dialect_name: str, watched: Any) -> Any:
    """The newest timestamped reading of each watched device, found through the
    (device_id, timestamp) index: its cost grows with devices, not with history."""
    columns = (
        history.c.id,
        history.c.timestamp,
        history.c.value,
        history.c.json_value,
        history.c.metadata_,
    )
    latest = (
        select(*columns)
        .where(history.c.device_id == device_id, history.c.timestamp.is_not(None))
        .order_by(history.c.timestamp.desc(), history.c.id.desc())
        .limit(1)
    )
    if dialect_name == "postgresql":
        lateral = latest.lateral("latest")
        return (
            select(device_id.label("device_id"), *lateral.c)
            .select_from(watched.join(lateral, true()))
            .subquery("newest")
        )
    # SQLite has no LATERAL; a correlated subquery per device walks the same index.
    newer = history.alias("newer")
    newest_id = (
        select(newer.c.id)
        .where(newer.c.device_id == device_id, newer.c.timestamp.is_not(None))
        .order_by(newer.c.timestamp.desc(), newer.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(watched.c.device_id, *columns)
        .select_from(watched.join(history, history.c.id == newest_id))
        .subquery("newest")
    )


class SqlSnapshotReader:
    """Reads one cycle's snapshot in a single statement."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def enabled_alerts(self, shard: Shard = WHOLE) -> Sequence[AlertSnapshot]:
        query = snapshot_query(self._connection.dialect.name, shard)
        # The driver's own tuples, without SQLAlchemy's per-row processing (a sixth of a
        # 100,000-alert cycle): the columns were chosen to need none but the timestamp's, which
        # _reading does once per device instead.
        rows = self._connection.execute(query).cursor.fetchall()
        # Alerts share devices: build each device and its newest reading once.
        devices_seen: dict[int, tuple[Device | None, Reading | None]] = {}
        snapshots = []
        for row in rows:
            (alert_id, device_id, metric, operator, threshold, trend_enabled) = row[:6]
            context = devices_seen.get(device_id)
            if context is None:
                context = devices_seen[device_id] = (_device(row), _reading(row, device_id))
            snapshots.append(
                AlertSnapshot(
                    alert_id=alert_id,
                    device_id=device_id,
                    metric=metric,
                    operator=operator,
                    threshold=threshold,
                    trend_enabled=bool(trend_enabled),
                    device=context[0],
                    reading=context[1],
                    open_event_id=row[18],
                )
            )
        return snapshots


def _device(row: Any) -> Device | None:
    device_id, name, device_type, unit, is_active, poll_enabled, poll_interval = row[6:13]
    if device_id is None:
        return None
    return Device(
        id=device_id,
        name=name,
        type=device_type,
        unit=unit,
        # NULL flags take the schema's defaults: active, polled, every 60 s.
        active=is_active is not False and is_active != 0,
        polled=poll_enabled is not False and poll_enabled != 0,
        poll_interval=timedelta(
            seconds=poll_interval if poll_interval and poll_interval > 0 else _DEFAULT_POLL_INTERVAL
        ),
    )


def _reading(row: Any, device_id: int) -> Reading | None:
    reading_id, timestamp, value, json_value, metadata = row[13:18]
    if reading_id is None:
        return None
    return Reading(
        id=reading_id,
        device_id=device_id,
        timestamp=_utc(timestamp),
        value=value,
        # json_value is nearly always looked into; metadata nearly never.
        json_value=_decode(json_value, lazy=False),
        metadata=_decode(metadata, lazy=True),
    )


def _utc(timestamp: datetime | str) -> datetime:
    """A stored timestamp as an aware UTC datetime. PostgreSQL sessions are set to UTC; SQLite
    hands back text, naive by convention in UTC."""
    if isinstance(timestamp, str):
        timestamp = datetime.fromisoformat(timestamp)
    if timestamp.tzinfo is UTC:
        return timestamp
    if timestamp.tzinfo is None:
        return timestamp.replace(tzinfo=UTC)
    return timestamp.astimezone(UTC)


def _decode(text: str | None, *, lazy: bool) -> JSON:
    """A JSON column's text as its value; with `lazy`, an object is decoded only when first
    looked into."""
    if text is None:
        return None
    if lazy and text.lstrip().startswith("{"):
        return LazyJSONObject(text)
    try:
        decoded: JSON = json.loads(text)
    except ValueError:
        # SQLite gives a JSON column numeric affinity: a bare number beyond the float range is
        # stored as REAL infinity and read back as "Inf". Not an object, so it names no metric.
        return text
    return decoded


class LazyJSONObject(Mapping[str, JSON]):
    """A JSON object decoded on first use. Most readings' `metadata` is never looked at, and
    decoding every reading's up front was a fifth of a 100,000-alert cycle."""

    __slots__ = ("_text", "_value")

    def __init__(self, text: str) -> None:
        self._text = text
        self._value: dict[str, JSON] | None = None

    def _decoded(self) -> dict[str, JSON]:
        if self._value is None:
            self._value = json.loads(self._text)
        return self._value

    def __getitem__(self, key: str) -> JSON:
        return self._decoded()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._decoded()

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __eq__(self, other: object) -> bool:
        return self._decoded() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._decoded())


class SqlEventWriter:
    """Writes a cycle's event changes in a constant number of statements.

    With `guarded`, the partial unique index exists and every insert names it as its ON CONFLICT
    target, so concurrent workers can never open a second event for an alert. Without it (a legacy
    database not yet upgraded) a NOT EXISTS check still prevents duplicates within one worker.
    """

    def __init__(self, connection: Connection, *, guarded: bool) -> None:
        self._connection = connection
        self._guarded = guarded

    def apply(self, changes: EventChanges) -> AppliedChanges:
        if self._connection.dialect.name == "postgresql":
            return self._pg_apply(changes)
        if changes.opened:
            self._connection.execute(
                self._sqlite_insert(), [_event_params(event) for event in changes.opened]
            )
        if changes.resolved:
            self._connection.execute(
                _sqlite_resolve(), [_resolution_params(r) for r in changes.resolved]
            )
        # The cycle's transaction began IMMEDIATE, before its read: no other writer can have
        # opened or closed these events since, so everything decided was written.
        return AppliedChanges(
            frozenset(event.alert_id for event in changes.opened),
            frozenset(resolution.event_id for resolution in changes.resolved),
        )

    def _pg_apply(self, changes: EventChanges) -> AppliedChanges:
        opened: frozenset[int] = frozenset()
        resolved: frozenset[int] = frozenset()
        if changes.opened:
            rows = {"rows": _payload(changes.opened)}
            opened = frozenset(self._connection.scalars(self._pg_insert(), rows))
        if changes.resolved:
            rows = {"rows": [_resolution_row(r) for r in changes.resolved]}
            resolved = frozenset(self._connection.scalars(_pg_resolve(), rows))
        return AppliedChanges(opened, resolved)

    def _pg_insert(self) -> Any:
        rows = func.json_to_recordset(bindparam("rows", type_=types.JSON)).table_valued(
            column("alert_id", Integer),
            column("device_id", Integer),
            column("triggered_at", UTCDateTime),
            column("current_value", Float),
            column("threshold_value", Float),
            column("operator", String),
            column("metric", String),
            column("metadata", types.JSON),
            name="opened",
        )
        rows = rows.render_derived(with_types=True)
        source = select(
            rows.c.alert_id,
            rows.c.device_id,
            rows.c.triggered_at,
            rows.c.current_value,
            rows.c.threshold_value,
            rows.c.operator,
            rows.c.metric,
            false(),
            rows.c.metadata,
        ).where(~_has_open_event(rows.c.alert_id))
        statement = postgresql.insert(alert_events).from_select(_INSERT_COLUMNS, source)
        if self._guarded:
            statement = statement.on_conflict_do_nothing(constraint=open_event_index)
        return statement.returning(alert_events.c.alert_id)

    def _sqlite_insert(self) -> Any:
        source = select(
            *(bindparam(name, type_=alert_events.c[name].type) for name in _INSERT_COLUMNS)
        ).where(~_has_open_event(bindparam("alert_id")))
        statement = sqlite.insert(alert_events).from_select(_INSERT_COLUMNS, source)
        if self._guarded:
            statement = statement.on_conflict_do_nothing(
                index_elements=[alert_events.c.alert_id], index_where=OPEN_EVENT_PREDICATE
            )
        return statement


_INSERT_COLUMNS = [
    "alert_id",
    "device_id",
    "triggered_at",
    "current_value",
    "threshold_value",
    "operator",
    "metric",
    "is_resolved",
    "metadata_",
]


def _has_open_event(alert_id: Any) -> Any:
    return exists().where(alert_events.c.alert_id == alert_id, OPEN_EVENT_PREDICATE)


def _pg_resolve() -> Any:
    rows = (
        func.json_to_recordset(bindparam("rows", type_=types.JSON))
        .table_valued(
            column("id", Integer),
            column("resolved_at", UTCDateTime),
            column("value", Float),
            name="resolutions",
        )
        .render_derived(with_types=True)
    )
    return (
        update(alert_events)
        .where(alert_events.c.id == rows.c.id, OPEN_EVENT_PREDICATE)
        .values(is_resolved=True, resolved_at=rows.c.resolved_at, resolution_value=rows.c.value)
        .returning(alert_events.c.id)
    )


def _sqlite_resolve() -> Any:
    return (
        update(alert_events)
        .where(alert_events.c.id == bindparam("event_id"), OPEN_EVENT_PREDICATE)
        .values(
            is_resolved=True,
            resolved_at=bindparam("resolved_at"),
            resolution_value=bindparam("value"),
        )
    )


def _event_params(event: AlertEvent) -> dict[str, Any]:
    return {
        "alert_id": event.alert_id,
        "device_id": event.device_id,
        "triggered_at": event.triggered_at,
        "current_value": event.current_value,
        "threshold_value": event.threshold_value,
        "operator": event.operator.value,
        "metric": event.metric,
        "is_resolved": False,
        "metadata_": event.metadata,
    }


def _payload(events: Sequence[AlertEvent]) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        row = _event_params(event)
        row["triggered_at"] = event.triggered_at.isoformat()
        row["metadata"] = row.pop("metadata_")
        rows.append(row)
    return rows


def _resolution_row(resolution: Resolution) -> dict[str, Any]:
    return {
        "id": resolution.event_id,
        "resolved_at": resolution.resolved_at.isoformat(),
        "value": resolution.value,
    }


def _resolution_params(resolution: Resolution) -> dict[str, Any]:
    return {
        "event_id": resolution.event_id,
        "resolved_at": resolution.resolved_at,
        "value": resolution.value,
    }
