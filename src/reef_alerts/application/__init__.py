"""Use cases: run one evaluation cycle, keep the worker's statistics. No SQL, no CLI."""

from reef_alerts.application.cycle import RunCycle
from reef_alerts.application.outcomes import CycleStats
from reef_alerts.application.statistics import WorkerStatistics

__all__ = ["CycleStats", "RunCycle", "WorkerStatistics"]
