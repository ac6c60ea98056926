"""What a keeper manages of notifications from the CLI and the router (issue 15): channels,
acknowledgements, silences, per-alert options, and the messages sent or failed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import attrs
from sqlalchemy import Connection, Engine, func, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError

from reef_alerts.adapters.notify_tables import (
    channels,
    event_notices,
    notifications,
    notify_rules,
    outbox,
    silences,
)
from reef_alerts.adapters.outbox import require_outbox, silence_of, upsert
from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.senders import check_url, masked
from reef_alerts.domain.notices import Silence, message_id
from reef_alerts.ports.notifying import Channel

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""A channel's name: what `channels test` and `channels remove` take."""


ENVIRONMENT_PREFIX = "env-"
"""REEF_ALERTS_NOTIFY_URLS' channels are env-1, env-2, ...: no stored channel may take their
names, or it would take their messages."""


class NotifyAdminError(Exception):
    """What a keeper asked cannot be done, said in one line."""


class NoSuchEventError(NotifyAdminError, LookupError):
    """No event has the id given."""


@attrs.frozen
class ShownChannel:
    name: str
    url: str
    """Masked."""
    tags: tuple[str, ...]
    source: str
    """"table" or "environment"."""


@attrs.frozen
class ShownMessage:
    id: str
    channel: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    title: str | None
    last_error: str | None
    events: int


@attrs.frozen
class Acknowledged:
    event_id: int
    alert_id: int
    at: datetime
    by: str | None
    note: str | None
    earlier: bool = False
    """It was acknowledged before: this is that acknowledgement, unchanged."""


def add_channel(
    engine: Engine, name: str, url: str, tags: Sequence[str], now: datetime
) -> ShownChannel:
    """Store a channel (its tags in lower case); raises NotifyAdminError for a taken or bad
    name, InvalidChannelError for a URL apprise does not take."""
    url, tags = url.strip(), [tag.lower() for tag in tags]
    if not NAME.fullmatch(name):
        raise NotifyAdminError(
            f"{name!r} is not a channel name: letters, digits, '_', '.' and '-', at most 100"
        )
    if name.startswith(ENVIRONMENT_PREFIX):
        raise NotifyAdminError(
            f"{name}: names starting with {ENVIRONMENT_PREFIX} are REEF_ALERTS_NOTIFY_URLS' "
            "channels; choose another --name"
        )
    shown = check_url(url)
    with engine.begin() as connection:
        require_outbox(connection)
        try:
            connection.execute(
                insert(channels).values(name=name, url=url, tags=list(tags), created_at=now)
            )
        except IntegrityError:
            raise NotifyAdminError(
                f"a channel named {name} exists; remove it first, or choose another --name"
            ) from None
    return ShownChannel(name, shown, tuple(tags), "table")


def list_channels(engine: Engine, environment: Sequence[Channel]) -> list[ShownChannel]:
    with engine.connect() as connection:
        require_outbox(connection)
        rows = connection.execute(select(channels).order_by(channels.c.name)).all()
    return [
        *(ShownChannel(c.name, masked(c.url), c.tags, "environment") for c in environment),
        *(ShownChannel(r.name, masked(r.url), tuple(r.tags or ()), "table") for r in rows),
    ]


def find_channel(engine: Engine, name: str, environment: Sequence[Channel]) -> Channel:
    for channel in environment:
        if channel.name == name:
            return channel
    with engine.connect() as connection:
        require_outbox(connection)
        row = connection.execute(select(channels).where(channels.c.name == name)).first()
    if row is None:
        raise NotifyAdminError(f"there is no channel {name}; `reef-alerts channels list`")
    return Channel(row.name, row.url, tuple(row.tags or ()))


def remove_channel(engine: Engine, name: str) -> None:
    with engine.begin() as connection:
        require_outbox(connection)
        removed = connection.execute(channels.delete().where(channels.c.name == name)).rowcount
    if not removed:
        raise NotifyAdminError(
            f"there is no channel {name} in the channels table; `reef-alerts channels list`"
        )


