"""The snapshot port on SQLAlchemy Core: one cycle's enabled alerts, each with its device, its
device's newest reading and its open event, read as one consistent snapshot (ADR 3).

PostgreSQL's one statement is declared as a server-side cursor and fetched on the unit of work's
statement thread, batches ahead of the cycle, so the server's work overlaps the worker's (ADR 8).
SQLite's two statements run at once, in the cycle's transaction, which began IMMEDIATE, so no
other writer can commit between them; a helper thread gains SQLite nothing, since its driver lets
go of the GIL for every row it steps.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs
from sqlalchemy import Connection, Executable, select
from sqlalchemy.exc import OperationalError

from reef_alerts.adapters.background import StatementThread, prefetched
from reef_alerts.adapters.notify_tables import silences as silence_table
from reef_alerts.adapters.outbox import silence_of
from reef_alerts.adapters.rows import (
    ALERT,
    ALERT_DEVICE_ID,
    CONTEXT,
    EVENT_ID,
    FORECAST_EVENT_ID,
    NO_DATA_EVENT_ID,
    RATE_EVENT_ID,
    RULE,
    STATUS,
    STATUS_STATE,
    TREND,
    TREND_MARK,
    Context,
    decode_context,
    decode_rule,
    decode_status,
    decode_trend,
    decode_windows,
)
from reef_alerts.adapters.snapshot_queries import (
    CONTEXT_COLUMNS,
    RULE_COLUMNS,
    alerts_query,
    compile_snapshot,
    compiled_snapshot,
    watched_devices_query,
    windows_query,
)
from reef_alerts.adapters.tables import SharedTables
from reef_alerts.domain import Reading
from reef_alerts.domain.notices import Silence
from reef_alerts.ports import (
    WHOLE,
    AlertSnapshot,
    Focus,
    RecordedStatus,
    Shard,
    StoredAlert,
    StoredRule,
)

_cursor_numbers = itertools.count(1)
_NO_DEVICE = Context(None, None)


def _at_least_one(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class SnapshotBatches:
    """How PostgreSQL's snapshot is fetched (ADR 8)."""

    first: int = attrs.field(default=500, validator=_at_least_one)
    """Rows of the first fetch: the cycle starts judging after a few milliseconds."""
    largest: int = attrs.field(default=5_000, validator=_at_least_one)
    """Rows of a fetch once under way (fetches double up to it): few round trips, a few
    megabytes a batch."""
    ahead: int = attrs.field(default=2, validator=_at_least_one)
    """Fetches queued on the statement thread ahead of the cycle: with two, the thread starts
    the next as soon as one ends."""


DEFAULT_BATCHES = SnapshotBatches()


