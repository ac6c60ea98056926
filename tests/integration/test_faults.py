"""Fault tests against a real PostgreSQL: several worker processes, kills, dropped connections and
a database restart. Run them alone with `pytest -m faults`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, insert, select, text

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.notify_tables import outbox
from reef_alerts.adapters.tables import CURRENT, partition_leases

from .reef import event_outcome, events, open_alert_ids, run_cycle, seed_fleet

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

FOUND = re.compile(
    r"^(?P<at>\S+ \S+) - alert_worker - INFO - Found (?P<alerts>\d+) enabled alerts to evaluate"
    r"(?: in partitions (?P<partitions>[\d, ]+) of (?P<count>\d+))?"
)


class Workers:
    """Worker processes on one database, each logging to a file of its own."""

    def __init__(self, url: str, directory: Path) -> None:
        self._url = url
        self._directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self._directory / f"worker{len(self.processes)}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
        environment.update(DATABASE_URL=self._url, ENV="production")
        process = subprocess.Popen(
            [sys.executable, "-m", "reef_alerts", "run", "--log-file", str(log), *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process.log = log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def log(self, index: int) -> str:
        path: Path = self.processes[index].log  # type: ignore[attr-defined]
        return path.read_text() if path.exists() else ""


@pytest.fixture
def fleet_url(postgres_url: str) -> str:
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    engine.dispose()
    return postgres_url


@pytest.fixture
def workers(fleet_url: str, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(fleet_url, tmp_path)
    yield running
    running.stop()


def _seed(url: str, alerts: int) -> None:
    engine = make_engine(url)
    seed_fleet(engine, alerts, now=datetime.now().astimezone())
    engine.dispose()


def _until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `condition` holds; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def _lease_owners(engine: Engine) -> dict[int, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(partition_leases.c.partition, partition_leases.c.owner).where(
                partition_leases.c.expires_at > text("now()")
            )
        )
        return dict(rows.all())


def test_four_workers_evaluate_every_alert_exactly_once_per_round(
    fleet_url: str, workers: Workers
) -> None:
    interval = 2  # a round is one interval; cycles start on its multiples (ADR 6)
    _seed(fleet_url, 5000)
    for _ in range(4):
        workers.start("--interval", str(interval), "--partitions", "8")
    _until(
        lambda: all("in partitions" in workers.log(i) for i in range(4)), 60, "four workers cycling"
    )
    time.sleep(6 * interval)
    workers.stop()

    rounds: dict[int, list[tuple[int, set[int]]]] = defaultdict(list)
    for index in range(4):
        for line in workers.log(index).splitlines():
            found = FOUND.match(line)
            if found and found["partitions"]:
                at = datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                partitions = {int(p) for p in found["partitions"].split(", ")}
                rounds[int(at // interval)].append((int(found["alerts"]), partitions))
    # From the first round all four shared, up to the last whole one before the stop.
    balanced = min(number for number, cycles in rounds.items() if len(cycles) == 4)
    settled = [number for number in sorted(rounds) if number >= balanced][:-1]
    assert len(settled) >= 4, rounds
    for number in settled:
        held = [partitions for _, partitions in rounds[number]]
        assert sorted(p for partitions in held for p in partitions) == list(range(8)), number
        assert sum(alerts for alerts, _ in rounds[number]) == 5000, number
        assert len(held) == 4, number  # balanced: every worker holds a share
    engine = make_engine(fleet_url)
    opened = Counter(open_alert_ids(engine))
    engine.dispose()
    assert max(opened.values()) == 1
    assert sorted(opened) == list(range(1, 5001, 2))


def test_a_killed_workers_partitions_are_taken_over_within_two_intervals(
    fleet_url: str, workers: Workers
) -> None:
    interval = 2.0
    _seed(fleet_url, 600)
    started = [workers.start("--interval", str(interval), "--partitions", "6") for _ in range(3)]
    engine = make_engine(fleet_url)
    _until(
        lambda: (
            Counter(_lease_owners(engine).values()).most_common() != []
            and len(set(_lease_owners(engine).values())) == 3
            and len(_lease_owners(engine)) == 6
        ),
        timeout=30,
        what="three workers sharing six partitions",
    )
    victim_partitions = {
        p for p, owner in _lease_owners(engine).items() if str(started[0].pid) in (owner or "")
    }
    assert victim_partitions

    started[0].send_signal(signal.SIGKILL)
    started[0].wait()
    waited = _until(
        lambda: (
            len(_lease_owners(engine)) == 6
            and all(
                str(started[0].pid) not in (owner or "") for owner in _lease_owners(engine).values()
            )
        ),
        timeout=5 * interval,
        what="the killed worker's partitions leased by the others",
    )
    engine.dispose()

    # The bound is two intervals; allow for process scheduling on a busy two-core machine.
    assert waited <= 2 * interval + 0.5, waited


def _flip_readings(url: str, alerts: int) -> None:
    """A new reading per device that turns firing alerts quiet and quiet ones firing."""
    engine = make_engine(url)
    now = datetime.now().astimezone()
    with engine.begin() as connection:
        connection.execute(
            insert(CURRENT.history),
            [
                {"device_id": i, "timestamp": now, "value": 70.0 if i % 2 else 91.0 + i / 1000}
                for i in range(1, alerts + 1)
            ],
        )
    engine.dispose()


def _cycles_completed(workers: Workers) -> int:
    return workers.log(0).count("Evaluation cycle completed")


def _postgres_control() -> Callable[[str], None]:
    """Stop or start the local PostgreSQL cluster; fails or skips where that is not possible."""
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    clusters = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if pg_ctlcluster is None or not clusters or os.geteuid() != 0:
        reason = "restarting PostgreSQL needs pg_ctlcluster, a local cluster and root"
        if os.environ.get("REEF_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)

    def control(action: str) -> None:
        subprocess.run(
            [pg_ctlcluster, "--skip-systemctl-redirect", clusters[-1], "main", action],
            check=True,
            capture_output=True,
        )

    return control


def test_a_worker_survives_dropped_connections_and_a_database_restart(
    fleet_url: str, second_postgres_url: str, workers: Workers
) -> None:
    control = _postgres_control()
    alerts = 200
    _seed(fleet_url, alerts)
    engine = make_engine(second_postgres_url)
    schema.upgrade(engine)
    engine.dispose()
    _seed(second_postgres_url, alerts)

    workers.start("--interval", "1")
    _until(lambda: _cycles_completed(workers) >= 1, 30, "a first cycle")
    admin = create_engine(fleet_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        terminated = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'reef_alerts' AND datname = current_database()"
            )
        ).scalar()
    assert terminated
    _flip_readings(fleet_url, alerts)
    after_terminate = _cycles_completed(workers)
    _until(lambda: _cycles_completed(workers) >= after_terminate + 2, 30, "cycles after kills")

    try:
        control("stop")
        time.sleep(2.5)  # cycles fail while the server is down
    finally:
        control("start")
    _until(
        lambda: "Evaluation cycle" in workers.log(0) and "failed" in workers.log(0), 5, "an ERROR"
    )
    before = _cycles_completed(workers)
    _until(lambda: _cycles_completed(workers) >= before + 2, 60, "cycles after the restart")
    workers.stop()
    admin.dispose()

    log = workers.log(0)
    assert re.search(r" - ERROR - Evaluation cycle \d+ failed: ", log)
    assert workers.processes[0].returncode == 0
    # The same data without any fault: one cycle, the flip, another cycle.
    twin = make_engine(second_postgres_url)
    run_cycle(twin, _WallClock())
    twin.dispose()
    _flip_readings(second_postgres_url, alerts)
    twin = make_engine(second_postgres_url)
    run_cycle(twin, _WallClock())
    twin.dispose()
    assert event_outcome(fleet_url) == event_outcome(second_postgres_url)


class _WallClock:
    def now(self) -> datetime:
        return datetime.now().astimezone()


def test_a_worker_killed_between_its_writes_and_its_commit_leaves_no_partial_cycle(
    fleet_url: str, workers: Workers
) -> None:
    _seed(fleet_url, 200)
    engine = make_engine(fleet_url)
    before = events(engine)
    blocker = create_engine(fleet_url).connect()
    transaction = blocker.begin()
    # Hold the row of an event the cycle resolves: its INSERTs go through, then its UPDATE (with
    # its outbox rows, one statement since issue 15) waits.
    blocker.execute(text("SELECT id FROM alert_events WHERE alert_id = 2 FOR UPDATE"))

    worker = workers.start("--once")
    _until(
        lambda: _waiting_update(engine),
        30,
        "the worker's UPDATE waiting after its INSERT",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    transaction.rollback()
    blocker.close()

    time.sleep(0.5)  # the server notices the dead client and aborts its transaction
    assert events(engine) == before
    assert _outbox_changes(engine) == []  # rolled back with the events they tell
    assert run_cycle(engine, _WallClock()).triggered == 100
    assert len(open_alert_ids(engine)) == 100
    assert _outbox_changes(engine).count("opened") == 100
    engine.dispose()


def _outbox_changes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(outbox.c.change)))


def _waiting_update(engine: Engine) -> bool:
    # A fresh transaction per look: pg_stat_activity is a snapshot taken once per transaction.
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reef_alerts' "
                    "AND wait_event_type = 'Lock' AND query LIKE '%UPDATE alert_events%'"
                )
            ).scalar()
        )
