"""The event-writing port: a cycle's changes in a few statements, written at the end of the
cycle on SQLite (SQLAlchemy Core statements) and while it goes on on PostgreSQL (SQL text).

Alerts' status changes (ADR 13) go to the worker's status table with them; without that table
(a database not yet upgraded), a writer hands them back in `unrecorded`, for the unit of work to
keep in memory once the cycle commits. State changes (ADR 16) go to the state table; only a
database that has it gives alerts options, and so states.

Which index keeps alert_events to one open event (`guarded()`, ADR 4): the one per alert and
kind, its predecessor per alert (a database upgraded before events had kinds, whose alerts have
no options and so open only threshold events), or none, when a NOT EXISTS check does its work
within one worker.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Final

import attrs
from sqlalchemy import (
    Column,
    Connection,
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.notify_tables import outbox
from reef_alerts.adapters.tables import (
    OLD_OPEN_EVENT_INDEX,
    OPEN_EVENT_INDEX,
    EventKindOf,
    SharedTables,
    alert_state,
    alert_status,
    trend_state,
)
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
        guarded: Callable[[], str | None],
        status_table: bool = True,
        outbox: bool = False,
    ) -> None:
        """`guarded()`: the one-open-event index's name, None when there is none (asked at
        the first insert). `status_table`: whether alert_status exists to be written.
        `outbox`: whether the notification outbox exists, to be written with the events."""
        self._connection = connection
        self._tables = tables
        self._guarded = guarded
        self._status_table = status_table
        self._outbox = outbox
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
            events = self._tables.alert_events
            before = self._connection.scalar(select(func.max(events.c.id))) or 0
            self._connection.execute(
                _sqlite_insert(self._tables, guarded=self._guarded()),
                [_event_params(event) for event in opened],
            )
            if self._outbox:  # every row above `before` is one just inserted: one writer at a time
                self._connection.execute(_sqlite_told(self._tables), {"before": before})
        if resolved:
            self._connection.execute(
                _sqlite_resolve(self._tables), [_resolution_params(r) for r in resolved]
            )
            if self._outbox:
                self._connection.execute(
                    insert(outbox),
                    [
                        {"event_id": r.event_id, "change": "resolved", "created_at": r.resolved_at}
                        for r in resolved
                    ],
                )
        statuses = [change for changes in pending for change in changes.statuses]
        if not self._status_table:
            self.unrecorded.extend(statuses)
        else:
            _STATUSES.write_sqlite(self._connection, statuses)
        _STATES.write_sqlite(self._connection, [c for changes in pending for c in changes.states])
        _TREND_STATES.write_sqlite(
            self._connection, [c for changes in pending for c in changes.trend_states]
        )
        # No other writer can have opened or closed these events since the cycle's read (see
        # above), so everything decided was written.
        return AppliedChanges(
            frozenset(
                (event.alert_id, event.kind.value) for event in opened if event.alert_id is not None
            ),
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
    workers can never open a second event of a kind for an alert; without it (a legacy database
    not yet upgraded) a NOT EXISTS check still prevents duplicates within one worker.
    """

    def __init__(
        self,
        connection: Connection,
        tables: SharedTables,
        *,
        guarded: Callable[[], str | None],
        thread: StatementThread,
        status_table: bool = True,
        outbox: bool = False,
    ) -> None:
        """`guarded()`: the one-open-event index's name, None when there is none (asked at
        the first insert). `status_table`: whether alert_status exists to be written.
        `outbox`: whether the notification outbox exists, to be written with the events."""
        self._connection = connection
        self._tables = tables
        self._writes_sql = _postgres_writes(tables, told=outbox)
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
        inserted: frozenset[tuple[int, str]] = frozenset()
        closed: frozenset[int] = frozenset()
        sql = self._writes_sql
        opened = _joined_arrays([encoded.opened for encoded in pending])
        if opened is not None:
            insert = sql.inserts[self._guarded()]
            inserted = frozenset((row[0], row[1]) for row in self._execute(insert, opened))
        resolved = _joined_arrays([encoded.resolved for encoded in pending])
        if resolved is not None:
            closed = frozenset(row[0] for row in self._execute(sql.resolve, resolved))
        for table, rows in (
            (_STATUSES, [encoded.statuses for encoded in pending]),
            (_STATES, [encoded.states for encoded in pending]),
            (_TREND_STATES, [encoded.trend_states for encoded in pending]),
        ):
            table.write_postgres(self._connection, rows)
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
    inserts: Mapping[str | None, str]
    """The insert, by the name of the index that guards it (None: no index)."""
    resolve: str


