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
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from reef_alerts.domain.operators import Operator

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

    def crossing(self, threshold: float, operator: Operator) -> datetime | None:
        """When the line reaches `threshold` moving in `operator`'s direction (up for > and >=,
        down for < and <=); None when it moves the other way, is flat, the operator has no
        direction (== and !=), or the instant is beyond what a datetime holds."""
        rising = operator in _RISING
        if not (rising or operator in _FALLING) or self.slope == 0 or (self.slope > 0) != rising:
            return None
        seconds = (threshold - self.level) / self.slope
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
