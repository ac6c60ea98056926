"""The evaluation cycle: read every enabled alert at once, judge them batch by batch, write the
changes as they are decided, commit them together."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TypeVar, assert_never

import attrs

from reef_alerts.application.judging import Fault, Judge, Judged
from reef_alerts.domain import (
    Alert,
    AlertEvent,
    EvaluationPolicy,
    NoChange,
    Resolution,
    Resolve,
    Skip,
    Trigger,
    fold,
)
from reef_alerts.ports import (
    WHOLE,
    AppliedChanges,
    Clock,
    CycleRecord,
    EventChanges,
    LeaseLostError,
    PartitionCoordinator,
    Shard,
    StoredAlert,
    UnitOfWorkFactory,
)

T = TypeVar("T")


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


@attrs.define
class _Decided:
    """What a cycle decided to write, for its report once the writes are known."""

    triggers: list[Trigger] = attrs.Factory(list)
    resolves: list[tuple[Resolution, Resolve]] = attrs.Factory(list)


class RunCycle:
    """Use case: evaluate every enabled alert once; commit the event changes atomically."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        policy: EvaluationPolicy,
        log: logging.Logger,
        coordinator: PartitionCoordinator | None = None,
        *,
        submit_every: int = 1_000,
    ) -> None:
        """With a `coordinator`, each cycle evaluates only the partitions it leases.

        `submit_every`: alerts judged between two submissions of their changes to the event
        writer, which may write them while judging goes on (ADR 8).
        """
        self._uow_factory = uow_factory
        self._clock = clock
        self._policy = policy
        self._log = log
        self._coordinator = coordinator
        self._submit_every = submit_every
        self._last_cycle: CycleRecord | None = None
        self._known_alerts: dict[StoredAlert, Alert] = {}

    def __call__(self) -> CycleStats:
        shard = self._coordinator.claim(self._last_cycle) if self._coordinator else WHOLE
        started = self._clock.now()
        stats = CycleStats()
        try:
            if shard.owned:
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
        decided = _Decided()
        with self._uow_factory() as uow:
            snapshots = uow.snapshots.enabled_alerts(shard)
            # After the read has begun, so that no reading it sees is newer than `now`.
            now = self._clock.now()
            judge = Judge(
                self._policy.at(now),
                metric_limit=uow.events.metric_limit,
                known=self._known_alerts,
            )
            for batch in _batches(snapshots, self._submit_every):
                uow.events.submit(self._tally(judge(batch), now, stats, decided))
            # Only this cycle's alerts are kept: edited or deleted ones do not pile up.
            self._known_alerts = judge.built
            for alert_id, note in judge.notes:
                self._log.warning("Alert %d: %s", alert_id, note)
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
        self._report(decided, applied, stats)

    def _tally(
        self, judged: list[Judged], now: datetime, stats: CycleStats, decided: _Decided
    ) -> EventChanges:
        """Count each verdict into `stats`, log the skips and faults, and fold the decisions
        into the event changes they make."""
        debug = self._log.isEnabledFor(logging.DEBUG)
        opened: list[AlertEvent] = []
        resolved: list[Resolution] = []
        for snapshot, verdict in judged:
            stats.total_alerts += 1
            match verdict:
                case NoChange():
                    stats.evaluated += 1
                case Skip(reason=reason):
                    stats.skipped += 1
                    if debug:
                        self._log.debug("Alert %d skipped: %s", snapshot.alert_id, reason)
                case Fault(reason=reason):
                    stats.errors += 1
                    self._log.warning(
                        "Alert %d could not be evaluated: %s", snapshot.alert_id, reason
                    )
                case Trigger():
                    stats.evaluated += 1
                    event = fold(snapshot.alert_id, verdict, snapshot.open_event_id, now)
                    assert isinstance(event, AlertEvent)
                    opened.append(event)
                    decided.triggers.append(verdict)
                case Resolve():
                    stats.evaluated += 1
                    resolution = fold(snapshot.alert_id, verdict, snapshot.open_event_id, now)
                    assert isinstance(resolution, Resolution)
                    resolved.append(resolution)
                    decided.resolves.append((resolution, verdict))
                case _:
                    assert_never(verdict)
        return EventChanges(opened=opened, resolved=resolved)

    def _report(self, decided: _Decided, applied: AppliedChanges, stats: CycleStats) -> None:
        """Count and log what was written, which under concurrency can be less than decided."""
        for trigger in decided.triggers:
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
        for resolution, resolve in decided.resolves:
            if resolution.event_id not in applied.resolved:
                self._log.debug(
                    "Alert %d: another worker resolved its event first", resolution.alert_id
                )
                continue
            stats.resolved += 1
            self._log.info("Alert %d resolved: %s", resolution.alert_id, resolve.reason)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size`, the last shorter."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
