"""Engines for the two supported backends, set up for a long-running worker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# Seconds: how long a dead peer can hold a connection, and with it a transaction or a lease.
_KEEPALIVE_IDLE, _KEEPALIVE_INTERVAL, _KEEPALIVE_COUNT = 30, 10, 3
_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
_SQLITE_BUSY_TIMEOUT_S = 30


READ_ALONE = "reef_alerts_read_alone"
"""The execution option of a connection whose statements only read, each alone: on SQLite it
takes no write lock, where every other transaction begins IMMEDIATE."""


@attrs.frozen
class Timeouts:
    """How long a worker's statement may wait for a lock, and run in all, before it fails."""

    lock: timedelta
    """PostgreSQL's lock_timeout; SQLite's busy timeout."""
    statement: timedelta
    """PostgreSQL's statement_timeout (SQLite has none)."""


def make_engine(
    url: str, *, application_name: str = "reef_alerts", timeouts: Timeouts | None = None
) -> Engine:
    """An engine for `url` (postgresql:// or sqlite://) that survives database restarts.

    With `timeouts` (the worker's), a statement that waits on a lock or runs longer fails, so
    that a cycle blocked by another session ends, and is retried, instead of hanging."""
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        return _postgresql_engine(url, application_name, timeouts)
    if backend == "sqlite":
        return _sqlite_engine(url, timeouts)
    raise ValueError(f"unsupported database backend {backend!r}: use postgresql:// or sqlite://")


def _postgresql_engine(url: str, application_name: str, timeouts: Timeouts | None) -> Engine:
    connect_args: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": 10,
        # Timestamps arrive in UTC; a session left idle inside a transaction (a worker frozen
        # mid-cycle) is ended by the server instead of holding row locks forever; and JIT, which
        # spent ~0.65 s compiling the snapshot query at 100,000 alerts to save less, is off.
        "options": "-c timezone=UTC -c jit=off -c idle_in_transaction_session_timeout="
        f"{_IDLE_IN_TRANSACTION_TIMEOUT_MS}{_timeout_options(timeouts)}",
        "keepalives": 1,
        "keepalives_idle": _KEEPALIVE_IDLE,
        "keepalives_interval": _KEEPALIVE_INTERVAL,
        "keepalives_count": _KEEPALIVE_COUNT,
    }
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=2,
        connect_args=connect_args,
        # A failed statement's parameters (a channel's URL, a token) never reach an error.
        hide_parameters=True,
    )


def _timeout_options(timeouts: Timeouts | None) -> str:
    if timeouts is None:
        return ""
    lock, statement = (round(t.total_seconds() * 1000) for t in (timeouts.lock, timeouts.statement))
    return f" -c lock_timeout={max(lock, 1)} -c statement_timeout={max(statement, 1)}"


def _sqlite_engine(url: str, timeouts: Timeouts | None) -> Engine:
    busy = _SQLITE_BUSY_TIMEOUT_S if timeouts is None else timeouts.lock.total_seconds()
    engine = create_engine(url, connect_args={"timeout": busy}, hide_parameters=True)

    # pysqlite opens transactions lazily, on the first write, so a cycle's read would not share
    # its writes' transaction. Taking over BEGIN makes the whole cycle one transaction, and
    # IMMEDIATE takes the write lock up front so concurrent cycles queue instead of failing.
    @event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ALONE):
            return  # each statement its own read, as the driver does without a BEGIN
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
