"""The evaluation cycle: read every enabled alert at once, decide each, write the changes once."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime

import attrs

from reef_alerts.domain import (
    Alert,
    EvaluationPolicy,
    NoChange,
    Resolve,
    Skip,
    Trigger,
)
from reef_alerts.ports import (
    WHOLE,
    AlertSnapshot,
    AppliedChanges,
    Clock,
    CycleRecord,
    EventChanges,
    EventWriter,
    LeaseLostError,
    PartitionCoordinator,
    Resolution,
    Shard,
    StoredAlert,
    UnitOfWorkFactory,
)


@attrs.define
class CycleStats:
    """What one cycle did. `total_alerts` = `evaluated` + `skipped` + `errors`."""

    total_alerts: int = 0
    evaluated: int = 0
    """Alerts whose condition was checked against a reading."""
    triggered: int = 0
    resolved: int = 0
    skipped: int = 0
    """Alerts that could not be judged now: no device, no fresh reading, no usable metric."""
    errors: int = 0
    """Alerts whose stored definition is broken, or whose evaluation raised."""

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


SUBMIT_EVERY = 1_000
"""Alerts judged between two submissions of their changes to the event writer. A writer that
writes while the cycle judges can then have most of them written by the end, when the cycle
waits for the rest; one that is busy merges submissions."""


class RunCycle:
    """Use case: evaluate every enabled alert once; commit the event changes atomically."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        policy: EvaluationPolicy,
        log: logging.Logger,
        coordinator: PartitionCoordinator | None = None,
    ) -> None:
        """With a `coordinator`, each cycle evaluates only the partitions it leases."""
        self._uow_factory = uow_factory
        self._clock = clock
        self._policy = policy
        self._log = log
        self._coordinator = coordinator
        self._last_cycle: CycleRecord | None = None
        self._known_alerts: dict[StoredAlert, Alert] = {}

    def __call__(self) -> CycleStats:
        shard = self._coordinator.claim(self._last_cycle) if self._coordinator else WHOLE
        started = self._clock.now()
        stats = CycleStats()
        try:
            if shard.owned:
                with _collector_paused():
                    self._evaluate(shard, stats)
            else:
                self._log.info(
                    "Found 0 enabled alerts to evaluate: all %d partitions are leased by other "
                    "workers",
                    shard.count,
                )
        except BaseException:
            self._last_cycle = self._record(started, stats, succeeded=False)
            raise
        self._last_cycle = self._record(started, stats, succeeded=True)
        return stats

    def _record(self, started: datetime, stats: CycleStats, succeeded: bool) -> CycleRecord:
        seconds = (self._clock.now() - started).total_seconds()
        return CycleRecord(started, seconds, stats.total_alerts, succeeded)

    def _evaluate(self, shard: Shard, stats: CycleStats) -> None:
        with self._uow_factory() as uow:
            snapshots = uow.snapshots.enabled_alerts(shard)
            # After the read has begun, so that no reading it sees is newer than `now`.
            now = self._clock.now()
            triggers, resolves = self._decide_all(snapshots, now, stats, uow.events)
            if shard.count == 1:
                self._log.info("Found %d enabled alerts to evaluate", stats.total_alerts)
            else:
                self._log.info(
                    "Found %d enabled alerts to evaluate in %s",
                    stats.total_alerts,
                    shard.describe(),
                )
            applied = uow.events.flush()
            if shard.leased_by is not None and not uow.leases.renew(shard):
                raise LeaseLostError(
                    f"lost the lease on {shard.describe()} during the cycle; rolled back, "
                    "the partitions' new holder evaluates them"
                )
            uow.commit()
        self._report(triggers, resolves, applied, stats)

    def _decide_all(
        self,
        snapshots: Iterable[AlertSnapshot],
        now: datetime,
        stats: CycleStats,
        writer: EventWriter,
    ) -> tuple[list[Trigger], list[tuple[Resolution, Resolve]]]:
        """Judge each snapshot as it is read, counting into `stats`, and submit the changes to
        `writer` every SUBMIT_EVERY alerts, so that it can write them while judging goes on.

        The loop body runs once per alert, up to 100,000 times a cycle: it keeps its counters
        and look-ups in locals.
        """
        triggers: list[Trigger] = []
        resolves: list[tuple[Resolution, Resolve]] = []
        debug = self._log.isEnabledFor(logging.DEBUG)
        evaluate = self._policy.at(now).evaluate
        known = self._known_alerts.get
        seen: dict[StoredAlert, Alert] = {}
        total = evaluated = skipped = errors = 0
        opened_sent = resolved_sent = 0

        def submit() -> None:
            """Hand the writer what was decided since the last submission."""
            nonlocal opened_sent, resolved_sent
            writer.submit(
                EventChanges(
                    opened=[trigger.event for trigger in triggers[opened_sent:]],
                    resolved=[resolution for resolution, _ in resolves[resolved_sent:]],
                )
            )
            opened_sent, resolved_sent = len(triggers), len(resolves)

        try:
            for stored, device, reading, open_event_id in snapshots:
                total += 1
                if total % SUBMIT_EVERY == 0:
                    submit()
                try:
                    alert = known(stored)
                    if alert is None:
                        alert = _build_alert(stored)
                    seen[stored] = alert
                    decision = evaluate(alert, device, reading, open_event_id is not None)
                except Exception as error:  # noqa: BLE001 - one bad alert must not stop the cycle
                    errors += 1
                    self._log.warning("Alert %d could not be evaluated: %s", stored.id, error)
                    continue
                if type(decision) is NoChange:  # by far the most common: checked first
                    evaluated += 1
                elif type(decision) is Skip:
                    skipped += 1
                    if debug:
                        self._log.debug("Alert %d skipped: %s", stored.id, decision.reason)
                elif type(decision) is Trigger:
                    evaluated += 1
                    triggers.append(decision)
                else:
                    evaluated += 1
                    # evaluate() resolves only when an event is open
                    assert isinstance(decision, Resolve)
                    assert open_event_id is not None
                    resolution = Resolution(open_event_id, stored.id, now, decision.value)
                    resolves.append((resolution, decision))
            submit()
        finally:
            stats.total_alerts += total
            stats.evaluated += evaluated
            stats.skipped += skipped
            stats.errors += errors
        # Only this cycle's alerts are kept: the alerts reused next cycle are those whose rows
        # are unchanged (alerts are edited rarely, and building 100,000 was a tenth of a cycle),
        # and edited or deleted ones do not pile up.
        self._known_alerts = seen
        return triggers, resolves

    def _report(
        self,
        triggers: list[Trigger],
        resolves: list[tuple[Resolution, Resolve]],
        applied: AppliedChanges,
        stats: CycleStats,
    ) -> None:
        """Count and log what was written, which under concurrency can be less than decided."""
        for trigger in triggers:
            event = trigger.event
            if event.alert_id not in applied.opened:
                self._log.debug("Alert %d: another worker opened its event first", event.alert_id)
                continue
            stats.triggered += 1
            self._log.info("Alert %d triggered: %s", event.alert_id, trigger.reason)
            self._log.info(
                "Created alert event for alert %d, device %s, value %s",
                event.alert_id,
                event.metadata["device_name"],
                event.current_value,
            )
        for resolution, resolve in resolves:
            if resolution.event_id not in applied.resolved:
                self._log.debug(
                    "Alert %d: another worker resolved its event first", resolution.alert_id
                )
                continue
            stats.resolved += 1
            self._log.info("Alert %d resolved: %s", resolution.alert_id, resolve.reason)


def _build_alert(stored: StoredAlert) -> Alert:
    # Positional: one per alert in a worker's first cycle, and keywords cost a fifth more.
    alert_id, device_id, metric, operator, threshold, trend_enabled = stored
    return Alert(alert_id, device_id, metric, operator, threshold, True, bool(trend_enabled))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one cycle.

    A cycle builds a few objects per alert, all short-lived and acyclic; at 100,000 alerts the
    collector's repeated full passes over them took a third of the cycle's CPU time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
