"""A 7-day preview through the web app's router on PostgreSQL (issue 14's target: 150 ms).

A scratch database of the current generation holds 50 heaters with a reading a minute for 7 days
(504,000 rows); the example web app (examples/webapp) serves the router under uvicorn on the
loopback, and a client times whole requests: a draft (one replay), and a stored alert with a
pending time tried (two replays: as tried and as stored). 10,080 readings, 20,160 evaluations at
30 s. The same preview is then timed in process, through the app and by parts, with the garbage
collector's share, to say where the time goes.

    python -m benchmarks.preview_api [--requests 11]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from benchmarks.databases import DEFAULT_SERVER_URL, scratch_for
from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.history import AsyncSqlHistoryReader
from reef_alerts.application.preview import Changes, Previews, Span
from reef_alerts.domain import Alert
from reef_alerts.domain.rules import DEFAULT_POLICY
from reef_alerts.wire import preview_json

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 7, 14, 12, 0, tzinfo=UTC)
DAYS = 7
DEVICES = 50
TARGET_SECONDS = 0.150
RANGE = {"from": (END - timedelta(days=DAYS)).isoformat(), "to": END.isoformat(), "step": "30s"}
DRAFT = {
    "alert": {"device_id": 1, "metric": "temperature", "operator": ">", "threshold_value": 82},
    "range": RANGE,
}
STORED = {"options": {"pending": "5m", "recovery_margin": 0.3}, "range": RANGE}


def fill(url: str) -> None:
    """The tables of the current generation, 50 heaters a minute apart for 7 days, and alert 1
    (`temperature > 82`) on heater 1, which swings ±0.5 °F around 81.8 °F every 40 minutes."""
    engine = make_engine(url)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO devices "
                "(id, name, device_type, address, unit, poll_enabled, is_active) "
                "SELECT d, 'Heater ' || d, 'heater', '10.0.0.' || d, 'F', true, true "
                "FROM generate_series(1, :devices) AS d"
            ),
            {"devices": DEVICES},
        )
        connection.execute(
            sa.text(
                "INSERT INTO history (device_id, timestamp, value) "
                "SELECT d, :end - make_interval(mins => m), 81.8 + 0.5 * sin(m * pi() / 20) "
                "FROM generate_series(1, :devices) AS d, generate_series(0, :minutes - 1) AS m"
            ),
            {"devices": DEVICES, "end": END, "minutes": DAYS * 24 * 60},
        )
        connection.execute(
            sa.text(
                "INSERT INTO alerts (id, device_id, metric, operator, threshold_value, "
                "is_enabled, trend_enabled) VALUES (1, 1, 'temperature', '>', 82, true, false)"
            )
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("VACUUM ANALYZE")
        )
    engine.dispose()


@contextmanager
def served(url: str) -> Iterator[str]:
    """The example web app on `url`, under uvicorn on the loopback; its base URL."""
    env = {**os.environ, "REEF_WEBAPP_DATABASE_URL": _async(url)}
    env.pop("REEF_WEBAPP_TOKEN", None)
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "examples/webapp")]
    with socket.socket() as probe:  # a free port on a shared machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command += ["app:app", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {server.returncode}")
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("uvicorn did not answer within 10 s")
        yield base
    finally:
        server.terminate()
        server.wait(10)


def timed_requests(call: Callable[[], httpx.Response], count: int) -> dict[str, Any]:
    """Median and slowest of `count` requests after one warm-up, and what they answered."""
    first = call()
    first.raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call().raise_for_status()
        times.append(time.perf_counter() - started)
    found = first.json()
    return {
        "median_s": round(statistics.median(times), 4),
        "max_s": round(max(times), 4),
        "bytes": len(first.content),
        "evaluations": found["timeline"]["counts"]["evaluations"],
        "events": found["timeline"]["counts"]["events"],
        "compared_events": None
        if found["compared"] is None
        else found["compared"]["timeline"]["counts"]["events"],
    }


async def parts(url: str, rounds: int) -> dict[str, Any]:
    """The draft's preview in process: through the example app over ASGI, with the garbage
    collector's time, as is and with the app's start-up heap frozen (gc.freeze); then by parts
    (medians): the reads, the replay, and writing the JSON."""
    os.environ["REEF_WEBAPP_DATABASE_URL"] = _async(url)
    sys.path.insert(0, str(ROOT / "examples/webapp"))
    webapp = importlib.import_module("app")
    found: dict[str, Any] = {}
    async with webapp.lifespan(webapp.app):
        transport = httpx.ASGITransport(app=webapp.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reef") as client:
            await client.post("/api/alerts/preview", json=DRAFT)
            for label in ("asgi", "asgi_frozen_heap"):
                if label == "asgi_frozen_heap":
                    gc.freeze()
                with _collections() as spent:
                    times = []
                    for _ in range(rounds):
                        started = time.perf_counter()
                        (await client.post("/api/alerts/preview", json=DRAFT)).raise_for_status()
                        times.append(time.perf_counter() - started)
                found[label] = {
                    "median_s": round(statistics.median(times), 4),
                    "gc_s_per_request": round(spent[0] / rounds, 4),
                }
            gc.unfreeze()
        sessions = webapp.app.state.sessions
        async with sessions() as session:
            catalogue = await session.run_sync(lambda s: schema.catalogue(s.connection()))
        previews = Previews(DEFAULT_POLICY)
        span = Span(END - timedelta(days=DAYS), END, timedelta(seconds=30))
        plan = previews.of_draft(Alert(None, 1, "temperature", ">", 82.0), Changes(), span)
        split: dict[str, list[float]] = {"read_s": [], "replay_s": [], "json_s": []}
        for _ in range(rounds):
            async with sessions() as session:
                reader = AsyncSqlHistoryReader(session, catalogue)
                started = time.perf_counter()
                device = previews.found(plan, await reader.device(1))
                history = await reader.history(1, plan.span.start, plan.span.end)
                read = time.perf_counter()
                preview = previews.replay(plan, device, history)
                replayed = time.perf_counter()
                json.dumps(preview_json(preview))
                written = time.perf_counter()
            split["read_s"].append(read - started)
            split["replay_s"].append(replayed - read)
            split["json_s"].append(written - replayed)
    found.update({name: round(statistics.median(times), 4) for name, times in split.items()})
    return found


@contextmanager
def _collections() -> Iterator[list[float]]:
    """The seconds the garbage collector runs for inside the block, as spent[0]."""
    spent, began = [0.0], [0.0]

    def timed(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - began[0]

    gc.callbacks.append(timed)
    try:
        yield spent
    finally:
        gc.callbacks.remove(timed)


def _async(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql+asyncpg").render_as_string(False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_SERVER_URL, help="PostgreSQL server")
    parser.add_argument("--requests", type=int, default=11, help="timed requests per endpoint")
    args = parser.parse_args(argv)
    with scratch_for(False, args.url) as scratch:
        url = scratch.create()
        fill(url)
        with served(url) as base, httpx.Client(base_url=base, timeout=30) as client:
            draft = timed_requests(
                lambda: client.post("/api/alerts/preview", json=DRAFT), args.requests
            )
            stored = timed_requests(
                lambda: client.post("/api/alerts/1/preview", json=STORED), args.requests
            )
        in_process = asyncio.run(parts(url, args.requests))
    result = {
        "benchmark": "preview_api",
        "readings": DAYS * 24 * 60,
        "draft": draft,
        "stored_with_changes": stored,
        "draft_in_process": in_process,
        "target_s": TARGET_SECONDS,
        "met": draft["median_s"] <= TARGET_SECONDS,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
