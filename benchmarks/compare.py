"""Time reef_alerts's cycle for two or more checkouts of the code side by side, interleaved on
fresh copies of the same data: for judging a change on a machine whose speed drifts.

    git worktree add /tmp/before 892a177
    python -m benchmarks.compare /tmp/before . --alerts 10000 --rounds 8

Each round runs every checkout once, in turn, each on a fresh copy and in a process of its own
with the checkout's `src/` first on PYTHONPATH. Since the runs alternate, a drift in the
machine's speed falls on every checkout alike; single runs still spread by ±20 % here, so use
eight rounds or more. One JSON line per checkout: the medians of its first and later cycles,
and every first cycle.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.databases import DEFAULT_SERVER_URL, scratch_for
from benchmarks.generate import generate
from benchmarks.run import default_depth, measure_in_process
from reef_alerts.adapters.tables import Generation


def compare(
    checkouts: Sequence[Path],
    url: str,
    sqlite: bool,
    alerts: int,
    readings: int,
    rounds: int,
    generation: Generation = Generation.CURRENT,
) -> list[dict[str, Any]]:
    """`rounds` rounds of one run per checkout on `alerts` alerts' worth of data."""
    runs: dict[Path, list[dict[str, Any]]] = {checkout: [] for checkout in checkouts}
    with scratch_for(sqlite, url) as scratch:
        template = scratch.create()
        summary = generate(template, alerts, readings, generation=generation)
        for _ in range(rounds):
            for checkout in checkouts:
                copy = scratch.clone(template)
                runs[checkout].append(
                    measure_in_process("reef", copy, summary.now, ["--repeat", "2"], checkout)
                )
                scratch.drop(copy)
    return [_summary(checkout, measured) for checkout, measured in runs.items()]


def _summary(checkout: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    firsts = [run["all_seconds"][0] for run in runs]
    return {
        "checkout": str(checkout),
        "runs": len(runs),
        "first_median_seconds": round(statistics.median(firsts), 4),
        "later_median_seconds": round(statistics.median(r["all_seconds"][1] for r in runs), 4),
        "first_seconds_all": firsts,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path, help="directories holding src/")
    parser.add_argument("--url", default=DEFAULT_SERVER_URL, help="PostgreSQL server")
    parser.add_argument("--sqlite", action="store_true", help="SQLite files in /tmp instead")
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--readings", type=int, help="readings per device (as run.py's default)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--generation", type=Generation, choices=list(Generation), default=Generation.CURRENT
    )
    args = parser.parse_args(argv)
    checkouts = [checkout.resolve() for checkout in args.checkouts]
    for checkout in checkouts:
        if not (checkout / "src" / "reef_alerts").is_dir():
            parser.error(f"{checkout} holds no src/reef_alerts")
    readings = args.readings or default_depth(args.alerts)
    lines = compare(
        checkouts, args.url, args.sqlite, args.alerts, readings, args.rounds, args.generation
    )
    for line in lines:
        print(json.dumps(line))


if __name__ == "__main__":
    main()
