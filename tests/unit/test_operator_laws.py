"""Hypothesis laws of the threshold policy, over any finite floats and tolerances."""

from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.domain import Operator, compare
from tests.strategies import finite_floats, non_finite_floats, operators, tolerances

GT, LT, EQ, GE, LE, NE = (
    Operator.GT,
    Operator.LT,
    Operator.EQ,
    Operator.GE,
    Operator.LE,
    Operator.NE,
)


@given(finite_floats, finite_floats, tolerances)
def test_exactly_one_of_less_equal_greater_holds(a, b, tolerance):
    """For finite a and b, exactly one of a < b, a == b, a > b holds."""
    held = [op.holds(a, b, tolerance) for op in (LT, EQ, GT)]
    assert held.count(True) == 1


@given(finite_floats, finite_floats, tolerances)
def test_not_equal_is_not_equal(a, b, tolerance):
    """a != b holds exactly when a == b does not."""
    assert NE.holds(a, b, tolerance) is not EQ.holds(a, b, tolerance)


@given(finite_floats, finite_floats, tolerances)
def test_greater_or_equal_is_greater_or_equal(a, b, tolerance):
    """a >= b holds exactly when a > b or a == b holds."""
    assert GE.holds(a, b, tolerance) is (GT.holds(a, b, tolerance) or EQ.holds(a, b, tolerance))


@given(finite_floats, finite_floats, tolerances)
def test_less_or_equal_is_less_or_equal(a, b, tolerance):
    """a <= b holds exactly when a < b or a == b holds."""
    assert LE.holds(a, b, tolerance) is (LT.holds(a, b, tolerance) or EQ.holds(a, b, tolerance))


@given(finite_floats, finite_floats, tolerances)
def test_a_greater_than_b_exactly_when_b_less_than_a(a, b, tolerance):
    """a > b holds exactly when b < a holds (and so == is symmetric)."""
    assert GT.holds(a, b, tolerance) is LT.holds(b, a, tolerance)
    assert EQ.holds(a, b, tolerance) is EQ.holds(b, a, tolerance)


@given(
    operators,
    st.one_of(
        st.tuples(non_finite_floats, finite_floats | non_finite_floats),
        st.tuples(finite_floats, non_finite_floats),
    ),
    tolerances,
)
def test_nan_or_infinity_on_either_side_satisfies_no_operator(operator, pair, tolerance):
    """If a or b is NaN or infinite, no operator holds and compare() gives no ordering."""
    a, b = pair
    assert not operator.holds(a, b, tolerance)
    assert compare(a, b, tolerance) is None


@given(operators, finite_floats, finite_floats, tolerances)
def test_an_operator_holds_exactly_on_its_orderings(operator, a, b, tolerance):
    """op.holds(a, b) is compare(a, b) in op.orderings: one comparison rule for all six."""
    assert operator.holds(a, b, tolerance) is (compare(a, b, tolerance) in operator.orderings)


@given(finite_floats, finite_floats)
def test_with_zero_tolerance_the_operators_are_pythons_float_comparisons(a, b):
    """With tolerance 0 each operator agrees with Python's own comparison of the floats."""
    assert GT.holds(a, b, 0.0) is (a > b)
    assert LT.holds(a, b, 0.0) is (a < b)
    assert EQ.holds(a, b, 0.0) is (a == b)
    assert GE.holds(a, b, 0.0) is (a >= b)
    assert LE.holds(a, b, 0.0) is (a <= b)
    assert NE.holds(a, b, 0.0) is (a != b)


@given(finite_floats, finite_floats, tolerances)
def test_values_farther_apart_than_the_tolerance_keep_their_float_order(a, b, tolerance):
    """Outside the tolerance band, > and < are Python's: tolerance only widens equality."""
    if abs(a - b) > tolerance:
        assert GT.holds(a, b, tolerance) is (a > b)
        assert LT.holds(a, b, tolerance) is (a < b)
    else:
        assert EQ.holds(a, b, tolerance)
