"""The notification outbox in SQL (issue 15, ADR 24): planning messages from the rows the cycle
wrote, claiming them for sending, recording how it went. A constant number of statements per
round on either database; PostgreSQL's claims skip rows another deliverer has locked."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, assert_never

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from reef_alerts.adapters.notify_tables import (
    channels,
    event_notices,
    notifications,
    notify_rules,
    outbox,
    silences,
)
from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.tables import SharedTables
from reef_alerts.domain import EventKind
from reef_alerts.domain.notices import (
    Change,
    DeliveryPolicy,
    Disposal,
    Notice,
    Silence,
    disposal,
    holds,
)
from reef_alerts.ports.notifying import Channel, Claimed, Planned, recipients

PLAN_LIMIT = 10_000
"""The most new outbox rows one round plans, and held ones it looks at again; the rest wait
for the next round."""
HELD_RECHECK = timedelta(minutes=5)
"""How long an escalation due while a hold lasts is put off before it is looked at again; and
the least time an event told late gets before its escalation."""


class NoOutboxError(Exception):
    """The database has no notification tables: `db upgrade` has not been run since they came."""

    def __init__(self) -> None:
        super().__init__(
            "this database has no notification tables; `reef-alerts db upgrade` adds them"
        )


def has_outbox(engine: Engine) -> bool:
    """Whether `db upgrade` has made the notification tables here."""
    with engine.connect() as connection:
        return outbox.name in inspect(connection).get_table_names()


def require_outbox(connection: Connection) -> None:
    """Raise NoOutboxError where the notification tables are not there."""
    if outbox.name not in inspect(connection).get_table_names():
        raise NoOutboxError


def upsert(connection: Connection, table: Table) -> Any:
    """An INSERT of `table` in the connection's dialect, which has ON CONFLICT."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


def silence_of(row: Any) -> Silence:
    """A row of the silences table as the domain's Silence."""
    return Silence(row.id, row.device_id, row.alert_id, row.starts_at, row.ends_at, row.reason)


