"""Evaluation: what should happen to one alert, given its device, its newest reading and the time.

Decisions are values. The application layer carries them out; a preview just shows them.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import NamedTuple

import attrs

from reef_alerts.domain.durations import format_duration
from reef_alerts.domain.extraction import NoMetric, locate_metric
from reef_alerts.domain.model import Alert, AlertEvent, Device, EventKind, Reading, quoted
from reef_alerts.domain.operators import DEFAULT_TOLERANCE

MAX_AGE_LIMIT = timedelta(days=1)
"""The longest any reading stays fresh, however slowly its device is polled."""


def _within_limit(
    _instance: object, attribute: attrs.Attribute[timedelta], value: timedelta
) -> None:
    if not timedelta(0) < value <= MAX_AGE_LIMIT:
        raise ValueError(f"{attribute.name} must be greater than 0 and at most 1 day, got {value}")


@attrs.frozen
class EvaluationPolicy:
    """The tunables of evaluation."""

    max_reading_age: timedelta = attrs.field(default=timedelta(minutes=5), validator=_within_limit)
    """How old a polled device's newest reading may be (stretched to two poll intervals)."""
    clock_skew: timedelta = timedelta(seconds=30)
    """How far in the future a reading's timestamp may be before it is distrusted."""
    tolerance: float = DEFAULT_TOLERANCE
    """Values this close to the threshold count as equal to it."""

    def max_age_for(self, device: Device) -> timedelta:
        """The age past which `device`'s reading is stale: a slow poller gets two intervals, up
        to MAX_AGE_LIMIT."""
        return min(max(self.max_reading_age, 2 * device.poll_interval), MAX_AGE_LIMIT)

    def at(self, now: datetime) -> Evaluator:
        """This policy fixed at `now`, to judge one cycle's alerts with."""
        return Evaluator(self, now)


class SkipCode(enum.Enum):
    """Why an alert could not be evaluated this time."""

    ALERT_DISABLED = "alert disabled"
    DEVICE_MISSING = "device missing"
    DEVICE_INACTIVE = "device inactive"
    NO_READING = "no reading"
    UNTIMED_READING = "reading without a timestamp"
    STALE_READING = "stale reading"
    FUTURE_READING = "reading from the future"
    METRIC_MISSING = "metric missing"
    INVALID_VALUE = "invalid value"
    SHORT_WINDOW = "too few readings to smooth"


@attrs.frozen
class Trigger:
    """Open `event`: the condition holds and no event is open."""

    event: AlertEvent
    reason: str
    reading_at: datetime | None = None
    """When the reading that opened it was taken."""


@attrs.frozen
class Resolve:
    """Close the open event: the condition no longer holds at `value`."""

    value: float
    reason: str


@attrs.frozen
class Skip:
    """Leave everything as it is: the alert cannot be judged now."""

    code: SkipCode
    reason: str


@attrs.frozen
class NoChange:
    """The alert's state is already right: condition and open event agree."""

    value: float


@attrs.frozen
class Pending:
    """The condition holds, but has not held for the alert's pending duration yet: no event."""

    value: float
    since: datetime
    """When the condition began to hold."""
    alert: Alert
    pending: timedelta
    """How long it must hold."""

    @property
    def reason(self) -> str:
        """Said once, when the wait begins: worked out only then, not every cycle it lasts."""
        alert = self.alert
        return (
            f"{self.value} {alert.operator.value} {alert.threshold} holds since "
            f"{self.since:%Y-%m-%d %H:%M:%S} UTC; its event opens once it has held for "
            f"{format_duration(self.pending)}"
        )


Decision = Trigger | Resolve | Skip | NoChange | Pending

TICK = timedelta(microseconds=1)
"""The smallest step of a datetime: a reading older than a limit by more than the limit is past
it from the limit plus a tick on."""

PENDING_GAP = timedelta(minutes=10)
"""How long a pending condition may go unseen (a worker restarting, a partition changing
hands) and still count as having held throughout (Prometheus's outage tolerance, shorter)."""


