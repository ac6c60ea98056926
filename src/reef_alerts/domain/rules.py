"""Alerts with memory: the options a keeper sets per alert, what is remembered between two
evaluations, and the one pure function that takes an alert from one evaluation to the next
(ADR 15). A backtest runs the same function over history, with no database."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, assert_never

import attrs

from reef_alerts.domain.durations import MAX_RULE_DURATION as MAX_RULE_DURATION
from reef_alerts.domain.durations import format_duration
from reef_alerts.domain.evaluation import (
    TICK,
    Decision,
    EvaluationPolicy,
    Evaluator,
    Measurement,
    NoChange,
    Pending,
    Resolve,
    Skip,
    SkipCode,
    Trigger,
    still_pending,
)
from reef_alerts.domain.model import Alert, AlertEvent, Device, EventKind, Reading, quoted
from reef_alerts.domain.trend_rules import (
    NO_MEMORY,
    WARNED_OF,
    ResolveTrend,
    TrendChange,
    TrendMemory,
    TrendOutcome,
    TrendRules,
    judge_trend,
    read_window,
    trend_off,
)
from reef_alerts.domain.trends import NoTrend, TrendOptions, TrendReading


def _duration(*, zero: bool) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and not zero:
            return
        if not isinstance(value, timedelta):
            raise TypeError(f"{attribute.name} must be a duration, got {quoted(value)}")
        least = "0 or more" if zero else "more than 0"
        if value < timedelta(0) or (not zero and value == timedelta(0)):
            raise ValueError(f"{attribute.name} must be {least}, got {format_duration(value)}")
        if value > MAX_RULE_DURATION:
            raise ValueError(f"{attribute.name} must be at most 7d, got {format_duration(value)}")

    return check


def _margin(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number, got {quoted(value)}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number, 0 or more, got {value!r}")


@attrs.frozen
class RuleOptions:
    """How an alert's events open and resolve, beyond the specification's rule; every default
    is the specification's behaviour."""

    pending: timedelta = attrs.field(default=timedelta(0), validator=_duration(zero=True))
    """How long the condition must hold, at every evaluation, before its event opens."""
    recovery_margin: float = attrs.field(default=0.0, validator=_margin)
    """How far back past the threshold the value must come before an open event resolves."""
    no_data_after: timedelta | None = attrs.field(default=None, validator=_duration(zero=False))
    """How old the device's newest reading may get before a no-data event opens; None: never."""
    trend: TrendOptions = attrs.field(
        factory=TrendOptions, validator=attrs.validators.instance_of(TrendOptions)
    )
    """How a `trend_enabled` alert reads its window (issue 13); others ignore it."""

    def describe(self) -> str:
        """The options for a person: `pending 5m, recovery margin 0.3, no data after 10m`."""
        parts = []
        if self.pending:
            parts.append(f"pending {format_duration(self.pending)}")
        if self.recovery_margin:
            parts.append(f"recovery margin {self.recovery_margin:g}")
        if self.no_data_after is not None:
            parts.append(f"no data after {format_duration(self.no_data_after)}")
        parts.extend(self.trend.changes())
        return ", ".join(parts) or "none (the specification's rule)"


DEFAULT_OPTIONS = RuleOptions()
DEFAULT_POLICY = EvaluationPolicy()


@attrs.frozen
class AlertState:
    """What the machine knows of an alert between two evaluations."""

    pending_since: datetime | None = None
    """When the condition began to hold, while it waits out the pending duration."""
    firing: bool = False
    """Its threshold event is open."""
    silent: bool = False
    """Its no-data event is open."""
    trend: TrendMemory = NO_MEMORY
    """Its forecast and rate events, open or pending."""


@attrs.frozen
class OpenNoData:
    """Open a no-data event: the alert's device has not reported for too long."""

    event: AlertEvent
    reason: str


@attrs.frozen
class ResolveNoData:
    """Resolve the open no-data event: the device reports again, or no-data events are off."""

    value: float | None
    """The alert's metric in the fresh reading, where it has one."""
    reason: str


NoDataChange = OpenNoData | ResolveNoData


@attrs.frozen
class Transition:
    """One evaluation's outcome: the state after it, and what it does to the events."""

    state: AlertState
    decision: Decision
    """What happens to the threshold event: Trigger, Resolve, Pending, NoChange or Skip."""
    no_data: NoDataChange | None = None
    """What happens to the no-data event; None: nothing."""
    trend: tuple[TrendChange, ...] = ()
    """What happens to the forecast and rate events."""
    due: datetime | None = None
    """When time alone may next change the alert's state, with no new reading: a pending
    duration ends, or its device has been silent for too long; None when only a new reading or
    an edit can. (How its reading is judged changes at `Evaluator.rejudged_at`.)"""


