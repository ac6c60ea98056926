"""The arithmetic of trend rules: exact on perfect lines whatever their offset and scale,
blind to where time starts, flat on constants, unbroken by NaN and infinity, and as numpy's
polyfit on any series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.domain import DEFAULT_TOLERANCE, Alert, Operator, RuleOptions
from reef_alerts.domain.trends import (
    NoTrend,
    Sample,
    TooFast,
    TrendOptions,
    TrendReading,
    fit,
    read_trend,
    window_mean,
    window_median,
)

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
    samples = list(zip(instants(start, between), values, strict=False))  # two at least
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
    assert window_median([]) is None
    assert window_median([8.0, 8.1, 12.0, math.inf]) == 8.1


def test_a_crossing_beyond_the_last_datetime_is_none():
    creeping = fit([(EPOCH, 0.0), (EPOCH + timedelta(hours=1), 1e-12)])

    assert creeping is not None
    assert creeping.crossing(1e9, Operator.GT) is None
    assert creeping.crossing(1e-12, Operator.GE) is not None


# What a window says: forecasts, rates, smoothing (issue 13's semantics, pure)

PH_LOW = Alert(3, 1, "ph", "<", 8.0)
TOO_HOT = Alert(1, 1, "temperature", ">", 82.0)


def every_five_minutes(first: float, per_hour: float, count: int = 13) -> list[Sample]:
    """`count` readings five minutes apart, ending at EPOCH: 13 span an hour, of which the
    window (now - 1h, now] holds the newest 12."""
    start = EPOCH - timedelta(minutes=5 * (count - 1))
    return [(start + timedelta(minutes=5 * n), first + per_hour * n / 12) for n in range(count)]


def test_a_ph_sliding_four_hundredths_an_hour_is_forecast_when_the_horizon_reaches_it():
    sliding = every_five_minutes(8.2, -0.04)  # 8.16 now: 8.0 in four hours

    within_two_hours = read_trend(PH_LOW, sliding, EPOCH, TrendOptions())
    within_six = read_trend(PH_LOW, sliding, EPOCH, TrendOptions(horizon=timedelta(hours=6)))

    assert isinstance(within_two_hours, TrendReading)
    assert within_two_hours.forecast is None
    assert isinstance(within_six, TrendReading)
    forecast = within_six.forecast
    assert forecast is not None
    # Where < starts to hold: 7.999, with the evaluator's tolerance of 0.001, 90 s after 8.0.
    at = EPOCH + timedelta(hours=4, seconds=90)
    assert abs(forecast.crossing_at - at) < timedelta(seconds=1)
    assert forecast.rate_per_hour == pytest.approx(-0.04)
    assert forecast.samples == 12
    assert forecast.predicted == pytest.approx(7.92)


def test_a_heater_stuck_on_is_forecast_and_too_fast():
    climbing = every_five_minutes(78.0, 2.0)  # 80 °F now, 2 °F an hour

    found = read_trend(TOO_HOT, climbing, EPOCH, TrendOptions(max_rate_per_hour=1.5))

    assert isinstance(found, TrendReading)
    assert found.value == pytest.approx(80.0)
    assert found.forecast is not None
    at = EPOCH + timedelta(hours=1, seconds=1.8)  # 82.001, where > starts to hold
    assert abs(found.forecast.crossing_at - at) < timedelta(seconds=0.1)
    assert found.too_fast == TooFast(pytest.approx(2.0), 1.5, 12)


def test_a_value_moving_away_from_the_condition_warns_of_nothing():
    cooling = every_five_minutes(80.0, -3.0)

    found = read_trend(TOO_HOT, cooling, EPOCH, TrendOptions(max_rate_per_hour=1.0))

    assert isinstance(found, TrendReading)
    assert (found.forecast, found.too_fast) == (None, None)


def test_a_condition_that_already_holds_is_no_forecast():
    hot = every_five_minutes(83.0, 1.0)

    found = read_trend(TOO_HOT, hot, EPOCH, TrendOptions())

    assert isinstance(found, TrendReading)
    assert found.forecast is None  # the threshold event is the keeper's news now


def test_smoothing_judges_the_windows_median_so_one_wild_reading_opens_nothing():
    steady = [*every_five_minutes(80.0, 0.0)[:-1], (EPOCH, 95.0)]  # one spike, newest

    plain = read_trend(TOO_HOT, steady, EPOCH, TrendOptions())
    smoothed = read_trend(TOO_HOT, steady, EPOCH, TrendOptions(smoothing=True))

    assert isinstance(plain, TrendReading)
    assert isinstance(smoothed, TrendReading)
    assert plain.value == 95.0
    assert smoothed.value == 80.0


def test_a_window_with_too_few_readings_or_too_short_a_stretch_tells_no_trend():
    sparse = every_five_minutes(8.2, -0.04, count=4)
    bunched = [(EPOCH - timedelta(minutes=n), 8.1) for n in range(10)]  # ten minutes of an hour

    assert read_trend(PH_LOW, sparse, EPOCH, TrendOptions()) == NoTrend(
        "4 readings in the last 1h, fewer than the 5 a trend needs"
    )
    assert read_trend(PH_LOW, bunched, EPOCH, TrendOptions()) == NoTrend(
        "the readings span 9m, less than half the 1h window"
    )


def test_readings_outside_the_window_or_not_finite_are_not_in_it():
    old = [(EPOCH - timedelta(hours=3), 0.0), (EPOCH + timedelta(minutes=1), 100.0)]
    noisy = [(at, math.nan) for at, _ in every_five_minutes(0, 0)]
    window = every_five_minutes(8.2, -0.04)

    found = read_trend(PH_LOW, [*window, *old, *noisy], EPOCH, TrendOptions())

    assert isinstance(found, TrendReading)
    assert found.line == fit(window[1:])  # the oldest is an hour old: the window is open there


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"window": timedelta(0)}, "window must be more than 0 and at most 7d"),
        ({"horizon": timedelta(days=8)}, "horizon must be more than 0 and at most 7d"),
        ({"min_samples": 1}, "min_samples must be a whole number from 2"),
        ({"max_rate_per_hour": -1.0}, "max_rate_per_hour must be a finite number above 0"),
        ({"max_rate_per_hour": math.inf}, "max_rate_per_hour must be a finite number above 0"),
    ],
)
def test_trend_options_outside_their_limits_are_refused(options, said):
    with pytest.raises(ValueError, match=said):
        TrendOptions(**options)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"window": "1h"}, "window must be a duration"),
        ({"max_rate_per_hour": "fast"}, "max_rate_per_hour must be a number"),
        ({"min_samples": 5.0}, "min_samples must be a whole number"),
        ({"smoothing": "no"}, "smoothing"),
    ],
)
def test_trend_options_of_the_wrong_type_are_refused(options, said):
    with pytest.raises(TypeError, match=said):
        TrendOptions(**options)


def test_an_operator_without_a_direction_forecasts_nothing():
    leaving = every_five_minutes(81.0, 1.0)  # 82 now, moving on
    exactly = Alert(4, 1, "temperature", "!=", 82.0)

    found = read_trend(exactly, leaving, EPOCH, TrendOptions(max_rate_per_hour=0.5))

    assert isinstance(found, TrendReading)
    assert (found.forecast, found.too_fast) == (None, None)


@given(
    st.floats(min_value=70.0, max_value=81.9),
    st.floats(min_value=0.01, max_value=20.0),
    st.integers(min_value=1, max_value=48),
)
def test_a_rising_line_is_forecast_exactly_when_it_crosses_within_the_horizon(now_value, rate, h):
    horizon = timedelta(minutes=30 * h)
    climbing = every_five_minutes(now_value - rate, rate)  # now_value at EPOCH

    found = read_trend(TOO_HOT, climbing, EPOCH, TrendOptions(horizon=horizon))

    assert isinstance(found, TrendReading)
    hours_to_cross = (82.0 + DEFAULT_TOLERANCE - now_value) / rate  # where > starts to hold
    if abs(hours_to_cross * 3600 - horizon.total_seconds()) > 1:  # not on the edge
        assert (found.forecast is not None) == (hours_to_cross * 3600 < horizon.total_seconds())
    if found.forecast is not None:
        assert EPOCH <= found.forecast.crossing_at <= EPOCH + horizon + timedelta(seconds=1)


def test_smoothing_needs_three_readings_at_least():
    with pytest.raises(ValueError, match="smoothing needs min_samples of 3 or more"):
        TrendOptions(min_samples=2, smoothing=True)


@pytest.mark.parametrize(
    ("operator", "edge"),
    [(">", 82.0 + 0.01), (">=", 82.0 - 0.01), ("<", 82.0 - 0.01), ("<=", 82.0 + 0.01)],
)
def test_the_crossing_is_where_the_condition_starts_to_hold_with_the_tolerance(operator, edge):
    rising = operator.startswith(">")
    line = fit(
        [(EPOCH, 80.0 if rising else 84.0), (EPOCH + timedelta(hours=1), 81.0 if rising else 83.0)]
    )

    assert line is not None
    crossing = line.crossing(82.0, Operator(operator), tolerance=0.01)

    assert crossing is not None
    assert line.at(crossing) == pytest.approx(edge)


def test_readings_too_large_to_fit_tell_no_trend():
    huge = [(EPOCH - timedelta(minutes=5 * n), 1.7e308) for n in range(12)]
    overflowing = [(EPOCH - timedelta(minutes=5 * n), -1e305 * n) for n in range(12)]
    steep = [(EPOCH - timedelta(seconds=1), 0.0), (EPOCH, 1e305)]  # 3.6e308 an hour: no float
    brief = TrendOptions(window=timedelta(seconds=2), min_samples=2, max_rate_per_hour=1.0)

    too_large = NoTrend("the readings are too large to fit a trend to")
    assert read_trend(TOO_HOT, huge, EPOCH, TrendOptions(smoothing=True)) == too_large
    assert read_trend(TOO_HOT, overflowing, EPOCH, TrendOptions()) == too_large
    assert read_trend(TOO_HOT, steep, EPOCH, brief) == too_large


def test_options_describe_the_trend_options_that_differ_from_the_defaults() -> None:
    options = RuleOptions(
        pending=timedelta(minutes=5),
        trend=TrendOptions(horizon=timedelta(hours=3), max_rate_per_hour=0.5, smoothing=True),
    )

    assert options.describe() == ("pending 5m, forecast horizon 3h, max rate 0.5/h, smoothing")
    assert RuleOptions(trend=TrendOptions()).describe() == "none (the specification's rule)"
    assert TrendOptions().describe() == (
        "trend window 1h, min samples 5, forecast horizon 2h, no rate limit, no smoothing"
    )
