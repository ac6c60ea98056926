"""Delivery (issue 15): plan the outbox's changes into messages, send those due, retry what
failed with backoff, give up on what is too old. At least once: a message is marked sent only
after its channel took it."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta

import attrs

from reef_alerts.domain.notices import DeliveryPolicy, compose, message_id
from reef_alerts.ports import Clock
from reef_alerts.ports.notifying import Channel, Claimed, Outbox, Planned, Sender

CLAIM_SLACK = timedelta(seconds=30)
"""How much longer than a send's timeout a claim lasts: a deliverer that died mid-send leaves
its messages to another this long after."""


@attrs.define
class DeliveryStats:
    """What one round did."""

    planned: Planned = attrs.field(factory=Planned)
    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.retried + self.failed


class Deliver:
    """Use case: one round of delivery."""

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        clock: Clock,
        policy: DeliveryPolicy,
        log: logging.Logger,
        *,
        batch: int = 1,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """`batch`: messages claimed at a time, each for one send's timeout (plus slack) from
        the claim, so more than one only where sends are quick; `jitter`: a number in [0, 1)
        for each retry's delay."""
        self._outbox = outbox
        self._sender = sender
        self._clock = clock
        self._policy = policy
        self._log = log
        self._batch = batch
        self._jitter = jitter
        self._said_waiting = False

    def __call__(self) -> DeliveryStats:
        """Plan, then send every message due, a batch at a time."""
        planned = self._outbox.plan(self._clock.now(), self._policy)
        stats = DeliveryStats(planned)
        self._say(planned)
        channels = {channel.name: channel for channel in self._outbox.channels()}
        while True:
            now = self._clock.now()
            claimed = self._outbox.claim(now, now + self._policy.timeout + CLAIM_SLACK, self._batch)
            for message in claimed:
                self._send(message, channels.get(message.channel), stats)
            if len(claimed) < self._batch:
                return stats

    def _say(self, planned: Planned) -> None:
        if planned.waiting and not self._said_waiting:
            self._said_waiting = True
            self._log.warning(
                "%d event changes wait in the outbox: no notification channel is configured "
                "(`reef-alerts channels add`, or REEF_ALERTS_NOTIFY_URLS)",
                planned.waiting,
            )
        elif planned.messages or planned.folded:
            self._said_waiting = False
            self._log.debug(
                "Planned %d messages (%d folded into a channel's next, at its rate limit)",
                planned.messages,
                planned.folded,
            )

    def _send(self, claimed: Claimed, channel: Channel | None, stats: DeliveryStats) -> None:
        ident = message_id(claimed.number)
        now = self._clock.now()
        if not claimed.notices:
            self._outbox.sent(claimed, now, "(its events are gone)")
            self._log.info("Message %s: its events were deleted; nothing to send", ident)
            return
        message = compose(claimed.number, claimed.notices, claimed.channel, now)
        error: str | None
        if channel is None:
            error = f"channel {claimed.channel!r} is no longer configured"
        else:
            error = self._sender.send(channel, message, self._policy.timeout)
        now = self._clock.now()
        if error is None:
            kept = self._outbox.sent(claimed, now, message.title)
            stats.sent += 1
            self._log.info("Sent %s to %s: %s", ident, claimed.channel, message.title)
        elif self._policy.gives_up(claimed.created_at, now):
            kept = self._outbox.fail(claimed, now, error, message.title)
            stats.failed += 1
            self._log.error(
                "Gave up on %s to %s after %d attempts: %s",
                ident,
                claimed.channel,
                claimed.attempts,
                error,
            )
        else:
            at = self._policy.retry_at(now, claimed.attempts, self._jitter())
            kept = self._outbox.retry(claimed, at, error, message.title)
            stats.retried += 1
            self._log.warning(
                "Could not send %s to %s (attempt %d): %s; trying again at %s",
                ident,
                claimed.channel,
                claimed.attempts,
                error,
                f"{at:%H:%M:%S} UTC",
            )
        if not kept:
            self._log.warning(
                "%s: its claim ran out during the send and another deliverer took it over; "
                "its channel may get it twice (a send that outlasts REEF_ALERTS_NOTIFY_TIMEOUT)",
                ident,
            )
