"""Reading-to-event latency of a running worker (issue 16): a writer inserts readings into a
fleet at a steady rate, as the web app's pollers would, and a watcher notes when each reading's
event commits.

    python -m benchmarks.live                       # 100,000 alerts, 500 readings/s for 60 s
    python -m benchmarks.live --alerts 10000 --seconds 20 --modes live

Each mode runs `reef-alerts run --interval 30` in a process of its own on a freshly seeded
PostgreSQL database: `live` (the default worker, live passes between cycles) and `full` (the
same worker with `--no-live`, full cycles only). The fleet: four `temperature > T` alerts per
heater (T = 82, 84, 86, 88), every heater reading 78 at the start. Of the readings, `--crossing`
(10 %) read 83 on a heater that has not crossed yet: each opens the event of its first alert.
The rest read 78 on heaters that have not crossed, and change nothing. A heater that crossed
gets no more readings, so that each crossing's event opens whichever mode judges it.

Latency is from the commit of a crossing reading's INSERT to the moment a watcher polling
`alert_events` every 10 ms sees its event (the event's metadata names the reading), so it
includes up to 10 ms of the watcher's own polling. CPU is the worker process's user and system
time over the writer's run, from /proc, as a share of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs
import sqlalchemy as sa

from benchmarks.databases import DEFAULT_SERVER_URL, PostgresScratch
from benchmarks.generate import copy_into, finish_postgres
from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import CURRENT

THRESHOLDS = (82.0, 84.0, 86.0, 88.0)
CALM, CROSSING = 78.0, 83.0
TARGETS = {"p50_seconds": 0.5, "p99_seconds": 2.0, "cpu_share": 0.30}
"""Issue 16's targets for the live worker."""
MODES = {"live": (), "full": ("--no-live",)}


@attrs.frozen
class Result:
    mode: str
    alerts: int
    rate: float
    seconds: float
    readings: int
    crossings: int
    events_seen: int
    p50_seconds: float | None
    p90_seconds: float | None
    p99_seconds: float | None
    max_seconds: float | None
    cpu_share: float
    """The worker's CPU time over the writer's run, as a share of one core."""
    cycles: int
    """Full cycles the worker completed during the writer's run."""


def seed(url: str, alerts: int) -> int:
    """The fleet, loaded with COPY; every heater's reading is taken now. The heaters' count."""
    heaters = alerts // len(THRESHOLDS)
    now = datetime.now(UTC)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            CURRENT.metadata.create_all(connection)
        raw = engine.raw_connection()
        try:
            copy_into(
                raw,
                "devices",
                (
                    *("id", "name", "device_type", "address", "poll_enabled", "poll_interval"),
                    *("unit", "is_active"),
                ),
                (
                    (h, f"heater {h}", "heater", f"10.0.{h}", True, 60, "F", True)
                    for h in _ids(heaters)
                ),
            )
            copy_into(
                raw,
                "history",
                ("device_id", "timestamp", "value"),
                ((h, now - timedelta(seconds=h % 50), CALM) for h in _ids(heaters)),
            )
            copy_into(
                raw,
                "alerts",
                (
                    *("id", "device_id", "metric", "operator", "threshold_value", "is_enabled"),
                    "trend_enabled",
                ),
                (
                    (
                        h * len(THRESHOLDS) + k - len(THRESHOLDS) + 1,
                        h,
                        "temperature",
                        ">",
                        t,
                        True,
                        False,
                    )
                    for h in _ids(heaters)
                    for k, t in enumerate(THRESHOLDS)
                ),
            )
            raw.commit()
        finally:
            raw.close()
        finish_postgres(engine)
    finally:
        engine.dispose()
    upgraded = make_engine(url)
    try:
        schema.upgrade(upgraded)
    finally:
        upgraded.dispose()
    return heaters


def _ids(count: int) -> range:
    return range(1, count + 1)