@functools.cache
def _postgres_writes(tables: SharedTables, *, told: bool = False) -> _PostgresWrites:
    """The writes; `told`: each also writes the notification outbox's rows for the events it
    inserted or resolved, in the same statement (issue 15)."""
    events = tables.alert_events
    columns = [events.c[key] for key in _INSERTED]
    names = [column.name for column in columns]
    opened = ", ".join(f"{column.name} {_pg_type(column)}" for column in columns)
    kind = _pg_kind(events)
    insert = (
        f"INSERT INTO {events.name} ({', '.join(names)}, is_resolved)\n"
        f"SELECT {', '.join(f'opened.{name}' for name in names)}, false\n"
        f"FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS opened({opened})\n"
        "{only_new}\n"
        f"RETURNING {events.name}.alert_id, {_pg_kind(events, qualified=True)} AS kind"
    )
    resolve = (
        f"UPDATE {events.name}\n"
        "SET is_resolved = true, resolved_at = resolution.resolved_at, "
        "resolution_value = resolution.value\n"
        f"FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS resolution({{resolution}})\n"
        f"WHERE {events.name}.id = resolution.id AND NOT {events.name}.is_resolved\n"
        f"RETURNING {events.name}.id"
    )
    if told:
        insert = _telling(insert, events.name, "opened", "triggered_at", "alert_id, kind")
        resolve = _telling(resolve, events.name, "resolved", "resolved_at", "id")
    resolution = ", ".join(f"{field} {_pg_type(events.c[c])}" for field, c in _RESOLVED.items())
    existing, new = events.alias("existing"), events.alias("opened")
    return _PostgresWrites(
        # The one-open-event index is the arbiter; a NOT EXISTS as well would cost an anti-join
        # for nothing.
        inserts={
            OPEN_EVENT_INDEX: insert.format(
                only_new=f"ON CONFLICT (alert_id, {kind}) WHERE NOT is_resolved DO NOTHING"
            ),
            OLD_OPEN_EVENT_INDEX: insert.format(
                only_new="ON CONFLICT (alert_id) WHERE NOT is_resolved DO NOTHING"
            ),
            None: insert.format(
                only_new=f"WHERE NOT EXISTS (SELECT FROM {events.name} AS existing "
                "WHERE existing.alert_id = opened.alert_id AND NOT existing.is_resolved "
                f"AND {_pg_kind(existing, qualified=True)} = {_pg_kind(new, qualified=True)})"
            ),
        },
        resolve=resolve.format(resolution=resolution),
    )


def _telling(write: str, events: str, change: str, at: str, returned: str) -> str:
    """`write` (an INSERT or UPDATE of `events` ... RETURNING `returned`) that also writes an
    outbox row of `change` for each event it wrote, at the event's column `at`; it still
    returns `returned`. One statement, so the rows commit with the events or not at all."""
    return (
        f"WITH written AS (\n{write}, {events}.id AS event_id, {events}.{at} AS at\n),\n"
        f"told AS (INSERT INTO {outbox.name} (event_id, change, created_at) "
        f"SELECT event_id, '{change}', at FROM written)\n"
        f"SELECT {returned} FROM written"
    )


_POSTGRESQL: Final = postgresql.dialect()  # type: ignore[no-untyped-call]


def _pg_type(column: Column[Any]) -> str:
    return str(column.type.compile(dialect=_POSTGRESQL))


def _pg_kind(events: Any, *, qualified: bool = False) -> str:
    """The kind of an event of `events` (alert_events or an alias of it), as PostgreSQL text:
    unqualified, it matches the one-open-event index's expression."""
    kind = EventKindOf(events.c.metadata_)
    return str(kind.compile(dialect=_POSTGRESQL, compile_kwargs={"include_table": qualified}))


@attrs.frozen
class _Encoded:
    """A submission's changes as JSON arrays for json_to_recordset (None where it has none)."""

    opened: str | None
    resolved: str | None
    statuses: _KeptRows = None
    states: _KeptRows = None
    trend_states: _KeptRows = None

    @classmethod
    def of(cls, changes: EventChanges, tables: SharedTables) -> _Encoded:
        return cls(
            _json_rows(_payload(changes.opened, tables)) if changes.opened else None,
            _json_rows([_resolution_row(r) for r in changes.resolved])
            if changes.resolved
            else None,
            _STATUSES.encode(changes.statuses),
            _STATES.encode(changes.states),
            _TREND_STATES.encode(changes.trend_states),
        )


_KeptRows = tuple[str | None, str | None] | None
"""A submission's rows of one of the worker's per-alert tables, as JSON arrays: those to write,
and the ids of the alerts whose rows go; None when it has none."""


