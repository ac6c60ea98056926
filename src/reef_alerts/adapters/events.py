"""The event-writing port: a cycle's changes in a few statements, written at the end of the
cycle on SQLite (SQLAlchemy Core statements) and while it goes on on PostgreSQL (SQL text).

Alerts' status changes (ADR 13) go to the worker's status table with them; without that table
(a database not yet upgraded), a writer hands them back in `unrecorded`, for the unit of work to
keep in memory once the cycle commits.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Final

import attrs
from sqlalchemy import (
    Column,
    Connection,
    bindparam,
    exists,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.tables import SharedTables, alert_status
from reef_alerts.domain import AlertEvent, Resolution
from reef_alerts.ports import AppliedChanges, EventChanges, StatusChange


class SqliteEventWriter:
    """Writes a cycle's event changes at `flush`, one statement per kind of change.

    Without the partial unique index (a database not yet upgraded), a NOT EXISTS check in the
    insert prevents a second open event per alert; with it, the index is the insert's ON
    CONFLICT target as well. SQLite lets one writer in at a time, and the cycle's transaction
    began IMMEDIATE, before its read, so nothing can change between the two.
    """

    def __init__(
        self,
        connection: Connection,
        tables: SharedTables,
        *,
        guarded: Callable[[], bool],
        status_table: bool = True,
    ) -> None:
        """`guarded()`: whether the one-open-event index exists (asked at the first insert).
        `status_table`: whether alert_status exists to be written."""
        self._connection = connection
        self._tables = tables
        self._guarded = guarded
        self._status_table = status_table
        self._pending: list[EventChanges] = []
        self.unrecorded: list[StatusChange] = []
        """Status changes written nowhere, for want of the status table."""

    @property
    def metric_limit(self) -> int | None:
        return _metric_limit(self._tables)

    def submit(self, changes: EventChanges) -> None:
        if changes:
            self._pending.append(changes)

    def flush(self) -> AppliedChanges:
        pending, self._pending = self._pending, []
        opened = [event for changes in pending for event in changes.opened]
        resolved = [resolution for changes in pending for resolution in changes.resolved]
        if opened:
            self._connection.execute(
                _sqlite_insert(self._tables, guarded=self._guarded()),
                [_event_params(event) for event in opened],
            )
        if resolved:
            self._connection.execute(
                _sqlite_resolve(self._tables), [_resolution_params(r) for r in resolved]
            )
        statuses = [change for changes in pending for change in changes.statuses]
        if not self._status_table:
            self.unrecorded.extend(statuses)
        else:
            set_, cleared = _split(statuses)
            if set_:
                self._connection.execute(_SQLITE_SET_STATUS, [_status_params(c) for c in set_])
            if cleared:
                self._connection.execute(
                    _SQLITE_CLEAR_STATUS, [{"alert_id": c.alert_id} for c in cleared]
                )
        # No other writer can have opened or closed these events since the cycle's read (see
        # above), so everything decided was written.
        return AppliedChanges(
            frozenset(event.alert_id for event in opened if event.alert_id is not None),
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
        self,
        connection: Connection,
        tables: SharedTables,
        *,
        guarded: Callable[[], bool],
        thread: StatementThread,
        status_table: bool = True,
    ) -> None:
        """`guarded()`: whether the one-open-event index exists (asked at the first insert).
        `status_table`: whether alert_status exists to be written."""
        self._connection = connection
        self._tables = tables
        self._writes_sql = _postgres_writes(tables)
        self._guarded = guarded
        self._status_table = status_table
        self.unrecorded: list[StatusChange] = []
        """Status changes written nowhere, for want of the status table."""
        self._thread = thread
        self._lock = threading.Lock()
        self._pending: list[_Encoded] = []
        """Submitted, not yet taken by a write; guarded by `_lock`."""
        self._write_queued = False
        """A write waits on the thread and will take what is pending; guarded by `_lock`."""
        self._writes: list[Future[AppliedChanges]] = []

    @property
    def metric_limit(self) -> int | None:
        return _metric_limit(self._tables)

    def submit(self, changes: EventChanges) -> None:
        if not changes:
            return
        if not self._status_table:
            self.unrecorded.extend(changes.statuses)
            changes = attrs.evolve(changes, statuses=())
            if not changes:
                return
        # Encoded on the cycle's thread: the helper thread's Python work would hold the GIL the
        # cycle judges with, and only its waits on the server let the two run at once.
        encoded = _Encoded.of(changes, self._tables)
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
        sql = self._writes_sql
        opened = _joined_arrays([encoded.opened for encoded in pending])
        if opened is not None:
            insert = sql.insert_guarded if self._guarded() else sql.insert_unguarded
            inserted = frozenset(row[0] for row in self._execute(insert, opened))
        resolved = _joined_arrays([encoded.resolved for encoded in pending])
        if resolved is not None:
            closed = frozenset(row[0] for row in self._execute(sql.resolve, resolved))
        set_ = _joined_arrays([encoded.statuses_set for encoded in pending])
        if set_ is not None:
            self._connection.exec_driver_sql(_PG_SET_STATUS, {"rows": set_})
        cleared = _joined_arrays([encoded.statuses_cleared for encoded in pending])
        if cleared is not None:
            self._connection.exec_driver_sql(_PG_CLEAR_STATUS, {"rows": cleared})
        return AppliedChanges(inserted, closed)

    def _execute(self, sql: str, rows: str) -> Sequence[Any]:
        return self._connection.exec_driver_sql(sql, {"rows": rows}).cursor.fetchall()


def _metric_limit(tables: SharedTables) -> int | None:
    """alert_events.metric's length: VARCHAR(50) in the legacy generation, none in the current."""
    length: int | None = getattr(tables.alert_events.c.metric.type, "length", None)
    return length