def users_channels(engine: Engine, smtp_url: str) -> list[tuple[str, str]]:
    """A channel (name, URL) for every active user with an email, through `smtp_url`; raises
    NotifyAdminError where there is no users table (the specification's schema)."""
    with engine.connect() as connection:
        tables = detect_tables(connection)
        users = tables.metadata.tables.get("users")
        if users is None or "users" not in inspect(connection).get_table_names():
            raise NotifyAdminError(
                "this database has no users table (the specification's schema); add each "
                "keeper's channel with `reef-alerts channels add URL --name NAME`"
            )
        rows = connection.execute(
            select(users.c.username, users.c.email)
            .where(users.c.email.is_not(None), users.c.email != "")
            .where(users.c.is_active.is_not(False))
            .order_by(users.c.id)
        ).all()
    joiner = "&" if "?" in smtp_url else "?"
    return [
        (f"user-{_slug(row.username)}", f"{smtp_url}{joiner}to={quote(row.email, safe='@')}")
        for row in rows
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:90] or "user"


def acknowledge(
    engine: Engine, event_id: int, now: datetime, by: str | None, note: str | None
) -> Acknowledged:
    """Stop the reminders and escalation of open event `event_id`."""
    with engine.begin() as connection:
        return acknowledge_on(connection, event_id, now, by, note)


def acknowledge_on(
    connection: Connection, event_id: int, now: datetime, by: str | None, note: str | None
) -> Acknowledged:
    """As acknowledge, in the caller's transaction (the web app's session). Raises
    NoSuchEventError, or NotifyAdminError for a resolved event or a database without the
    notification tables."""
    require_outbox(connection)
    events = detect_tables(connection).alert_events
    row = connection.execute(
        select(events.c.alert_id, events.c.is_resolved).where(events.c.id == event_id)
    ).first()
    if row is None:
        raise NoSuchEventError(f"there is no event {event_id}")
    if row.is_resolved:
        raise NotifyAdminError(f"event {event_id} is resolved: there is nothing to stop")
    values = {"acked_at": now, "acked_by": by, "ack_note": note}
    statement = upsert(connection, event_notices).values(event_id=event_id, **values)
    # Only where none is recorded yet: the first acknowledgement stands, it says who is on it,
    # even when two arrive at once.
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[event_notices.c.event_id],
            set_=values,
            where=event_notices.c.acked_at.is_(None),
        )
    )
    kept = connection.execute(
        select(event_notices.c.acked_at, event_notices.c.acked_by, event_notices.c.ack_note).where(
            event_notices.c.event_id == event_id
        )
    ).one()
    earlier = (kept.acked_at, kept.acked_by, kept.ack_note) != (now, by, note)
    return Acknowledged(
        event_id, row.alert_id, kept.acked_at, kept.acked_by, kept.ack_note, earlier
    )


def acknowledgements(engine: Engine) -> dict[int, list[Acknowledged]]:
    """The open events' acknowledgements, by alert id; none without the tables."""
    with engine.connect() as connection:
        if outbox.name not in inspect(connection).get_table_names():
            return {}
        events = detect_tables(connection).alert_events
        rows = connection.execute(
            select(
                event_notices.c.event_id,
                events.c.alert_id,
                event_notices.c.acked_at,
                event_notices.c.acked_by,
                event_notices.c.ack_note,
            )
            .join(events, events.c.id == event_notices.c.event_id)
            .where(event_notices.c.acked_at.is_not(None), events.c.is_resolved.is_not(True))
            .order_by(event_notices.c.event_id)
        ).all()
    found: dict[int, list[Acknowledged]] = {}
    for row in rows:
        found.setdefault(row.alert_id, []).append(
            Acknowledged(row.event_id, row.alert_id, row.acked_at, row.acked_by, row.ack_note)
        )
    return found


def add_silence(
    engine: Engine,
    now: datetime,
    length: timedelta,
    *,
    device_id: int | None = None,
    alert_id: int | None = None,
    reason: str | None = None,
) -> Silence:
    with engine.begin() as connection:
        require_outbox(connection)
        tables = detect_tables(connection)
        for table, wanted, what in (
            (tables.devices, device_id, "device"),
            (tables.alerts, alert_id, "alert"),
        ):
            if (
                wanted is not None
                and connection.scalar(select(table.c.id).where(table.c.id == wanted)) is None
            ):
                raise NotifyAdminError(f"there is no {what} {wanted}")
        ends = now + length
        silence_id = connection.execute(
            insert(silences)
            .values(
                device_id=device_id,
                alert_id=alert_id,
                starts_at=now,
                ends_at=ends,
                reason=reason,
            )
            .returning(silences.c.id)
        ).scalar_one()
    return Silence(silence_id, device_id, alert_id, now, ends, reason)


