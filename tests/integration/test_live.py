"""The live path on real databases (issue 16): the reading watcher on history's primary key, the
focused snapshot of a live pass, and a running worker that opens an event long before its next
full cycle."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import Timeouts, make_engine
from reef_alerts.adapters.live import GAP_GRACE, LOOK_BACK, MAX_ROWS, SqlReadingWatcher
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.ports import Focus

from .reef import add_alert, add_device, add_many, add_reading, open_alert_ids, tables_of
from .test_cli import _wait_for, _worker_process, invoke

LOG_NAME = "reef_alerts.tests.live"


def test_the_watcher_notices_the_devices_of_the_readings_since_it_last_looked(
    engine: Engine,
) -> None:
    for device_id in (1, 2, 3):
        add_device(engine, device_id, f"Tank {device_id}")
    add_reading(engine, 1, 80.0)
    watcher = SqlReadingWatcher(engine)

    first = watcher.noticed()
    add_reading(engine, 2, 80.0)
    add_reading(engine, 3, 80.0)
    add_reading(engine, 3, 81.0)
    second = watcher.noticed()
    third = watcher.noticed()

    assert (set(first), set(second), set(third)) == (set(), {2, 3}, set())


@pytest.mark.postgres
def test_a_reading_that_commits_after_a_newer_one_was_seen_is_still_noticed(
    postgres_url: str,
) -> None:
    """PostgreSQL hands out ids at insert, not at commit: the slow transaction's lower id
    becomes visible after the watcher has moved past it."""
    engine = make_engine(postgres_url)
    try:
        schema.upgrade(engine)
        add_device(engine, 1, "Slow Tank")
        add_device(engine, 2, "Quick Tank")
        watcher = SqlReadingWatcher(engine)
        watcher.noticed()
        history = tables_of(engine).history
        reading = {"timestamp": datetime.now(UTC), "value": 80.0}
        with engine.connect() as slow:
            slow.execute(insert(history), {**reading, "device_id": 1})  # takes the lower id
            add_reading(engine, 2, 80.0)  # the higher, committed first

            assert set(watcher.noticed()) == {2}

            slow.commit()

        assert set(watcher.noticed()) == {1}
        assert set(watcher.noticed()) == set()
    finally:
        engine.dispose()


def test_on_sqlite_the_watcher_reads_while_another_connection_holds_the_write_lock(
    sqlite_reef: Engine,
) -> None:
    """Every other transaction of the worker's begins IMMEDIATE; four looks a second must not
    take the web app's write lock."""
    quick = make_engine(
        str(sqlite_reef.url),
        timeouts=Timeouts(lock=timedelta(seconds=0.2), statement=timedelta(seconds=1)),
    )
    try:
        watcher = SqlReadingWatcher(quick)
        watcher.noticed()
        add_reading(sqlite_reef, 1, 80.0)
        with sqlite_reef.begin() as writer:
            writer.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the write lock is held

            assert set(watcher.noticed()) == {1}
    finally:
        quick.dispose()


def test_a_focused_snapshot_is_the_full_snapshot_of_the_alerts_it_names(engine: Engine) -> None:
    schema.upgrade(engine)
    for device_id in (1, 2, 3):
        add_device(engine, device_id, f"Tank {device_id}")
        add_reading(engine, device_id, 80.0 + device_id)
    for alert_id, device_id in ((1, 1), (2, 1), (3, 2), (4, 3), (5, 3)):
        add_alert(engine, alert_id, device_id, threshold=80.0 + alert_id)
    factory = SqlUnitOfWorkFactory(engine, logging.getLogger(LOG_NAME))

    with factory() as uow:
        full = {s.alert_id: s for s in uow.snapshots.enabled_alerts()}
    with factory() as uow:
        focus = Focus(devices=frozenset({1}), alerts=frozenset({5}))
        focused = {s.alert_id: s for s in uow.snapshots.enabled_alerts(focus=focus)}

    assert sorted(focused) == [1, 2, 5]
    assert all(focused[key] == full[key] for key in focused)


