"""The composition root: which adapter serves which port. Built in main(), never at import."""

from __future__ import annotations

import logging

from dependency_injector import containers, providers

from reef_alerts.adapters.clock import SystemClock
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.config import Settings


class Adapters(containers.DeclarativeContainer):
    """The outside world: the database engine, units of work over it, the clock."""

    settings = providers.Dependency(instance_of=Settings)
    log = providers.Dependency(instance_of=logging.Logger)

    engine = providers.Singleton(make_engine, settings.provided.database_url)
    uow_factory = providers.Singleton(SqlUnitOfWorkFactory, engine=engine, log=log)
    clock = providers.Singleton(SystemClock)


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
