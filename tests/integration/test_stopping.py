"""A worker can always be stopped: a statement waiting on a lock gives up after the lock
timeout, SIGTERM cancels one in flight, and a second signal ends the process at once."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine

from .reef import add_alert, add_device
from .test_cli import _wait_for, _worker_process

pytestmark = pytest.mark.postgres


@pytest.fixture
def upgraded_url(postgres_url: str) -> str:
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    add_device(engine, 1)
    add_alert(engine, 1, 1)
    engine.dispose()
    return postgres_url


@pytest.fixture
def blocker(upgraded_url: str) -> Iterator[Connection]:
    """Another session, to lock the alerts table with, as a long migration of the web app's
    would."""
    engine = create_engine(upgraded_url)
    connection = engine.connect()
    yield connection
    connection.close()
    engine.dispose()


def _lock_alerts(blocker: Connection) -> None:
    blocker.begin()
    blocker.execute(text("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE"))


def _waiting_on_a_lock(engine: Engine, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'reef_alerts' AND wait_event_type = 'Lock'"
                )
            ).scalar()
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError(f"no worker statement waited on a lock within {timeout}s")


def test_a_cycle_blocked_on_a_lock_fails_after_the_lock_timeout_and_the_next_goes_on(
    blocker: Connection, upgraded_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "alert_worker.log"
    worker = _worker_process(
        tmp_path,
        "run",
        "--interval",
        "1",
        DATABASE_URL=upgraded_url,
        REEF_ALERTS_LOCK_TIMEOUT="0.5",
    )
    try:
        _wait_for(log, "Evaluation cycle completed")
        _lock_alerts(blocker)
        _wait_for(log, "canceling statement due to lock timeout")
        blocker.rollback()
        done = log.read_text().count("Evaluation cycle completed")
        deadline = time.monotonic() + 30
        while log.read_text().count("Evaluation cycle completed") == done:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()

    assert worker.returncode == 0, output
    assert "failed: OperationalError: (psycopg2.errors.LockNotAvailable)" in output


def _blocked_worker(blocker: Connection, url: str, tmp_path: Path, engine: Engine) -> Popen[str]:
    """A worker whose second cycle waits on the lock, which only a cancel can end soon."""
    worker = _worker_process(
        tmp_path,
        "run",
        "--interval",
        "1",
        DATABASE_URL=url,
        REEF_ALERTS_LOCK_TIMEOUT="120",
        REEF_ALERTS_STATEMENT_TIMEOUT="120",
    )
    _wait_for(tmp_path / "alert_worker.log", "Evaluation cycle completed")
    _lock_alerts(blocker)
    _waiting_on_a_lock(engine)
    return worker


def test_sigterm_cancels_a_statement_waiting_on_a_lock_and_exits_0(
    blocker: Connection, upgraded_url: str, postgres_server: Engine, tmp_path: Path
) -> None:
    worker = _blocked_worker(blocker, upgraded_url, tmp_path, postgres_server)
    try:
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        worker.kill()

    assert worker.returncode == 0, output
    assert waited < 10, output  # the target is 2 s; nothing else could end the wait this soon
    assert "The cycle in flight has not ended after 1s: cancelling it" in output
    assert re.search(r"Evaluation cycle \d+ was cancelled and rolled back", output)
    assert "Traceback" not in output


def test_a_second_signal_ends_the_process_at_once(
    blocker: Connection, upgraded_url: str, postgres_server: Engine, tmp_path: Path
) -> None:
    worker = _blocked_worker(blocker, upgraded_url, tmp_path, postgres_server)
    try:
        worker.send_signal(signal.SIGINT)
        _wait_for(tmp_path / "alert_worker.log", "Received SIGINT")
        worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=60)
    finally:
        worker.kill()

    assert worker.returncode == -signal.SIGINT
    assert "cancelling it" not in (tmp_path / "alert_worker.log").read_text()