class SqlOutbox:
    """The Outbox port on the worker's notification tables."""

    def __init__(
        self,
        engine: Engine,
        log: logging.Logger,
        environment: Sequence[Channel] = (),
        tables: SharedTables | None = None,
    ) -> None:
        """`environment`: the channels REEF_ALERTS_NOTIFY_URLS gives, beside the table's."""
        self._engine = engine
        self._log = log
        self._environment = list(environment)
        self._tables = tables

    def channels(self) -> list[Channel]:
        with self._engine.connect() as connection:
            return self._channels(connection)

    def plan(self, now: datetime, policy: DeliveryPolicy) -> Planned:
        with self._engine.begin() as connection:
            tables = self._shared(connection)
            found = self._channels(connection)
            if not found:
                waiting = connection.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.state == "new")
                )
                return Planned(waiting=waiting or 0)
            active = [
                silence_of(row)
                for row in connection.execute(
                    select(silences).where(silences.c.ends_at > now, silences.c.starts_at <= now)
                )
            ]
            self._remind(connection, tables, active, now, policy)
            return self._plan(connection, tables, found, active, now, policy)

    def claim(self, now: datetime, until: datetime, limit: int) -> list[Claimed]:
        token = uuid.uuid4().hex
        with self._engine.begin() as connection:
            tables = self._shared(connection)
            rows = connection.execute(
                select(
                    notifications.c.id,
                    notifications.c.channel,
                    notifications.c.item_ids,
                    notifications.c.attempts,
                    notifications.c.created_at,
                )
                .where(
                    notifications.c.state == "pending",
                    notifications.c.next_attempt_at <= now,
                    or_(
                        notifications.c.claimed_until.is_(None),
                        notifications.c.claimed_until <= now,
                    ),
                )
                .order_by(notifications.c.next_attempt_at, notifications.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return []
            connection.execute(
                update(notifications)
                .where(notifications.c.id.in_([row.id for row in rows]))
                .values(claimed_until=until, claim=token, attempts=notifications.c.attempts + 1)
            )
            items = {row.id: _ids(row.item_ids) for row in rows}
            notices = _notices(connection, tables, [i for ids in items.values() for i in ids])
        return [
            Claimed(
                row.id,
                token,
                row.channel,
                [notices[i] for i in items[row.id] if i in notices],
                row.attempts + 1,
                row.created_at,
            )
            for row in rows
        ]

    def sent(self, claimed: Claimed, now: datetime, title: str) -> bool:
        return self._finish(claimed, state="sent", sent_at=now, title=title, last_error=None)

    def retry(self, claimed: Claimed, at: datetime, error: str, title: str) -> bool:
        return self._finish(
            claimed, state="pending", next_attempt_at=at, title=title, last_error=error
        )

    def fail(self, claimed: Claimed, now: datetime, error: str, title: str) -> bool:
        return self._finish(claimed, state="failed", title=title, last_error=error)

    def _finish(self, claimed: Claimed, **values: Any) -> bool:
        with self._engine.begin() as connection:
            marked = connection.execute(
                update(notifications)
                .where(notifications.c.id == claimed.number, notifications.c.claim == claimed.token)
                .values(claimed_until=None, claim=None, **values)
            ).rowcount
        return bool(marked)

    def _shared(self, connection: Connection) -> SharedTables:
        if self._tables is None:
            require_outbox(connection)
            self._tables = detect_tables(connection)
        return self._tables

    def _channels(self, connection: Connection) -> list[Channel]:
        rows = connection.execute(
            select(channels.c.name, channels.c.url, channels.c.tags).order_by(channels.c.name)
        ).all()
        stored = [Channel(row.name, row.url, tuple(row.tags or ())) for row in rows]
        return [*self._environment, *stored]

    def _remind(
        self,
        connection: Connection,
        tables: SharedTables,
        active: list[Silence],
        now: datetime,
        policy: DeliveryPolicy,
    ) -> None:
        """Outbox rows for the reminders and escalations due: open, unacknowledged events
        whose instant has come. One a hold covers is put off instead: a silenced or silent
        probe's event is told once, when the hold ends."""
        events = tables.alert_events
        due = connection.execute(
            select(
                event_notices.c.event_id,
                event_notices.c.remind_at,
                event_notices.c.escalate_at,
                events.c.alert_id,
                events.c.device_id,
                events.c.is_resolved,
                tables.event_kind.label("kind"),
                notify_rules.c.repeat_interval_seconds,
            )
            .select_from(
                event_notices.outerjoin(events, events.c.id == event_notices.c.event_id).outerjoin(
                    notify_rules, notify_rules.c.alert_id == events.c.alert_id
                )
            )
            .where(
                event_notices.c.acked_at.is_(None),
                or_(event_notices.c.remind_at <= now, event_notices.c.escalate_at <= now),
            )
            .with_for_update(of=event_notices, skip_locked=True)
        ).all()
        if not due:
            return
        silent = _silent_devices(connection, tables, {row.device_id for row in due})
        new_rows: list[dict[str, Any]] = []
        instants: list[dict[str, Any]] = []
        for row in due:
            if row.is_resolved is not False:  # resolved, or gone: nothing more to tell
                instants.append({"id": row.event_id, "remind": None, "escalate": None})
                continue
            held = holds(active, silent, row.alert_id, row.device_id, _kind(row.kind), now)
            remind, escalate = row.remind_at, row.escalate_at
            if remind is not None and remind <= now:
                if not held:
                    new_rows.append({"event_id": row.event_id, "change": Change.REMINDER.value})
                repeat = _seconds(row.repeat_interval_seconds, policy.repeat_interval)
                remind = None if repeat is None else now + repeat
            if escalate is not None and escalate <= now:
                if held:
                    escalate = now + HELD_RECHECK
                else:
                    new_rows.append({"event_id": row.event_id, "change": Change.ESCALATION.value})
                    escalate = None
            instants.append({"id": row.event_id, "remind": remind, "escalate": escalate})
        if new_rows:
            connection.execute(insert(outbox).values(created_at=now), new_rows)
        connection.execute(
            update(event_notices)
            .where(event_notices.c.event_id == bindparam("id"))
            .values(remind_at=bindparam("remind"), escalate_at=bindparam("escalate")),
            instants,
        )

    def _plan(
        self,
        connection: Connection,
        tables: SharedTables,
        found: list[Channel],
        active: list[Silence],
        now: datetime,
        policy: DeliveryPolicy,
    ) -> Planned:
        """Hold, drop or plan the new rows, and look again at the held ones, new ones first so
        that a long hold never keeps other devices' changes waiting."""
        rows = [*_claim_rows(connection, tables, "new"), *_claim_rows(connection, tables, "held")]
        if not rows:
            return Planned()
        silent = _silent_devices(connection, tables, {row.device_id for row in rows})
        told_open, acknowledged = _told(connection, {row.event_id for row in rows})
        # An event's opening before its resolution, whether each is new or held.
        rows = sorted(rows, key=lambda row: row.id)
        planned_here = {row.event_id: row.id for row in rows if row.change == Change.OPENED.value}
        pending = _openings_pending(
            connection,
            {r.event_id for r in rows if r.change == Change.RESOLVED.value} - told_open,
        )
        chosen: list[Any] = []
        moved: dict[str, list[int]] = {"held": [], "dropped": []}
        for row in rows:
            change = Change(row.change)
            gone = row.alert_id is None  # the web app deleted the event
            verdict = disposal(
                change,
                gone=gone,
                held=not gone
                and holds(active, silent, row.alert_id, row.device_id, _kind(row.kind), now),
                was_held=row.state == "held",
                resolved=bool(row.is_resolved),
                acknowledged=row.event_id in acknowledged,
                told_open=row.event_id in told_open,
                # Held, or locked by another deliverer planning it now: not dropped unseen.
                opening_pending=row.event_id in pending and planned_here.get(row.event_id) is None,
            )
            match verdict:
                case Disposal.PLAN:
                    chosen.append(row)
                    if change is Change.OPENED:
                        told_open.add(row.event_id)
                case Disposal.HOLD:
                    if row.state != "held":
                        moved["held"].append(row.id)
                case Disposal.DROP:
                    moved["dropped"].append(row.id)
                case Disposal.WAIT:
                    pass  # looked at again next round
                case _:
                    assert_never(verdict)
        made, folded = self._messages(connection, found, chosen, now, policy)
        self._remember(connection, [row for row in chosen if row.change == "opened"], now, policy)
        moved["planned"] = [row.id for row in chosen]
        for state, ids in moved.items():
            if ids:
                connection.execute(update(outbox).where(outbox.c.id.in_(ids)).values(state=state))
        return Planned(made, folded, len(moved["held"]), len(moved["dropped"]))

    def _messages(
        self,
        connection: Connection,
        found: list[Channel],
        chosen: list[Any],
        now: datetime,
        policy: DeliveryPolicy,
    ) -> tuple[int, int]:
        """One message per channel for the `chosen` rows, each to its recipients; the channel's
        next one, not yet tried, beyond its rate limit."""
        wanted: dict[str, list[int]] = {}
        for row in chosen:
            escalation = row.change == Change.ESCALATION.value
            for channel in recipients(found, escalation):
                wanted.setdefault(channel.name, []).append(row.id)
        made = folded = 0
        for name, ids in wanted.items():
            recent = connection.scalars(
                select(notifications.c.created_at).where(
                    notifications.c.channel == name,
                    notifications.c.created_at > now - timedelta(hours=1),
                )
            ).all()
            slot = policy.next_slot(recent, now)
            if slot > now and self._fold(connection, name, ids):
                folded += 1
                continue
            connection.execute(
                insert(notifications).values(
                    channel=name,
                    item_ids=ids,
                    state="pending",
                    attempts=0,
                    created_at=slot,
                    next_attempt_at=slot,
                )
            )
            made += 1
        return made, folded

    @staticmethod
    def _fold(connection: Connection, name: str, ids: list[int]) -> bool:
        """Add `ids` to the channel's newest message not yet tried; False where there is none.
        A message tried once is never changed: a retry carries what the first attempt did."""
        waiting = connection.execute(
            select(notifications.c.id, notifications.c.item_ids)
            .where(
                notifications.c.channel == name,
                notifications.c.state == "pending",
                notifications.c.attempts == 0,
                notifications.c.claimed_until.is_(None),
            )
            .order_by(notifications.c.id.desc())
            .limit(1)
            .with_for_update()
        ).first()
        if waiting is None:
            return False
        connection.execute(
            update(notifications)
            .where(notifications.c.id == waiting.id)
            .values(item_ids=[*_ids(waiting.item_ids), *ids])
        )
        return True

    @staticmethod
    def _remember(
        connection: Connection, opened: list[Any], now: datetime, policy: DeliveryPolicy
    ) -> None:
        """When to remind of and escalate the events told open, by their alerts' options."""
        if not opened:
            return
        options = {
            row.alert_id: row
            for row in connection.execute(
                select(notify_rules).where(
                    notify_rules.c.alert_id.in_({row.alert_id for row in opened})
                )
            )
        }
        values = []
        for row in opened:
            own = options.get(row.alert_id)
            repeat = _seconds(
                None if own is None else own.repeat_interval_seconds, policy.repeat_interval
            )
            escalate = _seconds(
                None if own is None else own.escalate_after_seconds, policy.escalate_after
            )
            values.append(
                {
                    "event_id": row.event_id,
                    "told_at": now,
                    "remind_at": None if repeat is None else now + repeat,
                    # An event told late (held back) gets a while to be acknowledged first.
                    "escalate_at": None
                    if escalate is None
                    else max(row.triggered_at + escalate, now + min(escalate, HELD_RECHECK)),
                }
            )
        # An event acknowledged before it was told keeps its acknowledgement, and needs no
        # reminders: only when it was told is recorded.
        statement = upsert(connection, event_notices)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[event_notices.c.event_id],
                set_={"told_at": statement.excluded.told_at},
            ),
            values,
        )


