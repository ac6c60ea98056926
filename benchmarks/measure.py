"""Time one implementation's cycles in a process of its own and print one JSON line.

A process per implementation keeps peak RSS honest (`ru_maxrss` of this process alone).

    python -m benchmarks.measure reef URL --now 2024-06-01T12:00:00+00:00 --repeat 5
    python -m benchmarks.measure reference URL --now ...

Both see the same frozen clock, the instant the data was generated for, so a slow run cannot
make fresh readings stale halfway through; the clock does not change how much work a cycle does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from benchmarks.reference import run_reference_cycle

Cycle = Callable[[], Any]


@attrs.frozen
class FrozenClock:
    """The clock port, stopped at `at`."""

    at: datetime

    def now(self) -> datetime:
        return self.at


class StatementCounter:
    """Counts the statements an engine sends, via `before_cursor_execute`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1


def reef_cycle(url: str, now: datetime) -> tuple[sa.Engine, Cycle]:
    """One reef_alerts cycle, wired as the worker wires it but with a frozen clock."""
    from reef_alerts.adapters.database import make_engine
    from reef_alerts.adapters.live import SqlReadingWatcher
    from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
    from reef_alerts.application import RunCycle
    from reef_alerts.domain import EvaluationPolicy

    logging.getLogger("alert_worker").setLevel(
        logging.WARNING
    )  # its INFO per trigger would dominate
    engine = make_engine(url)
    cycle = RunCycle(
        # With the tables the worker's start-up check tells, before its first cycle.
        SqlUnitOfWorkFactory(engine, logging.getLogger("alert_worker"), tables=_tables_of(engine)),
        FrozenClock(now),
        EvaluationPolicy(),
        logging.getLogger("alert_worker"),
        # As `reef-alerts run` wires it, live passes on: the cycle notes their deadlines.
        watcher=SqlReadingWatcher(engine),
    )
    return engine, lambda: cycle().as_dict()


def reference_cycle(url: str, now: datetime) -> tuple[sa.Engine, Cycle]:
    """One cycle of the specification's per-alert algorithm."""
    engine = sa.create_engine(url)
    tables = _tables_of(engine)
    return engine, lambda: run_reference_cycle(engine, tables, now).as_dict()


def _tables_of(engine: sa.Engine) -> Any:
    """The database's shared tables, of its generation."""
    from reef_alerts.adapters.schema import detect_tables

    with engine.connect() as connection:
        return detect_tables(connection)


IMPLEMENTATIONS = {"reef": reef_cycle, "reference": reference_cycle}


@contextlib.contextmanager
def _as_the_worker_runs(implementation: str) -> Iterator[None]:
    """The process-wide settings `reef-alerts run` gives its cycles, for reef_alerts's."""
    if implementation != "reef":
        yield
        return
    from reef_alerts.entrypoints.tuning import collector_paused, switch_interval

    with switch_interval(), collector_paused():
        yield


def measure(implementation: str, url: str, now: datetime, repeat: int) -> dict[str, Any]:
    """Run `repeat` cycles; the first one's statements, stats and CPU time, every one's seconds.

    The 1-minute load average before the runs is reported: other work on the machine skews
    wall-clock times, and CPU seconds show how much of a cycle is this process's own work.
    """
    engine, cycle = IMPLEMENTATIONS[implementation](url, now)
    counter = StatementCounter(engine)
    with engine.connect() as conn:  # a running worker has its connection already
        conn.execute(sa.text("SELECT 1"))
    seconds: list[float] = []
    first: dict[str, Any] = {}
    load = os.getloadavg()[0]
    for run in range(repeat):
        counter.count = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        with _as_the_worker_runs(implementation):
            stats = cycle()
        seconds.append(time.perf_counter() - started)
        if run == 0:
            cpu = time.process_time() - cpu_started
            first = {"stats": stats, "statements": counter.count, "cpu_seconds": round(cpu, 4)}
    engine.dispose()
    return first | {
        "implementation": implementation,
        "seconds": seconds[0],
        "repeat_median_seconds": statistics.median(seconds[1:]) if repeat > 1 else None,
        "all_seconds": [round(s, 4) for s in seconds],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average_before": round(load, 2),
    }


def profile(implementation: str, url: str, now: datetime, output: Path) -> None:
    """Profile one cycle with pyinstrument; HTML when `output` ends in .html, text otherwise."""
    from pyinstrument import Profiler

    engine, cycle = IMPLEMENTATIONS[implementation](url, now)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    profiler = Profiler(interval=0.0005)
    with profiler, _as_the_worker_runs(implementation):
        cycle()
    engine.dispose()
    if output.suffix == ".html":
        output.write_text(profiler.output_html())
    else:
        output.write_text(profiler.output_text(unicode=True, show_all=False))


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB.

    Linux's VmHWM, not `ru_maxrss`: on exec the kernel carries the parent's high-water mark into
    `ru_maxrss` (a vfork child shares its parent's memory until then), so the runner's own size
    would show up as the worker's. Elsewhere `ru_maxrss`, which BSDs report in bytes.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1024 if sys.platform.startswith("linux") else maxrss / 2**20


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("implementation", choices=sorted(IMPLEMENTATIONS))
    parser.add_argument("url")
    parser.add_argument("--now", type=datetime.fromisoformat, required=True)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="profile one cycle into this file instead")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.implementation, args.url, args.now, args.profile)
        print(json.dumps({"profile": str(args.profile)}))
    else:
        print(json.dumps(measure(args.implementation, args.url, args.now, args.repeat)))


if __name__ == "__main__":
    main()
