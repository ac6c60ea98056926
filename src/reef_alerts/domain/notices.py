"""What the keeper is told (issue 15): the facts of one event change, the messages they make
for a person and for an Alertmanager-shaped webhook, and the rules delivery follows: silences,
holds, rate limits and retries."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from reef_alerts.domain.durations import format_duration
from reef_alerts.domain.model import EventKind


class Change(enum.Enum):
    """What an outbox row tells of its event."""

    OPENED = "opened"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    """Still open and unacknowledged after the alert's repeat interval."""
    ESCALATION = "escalation"
    """Still unacknowledged after the alert's escalate_after: to the escalation channels."""


@attrs.frozen
class Notice:
    """One outbox row with its event's facts: one line of a message."""

    item_id: int
    """The outbox row's id."""
    change: Change
    event_id: int
    alert_id: int
    device_id: int
    device: str
    """The device's name (its id where it has none)."""
    kind: EventKind
    metric: str
    operator: str
    threshold: float
    value: float | None
    """The value that opened the event (None for no-data)."""
    unit: str | None
    triggered_at: datetime
    resolved_at: datetime | None = None
    resolution_value: float | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)

    @property
    def firing(self) -> bool:
        """Whether it tells of a problem, not of its end."""
        return self.change is not Change.RESOLVED

    def line(self, now: datetime) -> str:
        """The notice for a person, on one line."""
        what = f"{self.device} {self.metric}"
        condition = f"{self.operator} {_number(self.threshold, self.unit)}"
        since = _when(self.triggered_at)
        match self.kind, self.change:
            case EventKind.NO_DATA, Change.RESOLVED:
                said = f"RESOLVED {self.device}: reporting again after its silence"
            case EventKind.NO_DATA, _:
                last = self.metadata.get("last_reading_at")
                heard = f"since {_when(last)}" if isinstance(last, str) else "ever"
                said = f"NO DATA {self.device}: no reading {heard}"
            case EventKind.FORECAST, Change.RESOLVED:
                said = f"RESOLVED forecast {what}: no longer heading for {condition}"
            case EventKind.FORECAST, _:
                crossing = self.metadata.get("predicted_crossing_at")
                at = _when(crossing) if isinstance(crossing, str) else "soon"
                said = (
                    f"FORECAST {what} {_number(self.value, self.unit)} will reach {condition} "
                    f"around {at}"
                )
            case EventKind.RATE, Change.RESOLVED:
                said = f"RESOLVED rate {what}: its rate of change is within its limit again"
            case EventKind.RATE, _:
                rate = self.metadata.get("rate_per_hour")
                moving = f"{rate:+.3g}/h" if isinstance(rate, int | float) else "fast"
                said = f"RATE {what} moves {moving} towards {condition}"
            case _, Change.RESOLVED:
                lasted = format_duration((self.resolved_at or now) - self.triggered_at)
                said = (
                    f"RESOLVED {what} {_number(self.resolution_value, self.unit)} "
                    f"(was {condition}), after {lasted}"
                )
            case _:
                said = f"FIRING {what} {_number(self.value, self.unit)} {condition} since {since}"
        match self.change:
            case Change.REMINDER:
                said = f"{said} (still open, unacknowledged; reef-alerts ack {self.event_id})"
            case Change.ESCALATION:
                open_for = format_duration(now - self.triggered_at)
                said = f"ESCALATED, unacknowledged for {open_for}: {said}"
        return f"{said} [event {self.event_id}]"

    def fingerprint(self) -> str:
        """The alert and kind the event is of, as Alertmanager's fingerprint: the same for
        every notice of the same problem."""
        key = f"{self.alert_id}:{self.kind.value}".encode()
        return hashlib.sha256(key).hexdigest()[:16]


@attrs.frozen
class Message:
    """One message to one channel."""

    id: str
    """Stable across retries, so a receiver can drop a duplicate."""
    title: str
    body: str
    payload: dict[str, Any]
    """The message as Alertmanager's webhook (version 4) sends it."""


