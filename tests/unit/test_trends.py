"""The arithmetic of trend rules: exact on perfect lines whatever their offset and scale,
blind to where time starts, flat on constants, unbroken by NaN and infinity, and as numpy's
polyfit on any series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from reef_alerts.domain import Operator
from reef_alerts.domain.trends import fit, window_mean

EPOCH = datetime(2026, 7, 14, 12, 0, tzinfo=UTC)

offsets = st.floats(min_value=-1e6, max_value=1e6)
rates = st.floats(min_value=-100.0, max_value=100.0)  # per hour
starts = st.integers(min_value=-(10**9), max_value=10**9).map(
    lambda s: EPOCH + timedelta(seconds=s)
)
gaps = st.lists(st.integers(min_value=1, max_value=3_600), min_size=1, max_size=60)
finite = st.floats(min_value=-1e6, max_value=1e6)


def instants(start: datetime, seconds_between: list[int]) -> list[datetime]:
    found, at = [start], start
    for gap in seconds_between:
        at += timedelta(seconds=gap)
        found.append(at)
    return found


def on_a_line(start: datetime, between: list[int], level: float, per_hour: float):
    return [
        (at, level + per_hour / 3600 * (at - start).total_seconds())
        for at in instants(start, between)
    ]


@given(starts, gaps, offsets, rates)
def test_a_perfect_line_is_found_exactly_for_any_offset_and_scale(start, between, level, rate):
    line = fit(on_a_line(start, between, level, rate))

    assert line is not None
    # Within a billionth of the values' size, which over the span bounds the slope's error.
    scale = abs(level) + abs(rate) * line.span.total_seconds() / 3600 + 1
    assert line.rate_per_hour == pytest.approx(
        rate, abs=1e-9 * scale * 3600 / max(line.span.total_seconds(), 1) + 1e-9
    )
    assert line.at(start) == pytest.approx(level, abs=1e-9 * scale)
    assert line.samples == len(between) + 1


@given(gaps, offsets, rates, st.integers(min_value=-(10**9), max_value=10**9))
def test_shifting_time_moves_the_line_and_nothing_else(between, level, rate, shift):
    here = fit(on_a_line(EPOCH, between, level, rate))
    there = fit(on_a_line(EPOCH + timedelta(seconds=shift), between, level, rate))

    assert here is not None
    assert there is not None
    assert there.slope == here.slope
    assert there.level == here.level
    assert there.origin - here.origin == timedelta(seconds=shift)


@given(starts, gaps, finite)
def test_a_constant_series_has_no_slope_and_never_crosses(start, between, value):
    line = fit([(at, value) for at in instants(start, between)])

    assert line is not None
    assert line.slope == 0
    assert line.crossing(value + 1, Operator.GT) is None
    assert line.crossing(value - 1, Operator.LT) is None


@given(
    starts,
    st.lists(st.floats(allow_nan=True, allow_infinity=True) | finite, min_size=1, max_size=40),
)
def test_nan_and_infinity_are_left_out_and_never_reach_a_result(start, values):
    samples = [(start + timedelta(minutes=n), value) for n, value in enumerate(values)]
    kept = [(at, value) for at, value in samples if math.isfinite(value)]

    line, mean = fit(samples), window_mean(values)

    assert line == fit(kept)
    if line is not None:
        assert math.isfinite(line.slope)
        assert math.isfinite(line.level)
        assert line.samples == len(kept)
    if mean is not None:
        assert math.isfinite(mean)
    if not kept:
        assert mean is None


@given(starts, gaps, st.lists(finite, min_size=61, max_size=61))
def test_the_line_is_numpys_least_squares_line(start, between, values):
    samples = list(zip(instants(start, between), values, strict=False))
    assume(len(samples) >= 2)
    xs = [(at - start).total_seconds() for at, _ in samples]
    ys = [value for _, value in samples]

    line = fit(samples)
    slope, level = numpy.polyfit(xs, ys, 1)

    assert line is not None
    spread = max(ys) - min(ys) + 1
    assert line.slope == pytest.approx(slope, abs=1e-9 * spread)
    assert line.level == pytest.approx(level, abs=1e-7 * spread)


def test_the_ph_sliding_after_the_scrubber_is_spent_crosses_in_five_hours():
    # 0.04 pH an hour down from 8.2, read every 5 minutes for an hour; the alert says < 8.0.
    samples = [(EPOCH + timedelta(minutes=5 * n), 8.2 - 0.04 * n / 12) for n in range(13)]

    line = fit(samples)

    assert line is not None
    assert line.rate_per_hour == pytest.approx(-0.04)
    crossing = line.crossing(8.0, Operator.LT)
    assert crossing is not None
    assert abs(crossing - (EPOCH + timedelta(hours=5))) < timedelta(seconds=1)
    assert line.crossing(8.0, Operator.GT) is None  # moving away from a > condition
    assert line.crossing(8.0, Operator.EQ) is None  # == has no direction


def test_a_window_that_tells_no_trend_says_so():
    assert fit([]) is None
    assert fit([(EPOCH, 8.1)]) is None
    assert fit([(EPOCH, 8.1), (EPOCH, 8.2)]) is None  # one instant
    assert fit([(EPOCH, 1e308), (EPOCH + timedelta(seconds=1), -1e308)]) is None
    huge = [(EPOCH + timedelta(seconds=n), value) for n, value in enumerate([0, 1.7e308, 1.7e308])]
    assert fit(huge) is None  # the sums overflow
    assert window_mean([]) is None
    assert window_mean([1e308, 1e308]) is None
    assert window_mean([8.0, 8.2, math.nan]) == pytest.approx(8.1)


def test_a_crossing_beyond_the_last_datetime_is_none():
    creeping = fit([(EPOCH, 0.0), (EPOCH + timedelta(hours=1), 1e-12)])

    assert creeping is not None
    assert creeping.crossing(1e9, Operator.GT) is None
    assert creeping.crossing(1e-12, Operator.GE) is not None
