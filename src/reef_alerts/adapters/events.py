"""The event-writing port: a cycle's changes in a few statements, written at the end of the
cycle on SQLite (SQLAlchemy Core statements) and while it goes on on PostgreSQL (SQL text)."""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import attrs
from sqlalchemy import (
    Connection,
    bindparam,
    exists,
    select,
    update,
)
from sqlalchemy.dialects import sqlite

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.schema import has_open_event_index
from reef_alerts.adapters.tables import (
    OPEN_EVENT_INDEX,
    OPEN_EVENT_PREDICATE,
    alert_events,
)
from reef_alerts.domain import AlertEvent
from reef_alerts.ports import (
    AppliedChanges,
    EventChanges,
    Resolution,
)


class OpenEventIndex:
    """Whether alert_events has the one-open-event index (see `schema.check`), as a worker's
    units of work find out: looked for at most once per unit of work, at its first insert, until
    it is found; then trusted.

    Not once at start-up: a worker started while the database is down, or before `db upgrade`,
    finds out when that changes. And at a write, not before the read: the look-up then overlaps
    the cycle's judging, and a cycle with no event to open needs none.
    """

    def __init__(self, log: logging.Logger, *, present: bool = False) -> None:
        """`present`: known to exist, so never looked for."""
        self._log = log
        self._present = present
        self._warned = False

    def present(self, connection: Connection) -> bool:
        """Whether the index exists, looked for on `connection` unless already found."""
        if not self._present:
            self._present = has_open_event_index(connection)
            if not self._present and not self._warned:
                self._warned = True
                self._log.warning(
                    "alert_events has no %s index: concurrent workers could duplicate events "
                    "until `reef-alerts db upgrade` has been run",
                    OPEN_EVENT_INDEX,
                )
        return self._present


class SqliteEventWriter:
    """Writes a cycle's event changes at `flush`, one statement per kind of change.

    Without the partial unique index (a database not yet upgraded), a NOT EXISTS check in the
    insert prevents a second open event per alert; with it, the index is the insert's ON
    CONFLICT target as well. SQLite lets one writer in at a time, and the cycle's transaction
    began IMMEDIATE, before its read, so nothing can change between the two.
    """

    def __init__(self, connection: Connection, *, guarded: Callable[[], bool]) -> None:
        """`guarded()`: whether the one-open-event index exists (asked at the first insert)."""
        self._connection = connection
        self._guarded = guarded
        self._pending: list[EventChanges] = []

    def submit(self, changes: EventChanges) -> None:
        if changes:
            self._pending.append(changes)

    def flush(self) -> AppliedChanges:
        pending, self._pending = self._pending, []
        opened = [event for changes in pending for event in changes.opened]
        resolved = [resolution for changes in pending for resolution in changes.resolved]
        if opened:
            self._connection.execute(
                _sqlite_insert(guarded=self._guarded()), [_event_params(event) for event in opened]
            )
        if resolved:
            self._connection.execute(_sqlite_resolve(), [_resolution_params(r) for r in resolved])
        # No other writer can have opened or closed these events since the cycle's read (see
        # above), so everything decided was written.
        return AppliedChanges(
            frozenset(event.alert_id for event in opened),
            frozenset(resolution.event_id for resolution in resolved),
        )


class PostgresEventWriter:
    """Writes a cycle's event changes on the unit of work's statement thread while the cycle
    goes on judging; one statement per kind of change and write.

    Whatever is submitted while the thread is busy is written together when it gets to it, so
    the cycle can submit often. Writes wait while any fetch is queued (see background.py): with
    a server slower than the judging that is the snapshot's end, and one write may then carry
    nearly the whole cycle's changes. Once the snapshot is read writes follow one another, and
    the last, the one the cycle waits for, holds what was submitted while the one before it ran.

    Where the partial unique index exists, it is the insert's ON CONFLICT target, so concurrent
    workers can never open a second event for an alert; without it (a legacy database not yet
    upgraded) a NOT EXISTS check still prevents duplicates within one worker.
    """

    def __init__(
        self, connection: Connection, *, guarded: Callable[[], bool], thread: StatementThread
    ) -> None:
        """`guarded()`: whether the one-open-event index exists (asked at the first insert)."""
        self._connection = connection
        self._guarded = guarded
        self._thread = thread
        self._lock = threading.Lock()
        self._pending: list[_Encoded] = []
        """Submitted, not yet taken by a write; guarded by `_lock`."""
        self._write_queued = False
        """A write waits on the thread and will take what is pending; guarded by `_lock`."""
        self._writes: list[Future[AppliedChanges]] = []

    def submit(self, changes: EventChanges) -> None:
        if not changes:
            return
        # Encoded on the cycle's thread: the helper thread's Python work would hold the GIL the
        # cycle judges with, and only its waits on the server let the two run at once.
        encoded = _Encoded.of(changes)
        with self._lock:
            self._pending.append(encoded)
            if self._write_queued:
                return
            self._write_queued = True
        try:
            self._writes.append(self._thread.write(self._write_pending))
        except BaseException:
            with self._lock:  # nothing will take what is pending: let the next submit try
                self._write_queued = False
            raise

    def flush(self) -> AppliedChanges:
        written = [write.result() for write in self._writes]
        self._writes = []
        return AppliedChanges(
            frozenset().union(*(changes.opened for changes in written)),
            frozenset().union(*(changes.resolved for changes in written)),
        )

    def _write_pending(self) -> AppliedChanges:
        """Insert and resolve everything submitted so far; on the statement thread."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._write_queued = False
        inserted: frozenset[int] = frozenset()
        closed: frozenset[int] = frozenset()
        opened = _joined_arrays([encoded.opened for encoded in pending])
        if opened is not None:
            insert = _PG_INSERT_GUARDED if self._guarded() else _PG_INSERT_UNGUARDED
            inserted = frozenset(row[0] for row in self._execute(insert, opened))
        resolved = _joined_arrays([encoded.resolved for encoded in pending])
        if resolved is not None:
            closed = frozenset(row[0] for row in self._execute(_PG_RESOLVE, resolved))
        return AppliedChanges(inserted, closed)

    def _execute(self, sql: str, rows: str) -> Sequence[Any]:
        return self._connection.exec_driver_sql(sql, {"rows": rows}).cursor.fetchall()


# PostgreSQL's two writes, as SQL text: each takes its rows as one JSON array, and they are
# PostgreSQL's own dialect anyway. Built as SQLAlchemy constructs, their first compilation and
# execution held the GIL for 10 ms of a worker's first cycle.

_PG_INSERT = """\
INSERT INTO alert_events (alert_id, device_id, triggered_at, current_value, threshold_value,
                          operator, metric, is_resolved, metadata)
