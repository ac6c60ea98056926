"""The evaluation loop on a fake clock: schedule, overruns, failures, statistics, stopping."""

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from reef_alerts.application import CycleStats, WorkerStatistics
from reef_alerts.config import load_settings
from reef_alerts.entrypoints.worker import (
    MAX_ERROR_LENGTH,
    Worker,
    describe_error,
    install_signal_handlers,
    log_startup,
)

LOGGER = "alert_worker.tests.loop"
T0 = 1_000.0
PASSWORD = "hunter2-Reef"


class FakeTime:
    """A monotonic clock that moves only when a cycle runs or the worker sleeps."""

    def __init__(self, stop: threading.Event) -> None:
        self.now = T0
        self.stop = stop
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.now += seconds
        return self.stop.is_set()


Step = tuple[float, CycleStats | Exception]


class ScriptedCycles:
    """Plays `steps` in order: each takes its duration on the fake clock, then returns or raises.

    It sets the stop flag during the last step, as a signal arriving mid-cycle would.
    """

    def __init__(self, clock: FakeTime, steps: list[Step]) -> None:
        self.clock = clock
        self.steps = list(steps)
        self.starts: list[float] = []

    def __call__(self) -> CycleStats:
        duration, outcome = self.steps.pop(0)
        self.starts.append(self.clock.now)
        self.clock.now += duration
        if not self.steps:
            self.clock.stop.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def ok(duration: float, evaluated: int = 3, triggered: int = 0) -> Step:
    return duration, CycleStats(total_alerts=evaluated, evaluated=evaluated, triggered=triggered)


def database_down() -> OperationalError:
    driver_error = Exception(
        'connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?\n"
        f"DSN: host=db user=reef password={PASSWORD} via postgresql://reef:{PASSWORD}@db/reef"
    )
    return OperationalError("SELECT alerts.id FROM alerts", {}, driver_error)


@pytest.fixture
def stop() -> threading.Event:
    return threading.Event()


@pytest.fixture
def clock(stop: threading.Event) -> FakeTime:
    return FakeTime(stop)


@pytest.fixture
def caplog_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def make_worker(
    clock: FakeTime,
    steps: list[Step],
    *,
    interval: float = 30.0,
    stats_every: int = 100,
) -> tuple[Worker, ScriptedCycles]:
    cycles = ScriptedCycles(clock, steps)
    worker = Worker(
        run_cycle=cycles,
        interval=interval,
        log=logging.getLogger(LOGGER),
        statistics=WorkerStatistics(started_at=clock.monotonic()),
        stop_event=clock.stop,
        stats_every=stats_every,
        secrets=[PASSWORD],
        monotonic=clock.monotonic,
        wait=clock.wait,
    )
    return worker, cycles


def messages(caplog: pytest.LogCaptureFixture, level: int | None = None) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and (level is None or record.levelno == level)
    ]