def list_silences(engine: Engine, now: datetime) -> list[Silence]:
    with engine.connect() as connection:
        require_outbox(connection)
        rows = connection.execute(
            select(silences).where(silences.c.ends_at > now).order_by(silences.c.id)
        ).all()
    return [silence_of(row) for row in rows]


def end_silence(engine: Engine, silence_id: int, now: datetime) -> None:
    with engine.begin() as connection:
        require_outbox(connection)
        ended = connection.execute(
            update(silences)
            .where(silences.c.id == silence_id, silences.c.ends_at > now)
            .values(ends_at=now)
        ).rowcount
    if not ended:
        raise NotifyAdminError(f"there is no silence {silence_id} in force")


def set_notify_rule(
    engine: Engine, alert_id: int, changes: Mapping[str, float | None], now: datetime
) -> dict[str, Any]:
    """Set an alert's repeat interval and escalation (seconds; None: the default; 0: never);
    its options as now stored."""
    with engine.begin() as connection:
        require_outbox(connection)
        alerts = detect_tables(connection).alerts
        if connection.scalar(select(alerts.c.id).where(alerts.c.id == alert_id)) is None:
            raise NotifyAdminError(f"there is no alert {alert_id}")
        names = ("repeat_interval_seconds", "escalate_after_seconds")
        current = connection.execute(
            select(*(notify_rules.c[n] for n in names)).where(notify_rules.c.alert_id == alert_id)
        ).first()
        values = dict(zip(names, current or (None, None), strict=True))
        values.update(changes)
        if all(value is None for value in values.values()):
            connection.execute(notify_rules.delete().where(notify_rules.c.alert_id == alert_id))
            return values
        statement = upsert(connection, notify_rules).values(
            alert_id=alert_id, updated_at=now, **values
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[notify_rules.c.alert_id], set_={**values, "updated_at": now}
            )
        )
    return values


def clear_notify_rule(engine: Engine, alert_id: int) -> bool:
    """Remove an alert's own notification options; whether it had any (none without the
    tables)."""
    with engine.begin() as connection:
        if notify_rules.name not in inspect(connection).get_table_names():
            return False
        removed = connection.execute(
            notify_rules.delete().where(notify_rules.c.alert_id == alert_id)
        ).rowcount
    return bool(removed)


def notify_rules_of(engine: Engine, alert_id: int | None = None) -> dict[int, dict[str, Any]]:
    """The alerts' own notification options (seconds; None: the default), by alert id: every
    alert that has some, or alert `alert_id`'s if it has; none without the tables."""
    with engine.connect() as connection:
        if notify_rules.name not in inspect(connection).get_table_names():
            return {}
        query = select(notify_rules).order_by(notify_rules.c.alert_id)
        if alert_id is not None:
            query = query.where(notify_rules.c.alert_id == alert_id)
        rows = connection.execute(query).all()
    return {
        row.alert_id: {
            "repeat_interval_seconds": row.repeat_interval_seconds,
            "escalate_after_seconds": row.escalate_after_seconds,
        }
        for row in rows
    }


def list_messages(engine: Engine, *, failed: bool, limit: int) -> list[ShownMessage]:
    with engine.connect() as connection:
        require_outbox(connection)
        query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if failed:
            query = query.where(notifications.c.state == "failed")
        rows = connection.execute(query).all()
    return [
        ShownMessage(
            message_id(row.id),
            row.channel,
            row.state,
            row.attempts,
            row.created_at,
            row.next_attempt_at,
            row.sent_at,
            row.title,
            row.last_error,
            len(row.item_ids or ()),
        )
        for row in rows
    ]


def outbox_waiting(engine: Engine) -> int:
    """Event changes not yet planned into messages (held ones included)."""
    with engine.connect() as connection:
        require_outbox(connection)
        return (
            connection.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.state.in_(("new", "held")))
            )
            or 0
        )
