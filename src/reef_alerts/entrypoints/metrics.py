"""What the worker tells the monitoring its operators run (issue 16): Prometheus metrics in a
registry of its own, `/metrics` and `/healthz` on a small HTTP server, and systemd's watchdog.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from reef_alerts.application.delivery import DeliveryStats
from reef_alerts.application.outcomes import ALERT_STATES, CycleStats

HEALTHY_INTERVALS = 3
NOTIFICATION_OUTCOMES = ("sent", "retry", "failed")
"""A worker is healthy while its last successful cycle is younger than this many intervals."""

_KINDS = {
    "trigger": ("threshold", "opened"),
    "resolve": ("threshold", "resolved"),
    "no_data": ("no_data", "opened"),
    "no_data_resolved": ("no_data", "resolved"),
    "forecast": ("forecast", "opened"),
    "forecast_resolved": ("forecast", "resolved"),
    "rate": ("rate", "opened"),
    "rate_resolved": ("rate", "resolved"),
}
_CYCLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)


class WorkerMetrics:
    """One worker's metrics, in a registry of its own (never the global one, so that a process
    embedding the worker keeps its own), and whether the worker is healthy. `wall` is the
    clock; tests pass a fake."""

    def __init__(self, interval: float, wall: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self._wall = wall
        self._started = wall()
        self._last_success: float | None = None
        self.registry = CollectorRegistry()
        self._cycles = Counter(
            "reef_alerts_cycles",
            "Evaluation cycles, by outcome: success (committed) or failure (rolled back).",
            ["outcome"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "reef_alerts_cycle_duration_seconds",
            "How long evaluation cycles took, successful or not.",
            buckets=_CYCLE_BUCKETS,
            registry=self.registry,
        )
        self._alerts = Gauge(
            "reef_alerts_alerts",
            "Alerts by the state the last successful cycle left them in.",
            ["state"],
            registry=self.registry,
        )
        self._events = Counter(
            "reef_alerts_events",
            "Alert events opened and resolved, by kind (threshold, no_data, forecast, rate) "
            "and change.",
            ["kind", "change"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "reef_alerts_reading_to_event_seconds",
            "From the timestamp of the reading that crossed a threshold to the commit of the "
            "event it opened.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._live_passes = Counter(
            "reef_alerts_live_passes",
            "Live passes between cycles that judged some alerts (devices with new readings, "
            "alerts whose time had come), by outcome: success (committed) or failure.",
            ["outcome"],
            registry=self.registry,
        )
        self._live_duration = Histogram(
            "reef_alerts_live_pass_duration_seconds",
            "How long live passes that judged some alerts took, successful or not.",
            buckets=_CYCLE_BUCKETS,
            registry=self.registry,
        )
        self._notifications = Counter(
            "reef_alerts_notifications",
            "Notification messages by the outcome of an attempt to send one: sent, retry (it "
            "failed and will be tried again) or failed (given up on).",
            ["outcome"],
            registry=self.registry,
        )
        self._last_success_gauge = Gauge(
            "reef_alerts_last_successful_cycle_timestamp_seconds",
            "When the last successful cycle committed, in seconds since the epoch; before the "
            "first, when the worker started.",
            registry=self.registry,
        )
        self._last_success_gauge.set(self._started)
        # Every series from the start, at 0, so that rate() and absent() see them.
        for outcome in ("success", "failure"):
            self._cycles.labels(outcome)
            self._live_passes.labels(outcome)
        for outcome in NOTIFICATION_OUTCOMES:
            self._notifications.labels(outcome)
        for state in ALERT_STATES:
            self._alerts.labels(state)
        for kind, change in _KINDS.values():
            self._events.labels(kind, change)

    def succeeded(self, stats: CycleStats, seconds: float) -> None:
        """A cycle that took `seconds` committed `stats`, now."""
        now = self._wall()
        self._cycles.labels("success").inc()
        self._duration.observe(seconds)
        for state in ALERT_STATES:
            self._alerts.labels(state).set(stats.states.get(state, 0))
        self._count_events(stats, now)
        self._last_success = now
        self._last_success_gauge.set(now)

    def failed(self, seconds: float) -> None:
        """A cycle that took `seconds` failed and rolled back."""
        self._cycles.labels("failure").inc()
        self._duration.observe(seconds)

    def live_passed(self, stats: CycleStats, seconds: float) -> None:
        """A live pass that took `seconds` committed `stats`, now. It judged some alerts only:
        the alerts by state stay the last cycle's."""
        self._live_passes.labels("success").inc()
        self._live_duration.observe(seconds)
        self._count_events(stats, self._wall())

    def live_failed(self, seconds: float) -> None:
        self._live_passes.labels("failure").inc()
        self._live_duration.observe(seconds)

    def delivered(self, stats: DeliveryStats) -> None:
        """A round of delivery ended with `stats`."""
        for outcome, count in zip(
            NOTIFICATION_OUTCOMES, (stats.sent, stats.retried, stats.failed), strict=True
        ):
            if count:
                self._notifications.labels(outcome).inc(count)

    def _count_events(self, stats: CycleStats, now: float) -> None:
        for change in stats.changes:
            self._events.labels(*_KINDS[change.change]).inc()
            if change.reading_at is not None:
                self._latency.observe(max(0.0, now - change.reading_at.timestamp()))

    def health(self) -> tuple[bool, str]:
        """Whether the worker is healthy, and one line that says why: its last successful
        cycle (or, before the first, its start) is younger than HEALTHY_INTERVALS intervals."""
        now, limit = self._wall(), HEALTHY_INTERVALS * self.interval
        if self._last_success is None:
            age = now - self._started
            if age < limit:
                return True, f"starting: no cycle has completed yet ({age:.0f}s since start)"
            return False, f"no cycle has completed in the {age:.0f}s since start (limit {limit:g}s)"
        age = now - self._last_success
        since = datetime.fromtimestamp(self._last_success, UTC).isoformat(timespec="seconds")
        if age < limit:
            return True, f"ok: the last successful cycle ended {age:.0f}s ago ({since})"
        return False, f"no successful cycle for {age:.0f}s, since {since} (limit {limit:g}s)"


