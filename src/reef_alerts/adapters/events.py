"""The event-writing port on SQLAlchemy Core: a cycle's changes in a few statements."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    column,
    exists,
    false,
    func,
    select,
    types,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.tables import (
    OPEN_EVENT_PREDICATE,
    UTCDateTime,
    alert_events,
    open_event_index,
)
from reef_alerts.domain import AlertEvent
from reef_alerts.ports import (
    AppliedChanges,
    EventChanges,
    Resolution,
)


class SqlEventWriter:
    """Writes a cycle's event changes, a constant number of statements per submission.

    With `guarded`, the partial unique index exists and every insert names it as its ON CONFLICT
    target, so concurrent workers can never open a second event for an alert. Without it (a legacy
    database not yet upgraded) a NOT EXISTS check still prevents duplicates within one worker.

    With a `thread`, submissions are written on it while the cycle goes on judging.
    """

    def __init__(
        self, connection: Connection, *, guarded: bool, thread: StatementThread | None = None
    ) -> None:
        self._connection = connection
        self._guarded = guarded
        self._thread = thread
        self._postgresql = connection.dialect.name == "postgresql"
        self._written: list[AppliedChanges] = []
        self._writing: list[Future[AppliedChanges]] = []

    def submit(self, changes: EventChanges) -> None:
        if not changes:
            return
        if not self._postgresql:
            self._written.append(self._sqlite_write(changes))
            return
        # The JSON payloads are encoded here and only the statements run on the thread: the
        # thread's Python work holds the GIL the cycle judges with, its waits on the server do not.
        write = functools.partial(self._pg_write, *_pg_payloads(changes))
        if self._thread is None:
            self._written.append(write())
        else:
            self._writing.append(self._thread.submit(write))

    def flush(self) -> AppliedChanges:
        written = [*self._written, *(future.result() for future in self._writing)]
        self._written, self._writing = [], []
        return AppliedChanges(
            frozenset().union(*(changes.opened for changes in written)),
            frozenset().union(*(changes.resolved for changes in written)),
        )

    def _sqlite_write(self, changes: EventChanges) -> AppliedChanges:
        if changes.opened:
            self._connection.execute(
                _sqlite_insert(guarded=self._guarded),
                [_event_params(event) for event in changes.opened],
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

    def _pg_write(self, opened: str | None, resolved: str | None) -> AppliedChanges:
        """Insert the events of the JSON array `opened`, resolve those of `resolved`."""
        inserted: frozenset[int] = frozenset()
        closed: frozenset[int] = frozenset()
        if opened is not None:
            insert = _pg_insert(guarded=self._guarded)
            inserted = frozenset(self._connection.scalars(insert, {"rows": opened}))
        if resolved is not None:
            closed = frozenset(self._connection.scalars(_pg_resolve(), {"rows": resolved}))
        return AppliedChanges(inserted, closed)


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


def _pg_payloads(changes: EventChanges) -> tuple[str | None, str | None]:
    """The opened events and the resolutions as JSON arrays for json_to_recordset."""
    opened = _json_rows(_payload(changes.opened)) if changes.opened else None
    resolved = (
        _json_rows([_resolution_row(r) for r in changes.resolved]) if changes.resolved else None
    )
    return opened, resolved


def _json_rows(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"))


def _rows_param() -> Any:
    """The bound JSON array of a batched write, passed as text already encoded."""
    return cast(bindparam("rows", type_=Text), postgresql.JSON)


@functools.cache
def _pg_insert(*, guarded: bool) -> Any:
    """The opened events' INSERT, built once: its construct is the same every cycle."""
    rows = func.json_to_recordset(_rows_param()).table_valued(
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
    )
    if not guarded:
        source = source.where(~_has_open_event(rows.c.alert_id))
    statement = postgresql.insert(alert_events).from_select(_INSERT_COLUMNS, source)
    if guarded:
        # The index is the arbiter; a NOT EXISTS as well would cost an anti-join for nothing.
        statement = statement.on_conflict_do_nothing(constraint=open_event_index)
    return statement.returning(alert_events.c.alert_id)


def _has_open_event(alert_id: Any) -> Any:
    return exists().where(alert_events.c.alert_id == alert_id, OPEN_EVENT_PREDICATE)


@functools.cache
def _pg_resolve() -> Any:
    rows = (
        func.json_to_recordset(_rows_param())
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
