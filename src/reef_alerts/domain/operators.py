"""The threshold policy: one comparison rule from which all six alert operators follow."""

from __future__ import annotations

import enum
import math

from reef_alerts.domain.errors import UnknownOperatorError

DEFAULT_TOLERANCE = 0.001
"""Absolute tolerance within which two values count as equal (the legacy app's equality epsilon)."""


class Ordering(enum.Enum):
    """Where a value stands relative to a threshold."""

    BELOW = "below"
    EQUAL = "equal"
    ABOVE = "above"


def compare(
    value: float, threshold: float, tolerance: float = DEFAULT_TOLERANCE
) -> Ordering | None:
    """Order `value` against `threshold`; None when either is NaN or infinite.

    Values within `tolerance` of each other are EQUAL. The rule is symmetric, so
    `compare(a, b)` is ABOVE exactly when `compare(b, a)` is BELOW.
    """
    if not (math.isfinite(value) and math.isfinite(threshold)):
        return None
    if abs(value - threshold) <= tolerance:
        return EQUAL
    return ABOVE if value > threshold else BELOW


# Named once: looking a member up through its class is a Python call on Python 3.11.
BELOW, EQUAL, ABOVE = Ordering.BELOW, Ordering.EQUAL, Ordering.ABOVE

# Tuples, not sets: `in` a tuple of members is an identity test, where a set would hash the
# member in Python code for every alert judged.
_SATISFIED_BY = {
    ">": (ABOVE,),
    "<": (BELOW,),
    "==": (EQUAL,),
    ">=": (ABOVE, EQUAL),
    "<=": (BELOW, EQUAL),
    "!=": (ABOVE, BELOW),
}


class Operator(enum.Enum):
    """An alert's comparison: each is the set of orderings that satisfy it."""

    GT = ">"
    LT = "<"
    EQ = "=="
    GE = ">="
    LE = "<="
    NE = "!="

    orderings: tuple[Ordering, ...]
    """The orderings of value against threshold for which this operator holds; None (NaN or
    infinity) is in none of them."""

    def __init__(self, symbol: str) -> None:
        self.orderings = _SATISFIED_BY[symbol]

    @classmethod
    def parse(cls, symbol: object) -> Operator:
        """The operator spelled `symbol` (surrounding blanks ignored)."""
        if isinstance(symbol, Operator):
            return symbol
        if isinstance(symbol, str):
            try:
                return cls(symbol.strip())
            except ValueError:
                pass
        raise UnknownOperatorError(symbol, [op.value for op in cls])

    def holds(self, value: float, threshold: float, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        """Whether `value <op> threshold`; never true for NaN or infinity."""
        return compare(value, threshold, tolerance) in self.orderings

    def recovered(
        self,
        value: float,
        threshold: float,
        margin: float = 0.0,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> bool:
        """Whether `value` has come back from the condition by at least `margin`: every value
        within `margin` of it fails the condition (ADR 17). With no margin, exactly `not holds`.

        For `>` and `>=` the threshold moves down by the margin, for `<` and `<=` up; for `==`
        the band the value must leave widens by it. A `!=` condition clears only at the
        threshold itself, where no margin fits, so the margin does not apply to it. Never true
        for NaN or infinity, which no condition can be judged on.
        """
        if not math.isfinite(value):
            return False
        if self in (Operator.GT, Operator.GE):
            threshold -= margin
        elif self in (Operator.LT, Operator.LE):
            threshold += margin
        elif self is Operator.EQ:
            tolerance += margin
        if not math.isfinite(threshold):
            return False  # moved past every float: no value is that far back
        return not self.holds(value, threshold, tolerance)
