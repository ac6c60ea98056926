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
        return _EQUAL
    return _ABOVE if value > threshold else _BELOW


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
        if isinstance(symbol, str):  # the common case, first: a stored row's text
            found = _BY_SYMBOL.get(symbol) or _BY_SYMBOL.get(symbol.strip())
            if found is not None:
                return found
        elif isinstance(symbol, Operator):
            return symbol
        raise UnknownOperatorError(symbol, [op.value for op in cls])

    @property
    def orderings(self) -> frozenset[Ordering]:
        """The orderings of value against threshold for which this operator holds."""
        return frozenset(_SATISFIED_BY[self._value_])

    def holds(self, value: float, threshold: float, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        """Whether `value <op> threshold`; never true for NaN or infinity."""
        # Judged once per alert per cycle. Enum members hash in Python code, so the orderings are
        # found by the symbol and tested by identity in a tuple: no hashing on this path.
        return compare(value, threshold, tolerance) in _SATISFIED_BY[self._value_]


# Looked up once per alert per cycle: a dict is several times faster than Enum's own lookup.
_BY_SYMBOL: dict[str, Operator] = {op.value: op for op in Operator}

_BELOW, _EQUAL, _ABOVE = Ordering.BELOW, Ordering.EQUAL, Ordering.ABOVE
_SATISFIED_BY: dict[str, tuple[Ordering, ...]] = {
    Operator.GT.value: (_ABOVE,),
    Operator.LT.value: (_BELOW,),
    Operator.EQ.value: (_EQUAL,),
    Operator.GE.value: (_ABOVE, _EQUAL),
    Operator.LE.value: (_BELOW, _EQUAL),
    Operator.NE.value: (_ABOVE, _BELOW),
}
"""Each operator's orderings, by symbol. None (NaN or infinity) is in none of them."""