class WorkerProcess:
    """`reef-alerts run` in a process of its own, its log read line by line."""

    def __init__(self, url: str, extra: Sequence[str]) -> None:
        environment = {**os.environ, "DATABASE_URL": url, "ENV": "production"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reef_alerts",
                "run",
                "--interval",
                "30",
                "--log-file",
                "-",
                *extra,
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.cycled = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "Evaluation cycle completed" in line:
                self.cycled.set()

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    def cycles(self) -> int:
        return sum("Evaluation cycle completed" in line for line in self.lines)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._reader.join(5)


class EventWatcher:
    """Polls alert_events every 10 ms and notes when the event of each reading was first seen."""

    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        last = 0
        query = sa.text(
            "SELECT id, (alert_metadata->>'reading_id')::bigint FROM alert_events "
            "WHERE id > :last ORDER BY id"
        )
        with self._engine.connect() as connection:
            while not self._stop.is_set():
                rows = connection.execute(query, {"last": last}).all()
                now = time.time()
                for event_id, reading_id in rows:
                    last = max(last, event_id)
                    if reading_id is not None:
                        self.seen.setdefault(int(reading_id), now)
                self._stop.wait(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._engine.dispose()


def write(
    url: str, heaters: int, rate: float, seconds: float, crossing: float, seed: int
) -> dict[int, float]:
    """Insert `rate` readings a second for `seconds`; the crossing readings' ids, with when each
    committed."""
    rng = random.Random(seed)
    calm = list(_ids(heaters))
    crossed: dict[int, float] = {}
    engine = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    insert = sa.text(
        "INSERT INTO history (device_id, timestamp, value) VALUES (:device, now(), :value) "
        "RETURNING id"
    )
    try:
        with engine.connect() as connection:
            started = time.monotonic()
            for number in range(int(rate * seconds)):
                due = started + number / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                index = rng.randrange(len(calm))
                device = calm[index]
                crosses = rng.random() < crossing
                value = CROSSING if crosses else CALM
                reading_id = connection.execute(
                    insert, {"device": device, "value": value}
                ).scalar_one()
                if crosses:
                    crossed[int(reading_id)] = time.time()
                    calm[index] = calm[-1]
                    calm.pop()
    finally:
        engine.dispose()
    return crossed


def run_mode(
    scratch: PostgresScratch, mode: str, alerts: int, rate: float, seconds: float, crossing: float
) -> Result:
    url = scratch.create()
    try:
        heaters = seed(url, alerts)
        worker = WorkerProcess(url, MODES[mode])
        try:
            if not worker.cycled.wait(300):
                raise RuntimeError(
                    "the worker completed no cycle in 300 s:\n" + "".join(worker.lines[-20:])
                )
            watcher = EventWatcher(url)
            cpu_before, cycles_before = worker.cpu_seconds(), worker.cycles()
            wall_before = time.monotonic()
            crossed = write(url, heaters, rate, seconds, crossing, seed=16)
            cpu = worker.cpu_seconds() - cpu_before
            wall = time.monotonic() - wall_before
            cycles = worker.cycles() - cycles_before
            deadline = time.monotonic() + 45  # the full-cycle worker's next cycle, and its length
            while time.monotonic() < deadline and not set(crossed) <= set(watcher.seen):
                time.sleep(0.1)
            watcher.close()
        finally:
            worker.stop()
    finally:
        scratch.drop(url)
    latencies = sorted(watcher.seen[r] - at for r, at in crossed.items() if r in watcher.seen)
    return Result(
        mode=mode,
        alerts=alerts,
        rate=rate,
        seconds=seconds,
        readings=int(rate * seconds),
        crossings=len(crossed),
        events_seen=len(latencies),
        p50_seconds=_quantile(latencies, 0.50),
        p90_seconds=_quantile(latencies, 0.90),
        p99_seconds=_quantile(latencies, 0.99),
        max_seconds=latencies[-1] if latencies else None,
        cpu_share=cpu / wall,
        cycles=cycles,
    )


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def verdict(result: Result) -> str:
    checks = {
        "p50_seconds": result.p50_seconds,
        "p99_seconds": result.p99_seconds,
        "cpu_share": result.cpu_share,
    }
    missed = [
        f"{name} {value:.3g} > {TARGETS[name]:g}"
        for name, value in checks.items()
        if value is None or value > TARGETS[name]
    ]
    if result.events_seen < result.crossings:
        missed.append(f"{result.crossings - result.events_seen} events never seen")
    return "MET" if not missed else "MISSED (" + "; ".join(missed) + ")"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_SERVER_URL, help="the PostgreSQL server")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500.0, help="readings a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--crossing", type=float, default=0.10, help="share of crossing readings")
    parser.add_argument("--modes", default="live,full", help="live, full or both")
    args = parser.parse_args(argv)
    with PostgresScratch(args.url) as scratch:
        for mode in args.modes.split(","):
            result = run_mode(scratch, mode, args.alerts, args.rate, args.seconds, args.crossing)
            line = attrs.asdict(result)
            if mode == "live":
                line["verdict"] = verdict(result)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
