"""The evaluation cycle on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.facts import WorkerFacts
from reef_alerts.adapters.snapshot_queries import (
    ALERT_COLUMNS,
    CONTEXT_COLUMNS,
    EVENT_COLUMNS,
    RULE_COLUMNS,
    SNAPSHOT_COLUMNS,
    STATUS_COLUMNS,
    TREND_COLUMNS,
    alerts_query,
    snapshot_query,
    watched_devices_query,
)
from reef_alerts.adapters.snapshots import SnapshotBatches, SqlSnapshotReader
from reef_alerts.adapters.tables import CURRENT, LEGACY, Generation, SharedTables
from reef_alerts.adapters.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.domain import AlertEvent, EvaluationPolicy, Operator, Reading, Resolution
from reef_alerts.domain.notices import Silence
from reef_alerts.ports import (
    WHOLE,
    AlertSnapshot,
    AppliedChanges,
    EventChanges,
    Focus,
    Shard,
)

from .reef import (
    NOW,
    FixedClock,
    add_alert,
    add_device,
    add_reading,
    events,
    open_alert_ids,
    run_cycle,
    seed_fleet,
    tables_of,
)


@pytest.fixture
def reef(engine: Engine) -> Engine:
    """An upgraded database with one heater and an alert `temperature > 82`."""
    schema.upgrade(engine)
    add_device(engine, 1, "Main Tank")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)
    return engine


def test_creates_an_event_row_as_the_specification_shows(reef: Engine) -> None:
    add_reading(reef, 1, 85.2)

    stats = run_cycle(reef)

    assert stats.as_dict() == {
        "total_alerts": 1,
        "evaluated": 1,
        "triggered": 1,
        "resolved": 0,
        "skipped": 0,
        "errors": 0,
    }
    [row] = events(reef)
    assert (row["alert_id"], row["device_id"]) == (1, 1)
    assert row["triggered_at"] == NOW
    assert (row["current_value"], row["threshold_value"]) == (85.2, 82.0)
    assert (row["operator"], row["metric"], row["is_resolved"]) == (">", "temperature", False)
    assert (row["resolved_at"], row["resolution_value"]) == (None, None)
    assert row["metadata_"] == {
        "kind": "threshold",
        "reading_id": 1,
        "reading_timestamp": (NOW - timedelta(seconds=10)).isoformat(),
        "device_name": "Main Tank",
        "device_type": "heater",
        "unit": "F",
    }


def test_resolves_open_event_when_value_returns_below_threshold(reef: Engine) -> None:
    add_reading(reef, 1, 85.2, age=timedelta(seconds=40))
    run_cycle(reef)
    add_reading(reef, 1, 80.5, age=timedelta(seconds=5))
    later = FixedClock(NOW + timedelta(seconds=30))

    stats = run_cycle(reef, later)

    assert stats.resolved == 1
    [row] = events(reef)
    assert row["is_resolved"] is True
    assert row["resolved_at"] == later.current
    assert row["resolution_value"] == 80.5


def test_rerunning_a_cycle_on_unchanged_data_changes_nothing(reef: Engine) -> None:
    add_reading(reef, 1, 85.2)
    run_cycle(reef)
    before = events(reef)

    stats = run_cycle(reef)

    assert stats.triggered == stats.resolved == 0
    assert events(reef) == before


def test_uses_the_newest_reading_of_the_device(reef: Engine) -> None:
    add_reading(reef, 1, 85.0, age=timedelta(seconds=5))
    add_reading(reef, 1, 70.0, age=timedelta(seconds=50))

    run_cycle(reef)

    assert [e["current_value"] for e in events(reef)] == [85.0]


def test_takes_a_json_metric_by_dotted_path(reef: Engine) -> None:
    add_device(reef, 2, "Multi", device_type="multi")
    add_alert(reef, 2, 2, "probe1.temperature", "<", 75.0)
    add_reading(reef, 2, json_value={"probe1": {"temperature": 74.5}, "ph": 8.1})

    run_cycle(reef)

    assert [(e["alert_id"], e["current_value"]) for e in events(reef)] == [(2, 74.5)]


def test_ignores_disabled_alerts(reef: Engine) -> None:
    add_alert(reef, 2, 1, "temperature", ">", 50.0, is_enabled=False)
    add_reading(reef, 1, 85.2)

    stats = run_cycle(reef)

    assert stats.total_alerts == 1
    assert open_alert_ids(reef) == [1]


class _WritesThenFails(SqlUnitOfWork):
    """A real unit of work whose cycle breaks after its writes, before its commit."""

    def commit(self) -> None:
        raise RuntimeError("connection lost before commit")


def test_a_cycle_that_fails_after_writing_leaves_the_database_as_it_was(reef: Engine) -> None:
    add_reading(reef, 1, 85.2)
    log = logging.getLogger("alert_worker")
    failing = RunCycle(lambda: _WritesThenFails(reef), FixedClock(), EvaluationPolicy(), log)

    with pytest.raises(RuntimeError, match="before commit"):
        failing()

    assert events(reef) == []
    assert run_cycle(reef).triggered == 1
    assert open_alert_ids(reef) == [1]


def test_commits_every_change_of_a_cycle_together(reef: Engine) -> None:
    add_reading(reef, 1, 85.2)
    run_cycle(reef)
    add_device(reef, 2, "Sump")
    add_alert(reef, 2, 2)
    before = events(reef)
    with SqlUnitOfWork(reef) as uow:
        [open_event] = [s.open_event_id for s in uow.snapshots.enabled_alerts() if s.alert_id == 1]
    assert open_event is not None
    sump_event = _too_hot(alert_id=2, device_id=2, value=90.0)

    with _WritesThenFails(reef) as failing:
        failing.events.submit(
            EventChanges(opened=[sump_event], resolved=[Resolution(open_event, 1, NOW, 70.0)])
        )
        applied = failing.events.flush()
        assert (applied.opened, applied.resolved) == ({(2, "threshold")}, {open_event})
        with pytest.raises(RuntimeError):
            failing.commit()

    assert events(reef) == before


def test_inserting_a_second_open_event_for_an_alert_does_nothing(reef: Engine) -> None:
    add_reading(reef, 1, 85.2)
    run_cycle(reef)
    snapshot_less_cycle = RunCycle(
        lambda: _BlindUnitOfWork(reef), FixedClock(), EvaluationPolicy(), logging.getLogger()
    )

    snapshot_less_cycle()

    assert open_alert_ids(reef) == [1]


class _BlindSnapshots:
    """Sees no open events, like a second worker that read before the first one committed."""

    def __init__(self, inner: SqlSnapshotReader) -> None:
        self._inner = inner

    @property
    def remembers(self) -> bool:
        return self._inner.remembers

    @property
    def trends(self) -> bool:
        return self._inner.trends

    def windows(
        self, since: Mapping[int, datetime], until: datetime
    ) -> Mapping[int, Sequence[Reading]]:
        return self._inner.windows(since, until)

    def silences(self, now: datetime) -> Sequence[Silence]:
        return self._inner.silences(now)

    def enabled_alerts(
        self, shard: Shard = WHOLE, focus: Focus | None = None
    ) -> list[AlertSnapshot]:
        snapshots = self._inner.enabled_alerts(shard, focus)
        return [s._replace(open_event_id=None) for s in snapshots]


class _BlindUnitOfWork(SqlUnitOfWork):
    def __enter__(self) -> _BlindUnitOfWork:
        super().__enter__()
        self.snapshots = _BlindSnapshots(self.snapshots)  # type: ignore[assignment]
        return self


@pytest.mark.parametrize("indexed", [True, False], ids=["with index", "without index"])
def test_an_unguarded_legacy_database_still_never_duplicates_within_one_worker(
    engine: Engine, indexed: bool
) -> None:
    schema.upgrade(engine)
    if not indexed:
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX uq_alert_events_one_open_per_kind"))
    add_device(engine, 1)
    add_alert(engine, 1, 1)
    add_reading(engine, 1, 85.2)
    run_cycle(engine)

    RunCycle(
        lambda: _BlindUnitOfWork(engine, facts=WorkerFacts(logging.getLogger())),
        FixedClock(),
        EvaluationPolicy(),
        logging.getLogger(),
    )()

    assert open_alert_ids(engine) == [1]


def test_a_unit_of_work_looks_for_the_missing_index_once_however_many_writes_it_makes(
    engine: Engine,
) -> None:
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX uq_alert_events_one_open_per_kind"))
    for n in (1, 2):
        add_device(engine, n)
        add_alert(engine, n, n)
    lookups: list[str] = []

    def _record(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        if "uq_alert_events_one_open_per_kind" in str(args[0]):
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", _record)
    try:
        with SqlUnitOfWork(engine, facts=WorkerFacts(logging.getLogger())) as uow:
            for n in (1, 2):
                uow.events.submit(EventChanges(opened=[_too_hot(n, n, 90.0)]))
                uow.events.flush()
            uow.commit()
    finally:
        event.remove(engine, "before_cursor_execute", _record)

    assert len(lookups) == 1
    assert open_alert_ids(engine) == [1, 2]


def test_warns_once_when_the_one_open_event_index_is_missing_and_stops_when_it_is_made(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX uq_alert_events_one_open_per_kind"))
    add_device(engine, 1)
    for alert_id in (1, 2, 3):
        add_alert(engine, alert_id, 1, threshold=80.0 + alert_id)
    log = logging.getLogger("alert_worker")
    cycle = RunCycle(SqlUnitOfWorkFactory(engine, log), FixedClock(), EvaluationPolicy(), log)
    lookups: list[int] = []

    def cycle_looking_up(value: float) -> None:
        """Add a reading of `value` and run a cycle; count the index look-ups it makes."""
        add_reading(engine, 1, value)
        seen: list[str] = []

        def _record(_conn: object, _cursor: object, statement: str, *args: object) -> None:
            if "uq_alert_events_one_open_per_kind" in str(args[0]):
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", _record)
        cycle()
        event.remove(engine, "before_cursor_execute", _record)
        lookups.append(len(seen))

    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        cycle_looking_up(81.5)  # opens alert 1's event: the index is looked for, and missing
        cycle_looking_up(82.5)  # opens alert 2's: looked for again, no second warning
        schema.upgrade(engine)
        cycle_looking_up(83.5)  # opens alert 3's: found
        cycle_looking_up(84.5)  # writes nothing, and the index is known: no look-up

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert (
        "concurrent workers could duplicate events until `reef-alerts db upgrade`" in (warnings[0])
    )
    assert lookups == [1, 1, 1, 0]
    assert open_alert_ids(engine) == [1, 2, 3]


def _statements_of_a_cycle(engine: Engine, alert_count: int) -> list[str]:
    schema.upgrade(engine)
    seed_fleet(engine, alert_count)
    # As a worker makes it: with the tables its start-up check told.
    factory = SqlUnitOfWorkFactory(
        engine, logging.getLogger("alert_worker"), tables=tables_of(engine)
    )
    sent: list[str] = []

    def _record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", _record)
    # One submission of the changes: how many writes several make depends on the thread's timing.
    stats = RunCycle(
        factory, FixedClock(), EvaluationPolicy(), logging.getLogger(), submit_every=10_000
    )()
    event.remove(engine, "before_cursor_execute", _record)
    assert stats.triggered == alert_count // 2
    assert stats.resolved == len(range(2, alert_count + 1, 20))
    return sent


def test_a_cycle_sends_the_same_statements_for_10_and_1000_alerts_but_a_fetch(
    app_database_url: str,
) -> None:
    engine = make_engine(app_database_url)
    try:
        small = _statements_of_a_cycle(engine, 10)
        with engine.begin() as connection:
            for table in reversed(tables_of(engine).shared):
                connection.execute(table.delete())
        large = _statements_of_a_cycle(engine, 1000)
    finally:
        engine.dispose()

    # PostgreSQL: the worker's tables' look-up (a worker's first cycle only), the silences'
    # read, DECLARE and CLOSE of the snapshot's cursor, the FETCHes, whose batches grow from
    # 500 rows to 5,000, then the index look-up (a worker's first insert only), the insert and
    # the update, each writing its outbox rows too. SQLite: BEGIN IMMEDIATE, the worker's
    # tables' look-up, the silences' read, the two snapshot statements, the index look-up, the
    # newest event id, the insert and its outbox rows, the update and its outbox rows.
    assert [s for s in small if s != "FETCH"] == [s for s in large if s != "FETCH"]
    assert len([s for s in small if s != "FETCH"]) <= 11
    assert (small.count("FETCH"), large.count("FETCH")) in {(0, 0), (1, 2)}


@pytest.mark.parametrize("alert_count", [40, 41], ids=["short last batch", "full last batch"])
def test_a_cycle_read_in_many_batches_and_written_in_many_submissions_misses_nothing(
    engine: Engine, alert_count: int
) -> None:
    """The streamed read and the writes submitted while it goes on, at a scale a test can seed:
    batches of 2, then 3 rows, and a submission every 4 alerts. 41 alerts fill the last batch,
    so the end is found by a fetch that returns nothing, with another queued behind it."""
    schema.upgrade(engine)
    seed_fleet(engine, alert_count)
    log = logging.getLogger("alert_worker")
    factory = SqlUnitOfWorkFactory(engine, log, batches=SnapshotBatches(first=2, largest=3))

    stats = RunCycle(factory, FixedClock(), EvaluationPolicy(), log, submit_every=4)()

    resolved = len(range(2, alert_count + 1, 20))
    assert (stats.total_alerts, stats.triggered, stats.resolved) == (
        alert_count,
        (alert_count + 1) // 2,  # the odd ones
        resolved,
    )
    assert sorted(open_alert_ids(engine)) == list(range(1, alert_count + 1, 2))
    assert run_cycle(engine).triggered == 0


def test_changes_submitted_while_the_statement_thread_is_busy_are_written_together(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    for n in range(1, 4):
        add_device(engine, n)
        add_alert(engine, n, n)
    inserts: list[str] = []

    def _record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "INSERT INTO alert_events" in statement:
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", _record)
    try:
        with SqlUnitOfWork(engine) as uow:
            thread = uow._thread
            assert thread is not None
            release = threading.Event()
            thread.read(release.wait, 10)  # the thread is busy, as with a fetch
            for n in range(1, 4):
                uow.events.submit(EventChanges(opened=[_too_hot(n, n, 90.0)]))
            release.set()
            applied = uow.events.flush()
            uow.commit()
    finally:
        event.remove(engine, "before_cursor_execute", _record)

    assert applied.opened == {(n, "threshold") for n in (1, 2, 3)}
    assert len(inserts) == 1
    assert open_alert_ids(engine) == [1, 2, 3]
    engine.dispose()


def test_a_failed_background_write_is_the_error_the_cycle_sees_and_nothing_is_kept(
    postgres_url: str,
) -> None:
    """A write that fails on the statement thread aborts PostgreSQL's transaction: the fetches
    after it report the write's error, not "current transaction is aborted"."""
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    for n in range(1, 5):
        add_device(engine, n)
        add_alert(engine, n, n)
    no_such_alert = _too_hot(alert_id=99, device_id=1, value=90.0)
    try:
        with SqlUnitOfWork(engine, batches=SnapshotBatches(first=1, largest=1)) as uow:
            read = iter(uow.snapshots.enabled_alerts())
            next(read)  # the second batch is being fetched; the third waits for its turn
            uow.events.submit(EventChanges(opened=[no_such_alert]))
            with pytest.raises(IntegrityError, match="alert_events_alert_id_fkey"):
                uow.events.flush()
            with pytest.raises(IntegrityError, match="alert_events_alert_id_fkey"):
                list(read)
            with pytest.raises(IntegrityError, match="alert_events_alert_id_fkey"):
                uow.commit()

        assert events(engine) == []
    finally:
        engine.dispose()


