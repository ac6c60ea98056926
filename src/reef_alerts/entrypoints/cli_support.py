"""What every `reef-alerts` command shares: its settings, its log, its database, and failures
said on one line with a non-zero exit."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from sqlalchemy import Engine

from reef_alerts.adapters import rule_store, schema
from reef_alerts.adapters.notify_admin import NotifyAdminError
from reef_alerts.adapters.outbox import NoOutboxError
from reef_alerts.adapters.senders import InvalidChannelError
from reef_alerts.application.preview import NotFoundError
from reef_alerts.config import ConfigError, Settings, load_settings
from reef_alerts.container import Container, build_container
from reef_alerts.domain import InvalidAlertError
from reef_alerts.entrypoints.logging_setup import WORKER_LOGGER, configure_logging
from reef_alerts.entrypoints.worker import describe_error
from reef_alerts.redaction import redact

T = TypeVar("T")

LARGEST_ID = 2**31 - 1
"""The largest id a command takes: the web app's ids are INTEGER."""

USER_ERRORS = (
    rule_store.NoRulesTableError,
    rule_store.NoTrendTablesError,
    rule_store.UnknownAlertError,
    NotFoundError,
    InvalidAlertError,
    NoOutboxError,
    NotifyAdminError,
    InvalidChannelError,
)
"""Failures a user can cause: said as they are, on one line."""


def on_database(settings: Settings, action: Callable[[Engine], T]) -> T:
    """`action` on the database (the rules table, a preview's reads), its failures one line.
    A database that is not there, or cannot be reached, is said as `db check` says it; no
    file is made."""
    engine = engine_for(settings)
    report = schema.check(engine)
    if not report.connected:
        engine.dispose()
        fail(redact("; ".join(report.problems), settings.secrets))
    try:
        return action(engine)
    except USER_ERRORS as error:
        fail(redact(str(error), settings.secrets))
    except Exception as error:  # noqa: BLE001 - one clear line instead of a traceback
        fail(describe_error(error, settings.secrets))
    finally:
        engine.dispose()


def settings_or_fail() -> Settings:
    try:
        return load_settings(os.environ)
    except ConfigError as error:
        fail(f"configuration error: {error}")


def logger(verbose: bool, log_file: Path | None, settings: Settings) -> logging.Logger:
    try:
        configure_logging(verbose, log_file, settings.secrets)
    except OSError as error:
        fail(f"cannot open log file {log_file}: {error.strerror or error}")
    return logging.getLogger(WORKER_LOGGER)


def engine_for(settings: Settings) -> Engine:
    container: Container = build_container(settings, logging.getLogger(WORKER_LOGGER))
    return container.adapters.engine()  # type: ignore[no-any-return]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"reef-alerts: {message}", err=True)
    raise typer.Exit(code)
