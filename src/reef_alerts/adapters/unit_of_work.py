"""The unit of work: one connection, one transaction, for one cycle."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from datetime import timedelta
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, RootTransaction

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.coordination import SqlLeaseKeeper
from reef_alerts.adapters.events import OpenEventIndex, PostgresEventWriter, SqliteEventWriter
from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.snapshots import DEFAULT_BATCHES, SnapshotBatches, SqlSnapshotReader
from reef_alerts.adapters.tables import SharedTables

_CANCEL_WAIT_SECONDS = 3


class KnownTables:
    """The shared tables of a worker's database, as its generation declares them: told once, by
    the start-up check or else by the first unit of work that connects (ADR 0011)."""

    def __init__(self, tables: SharedTables | None = None) -> None:
        self._tables = tables

    def of(self, connection: Connection) -> SharedTables:
        """The tables, told on `connection` unless already known."""
        if self._tables is None:
            self._tables = detect_tables(connection)
        return self._tables


class SqlUnitOfWork:
    """A cycle's transaction: what it writes commits together, or not at all."""

    snapshots: SqlSnapshotReader
    events: SqliteEventWriter | PostgresEventWriter
    leases: SqlLeaseKeeper

    def __init__(
        self,
        engine: Engine,
        *,
        tables: KnownTables | None = None,
        index: OpenEventIndex | None = None,
        lease_ttl: timedelta | None = None,
        batches: SnapshotBatches = DEFAULT_BATCHES,
    ) -> None:
        """`tables`: the database's generation, if known; by default it is told on connecting.
        `index`: whether the database has the one-open-event index (see `schema.check`);
        by default it is taken to have it. `lease_ttl`: how long a renewed partition lease
        lasts, when the worker leases any."""
        self._engine = engine
        self._tables = tables or KnownTables()
        self._batches = batches
        if index is None:
            index = OpenEventIndex(logging.getLogger(__name__), present=True)
        self._index = index
        self._lease_ttl = lease_ttl
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._thread: StatementThread | None = None

    def __enter__(self) -> Self:
        self._connection = self._engine.connect()
        try:
            self._transaction = self._connection.begin()
            tables = self._tables.of(self._connection)
        except BaseException:
            self._connection.close()
            raise
        # PostgreSQL's statements go through a helper thread, to overlap the server's work with
        # the cycle's; SQLite's driver holds the GIL too much for that to pay (see snapshots.py).
        # Asked once per unit of work at most, at its first insert, whatever the writes.
        guarded = functools.cache(functools.partial(self._index.present, self._connection))
        if self._connection.dialect.name == "postgresql":
            self._thread = StatementThread()
            self.events = PostgresEventWriter(
                self._connection, tables, guarded=guarded, thread=self._thread
            )
        else:
            self.events = SqliteEventWriter(self._connection, tables, guarded=guarded)
        self.snapshots = SqlSnapshotReader(self._connection, tables, self._thread, self._batches)
        self.leases = SqlLeaseKeeper(self._connection, self._lease_ttl)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        try:
            if exc_type is not None and self._thread is not None:
                self._cancel_statement_in_flight()
            self._stop_thread()
            self.rollback()
        except BaseException:
            # The helper thread may still be using the connection: never give it back to the pool.
            self._connection.invalidate()
            raise
        finally:
            self._connection.close()
            self._connection = self._transaction = None

    def commit(self) -> None:
        """Commit, once every submitted write is done; raises, committing nothing, if one failed."""
        assert self._transaction is not None, "commit() outside the unit of work"
        self.events.flush()
        self._stop_thread()
        self._transaction.commit()

    def _cancel_statement_in_flight(self) -> None:
        """Ask the server to stop whatever the thread is running (a FETCH, an INSERT), which is
        of no use once the cycle failed, rather than wait for it.

        Best effort, and for a few seconds at most: the server may be why the cycle failed, and
        a cancel request to a vanished host would wait for TCP to give up on it.
        """
        assert self._connection is not None
        driver_connection = self._connection.connection.driver_connection

        def cancel() -> None:
            with contextlib.suppress(Exception):
                driver_connection.cancel()  # type: ignore[union-attr]

        canceller = threading.Thread(target=cancel, name="reef-alerts-cancel", daemon=True)
        canceller.start()
        canceller.join(timeout=_CANCEL_WAIT_SECONDS)

    def _stop_thread(self) -> None:
        """Let the statement in flight finish and drop the rest (a read-ahead nobody wants)."""
        if self._thread is not None:
            self._thread.close()
            self._thread = None

    def rollback(self) -> None:
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()


class SqlUnitOfWorkFactory:
    """Makes a unit of work per cycle, all sharing what is known of the database's tables and of
    its one-open-event index."""

    def __init__(
        self,
        engine: Engine,
        log: logging.Logger,
        lease_ttl: timedelta | None = None,
        tables: SharedTables | None = None,
        batches: SnapshotBatches = DEFAULT_BATCHES,
    ) -> None:
        """`tables`: the database's, when the start-up check told its generation."""
        self._engine = engine
        self._tables = KnownTables(tables)
        self._index = OpenEventIndex(log)
        self._lease_ttl = lease_ttl
        self._batches = batches

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self._engine,
            tables=self._tables,
            index=self._index,
            lease_ttl=self._lease_ttl,
            batches=self._batches,
        )