def _claim_rows(connection: Connection, tables: SharedTables, state: str) -> Sequence[Any]:
    """Up to PLAN_LIMIT outbox rows in `state` with their events, locked for this round (a
    deliverer planning at the same time skips them)."""
    events = tables.alert_events
    return connection.execute(
        select(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.change,
            outbox.c.state,
            events.c.alert_id,
            events.c.device_id,
            events.c.triggered_at,
            events.c.is_resolved,
            tables.event_kind.label("kind"),
        )
        .select_from(outbox.outerjoin(events, events.c.id == outbox.c.event_id))
        .where(outbox.c.state == state)
        .order_by(outbox.c.id)
        .limit(PLAN_LIMIT)
        .with_for_update(of=outbox, skip_locked=True)
    ).all()


def _told(connection: Connection, event_ids: set[int]) -> tuple[set[int], set[int]]:
    """Those of the events a message told open, and those acknowledged."""
    if not event_ids:
        return set(), set()
    rows = connection.execute(
        select(event_notices.c.event_id, event_notices.c.told_at, event_notices.c.acked_at).where(
            event_notices.c.event_id.in_(event_ids)
        )
    ).all()
    return (
        {row.event_id for row in rows if row.told_at is not None},
        {row.event_id for row in rows if row.acked_at is not None},
    )


