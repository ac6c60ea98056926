"""The evaluation loop: cycles on a fixed start-to-start schedule, failures logged and retried,
statistics every few cycles, and a clean stop on SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import Final, Protocol

from reef_alerts import __version__
from reef_alerts.application import CycleStats, WorkerStatistics
from reef_alerts.config import Settings
from reef_alerts.entrypoints.tuning import collector_paused
from reef_alerts.redaction import redact

MAX_ERROR_LENGTH: Final = 500
"""Error lines are cut here: SQLAlchemy appends the statement and its parameters to messages."""


class CycleObserver(Protocol):
    """Told of every cycle's end, and every live pass's that judged something: the metrics,
    systemd's watchdog."""

    def succeeded(self, stats: CycleStats, seconds: float) -> None: ...

    def failed(self, seconds: float) -> None: ...

    def live_passed(self, stats: CycleStats, seconds: float) -> None: ...

    def live_failed(self, seconds: float) -> None: ...


class Worker:
    """Runs `run_cycle` every `interval` seconds, start to start, until `stop_event` is set.

    `monotonic` and `wait` are the clock and the sleep; tests pass fakes. `wait(seconds)` must
    return early once `stop_event` is set, as `stop_event.wait` (the default) does.
    """

    CANCEL_AFTER = 1.0
    """Seconds a stop request lets the cycle in flight finish before cancelling it."""

    def __init__(
        self,
        run_cycle: Callable[[], CycleStats],
        interval: float,
        log: logging.Logger,
        statistics: WorkerStatistics,
        stop_event: threading.Event,
        stats_every: int = 10,
        secrets: Iterable[str] = (),
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
        aligned: bool = False,
        wall: Callable[[], float] = time.time,
        cancel: Callable[[], None] | None = None,
        fatal: tuple[type[Exception], ...] = (),
        observers: Sequence[CycleObserver] = (),
        live: Callable[[], CycleStats | None] | None = None,
        live_every: float = 0.25,
    ) -> None:
        """`aligned`: after the first, start cycles at wall-clock multiples of the interval, so
        that workers on several hosts cycle in the same rounds (partition leases rely on it).
        `cancel`: stops the statements of a cycle in flight, from another thread (see
        `request_stop`). `fatal`: the errors after which the worker stops rather than retry,
        setting `fatal`. `observers` are told of every cycle's end.

        `live`: a live pass (RunCycle.live), run every `live_every` seconds between cycles
        (issue 16): it judges the alerts whose devices have new readings, or whose time has
        come, and returns None when there were none."""
        if interval <= 0:
            raise ValueError(f"interval must be greater than 0, got {interval}")
        if stats_every <= 0:
            raise ValueError(f"stats_every must be greater than 0, got {stats_every}")
        if live_every <= 0:
            raise ValueError(f"live_every must be greater than 0, got {live_every}")
        self._run_cycle = run_cycle
        self._interval = interval
        self._log = log
        self._statistics = statistics
        self._stop = stop_event
        self._stats_every = stats_every
        self._secrets = tuple(secrets)
        self._monotonic = monotonic
        self._wait = wait if wait is not None else stop_event.wait
        self._aligned = aligned
        self._wall = wall
        self._cancel = cancel
        self._fatal = fatal
        self._observers = tuple(observers)
        self._live = live
        self._live_every = live_every
        self._live_failing = False
        self.fatal: Exception | None = None
        """The error that stopped the worker, if one did."""
        self._idle = threading.Event()
        self._idle.set()
        self._cancelled = False

    @property
    def statistics(self) -> WorkerStatistics:
        return self._statistics

    def run(self) -> None:
        """Run cycles until the stop flag is set; then log the statistics and return.

        A failing cycle is logged and retried at the next slot. A cycle that outlasts the interval
        is followed at once by the next, and the schedule restarts from there: missed slots are
        skipped, not made up in a burst.
        """
        self._log.info("Starting continuous evaluation loop...")
        next_start = self._monotonic()
        try:
            while not self._stop.is_set():
                started = self._monotonic()
                # A failure is already logged and counted by _cycle; the loop just carries on,
                # unless no later cycle can do better.
                try:
                    self._cycle(started)
                except self._fatal as error:
                    self.fatal = error
                    self._log.error("Stopping: no cycle can succeed until this is put right")
                    break
                except Exception:  # noqa: BLE001, S110 - logged by _cycle
                    pass
                finished = self._monotonic()
                if self._statistics.attempted % self._stats_every == 0:
                    self.log_statistics()
                if self._stop.is_set():
                    break
                next_start += self._interval
                if finished - started > self._interval:
                    self._statistics.record_overrun()
                    self._log.warning(
                        "Evaluation cycle %d took %.2fs, longer than the %gs interval; "
                        "starting the next cycle now",
                        self._statistics.attempted,
                        finished - started,
                        self._interval,
                    )
                    next_start = finished
                    if self._live is not None:
                        # One pass between back-to-back cycles: the readings that came during a
                        # cycle wait for it, not for the end of the next.
                        self._live_pass(self._monotonic())
                    continue
                delay = next_start - finished
                if self._aligned:
                    delay = self._interval - self._wall() % self._interval
                if delay > 0:
                    self._log.debug("Sleeping %.2fs until the next evaluation cycle", delay)
                    self._until_next_cycle(delay)
        finally:
            self.log_statistics()
            self._log.info("Alert worker stopped")

    def _until_next_cycle(self, seconds: float) -> None:
        """Wait `seconds`, running a live pass every `live_every` seconds meanwhile, the first
        at once: the readings committed during the cycle wait for none."""
        if self._live is None:
            self._wait(seconds)
            return
        until = self._monotonic() + seconds
        while not self._stop.is_set():
            started = self._monotonic()
            if started >= until:
                return
            self._live_pass(started)
            if self._stop.is_set():
                return
            now = self._monotonic()
            pause = min(self._live_every - (now - started), until - now)
            if pause > 0:
                self._wait(pause)

    def _live_pass(self, started: float) -> None:
        """One live pass; a failure is logged once until a pass succeeds again (the database
        may be down for a while: the cycles say so every interval)."""
        assert self._live is not None
        try:
            with self._in_flight():
                stats = self._live()
        except Exception as error:  # noqa: BLE001 - the next pass, or cycle, retries
            seconds = self._monotonic() - started
            self._statistics.record_live_failure()
            self._tell(lambda observer: observer.live_failed(seconds))
            if self._cancelled:
                self._log.info("The live pass in flight was cancelled and rolled back")
            elif not self._live_failing:
                self._log.error(
                    "Live pass failed: %s; retrying every %gs until one succeeds",
                    describe_error(error, self._secrets),
                    self._live_every,
                )
            self._live_failing = True
            self._log.debug("Live pass failure details:", exc_info=True)
            return
        if self._live_failing:
            self._live_failing = False
            self._log.info("Live passes succeed again")
        if stats is None:
            return
        seconds = self._monotonic() - started
        self._statistics.record_live(stats)
        self._tell(lambda observer: observer.live_passed(stats, seconds))
        self._log.debug("Live pass completed in %.3fs: %s", seconds, stats.as_dict())

    def run_once(self) -> CycleStats:
        """Run one cycle (for --dry-run and --once). A failure is logged, then re-raised."""
        return self._cycle(self._monotonic())

    def request_stop(self, why: str) -> None:
        """Stop after the cycle in flight; cancel that cycle (it rolls back) if it has not ended
        within CANCEL_AFTER seconds, as one waiting on a lock would not, and again every
        CANCEL_AFTER seconds until it has: a cancel that lands between two statements is lost.
        From any thread."""
        if self._stop.is_set():
            return
        self._log.info("Received %s, stopping after the cycle in flight", why)
        self._stop.set()
        if self._cancel is None or self._idle.wait(self.CANCEL_AFTER):
            return
        self._log.info(
            "The cycle in flight has not ended after %gs: cancelling it", self.CANCEL_AFTER
        )
        self._cancelled = True
        while True:
            self._cancel()
            if self._idle.wait(self.CANCEL_AFTER):
                return

    def log_statistics(self) -> None:
        self._log.info("Worker statistics: %s", self._statistics.summary(self._monotonic()))

    def _cycle(self, started: float) -> CycleStats:
        number = self._statistics.attempted + 1
        self._log.info("Starting evaluation cycle %d", number)
        try:
            with self._in_flight():
                stats = self._run_cycle()
        except Exception as error:
            failed_at = self._monotonic()
            self._statistics.record_failure(failed_at)
            self._tell(lambda observer: observer.failed(failed_at - started))
            if self._cancelled:
                self._log.info("Evaluation cycle %d was cancelled and rolled back", number)
            else:
                self._log.error(
                    "Evaluation cycle %d failed: %s", number, describe_error(error, self._secrets)
                )
            self._log.debug("Evaluation cycle %d failure details:", number, exc_info=True)
            raise
        finished = self._monotonic()
        self._statistics.record(stats, started, finished)
        self._tell(lambda observer: observer.succeeded(stats, finished - started))
        self._log.info(
            "Evaluation cycle completed in %.2fs: %s", finished - started, stats.as_dict()
        )
        return stats

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        """A cycle or pass runs: a stop request waits for it (see `request_stop`), and the
        garbage collector pauses."""
        self._idle.clear()
        try:
            with collector_paused():
                yield
        finally:
            self._idle.set()

    def _tell(self, news: Callable[[CycleObserver], None]) -> None:
        """Tell every observer, each whatever another did: one that fails is logged."""
        for observer in self._observers:
            try:
                news(observer)
            except Exception as error:  # noqa: BLE001 - an observer must not stop the worker
                self._log.error(
                    "%s failed: %s", type(observer).__name__, describe_error(error, self._secrets)
                )