def message_id(number: int) -> str:
    """The stable id of message `number`."""
    return f"reef-alerts-{number}"


def compose(number: int, notices: Sequence[Notice], receiver: str, now: datetime) -> Message:
    """The message of `notices` to the channel `receiver`: a title that sums them up, a line
    each, and the same as an Alertmanager webhook's body."""
    ident = message_id(number)
    notices = sorted(notices, key=lambda n: (n.device, n.event_id, n.item_id))
    firing = [notice for notice in notices if notice.firing]
    devices = sorted({notice.device for notice in notices})
    where = devices[0] if len(devices) == 1 else f"{len(devices)} devices"
    if len(notices) == 1:
        title = f"[reef] {notices[0].line(now).split(' [event')[0]}"
    elif firing and len(firing) == len(notices):
        title = f"[reef] {len(firing)} alerts firing on {where}"
    elif not firing:
        title = f"[reef] {len(notices)} alerts resolved on {where}"
    else:
        title = f"[reef] {len(firing)} firing, {len(notices) - len(firing)} resolved on {where}"
    lines = [notice.line(now) for notice in notices]
    body = "\n".join([*lines, "", f"Message id: {ident}"])
    return Message(ident, title, body, alertmanager(ident, notices, receiver, now))


def alertmanager(
    ident: str, notices: Sequence[Notice], receiver: str, now: datetime
) -> dict[str, Any]:
    """The body of Alertmanager's webhook, version 4, for `notices`; with the message's id as
    `groupKey`'s suffix and as `messageId`."""
    alerts = [
        {
            "status": "firing" if notice.firing else "resolved",
            "labels": {
                "alertname": f"{notice.metric} {notice.operator} {notice.threshold:g}",
                "alert_id": str(notice.alert_id),
                "device": notice.device,
                "device_id": str(notice.device_id),
                "metric": notice.metric,
                "kind": notice.kind.value,
                "change": notice.change.value,
            },
            "annotations": {
                "summary": notice.line(now),
                "event_id": str(notice.event_id),
            },
            "startsAt": notice.triggered_at.isoformat(),
            "endsAt": notice.resolved_at.isoformat()
            if notice.resolved_at is not None and not notice.firing
            else "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": notice.fingerprint(),
        }
        for notice in notices
    ]
    status = "firing" if any(notice.firing for notice in notices) else "resolved"
    common = {"receiver": receiver} if receiver else {}
    return {
        "version": "4",
        "groupKey": f"{{}}:{{receiver={receiver!r}}}:{ident}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
        "messageId": ident,
    }


class Disposal(enum.Enum):
    """What planning does with an outbox row."""

    PLAN = "plan"
    """Tell it now."""
    HOLD = "hold"
    """Hold it back: a silence covers it, or its device's no-data event."""
    WAIT = "wait"
    """Look again next round: its event's opening is still to be told, or not."""
    DROP = "drop"
    """Nothing left to tell: its event is gone, over, acknowledged, or was never told open."""


def disposal(
    change: Change,
    *,
    gone: bool,
    held: bool,
    was_held: bool,
    resolved: bool,
    acknowledged: bool,
    told_open: bool,
    opening_pending: bool = False,
) -> Disposal:
    """What to do with an outbox row of `change` whose event is `gone` (deleted), `resolved`,
    `acknowledged`, `told_open` (a message told it opened) or `opening_pending` (its opening
    waits in the outbox, held or being planned by another deliverer), which a silence or a
    no-data event holds back now (`held`) or did (`was_held`)."""
    if gone:
        return Disposal.DROP
    if held:
        return Disposal.HOLD
    if change is Change.RESOLVED:
        # A keeper never told an event opened needs no word that it is over.
        if told_open:
            return Disposal.PLAN
        return Disposal.WAIT if opening_pending else Disposal.DROP
    if was_held and (resolved or acknowledged):
        return Disposal.DROP  # over while held back, or someone is on it already
    return Disposal.PLAN


