"""The worker's running totals across cycles. Pure: times are monotonic timestamps passed in."""

from __future__ import annotations

import attrs

from reef_alerts.application.outcomes import CycleStats


@attrs.define
class WorkerStatistics:
    """What the worker has done since `started_at` (a `time.monotonic()` reading)."""

    started_at: float
    cycles: int = 0
    """Cycles that completed and committed."""
    failed_cycles: int = 0
    """Cycles that raised (database down, ...) and changed nothing."""
    overruns: int = 0
    """Cycles that took longer than the interval, so the schedule slipped."""
    live_passes: int = 0
    """Live passes that judged some alerts and committed (issue 16); their alerts and events
    count in the totals below."""
    failed_live_passes: int = 0
    alerts_evaluated: int = 0
    alerts_triggered: int = 0
    alerts_resolved: int = 0
    alerts_skipped: int = 0
    errors: int = 0
    """Alerts that could not be evaluated: a broken definition, or evaluation raised."""
    longest_cycle: float = 0.0
    """Seconds taken by the slowest completed cycle."""
    last_evaluation_at: float | None = None
    """When the last completed cycle finished; None before the first."""
    last_failure_at: float | None = None
    """When the last failed cycle gave up; None if none has failed."""

    @property
    def attempted(self) -> int:
        """Cycles run so far, completed or failed."""
        return self.cycles + self.failed_cycles

    def record(self, stats: CycleStats, started_at: float, finished_at: float) -> None:
        """Add a completed cycle that ran from `started_at` to `finished_at`."""
        self.cycles += 1
        self._add(stats)
        self.longest_cycle = max(self.longest_cycle, finished_at - started_at)
        self.last_evaluation_at = finished_at

    def record_live(self, stats: CycleStats) -> None:
        """Add a live pass that committed `stats`."""
        self.live_passes += 1
        self._add(stats)

    def record_live_failure(self) -> None:
        self.failed_live_passes += 1

    def _add(self, stats: CycleStats) -> None:
        self.alerts_evaluated += stats.evaluated
        self.alerts_triggered += stats.triggered
        self.alerts_resolved += stats.resolved
        self.alerts_skipped += stats.skipped
        self.errors += stats.errors

    def record_failure(self, finished_at: float) -> None:
        """Add a cycle that raised at `finished_at`; the last evaluation stays where it was."""
        self.failed_cycles += 1
        self.last_failure_at = finished_at

    def record_overrun(self) -> None:
        """Note that a cycle outlasted the interval."""
        self.overruns += 1

    def summary(self, now: float) -> dict[str, int | str]:
        """The totals at `now`, with durations written for people."""
        return {
            "uptime": format_duration(now - self.started_at),
            "cycles": self.cycles,
            "failed_cycles": self.failed_cycles,
            "overruns": self.overruns,
            "live_passes": self.live_passes,
            "failed_live_passes": self.failed_live_passes,
            "alerts_evaluated": self.alerts_evaluated,
            "alerts_triggered": self.alerts_triggered,
            "alerts_resolved": self.alerts_resolved,
            "alerts_skipped": self.alerts_skipped,
            "errors": self.errors,
            "longest_cycle": format_duration(self.longest_cycle),
            "last_evaluation": _ago(self.last_evaluation_at, now),
            "last_failure": _ago(self.last_failure_at, now),
        }


def _ago(then: float | None, now: float) -> str:
    return "never" if then is None else f"{format_duration(now - then)} ago"


def format_duration(seconds: float) -> str:
    """`seconds` as `0.15s`, `42.0s`, `5m 03s`, `2h 05m 03s` or `3d 02h 05m`."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"
