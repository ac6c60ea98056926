"""WorkerStatistics: totals across cycles and a summary for people, from timestamps passed in."""

import pytest

from reef_alerts.application import CycleStats, WorkerStatistics
from reef_alerts.application.statistics import format_duration


def cycle(**counts: int) -> CycleStats:
    stats = CycleStats(**counts)
    stats.total_alerts = stats.evaluated + stats.skipped + stats.errors
    return stats


def test_a_fresh_worker_has_done_nothing_and_never_evaluated() -> None:
    summary = WorkerStatistics(started_at=100.0).summary(now=100.0)

    assert summary["cycles"] == 0
    assert summary["failed_cycles"] == 0
    assert summary["alerts_evaluated"] == 0
    assert summary["last_evaluation"] == "never"
    assert summary["last_failure"] == "never"
    assert summary["uptime"] == "0.00s"


def test_completed_cycles_add_up_their_counts() -> None:
    statistics = WorkerStatistics(started_at=0.0)

    statistics.record(cycle(evaluated=3, triggered=1, skipped=1), started_at=0.0, finished_at=0.2)
    statistics.record(cycle(evaluated=2, resolved=1, errors=1), started_at=30.0, finished_at=30.5)
    summary = statistics.summary(now=31.0)

    assert summary["cycles"] == 2
    assert summary["alerts_evaluated"] == 5
    assert summary["alerts_triggered"] == 1
    assert summary["alerts_resolved"] == 1
    assert summary["alerts_skipped"] == 1
    assert summary["errors"] == 1
    assert summary["longest_cycle"] == "0.50s"


def test_time_since_last_evaluation_counts_from_the_end_of_the_last_completed_cycle() -> None:
    statistics = WorkerStatistics(started_at=0.0)
    statistics.record(cycle(evaluated=1), started_at=10.0, finished_at=12.0)

    assert statistics.summary(now=15.0)["last_evaluation"] == "3.00s ago"


def test_a_failed_cycle_is_counted_apart_and_leaves_the_last_evaluation_alone() -> None:
    statistics = WorkerStatistics(started_at=0.0)
    statistics.record(cycle(evaluated=1), started_at=0.0, finished_at=1.0)

    statistics.record_failure(finished_at=31.0)
    summary = statistics.summary(now=41.0)

    assert summary["cycles"] == 1
    assert summary["failed_cycles"] == 1
    assert statistics.attempted == 2
    assert summary["last_evaluation"] == "40.0s ago"
    assert summary["last_failure"] == "10.0s ago"


def test_overruns_are_counted() -> None:
    statistics = WorkerStatistics(started_at=0.0)

    statistics.record_overrun()

    assert statistics.summary(now=1.0)["overruns"] == 1


def test_uptime_is_measured_from_the_start() -> None:
    statistics = WorkerStatistics(started_at=1_000.0)

    assert statistics.summary(now=1_000.0 + 3_723.0)["uptime"] == "1h 02m 03s"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.15, "0.15s"),
        (42.04, "42.0s"),
        (60.0, "1m 00s"),
        (303.9, "5m 03s"),
        (7_503.0, "2h 05m 03s"),
        (3 * 86_400 + 2 * 3_600 + 5 * 60 + 7, "3d 02h 05m"),
        (-1.0, "0.00s"),
    ],
)
def test_durations_are_written_for_people(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
