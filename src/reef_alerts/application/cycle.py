"""The evaluation cycle: read every enabled alert at once, judge them batch by batch, write the
changes as they are decided, commit them together."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar, assert_never

import attrs

from reef_alerts.application.deadlines import Deadlines
from reef_alerts.application.judging import Fault, Judge, Verdict
from reef_alerts.application.outcomes import (
    CycleReport,
    CycleStats,
    Decided,
)
from reef_alerts.application.statuses import status_change
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Alert,
    AlertEvent,
    Decision,
    EvaluationPolicy,
    Evaluator,
    EventKind,
    NoChange,
    NoDataChange,
    OpenNoData,
    OpenTrend,
    Pending,
    Resolution,
    Resolve,
    ResolveNoData,
    ResolveTrend,
    RuleOptions,
    Skip,
    Transition,
    TrendChange,
    Trigger,
    fold,
)
from reef_alerts.domain.notices import Silence, covering
from reef_alerts.ports import (
    WHOLE,
    AlertSnapshot,
    Clock,
    CycleRecord,
    EventChanges,
    Focus,
    LeaseLostError,
    PartitionCoordinator,
    ReadingWatcher,
    Shard,
    StateChange,
    StatusChange,
    StoredAlert,
    TrendStateChange,
    UnitOfWorkFactory,
)

T = TypeVar("T")

_NOT_JUDGED = Skip | Fault
"""The verdicts of an alert that was not judged."""


class _Due:
    """What a cycle or live pass learns of when its alerts may change with time alone: the
    instants for Deadlines, and the alerts a pass judged."""

    def __init__(self, evaluator: Evaluator, live: bool) -> None:
        self.evaluator = evaluator
        self.judged: list[int] | None = [] if live else None
        """A live pass's judged alerts; None in a full cycle, which judges them all."""
        self.devices: dict[int, datetime | None] = {}
        self.alerts: dict[int, datetime] = {}

    def note(self, batch: list[AlertSnapshot], verdicts: list[Verdict]) -> None:
        """Each device's instant once (most watched devices have one: their reading goes
        stale), and the instants of the alerts the state machine stepped."""
        devices, rejudged_at, alerts = self.devices, self.evaluator.rejudged_at, self.alerts
        if self.judged is not None:
            self.judged.extend(snapshot.alert.id for snapshot in batch)
        for snapshot, verdict in zip(batch, verdicts, strict=True):
            device_id = snapshot.alert.device_id
            if device_id not in devices:
                devices[device_id] = rejudged_at(snapshot.device, snapshot.reading)
            if isinstance(verdict, Transition) and verdict.due is not None:
                alerts[snapshot.alert.id] = verdict.due


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
        defaults: RuleOptions = DEFAULT_OPTIONS,
        watcher: ReadingWatcher | None = None,
    ) -> None:
        """With a `coordinator`, each cycle evaluates only the partitions it leases. `defaults`:
        the options of every alert that sets none of its own, where the storage keeps options.
        `watcher`: tells the devices with new readings, for live passes (`live`) between cycles.

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
        self._defaults = defaults
        self._warned_defaults = False
        self._warned_trends = False
        self._last_cycle: CycleRecord | None = None
        self._known_alerts: dict[StoredAlert, Alert] = {}
        self._watcher = watcher
        self._unjudged: set[int] = set()
        """Devices the watcher noticed that no pass has judged yet (one failed)."""
        self._shard: Shard | None = None
        """The last successful cycle's shard, which live passes judge; None before."""
        self._deadlines = Deadlines()
        self._watched: frozenset[int] = frozenset()
        """The devices whose alerts the last full cycle judged."""
        self._report = CycleReport(log, dry_run=dry_run)

    def __call__(self) -> CycleStats:
        """A full cycle: every enabled alert of the partitions this worker leases."""
        self._shard = None
        shard = self._coordinator.claim(self._last_cycle) if self._coordinator else WHOLE
        started = self._clock.now()
        stats = CycleStats()
        try:
            if self._watcher is not None:
                self._watcher.start()  # before this cycle's read, which judges what came before
            self._unjudged.clear()
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
        self._shard = shard
        return stats

    def live(self) -> CycleStats | None:
        """A live pass (issue 16, ADR 23): judge the alerts of the devices with new readings,
        and those whose time alone may have changed (Deadlines), with the last cycle's shard,
        in one transaction as a cycle does. None when there were none to judge, or no cycle
        has succeeded since the worker started or a cycle failed: that cycle judges them."""
        shard = self._shard
        if self._watcher is None or shard is None or not shard.owned:
            return None
        # Only the devices the last cycle saw alerts of: another's partitions' are not ours, and
        # a device that gained its first alert since waits for the next cycle, as edits do.
        self._unjudged |= self._watcher.noticed() & self._watched
        focus = Focus(frozenset(self._unjudged)) | self._deadlines.due(self._clock.now())
        if not focus:
            return None
        stats = CycleStats()
        try:
            self._evaluate(shard, stats, focus)
        except LeaseLostError:
            self._shard = None
            raise
        self._unjudged.clear()
        return stats

    def _record(self, started: datetime, stats: CycleStats, succeeded: bool) -> CycleRecord:
        seconds = (self._clock.now() - started).total_seconds()
        return CycleRecord(started, seconds, stats.total_alerts, succeeded)

    def _evaluate(self, shard: Shard, stats: CycleStats, focus: Focus | None = None) -> None:
        """Judge the enabled alerts of `shard` (those of `focus`, in a live pass) and write
        what changed, in one transaction."""
        decided = Decided()
        with self._uow_factory() as uow:
            silences = uow.snapshots.silences(self._clock.now())
            snapshots = uow.snapshots.enabled_alerts(shard, focus)
            # After the read has begun, so that no reading it sees is newer than `now`.
            now = self._clock.now()
            evaluator = self._policy.at(now)
            # What live passes need to know; nothing to note for a worker without them.
            due = None if self._watcher is None else _Due(evaluator, focus is not None)
            judge = Judge(
                evaluator,
                metric_limit=uow.events.metric_limit,
                known=self._known_alerts,
                defaults=self._defaults_for(uow.snapshots.remembers),
                trends=uow.snapshots.trends,
            )
            for batch in _batches(snapshots, self._submit_every):
                wanted = judge.windows_of(batch)
                windows = uow.snapshots.windows(wanted, judge.until) if wanted else None
                verdicts = judge(batch, windows)
                changes = self._tally(batch, verdicts, now, stats, decided)
                if silences and changes.opened:
                    changes = attrs.evolve(
                        changes, opened=list(_marked(changes.opened, silences, now))
                    )
                if due is not None:
                    due.note(batch, verdicts)
                if not self._dry_run:
                    uow.events.submit(changes)
            if focus is None:
                # Only this cycle's alerts are kept: edited or deleted ones do not pile up.
                self._known_alerts = judge.built
            else:
                self._known_alerts.update(judge.built)
            if not judge.trends:
                self._warn_trends(judge.built.values())
            for alert_id, note in judge.notes:
                self._log.warning("Alert %d: %s", alert_id, note)
            if focus is not None:
                self._log.debug(
                    "Live pass: %d alerts of %d devices with new readings or due",
                    stats.total_alerts,
                    len(focus.devices),
                )
            elif shard.count == 1:
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
        if due is not None:
            self._remember(due, focus)
        self._report(decided, applied, stats, live=focus is not None)

    def _remember(self, due: _Due, focus: Focus | None) -> None:
        """Once a cycle or pass has committed: the instants the next passes judge at, and,
        after a cycle, the devices they watch."""
        if focus is None:
            self._deadlines.replace(due.devices, due.alerts)
            self._watched = frozenset(due.devices)
        else:
            assert due.judged is not None
            self._deadlines.update(due.devices, due.alerts, due.judged, focus)

    def _defaults_for(self, remembers: bool) -> RuleOptions:
        """The default options, where the storage can keep what they need; said once where it
        cannot."""
        if remembers or self._defaults is DEFAULT_OPTIONS:
            return self._defaults
        if not self._warned_defaults:
            self._warned_defaults = True
            self._log.warning(
                "The default rule options (%s) need the worker's rule tables and its index of "
                "one open event per kind: every alert is evaluated by the specification's rule "
                "until `reef-alerts db upgrade` has been run",
                self._defaults.describe(),
            )
        return DEFAULT_OPTIONS

    def _warn_trends(self, alerts: Iterable[Alert]) -> None:
        """Said once, where trend alerts are judged on their threshold alone."""
        if self._warned_trends or not any(alert.trend_enabled for alert in alerts):
            return
        self._warned_trends = True
        self._log.warning(
            "Trend alerts (trend_enabled) are judged on their threshold alone until `reef-alerts "
            "db upgrade` has added the trend rules' tables"
        )

    def _tally(
        self,
        batch: list[AlertSnapshot],
        verdicts: list[Verdict],
        now: datetime,
        stats: CycleStats,
        decided: Decided,
    ) -> EventChanges:
        """Count each snapshot's verdict into `stats`, fold the decisions into the event changes
        they make, and note the statuses and states that changed."""
        debug = self._log.isEnabledFor(logging.DEBUG)
        opened: list[AlertEvent] = []
        resolved: list[Resolution] = []
        statuses: list[StatusChange] = []
        states: list[StateChange] = []
        trend_states: list[TrendStateChange] = []
        evaluated = skipped = errors = pending = 0
        by_state = stats.states
        for snapshot, verdict in zip(batch, verdicts, strict=True):
            alert_id, recorded = snapshot.alert.id, snapshot.status
            if isinstance(verdict, Transition):
                decision: Decision | Fault = verdict.decision
                pending_since = verdict.state.pending_since
                firing, silent = verdict.state.firing, verdict.state.silent
                if verdict.no_data is not None:
                    self._no_data(snapshot, verdict.no_data, now, opened, resolved, decided)
                if verdict.trend:
                    self._trend(snapshot, verdict.trend, now, opened, resolved, decided)
                memory = verdict.state.trend
                if (memory.forecast_since, memory.rate_since) != (
                    snapshot.forecast_since,
                    snapshot.rate_since,
                ):
                    trend_states.append(
                        TrendStateChange(alert_id, memory.forecast_since, memory.rate_since)
                    )
            else:
                decision, pending_since = verdict, None
                firing = snapshot.open_event_id is not None
                silent = snapshot.no_data_event_id is not None
            state = "firing" if firing else "ok"
            match decision:
                case NoChange():
                    evaluated += 1
                case Pending():
                    evaluated += 1
                    pending += 1
                    state = "pending"
                case Skip():
                    skipped += 1
                    state = "skipped"
                case Fault():
                    errors += 1
                    state = "error"
                case Trigger():
                    evaluated += 1
                    state = "firing"
                    event = fold(alert_id, decision, snapshot.open_event_id, now)
                    assert isinstance(event, AlertEvent)
                    opened.append(event)
                    decided.triggers.append(decision)
                case Resolve():
                    evaluated += 1
                    resolution = fold(alert_id, decision, snapshot.open_event_id, now)
                    assert isinstance(resolution, Resolution)
                    resolved.append(resolution)
                    decided.resolves.append((resolution, decision))
                    state = "ok"
                case _:
                    assert_never(decision)
            state = "no_data" if silent else state
            by_state[state] = by_state.get(state, 0) + 1
            if pending_since != snapshot.pending_since:
                states.append(StateChange(alert_id, pending_since))
                if isinstance(decision, Pending) and snapshot.pending_since is None:
                    decided.pending.append((alert_id, decision))
            if recorded is None and not isinstance(decision, _NOT_JUDGED):
                continue  # judged, as last time: the most common case by far
            change = status_change(alert_id, recorded, decision, now)
            if change is not None:
                statuses.append(change)
                decided.statuses.append((change, recorded))
            elif debug and isinstance(decision, _NOT_JUDGED):
                self._log.debug("Alert %d: still %s", alert_id, decision.reason)
        stats.total_alerts += len(batch)
        stats.evaluated += evaluated
        stats.skipped += skipped
        stats.errors += errors
        stats.pending += pending
        return EventChanges(
            opened=opened,
            resolved=resolved,
            statuses=statuses,
            states=states,
            trend_states=trend_states,
        )

    @staticmethod
    def _no_data(
        snapshot: AlertSnapshot,
        change: NoDataChange,
        now: datetime,
        opened: list[AlertEvent],
        resolved: list[Resolution],
        decided: Decided,
    ) -> None:
        """Fold a no-data change into the event changes."""
        match change:
            case OpenNoData(event=event):
                opened.append(event)
                decided.no_data_opened.append(change)
            case ResolveNoData(value=value):
                assert snapshot.no_data_event_id is not None
                resolution = Resolution(snapshot.no_data_event_id, snapshot.alert_id, now, value)
                resolved.append(resolution)
                decided.no_data_resolved.append((resolution, change))
            case _:
                assert_never(change)

    @staticmethod
    def _trend(
        snapshot: AlertSnapshot,
        changes: tuple[TrendChange, ...],
        now: datetime,
        opened: list[AlertEvent],
        resolved: list[Resolution],
        decided: Decided,
    ) -> None:
        """Fold trend changes into the event changes."""
        for change in changes:
            match change:
                case OpenTrend(event=event):
                    opened.append(event)
                    decided.trend_opened.append(change)
                case ResolveTrend(kind=kind, value=value):
                    event_id = (
                        snapshot.forecast_event_id
                        if kind is EventKind.FORECAST
                        else snapshot.rate_event_id
                    )
                    assert event_id is not None
                    resolution = Resolution(event_id, snapshot.alert_id, now, value)
                    resolved.append(resolution)
                    decided.trend_resolved.append((resolution, change))
                case _:
                    assert_never(change)


def _marked(
    events: Iterable[AlertEvent], silences: Sequence[Silence], now: datetime
) -> Iterator[AlertEvent]:
    """`events`, those a silence covers saying so in their metadata (issue 15): nothing is sent
    about them while it lasts."""
    for event in events:
        alert_id = event.alert_id
        silence = None if alert_id is None else covering(silences, alert_id, event.device_id, now)
        if silence is None:
            yield event
            continue
        said = {"id": silence.id, "until": silence.ends_at.isoformat(), "reason": silence.reason}
        yield attrs.evolve(event, metadata={**event.metadata, "silenced": said})


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size`, the last shorter."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
