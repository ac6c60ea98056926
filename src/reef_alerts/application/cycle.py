"""The evaluation cycle: read every enabled alert at once, judge them batch by batch, write the
changes as they are decided, commit them together."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal, TypeVar, assert_never

import attrs

from reef_alerts.application.judging import Fault, Judge, Verdict
from reef_alerts.application.statuses import ERROR, SKIPPED, status_change
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
    AlertSnapshot,
    AppliedChanges,
    Clock,
    CycleRecord,
    EventChanges,
    LeaseLostError,
    PartitionCoordinator,
    RecordedStatus,
    Shard,
    StatusChange,
    StoredAlert,
    UnitOfWorkFactory,
)

T = TypeVar("T")

STATUS_LINES = 20
"""Status changes a cycle logs one by one; the rest it counts in one line."""

_NOT_JUDGED = Skip | Fault
"""The verdicts of an alert that was not judged."""


@attrs.frozen
class WrittenChange:
    """An event a cycle opened or resolved (or, in a dry run, would have)."""

    change: Literal["trigger", "resolve"]
    alert_id: int | None
    value: float
    reason: str


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
    changes: list[WrittenChange] = attrs.field(factory=list, repr=False)
    """The events the cycle opened and resolved, in that order."""

    def as_dict(self) -> dict[str, int]:
        """The counts (not the changes)."""
        return attrs.asdict(self, filter=lambda attribute, _: attribute.name != "changes")


@attrs.define
class _Decided:
    """What a cycle decided to write, for its report once the writes are known."""

    triggers: list[Trigger] = attrs.Factory(list)
    resolves: list[tuple[Resolution, Resolve]] = attrs.Factory(list)
    statuses: list[tuple[StatusChange, RecordedStatus | None]] = attrs.Factory(list)
    """Status changes, with the status each replaces."""

    def as_applied(self) -> AppliedChanges:
        """Every decided change, as if all were written."""
        return AppliedChanges(
            frozenset(t.event.alert_id for t in self.triggers if t.event.alert_id is not None),
            frozenset(resolution.event_id for resolution, _ in self.resolves),
        )


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
        dry_run: bool = False,
    ) -> None:
        """With a `coordinator`, each cycle evaluates only the partitions it leases.

        `submit_every`: alerts judged between two submissions of their changes to the event
        writer, which may write them while judging goes on (ADR 8). `dry_run`: write nothing and
        roll each cycle back; its statistics and changes say what it would have done.
        """
        self._uow_factory = uow_factory
        self._clock = clock
        self._policy = policy
        self._log = log
        self._coordinator = coordinator
        self._submit_every = submit_every
        self._dry_run = dry_run
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
                changes = self._tally(batch, judge(batch), now, stats, decided)
                if not self._dry_run:
                    uow.events.submit(changes)
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
            if self._dry_run:
                # Nothing was written, so nothing was locked that a live worker might wait on:
                # what was decided is what would have been written.
                applied = decided.as_applied()
                uow.rollback()
            else:
                applied = uow.events.flush()
                if shard.leased_by is not None and not uow.leases.renew(shard):
                    raise LeaseLostError(
                        f"lost the lease on {shard.describe()} during the cycle; rolled back, "
                        "the partitions' new holder evaluates them"
                    )
                uow.commit()
        self._report(decided, applied, stats)

    def _tally(
        self,
        batch: list[AlertSnapshot],
        verdicts: list[Verdict],
        now: datetime,
        stats: CycleStats,
        decided: _Decided,
    ) -> EventChanges:
        """Count each snapshot's verdict into `stats`, fold the decisions into the event changes
        they make, and note the statuses that changed, saying so in the log."""
        debug = self._log.isEnabledFor(logging.DEBUG)
        opened: list[AlertEvent] = []
        resolved: list[Resolution] = []
        statuses: list[StatusChange] = []
        evaluated = skipped = errors = 0
        for snapshot, verdict in zip(batch, verdicts, strict=True):
            alert_id, recorded = snapshot.alert.id, snapshot.status
            match verdict:
                case NoChange():
                    evaluated += 1
                case Skip():
                    skipped += 1
                case Fault():
                    errors += 1
                case Trigger():
                    evaluated += 1
                    event = fold(alert_id, verdict, snapshot.open_event_id, now)
                    assert isinstance(event, AlertEvent)
                    opened.append(event)
                    decided.triggers.append(verdict)
                case Resolve():
                    evaluated += 1
                    resolution = fold(alert_id, verdict, snapshot.open_event_id, now)
                    assert isinstance(resolution, Resolution)
                    resolved.append(resolution)
                    decided.resolves.append((resolution, verdict))
                case _:
                    assert_never(verdict)
            if recorded is None and not isinstance(verdict, _NOT_JUDGED):
                continue  # judged, as last time: the most common case by far
            change = status_change(alert_id, recorded, verdict, now)
            if change is not None:
                statuses.append(change)
                decided.statuses.append((change, recorded))
            elif debug and isinstance(verdict, _NOT_JUDGED):
                self._log.debug("Alert %d: still %s", alert_id, verdict.reason)
        stats.total_alerts += len(batch)
        stats.evaluated += evaluated
        stats.skipped += skipped
        stats.errors += errors
        return EventChanges(opened=opened, resolved=resolved, statuses=statuses)

    def _say(self, statuses: list[tuple[StatusChange, RecordedStatus | None]]) -> None:
        """One line for each alert whose status changed, up to STATUS_LINES a cycle, and one
        for the rest: a WARNING when an alert cannot be judged, so that a keeper never needs
        DEBUG to learn that an alert is dead, and no flood when a thousand change at once (a
        worker's first cycle on a big fleet, a controller that went down)."""
        for change, was in statuses[:STATUS_LINES]:
            self._say_one(change, was)
        rest = [change for change, _ in statuses[STATUS_LINES:]]
        if rest:
            states = [change.state for change in rest]
            ids = ", ".join(str(change.alert_id) for change in rest[:STATUS_LINES])
            self._log.warning(
                "... and %d more alerts changed status in this cycle (%d skipped, %d could not "
                "be evaluated, %d judged again): alerts %s%s; `reef-alerts alerts` says why",
                len(rest),
                states.count(SKIPPED),
                states.count(ERROR),
                states.count(None),
                ids,
                ", ..." if len(rest) > STATUS_LINES else "",
            )

    def _say_one(self, change: StatusChange, was: RecordedStatus | None) -> None:
        if change.state == ERROR:
            self._log.warning("Alert %d could not be evaluated: %s", change.alert_id, change.reason)
        elif change.state == SKIPPED:
            self._log.warning("Alert %d is skipped: %s", change.alert_id, change.reason)
        elif was is not None:
            self._log.info(
                "Alert %d is judged again (it was %s since %s)",
                change.alert_id,
                was.state,
                f"{was.since:%Y-%m-%d %H:%M:%S} UTC",
            )

    def _report(self, decided: _Decided, applied: AppliedChanges, stats: CycleStats) -> None:
        """Count and log what was written, which under concurrency can be less than decided."""
        self._say(decided.statuses)
        for trigger in decided.triggers:
            event = trigger.event
            if event.alert_id not in applied.opened:
                self._log.debug("Alert %d: another worker opened its event first", event.alert_id)
                continue
            stats.triggered += 1
            stats.changes.append(
                WrittenChange("trigger", event.alert_id, event.current_value, trigger.reason)
            )
            if self._dry_run:
                continue
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
            stats.changes.append(
                WrittenChange("resolve", resolution.alert_id, resolution.value, resolve.reason)
            )
            if not self._dry_run:
                self._log.info("Alert %d resolved: %s", resolution.alert_id, resolve.reason)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size`, the last shorter."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