SELECT opened.alert_id, opened.device_id, opened.triggered_at, opened.current_value,
       opened.threshold_value, opened.operator, opened.metric, false, opened.metadata
FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS opened(
    alert_id INTEGER, device_id INTEGER, triggered_at TIMESTAMP WITH TIME ZONE,
    current_value FLOAT, threshold_value FLOAT, operator VARCHAR, metric VARCHAR, metadata JSON)
{only_new}
RETURNING alert_events.alert_id
"""

_PG_INSERT_GUARDED = _PG_INSERT.format(
    # The one-open-event index is the arbiter; a NOT EXISTS as well would cost an anti-join for
    # nothing.
    only_new="ON CONFLICT (alert_id) WHERE NOT is_resolved DO NOTHING"
)

_PG_INSERT_UNGUARDED = _PG_INSERT.format(
    only_new="WHERE NOT EXISTS (SELECT FROM alert_events AS existing\n"
    "                  WHERE existing.alert_id = opened.alert_id AND NOT existing.is_resolved)"
)

_PG_RESOLVE = """\
UPDATE alert_events
SET is_resolved = true, resolved_at = resolution.resolved_at, resolution_value = resolution.value
FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS resolution(
    id INTEGER, resolved_at TIMESTAMP WITH TIME ZONE, value FLOAT)
WHERE alert_events.id = resolution.id AND NOT alert_events.is_resolved
RETURNING alert_events.id
"""


@attrs.frozen
class _Encoded:
    """A submission's opened events and resolutions as JSON arrays for json_to_recordset."""

    opened: str | None
    resolved: str | None

    @classmethod
    def of(cls, changes: EventChanges) -> _Encoded:
        return cls(
            _json_rows(_payload(changes.opened)) if changes.opened else None,
            _json_rows([_resolution_row(r) for r in changes.resolved])
            if changes.resolved
            else None,
        )


def _joined_arrays(arrays: list[str | None]) -> str | None:
    """The non-empty JSON arrays `arrays` as one array: their elements, in order, between one
    pair of brackets. None if there are none."""
    elements = [array[1:-1] for array in arrays if array is not None]
    return f"[{','.join(elements)}]" if elements else None


def _json_rows(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"))


def _payload(events: Sequence[AlertEvent]) -> list[dict[str, Any]]:
    """The events as json_to_recordset's rows: SQLite's parameters (`_event_params`) as the
    columns _PG_INSERT reads, no others."""
    rows = []
    for event in events:
        row = _event_params(event)
        del row["is_resolved"]  # the insert's constant
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


# SQLite's two writes: SQLAlchemy Core statements, run with executemany.

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


@functools.cache
def _sqlite_insert(*, guarded: bool) -> Any:
    source = select(
        *(bindparam(name, type_=alert_events.c[name].type) for name in _INSERT_COLUMNS)
    ).where(~_has_open_event(bindparam("alert_id")))
    statement = sqlite.insert(alert_events).from_select(_INSERT_COLUMNS, source)
    if guarded:
        statement = statement.on_conflict_do_nothing(
            index_elements=[alert_events.c.alert_id], index_where=OPEN_EVENT_PREDICATE
        )
    return statement


def _has_open_event(alert_id: Any) -> Any:
    return exists().where(alert_events.c.alert_id == alert_id, OPEN_EVENT_PREDICATE)


@functools.cache
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


def _resolution_params(resolution: Resolution) -> dict[str, Any]:
    return {
        "event_id": resolution.event_id,
        "resolved_at": resolution.resolved_at,
        "value": resolution.value,
    }