def describe_error(error: BaseException, secrets: Iterable[str] = ()) -> str:
    """`error` on one line for a log or terminal: type and message, passwords masked, cut short."""
    secrets = tuple(secrets)
    # Redact before the blanks are folded, so a secret with blanks in it still matches.
    text = " ".join(redact(str(error), secrets).split())
    text = redact(f"{type(error).__name__}: {text}" if text else type(error).__name__, secrets)
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 3] + "..."
    return text


def log_startup(log: logging.Logger, settings: Settings, interval: float | None) -> None:
    """The specification's first lines: who starts, the interval, which database, config passed."""
    log.info("Starting Reef Alert Worker (reef-alerts %s)", __version__)
    if interval is not None:
        log.info("Evaluation interval: %g seconds", interval)
    if settings.embedded:
        log.info(
            "Using the embedded SQLite database %s (ENV=development and no database configured; "
            "set DATABASE_URL to use PostgreSQL)",
            settings.sqlite_path,
        )
    else:
        log.info("Database: %s (ENV=%s)", settings.safe_url, settings.env)
    log.info("Configuration validation passed")


def install_signal_handlers(request_stop: Callable[[str], None]) -> Callable[[], None]:
    """Make the first SIGINT or SIGTERM call `request_stop` with the signal's name, and a second
    end the process at once; return a function that restores the previous handlers.

    Call it from the main thread. The second signal meets the operating system's default
    action, whatever the process is doing (a statement the first could not cancel, a hung
    connection): the database rolls back the transaction the process had open.
    """
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, _frame: FrameType | None) -> None:
        for each in previous:
            signal.signal(each, signal.SIG_DFL)
        # Not on the main thread: the stop waits for the cycle to end, and Event.set() takes a
        # lock the interrupted main thread may hold inside Event.wait().
        threading.Thread(
            target=request_stop,
            args=(signal.Signals(signum).name,),
            name="reef-alerts-stop",
            daemon=True,
        ).start()

    for signum in previous:
        signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    return restore
