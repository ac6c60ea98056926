"""The unit of work: one connection, one transaction, for one cycle."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import weakref
from datetime import timedelta
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, RootTransaction

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.coordination import SqlLeaseKeeper
from reef_alerts.adapters.events import PostgresEventWriter, SqliteEventWriter
from reef_alerts.adapters.facts import WorkerFacts
from reef_alerts.adapters.snapshots import DEFAULT_BATCHES, SnapshotBatches, SqlSnapshotReader
from reef_alerts.adapters.tables import OPEN_EVENT_INDEX, SharedTables

_CANCEL_WAIT_SECONDS = 3


class SqlUnitOfWork:
    """A cycle's transaction: what it writes commits together, or not at all."""

    snapshots: SqlSnapshotReader
    events: SqliteEventWriter | PostgresEventWriter
    leases: SqlLeaseKeeper

    def __init__(
        self,
        engine: Engine,
        *,
        facts: WorkerFacts | None = None,
        lease_ttl: timedelta | None = None,
        batches: SnapshotBatches = DEFAULT_BATCHES,
    ) -> None:
        """`facts`: what the worker knows of the database, shared by its units of work; by
        default the one-open-event index is taken to exist and the rest is found out.
        `lease_ttl`: how long a renewed partition lease lasts, when the worker leases any."""
        self._engine = engine
        self._facts = facts or WorkerFacts(
            logging.getLogger(__name__), open_event_index=OPEN_EVENT_INDEX
        )
        self._batches = batches
        self._lease_ttl = lease_ttl
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._thread: StatementThread | None = None

    def __enter__(self) -> Self:
        self._connection = self._engine.connect()
        try:
            self._transaction = self._connection.begin()
            tables = self._facts.tables(self._connection)
            status_table, rule_tables, index_looked_up, trend_tables, outbox = self._facts.look(
                self._connection
            )
        except BaseException:
            self._connection.close()
            raise
        # PostgreSQL's statements go through a helper thread, to overlap the server's work with
        # the cycle's; SQLite's driver holds the GIL too much for that to pay (see snapshots.py).
        # Asked once per unit of work at most, at its first insert, whatever the writes.
        guarded = functools.cache(functools.partial(self._facts.open_event_index, self._connection))
        if index_looked_up:
            known = self._facts.index
            guarded = functools.cache(lambda: known)
        if self._connection.dialect.name == "postgresql":
            self._thread = StatementThread()
            self.events = PostgresEventWriter(
                self._connection,
                tables,
                guarded=guarded,
                thread=self._thread,
                status_table=status_table,
                outbox=outbox,
            )
        else:
            self.events = SqliteEventWriter(
                self._connection,
                tables,
                guarded=guarded,
                status_table=status_table,
                outbox=outbox,
            )
        self.snapshots = SqlSnapshotReader(
            self._connection,
            tables,
            self._thread,
            self._batches,
            remembered=None if status_table else self._facts.remembered,
            rules=rule_tables,
            trends=trend_tables,
            silences=outbox,
        )
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
                # Whatever the thread runs (a FETCH, an INSERT) is of no use once the cycle
                # failed: stop it rather than wait for it.
                self.cancel()
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
        self._facts.remember(self.events.unrecorded)

    def cancel(self) -> None:
        """Stop the statement in flight, from any thread: it then fails, and the unit of work
        rolls back. PostgreSQL's server is asked to cancel it; SQLite's step is interrupted.

        Best effort, and for a few seconds at most: the server may be why the cycle failed, and
        a cancel request to a vanished host would wait for TCP to give up on it.
        """
        connection = self._connection  # None once the unit of work has closed

        def cancel() -> None:
            # The unit of work may close meanwhile, on its own thread: whatever then fails here
            # has nothing left to cancel.
            with contextlib.suppress(Exception):
                driver = connection.connection.driver_connection  # type: ignore[union-attr]
                stop = getattr(driver, "cancel", None) or getattr(driver, "interrupt", None)
                if stop is not None:
                    stop()

        if connection is None:
            return

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
        self._facts = WorkerFacts(log, tables=tables)
        self._lease_ttl = lease_ttl
        self._batches = batches
        self._made: weakref.WeakSet[SqlUnitOfWork] = weakref.WeakSet()

    def __call__(self) -> SqlUnitOfWork:
        unit = SqlUnitOfWork(
            self._engine, facts=self._facts, lease_ttl=self._lease_ttl, batches=self._batches
        )
        self._made.add(unit)
        return unit

    def cancel(self) -> None:
        """Stop the statements in flight of every unit of work still open, from any thread."""
        for unit in list(self._made):
            unit.cancel()
