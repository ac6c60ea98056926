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
        return Ordering.EQUAL
    return Ordering.ABOVE if value > threshold else Ordering.BELOW


class Operator(enum.Enum):
    """An alert's comparison; each is the set of orderings that satisfy it."""

    GT = ">"
    LT = "<"
    EQ = "=="
    GE = ">="
    LE = "<="
    NE = "!="

    @classmethod
    def parse(cls, symbol: object) -> Operator:
        """The operator spelled `symbol` (surrounding blanks ignored)."""
        if isinstance(symbol, Operator):
            return symbol
        if isinstance(symbol, str):
            found = _BY_SYMBOL.get(symbol) or _BY_SYMBOL.get(symbol.strip())
            if found is not None:
                return found
        raise UnknownOperatorError(symbol, [op.value for op in cls])

    @property
    def orderings(self) -> frozenset[Ordering]:
        """The orderings of value against threshold for which this operator holds."""
        return _SATISFIED_BY[self]

    def holds(self, value: float, threshold: float, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        """Whether `value <op> threshold`; never true for NaN or infinity."""
        ordering = compare(value, threshold, tolerance)
        return ordering is not None and ordering in _SATISFIED_BY[self]


# Looked up once per alert per cycle: a dict is several times faster than Enum's own lookup.
_BY_SYMBOL: dict[str, Operator] = {op.value: op for op in Operator}

_B, _E, _A = Ordering.BELOW, Ordering.EQUAL, Ordering.ABOVE
_SATISFIED_BY: dict[Operator, frozenset[Ordering]] = {
    Operator.GT: frozenset({_A}),
    Operator.LT: frozenset({_B}),
    Operator.EQ: frozenset({_E}),
    Operator.GE: frozenset({_A, _E}),
    Operator.LE: frozenset({_B, _E}),
    Operator.NE: frozenset({_A, _B}),
}
