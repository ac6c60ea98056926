"""configure_logging: the specification's format, console and file, levels, redaction, re-runs."""

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from reef_alerts.application import CycleStats, WorkerStatistics
from reef_alerts.entrypoints.logging_setup import (
    WORKER_LOGGER,
    RedactingFilter,
    configure_logging,
    reset_logging,
)
from reef_alerts.entrypoints.worker import Worker

PASSWORD = "s3cr3t-Pa55"
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    r" - (?P<name>[\w.]+) - (?P<level>[A-Z]+) - (?P<message>.*)$"
)


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    # configure_logging changes the root logger; give the next test what this one found
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]


def test_lines_in_the_log_file_have_the_specification_format(tmp_path: Path) -> None:
    log_file = tmp_path / "alert_worker.log"
    configure_logging(verbose=False, log_file=log_file, secrets=())

    logging.getLogger(WORKER_LOGGER).info("Starting evaluation cycle %d", 1)

    [line] = log_file.read_text(encoding="utf-8").splitlines()
    match = LINE.match(line)
    assert match is not None, line
    assert match.group("name", "level", "message") == (
        "alert_worker",
        "INFO",
        "Starting evaluation cycle 1",
    )


def test_lines_also_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(verbose=False, log_file=None, secrets=())

    logging.getLogger(WORKER_LOGGER).warning("Evaluation cycle 2 took 31.00s")

    err = capsys.readouterr().err
    assert LINE.match(err.strip())
    assert " - alert_worker - WARNING - Evaluation cycle 2 took 31.00s" in err


def test_info_is_the_default_level_and_verbose_adds_debug(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    log = logging.getLogger(WORKER_LOGGER)

    configure_logging(verbose=False, log_file=log_file, secrets=())
    log.debug("Sleeping 29.85s until the next evaluation cycle")
    configure_logging(verbose=True, log_file=log_file, secrets=())
    log.debug("Alert 4 skipped: stale reading")

    text = log_file.read_text(encoding="utf-8")
    assert "Sleeping" not in text
    assert " - DEBUG - Alert 4 skipped: stale reading" in text


def test_configuring_twice_replaces_the_handlers_instead_of_doubling_lines(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging(verbose=False, log_file=log_file, secrets=())
    configure_logging(verbose=False, log_file=log_file, secrets=())

    logging.getLogger(WORKER_LOGGER).info("once")

    assert len(ours(logging.getLogger())) == 2
    assert log_file.read_text(encoding="utf-8").count("once") == 1


def test_no_log_file_means_only_the_console_handler() -> None:
    configure_logging(verbose=False, log_file=None, secrets=())

    assert len(ours(logging.getLogger())) == 1


def test_reset_leaves_other_handlers_alone() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        configure_logging(verbose=False, log_file=None, secrets=())
        reset_logging()

        assert ours(root) == []
        assert foreign in root.handlers
    finally:
        root.removeHandler(foreign)


def test_an_unopenable_log_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="No such file"):
        configure_logging(verbose=False, log_file=tmp_path / "missing" / "w.log", secrets=())


def test_secrets_are_redacted_from_messages_and_their_arguments(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging(verbose=False, log_file=log_file, secrets=[PASSWORD])
    log = logging.getLogger("sqlalchemy.pool")

    log.warning("connect failed with %s", PASSWORD)
    log.warning("url was postgresql://reef:%s@db/reef", "unknown-password")

    text = log_file.read_text(encoding="utf-8")
    assert PASSWORD not in text
    assert "unknown-password" not in text
    assert "connect failed with ***" in text
    assert "postgresql://reef:***@db/reef" in text


def test_secrets_are_redacted_from_tracebacks(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging(verbose=True, log_file=log_file, secrets=[PASSWORD])

    try:
        raise RuntimeError(f"could not log in with password {PASSWORD}")
    except RuntimeError:
        logging.getLogger(WORKER_LOGGER).exception("Login failed")

    text = log_file.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: could not log in with password ***" in text
    assert PASSWORD not in text


def test_a_malformed_log_call_is_rendered_instead_of_raising() -> None:
    record = logging.LogRecord(
        WORKER_LOGGER, logging.INFO, __file__, 1, "%d alerts", ("three", PASSWORD), None
    )

    assert RedactingFilter([PASSWORD]).filter(record)

    assert "unformattable arguments" in record.getMessage()
    assert PASSWORD not in record.getMessage()


def test_a_failing_worker_never_writes_the_password_even_at_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "alert_worker.log"
    configure_logging(verbose=True, log_file=log_file, secrets=[PASSWORD])
    driver_error = Exception(
        f"connection to server failed: host=db password={PASSWORD} "
        f"(postgresql://reef:{PASSWORD}@db/reef)"
    )

    def database_down() -> CycleStats:
        raise OperationalError("SELECT 1", {"password": PASSWORD}, driver_error)

    stop = threading.Event()
    worker = Worker(
        run_cycle=database_down,
        interval=1.0,
        log=logging.getLogger(WORKER_LOGGER),
        statistics=WorkerStatistics(started_at=0.0),
        stop_event=stop,
        secrets=[PASSWORD],
    )
    with pytest.raises(OperationalError):
        worker.run_once()

    text = log_file.read_text(encoding="utf-8")
    assert " - alert_worker - ERROR - Evaluation cycle 1 failed: OperationalError: " in text
    assert "Traceback" in text
    assert PASSWORD not in text
    assert PASSWORD not in capsys.readouterr().err


def test_text_from_the_database_cannot_forge_a_line_or_reach_the_terminal_raw(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "alert_worker.log"
    configure_logging(verbose=False, log_file=log_file, secrets=())
    forged = "x\n2026-12-02 12:00:00,000 - alert_worker - CRITICAL - FAKE\x1b[31m\u202e"

    logging.getLogger(WORKER_LOGGER).info("Created alert event for alert %d, device %s", 1, forged)

    [line] = log_file.read_text(encoding="utf-8").splitlines()
    assert line.endswith(
        "device x\\n2026-12-02 12:00:00,000 - alert_worker - CRITICAL - FAKE\\x1b[31m\\u202e"
    )


def test_a_huge_argument_is_cut_short_saying_how_long_it_was(tmp_path: Path) -> None:
    log_file = tmp_path / "alert_worker.log"
    configure_logging(verbose=False, log_file=log_file, secrets=())

    logging.getLogger(WORKER_LOGGER).info("device %s, value %s", "N" * 100_000, 85.2)

    [line] = log_file.read_text(encoding="utf-8").splitlines()
    assert len(line) < 700
    assert "N... (100,000 characters), value 85.2" in line


def test_a_cut_never_leaves_part_of_a_secret_behind(tmp_path: Path) -> None:
    log_file = tmp_path / "alert_worker.log"
    configure_logging(verbose=False, log_file=log_file, secrets=(PASSWORD,))
    # The password straddles the cut, 500 characters in.
    error = "x" * 495 + PASSWORD + " y" * 50

    logging.getLogger(WORKER_LOGGER).error("failed: %s", error)

    text = log_file.read_text(encoding="utf-8")
    assert PASSWORD[:5] not in text
    assert "***" in text