class SqlSnapshotReader:
    """Reads one cycle's snapshot; iterate it once.

    With a `thread` (PostgreSQL), the snapshot is declared and fetched on it, in `batches`.
    """

    def __init__(
        self,
        connection: Connection,
        tables: SharedTables,
        thread: StatementThread | None = None,
        batches: SnapshotBatches = DEFAULT_BATCHES,
        remembered: Callable[[int], RecordedStatus | None] | None = None,
        *,
        rules: bool = True,
        trends: bool = True,
        silences: bool = False,
    ) -> None:
        """`remembered`: where alerts' statuses are kept when the database has no status table
        (ADR 13); None when it has one, and they are read with the snapshot. `rules`, `trends`:
        whether the database has the rules and state tables, and the trend ones, to read with
        it; `silences`, whether it has the notification tables (issue 15)."""
        self._connection = connection
        self._tables = tables
        self._thread = thread
        self._batches = batches
        self._remembered = remembered
        self._rules = rules
        self._trends = rules and trends
        self._silences = silences

    @property
    def remembers(self) -> bool:
        return self._rules

    @property
    def trends(self) -> bool:
        return self._trends

    def windows(
        self, since: Mapping[int, datetime], until: datetime
    ) -> Mapping[int, Sequence[Reading]]:
        if not since:
            return {}
        as_text = self._thread is not None
        statement = windows_query(self._tables, since, until, as_text=as_text)
        if self._thread is None:
            rows = self._fetch_all(statement)
        else:
            rows = self._thread.read(self._rows_of, statement).result()
        return decode_windows(rows)

    def _rows_of(self, statement: Executable) -> Sequence[Any]:
        return self._connection.execute(statement).cursor.fetchall()

    def silences(self, now: datetime) -> Sequence[Silence]:
        if not self._silences:
            return ()
        statement = select(silence_table).where(silence_table.c.ends_at > now)
        if self._thread is None:
            rows = self._processed(statement)
        else:
            rows = self._thread.read(self._processed, statement).result()
        return [silence_of(row) for row in rows]

    def _processed(self, statement: Executable) -> Sequence[Any]:
        return self._connection.execute(statement).all()

    def enabled_alerts(
        self, shard: Shard = WHOLE, focus: Focus | None = None
    ) -> Iterator[AlertSnapshot]:
        snapshots = self._read(shard, focus)
        if self._remembered is None:
            return snapshots
        remembered = self._remembered
        return (s._replace(status=remembered(s.alert_id)) for s in snapshots)

    def _read(self, shard: Shard, focus: Focus | None) -> Iterator[AlertSnapshot]:
        if self._thread is None:
            return self._sqlite_snapshots(shard, focus)
        statuses = self._remembered is None
        dialect, tables = self._connection.dialect, self._tables
        sql, params = (
            compiled_snapshot(dialect, tables, shard, statuses, self._rules, self._trends)
            if focus is None
            else compile_snapshot(
                dialect, tables, shard, statuses, self._rules, self._trends, focus
            )
        )
        fetch = self._thread.read(self._declare, sql, dict(params)).result()
        batches = self._batches
        return _snapshots(
            prefetched(
                fetch,
                self._thread,
                first=batches.first,
                largest=batches.largest,
                ahead=batches.ahead,
            )
        )

    def _declare(self, sql: str, params: Mapping[str, Any]) -> Callable[[int], Sequence[Any]]:
        """A server-side cursor over the query `sql`, and a function fetching its next `size`
        rows.

        Declared and fetched through SQLAlchemy, not as a psycopg2 named cursor, so that its
        error handling (a lost connection is invalidated and the pool reconnects) and its
        statement events apply. The rows are the driver's own tuples: these columns need none of
        SQLAlchemy's per-row processing (ADR 7).
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

    def _sqlite_snapshots(self, shard: Shard, focus: Focus | None) -> Iterator[AlertSnapshot]:
        """Both statements run now, like PostgreSQL's DECLARE: the read has begun on return."""
        devices = self._fetch_all(watched_devices_query(self._tables, shard, focus))
        statuses = self._remembered is None
        rows = self._fetch_all(
            alerts_query(
                self._tables,
                shard,
                statuses=statuses,
                rules=self._rules,
                trends=self._trends,
                focus=focus,
            )
        )
        return _alerts_with(rows, {row[0]: decode_context(row) for row in devices})

    def _fetch_all(self, statement: Executable) -> Sequence[Any]:
        """The statement's rows, as the driver gives them.

        SQLite keeps text that is not UTF-8 if it is given some, and its driver then fails the
        whole statement on that row. Only then is the statement read again, with such text
        decoded leniently (U+FFFD for what is not UTF-8), so that the row goes on to be judged,
        or named as the problem it is, like any other (ADR 12).
        """
        try:
            return self._connection.execute(statement).cursor.fetchall()
        except (OperationalError, sqlite3.OperationalError) as error:
            if "decode" not in str(error):
                raise
        with _lenient_text(self._connection):
            return self._connection.execute(statement).cursor.fetchall()


