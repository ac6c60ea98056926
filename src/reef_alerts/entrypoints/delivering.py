"""Delivery's loop (issue 15): a round every few seconds until stopped, on a thread of its own
inside `reef-alerts run`, or alone as `reef-alerts deliver`. A failing round is logged once
until one succeeds again; evaluation never waits for it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from reef_alerts.application.delivery import DeliveryStats
from reef_alerts.entrypoints.worker import describe_error

DELIVER_EVERY = 1.0
"""Seconds between two rounds: a message waits half a second for one on average."""


class DeliveryObserver(Protocol):
    """Told of every round's outcome: the metrics."""

    def delivered(self, stats: DeliveryStats) -> None: ...


class DeliveryLoop:
    """Runs `deliver` every `every` seconds until `stop` is set."""

    def __init__(
        self,
        deliver: Callable[[], DeliveryStats],
        log: logging.Logger,
        stop: threading.Event,
        *,
        every: float = DELIVER_EVERY,
        secrets: Iterable[str] = (),
        observers: Sequence[DeliveryObserver] = (),
    ) -> None:
        self._deliver = deliver
        self._log = log
        self._stop = stop
        self._every = every
        self._secrets = tuple(secrets)
        self._observers = tuple(observers)
        self._failing = False
        self._thread: threading.Thread | None = None

    def once(self) -> DeliveryStats | None:
        """One round; None when it failed (logged)."""
        try:
            stats = self._deliver()
        except Exception as error:  # noqa: BLE001 - logged, and retried next round
            if not self._failing:
                self._failing = True
                self._log.error(
                    "Notification delivery failed: %s; retrying every %gs",
                    describe_error(error, self._secrets),
                    self._every,
                )
            return None
        if self._failing:
            self._failing = False
            self._log.info("Notification delivery works again")
        for observer in self._observers:
            observer.delivered(stats)
        return stats

    def run(self) -> None:
        """Rounds until stopped."""
        while not self._stop.is_set():
            self.once()
            self._stop.wait(self._every)

    def start(self) -> None:
        """Run on a daemon thread: a send that hangs cannot keep the process from exiting."""
        self._thread = threading.Thread(target=self.run, name="reef-alerts-delivery", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
