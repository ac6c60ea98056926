"""Notification ports (issue 15): the outbox delivery plans messages from and claims them in,
and the sender that takes a message to a channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from reef_alerts.domain.notices import DeliveryPolicy, Message, Notice

ESCALATION_TAG = "escalation"
"""A channel tagged so gets escalations (and the rest only where no channel is untagged)."""


@attrs.frozen
class Channel:
    """Where messages go: an apprise URL (docs/notifications.md)."""

    name: str
    url: str
    tags: tuple[str, ...] = ()
    from_environment: bool = False
    """From REEF_ALERTS_NOTIFY_URLS, not the channels table."""

    @property
    def escalation(self) -> bool:
        return ESCALATION_TAG in self.tags


def recipients(channels: Sequence[Channel], escalation: bool) -> list[Channel]:
    """The channels an escalation, or any other change, goes to: escalations to the channels
    tagged `escalation`, the rest to the others; to every channel where none is of its kind,
    so that nothing is lost for want of a tag."""
    chosen = [channel for channel in channels if channel.escalation == escalation]
    return chosen or list(channels)


@attrs.frozen
class Claimed:
    """A message a deliverer has claimed, to send now."""

    number: int
    """The message's row id, which its stable id is made of."""
    token: str
    """This claim's: a deliverer marks only the messages it still holds."""
    channel: str
    notices: Sequence[Notice]
    """What it tells; empty when its events are gone."""
    attempts: int
    """Its attempts, this one included."""
    created_at: datetime


@attrs.frozen
class Planned:
    """What a round of planning did."""

    messages: int = 0
    """Messages made."""
    folded: int = 0
    """Messages that took more changes, a channel being at its rate limit."""
    held: int = 0
    """Changes held back by a silence or the device's no-data event."""
    dropped: int = 0
    """Held changes with nothing left to tell when their hold ended."""
    waiting: int = 0
    """Changes that wait for a channel to be configured."""


class Outbox(Protocol):
    """The outbox and the messages planned from it, shared by every deliverer."""

    def channels(self) -> list[Channel]:
        """The configured channels: the table's and the environment's."""
        ...

    def plan(self, now: datetime, policy: DeliveryPolicy) -> Planned:
        """In one transaction: add the reminders and escalations now due; hold back or release
        the changes silences and no-data events hold; group the rest into one message per
        channel, folding into the channel's next message beyond its rate limit. Changes another
        deliverer is planning are left to it."""
        ...

    def claim(self, now: datetime, until: datetime, limit: int) -> list[Claimed]:
        """Up to `limit` messages due at `now`, claimed until `until`, committed: another
        deliverer skips them, and takes them again after `until` if this one died."""
        ...

    def sent(self, claimed: Claimed, now: datetime, title: str) -> bool:
        """Mark it sent; False, marking nothing, when its claim ran out and another deliverer
        took it over."""
        ...

    def retry(self, claimed: Claimed, at: datetime, error: str, title: str) -> bool:
        """Release the claim; try again at `at`. False as for `sent`."""
        ...

    def fail(self, claimed: Claimed, now: datetime, error: str, title: str) -> bool:
        """Give up on the message. False as for `sent`."""
        ...


class Sender(Protocol):
    """Takes a message to a channel."""

    def send(self, channel: Channel, message: Message, timeout: timedelta) -> str | None:
        """Send; None once the channel took it, else why not, on one line, without secrets."""
        ...