def test_cycles_start_on_a_fixed_schedule_whatever_each_one_takes(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, cycles = make_worker(clock, [ok(0.15), ok(5.0), ok(29.0), ok(0.5)], interval=30.0)

    worker.run()

    assert cycles.starts == [T0, T0 + 30, T0 + 60, T0 + 90]
    assert clock.sleeps == pytest.approx([29.85, 25.0, 1.0])
    assert "Sleeping 29.85s until the next evaluation cycle" in messages(caplog_debug)


def test_aligned_cycles_start_on_wall_clock_multiples_of_the_interval(clock: FakeTime) -> None:
    cycles = ScriptedCycles(clock, [ok(0.2), ok(0.4), ok(0.3)])
    wall_offset = 1_700_000_007.0 - T0  # the wall clock reads 7 s past a 10 s boundary at start
    worker = Worker(
        run_cycle=cycles,
        interval=10.0,
        log=logging.getLogger(LOGGER),
        statistics=WorkerStatistics(started_at=clock.monotonic()),
        stop_event=clock.stop,
        monotonic=clock.monotonic,
        wait=clock.wait,
        aligned=True,
        wall=lambda: clock.now + wall_offset,
    )

    worker.run()

    walls = [start + wall_offset for start in cycles.starts]
    assert walls[0] == pytest.approx(1_700_000_007.0)  # the first cycle does not wait
    assert walls[1:] == pytest.approx([1_700_000_010.0, 1_700_000_020.0])


def test_the_loop_logs_the_specification_lines(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, _ = make_worker(clock, [ok(0.15, evaluated=3, triggered=1)])

    worker.run()

    info = messages(caplog_debug, logging.INFO)
    assert info[:3] == [
        "Starting continuous evaluation loop...",
        "Starting evaluation cycle 1",
        "Evaluation cycle completed in 0.15s: {'total_alerts': 3, 'evaluated': 3, "
        "'triggered': 1, 'resolved': 0, 'skipped': 0, 'errors': 0}",
    ]


def test_a_cycle_longer_than_the_interval_warns_and_the_next_starts_at_once(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, cycles = make_worker(clock, [ok(1), ok(15), ok(1), ok(1)], interval=10.0)

    worker.run()

    # cycle 2 ends at 25: cycle 3 starts then, not at 20 or 30, and the schedule restarts there
    assert cycles.starts == [T0, T0 + 10, T0 + 25, T0 + 35]
    assert messages(caplog_debug, logging.WARNING) == [
        "Evaluation cycle 2 took 15.00s, longer than the 10s interval; starting the next cycle now"
    ]
    assert worker.statistics.overruns == 1


def test_an_overrun_of_several_intervals_runs_one_cycle_not_a_burst(clock: FakeTime) -> None:
    worker, cycles = make_worker(clock, [ok(1), ok(35), ok(1), ok(1)], interval=10.0)

    worker.run()

    assert cycles.starts == [T0, T0 + 10, T0 + 45, T0 + 55]


def test_a_failed_cycle_is_logged_at_error_on_one_line_and_the_loop_carries_on(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, cycles = make_worker(clock, [ok(1), (2.0, database_down()), ok(1)], interval=10.0)

    worker.run()

    assert cycles.starts == [T0, T0 + 10, T0 + 20]
    [error] = [r for r in caplog_debug.records if r.levelno == logging.ERROR]
    message = error.getMessage()
    assert message.startswith("Evaluation cycle 2 failed: OperationalError: ")
    assert "Connection refused" in message
    assert "\n" not in message
    assert error.exc_info is None
    assert "Starting evaluation cycle 3" in messages(caplog_debug)
    assert worker.statistics.failed_cycles == 1
    assert worker.statistics.cycles == 2


def test_a_password_in_a_driver_error_never_reaches_a_log_message(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, _ = make_worker(clock, [(1.0, database_down())])

    worker.run()

    assert caplog_debug.records
    for record in caplog_debug.records:
        assert PASSWORD not in record.getMessage()
    assert any("password=***" in m for m in messages(caplog_debug, logging.ERROR))


def test_statistics_are_logged_every_n_cycles_and_at_shutdown(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, _ = make_worker(clock, [ok(1)] * 5, interval=10.0, stats_every=2)

    worker.run()

    logged = messages(caplog_debug, logging.INFO)
    stats_lines = [i for i, m in enumerate(logged) if m.startswith("Worker statistics: ")]
    assert len(stats_lines) == 3
    assert logged[stats_lines[0] - 1].startswith("Evaluation cycle completed")
    assert logged[stats_lines[0] - 2] == "Starting evaluation cycle 2"
    assert logged[stats_lines[1] - 2] == "Starting evaluation cycle 4"
    assert logged[stats_lines[2] - 2] == "Starting evaluation cycle 5"
    final = logged[stats_lines[2]]
    for expected in ("'cycles': 5", "'alerts_evaluated': 15", "'uptime': '41.0s'", "'errors': 0"):
        assert expected in final
    assert "'last_evaluation': '0.00s ago'" in final
    assert logged[-1] == "Alert worker stopped"


def test_failed_cycles_count_towards_the_statistics_period(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, _ = make_worker(
        clock, [(1.0, database_down()), (1.0, database_down()), ok(1)], stats_every=2
    )

    worker.run()

    stats = [m for m in messages(caplog_debug) if m.startswith("Worker statistics: ")]
    assert len(stats) == 2
    assert "'failed_cycles': 2" in stats[0]


def test_a_worker_stopped_before_its_first_cycle_still_logs_its_statistics(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, cycles = make_worker(clock, [ok(1)])
    clock.stop.set()

    worker.run()

    assert cycles.starts == []
    assert any(m.startswith("Worker statistics: ") for m in messages(caplog_debug))


def test_an_idle_worker_stops_within_a_second_of_the_stop_flag(stop: threading.Event) -> None:
    worker = Worker(
        run_cycle=CycleStats,
        interval=3_600.0,
        log=logging.getLogger(LOGGER),
        statistics=WorkerStatistics(started_at=time.monotonic()),
        stop_event=stop,
    )
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()

    worker.run()

    assert time.monotonic() - started < 1.0
    assert worker.statistics.cycles == 1


def test_run_once_returns_the_cycle_statistics(clock: FakeTime) -> None:
    worker, _ = make_worker(clock, [ok(0.2, evaluated=2, triggered=1)])

    stats = worker.run_once()

    assert (stats.evaluated, stats.triggered) == (2, 1)
    assert worker.statistics.cycles == 1


def test_run_once_logs_a_failure_then_raises_it(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    worker, _ = make_worker(clock, [(1.0, database_down())])

    with pytest.raises(OperationalError):
        worker.run_once()

    assert messages(caplog_debug, logging.ERROR)[0].startswith("Evaluation cycle 1 failed: ")
    assert worker.statistics.failed_cycles == 1


@pytest.mark.parametrize(("interval", "stats_every"), [(0.0, 10), (-1.0, 10), (30.0, 0)])
def test_the_worker_rejects_a_non_positive_interval_or_statistics_period(
    stop: threading.Event, interval: float, stats_every: int
) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        Worker(
            run_cycle=CycleStats,
            interval=interval,
            log=logging.getLogger(LOGGER),
            statistics=WorkerStatistics(started_at=0.0),
            stop_event=stop,
            stats_every=stats_every,
        )


def test_describe_error_gives_one_redacted_line_even_for_a_password_with_blanks() -> None:
    error = RuntimeError("login as reef with\n 'pass word' failed")

    assert describe_error(error, ["pass word"]) == "RuntimeError: login as reef with '***' failed"


def test_describe_error_cuts_a_long_message() -> None:
    text = describe_error(ValueError("x" * 5_000))

    assert len(text) == MAX_ERROR_LENGTH
    assert text.endswith("...")


def test_describe_error_names_an_error_without_a_message() -> None:
    assert describe_error(TimeoutError()) == "TimeoutError"


@pytest.fixture
def restore_signals() -> Iterator[None]:
    # a failing test must not leave the test run with the worker's handlers installed
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.usefixtures("restore_signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_first_signal_asks_for_a_stop_and_the_second_meets_the_default_action(
    signum: signal.Signals,
) -> None:
    asked: list[str] = []
    done = threading.Event()
    restore = install_signal_handlers(lambda name: (asked.append(name), done.set()))

    os.kill(os.getpid(), signum)

    assert done.wait(timeout=5.0)
    assert asked == [signum.name]
    assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    restore()


class BlockingCycle:
    """A cycle that waits, as one blocked on a lock does, until cancelled (then it fails) or
    released (then it completes)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> CycleStats:
        self.started.set()
        while not self.release.wait(0.01):
            if self.cancelled.is_set():
                raise OperationalError(
                    "FETCH", {}, Exception("canceling statement due to user request")
                )
        return CycleStats()


def running(cycle: BlockingCycle, stop: threading.Event) -> tuple[Worker, threading.Thread]:
    """A worker running `cycle` on a thread of its own, once the cycle has started."""
    worker = Worker(
        cycle,
        30.0,
        logging.getLogger(LOGGER),
        WorkerStatistics(T0),
        stop,
        cancel=cycle.cancelled.set,
    )
    worker.CANCEL_AFTER = 0.05
    runner = threading.Thread(target=worker.run)
    runner.start()
    assert cycle.started.wait(5.0)
    return worker, runner


def test_a_stop_cancels_a_cycle_that_does_not_end_and_says_so(
    stop: threading.Event, caplog_debug: pytest.LogCaptureFixture
) -> None:
    cycle = BlockingCycle()
    worker, runner = running(cycle, stop)

    worker.request_stop("SIGTERM")
    runner.join(timeout=5.0)

    assert not runner.is_alive()
    assert cycle.cancelled.is_set()
    logged = messages(caplog_debug)
    assert "Received SIGTERM, stopping after the cycle in flight" in logged
    assert "Evaluation cycle 1 was cancelled and rolled back" in logged
    assert not [m for m in logged if "cycle 1 failed" in m]


def test_a_stop_lets_a_cycle_that_ends_in_time_finish(stop: threading.Event) -> None:
    cycle = BlockingCycle()
    worker, runner = running(cycle, stop)
    worker.CANCEL_AFTER = 5.0
    threading.Timer(0.05, cycle.release.set).start()

    worker.request_stop("SIGINT")
    runner.join(timeout=5.0)

    assert not cycle.cancelled.is_set()
    assert worker.statistics.cycles == 1


@pytest.mark.usefixtures("restore_signals")
def test_restoring_puts_the_previous_handlers_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    restore = install_signal_handlers(lambda _name: None)
    assert signal.getsignal(signal.SIGTERM) is not before

    restore()

    assert signal.getsignal(signal.SIGTERM) is before


def test_startup_lines_say_when_the_embedded_database_is_used(
    tmp_path: Path, caplog_debug: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log_startup(logging.getLogger(LOGGER), load_settings({}), interval=30.0)

    logged = messages(caplog_debug)
    assert logged[0].startswith("Starting Reef Alert Worker")
    assert logged[1] == "Evaluation interval: 30 seconds"
    assert "embedded SQLite database" in logged[2]
    assert logged[-1] == "Configuration validation passed"


def test_startup_lines_show_the_database_url_without_its_password(
    caplog_debug: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings({"DATABASE_URL": f"postgresql://reef:{PASSWORD}@db/reef"})

    log_startup(logging.getLogger(LOGGER), settings, interval=None)

    logged = messages(caplog_debug)
    assert "Database: postgresql://reef:***@db/reef (ENV=development)" in logged
    assert not any("Evaluation interval" in m for m in logged)
    assert not any(PASSWORD in m for m in logged)


class UnfixableError(Exception):
    """An error no later cycle can get past."""


def test_a_fatal_error_stops_the_worker_instead_of_failing_every_cycle(
    stop: threading.Event, caplog_debug: pytest.LogCaptureFixture
) -> None:
    clock = FakeTime(stop)
    cycles = ScriptedCycles(
        clock, [(1.0, UnfixableError("another partition count")), ok(1.0), ok(1.0)]
    )
    worker = Worker(
        cycles,
        30.0,
        logging.getLogger(LOGGER),
        WorkerStatistics(T0),
        stop,
        monotonic=clock.monotonic,
        wait=clock.wait,
        fatal=(UnfixableError,),
    )

    worker.run()

    assert len(cycles.starts) == 1
    assert isinstance(worker.fatal, UnfixableError)
    assert "Stopping: no cycle can succeed until this is put right" in messages(caplog_debug)


class ScriptedLivePasses:
    """A live pass that takes `duration` on the fake clock and plays `outcomes` in order, then
    finds nothing to do."""

    def __init__(
        self,
        clock: FakeTime,
        outcomes: list[CycleStats | Exception | None],
        duration: float,
        stop_at: int | None = None,
    ) -> None:
        """`stop_at`: the pass during which the stop flag is set, as a signal would."""
        self.clock = clock
        self.outcomes = list(outcomes)
        self.duration = duration
        self.stop_at = stop_at
        self.starts: list[float] = []

    def __call__(self) -> CycleStats | None:
        self.starts.append(self.clock.now)
        if len(self.starts) == self.stop_at:
            self.clock.stop.set()
        self.clock.now += self.duration
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def live_worker(
    clock: FakeTime, steps: list[Step], passes: ScriptedLivePasses
) -> tuple[Worker, ScriptedCycles]:
    cycles = ScriptedCycles(clock, steps)
    worker = Worker(
        run_cycle=cycles,
        interval=10.0,
        log=logging.getLogger(LOGGER),
        statistics=WorkerStatistics(started_at=clock.monotonic()),
        stop_event=clock.stop,
        secrets=[PASSWORD],
        monotonic=clock.monotonic,
        wait=clock.wait,
        live=passes,
        live_every=0.25,
    )
    return worker, cycles


def test_live_passes_run_every_quarter_second_between_cycles_the_first_at_once(
    clock: FakeTime,
) -> None:
    passes = ScriptedLivePasses(clock, [], duration=0.05)
    worker, cycles = live_worker(clock, [ok(2.0), ok(1.0)], passes)

    worker.run()

    assert cycles.starts == [T0, T0 + 10]
    assert passes.starts[0] == T0 + 2.0
    assert passes.starts[1:4] == pytest.approx([T0 + 2.25, T0 + 2.5, T0 + 2.75])
    assert len(passes.starts) == 32  # from 2.0 to 9.75: the cycle at 10 is not delayed
    assert max(passes.starts) < T0 + 10


def test_a_failing_live_pass_is_logged_once_until_one_succeeds_and_the_cycles_go_on(
    clock: FakeTime, caplog_debug: pytest.LogCaptureFixture
) -> None:
    judged = CycleStats(total_alerts=1, evaluated=1, triggered=1)
    passes = ScriptedLivePasses(
        clock, [database_down(), database_down(), database_down(), judged], duration=0.01
    )
    worker, cycles = live_worker(clock, [ok(1.0), ok(1.0)], passes)

    worker.run()

    errors = messages(caplog_debug, logging.ERROR)
    assert len(errors) == 1
    assert errors[0].startswith("Live pass failed: OperationalError: ")
    assert PASSWORD not in errors[0]
    assert "Live passes succeed again" in messages(caplog_debug, logging.INFO)
    assert len(cycles.starts) == 2
    statistics = worker.statistics
    assert (statistics.live_passes, statistics.failed_live_passes) == (1, 3)
    assert statistics.alerts_triggered == 1  # the cycles triggered none


def test_a_stop_during_a_live_pass_ends_the_loop(clock: FakeTime) -> None:
    passes = ScriptedLivePasses(clock, [], duration=0.01, stop_at=3)
    worker, cycles = live_worker(clock, [ok(1.0), ok(1.0)], passes)

    worker.run()

    assert len(cycles.starts) == 1
    assert len(passes.starts) == 3


def test_between_cycles_longer_than_the_interval_one_live_pass_still_runs(
    clock: FakeTime,
) -> None:
    passes = ScriptedLivePasses(clock, [], duration=0.05)
    worker, cycles = live_worker(clock, [ok(12.0), ok(12.0), ok(1.0)], passes)

    worker.run()

    assert cycles.starts == pytest.approx([T0, T0 + 12.05, T0 + 24.1])
    assert passes.starts[:2] == pytest.approx([T0 + 12.0, T0 + 24.05])