def still_pending(since: datetime | None, now: datetime, pending: timedelta) -> datetime:
    """When a pending condition began, as far as the machine can vouch for it: `now` if it
    has not been pending, or was last seen so long ago that nobody can say it held meanwhile.

    A pending condition is seen every cycle until its event opens, so its start is never more
    than `pending` and a cycle old. One older than that by PENDING_GAP was not seen in between
    (the alert was disabled, the worker down, its partition unleased, the row edited by hand):
    its wait starts over, so no event opens early. One in the future is distrusted alike.
    """
    if since is None or since > now or now - since > pending + PENDING_GAP:
        return now
    return since


class Measurement(NamedTuple):
    """The value of an alert's metric in its device's newest reading, which is fresh."""

    value: float
    device: Device
    reading: Reading
    timestamp: datetime
    """The reading's."""


def evaluate(
    alert: Alert,
    device: Device | None,
    reading: Reading | None,
    has_open_event: bool,
    now: datetime,
    policy: EvaluationPolicy = EvaluationPolicy(),  # frozen, so one shared default is safe
) -> Decision:
    """Decide what happens to `alert` at `now`. Pure: no I/O, no clock."""
    return Evaluator(policy, now).evaluate(alert, device, reading, has_open_event)


@attrs.frozen
class Evaluator:
    """A policy fixed at one instant, `now`: what a cycle judges all its alerts with.

    The instants a reading's timestamp is compared with are worked out once, not per alert.
    """

    policy: EvaluationPolicy
    now: datetime
    _newest_trusted: datetime = attrs.field(init=False)
    """Readings after this are from the future."""
    _fresh_since: datetime = attrs.field(init=False)
    """Readings before this are older than the policy's max_reading_age."""

    _stale_after: dict[timedelta, timedelta] = attrs.field(init=False, factory=dict, eq=False)
    """By poll interval, how long after its timestamp a reading is stale, and a tick (the
    live path asks it for every watched device every cycle)."""

    @_newest_trusted.default
    def _now_plus_skew(self) -> datetime:
        return self.now + self.policy.clock_skew

    @_fresh_since.default
    def _now_minus_max_age(self) -> datetime:
        return self.now - self.policy.max_reading_age

    @property
    def newest_trusted(self) -> datetime:
        """The newest instant a reading may be timestamped and not be from the future."""
        return self._newest_trusted

    def rejudged_at(self, device: Device | None, reading: Reading | None) -> datetime | None:
        """When time alone next changes how `reading`, `device`'s newest, is judged: a reading
        from the future is trusted from then on, a fresh one is stale; None when time alone
        changes nothing more (issue 16: the live path judges an alert again then, with no new
        reading)."""
        if device is None or reading is None or not device.active:
            return None
        timestamp = reading.timestamp
        if timestamp is None:
            return None
        if timestamp > self._newest_trusted:
            return timestamp - self.policy.clock_skew
        if not device.polled:
            return None
        after = self._stale_after.get(device.poll_interval)
        if after is None:
            after = self._stale_after[device.poll_interval] = self.policy.max_age_for(device) + TICK
        stale_at = timestamp + after
        return stale_at if stale_at > self.now else None

    def evaluate(
        self, alert: Alert, device: Device | None, reading: Reading | None, has_open_event: bool
    ) -> Decision:
        """Decide what happens to `alert` now, as the specification says: the event opens the
        first time the condition holds and resolves the first time it does not. Pure: no I/O,
        no clock."""
        measured = self.observe(alert, device, reading)
        if isinstance(measured, Skip):
            return measured
        value = measured.value
        holds = alert.operator.holds(value, alert.threshold, self.policy.tolerance)
        if holds == has_open_event:
            return NoChange(value)
        if holds:
            return self.trigger(alert, measured)
        return self.resolve(alert, value)

    def observe(
        self, alert: Alert, device: Device | None, reading: Reading | None
    ) -> Skip | Measurement:
        """The value of `alert`'s metric now, or why it cannot be judged."""
        if not alert.enabled:
            return Skip(SkipCode.ALERT_DISABLED, f"alert {alert.id} is disabled")
        if device is None:
            return Skip(SkipCode.DEVICE_MISSING, f"device {alert.device_id} does not exist")
        if not device.active:
            return Skip(SkipCode.DEVICE_INACTIVE, f"device {quoted(device.name)} is inactive")
        if reading is None:
            return Skip(SkipCode.NO_READING, f"device {quoted(device.name)} has no readings")
        now, timestamp = self.now, reading.timestamp
        if timestamp is None:
            return Skip(
                SkipCode.UNTIMED_READING,
                f"device {quoted(device.name)}'s newest reading {reading.id} has no timestamp, "
                "so its age cannot be judged",
            )
        if timestamp > self._newest_trusted:
            ahead = (timestamp - now).total_seconds()
            return Skip(
                SkipCode.FUTURE_READING,
                f"reading {reading.id} is timestamped {ahead:.0f}s in the future",
            )
        # Readings newer than the policy's limit are fresh whatever the device: only older ones
        # are held against the device's own limit (see max_age_for).
        if device.polled and timestamp < self._fresh_since:
            limit = self.policy.max_age_for(device)
            if timestamp < now - limit:
                return Skip(
                    SkipCode.STALE_READING,
                    f"newest reading {reading.id} is {(now - timestamp).total_seconds():.0f}s old "
                    f"(limit {_limit(limit, device)})",
                )

        found = locate_metric(reading, alert.metric)
        if isinstance(found, NoMetric):
            code = SkipCode.INVALID_VALUE if found.invalid else SkipCode.METRIC_MISSING
            return Skip(code, found.reason)
        return Measurement(found[0], device, reading, timestamp)

    def trigger(
        self, alert: Alert, measured: Measurement, since: datetime | None = None
    ) -> Trigger:
        """Open `alert`'s threshold event now on `measured`; `since`: when its condition began
        to hold, where it had to hold for a while first."""
        value = measured.value
        event = _open_event(alert, measured, self.now)
        if since is not None:
            event.metadata["condition_since"] = since.isoformat()
        condition = f"{value} {alert.operator.value} {alert.threshold}"
        return Trigger(event, f"Threshold exceeded: {condition}", measured.timestamp)

    def resolve(self, alert: Alert, value: float, margin: float = 0.0) -> Resolve:
        """Resolve `alert`'s threshold event: `value` is back, by `margin` at least."""
        condition = f"{value} {alert.operator.value} {alert.threshold}"
        beyond = f", by the recovery margin of {margin:g} at least" if margin else ""
        return Resolve(value, f"Condition cleared: {condition} no longer holds{beyond}")