class MetricsServer:
    """`/metrics` (Prometheus's text format) and `/healthz` (200 or 503, one line) on
    `address:port`, served by a daemon thread until `close`. Raises OSError when the port
    cannot be bound."""

    def __init__(self, metrics: WorkerMetrics, address: str, port: int) -> None:
        self._metrics = metrics
        self._exposition = make_wsgi_app(metrics.registry)
        server_class = _ThreadingServer6 if ":" in address else _ThreadingServer
        self._server = make_server(
            address, port, self._app, server_class=server_class, handler_class=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="reef-alerts-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            healthy, why = self._metrics.health()
            code = "200 OK" if healthy else "503 Service Unavailable"
            start_response(code, [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{why}\n".encode()]
        if path in ("/metrics", "/"):
            result: Iterable[bytes] = self._exposition(environ, start_response)
            return result
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"/metrics or /healthz\n"]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the worker's log is for the worker. A client that holds a
    connection open without a word is dropped after `timeout` seconds."""

    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SystemdWatchdog:
    """Pets systemd's watchdog at the end of every cycle, successful or not: the watchdog says
    the loop is alive (a worker stuck in a cycle is restarted); whether cycles succeed is
    /healthz's to say, since a worker waiting out a database outage must not be killed."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log

    def succeeded(self, stats: CycleStats, seconds: float) -> None:
        notify_systemd("WATCHDOG=1", self._log)

    def failed(self, seconds: float) -> None:
        notify_systemd("WATCHDOG=1", self._log)

    def live_passed(self, stats: CycleStats, seconds: float) -> None:
        """Nothing: the watchdog follows the cycles, which a live pass never delays long."""

    def live_failed(self, seconds: float) -> None:
        """Nothing, as live_passed."""


_warned_notify = threading.Event()


def notify_systemd(message: str, log: logging.Logger | None = None) -> bool:
    """Send `message` (READY=1, WATCHDOG=1, STOPPING=1) to systemd where it asked for them
    ($NOTIFY_SOCKET, a unit of Type=notify); False where it did not or could not be told (said
    once in `log`)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as error:
        if log is not None and not _warned_notify.is_set():
            _warned_notify.set()
            log.warning("Could not notify systemd (%s): %s", message, error)
        return False
    return True
