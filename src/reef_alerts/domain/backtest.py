"""What a rule would have done: the live state machine (`Machine.step`, ADR 15) replayed over a
device's history at a fixed step. Pure, deterministic, no database: the web app previews a
draft alert with it, and `reef-alerts preview` charts it."""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import assert_never

import attrs

from reef_alerts.domain.durations import format_duration
from reef_alerts.domain.evaluation import (
    Decision,
    EvaluationPolicy,
    NoChange,
    Pending,
    Resolve,
    Skip,
    SkipCode,
    Trigger,
)
from reef_alerts.domain.model import Alert, Device, EventKind, Reading
from reef_alerts.domain.rules import (
    DEFAULT_OPTIONS,
    DEFAULT_POLICY,
    AlertState,
    Machine,
    OpenNoData,
    ResolveNoData,
    RuleOptions,
    Transition,
)
from reef_alerts.domain.trend_rules import OpenTrend, ResolveTrend

MAX_EVALUATIONS = 50_000
"""The most evaluations one backtest runs: a week at a 15-second step."""
FLAP_WINDOW = timedelta(minutes=10)
"""A threshold event that opens this soon after the previous one resolved is a flap."""


@attrs.frozen
class Segment:
    """Consecutive evaluations of the replay with one outcome: trigger, resolve, firing, ok,
    pending or skipped."""

    start: datetime
    """The first one's instant."""
    end: datetime
    """The last one's instant."""
    outcome: str
    evaluations: int
    reason: str | None
    """The first one's reason: why a run of skips or a pending wait began."""


@attrs.frozen
class BacktestEvent:
    """An event the rule would have opened, and closed if it did within the range."""

    kind: EventKind
    opened_at: datetime
    value: float | None
    resolved_at: datetime | None = None
    resolution_value: float | None = None
    condition_since: datetime | None = None
    """When its condition began to hold, where it had to hold for a pending time."""

    def duration(self, end: datetime) -> timedelta:
        """How long it was open, until `end` if it still is."""
        return (self.resolved_at or end) - self.opened_at


@attrs.frozen
class Timeline:
    """A backtest's outcome."""

    start: datetime
    end: datetime
    step: timedelta
    segments: tuple[Segment, ...]
    """The decision at each evaluation, in runs of one outcome (and one reason to skip): one
    segment per change, where a week at 30 s is 20,161 evaluations (ADR 19)."""
    events: tuple[BacktestEvent, ...]
    warnings: tuple[str, ...]

    @property
    def evaluations(self) -> int:
        """How many evaluations the replay ran."""
        return sum(segment.evaluations for segment in self.segments)

    @property
    def threshold_events(self) -> tuple[BacktestEvent, ...]:
        return self.events_of(EventKind.THRESHOLD)

    @property
    def no_data_events(self) -> tuple[BacktestEvent, ...]:
        return self.events_of(EventKind.NO_DATA)

    def events_of(self, kind: EventKind) -> tuple[BacktestEvent, ...]:
        return tuple(e for e in self.events if e.kind is kind)

    @property
    def time_in_alert(self) -> timedelta:
        """How long a threshold event was open, in all."""
        return sum((e.duration(self.end) for e in self.threshold_events), timedelta(0))

    @property
    def flaps(self) -> int:
        """Threshold events that opened within FLAP_WINDOW of the previous one's resolution."""
        events = self.threshold_events
        return sum(
            1
            for before, after in itertools.pairwise(events)
            if before.resolved_at is not None and after.opened_at - before.resolved_at < FLAP_WINDOW
        )


def backtest(
    alert: Alert,
    device: Device | None,
    readings: Iterable[Reading],
    start: datetime,
    end: datetime,
    step: timedelta,
    options: RuleOptions = DEFAULT_OPTIONS,
    policy: EvaluationPolicy = DEFAULT_POLICY,
    *,
    max_evaluations: int = MAX_EVALUATIONS,
) -> Timeline:
    """Replay `alert` with `options` over `readings` of its device, evaluating at `start`,
    `start + step`, ... up to `end`, each time on the newest reading stamped no later than
    then, as the live worker would have found it; a trend alert on its window of those readings
    too. Starts with no event open and nothing pending; events still open at `end` stay open in
    the timeline."""
    if step <= timedelta(0):
        raise ValueError(f"the step must be longer than 0, got {format_duration(step)}")
    if end < start:
        raise ValueError("the range ends before it starts")
    warnings: list[str] = []
    timed = sorted((r for r in readings if r.timestamp is not None), key=newest_order)
    stamps = [newest_order(r)[0] for r in timed]
    capped = capped_end(start, end, step, max_evaluations)
    if capped != end:
        end = capped
        warnings.append(
            f"the range was cut to {max_evaluations:,} evaluations, ending at "
            f"{end:%Y-%m-%d %H:%M:%S} UTC; use a shorter range or a longer step"
        )
    count = int((end - start) / step) + 1
    replay = _Replay()
    window = options.trend.window
    for n in range(count):
        now = start + n * step
        newest = bisect.bisect_right(stamps, now) - 1
        reading = timed[newest] if newest >= 0 else None
        in_window = None
        if alert.trend_enabled:  # (now - window, now]: the readings a worker had then
            in_window = timed[bisect.bisect_right(stamps, now - window) : newest + 1]
        machine = Machine(policy.at(now))
        replay.apply(now, machine.step(replay.state, alert, device, reading, options, in_window))
    warnings.extend(_gaps(stamps, start, end, device, policy))
    warnings.extend(replay.skip_warnings())
    return Timeline(start, end, step, replay.segments(), tuple(replay.events), tuple(warnings))