def _openings_pending(connection: Connection, event_ids: set[int]) -> set[int]:
    """Those of the events whose opening still waits in the outbox: held, or new (perhaps
    locked by another deliverer planning it this moment)."""
    if not event_ids:
        return set()
    return set(
        connection.scalars(
            select(outbox.c.event_id).where(
                outbox.c.event_id.in_(event_ids),
                outbox.c.change == Change.OPENED.value,
                outbox.c.state.in_(("new", "held")),
            )
        )
    )


def _seconds(stored: float | None, default: timedelta | None) -> timedelta | None:
    """An option as stored (NULL: the default; 0: never)."""
    if stored is None:
        return default
    return timedelta(seconds=stored) if stored > 0 else None


def _kind(value: Any) -> EventKind:
    try:
        return EventKind(value)
    except ValueError:
        return EventKind.THRESHOLD


def _ids(items: Any) -> list[int]:
    if isinstance(items, str):
        items = json.loads(items)
    return [int(item) for item in items]


def _silent_devices(
    connection: Connection, tables: SharedTables, devices: Iterable[int | None]
) -> set[int]:
    """Those of `devices` with an open no-data event."""
    wanted = [device for device in devices if device is not None]
    if not wanted:
        return set()
    events = tables.alert_events
    return set(
        connection.scalars(
            select(events.c.device_id)
            .where(
                events.c.device_id.in_(wanted),
                tables.open_event_predicate,
                tables.event_kind == EventKind.NO_DATA.value,
            )
            .distinct()
        )
    )


def _notices(connection: Connection, tables: SharedTables, ids: list[int]) -> dict[int, Notice]:
    """The outbox rows `ids` with their events' facts, by row id; rows whose event is gone are
    left out."""
    if not ids:
        return {}
    events, devices = tables.alert_events, tables.devices
    rows = connection.execute(
        select(
            outbox.c.id.label("item_id"),
            outbox.c.change,
            events.c.id.label("event_id"),
            events.c.alert_id,
            events.c.device_id,
            events.c.metric,
            events.c.operator,
            events.c.threshold_value,
            events.c.current_value,
            events.c.triggered_at,
            events.c.resolved_at,
            events.c.resolution_value,
            events.c.metadata_,
            devices.c.name.label("device_name"),
            devices.c.unit,
        )
        .select_from(
            outbox.join(events, events.c.id == outbox.c.event_id).outerjoin(
                devices, devices.c.id == events.c.device_id
            )
        )
        .where(outbox.c.id.in_(set(ids)))
    ).all()
    return {row.item_id: _notice(row) for row in rows}


def _notice(row: Any) -> Notice:
    metadata = row.metadata_
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = None
    meta: Mapping[str, Any] = metadata if isinstance(metadata, dict) else {}
    name = row.device_name or meta.get("device_name") or f"device {row.device_id}"
    unit = meta.get("unit") if isinstance(meta.get("unit"), str) else row.unit
    return Notice(
        item_id=row.item_id,
        change=Change(row.change),
        event_id=row.event_id,
        alert_id=row.alert_id,
        device_id=row.device_id,
        device=str(name),
        kind=_kind(meta.get("kind", EventKind.THRESHOLD.value)),
        metric=str(row.metric),
        operator=str(row.operator).strip(),
        threshold=float(row.threshold_value),
        value=row.current_value,
        unit=unit if isinstance(unit, str) and unit else None,
        triggered_at=row.triggered_at,
        resolved_at=row.resolved_at,
        resolution_value=row.resolution_value,
        metadata=dict(meta),
    )
