"""`reef-alerts run --metrics-port`: a running worker's /metrics and /healthz, read over HTTP as
Prometheus and a health check read them, and the flags' mistakes."""

from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from reef_alerts.adapters.database import make_engine

from .test_cli import _worker_process, a_hot_tank, invoke


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int, path: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None  # not listening yet


def test_a_running_worker_serves_its_metrics_and_health(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reef.db'}"
    engine = make_engine(url)
    a_hot_tank(engine)
    engine.dispose()
    port = free_port()

    worker = _worker_process(
        tmp_path, "run", "--interval", "1", "--metrics-port", str(port), DATABASE_URL=url
    )
    try:
        deadline, samples = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            found = scrape(port, "/metrics")
            if found is not None:
                samples = {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for family in text_string_to_metric_families(found[1])
                    for s in family.samples
                }
                if samples.get(("reef_alerts_cycles_total", (("outcome", "success"),)), 0) >= 2:
                    break
            time.sleep(0.1)
        health = scrape(port, "/healthz")
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=10)
    finally:
        worker.kill()

    assert worker.returncode == 0, output
    assert samples[("reef_alerts_events_total", (("change", "opened"), ("kind", "threshold")))] == 1
    assert samples[("reef_alerts_alerts", (("state", "firing"),))] == 1
    assert samples[("reef_alerts_reading_to_event_seconds_count", ())] == 1
    assert health is not None
    assert health[0] == 200
    assert health[1].startswith("ok: the last successful cycle ended")
    assert f"Serving metrics on http://127.0.0.1:{port}/metrics" in output


def test_metrics_are_refused_for_a_single_cycle(tmp_path: Path) -> None:
    code, _, err = invoke(["run", "--once", "--metrics-port", "9464"], tmp_path)

    assert code == 2
    assert "--metrics-port is for a worker that keeps running" in err


def test_an_address_without_a_port_is_refused(tmp_path: Path) -> None:
    code, _, err = invoke(["run", "--metrics-address", "0.0.0.0"], tmp_path)

    assert code == 2
    assert "--metrics-address needs --metrics-port" in err


def test_a_port_in_use_ends_the_worker_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reef.db'}"
    engine = make_engine(url)
    a_hot_tank(engine)
    engine.dispose()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, _, err = invoke(
            ["run", "--metrics-port", str(port), "--log-file", "-"],
            tmp_path,
            DATABASE_URL=url,
        )

    assert code == 1
    problem = [line for line in err.splitlines() if "Cannot serve metrics" in line]
    assert len(problem) == 1
    assert f"127.0.0.1:{port}" in problem[0]
    assert "in use" in problem[0]
    assert not (tmp_path / "reef_alerts.db").exists()  # refused before any database was made
