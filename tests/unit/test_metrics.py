"""The worker's Prometheus metrics, its /healthz, and systemd's notifications: read back the way
a Prometheus server and systemd read them."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reef_alerts.application import CycleStats, WorkerStatistics
from reef_alerts.application.outcomes import WrittenChange
from reef_alerts.entrypoints.metrics import (
    MetricsServer,
    SystemdWatchdog,
    WorkerMetrics,
    notify_systemd,
)
from reef_alerts.entrypoints.worker import Worker

NOW = datetime(2026, 7, 14, 13, 0, tzinfo=UTC).timestamp()
LOG = logging.getLogger("reef_alerts.tests.metrics")


class FakeWall:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def a_cycle() -> CycleStats:
    """Two alerts firing, one skipped; one threshold event opened on a reading 4 s old, one
    no-data event resolved."""
    reading_at = datetime.fromtimestamp(NOW - 4, UTC)
    return CycleStats(
        total_alerts=3,
        evaluated=2,
        triggered=1,
        skipped=1,
        no_data_resolved=1,
        changes=[
            WrittenChange("trigger", 1, 85.2, "Threshold exceeded", reading_at),
            WrittenChange("no_data_resolved", 2, 8.1, "reports again"),
        ],
        states={"firing": 2, "skipped": 1},
    )


def samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry, parsed from its text exposition."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_successful_cycle_is_counted_by_outcome_state_event_and_latency() -> None:
    metrics = WorkerMetrics(interval=30, wall=FakeWall())

    metrics.succeeded(a_cycle(), seconds=0.25)
    metrics.failed(seconds=1.5)
    found = samples(metrics)

    assert found[("reef_alerts_cycles_total", (("outcome", "success"),))] == 1
    assert found[("reef_alerts_cycles_total", (("outcome", "failure"),))] == 1
    assert found[("reef_alerts_cycle_duration_seconds_sum", ())] == 1.75
    assert found[("reef_alerts_alerts", (("state", "firing"),))] == 2
    assert found[("reef_alerts_alerts", (("state", "skipped"),))] == 1
    assert found[("reef_alerts_alerts", (("state", "pending"),))] == 0
    assert found[("reef_alerts_events_total", (("change", "opened"), ("kind", "threshold")))] == 1
    assert found[("reef_alerts_events_total", (("change", "resolved"), ("kind", "no_data")))] == 1
    assert found[("reef_alerts_events_total", (("change", "opened"), ("kind", "no_data")))] == 0
    assert found[("reef_alerts_reading_to_event_seconds_sum", ())] == 4
    assert found[("reef_alerts_reading_to_event_seconds_bucket", (("le", "5.0"),))] == 1
    assert found[("reef_alerts_reading_to_event_seconds_bucket", (("le", "2.0"),))] == 0
    assert found[("reef_alerts_last_successful_cycle_timestamp_seconds", ())] == NOW


def test_before_the_first_success_the_last_success_is_the_start() -> None:
    wall = FakeWall()
    metrics = WorkerMetrics(interval=30, wall=wall)
    wall.now += 50

    metrics.failed(seconds=1.0)

    found = samples(metrics)[("reef_alerts_last_successful_cycle_timestamp_seconds", ())]
    assert found == NOW  # so that time() - it is the worker's age, not 56 years


def test_two_workers_in_one_process_keep_their_own_metrics() -> None:
    first, second = WorkerMetrics(30), WorkerMetrics(30)

    first.succeeded(a_cycle(), 0.1)

    assert samples(first)[("reef_alerts_cycles_total", (("outcome", "success"),))] == 1
    assert samples(second)[("reef_alerts_cycles_total", (("outcome", "success"),))] == 0


def test_health_holds_for_three_intervals_after_start_and_after_each_success() -> None:
    wall = FakeWall()
    metrics = WorkerMetrics(interval=30, wall=wall)

    wall.now += 89
    starting = metrics.health()
    wall.now += 2
    never = metrics.health()
    metrics.succeeded(a_cycle(), 0.1)
    wall.now += 89
    fresh = metrics.health()
    wall.now += 2
    stale = metrics.health()

    assert starting == (True, "starting: no cycle has completed yet (89s since start)")
    assert never[0] is False
    assert "no cycle has completed in the 91s since start (limit 90s)" in never[1]
    assert fresh[0] is True
    assert stale == (
        False,
        "no successful cycle for 91s, since 2026-07-14T13:01:31+00:00 (limit 90s)",
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_server_answers_metrics_and_a_health_that_flips_to_503_when_cycles_stop() -> None:
    wall = FakeWall()
    metrics = WorkerMetrics(interval=10, wall=wall)
    metrics.succeeded(a_cycle(), 0.1)
    server = MetricsServer(metrics, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.port}"
    try:
        healthy = get(f"{base}/healthz")
        scraped = get(f"{base}/metrics")
        wall.now += 31  # three intervals without a successful cycle
        stopped = get(f"{base}/healthz")
        elsewhere = get(f"{base}/nothing")
    finally:
        server.close()

    assert healthy[0] == 200
    assert healthy[1].startswith("ok: the last successful cycle ended 0s ago")
    assert scraped[0] == 200
    names = {family.name for family in text_string_to_metric_families(scraped[1])}
    assert {"reef_alerts_cycles", "reef_alerts_alerts", "reef_alerts_events"} <= names
    assert stopped == (
        503,
        "no successful cycle for 31s, since 2026-07-14T13:00:00+00:00 (limit 30s)\n",
    )
    assert elsewhere[0] == 404


def test_the_server_listens_on_ipv6_too() -> None:
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 loopback")
    server = MetricsServer(WorkerMetrics(30), "::1", 0)
    try:
        status, _ = get(f"http://[::1]:{server.port}/healthz")
    finally:
        server.close()

    assert status == 200


def test_a_port_in_use_is_refused_as_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            MetricsServer(WorkerMetrics(30), "127.0.0.1", taken.getsockname()[1])


def test_the_worker_tells_its_observers_of_each_cycles_end() -> None:
    metrics = WorkerMetrics(30)
    outcomes = iter([a_cycle(), RuntimeError("database down")])

    def run_cycle() -> CycleStats:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    worker = Worker(
        run_cycle, 30, LOG, WorkerStatistics(0.0), threading.Event(), observers=[metrics]
    )
    worker.run_once()
    with pytest.raises(RuntimeError):
        worker.run_once()

    found = samples(metrics)
    assert found[("reef_alerts_cycles_total", (("outcome", "success"),))] == 1
    assert found[("reef_alerts_cycles_total", (("outcome", "failure"),))] == 1


class Broken:
    def succeeded(self, stats: CycleStats, seconds: float) -> None:
        raise ValueError("a gauge went wrong")

    def failed(self, seconds: float) -> None:
        raise ValueError("a gauge went wrong")

    def live_passed(self, stats: CycleStats, seconds: float) -> None:
        raise ValueError("a gauge went wrong")

    def live_failed(self, seconds: float) -> None:
        raise ValueError("a gauge went wrong")


def test_an_observer_that_fails_is_logged_and_the_others_are_still_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = WorkerMetrics(30)
    worker = Worker(
        a_cycle, 30, LOG, WorkerStatistics(0.0), threading.Event(), observers=[Broken(), metrics]
    )

    stats = worker.run_once()

    assert stats.triggered == 1
    assert samples(metrics)[("reef_alerts_cycles_total", (("outcome", "success"),))] == 1
    assert "Broken failed: ValueError: a gauge went wrong" in caplog.text


def test_the_watchdog_is_petted_after_failed_cycles_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        watchdog = SystemdWatchdog(LOG)

        watchdog.failed(seconds=5.0)  # the database is down: the loop is alive all the same
        watchdog.succeeded(a_cycle(), seconds=0.1)

        assert [systemd.recv(100), systemd.recv(100)] == [b"WATCHDOG=1", b"WATCHDOG=1"]


def test_systemd_is_told_through_its_notify_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        monkeypatch.setenv("NOTIFY_SOCKET", address)

        told = notify_systemd("WATCHDOG=1", LOG)

        assert told is True
        assert systemd.recv(100) == b"WATCHDOG=1"


def test_systemd_is_not_told_where_it_did_not_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)

    assert notify_systemd("READY=1") is False


def test_a_live_pass_counts_its_events_and_latency_and_leaves_the_alert_states_to_cycles() -> None:
    wall = FakeWall()
    metrics = WorkerMetrics(30, wall=wall)
    metrics.succeeded(a_cycle(), 0.5)
    reading_at = datetime.fromtimestamp(NOW - 0.3, UTC)
    live = CycleStats(
        total_alerts=1,
        evaluated=1,
        triggered=1,
        changes=[WrittenChange("trigger", 3, 85.0, "Threshold exceeded", reading_at)],
        states={"firing": 1},
    )

    metrics.live_passed(live, 0.02)
    metrics.live_failed(0.01)

    found = samples(metrics)
    assert found[("reef_alerts_alerts", (("state", "firing"),))] == 2
    assert found[("reef_alerts_events_total", (("change", "opened"), ("kind", "threshold")))] == 2
    assert found[("reef_alerts_live_passes_total", (("outcome", "success"),))] == 1
    assert found[("reef_alerts_live_passes_total", (("outcome", "failure"),))] == 1
    assert found[("reef_alerts_live_pass_duration_seconds_count", ())] == 2
    assert found[("reef_alerts_reading_to_event_seconds_bucket", (("le", "0.25"),))] == 0
    assert found[("reef_alerts_reading_to_event_seconds_bucket", (("le", "0.5"),))] == 1
    assert found[("reef_alerts_cycles_total", (("outcome", "success"),))] == 1
