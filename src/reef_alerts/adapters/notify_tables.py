"""The worker's notification tables (issue 15, ADR 24), created by `db upgrade` (migration 0006)
beside its other tables: channels, the outbox the cycle writes, the messages delivery sends,
acknowledgements and reminders, silences. The web app never reads them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from reef_alerts.adapters.tables import UTCDateTime, worker_metadata

_Id = BigInteger().with_variant(Integer(), "sqlite")
"""A row id that may pass 2**31: SQLite's INTEGER PRIMARY KEY is 64-bit already, and only it
hands out ids by itself."""

channels = Table(
    "reef_alerts_channels",
    worker_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Where notifications go: an apprise URL each (docs/notifications.md). `tags`: a list of
strings; a channel tagged `escalation` gets escalations (and the rest only where no channel is
untagged)."""

outbox = Table(
    "reef_alerts_outbox",
    worker_metadata,
    Column("id", _Id, primary_key=True),
    Column("event_id", Integer, nullable=False),
    Column("change", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(8), nullable=False, server_default="new"),
    Index("ix_reef_alerts_outbox_state", "state"),
    Index("ix_reef_alerts_outbox_event", "event_id"),
)
"""One row per event change worth telling, written in the transaction that makes the change
(opened, resolved) or by delivery's planning (reminder, escalation). `state`: `new` until
planned into messages, `held` while a silence or the device's no-data event holds it back,
`planned` once in messages, `dropped` when there was nothing left to tell."""

notifications = Table(
    "reef_alerts_notifications",
    worker_metadata,
    Column("id", _Id, primary_key=True),
    Column("channel", String(100), nullable=False),
    Column("item_ids", JSON, nullable=False),
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),
    Column("claim", String(32)),
    Column("sent_at", UTCDateTime),
    Column("title", Text),
    Column("last_error", Text),
    Index("ix_reef_alerts_notifications_due", "state", "next_attempt_at"),
    Index("ix_reef_alerts_notifications_channel", "channel", "created_at"),
)
"""One message to one channel; its id is the message's stable id, which every attempt carries.
`item_ids`: the outbox rows it tells. `state`: `pending` (to send: at `next_attempt_at`,
unless a deliverer has claimed it until `claimed_until`; `claim` names that claim, so that only
its holder marks it), `sent` or `failed`."""

event_notices = Table(
    "reef_alerts_event_notices",
    worker_metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=False),
    Column("told_at", UTCDateTime),
    Column("remind_at", UTCDateTime),
    Column("escalate_at", UTCDateTime),
    Column("acked_at", UTCDateTime),
    Column("acked_by", String(100)),
    Column("ack_note", Text),
    Index("ix_reef_alerts_event_notices_remind_at", "remind_at"),
    Index("ix_reef_alerts_event_notices_escalate_at", "escalate_at"),
)
"""What delivery remembers of an event: when a message first told it open (NULL: never, for an
event acknowledged before it was told), when to remind, when to escalate (NULL: never, or
done), and its acknowledgement."""

silences = Table(
    "reef_alerts_silences",
    worker_metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer),
    Column("alert_id", Integer),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("reason", Text),
    CheckConstraint(
        "device_id IS NULL OR alert_id IS NULL", name="ck_reef_alerts_silences_one_target"
    ),
    Index("ix_reef_alerts_silences_ends_at", "ends_at"),
)
"""Maintenance: nothing is sent about the device's or alert's events (both NULL: every alert)
from `starts_at` until `ends_at`."""

notify_rules = Table(
    "reef_alerts_notify_rules",
    worker_metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=False),
    Column("repeat_interval_seconds", Float),
    Column("escalate_after_seconds", Float),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("repeat_interval_seconds >= 0", name="ck_reef_alerts_notify_rules_repeat"),
    CheckConstraint("escalate_after_seconds >= 0", name="ck_reef_alerts_notify_rules_escalate"),
)
"""An alert's notification options: NULL is the worker's default, 0 never. Removed with its
alert, like the rules table."""

NOTIFY_TABLES = (channels, outbox, notifications, event_notices, silences)
"""The notification tables keyed by no alert."""
NOTIFY_KEYED = (notify_rules,)
"""The notification tables keyed by an alert, removed with it."""
