"""Delivery's loop (issue 15): a round every few seconds until stopped, on a thread of its own
inside `reef-alerts run`, or alone as `reef-alerts deliver`. A failing round is logged once
until one succeeds again; evaluation never waits for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from reef_alerts.application.delivery import DeliveryStats
from reef_alerts.entrypoints.worker import describe_error

DELIVER_EVERY = 1.0
"""Seconds between two rounds: a message waits half a second for one on average."""
LOOK_FOR_TABLES_EVERY = 30.0
"""Seconds between two looks for the notification tables, until `db upgrade` has made them."""


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
        ready: Callable[[], bool] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`ready`: whether there is an outbox to deliver from, asked every
        LOOK_FOR_TABLES_EVERY seconds until it says so (a worker started before `db upgrade`);
        None: there is."""
        self._deliver = deliver
        self._ready = ready
        self._monotonic = monotonic
        self._looked: float | None = None
        self._log = log
        self._stop = stop
        self._every = every
        self._secrets = tuple(secrets)
        self._observers = tuple(observers)
        self._failing = False
        self._thread: threading.Thread | None = None

    def once(self) -> DeliveryStats | None:
        """One round; None when it failed (logged), or there is no outbox yet."""
        try:
            if not self._has_outbox():
                return None
            stats = self._deliver()
        except Exception as error:  # noqa: BLE001 - logged, and retried next round
            if not self._failing:
                self._failing = True
                self._log.error(
                    "Notification delivery failed: %s; retrying",
                    describe_error(error, self._secrets),
                )
            return None
        if self._failing:
            self._failing = False
            self._log.info("Notification delivery works again")
        for observer in self._observers:
            observer.delivered(stats)
        return stats

    def _has_outbox(self) -> bool:
        if self._ready is None:
            return True
        now = self._monotonic()
        first = self._looked is None
        if not first and now - self._looked < LOOK_FOR_TABLES_EVERY:  # type: ignore[operator]
            return False
        self._looked = now
        if not self._ready():
            return False
        self._log.info(
            "Notifications: %s; delivering every %gs",
            "the outbox is there" if first else "the outbox is here now",
            self._every,
        )
        self._ready = None
        return True

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