def capped_end(
    start: datetime, end: datetime, step: timedelta, max_evaluations: int = MAX_EVALUATIONS
) -> datetime:
    """`end`, or the last instant of `max_evaluations` evaluations from `start` if sooner:
    where a backtest stops, and so where reading its history can stop."""
    if int((end - start) / step) + 1 > max_evaluations:
        return start + (max_evaluations - 1) * step
    return end


def newest_order(reading: Reading) -> tuple[datetime, int]:
    """A timestamped reading's place among its device's: by time, then by id."""
    assert reading.timestamp is not None
    return reading.timestamp, reading.id


@attrs.define
class _Replay:
    """The replay's running state: the machine's, and the events as they open and close."""

    state: AlertState = attrs.Factory(AlertState)
    done: list[Segment] = attrs.Factory(list)
    """The segments before the one running."""
    run: tuple[datetime, str, str | None] | None = None
    """The running segment's first instant, outcome and reason."""
    run_key: tuple[str, SkipCode | None] | None = None
    """What the running segment's evaluations share: the outcome, and why they were skipped."""
    run_end: datetime | None = None
    run_count: int = 0
    events: list[BacktestEvent] = attrs.Factory(list)
    open: dict[EventKind, int] = attrs.Factory(dict)
    """The index in `events` of the open event of each kind."""
    skips: Counter[str] = attrs.Factory(Counter)

    def apply(self, now: datetime, transition: Transition) -> None:
        decision = transition.decision
        match decision:
            case Trigger(event=event):
                since = event.metadata.get("condition_since")
                self._open(
                    BacktestEvent(
                        EventKind.THRESHOLD,
                        now,
                        event.current_value,
                        condition_since=None if since is None else datetime.fromisoformat(since),
                    )
                )
                outcome = "trigger"
            case Resolve(value=value):
                self._close(EventKind.THRESHOLD, now, value)
                outcome = "resolve"
            case Pending():
                outcome = "pending"
            case NoChange():
                outcome = "firing" if self.state.firing else "ok"
            case Skip(code=code):
                self.skips[code.value] += 1
                outcome = "skipped"
            case _:
                assert_never(decision)
        match transition.no_data:
            case OpenNoData():
                self._open(BacktestEvent(EventKind.NO_DATA, now, None))
            case ResolveNoData(value=back):
                self._close(EventKind.NO_DATA, now, back)
            case None:
                pass
            case _:
                assert_never(transition.no_data)
        for change in transition.trend:
            match change:
                case OpenTrend(event=event):
                    self._open(BacktestEvent(event.kind, now, event.current_value))
                case ResolveTrend(kind=kind, value=back):
                    self._close(kind, now, back)
                case _:
                    assert_never(change)
        self._record(now, outcome, decision)
        self.state = transition.state

    def _record(self, now: datetime, outcome: str, decision: Decision) -> None:
        key = (outcome, decision.code if isinstance(decision, Skip) else None)
        if key != self.run_key:
            self._finish_run()
            # A reason only where a run begins: a pending one is worked out when asked for.
            reason = None if isinstance(decision, NoChange) else decision.reason
            self.run, self.run_key, self.run_count = (now, outcome, reason), key, 0
        self.run_end = now
        self.run_count += 1

    def _finish_run(self) -> None:
        if self.run is not None and self.run_end is not None:
            first, outcome, reason = self.run
            self.done.append(Segment(first, self.run_end, outcome, self.run_count, reason))

    def segments(self) -> tuple[Segment, ...]:
        """Every segment, the running one finished."""
        self._finish_run()
        self.run = self.run_key = None
        return tuple(self.done)

    def _open(self, event: BacktestEvent) -> None:
        self.open[event.kind] = len(self.events)
        self.events.append(event)

    def _close(self, kind: EventKind, now: datetime, value: float | None) -> None:
        index = self.open.pop(kind)
        self.events[index] = attrs.evolve(
            self.events[index], resolved_at=now, resolution_value=value
        )

    def skip_warnings(self) -> list[str]:
        return [
            f"{count:,} evaluations were skipped: {code}"
            for code, count in self.skips.most_common()
        ]


def _gaps(
    stamps: list[datetime],
    start: datetime,
    end: datetime,
    device: Device | None,
    policy: EvaluationPolicy,
) -> list[str]:
    """The stretches of the range with no fresh reading, longest first (at most three):
    `stamps` are the readings' timestamps, in order."""
    if device is None:
        return ["the device does not exist: every evaluation was skipped"]
    limit = policy.max_age_for(device)
    first = bisect.bisect_right(stamps, start)
    last = bisect.bisect_right(stamps, end)
    points = [stamps[first - 1] if first else start, *stamps[first:last], end]
    gaps = sorted(
        ((after - before, before) for before, after in itertools.pairwise(points)),
        reverse=True,
    )
    return [
        f"no reading for {format_duration(length)} from {since:%Y-%m-%d %H:%M} UTC"
        for length, since in gaps[:3]
        if length > limit
    ]