def holds(
    silences: Iterable[Silence],
    silent_devices: Collection[int],
    alert_id: int,
    device_id: int,
    kind: EventKind,
    at: datetime,
) -> bool:
    """Whether a silence holds back an alert's notifications at `at`, or, for a threshold
    event, its device's open no-data event (a dead probe's last value pages nobody)."""
    if covering(silences, alert_id, device_id, at) is not None:
        return True
    return kind is EventKind.THRESHOLD and device_id in silent_devices


@attrs.frozen
class Silence:
    """Maintenance: nothing is sent about an alert's, a device's or every alert's events
    from `starts_at` until `ends_at`."""

    id: int
    device_id: int | None
    alert_id: int | None
    """Both None: every alert."""
    starts_at: datetime
    ends_at: datetime
    reason: str | None = None

    def covers(self, alert_id: int, device_id: int, at: datetime) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        if self.alert_id is not None:
            return self.alert_id == alert_id
        return self.device_id is None or self.device_id == device_id

    def describe(self) -> str:
        if self.alert_id is not None:
            target = f"alert {self.alert_id}"
        elif self.device_id is not None:
            target = f"device {self.device_id}"
        else:
            target = "every alert"
        reason = f" ({self.reason})" if self.reason else ""
        return f"silence {self.id}: {target} until {_when(self.ends_at)}{reason}"


def covering(
    silences: Iterable[Silence], alert_id: int, device_id: int, at: datetime
) -> Silence | None:
    """The first of `silences` that covers the alert's events at `at`, if any."""
    return next((s for s in silences if s.covers(alert_id, device_id, at)), None)


@attrs.frozen
class DeliveryPolicy:
    """How delivery retries, limits and reminds (docs/notifications.md)."""

    first_retry: timedelta = timedelta(seconds=30)
    longest_retry: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)
    """A message not sent by this age is failed."""
    per_hour: int = 20
    """The most messages a channel gets an hour; beyond, changes fold into the next one."""
    repeat_interval: timedelta | None = timedelta(hours=4)
    """Remind of an open, unacknowledged event this often; None: never."""
    escalate_after: timedelta | None = None
    """Escalate an event still unacknowledged after this; None: never."""
    timeout: timedelta = timedelta(seconds=10)
    """The longest one send may take."""

    def describe(self) -> str:
        """The policy for a person, on one line."""
        repeat = "never" if self.repeat_interval is None else format_duration(self.repeat_interval)
        escalate = "never" if self.escalate_after is None else format_duration(self.escalate_after)
        return (
            f"remind every {repeat}, escalate after {escalate}, at most {self.per_hour} "
            f"messages a channel an hour, give up after {format_duration(self.give_up_after)}, "
            f"timeout {format_duration(self.timeout)}"
        )

    def retry_at(self, now: datetime, attempts: int, jitter: float) -> datetime:
        """When to try again after the `attempts`-th failed attempt: 30 s doubling each time,
        at most an hour, give or take a fifth (`jitter` in [0, 1)), so that the messages of one
        outage do not all come back at once."""
        delay = min(
            self.first_retry.total_seconds() * 2 ** min(attempts - 1, 30),
            self.longest_retry.total_seconds(),
        )
        return now + timedelta(seconds=delay * (0.8 + 0.4 * jitter))

    def gives_up(self, created_at: datetime, now: datetime) -> bool:
        return now - created_at >= self.give_up_after

    def next_slot(self, recent: Sequence[datetime], now: datetime) -> datetime:
        """When a channel may get its next message, given when its messages of the last hour
        were made: now, unless it had `per_hour` of them."""
        hour = timedelta(hours=1)
        within = sorted(at for at in recent if at > now - hour)
        if len(within) < self.per_hour:
            return now
        return within[len(within) - self.per_hour] + hour


def _number(value: float | None, unit: str | None) -> str:
    if value is None:
        return "no value"
    shown = f"{value:g}"
    return f"{shown} {unit}" if unit else shown


def _when(at: datetime | str) -> str:
    if isinstance(at, str):
        try:
            return _when(datetime.fromisoformat(at))
        except ValueError:
            return at
    return f"{at:%Y-%m-%d %H:%M} UTC"