# PostgreSQL's two writes, as SQL text generated once from the alert_events table of the
# database's generation: each takes its rows as one JSON array, and they are PostgreSQL's own
# dialect anyway; SQLAlchemy constructs' first compilation would hold the GIL in a worker's first
# cycle (ADR 8).

_INSERTED = (
    "alert_id",
    "device_id",
    "triggered_at",
    "current_value",
    "threshold_value",
    "operator",
    "metric",
    "metadata_",
)
"""The columns an opened event's row gives, by key; `is_resolved` is the insert's constant."""

_RESOLVED = {"id": "id", "resolved_at": "resolved_at", "value": "resolution_value"}
"""A resolution's fields, and the column each is typed after."""


@attrs.frozen
class _PostgresWrites:
    insert_guarded: str
    insert_unguarded: str
    resolve: str


@functools.cache
def _postgres_writes(tables: SharedTables) -> _PostgresWrites:
    events = tables.alert_events
    columns = [events.c[key] for key in _INSERTED]
    names = [column.name for column in columns]
    opened = ", ".join(f"{column.name} {_pg_type(column)}" for column in columns)
    insert = (
        f"INSERT INTO {events.name} ({', '.join(names)}, is_resolved)\n"
        f"SELECT {', '.join(f'opened.{name}' for name in names)}, false\n"
        f"FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS opened({opened})\n"
        "{only_new}\n"
        f"RETURNING {events.name}.alert_id"
    )
    resolution = ", ".join(f"{field} {_pg_type(events.c[c])}" for field, c in _RESOLVED.items())
    return _PostgresWrites(
        # The one-open-event index is the arbiter; a NOT EXISTS as well would cost an anti-join
        # for nothing.
        insert_guarded=insert.format(
            only_new="ON CONFLICT (alert_id) WHERE NOT is_resolved DO NOTHING"
        ),
        insert_unguarded=insert.format(
            only_new=f"WHERE NOT EXISTS (SELECT FROM {events.name} AS existing "
            "WHERE existing.alert_id = opened.alert_id AND NOT existing.is_resolved)"
        ),
        resolve=(
            f"UPDATE {events.name}\n"
            "SET is_resolved = true, resolved_at = resolution.resolved_at, "
            "resolution_value = resolution.value\n"
            f"FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS resolution({resolution})\n"
            f"WHERE {events.name}.id = resolution.id AND NOT {events.name}.is_resolved\n"
            f"RETURNING {events.name}.id"
        ),
    )


_POSTGRESQL: Final = postgresql.dialect()  # type: ignore[no-untyped-call]


def _pg_type(column: Column[Any]) -> str:
    return str(column.type.compile(dialect=_POSTGRESQL))


@attrs.frozen
class _Encoded:
    """A submission's changes as JSON arrays for json_to_recordset (None where it has none)."""

    opened: str | None
    resolved: str | None
    statuses_set: str | None = None
    statuses_cleared: str | None = None

    @classmethod
    def of(cls, changes: EventChanges, tables: SharedTables) -> _Encoded:
        set_, cleared = _split(changes.statuses)
        return cls(
            _json_rows(_payload(changes.opened, tables)) if changes.opened else None,
            _json_rows([_resolution_row(r) for r in changes.resolved])
            if changes.resolved
            else None,
            _json_rows([_status_row(c) for c in set_]) if set_ else None,
            _json_rows([c.alert_id for c in cleared]) if cleared else None,
        )


