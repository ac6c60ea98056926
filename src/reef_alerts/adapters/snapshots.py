"""The snapshot port on SQLAlchemy Core: every enabled alert with its device, its device's newest
reading and its open event, read as one consistent snapshot in a few statements, none per alert.

PostgreSQL reads it in one statement through a server-side cursor. The unit of work's statement
thread (adapters/background.py) fetches the next two batches of rows while the cycle judges the
one before, so the server's work on the query overlaps the worker's.

SQLite reads it in two statements, the watched devices with their newest reading and then the
alerts with their open event. The cycle's transaction began IMMEDIATE, so no other writer can
commit between them. Two statements are half the time of one here: the one-statement form makes
SQLite copy every newest reading into a temporary table and index it, and hands each device's
columns back once per alert. SQLite gains nothing from a helper thread: its driver lets go of
the GIL for every row it steps, and the two threads spent their time handing it over.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Select,
    Table,
    Text,
    and_,
    cast,
    func,
    select,
    true,
)

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.tables import SharedTables
from reef_alerts.domain import Device, Reading
from reef_alerts.domain.model import JSON
from reef_alerts.ports import WHOLE, AlertSnapshot, Shard, StoredAlert

ALERT_COLUMNS = ("id", "device_id", "metric", "operator", "threshold_value", "trend_enabled")
"""An alert's columns, in StoredAlert's order."""

CONTEXT_COLUMNS = (
    *("device_row_id", "name", "device_type", "unit", "is_active", "poll_enabled"),
    *("poll_interval", "reading_id", "timestamp", "value", "json_value", "metadata"),
)
"""A device's columns and its newest reading's, in the order `_context` unpacks them."""

SNAPSHOT_COLUMNS = (*ALERT_COLUMNS, *CONTEXT_COLUMNS, "event_id")
"""The columns of PostgreSQL's one-statement snapshot (`snapshot_query`), in order."""

SNAPSHOT_BATCH_ROWS = 5_000
"""Rows per fetch of PostgreSQL's snapshot, once under way: few round trips (22 at 95,000
alerts), and a batch is a few megabytes."""

FIRST_BATCH_ROWS = 500
"""Rows of the first fetch. Batches then double up to SNAPSHOT_BATCH_ROWS: the cycle starts
judging after a few milliseconds instead of waiting for a whole batch (28 ms at 10,000 alerts),
and each next batch is fetched in about the time the one before takes to judge."""

READ_AHEAD = 2
"""Fetches queued on the statement thread ahead of the cycle. With two, the thread starts the
next as soon as one ends, and a write, which gives way to queued fetches (see background.py),
mostly runs while the cycle has a fetched batch in hand."""

_DEFAULT_POLL_INTERVAL = 60
_cursor_numbers = itertools.count(1)