def _fail_while_the_server_runs_a_long_statement(engine: Engine) -> None:
    with SqlUnitOfWork(engine) as uow:
        # No port runs a statement this long: put one on the unit of work's thread directly.
        thread, connection = uow._thread, uow._connection
        assert thread is not None
        assert connection is not None
        thread.read(connection.exec_driver_sql, "SELECT pg_sleep(30)")
        time.sleep(0.3)
        raise RuntimeError("cycle failed")


def test_a_failing_unit_of_work_stops_the_statement_in_flight_instead_of_waiting_for_it(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="cycle failed"):
            _fail_while_the_server_runs_a_long_statement(engine)

        assert time.monotonic() - started < 10
        assert run_cycle(engine).errors == 0  # the pool gave out a usable connection after it
    finally:
        engine.dispose()


class TestBadDataNeverStopsACycle:
    """Rows the web app (or a person) left in the shared tables that cannot be evaluated."""

    def test_counts_an_alert_with_an_unknown_operator_as_an_error_and_names_it(
        self, reef: Engine, caplog: pytest.LogCaptureFixture
    ) -> None:
        add_alert(reef, 7, 1, operator="=>")
        add_reading(reef, 1, 85.2)

        with caplog.at_level(logging.WARNING, logger="alert_worker"):
            stats = run_cycle(reef)

        assert (stats.errors, stats.triggered) == (1, 1)
        assert (
            "Alert 7 could not be evaluated: device 1, reading 1: unknown operator '=>'"
            in caplog.text
        )

    def test_counts_an_alert_whose_metric_the_events_column_cannot_hold_as_an_error(
        self, reef: Engine, generation: Generation, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The legacy alert_events.metric is VARCHAR(50); the current one has no limit."""
        long_metric = "probe1.temperature_sensor_channel_a.calibrated_celsius"
        add_device(reef, 2, "Multi", device_type="multi")
        add_alert(reef, 7, 2, long_metric, ">", 20.0)
        add_reading(
            reef,
            2,
            json_value={"probe1": {"temperature_sensor_channel_a": {"calibrated_celsius": 29.5}}},
        )
        add_reading(reef, 1, 85.2)

        with caplog.at_level(logging.WARNING, logger="alert_worker"):
            stats = run_cycle(reef)

        if generation is Generation.LEGACY:
            assert (stats.errors, stats.triggered) == (1, 1)
            assert open_alert_ids(reef) == [1]
            assert "Alert 7 could not be evaluated: device 2, reading 1: metric" in caplog.text
            assert "is longer than the 50 characters alert_events.metric can hold" in caplog.text
        else:
            assert (stats.errors, stats.triggered) == (0, 2)
            assert open_alert_ids(reef) == [1, 7]

    def test_counts_an_alert_with_a_nan_threshold_as_an_error(
        self, postgres_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Only PostgreSQL can hold one: SQLite stores NaN as NULL, which NOT NULL refuses.
        reef = make_engine(postgres_url)
        schema.upgrade(reef)
        add_device(reef, 1)
        add_alert(reef, 1, 1)
        add_alert(reef, 7, 1, threshold=math.nan)
        add_reading(reef, 1, 85.2)

        with caplog.at_level(logging.WARNING, logger="alert_worker"):
            stats = run_cycle(reef)

        assert (stats.errors, stats.triggered) == (1, 1)
        assert (
            "Alert 7 could not be evaluated: device 1, reading 1: threshold must be" in caplog.text
        )
        reef.dispose()

    @pytest.mark.parametrize(
        ("json_value", "value"),
        [
            ("warm", None),
            ([85.2, 86.0], None),
            (85.2, None),
            ({"temperature": "hot"}, None),
            ({"temperature": True}, None),
            (None, math.nan),
            (None, math.inf),
            ({"temperature": "NaN"}, None),
        ],
        ids=[
            "json string",
            "json list",
            "json number",
            "non-numeric",
            "bool",
            "nan",
            "inf",
            "nan string",
        ],
    )
    def test_skips_a_reading_without_a_usable_value_and_logs_why_at_debug(
        self,
        reef: Engine,
        caplog: pytest.LogCaptureFixture,
        json_value: object,
        value: float | None,
    ) -> None:
        add_reading(reef, 1, value, json_value=json_value)

        with caplog.at_level(logging.DEBUG, logger="alert_worker"):
            stats = run_cycle(reef)

        assert (stats.skipped, stats.errors, stats.triggered) == (1, 0, 0)
        assert "Alert 1 is skipped:" in caplog.text

    def test_skips_a_reading_timestamped_in_the_future(
        self, reef: Engine, caplog: pytest.LogCaptureFixture
    ) -> None:
        add_reading(reef, 1, 85.2, age=-timedelta(hours=1))

        with caplog.at_level(logging.DEBUG, logger="alert_worker"):
            stats = run_cycle(reef)

        assert stats.skipped == 1
        assert "in the future" in caplog.text

    @pytest.mark.parametrize(
        ("stored", "reason"),
        [
            ("infinity", "in the future"),
            ("10000-01-01 00:00:00+00", "in the future"),
            ("-infinity", "s old"),
            ("0044-03-15 12:00:00+00 BC", "s old"),
        ],
    )
    def test_reads_postgresql_timestamps_a_datetime_cannot_hold_as_the_ends_of_time(
        self, postgres_url: str, caplog: pytest.LogCaptureFixture, stored: str, reason: str
    ) -> None:
        # psycopg2 itself fails on years after 9999 and before 1, which stopped every cycle.
        reef = make_engine(postgres_url)
        schema.upgrade(reef)
        add_device(reef, 1)
        add_device(reef, 2, "Sump")
        add_alert(reef, 1, 1)
        add_alert(reef, 2, 2)
        add_reading(reef, 2, 85.2)
        with reef.begin() as connection:
            connection.execute(
                text("INSERT INTO history (device_id, timestamp, value) VALUES (1, :ts, 85.2)"),
                {"ts": stored},
            )

        with caplog.at_level(logging.DEBUG, logger="alert_worker"):
            stats = run_cycle(reef)

        assert (stats.skipped, stats.triggered, stats.errors) == (1, 1, 0)
        [skipped] = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert skipped.startswith("Alert 1 is skipped:")
        assert reason in skipped
        reef.dispose()

    def test_skips_an_alert_whose_device_row_is_missing(
        self, sqlite_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        engine = make_engine(sqlite_url)  # SQLite enforces no foreign keys by default
        schema.upgrade(engine)
        add_alert(engine, 1, 404)

        with caplog.at_level(logging.DEBUG, logger="alert_worker"):
            stats = run_cycle(engine)

        assert stats.skipped == 1
        assert "device 404 does not exist" in caplog.text
        engine.dispose()

    def test_treats_naive_sqlite_timestamps_as_utc(self, sqlite_url: str) -> None:
        engine = make_engine(sqlite_url)
        schema.upgrade(engine)
        add_device(engine, 1)
        add_alert(engine, 1, 1)
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO history (device_id, timestamp, value) VALUES (1, :ts, 85.2)"),
                {"ts": (NOW - timedelta(seconds=30)).replace(tzinfo=None).isoformat(" ")},
            )

        stats = run_cycle(engine)

        assert stats.triggered == 1
        engine.dispose()


def test_a_second_worker_inserting_the_same_open_event_waits_and_then_does_nothing(
    postgres_url: str,
) -> None:
    """The ON CONFLICT arbiter itself, not the NOT EXISTS check: the second insert cannot see the
    first, uncommitted one, so only the unique index stops it."""
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    add_device(engine, 1)
    add_alert(engine, 1, 1)
    event = _too_hot(alert_id=1, device_id=1, value=85.2)
    second: list[AppliedChanges] = []
    with SqlUnitOfWork(engine) as first:
        first.events.submit(EventChanges(opened=[event]))
        assert first.events.flush().opened == {(1, "threshold")}

        def insert_again() -> None:
            with SqlUnitOfWork(engine) as other:
                other.events.submit(EventChanges(opened=[event]))
                second.append(other.events.flush())
                other.commit()

        racer = threading.Thread(target=insert_again)
        racer.start()
        time.sleep(0.5)
        assert racer.is_alive()  # waiting on the first transaction's index entry
        first.commit()
    racer.join(timeout=10)

    assert second == [AppliedChanges()]
    assert open_alert_ids(engine) == [1]
    engine.dispose()


@pytest.mark.parametrize("shard", [WHOLE, Shard.of(4, {1, 3}, "w")], ids=["whole", "shard"])
@pytest.mark.parametrize("tables", [LEGACY, CURRENT], ids=["legacy", "current"])
def test_the_snapshot_queries_select_the_columns_in_the_order_they_are_unpacked(
    shard: Shard, tables: SharedTables
) -> None:
    assert tuple(snapshot_query(tables, shard).selected_columns.keys()) == SNAPSHOT_COLUMNS
    assert tuple(watched_devices_query(tables, shard).selected_columns.keys()) == CONTEXT_COLUMNS
    assert tuple(alerts_query(tables, shard).selected_columns.keys()) == (
        *ALERT_COLUMNS,
        *EVENT_COLUMNS,
        *STATUS_COLUMNS,
        *RULE_COLUMNS,
        *TREND_COLUMNS,
    )
    for statuses, rules, trends in itertools.product((True, False), repeat=3):
        # without the status, the rule or the trend tables, NULLs in their place
        query = snapshot_query(tables, shard, statuses=statuses, rules=rules, trends=trends)
        assert tuple(query.selected_columns.keys()) == SNAPSHOT_COLUMNS


def _too_hot(alert_id: int, device_id: int, value: float) -> AlertEvent:
    """A new event of a `temperature > 82` alert."""
    return AlertEvent(
        alert_id=alert_id,
        device_id=device_id,
        triggered_at=NOW,
        current_value=value,
        threshold_value=82.0,
        operator=Operator.GT,
        metric="temperature",
    )
