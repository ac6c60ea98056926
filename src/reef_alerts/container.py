"""The composition root: which adapter serves which port. Built in main(), never at import."""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from dependency_injector import containers, providers

from reef_alerts.adapters.clock import SystemClock
from reef_alerts.adapters.coordination import SqlPartitionCoordinator, new_worker_id
from reef_alerts.adapters.database import Timeouts, make_engine
from reef_alerts.adapters.live import SqlReadingWatcher
from reef_alerts.adapters.outbox import SqlOutbox
from reef_alerts.adapters.senders import AppriseSender
from reef_alerts.adapters.tables import SharedTables
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.application.delivery import Deliver
from reef_alerts.config import Settings
from reef_alerts.ports.notifying import Channel

LOCK_TIMEOUT = timedelta(seconds=5)
"""The longest a worker's statement waits for a lock, unless the interval is shorter."""
STATEMENT_SHARE = 0.8
"""Of the interval, how long a worker's statement may run."""


def timeouts_for(settings: Settings, interval: float | None) -> Timeouts | None:
    """The worker's statement timeouts: as configured, else below the interval, so that a cycle
    blocked on a lock fails and is retried at the next instead of hanging; None outside `run`
    (`db upgrade` may build an index for minutes)."""
    if interval is None:
        return None
    statement = settings.statement_timeout or timedelta(seconds=STATEMENT_SHARE * interval)
    lock = settings.lock_timeout or min(LOCK_TIMEOUT, statement)
    return Timeouts(lock=lock, statement=statement)


def lease_ttl_for(interval: float | None) -> timedelta | None:
    """Leases last one and a half intervals: renewed every cycle, they outlive a late cycle, and
    a dead worker's lease has expired by the others' second cycle (ADR 0006)."""
    return None if interval is None else timedelta(seconds=1.5 * interval)


def environment_channels(urls: tuple[str, ...]) -> list[Channel]:
    """REEF_ALERTS_NOTIFY_URLS' channels, named env-1, env-2, ..."""
    return [
        Channel(f"env-{number}", url, from_environment=True)
        for number, url in enumerate(urls, start=1)
    ]


class Adapters(containers.DeclarativeContainer):
    """The outside world: the database engine, units of work over it, the clock."""

    settings = providers.Dependency(instance_of=Settings)
    log = providers.Dependency(instance_of=logging.Logger)
    run = providers.Configuration()
    """The `run` command's options: interval (seconds) and partitions."""

    timeouts = providers.Callable(timeouts_for, settings, run.interval)
    engine = providers.Singleton(make_engine, settings.provided.database_url, timeouts=timeouts)
    tables: providers.Object[SharedTables | None] = providers.Object(None)
    """The database's shared tables, once the start-up check has told their generation; until
    then the first unit of work tells it."""
    lease_ttl = providers.Callable(lease_ttl_for, run.interval)
    uow_factory = providers.Singleton(
        SqlUnitOfWorkFactory, engine=engine, log=log, lease_ttl=lease_ttl, tables=tables
    )
    clock = providers.Singleton(SystemClock)
    watcher = providers.Singleton(SqlReadingWatcher, engine=engine)
    """The live path's look for new readings (issue 16)."""
    delivery_engine = providers.Singleton(make_engine, settings.provided.database_url)
    """Delivery's own connections (issue 15): it never waits for the cycle's pool, nor the
    cycle for it."""
    outbox = providers.Singleton(
        SqlOutbox,
        engine=delivery_engine,
        log=log,
        environment=providers.Callable(environment_channels, settings.provided.notify_urls),
        tables=tables,
    )
    sender = providers.Singleton(AppriseSender)

    hostname = providers.Callable(socket.gethostname)
    pid = providers.Callable(os.getpid)
    coordinator = providers.Singleton(
        SqlPartitionCoordinator,
        engine=engine,
        worker_id=providers.Callable(new_worker_id, hostname, pid),
        hostname=hostname,
        pid=pid,
        started_at=providers.Callable(datetime.now, UTC),
        partition_count=run.partitions.as_int(),
        lease_ttl=lease_ttl,
        log=log,
    )


class UseCases(containers.DeclarativeContainer):
    """The application's use cases, wired to whatever adapters they are given."""

    settings = providers.Dependency(instance_of=Settings)
    log = providers.Dependency(instance_of=logging.Logger)
    adapters = providers.DependenciesContainer()

    run_cycle = providers.Factory(
        RunCycle,
        uow_factory=adapters.uow_factory,
        clock=adapters.clock,
        policy=settings.provided.policy.call(),
        log=log,
        coordinator=None,
        defaults=settings.provided.default_options,
        watcher=None,
    )
    deliver = providers.Factory(
        Deliver,
        outbox=adapters.outbox,
        sender=adapters.sender,
        clock=adapters.clock,
        policy=settings.provided.delivery,
        log=log,
    )


class Container(containers.DeclarativeContainer):
    """Everything the worker needs, from one validated Settings."""

    settings = providers.Dependency(instance_of=Settings)
    log = providers.Dependency(instance_of=logging.Logger)

    adapters = providers.Container(Adapters, settings=settings, log=log)
    use_cases = providers.Container(UseCases, settings=settings, log=log, adapters=adapters)


def build_container(settings: Settings, log: logging.Logger) -> Container:
    """A container for `settings`; call from an entrypoint, after the settings were validated."""
    return Container(settings=settings, log=log)
