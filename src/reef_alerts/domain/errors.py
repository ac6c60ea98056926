"""Errors the domain raises for data it cannot accept."""


class InvalidAlertError(ValueError):
    """An alert that cannot be evaluated: a bad operator or threshold."""


class UnknownOperatorError(InvalidAlertError):
    """An alert names an operator that is not one of the six."""

    def __init__(self, operator: object, allowed: list[str]) -> None:
        super().__init__(
            f"unknown operator {operator!r}; allowed operators are {', '.join(allowed)}"
        )
        self.operator = operator


class UnreadableValueError(ValueError):
    """A stored value cannot be read as what its column holds: text where a number belongs, a
    timestamp that is no date, JSON nested deeper than it can be decoded."""