class SqlSnapshotReader:
    """Reads one cycle's snapshot; iterate it once.

    With a `thread` (PostgreSQL), the snapshot is declared and fetched on it, two batches ahead.
    """

    def __init__(
        self, connection: Connection, tables: SharedTables, thread: StatementThread | None = None
    ) -> None:
        self._connection = connection
        self._tables = tables
        self._thread = thread

    def enabled_alerts(self, shard: Shard = WHOLE) -> Iterator[AlertSnapshot]:
        if self._thread is not None:
            sql, params = _compiled_snapshot(self._connection.dialect, self._tables, shard)
            fetch = self._thread.read(self._declare, sql, dict(params)).result()
            return _snapshots(_prefetched(fetch, self._thread))
        return self._sqlite_snapshots(shard)

    def _declare(self, sql: str, params: Mapping[str, Any]) -> Callable[[int], Sequence[Any]]:
        """A server-side cursor over the query `sql`, and a function fetching its next `size`
        rows.

        Declared and fetched through SQLAlchemy, not as a psycopg2 named cursor, so that its
        error handling (a lost connection is invalidated and the pool reconnects) and its
        statement events apply. The rows are the driver's own tuples: SQLAlchemy's per-row
        processing was a sixth of a 100,000-alert cycle, and these columns need none.
        """
        name = f"reef_alerts_snapshot_{next(_cursor_numbers)}"
        self._connection.exec_driver_sql(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
        closed = False

        def fetch(size: int) -> Sequence[Any]:
            nonlocal closed
            if closed:  # a fetch queued ahead of the end
                return ()
            rows = self._connection.exec_driver_sql(
                f"FETCH FORWARD {size:d} FROM {name}"
            ).cursor.fetchall()
            if len(rows) < size:
                closed = True
                self._connection.exec_driver_sql(f"CLOSE {name}")
            return rows

        return fetch

    def _sqlite_snapshots(self, shard: Shard) -> Iterator[AlertSnapshot]:
        """Both statements run now, like PostgreSQL's DECLARE: the read has begun on return."""
        tables = self._tables
        devices = self._connection.execute(watched_devices_query(tables, shard)).cursor.fetchall()
        rows = self._connection.execute(alerts_query(tables, shard)).cursor.fetchall()
        contexts = {row[0]: _context(row) for row in devices}
        missing: tuple[None, None] = (None, None)
        return (
            _snapshot((_stored_alert(row[:6]), *contexts.get(row[1], missing), row[6]))
            for row in rows
        )


def snapshot_query(tables: SharedTables, shard: Shard = WHOLE) -> Select[Any]:
    """PostgreSQL's snapshot in one statement: every enabled alert of `shard` with its device, its
    device's newest reading and its open event; the columns of SNAPSHOT_COLUMNS.

    Each watched device is joined with its row and its newest reading once, and then with its
    alerts. PostgreSQL can then merge-join the watched devices with the device rows in id order,
    and the rows stream from the first, where a hash of every device row made the first one wait
    for all of them.
    """
    alerts, devices, alert_events = tables.alerts, tables.devices, tables.alert_events
    enabled = _enabled(alerts, shard)
    watched = select(alerts.c.device_id).where(enabled).distinct().cte("watched")
    c = tables.history.c
    latest = _newest_reading(
        tables.history, watched.c.device_id, c.id, c.timestamp, c.value, c.json_value, c.metadata_
    ).lateral("latest")
    contexts = (
        select(
            watched.c.device_id,
            *_device_columns(devices),
            latest.c.id.label("reading_id"),
            *_reading_columns(latest.c),
        )
        .select_from(
            watched.join(devices, devices.c.id == watched.c.device_id).outerjoin(latest, true())
        )
        .subquery("contexts")
    )
    open_events = (
        select(alert_events.c.alert_id, func.min(alert_events.c.id).label("event_id"))
        .where(tables.open_event_predicate)
        .group_by(alert_events.c.alert_id)
        .subquery("open_events")
    )
    return (
        select(
            *_alert_columns(alerts),
            *(contexts.c[name] for name in CONTEXT_COLUMNS),
            open_events.c.event_id,
        )
        .select_from(
            alerts.outerjoin(contexts, contexts.c.device_id == alerts.c.device_id).outerjoin(
                open_events, open_events.c.alert_id == alerts.c.id
            )
        )
        .where(enabled)
    )


@functools.lru_cache(maxsize=64)
def _compiled_snapshot(
    dialect: Dialect, tables: SharedTables, shard: Shard
) -> tuple[str, Mapping[str, Any]]:
    """`snapshot_query(tables, shard)` as SQL text and parameters, compiled once per shard:
    compiling it took 3 ms, a few percent of a 10,000-alert cycle."""
    compiled = snapshot_query(tables, shard).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    return str(compiled), MappingProxyType(dict(compiled.params))


def watched_devices_query(tables: SharedTables, shard: Shard = WHOLE) -> Select[Any]:
    """SQLite's first statement: each device an enabled alert of `shard` watches, with its newest
    reading; the columns of CONTEXT_COLUMNS."""
    alerts, devices, history = tables.alerts, tables.devices, tables.history
    watched = select(alerts.c.device_id).where(_enabled(alerts, shard))
    # SQLite has no LATERAL: the newest reading's id is a correlated subquery, one index probe.
    newer = history.alias("newer")
    newest_id = _newest_reading(newer, devices.c.id, newer.c.id).scalar_subquery()
    return (
        select(
            *_device_columns(devices),
            history.c.id.label("reading_id"),
            *_reading_columns(history.c),
        )
        .select_from(devices.outerjoin(history, history.c.id == newest_id))
        .where(devices.c.id.in_(watched))
    )


def alerts_query(tables: SharedTables, shard: Shard = WHOLE) -> Select[Any]:
    """SQLite's second statement: every enabled alert of `shard` and its open event; the columns
    of ALERT_COLUMNS, then `event_id`."""
    alerts, alert_events = tables.alerts, tables.alert_events
    open_event = (
        select(func.min(alert_events.c.id))
        .where(alert_events.c.alert_id == alerts.c.id, tables.open_event_predicate)
        .scalar_subquery()
    )
    return select(*_alert_columns(alerts), open_event.label("event_id")).where(
        _enabled(alerts, shard)
    )


def _enabled(alerts: Table, shard: Shard) -> ColumnElement[bool]:
    enabled: ColumnElement[bool] = alerts.c.is_enabled.is_(True)
    if shard.whole:
        return enabled
    return and_(enabled, (alerts.c.id % shard.count).in_(sorted(shard.owned)))


def _newest_reading(readings: Any, device_id: Any, *columns: Any) -> Select[Any]:
    """`columns` of the newest timestamped reading of `device_id`, found through the
    (device_id, timestamp) index: its cost grows with devices, not with history."""
    return (
        select(*columns)
        .where(readings.c.device_id == device_id, readings.c.timestamp.is_not(None))
        .order_by(readings.c.timestamp.desc(), readings.c.id.desc())
        .limit(1)
    )


def _alert_columns(alerts: Table) -> tuple[Any, ...]:
    c = alerts.c
    return (c.id, c.device_id, c.metric, c.operator, c.threshold_value, c.trend_enabled)


def _device_columns(devices: Table) -> tuple[Any, ...]:
    c = devices.c
    return (
        *(c.id.label("device_row_id"), c.name, c.device_type, c.unit, c.is_active),
        *(c.poll_enabled, c.poll_interval),
    )


def _reading_columns(c: Any) -> tuple[Any, ...]:
    # The timestamp as text, parsed in Python once per device: psycopg2's own parsing, on every
    # alert row, was half of the fetching thread's work, and it cannot represent every value
    # PostgreSQL can (see _timestamp). The JSON columns as text too, decoded once per device, and
    # metadata only when looked into: psycopg2 decoded both on every alert row.
    return (
        cast(c.timestamp, Text).label("timestamp"),
        c.value,
        cast(c.json_value, Text).label("json_value"),
        cast(c.metadata_, Text).label("metadata"),
    )


def _prefetched(
    fetch: Callable[[int], Sequence[Any]], thread: StatementThread
) -> Iterator[Sequence[Any]]:
    """The batches `fetch` returns, up to the first short one, fetched on `thread` READ_AHEAD
    ahead of the caller; growing from FIRST_BATCH_ROWS to SNAPSHOT_BATCH_ROWS."""
    sizes = _batch_sizes()
    ahead = deque((size, thread.read(fetch, size)) for size in itertools.islice(sizes, READ_AHEAD))
    while ahead:
        size, fetched = ahead.popleft()
        batch = fetched.result()
        if len(batch) < size:  # the last: what was fetched ahead of it is empty
            for _, empty in ahead:
                empty.cancel()
            ahead.clear()
        else:
            size = next(sizes)
            ahead.append((size, thread.read(fetch, size)))
        yield batch


def _batch_sizes() -> Iterator[int]:
    size = FIRST_BATCH_ROWS
    while True:
        yield size
        size = min(2 * size, SNAPSHOT_BATCH_ROWS)


def _snapshots(batches: Iterator[Sequence[Any]]) -> Iterator[AlertSnapshot]:
    """PostgreSQL's snapshot rows as AlertSnapshots, each device and reading built once."""
    contexts: dict[int, tuple[Device | None, Reading | None]] = {}
    for rows in batches:
        for row in rows:
            context = contexts.get(row[1])
            if context is None:
                context = contexts[row[1]] = _context(row[6:18])
            yield _snapshot((_stored_alert(row[:6]), *context, row[18]))


# Both tuples built in C: a NamedTuple's own constructor and `_make` are Python calls.
_stored_alert = functools.partial(tuple.__new__, StoredAlert)
_snapshot = functools.partial(tuple.__new__, AlertSnapshot)


def _context(columns: Sequence[Any]) -> tuple[Device | None, Reading | None]:
    """The device and its newest reading from the columns of CONTEXT_COLUMNS."""
    (device_id, name, device_type, unit, is_active, poll_enabled, poll_interval) = columns[:7]
    (reading_id, timestamp, value, json_value, metadata) = columns[7:]
    if device_id is None:
        return None, None
    # Positional, in the classes' field order: once per watched device, and keywords cost more.
    device = Device(
        device_id,
        name,
        device_type,
        unit,
        # NULL flags take the schema's defaults: active, polled, every 60 s.
        is_active is None or bool(is_active),
        poll_enabled is None or bool(poll_enabled),
        _poll_interval(poll_interval),
    )
    if reading_id is None:
        return device, None
    return device, Reading(
        reading_id,
        device_id,
        _timestamp(timestamp),
        value,
        # json_value is nearly always looked into; metadata nearly never.
        None if json_value is None else _decode(json_value),
        None if metadata is None else _decode_lazily(metadata),
    )


@functools.cache
def _poll_interval(seconds: int | None) -> timedelta:
    """A device's poll interval; a device table holds a handful of distinct ones."""
    return timedelta(seconds=seconds if seconds and seconds > 0 else _DEFAULT_POLL_INTERVAL)


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_START_OF_TIME = datetime.min.replace(tzinfo=UTC)


def _timestamp(text: str) -> datetime:
    """A stored timestamp's text as an aware UTC datetime.

    PostgreSQL's is ISO text in UTC, the session's time zone ("2024-06-01 12:00:00.5+00");
    SQLite's is ISO text, naive by convention in UTC. PostgreSQL also stores what a datetime
    cannot hold: "infinity" and years after 9999 are read as the last instant a datetime can
    hold, so such a reading is from the future; "-infinity" and years BC as the first, so it is
    as old as can be. Anything else unreadable raises ValueError.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _beyond_datetime(text)
    if parsed.tzinfo is UTC:  # PostgreSQL's, the common case
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_AFTER_9999 = re.compile(r"\d{5,}-")


def _beyond_datetime(text: str) -> datetime:
    """The datetime standing for a PostgreSQL timestamp outside datetime's years 1 to 9999."""
    if text == "infinity" or _AFTER_9999.match(text):
        return _END_OF_TIME
    if text == "-infinity" or text.endswith(" BC"):
        return _START_OF_TIME
    raise ValueError(f"unreadable reading timestamp {text!r}")


_JSON = json.JSONDecoder()


def _decode(text: str) -> JSON:
    """A JSON column's text as its value."""
    # raw_decode is json.loads without its checks for blanks around the value, and 40 % faster:
    # a multi-sensor's reading is decoded every cycle. Text it cannot read to the end gets
    # json.loads's full rules.
    try:
        decoded, end = _JSON.raw_decode(text)
        if end == len(text):
            return decoded
    except ValueError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        # SQLite gives a JSON column numeric affinity: a bare number beyond the float range is
        # stored as REAL infinity and read back as "Inf". Not an object, so it names no metric.
        return text


def _decode_lazily(text: str) -> JSON:
    """A JSON column's text as its value; an object is decoded only when first looked into."""
    if text.startswith("{") or text.lstrip().startswith("{"):  # the first test copies nothing
        return LazyJSONObject(text)
    return _decode(text)


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
