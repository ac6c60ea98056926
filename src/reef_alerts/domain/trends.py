"""The arithmetic of trend rules (issue 13): a least-squares line through a window of samples,
where it will be at an instant, when it crosses a threshold, and the window's mean. Pure and
total: samples that are not finite numbers are left out, and a window that cannot tell a
trend says so with None rather than a number.

The line is fitted as Prometheus's `deriv()` and `predict_linear()` fit it: time in seconds from
the first sample, so that epoch-sized instants cost no precision; values from the first value;
both centred on their means before the sums, so that a large offset costs none either.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from reef_alerts.domain.durations import MAX_RULE_DURATION, format_duration
from reef_alerts.domain.extraction import NoMetric, locate_metric
from reef_alerts.domain.model import Alert, Reading, quoted
from reef_alerts.domain.operators import DEFAULT_TOLERANCE, Operator

Sample = tuple[datetime, float]
"""A reading's instant and the value of the metric in it."""

_RISING = frozenset({Operator.GT, Operator.GE})
_FALLING = frozenset({Operator.LT, Operator.LE})


@attrs.frozen
class Line:
    """The least-squares line through a window's samples."""

    origin: datetime
    """The first sample's instant: x = 0."""
    level: float
    """The line's value at `origin`."""
    slope: float
    """Change per second."""
    samples: int
    span: timedelta
    """From the first sample to the last."""

    @property
    def rate_per_hour(self) -> float:
        return self.slope * 3600.0

    def at(self, instant: datetime) -> float:
        """The line's value at `instant` (predict_linear)."""
        return self.level + self.slope * (instant - self.origin).total_seconds()

    def crossing(
        self, threshold: float, operator: Operator, tolerance: float = 0.0
    ) -> datetime | None:
        """When the line comes to meet `operator threshold`, moving in the operator's direction
        (up for > and >=, down for < and <=), at the edge where the condition begins to hold
        with the evaluator's `tolerance` (> holds past threshold + tolerance, >= from
        threshold - tolerance); None when it moves the other way, is flat, the operator has no
        direction (== and !=), or the instant is beyond what a datetime holds."""
        rising = operator in _RISING
        if not (rising or operator in _FALLING) or self.slope == 0 or (self.slope > 0) != rising:
            return None
        strict = operator in (Operator.GT, Operator.LT)
        edge = threshold + (tolerance if strict == rising else -tolerance)
        seconds = (edge - self.level) / self.slope
        try:
            return self.origin + timedelta(seconds=seconds)
        except OverflowError:
            return None


def fit(samples: Iterable[Sample]) -> Line | None:
    """The least-squares line through `samples` in any order; None when fewer than two finite
    samples at two different instants remain."""
    found = sorted((at, value) for at, value in samples if math.isfinite(value))
    if len(found) < 2 or found[0][0] == found[-1][0]:
        return None
    origin = found[0][0]
    xs = [(at - origin).total_seconds() for at, _ in found]
    first = found[0][1]
    ys = [value - first for _, value in found]  # a constant series is exactly 0, and flat
    try:  # values so large that their sums overflow tell no trend either
        x_mean, y_mean = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
        spread = math.fsum((x - x_mean) ** 2 for x in xs)
        together = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    except (OverflowError, ValueError):
        return None
    slope = together / spread
    level = first + (y_mean - slope * x_mean)
    if not (math.isfinite(slope) and math.isfinite(level)):
        return None
    return Line(origin, level, slope, len(found), found[-1][0] - origin)


def window_median(values: Sequence[float]) -> float | None:
    """The median of the finite `values`; None when there is none. What smoothing judges
    (ADR 21): one wild reading cannot move it past the others."""
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return None
    middle = statistics.median(finite)
    return middle if math.isfinite(middle) else None


def window_mean(values: Sequence[float]) -> float | None:
    """The mean of the finite `values`; None when there is none."""
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return None
    try:
        mean = math.fsum(finite) / len(finite)
    except OverflowError:
        return None
    return mean if math.isfinite(mean) else None


def _positive_duration(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, timedelta):
        raise TypeError(f"{attribute.name} must be a duration, got {quoted(value)}")
    if not timedelta(0) < value <= MAX_RULE_DURATION:
        raise ValueError(
            f"{attribute.name} must be more than 0 and at most 7d, got {format_duration(value)}"
        )


