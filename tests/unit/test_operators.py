"""The threshold policy: compare() with its tolerance, and the six operators built on it."""

import math

import pytest

from reef_alerts.domain import (
    InvalidAlertError,
    Operator,
    Ordering,
    UnknownOperatorError,
    compare,
)

ALL_SYMBOLS = [">", "<", "==", ">=", "<=", "!="]


@pytest.mark.parametrize(
    ("value", "threshold", "expected"),
    [
        (85.2, 82.0, Ordering.ABOVE),
        (7.9, 8.0, Ordering.BELOW),
        (8.0, 8.0, Ordering.EQUAL),
        (-3.5, -3.5, Ordering.EQUAL),
        (0.0, -0.0, Ordering.EQUAL),
    ],
)
def test_compare_orders_value_against_threshold(value, threshold, expected):
    assert compare(value, threshold) is expected


def test_values_within_the_default_tolerance_compare_equal():
    assert compare(82.0009, 82.0) is Ordering.EQUAL
    assert compare(81.9991, 82.0) is Ordering.EQUAL


def test_values_just_beyond_the_default_tolerance_do_not_compare_equal():
    assert compare(82.0011, 82.0) is Ordering.ABOVE
    assert compare(81.9989, 82.0) is Ordering.BELOW


def test_a_difference_of_exactly_the_tolerance_still_counts_as_equal():
    # 0.5 and 0.25 are exact in binary, so the difference is exactly the tolerance
    assert compare(1.5, 1.0, tolerance=0.5) is Ordering.EQUAL
    assert compare(1.0, 1.25, tolerance=0.25) is Ordering.EQUAL


def test_zero_tolerance_makes_equality_exact():
    assert compare(1.0 + 1e-12, 1.0, tolerance=0.0) is Ordering.ABOVE
    assert compare(1.0, 1.0, tolerance=0.0) is Ordering.EQUAL


def test_extreme_finite_values_far_apart_are_ordered_even_when_their_difference_overflows():
    assert compare(1.7e308, -1.7e308) is Ordering.ABOVE
    assert compare(-1.7e308, 1.7e308) is Ordering.BELOW


@pytest.mark.parametrize(
    ("value", "threshold"),
    [
        (math.nan, 1.0),
        (1.0, math.nan),
        (math.inf, 1.0),
        (-math.inf, 1.0),
        (1.0, math.inf),
        (math.inf, math.inf),
        (math.nan, math.nan),
    ],
)
def test_compare_refuses_to_order_nan_or_infinity(value, threshold):
    assert compare(value, threshold) is None


@pytest.mark.parametrize(
    ("symbol", "value", "threshold", "expected"),
    [
        (">", 85.2, 82.0, True),
        (">", 82.0, 82.0, False),
        (">", 82.0005, 82.0, False),
        (">", 80.0, 82.0, False),
        ("<", 7.9, 8.0, True),
        ("<", 7.9995, 8.0, False),
        ("<", 8.1, 8.0, False),
        ("==", 8.0005, 8.0, True),
        ("==", 8.1, 8.0, False),
        (">=", 82.0, 82.0, True),
        (">=", 81.9995, 82.0, True),
        (">=", 81.9, 82.0, False),
        ("<=", 8.0, 8.0, True),
        ("<=", 8.0005, 8.0, True),
        ("<=", 8.1, 8.0, False),
        ("!=", 8.1, 8.0, True),
        ("!=", 7.9, 8.0, True),
        ("!=", 8.0005, 8.0, False),
    ],
)
def test_operator_holds_by_the_threshold_policy(symbol, value, threshold, expected):
    assert Operator.parse(symbol).holds(value, threshold) is expected


def test_a_wider_tolerance_widens_equality_for_every_operator():
    assert Operator.EQ.holds(8.05, 8.0, tolerance=0.1)
    assert not Operator.GT.holds(8.05, 8.0, tolerance=0.1)
    assert not Operator.NE.holds(8.05, 8.0, tolerance=0.1)
    assert Operator.LE.holds(8.05, 8.0, tolerance=0.1)


@pytest.mark.parametrize("operator", list(Operator))
@pytest.mark.parametrize(
    ("value", "threshold"), [(math.nan, 1.0), (1.0, math.nan), (math.inf, 1.0), (1.0, -math.inf)]
)
def test_no_operator_holds_for_nan_or_infinity(operator, value, threshold):
    assert not operator.holds(value, threshold)


@pytest.mark.parametrize(
    ("operator", "orderings"),
    [
        (Operator.GT, {Ordering.ABOVE}),
        (Operator.LT, {Ordering.BELOW}),
        (Operator.EQ, {Ordering.EQUAL}),
        (Operator.GE, {Ordering.ABOVE, Ordering.EQUAL}),
        (Operator.LE, {Ordering.BELOW, Ordering.EQUAL}),
        (Operator.NE, {Ordering.ABOVE, Ordering.BELOW}),
    ],
)
def test_each_operator_is_the_set_of_orderings_that_satisfy_it(operator, orderings):
    assert frozenset(operator.orderings) == orderings


@pytest.mark.parametrize("symbol", ALL_SYMBOLS)
def test_parses_each_of_the_six_symbols(symbol):
    assert Operator.parse(symbol).value == symbol


def test_parsing_ignores_surrounding_blanks():
    assert Operator.parse("  >= \t") is Operator.GE


def test_parsing_an_operator_returns_it_unchanged():
    assert Operator.parse(Operator.NE) is Operator.NE


@pytest.mark.parametrize("symbol", ["=>", "gt", "", "= =", "<>", None, 5, b">"])
def test_unknown_operator_error_names_the_operator_and_lists_the_allowed_ones(symbol):
    with pytest.raises(UnknownOperatorError) as raised:
        Operator.parse(symbol)
    message = str(raised.value)
    assert repr(symbol) in message
    assert all(allowed in message for allowed in ALL_SYMBOLS)
    assert raised.value.operator == symbol
    assert isinstance(raised.value, InvalidAlertError)
