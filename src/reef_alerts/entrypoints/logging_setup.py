"""Logging as the specification shows it: one format, to the console and a file; every line
redacted, on one line, and of a readable length whatever text from the database it holds."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from reef_alerts.redaction import printable, redact

WORKER_LOGGER: Final = "alert_worker"
"""The logger name of the worker's own lines, as in the specification's example output."""
LOG_FORMAT: Final = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
ARGUMENT_LIMIT: Final = 500
"""Characters of one text argument a line shows: a device's name, a metric, an error."""
LINE_LIMIT: Final = 4_000


class RedactingFilter(logging.Filter):
    """Makes a record safe to show: secrets and passwords in URLs masked in its message,
    traceback and stack text; its message on one line, with control characters escaped (text
    from the database cannot forge a line or move a terminal's cursor), and each text argument
    cut short."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        # The record is rewritten in place, fully rendered, so that every handler sharing it
        # (and any formatter) only ever sees the safe text. Arguments are redacted before they
        # are cut, so that no cut leaves part of a secret behind.
        if isinstance(record.args, tuple):
            record.args = tuple(self._shortened(arg) for arg in record.args)
        message = redact(_rendered(record), self._secrets)
        record.msg = printable(message, LINE_LIMIT)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True

    def _shortened(self, argument: object) -> object:
        if not isinstance(argument, str) or len(argument) <= ARGUMENT_LIMIT:
            return argument
        return printable(redact(argument, self._secrets), ARGUMENT_LIMIT)


class LogFile(logging.handlers.WatchedFileHandler):
    """The log file. WatchedFileHandler reopens it after logrotate moves it, so no copytruncate.

    A line it cannot write (a full disk; `/dev/full`) is said once, on one line on stderr, and
    the file is given up, instead of a traceback on stderr for every line.
    """

    failure: OSError | None = None

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        error = sys.exc_info()[1]
        if self.failure is not None or not isinstance(error, OSError):
            super().handleError(record)
            return
        self.failure = error
        self.setLevel(logging.CRITICAL + 1)  # no more lines for it
        sys.stderr.write(
            f"reef-alerts: cannot write the log file {self.baseFilename}: "
            f"{error.strerror or error}; logging to stderr only\n"
        )

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            if self.failure is None:
                raise  # said nowhere yet


def configure_logging(verbose: bool, log_file: Path | None, secrets: Iterable[str]) -> None:
    """Send every logger's records to stderr, and to `log_file` unless it is None.

    DEBUG when `verbose`, else INFO. Calling it again replaces the handlers it added before.
    Raises OSError when `log_file` cannot be opened.
    """
    formatter = logging.Formatter(LOG_FORMAT)
    redacting = RedactingFilter(secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(LogFile(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redacting)
    reset_logging()
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Alembic announces every migration context at INFO; the worker's own lines are what matter.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_apprise()


def quiet_apprise() -> None:
    """apprise logs every send, and its errors may quote a channel's URL (`Unparseable URL
    pover://USER_KEY`): its lines stay with apprise, which hands them back with each send's
    result, and the worker says what failed itself, each channel's secrets masked
    (adapters/senders.py)."""
    quiet = logging.getLogger("apprise")
    quiet.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
        quiet.addHandler(logging.NullHandler())


def log_file_failure() -> OSError | None:
    """Why the log file could not be written, if a line failed; None otherwise."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogFile) and handler.failure is not None:
            return handler.failure
    return None


def reset_logging() -> None:
    """Remove and close the handlers `configure_logging` added; leave any others alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if any(isinstance(f, RedactingFilter) for f in handler.filters):
            root.removeHandler(handler)
            handler.close()


def _rendered(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed log call must not take the worker down
        return f"{record.msg} (unformattable arguments: {record.args!r})"