def step(
    state: AlertState,
    observation: tuple[Alert, Device | None, Reading | None],
    now: datetime,
    options: RuleOptions = DEFAULT_OPTIONS,
    policy: EvaluationPolicy = DEFAULT_POLICY,
    window: Sequence[Reading] | None = None,
) -> Transition:
    """Take an alert from `state` through one evaluation at `now` of `observation`: the alert,
    its device (None when missing) and the device's newest reading (None when it has none);
    for a trend alert, `window`: the device's readings of its trend window. Pure: no I/O, no
    clock."""
    alert, device, reading = observation
    return Machine(policy.at(now)).step(state, alert, device, reading, options, window)


@attrs.frozen
class Machine:
    """The state machine, with an evaluator fixed at one instant: what a cycle steps its
    alerts with."""

    evaluator: Evaluator

    def step(
        self,
        state: AlertState,
        alert: Alert,
        device: Device | None,
        reading: Reading | None,
        options: RuleOptions = DEFAULT_OPTIONS,
        window: Sequence[Reading] | None = None,
    ) -> Transition:
        """`step`, at the evaluator's instant."""
        measured = self.evaluator.observe(alert, device, reading)
        trend = None
        if alert.trend_enabled and window is not None and not isinstance(measured, Skip):
            trend = self._read(alert, window, measured.timestamp, options.trend)
            if options.trend.smoothing:
                measured = _smoothed(measured, trend)
        decision = self._threshold(state, alert, measured, options)
        no_data = None
        if options.no_data_after is not None or state.silent:
            no_data = self._no_data(state, alert, device, reading, measured, options)
        pending_since, firing = None, state.firing
        match decision:
            case Pending(since=since):
                pending_since = since
            case Trigger():
                firing = True
            case Resolve():
                firing = False
            case Skip() | NoChange():
                pass
            case _:
                assert_never(decision)
        silent = state.silent
        if isinstance(no_data, OpenNoData):
            silent = True
        elif isinstance(no_data, ResolveNoData):
            silent = False
        smoothed = trend if options.trend.smoothing else None
        if isinstance(decision, Trigger) and isinstance(smoothed, TrendReading):
            decision.event.metadata["median_of"] = smoothed.line.samples
        outcome = self._trend(state.trend, alert, measured, trend, firing, options)
        after = (pending_since, firing, silent, outcome.memory)
        if after != (state.pending_since, state.firing, state.silent, state.trend):
            state = AlertState(*after)
        due = _due(state, options, device, reading, self.evaluator.now)
        return Transition(state, decision, no_data, outcome.changes, due)

    def _read(
        self, alert: Alert, window: Sequence[Reading], newest: datetime, options: TrendOptions
    ) -> TrendReading | NoTrend:
        """What `window` says of `alert`, up to the `newest` reading, the one judged: a reading
        committed after it, which the cycle's read did not see, cannot join its window."""
        evaluator = self.evaluator
        return read_window(
            alert, window, evaluator.now, newest, options, evaluator.policy.tolerance
        )

    def _trend(
        self,
        memory: TrendMemory,
        alert: Alert,
        measured: Skip | Measurement,
        trend: TrendReading | NoTrend | None,
        firing: bool,
        options: RuleOptions,
    ) -> TrendOutcome:
        """The forecast and rate events' part. An alert that cannot be judged keeps its trend
        events, as it keeps its threshold event; so does a trend alert whose window was not
        read (a backtest's). One whose trend rules are off has its trend events resolved."""
        if memory == NO_MEMORY and trend is None:
            return _NOTHING_TO_DO
        if isinstance(measured, Skip):
            return TrendOutcome(attrs.evolve(memory, forecast_since=None, rate_since=None))
        if not alert.trend_enabled:
            return trend_off(memory, measured.value, "trend rules are off for this alert")
        if trend is None:  # not read: only the threshold event can tell a forecast's end
            if memory.forecast_open and firing:
                memory = attrs.evolve(memory, forecast_open=False, forecast_since=None)
                resolved = ResolveTrend(EventKind.FORECAST, measured.value, WARNED_OF)
                return TrendOutcome(memory, (resolved,))
            return TrendOutcome(memory)
        rules = TrendRules(
            self.evaluator.now,
            options.trend.horizon,
            options.trend.max_rate_per_hour,
            options.pending,
            options.recovery_margin,
            self.evaluator.policy.tolerance,
        )
        return judge_trend(memory, alert, measured, trend, firing, rules)

    def _threshold(
        self,
        state: AlertState,
        alert: Alert,
        measured: Skip | Measurement,
        options: RuleOptions,
    ) -> Decision:
        """The threshold event's part: a pending condition starts over whenever the alert
        cannot be judged or its condition does not hold, and when nobody saw it hold for a
        while (see still_pending)."""
        if isinstance(measured, Skip):
            return measured
        evaluator, value = self.evaluator, measured.value
        tolerance = evaluator.policy.tolerance
        if state.firing:
            margin = options.recovery_margin
            if alert.operator.recovered(value, alert.threshold, margin, tolerance):
                return evaluator.resolve(alert, value, margin)
            return NoChange(value)
        if not alert.operator.holds(value, alert.threshold, tolerance):
            return NoChange(value)
        if not options.pending:
            return evaluator.trigger(alert, measured)
        since = still_pending(state.pending_since, evaluator.now, options.pending)
        if evaluator.now - since >= options.pending:
            return evaluator.trigger(alert, measured, since)
        return Pending(value, since, alert, options.pending)

    def _no_data(
        self,
        state: AlertState,
        alert: Alert,
        device: Device | None,
        reading: Reading | None,
        measured: Skip | Measurement,
        options: RuleOptions,
    ) -> NoDataChange | None:
        """The no-data event's part. Only an active, polled device can fall silent; a reading
        without a timestamp, or from the future, tells nothing either way."""
        limit = options.no_data_after
        value = None if isinstance(measured, Skip) else measured.value
        if limit is None:
            if state.silent:
                return ResolveNoData(value, "no-data events are off for this alert")
            return None
        if device is None or not device.active or not device.polled:
            return None
        limit = silence_limit(limit, device)
        now = self.evaluator.now
        if reading is None:
            last, silent = None, True
        elif reading.timestamp is None or (isinstance(measured, Skip) and _from_future(measured)):
            return None
        else:
            last = reading.timestamp
            silent = now - last > limit
        if silent == state.silent:
            return None
        if not silent:
            return ResolveNoData(
                value, f"device {quoted(device.name)} reports again (reading {_id(reading)})"
            )
        silence = (
            "has never sent a reading"
            if last is None
            else f"has sent no reading for {format_duration(now - last)}"
        )
        return OpenNoData(
            _no_data_event(alert, device, reading, limit, now),
            f"device {quoted(device.name)} {silence} (limit {format_duration(limit)})",
        )


