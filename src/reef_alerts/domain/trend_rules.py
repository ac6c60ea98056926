"""Trend events (issue 13): what a `trend_enabled` alert's window says it should do to its
forecast and rate events at one evaluation. The state machine (rules.py) calls it once it has
a fresh reading to judge; pure, like the machine.

A trend event follows the threshold event's rules: it opens once its condition has held for the
alert's pending duration, a forecast resolves only when its predicted value is back past the
threshold by the recovery margin, and at most one of each kind is open. A window that tells no
trend changes neither: like a skipped alert, its events stay as they are and a pending
condition starts over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from reef_alerts.domain.durations import format_duration
from reef_alerts.domain.evaluation import Measurement, event_on, still_pending
from reef_alerts.domain.model import Alert, AlertEvent, EventKind, Reading
from reef_alerts.domain.trends import (
    NoTrend,
    TrendOptions,
    TrendReading,
    read_trend,
    window_samples,
)

WARNED_OF = "the threshold event it warned of is open"
"""Why a forecast event resolves when its threshold event opens."""


@attrs.frozen
class OpenTrend:
    """Open a forecast or rate event."""

    event: AlertEvent
    reason: str


@attrs.frozen
class ResolveTrend:
    """Resolve the alert's open forecast or rate event."""

    kind: EventKind
    value: float | None
    """The value the alert's condition judges now, where it has one."""
    reason: str


TrendChange = OpenTrend | ResolveTrend


@attrs.frozen
class TrendMemory:
    """What the machine remembers of an alert's trend events between evaluations."""

    forecast_since: datetime | None = None
    """When the forecast began to say the condition will hold, while it waits out the pending
    duration."""
    forecast_open: bool = False
    rate_since: datetime | None = None
    rate_open: bool = False


NO_MEMORY = TrendMemory()


@attrs.frozen
class TrendOutcome:
    """One evaluation's trend part: the memory after it and the changes it makes."""

    memory: TrendMemory
    changes: tuple[TrendChange, ...] = ()


def read_window(
    alert: Alert,
    window: Sequence[Reading],
    now: datetime,
    until: datetime,
    options: TrendOptions,
    tolerance: float,
) -> TrendReading | NoTrend:
    """What `window` (the device's readings, any order) says of `alert`'s metric at `now`,
    trusting readings up to `until`."""
    return read_trend(alert, window_samples(window, alert.metric), now, options, tolerance, until)


def judge_trend(
    memory: TrendMemory,
    alert: Alert,
    measured: Measurement,
    trend: TrendReading | NoTrend,
    firing: bool,
    rules: TrendRules,
) -> TrendOutcome:
    """The forecast and rate events' part of one evaluation of `alert`, given what its window
    says; `firing`: its threshold event is open after this evaluation."""
    changes: list[TrendChange] = []
    forecast_since, forecast_open = _forecast(
        memory, alert, measured, trend, firing, rules, changes
    )
    rate_since, rate_open = _rate(memory, alert, measured, trend, rules, changes)
    after = TrendMemory(forecast_since, forecast_open, rate_since, rate_open)
    return TrendOutcome(after, tuple(changes))


def trend_off(memory: TrendMemory, value: float | None, why: str) -> TrendOutcome:
    """Resolve whatever trend event is open: the alert's trend rules are off (`why`)."""
    changes: list[TrendChange] = []
    if memory.forecast_open:
        changes.append(ResolveTrend(EventKind.FORECAST, value, why))
    if memory.rate_open:
        changes.append(ResolveTrend(EventKind.RATE, value, why))
    return TrendOutcome(NO_MEMORY, tuple(changes))


@attrs.frozen
class TrendRules:
    """What judging an alert's trend events needs beyond its window: the instant, and the
    alert's options."""

    now: datetime
    horizon: timedelta
    max_rate_per_hour: float | None
    pending: timedelta
    margin: float
    tolerance: float


def _forecast(
    memory: TrendMemory,
    alert: Alert,
    measured: Measurement,
    trend: TrendReading | NoTrend,
    firing: bool,
    rules: TrendRules,
    changes: list[TrendChange],
) -> tuple[datetime | None, bool]:
    value = measured.value
    if memory.forecast_open:
        if firing:
            changes.append(ResolveTrend(EventKind.FORECAST, value, WARNED_OF))
            return None, False
        if isinstance(trend, NoTrend):
            return None, True
        predicted = trend.line.at(rules.now + rules.horizon)
        if alert.operator.recovered(predicted, alert.threshold, rules.margin, rules.tolerance):
            changes.append(
                ResolveTrend(
                    EventKind.FORECAST,
                    value,
                    f"the forecast no longer crosses {alert.threshold:g} within "
                    f"{format_duration(rules.horizon)} (predicted {predicted:.4g}, rate "
                    f"{trend.line.rate_per_hour:+.4g}/h)",
                )
            )
            return None, False
        return None, True
    if firing or isinstance(trend, NoTrend) or trend.forecast is None:
        return None, False
    since = still_pending(memory.forecast_since, rules.now, rules.pending)
    if rules.now - since < rules.pending:
        return since, False
    forecast = trend.forecast
    crossing = f"{forecast.crossing_at:%Y-%m-%d %H:%M:%S} UTC"
    changes.append(
        OpenTrend(
            event_on(
                alert,
                measured,
                rules.now,
                EventKind.FORECAST,
                {
                    "predicted_crossing_at": forecast.crossing_at.isoformat(),
                    "predicted_value": forecast.predicted,
                    "rate_per_hour": forecast.rate_per_hour,
                    "samples": forecast.samples,
                },
            ),
            f"Forecast: {alert.metric} {alert.operator.value} {alert.threshold:g} by {crossing} "
            f"(now {value:g}, {forecast.rate_per_hour:+.4g}/h over {forecast.samples} readings)",
        )
    )
    return None, True


def _rate(
    memory: TrendMemory,
    alert: Alert,
    measured: Measurement,
    trend: TrendReading | NoTrend,
    rules: TrendRules,
    changes: list[TrendChange],
) -> tuple[datetime | None, bool]:
    value = measured.value
    if memory.rate_open:
        if isinstance(trend, NoTrend):
            return None, True
        if trend.too_fast is None:
            rate = trend.line.rate_per_hour
            why = (
                "rate events are off for this alert"
                if rules.max_rate_per_hour is None
                else f"the rate of change, {rate:+.4g}/h, is within its limit"
            )
            changes.append(ResolveTrend(EventKind.RATE, value, why))
            return None, False
        return None, True
    if isinstance(trend, NoTrend) or trend.too_fast is None:
        return None, False
    since = still_pending(memory.rate_since, rules.now, rules.pending)
    if rules.now - since < rules.pending:
        return since, False
    fast = trend.too_fast
    changes.append(
        OpenTrend(
            event_on(
                alert,
                measured,
                rules.now,
                EventKind.RATE,
                {
                    "rate_per_hour": fast.rate_per_hour,
                    "max_rate_per_hour": fast.limit,
                    "samples": fast.samples,
                },
            ),
            f"Rate of change: {alert.metric} moves {fast.rate_per_hour:+.4g}/h towards "
            f"{alert.operator.value} {alert.threshold:g}, beyond the limit of {fast.limit:g}/h "
            f"(over {fast.samples} readings)",
        )
    )
    return None, True
