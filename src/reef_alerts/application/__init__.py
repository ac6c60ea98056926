"""Use cases: run one evaluation cycle, keep the worker's statistics. No SQL, no CLI."""

from reef_alerts.application.cycle import CycleStats, RunCycle

__all__ = ["CycleStats", "RunCycle"]
