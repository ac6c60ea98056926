"""Rule options, durations and the recovery rule, one case at a time (the laws are in
test_rule_laws.py)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.domain import (
    AlertState,
    Operator,
    RuleOptions,
    format_duration,
    parse_duration,
)
from tests.strategies import finite_floats


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("90", 90),
        ("1.5h", 5400),
        (" 10M ", 600),
        ("0", 0),
    ],
)
def test_a_duration_is_read_as_a_keeper_writes_it(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "5x", "m", "1m1h", "-5m", "5 m", "1h 30m", "five", "\u0661\u0665m", "1e9"]
)
def test_a_malformed_duration_is_refused_with_the_forms_it_takes(text):
    with pytest.raises(ValueError, match="write it like 30s, 5m, 1h or 1h30m"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.4", "is not a whole number of seconds"),
        ("1.0001m", "is not a whole number of seconds"),
        ("99999999999999999999d", "is longer than any duration"),
        ("9" * 400, "is longer than any duration"),
    ],
)
def test_a_duration_nobody_can_mean_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_a_formatted_duration_reads_back_as_itself(seconds):
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


def test_a_duration_is_formatted_in_its_largest_units():
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"recovery_margin": -0.1}, "recovery_margin must be a finite number, 0 or more"),
        ({"recovery_margin": math.nan}, "recovery_margin must be a finite number"),
        ({"pending": timedelta(seconds=-1)}, "pending must be 0"),
        ({"pending": timedelta(days=8)}, "pending must be at most 7d"),
        ({"no_data_after": timedelta(0)}, "no_data_after must be more than 0"),
    ],
)
def test_options_a_keeper_cannot_mean_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        RuleOptions(**options)


def test_options_describe_themselves_as_a_keeper_would_set_them():
    options = RuleOptions(timedelta(minutes=5), 0.3, timedelta(minutes=10))
    assert options.describe() == "pending 5m, recovery margin 0.3, no data after 10m"
    assert RuleOptions().describe() == "none (the specification's rule)"


def test_an_alert_starts_with_nothing_pending_and_no_event_open():
    assert AlertState() == AlertState(pending_since=None, firing=False, silent=False)


@pytest.mark.parametrize(
    ("operator", "value", "recovered"),
    [
        (">", 81.8, False),  # below the threshold, inside the 0.5 margin
        (">", 81.5, True),  # at threshold - margin (within the tolerance, which counts as there)
        (">", 81.4, True),
        (">=", 81.5, False),  # >= 81.5 still meets the moved threshold
        ("<", 82.4, False),
        ("<", 82.6, True),
        ("==", 82.4, False),  # within the margin of the threshold
        ("==", 82.6, True),
        ("!=", 82.0, True),  # no margin for !=: back at the threshold is back
        ("!=", 82.4, False),
    ],
)
def test_an_event_recovers_only_once_the_value_is_back_by_the_margin(operator, value, recovered):
    assert Operator(operator).recovered(value, 82.0, 0.5) is recovered


@given(st.sampled_from(Operator), finite_floats, finite_floats)
def test_without_a_margin_recovering_is_exactly_no_longer_holding(operator, value, threshold):
    assert operator.recovered(value, threshold) is not operator.holds(value, threshold)


@given(st.sampled_from(Operator), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_nan_and_infinity_never_recover_an_event(operator, value):
    assert not operator.recovered(value, 82.0, 0.5)


def test_a_margin_that_moves_the_threshold_past_every_float_never_recovers():
    assert not Operator.GT.recovered(-1e308, -1e308, 1e308)
    assert not Operator.LT.recovered(1e308, 1e308, 1e308)