# The alerts' statuses (ADR 13), on PostgreSQL: one statement to record those set, one to clear
# those that are judged again.

_STATUS_COLUMNS = tuple(alert_status.c.keys())
"""The status table's columns: the fields of a `StatusChange`, by the same names."""

_PG_SET_STATUS = (
    f"INSERT INTO {alert_status.name} ({', '.join(_STATUS_COLUMNS)})\n"
    f"SELECT {', '.join(_STATUS_COLUMNS)}\n"
    "FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS status("
    + ", ".join(f"{name} {_pg_type(alert_status.c[name])}" for name in _STATUS_COLUMNS)
    + ")\n"
    "ON CONFLICT (alert_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in _STATUS_COLUMNS[1:])
)

_PG_CLEAR_STATUS = (
    f"DELETE FROM {alert_status.name} WHERE alert_id IN "
    "(SELECT CAST(value AS INTEGER) FROM json_array_elements_text(CAST(%(rows)s AS JSON)))"
)


def _split(statuses: Sequence[StatusChange]) -> tuple[list[StatusChange], list[StatusChange]]:
    """The changes that set a status, and those that clear one."""
    set_ = [change for change in statuses if change.state is not None]
    return set_, [change for change in statuses if change.state is None]


def _status_row(change: StatusChange) -> dict[str, Any]:
    row = _status_params(change)
    row["since"] = change.since.isoformat()
    return row


def _status_params(change: StatusChange) -> dict[str, Any]:
    return {name: getattr(change, name) for name in _STATUS_COLUMNS}


def _joined_arrays(arrays: list[str | None]) -> str | None:
    """The non-empty JSON arrays `arrays` as one array: their elements, in order, between one
    pair of brackets. None if there are none."""
    elements = [array[1:-1] for array in arrays if array is not None]
    return f"[{','.join(elements)}]" if elements else None


def _json_rows(rows: list[Any]) -> str:
    return json.dumps(rows, separators=(",", ":"))


def _payload(events: Sequence[AlertEvent], tables: SharedTables) -> list[dict[str, Any]]:
    """The events as json_to_recordset's rows: SQLite's parameters (`_event_params`) under the
    names of the columns the insert reads, no others."""
    columns = tables.alert_events.c
    rows = []
    for event in events:
        params = _event_params(event)
        params["triggered_at"] = event.triggered_at.isoformat()
        rows.append({columns[key].name: params[key] for key in _INSERTED})
    return rows


def _resolution_row(resolution: Resolution) -> dict[str, Any]:
    return {
        "id": resolution.event_id,
        "resolved_at": resolution.resolved_at.isoformat(),
        "value": resolution.value,
    }


# SQLite's two writes: SQLAlchemy Core statements, run with executemany.


@functools.cache
def _sqlite_insert(tables: SharedTables, *, guarded: bool) -> Any:
    events = tables.alert_events
    columns = [*_INSERTED, "is_resolved"]
    source = select(*(bindparam(key, type_=events.c[key].type) for key in columns)).where(
        ~exists().where(events.c.alert_id == bindparam("alert_id"), tables.open_event_predicate)
    )
    statement = sqlite.insert(events).from_select(columns, source)
    if guarded:
        statement = statement.on_conflict_do_nothing(
            index_elements=[events.c.alert_id], index_where=tables.open_event_predicate
        )
    return statement


@functools.cache
def _sqlite_resolve(tables: SharedTables) -> Any:
    alert_events = tables.alert_events
    return (
        update(alert_events)
        .where(alert_events.c.id == bindparam("event_id"), tables.open_event_predicate)
        .values(
            is_resolved=True,
            resolved_at=bindparam("resolved_at"),
            resolution_value=bindparam("value"),
        )
    )


def _sqlite_set_status() -> Any:
    insert = sqlite.insert(alert_status)
    return insert.on_conflict_do_update(
        index_elements=[alert_status.c.alert_id],
        set_={name: insert.excluded[name] for name in _STATUS_COLUMNS[1:]},
    )


_SQLITE_SET_STATUS = _sqlite_set_status()

_SQLITE_CLEAR_STATUS = alert_status.delete().where(alert_status.c.alert_id == bindparam("alert_id"))


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
