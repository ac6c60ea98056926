"""The evaluation cycle: read every enabled alert at once, judge them batch by batch, write the
changes as they are decided, commit them together."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal, TypeVar, assert_never

import attrs

from reef_alerts.application.deadlines import Deadlines
from reef_alerts.application.judging import Fault, Judge, Verdict
from reef_alerts.application.statuses import ERROR, SKIPPED, status_change
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
from reef_alerts.ports import (
    WHOLE,
    AlertSnapshot,
    AppliedChanges,
    Clock,
    CycleRecord,
    EventChanges,
    Focus,
    LeaseLostError,
    PartitionCoordinator,
    ReadingWatcher,
    RecordedStatus,
    Shard,
    StateChange,
    StatusChange,
    StoredAlert,
    TrendStateChange,
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

    change: Literal[
        "trigger",
        "resolve",
        "no_data",
        "no_data_resolved",
        "forecast",
        "forecast_resolved",
        "rate",
        "rate_resolved",
    ]
    alert_id: int | None
    value: float | None
    reason: str
    reading_at: datetime | None = None
    """For a trigger: the timestamp of the reading that opened the event."""


_RULE_COUNTS = frozenset(
    {"pending", "no_data_opened", "no_data_resolved", "trend_opened", "trend_resolved"}
)

ALERT_STATES = ("ok", "pending", "firing", "no_data", "skipped", "error")
"""What a cycle leaves an alert in (CycleStats.states)."""


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
    pending: int = 0
    """Of the evaluated, alerts whose condition holds but has not held for long enough yet."""
    no_data_opened: int = 0
    """No-data events opened: devices that fell silent."""
    no_data_resolved: int = 0
    trend_opened: int = 0
    """Forecast and rate events opened (issue 13)."""
    trend_resolved: int = 0
    changes: list[WrittenChange] = attrs.field(factory=list, repr=False)
    """The events the cycle opened and resolved, in that order."""
    states: dict[str, int] = attrs.field(factory=dict, repr=False)
    """The alerts by the state the cycle left them in (ALERT_STATES), as `reef-alerts alerts`
    tells them: no data first, then skipped or error, firing, pending, ok."""

    def as_dict(self) -> dict[str, int]:
        """The counts (not the changes): the specification's six, and the rule options' where
        any is not 0, so that a fleet without options logs what the specification shows."""
        counts = attrs.asdict(
            self, filter=lambda attribute, _: attribute.name not in ("changes", "states")
        )
        return {k: v for k, v in counts.items() if v or k not in _RULE_COUNTS}


@attrs.define
class _Decided:
    """What a cycle decided to write, for its report once the writes are known."""

    triggers: list[Trigger] = attrs.Factory(list)
    resolves: list[tuple[Resolution, Resolve]] = attrs.Factory(list)
    statuses: list[tuple[StatusChange, RecordedStatus | None]] = attrs.Factory(list)
    """Status changes, with the status each replaces."""
    no_data_opened: list[OpenNoData] = attrs.Factory(list)
    no_data_resolved: list[tuple[Resolution, ResolveNoData]] = attrs.Factory(list)
    pending: list[tuple[int, Pending]] = attrs.Factory(list)
    """The alerts whose condition began to hold, and must go on holding, in this cycle."""
    trend_opened: list[OpenTrend] = attrs.Factory(list)
    trend_resolved: list[tuple[Resolution, ResolveTrend]] = attrs.Factory(list)

    def as_applied(self) -> AppliedChanges:
        """Every decided change, as if all were written."""
        events = [t.event for t in self.triggers] + [o.event for o in self.no_data_opened]
        events += [o.event for o in self.trend_opened]
        resolutions = [r for r, _ in self.resolves] + [r for r, _ in self.no_data_resolved]
        resolutions += [r for r, _ in self.trend_resolved]
        return AppliedChanges(
            frozenset((e.alert_id, e.kind.value) for e in events if e.alert_id is not None),
            frozenset(resolution.event_id for resolution in resolutions),
        )


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
        self._lines_left = STATUS_LINES
        self._unsaid: list[StatusChange] = []
        """Status changes of live passes beyond STATUS_LINES, for the next cycle to count."""

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
        decided = _Decided()
        with self._uow_factory() as uow:
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
        if due is None:
            pass
        elif focus is None:
            self._deadlines.replace(due.devices, due.alerts)
            self._watched = frozenset(due.devices)
        else:
            assert due.judged is not None
            self._deadlines.update(due.devices, due.alerts, due.judged, focus)
        self._report(decided, applied, stats, live=focus is not None)

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
        decided: _Decided,
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
        decided: _Decided,
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
        decided: _Decided,
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

    def _say(
        self, statuses: list[tuple[StatusChange, RecordedStatus | None]], *, live: bool
    ) -> None:
        """One line for each alert whose status changed, up to STATUS_LINES from a cycle and
        the live passes before it, and one for the rest, said by the cycle: a WARNING when an
        alert cannot be judged, so that a keeper never needs DEBUG to learn that an alert is
        dead, and no flood when a thousand change at once (a worker's first cycle on a big
        fleet, a controller that went down, its probes going stale one pass after another)."""
        said = statuses[: self._lines_left]
        for change, was in said:
            self._say_one(change, was)
        self._lines_left -= len(said)
        rest = [change for change, _ in statuses[len(said) :]]
        if live:
            self._unsaid.extend(rest)
            return
        when = "since the last cycle" if self._unsaid else "in this cycle"
        rest, self._unsaid, self._lines_left = self._unsaid + rest, [], STATUS_LINES
        if rest:
            states = [change.state for change in rest]
            ids = ", ".join(str(change.alert_id) for change in rest[:STATUS_LINES])
            self._log.warning(
                "... and %d more alerts changed status %s (%d skipped, %d could not "
                "be evaluated, %d judged again): alerts %s%s; `reef-alerts alerts` says why",
                len(rest),
                when,
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

    def _report(
        self, decided: _Decided, applied: AppliedChanges, stats: CycleStats, *, live: bool
    ) -> None:
        """Count and log what was written, which under concurrency can be less than decided."""
        self._say(decided.statuses, live=live)
        for trigger in decided.triggers:
            event = trigger.event
            if (event.alert_id, event.kind.value) not in applied.opened:
                self._log.debug("Alert %d: another worker opened its event first", event.alert_id)
                continue
            stats.triggered += 1
            stats.changes.append(
                WrittenChange(
                    "trigger",
                    event.alert_id,
                    event.current_value,
                    trigger.reason,
                    trigger.reading_at,
                )
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
        self._report_no_data(decided, applied, stats)
        self._report_trend(decided, applied, stats)
        if not self._dry_run:
            for alert_id, pending in decided.pending:
                self._log.info("Alert %d pending: %s", alert_id, pending.reason)

    def _report_no_data(
        self, decided: _Decided, applied: AppliedChanges, stats: CycleStats
    ) -> None:
        for opening in decided.no_data_opened:
            event = opening.event
            if (event.alert_id, event.kind.value) not in applied.opened:
                self._log.debug(
                    "Alert %d: another worker opened its no-data event first", event.alert_id
                )
                continue
            stats.no_data_opened += 1
            stats.changes.append(WrittenChange("no_data", event.alert_id, None, opening.reason))
            if not self._dry_run:
                self._log.warning(
                    "Alert %d: no data: %s; opened a no-data event", event.alert_id, opening.reason
                )
        for resolution, resolve in decided.no_data_resolved:
            if resolution.event_id not in applied.resolved:
                continue
            stats.no_data_resolved += 1
            stats.changes.append(
                WrittenChange(
                    "no_data_resolved", resolution.alert_id, resolution.value, resolve.reason
                )
            )
            if not self._dry_run:
                self._log.info(
                    "Alert %d: %s; resolved its no-data event", resolution.alert_id, resolve.reason
                )

    def _report_trend(self, decided: _Decided, applied: AppliedChanges, stats: CycleStats) -> None:
        for opening in decided.trend_opened:
            event = opening.event
            if (event.alert_id, event.kind.value) not in applied.opened:
                continue
            stats.trend_opened += 1
            stats.changes.append(
                WrittenChange(
                    _opened_kind(event.kind), event.alert_id, event.current_value, opening.reason
                )
            )
            if not self._dry_run:
                self._log.warning(
                    "Alert %d: %s; opened a %s event",
                    event.alert_id,
                    opening.reason,
                    event.kind.value,
                )
        for resolution, resolve in decided.trend_resolved:
            if resolution.event_id not in applied.resolved:
                continue
            stats.trend_resolved += 1
            stats.changes.append(
                WrittenChange(
                    _resolved_kind(resolve.kind),
                    resolution.alert_id,
                    resolution.value,
                    resolve.reason,
                )
            )
            if not self._dry_run:
                self._log.info(
                    "Alert %d: %s; resolved its %s event",
                    resolution.alert_id,
                    resolve.reason,
                    resolve.kind.value,
                )


def _opened_kind(kind: EventKind) -> Literal["forecast", "rate"]:
    return "forecast" if kind is EventKind.FORECAST else "rate"


def _resolved_kind(kind: EventKind) -> Literal["forecast_resolved", "rate_resolved"]:
    return "forecast_resolved" if kind is EventKind.FORECAST else "rate_resolved"


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size`, the last shorter."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
