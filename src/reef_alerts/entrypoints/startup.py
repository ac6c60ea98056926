"""What a worker decides before its first cycle, and on its way out.

Whether the database can be used, whether to create the embedded database's tables, whether
the worker coordinates through partition leases, and handing the leases back. Decisions and
log lines only: the command line (cli.py) turns a `StartupError` into its exit code.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from reef_alerts.adapters import schema
from reef_alerts.adapters.coordination import (
    PartitionCountMismatchError,
    SqlPartitionCoordinator,
)
from reef_alerts.config import Settings
from reef_alerts.container import Container
from reef_alerts.entrypoints.worker import describe_error


class StartupError(Exception):
    """The worker cannot start; the reason has been logged."""


def verify_database(
    engine: Engine, settings: Settings, log: logging.Logger, *, required: bool
) -> schema.SchemaReport:
    """Check the tables before the first cycle; create them in the embedded database.

    An unreachable database stops a worker only when `required` (a single cycle): a service
    keeps trying, since the database may be starting or restarting. Missing tables, or a
    missing SQLite file, always stop it, except in the embedded database, where they are made.
    """
    report = schema.check(engine)
    if settings.embedded and (report.missing_file or (report.connected and not report.can_run)):
        log.info("Creating the tables in the embedded database %s", settings.sqlite_path)
        report = schema.upgrade(engine)
    if report.can_run:
        assert report.generation is not None
        log.info("Database connection and table verification successful")
        log.info("Schema generation: %s", report.generation.describe())
        for warning in report.warnings:
            log.warning("%s", warning[0].upper() + warning[1:])
        return report
    problem = "; ".join(report.problems)
    if report.error is not None and not required:
        log.error("Database verification failed: %s; retrying every interval", problem)
        return report
    log.error("Database verification failed: %s", problem)
    raise StartupError(problem)


def coordinator_for(
    container: Container,
    settings: Settings,
    report: schema.SchemaReport,
    partitions: int,
    log: logging.Logger,
) -> SqlPartitionCoordinator | None:
    """On PostgreSQL, workers lease partitions (hot standby at K = 1); on SQLite there is one
    worker and nothing to lease. The coordinator finds the lease tables itself, so a worker
    started before the database or `db upgrade` catches up; but K > 1 on a database known to
    lack them is refused now rather than at every cycle."""
    if settings.backend != "postgresql":
        return None
    if partitions > 1 and report.connected and not report.coordinated:
        message = "--partitions needs the worker's lease tables: run `reef-alerts db upgrade`"
        log.error(message)
        raise StartupError(message)
    coordinator: SqlPartitionCoordinator = container.adapters.coordinator()
    if report.connected:
        try:
            coordinator.check()
        except PartitionCountMismatchError as error:
            log.error("%s", error)
            raise StartupError(str(error)) from None
    return coordinator


def release_leases(
    coordinator: SqlPartitionCoordinator, log: logging.Logger, settings: Settings
) -> None:
    """Hand the partition leases back on the way out, so another worker takes them at once."""
    try:
        coordinator.release()
    except Exception as error:  # noqa: BLE001 - the leases expire on their own anyway
        log.warning(
            "Could not release the partition leases (they expire by themselves): %s",
            describe_error(error, settings.secrets),
        )
