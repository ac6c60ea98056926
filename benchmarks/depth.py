"""What the history (device_id, timestamp) index is worth: reef_alerts's cycle on the current
generation's tables, which lack it, with and without the index `db upgrade` adds, as the history
deepens.

    python -m benchmarks.depth                           # 1,000 alerts; 100, 1,000, 10,000 deep
    python -m benchmarks.depth --alerts 1000 --depths 1000,43200

One JSON line per depth: the later cycles' median (the newest-reading read is most of them) with
the index and without it, on copies of the same data, interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from benchmarks.databases import DEFAULT_SERVER_URL, scratch_for
from benchmarks.generate import generate
from benchmarks.run import measure_in_process
from reef_alerts.adapters.tables import HISTORY_INDEX, Generation


def depth(url: str, alerts: int, readings: int, rounds: int) -> dict[str, Any]:
    """Later-cycle medians with and without the worker's index, `rounds` copies each."""
    seconds: dict[bool, list[float]] = {True: [], False: []}
    first: dict[bool, list[float]] = {True: [], False: []}
    with scratch_for(False, url) as scratch:
        template = scratch.create()
        summary = generate(template, alerts, readings, generation=Generation.CURRENT)
        for _ in range(rounds):
            for indexed in (True, False):
                copy = scratch.clone(template)
                if not indexed:
                    _drop_history_index(copy)
                run = measure_in_process("reef", copy, summary.now, ["--repeat", "4"])
                first[indexed].append(run["all_seconds"][0])
                seconds[indexed].extend(run["all_seconds"][1:])
                scratch.drop(copy)
    with_index, without = statistics.median(seconds[True]), statistics.median(seconds[False])
    return {
        "alerts": alerts,
        "readings_per_device": readings,
        "history_rows": summary.history_rows,
        "later_cycle_median_seconds_with_index": round(with_index, 4),
        "later_cycle_median_seconds_without_index": round(without, 4),
        "first_cycle_median_seconds_with_index": round(statistics.median(first[True]), 4),
        "first_cycle_median_seconds_without_index": round(statistics.median(first[False]), 4),
        "ratio": round(without / with_index, 1),
    }


def _drop_history_index(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP INDEX {HISTORY_INDEX}")
        connection.exec_driver_sql("ANALYZE history")
    engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_SERVER_URL, help="PostgreSQL server")
    parser.add_argument("--alerts", type=int, default=1_000)
    parser.add_argument(
        "--depths",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[100, 1_000, 10_000],
        help="readings per device, comma-separated",
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for readings in args.depths:
        print(json.dumps(depth(args.url, args.alerts, readings, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
