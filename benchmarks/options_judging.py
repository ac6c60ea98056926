"""The judging alone, in process, on 100,000 synthetic snapshots: every alert by the
specification's rule, then every alert with rule options (ADR 15). For weighing a change to the
state machine's hot path without a database; medians of five passes over alerts built once.

    python -m benchmarks.options_judging
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from reef_alerts.application.judging import Judge
from reef_alerts.domain import Device, EvaluationPolicy, Reading
from reef_alerts.ports import AlertSnapshot, StoredAlert, StoredRule

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OPTIONS = StoredRule(300.0, 0.2, 600.0)
"""As `make bench`'s options runs: a 5-minute pending time, a margin, no-data events."""


def snapshots(count: int = 100_000) -> list[AlertSnapshot]:
    """`temperature > 82` on one heater each: about 8 % hold, 10 % have an open event, one in
    twenty devices has been silent for 15 minutes."""
    draw = random.Random(1)
    made = []
    for i in range(1, count + 1):
        age = timedelta(seconds=draw.choice([10] * 19 + [900]))
        reading = Reading(i, i, NOW - age, value=draw.uniform(70, 83))
        made.append(
            AlertSnapshot(
                StoredAlert(i, i, "temperature", ">", 82.0, False, True),
                Device(i, f"heater {i}", "heater", "F"),
                reading,
                i if draw.random() < 0.1 else None,
            )
        )
    return made


def judged_seconds(batch: list[AlertSnapshot]) -> float:
    evaluator = EvaluationPolicy().at(NOW)
    first = Judge(evaluator)
    first(batch)  # builds the alerts, as a worker's first cycle does
    times = []
    for _ in range(5):
        judge = Judge(evaluator, known=first.built)
        started = time.perf_counter()
        judge(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    plain = snapshots()
    with_options = [snapshot._replace(rule=OPTIONS) for snapshot in plain]
    without, with_ = judged_seconds(plain), judged_seconds(with_options)
    print(f"without options {without:.3f} s, with options {with_:.3f} s: {with_ / without:.2f}x")


if __name__ == "__main__":
    main()
