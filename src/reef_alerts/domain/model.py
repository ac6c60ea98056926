"""The reef controller's things as the alert worker sees them: immutable values with their rules."""

from __future__ import annotations

import enum
import math
import reprlib
from datetime import datetime, timedelta
from typing import Any

import attrs

from reef_alerts.domain.errors import InvalidAlertError
from reef_alerts.domain.operators import Operator

JSON = Any
"""A decoded JSON value: dict, list, str, int, float, bool or None."""


def _aware(_instance: object, attribute: attrs.Attribute[Any], value: datetime) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{attribute.name} must be a datetime, got {value!r}")
    if value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware, got naive {value.isoformat()}")


def _aware_or_none(
    instance: object, attribute: attrs.Attribute[Any], value: datetime | None
) -> None:
    if value is not None:
        _aware(instance, attribute, value)


def _threshold(value: object) -> float:
    """A stored threshold as a finite float; anything else makes the alert invalid."""
    if value is None:
        raise InvalidAlertError("threshold is missing (NULL)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAlertError(f"threshold must be a finite number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidAlertError(f"threshold must be a finite number, got {value!r}")
    return number


def _parse_operator(symbol: object) -> Operator:
    # A function of its own: mypy's attrs plugin takes no bound method as a converter.
    return Operator.parse(symbol)


def _metric(_instance: object, _attribute: attrs.Attribute[Any], metric: object) -> None:
    if not isinstance(metric, str):
        raise InvalidAlertError(f"metric must be text, got {quoted(metric)}")


_QUOTED = reprlib.Repr()
_QUOTED.maxstring = 60
_QUOTED.maxother = 60


def quoted(value: object) -> str:
    """`value` as a reason names it: its repr, so control characters are escaped, and cut short
    (a name can be as long as the database lets it be)."""
    return _QUOTED.repr(value)


@attrs.frozen
class Device:
    """A probe or controller that produces readings."""

    id: int
    name: str
    type: str
    unit: str | None = None
    active: bool = True
    polled: bool = True
    """Whether the controller polls it; only polled devices' readings can go stale."""
    poll_interval: timedelta = timedelta(seconds=60)


@attrs.frozen
class Alert:
    """A keeper's rule: `metric <operator> threshold` on one device."""

    id: int | None
    """None for a draft, one the web app previews before it saves it."""
    device_id: int
    metric: str = attrs.field(validator=_metric)
    operator: Operator = attrs.field(converter=_parse_operator)
    threshold: float = attrs.field(converter=_threshold)
    enabled: bool = True
    trend_enabled: bool = False
    """Whether its window's trend is judged too: forecast and rate events, smoothing."""


@attrs.frozen
class Reading:
    """One row of a device's history."""

    id: int
    device_id: int
    timestamp: datetime | None = attrs.field(validator=_aware_or_none)
    """None when the row has none: the reading's age cannot be judged."""
    value: float | None = None
    """The single metric of a simple device."""
    json_value: JSON = None
    """A multi-metric reading, normally an object keyed by metric name."""
    metadata: JSON = None
    """Extra context the controller stored with the reading."""


class EventKind(enum.Enum):
    """What an event is about, stored as its metadata's `kind`: the database keeps at most one
    open event of each kind per alert (ADR 4)."""

    THRESHOLD = "threshold"
    """The alert's condition holds; an event the web app wrote without a kind is one too."""
    NO_DATA = "no_data"
    """The alert's device has stopped reporting (ADR 15)."""
    FORECAST = "forecast"
    """A trend alert's value is forecast to meet its condition within the horizon (issue 13)."""
    RATE = "rate"
    """A trend alert's value moves towards its condition faster than its limit."""


@attrs.frozen
class AlertEvent:
    """One excursion of an alert: opened when its condition holds (or its device falls silent),
    resolved when that stops."""

    alert_id: int | None
    """None for an event of a draft alert, in a preview."""
    device_id: int
    triggered_at: datetime = attrs.field(validator=_aware)
    current_value: float | None
    """The value that triggered the event; None for a no-data event."""
    threshold_value: float
    operator: Operator
    metric: str
    resolved: bool = False
    resolved_at: datetime | None = attrs.field(default=None, validator=_aware_or_none)
    resolution_value: float | None = None
    """The value at which the condition stopped holding."""
    metadata: dict[str, JSON] = attrs.field(factory=dict)
    """Context for a person, and the event's `kind` (EventKind's value)."""
    id: int | None = None
    """Assigned by storage; None until stored."""

    @property
    def kind(self) -> EventKind:
        return EventKind(self.metadata.get("kind", EventKind.THRESHOLD.value))

    def resolve(self, at: datetime, value: float | None) -> AlertEvent:
        """This event, closed at `at` by `value`."""
        if self.resolved:
            raise ValueError(f"event for alert {self.alert_id} is already resolved")
        return attrs.evolve(self, resolved=True, resolved_at=at, resolution_value=value)


@attrs.frozen
class Resolution:
    """Close the open event `event_id` of alert `alert_id` at `resolved_at`: the condition no
    longer holds at `value` (None where the event's end has no value, as a no-data event's may
    not)."""

    event_id: int
    alert_id: int | None
    resolved_at: datetime
    value: float | None