@contextlib.contextmanager
def _lenient_text(connection: Connection) -> Iterator[None]:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    strict = driver.text_factory
    driver.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        yield
    finally:
        driver.text_factory = strict


_SQLITE_SHIFT: Final = len(CONTEXT_COLUMNS)
"""SQLite's alert rows are the snapshot's columns without the device's: the positions after
the alert's columns move back by as many."""
_SQLITE_EVENT_ID: Final = EVENT_ID - _SQLITE_SHIFT
_SQLITE_NO_DATA_EVENT_ID: Final = NO_DATA_EVENT_ID - _SQLITE_SHIFT
_SQLITE_FORECAST_EVENT_ID: Final = FORECAST_EVENT_ID - _SQLITE_SHIFT
_SQLITE_RATE_EVENT_ID: Final = RATE_EVENT_ID - _SQLITE_SHIFT
_SQLITE_STATUS: Final = slice(STATUS.start - _SQLITE_SHIFT, STATUS.stop - _SQLITE_SHIFT)
_SQLITE_RULE: Final = slice(RULE.start - _SQLITE_SHIFT, RULE.stop - _SQLITE_SHIFT)
_SQLITE_TREND_MARK: Final = TREND_MARK - _SQLITE_SHIFT
_SQLITE_TREND: Final = slice(TREND.start - _SQLITE_SHIFT, TREND.stop - _SQLITE_SHIFT)


def _alerts_with(rows: Sequence[Any], contexts: Mapping[int, Context]) -> Iterator[AlertSnapshot]:
    """SQLite's alert rows as AlertSnapshots, with their devices' contexts."""
    status = _SQLITE_STATUS
    for row in rows:
        device, reading, problem = contexts.get(row[ALERT_DEVICE_ID], _NO_DEVICE)
        rule, pending_since = _rule(row[_SQLITE_RULE])
        yield AlertSnapshot(
            StoredAlert._make(row[ALERT]),
            device,
            reading,
            row[_SQLITE_EVENT_ID],
            problem,
            None if row[status.start] is None else decode_status(*row[status]),
            row[_SQLITE_NO_DATA_EVENT_ID],
            rule,
            pending_since,
            row[_SQLITE_FORECAST_EVENT_ID],
            row[_SQLITE_RATE_EVENT_ID],
            *(_NO_TREND if row[_SQLITE_TREND_MARK] is None else decode_trend(*row[_SQLITE_TREND])),
        )


_NO_RULE: Final = (None,) * len(RULE_COLUMNS)
_NOTHING: Final = (None, None)


def _rule(columns: Sequence[Any]) -> tuple[StoredRule | None, datetime | None]:
    """decode_rule, skipped for the alerts that have neither options nor state: nearly all."""
    if columns == _NO_RULE:
        return _NOTHING
    return decode_rule(*columns)


_NO_TREND: Final = (None, None, None)
"""decode_trend's answer for an alert with no trend rules or state row."""


def _snapshots(batches: Iterable[Sequence[Any]]) -> Iterator[AlertSnapshot]:
    """PostgreSQL's snapshot rows as AlertSnapshots, each device and reading decoded once."""
    contexts: dict[int, Context] = {}
    for rows in batches:
        for row in rows:
            device_id = row[ALERT_DEVICE_ID]
            context = contexts.get(device_id)
            if context is None:
                context = contexts[device_id] = decode_context(row[CONTEXT])
            device, reading, problem = context
            rule, pending_since = _rule(row[RULE])
            yield AlertSnapshot(
                StoredAlert._make(row[ALERT]),
                device,
                reading,
                row[EVENT_ID],
                problem,
                None if row[STATUS_STATE] is None else decode_status(*row[STATUS]),
                row[NO_DATA_EVENT_ID],
                rule,
                pending_since,
                row[FORECAST_EVENT_ID],
                row[RATE_EVENT_ID],
                *(_NO_TREND if row[TREND_MARK] is None else decode_trend(*row[TREND])),
            )