def test_a_running_worker_opens_the_event_of_a_new_reading_long_before_its_next_cycle(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'reef.db'}"
    engine = make_engine(url)
    try:
        schema.upgrade(engine)
        add_device(engine, 1, "Main Tank")
        add_alert(engine, 1, 1, "temperature", ">", 82.0)
        add_reading(engine, 1, 78.0, now=datetime.now(UTC))
        worker = _worker_process(tmp_path, "run", "--interval", "600", DATABASE_URL=url)
        try:
            _wait_for(tmp_path / "alert_worker.log", "Evaluation cycle completed")
            assert open_alert_ids(engine) == []
            add_reading(engine, 1, 85.2, age=timedelta(0), now=datetime.now(UTC))
            deadline = time.monotonic() + 30  # the next full cycle is 600 s away
            while not open_alert_ids(engine) and time.monotonic() < deadline:
                time.sleep(0.05)
            opened = open_alert_ids(engine)
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=15)
        finally:
            worker.kill()
    finally:
        engine.dispose()

    assert opened == [1]
    assert worker.returncode == 0, output
    log = (tmp_path / "alert_worker.log").read_text()
    assert log.count("Evaluation cycle completed") == 1
    assert "Alert 1 triggered: Threshold exceeded: 85.2 > 82.0" in log
    assert "'live_passes': 1" in log
    assert "Live passes: every 0.25s between cycles, for new readings" in log


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sqlite_reef(sqlite_url: str) -> Iterator[Engine]:
    """An SQLite database with the worker's tables and four devices, 1 to 4, without readings."""
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    for device_id in (1, 2, 3, 4):
        add_device(engine, device_id, f"Tank {device_id}")
    yield engine
    engine.dispose()


def _insert_reading(engine: Engine, reading_id: int, device_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(tables_of(engine).history),
            {"id": reading_id, "device_id": device_id, "timestamp": datetime.now(UTC)},
        )


def test_a_skipped_id_is_looked_for_a_minute_then_left_to_the_full_cycle(
    sqlite_reef: Engine,
) -> None:
    clock = FakeMonotonic()
    watcher = SqlReadingWatcher(sqlite_reef, monotonic=clock)
    watcher.start()
    _insert_reading(sqlite_reef, 1, 1)
    _insert_reading(sqlite_reef, 3, 1)  # 2 is skipped: a transaction still to commit
    assert set(watcher.noticed()) == {1}

    clock.now += GAP_GRACE - 1
    _insert_reading(sqlite_reef, 2, 2)
    assert set(watcher.noticed()) == {2}

    _insert_reading(sqlite_reef, 6, 1)  # 4 and 5 skipped
    assert set(watcher.noticed()) == {1}
    clock.now += GAP_GRACE + 1
    assert set(watcher.noticed()) == set()  # the look that forgets them
    _insert_reading(sqlite_reef, 4, 3)
    _insert_reading(sqlite_reef, 5, 4)
    assert set(watcher.noticed()) == set()


def test_a_cycle_after_a_backlog_leaves_none_of_it_to_the_live_passes(sqlite_reef: Engine) -> None:
    """More readings than one look reads came while the worker could not look (the database was
    down): the next cycle judges them all, so the watcher moves on to the newest."""
    watcher = SqlReadingWatcher(sqlite_reef)
    watcher.start()
    add_many(
        sqlite_reef,
        "history",
        ({"device_id": 1, "timestamp": datetime.now(UTC)} for _ in range(MAX_ROWS + LOOK_BACK)),
    )
    add_reading(sqlite_reef, 2, 80.0)

    watcher.start()

    assert set(watcher.noticed()) == set()


def test_after_its_newest_ids_were_handed_out_again_the_next_cycle_sets_the_watcher_back(
    sqlite_reef: Engine,
) -> None:
    """SQLite gives a deleted newest row's id to the next row; a database restored from an older
    copy has lower ids too."""
    watcher = SqlReadingWatcher(sqlite_reef)
    watcher.start()
    _insert_reading(sqlite_reef, 10, 1)
    assert set(watcher.noticed()) == {1}
    with sqlite_reef.begin() as connection:
        connection.execute(tables_of(sqlite_reef).history.delete())

    watcher.start()  # the next full cycle
    _insert_reading(sqlite_reef, 5, 2)

    assert set(watcher.noticed()) == {2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--live-every", "nan"], "must be from 0.05 to 60 seconds, got nan"),
        (["--live-every", "0.01"], "must be from 0.05 to 60 seconds, got 0.01"),
        (["--no-live", "--live-every", "1"], "--live-every is for live passes"),
        (["--once", "--live-every", "1"], "--live-every is for a worker that keeps running"),
    ],
)
def test_a_live_every_no_worker_can_use_is_refused_in_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    code, _, err = invoke(["run", *args], tmp_path)

    assert code == 2
    assert message in err