_NOTHING_TO_DO = TrendOutcome(NO_MEMORY)


def silence_limit(no_data_after: timedelta, device: Device) -> timedelta:
    """How long `device` may send nothing before its alerts' no-data events open: a device
    polled less often than the limit would fall silent between every two polls."""
    return max(no_data_after, 2 * device.poll_interval)


def _due(
    state: AlertState,
    options: RuleOptions,
    device: Device | None,
    reading: Reading | None,
    now: datetime,
) -> datetime | None:
    """Transition.due: the earliest end of a pending duration (the threshold's, a forecast's, a
    rate's), and when a device that reports falls silent."""
    pending, memory = options.pending, state.trend
    instants = [
        since + pending
        for since in (state.pending_since, memory.forecast_since, memory.rate_since)
        if since is not None
    ]
    limit = options.no_data_after
    if (
        limit is not None
        and not state.silent
        and device is not None
        and device.active
        and device.polled
        and reading is not None
        and reading.timestamp is not None
    ):
        silent_at = reading.timestamp + silence_limit(limit, device) + TICK
        if silent_at > now:
            instants.append(silent_at)
    return min(instants, default=None)


def _smoothed(measured: Skip | Measurement, trend: TrendReading | NoTrend) -> Skip | Measurement:
    """What a smoothing alert's threshold judges: its window's median, or why there is none."""
    if isinstance(measured, Skip):
        return measured
    if isinstance(trend, NoTrend):
        return Skip(SkipCode.SHORT_WINDOW, f"smoothing has no median: {trend.reason}")
    return measured._replace(value=trend.value)


def _from_future(skip: Skip) -> bool:
    return skip.code is SkipCode.FUTURE_READING


def _id(reading: Reading | None) -> str:
    return "none" if reading is None else str(reading.id)


def _no_data_event(
    alert: Alert, device: Device, reading: Reading | None, limit: timedelta, now: datetime
) -> AlertEvent:
    last = None if reading is None else reading.timestamp
    return AlertEvent(
        alert_id=alert.id,
        device_id=device.id,
        triggered_at=now,
        current_value=None,
        threshold_value=alert.threshold,
        operator=alert.operator,
        metric=alert.metric,
        metadata={
            "kind": EventKind.NO_DATA.value,
            "last_reading_id": None if reading is None else reading.id,
            "last_reading_at": None if last is None else last.isoformat(),
            "silent_seconds": None if last is None else (now - last).total_seconds(),
            "no_data_after_seconds": limit.total_seconds(),
            "device_name": device.name,
            "device_type": device.type,
            "unit": device.unit,
        },
    )