@attrs.frozen
class _PerAlertTable:
    """One of the worker's tables of one row per alert (statuses, ADR 13; states, ADR 16): a
    cycle's changes set an alert's row, or remove it where `key` is None. One statement for
    those set and one for those removed, on either database.

    A change has the table's columns as fields, by the same names. Rows are written only for
    alerts that still exist, so that an alert the web app deleted since the cycle's read, whose
    rows the foreign key removes, does not fail the cycle (ADR 16).
    """

    table: Table
    keys: tuple[str, ...]
    """The fields that are all None in a change that removes the alert's row."""

    @functools.cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.table.c.keys())

    def encode(self, changes: Sequence[Any]) -> _KeptRows:
        set_, removed = self._split(changes)
        if not (set_ or removed):
            return None
        return (
            _json_rows([self._row(change, iso=True) for change in set_]) if set_ else None,
            _json_rows([change.alert_id for change in removed]) if removed else None,
        )

    def write_postgres(self, connection: Connection, encoded: list[_KeptRows]) -> None:
        for sql, index in ((self._pg_set, 0), (self._pg_remove, 1)):
            rows = _joined_arrays([rows[index] for rows in encoded if rows is not None])
            if rows is not None:
                connection.exec_driver_sql(sql, {"rows": rows})

    def write_sqlite(self, connection: Connection, changes: Sequence[Any]) -> None:
        set_, removed = self._split(changes)
        if set_:
            connection.execute(self._sqlite_set, [self._row(change) for change in set_])
        if removed:
            connection.execute(
                self.table.delete().where(self.table.c.alert_id == bindparam("alert_id")),
                [{"alert_id": change.alert_id} for change in removed],
            )

    def _split(self, changes: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        set_: list[Any] = []
        removed: list[Any] = []
        for change in changes:
            kept = any(getattr(change, key) is not None for key in self.keys)
            (set_ if kept else removed).append(change)
        return set_, removed

    def _row(self, change: Any, *, iso: bool = False) -> dict[str, Any]:
        row = {name: getattr(change, name) for name in self.columns}
        if iso:
            row.update((k, v.isoformat()) for k, v in row.items() if isinstance(v, datetime))
        return row

    @functools.cached_property
    def _pg_set(self) -> str:
        names, table = self.columns, self.table
        return (
            f"INSERT INTO {table.name} ({', '.join(names)})\n"
            f"SELECT {', '.join(f'given.{name}' for name in names)}\n"
            "FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS given("
            + ", ".join(f"{name} {_pg_type(table.c[name])}" for name in names)
            + ")\n"
            "WHERE EXISTS (SELECT FROM alerts WHERE alerts.id = given.alert_id)\n"
            "ON CONFLICT (alert_id) DO UPDATE SET "
            + ", ".join(f"{name} = EXCLUDED.{name}" for name in names[1:])
        )

    @functools.cached_property
    def _pg_remove(self) -> str:
        return (
            f"DELETE FROM {self.table.name} WHERE alert_id IN "
            "(SELECT CAST(value AS INTEGER) FROM json_array_elements_text(CAST(%(rows)s AS JSON)))"
        )

    @functools.cached_property
    def _sqlite_set(self) -> Any:
        # SQLite lets one writer in at a time, and the cycle's transaction began before its read:
        # no alert it read can have gone since.
        insert = sqlite.insert(self.table)
        return insert.on_conflict_do_update(
            index_elements=[self.table.c.alert_id],
            set_={name: insert.excluded[name] for name in self.columns[1:]},
        )


_STATUSES = _PerAlertTable(alert_status, ("state",))
_STATES = _PerAlertTable(alert_state, ("pending_since",))
_TREND_STATES = _PerAlertTable(trend_state, ("forecast_since", "rate_since"))


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
def _sqlite_insert(tables: SharedTables, *, guarded: str | None) -> Any:
    events = tables.alert_events
    columns = [*_INSERTED, "is_resolved"]
    source = select(*(bindparam(key, type_=events.c[key].type) for key in columns)).where(
        ~exists().where(
            events.c.alert_id == bindparam("alert_id"),
            tables.open_event_predicate,
            tables.event_kind == bindparam("kind"),
        )
    )
    statement = sqlite.insert(events).from_select(columns, source)
    if guarded is not None:
        target: list[Any] = [events.c.alert_id]
        if guarded == OPEN_EVENT_INDEX:
            target.append(tables.event_kind)
        statement = statement.on_conflict_do_nothing(
            index_elements=target, index_where=tables.open_event_predicate
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


@functools.cache
def _sqlite_told(tables: SharedTables) -> Any:
    """The outbox's rows for the events inserted above the id `before`."""
    events = tables.alert_events
    told = select(events.c.id, literal("opened"), events.c.triggered_at).where(
        events.c.id > bindparam("before")
    )
    return insert(outbox).from_select(["event_id", "change", "created_at"], told)


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
        "kind": event.kind.value,
    }


def _resolution_params(resolution: Resolution) -> dict[str, Any]:
    return {
        "event_id": resolution.event_id,
        "resolved_at": resolution.resolved_at,
        "value": resolution.value,
    }