def _limit(limit: timedelta, device: Device) -> str:
    """The staleness limit for a reason; where it was capped, what the device asked for."""
    seconds = f"{limit.total_seconds():.0f}s"
    if limit == MAX_AGE_LIMIT and 2 * device.poll_interval > MAX_AGE_LIMIT:
        return (
            f"{seconds}: two poll intervals of {device.poll_interval.total_seconds():.0f}s, "
            "capped at 1 day"
        )
    return seconds


def _open_event(alert: Alert, measured: Measurement, now: datetime) -> AlertEvent:
    return event_on(alert, measured, now, EventKind.THRESHOLD)


def event_on(
    alert: Alert,
    measured: Measurement,
    now: datetime,
    kind: EventKind,
    context: dict[str, object] | None = None,
) -> AlertEvent:
    """An event of `kind` opened now on `measured`, its metadata the reading and device it was
    judged on, after the `context` its kind adds."""
    device = measured.device
    return AlertEvent(
        alert_id=alert.id,
        device_id=device.id,
        triggered_at=now,
        current_value=measured.value,
        threshold_value=alert.threshold,
        operator=alert.operator,
        metric=alert.metric,
        metadata={
            "kind": kind.value,
            **(context or {}),
            "reading_id": measured.reading.id,
            "reading_timestamp": measured.timestamp.isoformat(),
            "device_name": device.name,
            "device_type": device.type,
            "unit": device.unit,
        },
    )