def _min_samples(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be a whole number, got {quoted(value)}")
    if not 2 <= value <= 10_000:
        raise ValueError(f"{attribute.name} must be a whole number from 2 to 10,000, got {value!r}")


def _rate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number, got {quoted(value)}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number above 0, got {value!r}")


@attrs.frozen
class TrendOptions:
    """How a `trend_enabled` alert reads its window (issue 13); the defaults are the issue's."""

    window: timedelta = attrs.field(default=timedelta(hours=1), validator=_positive_duration)
    """How far back the readings a trend is fitted to go."""
    min_samples: int = attrs.field(default=5, validator=_min_samples)
    horizon: timedelta = attrs.field(default=timedelta(hours=2), validator=_positive_duration)
    """How far ahead a forecast looks."""
    max_rate_per_hour: float | None = attrs.field(default=None, validator=_rate)
    """A rate of change beyond this, in the alert's direction, opens a rate event; None: off."""
    smoothing: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Judge the threshold on the window's median instead of the newest reading: with
    `min_samples` 3 at least, so that one reading can never be half the window."""

    def describe(self) -> str:
        """All of them, for a person: `trend window 1h, min samples 5, ...`."""
        rate = self.max_rate_per_hour
        return (
            f"trend window {format_duration(self.window)}, min samples {self.min_samples}, "
            f"forecast horizon {format_duration(self.horizon)}, "
            f"{'no rate limit' if rate is None else f'max rate {rate:g}/h'}, "
            f"{'smoothing' if self.smoothing else 'no smoothing'}"
        )

    def changes(self) -> list[str]:
        """What differs from the defaults, for a person: `trend window 2h`, `smoothing`."""
        default = _DEFAULT_TREND
        parts = []
        if self.window != default.window:
            parts.append(f"trend window {format_duration(self.window)}")
        if self.min_samples != default.min_samples:
            parts.append(f"min samples {self.min_samples}")
        if self.horizon != default.horizon:
            parts.append(f"forecast horizon {format_duration(self.horizon)}")
        if self.max_rate_per_hour is not None:
            parts.append(f"max rate {self.max_rate_per_hour:g}/h")
        if self.smoothing:
            parts.append("smoothing")
        return parts

    def __attrs_post_init__(self) -> None:
        if self.smoothing and self.min_samples < 3:
            raise ValueError(
                "smoothing needs min_samples of 3 or more: of two readings, one moves the median"
            )


_DEFAULT_TREND = TrendOptions()


@attrs.frozen
class NoTrend:
    """Why the window tells no trend now: too few readings, or too short a stretch of time."""

    reason: str


@attrs.frozen
class Forecast:
    """The line will meet the alert's condition within the horizon, where the value now does
    not."""

    crossing_at: datetime
    rate_per_hour: float
    samples: int
    predicted: float
    """The line's value at the horizon."""


@attrs.frozen
class TooFast:
    """The value moves towards the alert's condition faster than the keeper allows."""

    rate_per_hour: float
    limit: float
    samples: int


@attrs.frozen
class TrendReading:
    """What a window says at one instant: the line, the value the threshold condition judges
    (the newest reading's, or the window's median when smoothing), and what it warns of."""

    line: Line
    value: float
    forecast: Forecast | None
    too_fast: TooFast | None


def window_starts(windows: Iterable[tuple[int, timedelta]], now: datetime) -> dict[int, datetime]:
    """For each device of `windows` (pairs of a device id and a window asked of it), the
    instant its readings must be newer than at `now`: the longest window's start."""
    starts: dict[int, datetime] = {}
    for device_id, window in windows:
        start = now - window
        if device_id not in starts or start < starts[device_id]:
            starts[device_id] = start
    return starts


def window_samples(readings: Iterable[Reading], metric: str) -> list[Sample]:
    """The samples of `metric` in `readings`: each timestamped reading where it is a finite
    number. A reading without it, or with a value that is not a number, is left out."""
    samples = []
    for reading in readings:
        at = reading.timestamp
        if at is None:
            continue
        found = locate_metric(reading, metric)
        if not isinstance(found, NoMetric) and math.isfinite(found[0]):
            samples.append((at, found[0]))
    return samples


def read_trend(
    alert: Alert,
    samples: Iterable[Sample],
    now: datetime,
    options: TrendOptions,
    tolerance: float = DEFAULT_TOLERANCE,
    until: datetime | None = None,
) -> TrendReading | NoTrend:
    """What `alert`'s window of `samples` (the metric's finite values, any order) says at `now`.
    The window is the samples in (now - window, until], `until` being `now` or, for a caller
    that trusts readings a little ahead of its clock, the newest instant it trusts; it tells a
    trend with `min_samples` of them at least, spread over half the window at least."""
    since, until = now - options.window, now if until is None else until
    window = sorted(
        (at, value) for at, value in samples if since < at <= until and math.isfinite(value)
    )
    described = format_duration(options.window)
    if len(window) < options.min_samples:
        return NoTrend(
            f"{len(window)} readings in the last {described}, fewer than the "
            f"{options.min_samples} a trend needs"
        )
    span = window[-1][0] - window[0][0]
    if span * 2 < options.window:
        return NoTrend(
            f"the readings span {format_duration(span)}, less than half the {described} window"
        )
    line = fit(window)
    newest = window[-1][1]
    value = window_median([v for _, v in window]) if options.smoothing else newest
    if line is None or value is None or not math.isfinite(line.rate_per_hour):
        return NoTrend("the readings are too large to fit a trend to")
    operator, threshold = alert.operator, alert.threshold
    forecast = None
    predicted = line.at(now + options.horizon)
    if not operator.holds(value, threshold, tolerance) and operator.holds(
        predicted, threshold, tolerance
    ):
        crossing = line.crossing(threshold, operator, tolerance)
        if crossing is not None:
            forecast = Forecast(max(crossing, now), line.rate_per_hour, line.samples, predicted)
    too_fast = None
    limit = options.max_rate_per_hour
    rate = line.rate_per_hour
    towards = (operator in _RISING and rate > 0) or (operator in _FALLING and rate < 0)
    if limit is not None and towards and abs(rate) > limit:
        too_fast = TooFast(rate, limit, line.samples)
    return TrendReading(line, value, forecast, too_fast)
