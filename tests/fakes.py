"""In-memory fakes of the ports: a clock that tests move, and a transactional store.

`InMemoryStore` plays the database: tests seed it directly, as fixtures are inserted before the
worker starts; the application reaches it only through `FakeUnitOfWork`, which works on a private
copy of the tables from `with` until `commit()`, so leaving the block uncommitted discards its work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import attrs

from reef_alerts.domain import AlertEvent, Device, EventKind, Reading, Resolution
from reef_alerts.domain.notices import Silence
from reef_alerts.ports import (
    WHOLE,
    AlertSnapshot,
    AppliedChanges,
    EventChanges,
    EventWriter,
    Focus,
    LeaseKeeper,
    RecordedStatus,
    Shard,
    SnapshotReader,
    StateChange,
    StatusChange,
    StoredAlert,
    StoredRule,
    StoredTrend,
    TrendStateChange,
)

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
"""Where fake clocks start."""


class FakeClock:
    """A clock that stands still until a test sets or advances it."""

    def __init__(self, now: datetime = T0) -> None:
        self.set(now)

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        if now.utcoffset() is None:
            raise ValueError(f"a clock tells aware time, got naive {now.isoformat()}")
        self._now = now

    def advance(self, by: timedelta) -> None:
        self._now += by


@attrs.frozen
class AlertRow:
    """An `alerts` row as stored: operator and threshold raw, so tests can seed broken rows."""

    id: int
    device_id: int
    metric: str
    operator: str
    threshold: float | None
    enabled: bool | None = True
    """None: is_enabled is NULL, which the worker evaluates as enabled."""
    trend_enabled: bool = False


class DuplicateOpenEventError(Exception):
    """A test seeded a second open event for an alert, which the real schema forbids."""


class UnknownEventError(LookupError):
    """A resolution names an event that does not exist or belongs to another alert."""


@attrs.define
class Tables:
    """The rows of the four tables. Rows are frozen and replaced, never mutated in place."""

    devices: dict[int, Device] = attrs.Factory(dict)
    readings: dict[int, Reading] = attrs.Factory(dict)
    alerts: dict[int, AlertRow] = attrs.Factory(dict)
    events: dict[int, AlertEvent] = attrs.Factory(dict)
    next_event_id: int = 1
    statuses: dict[int, RecordedStatus] = attrs.Factory(dict)
    """The worker's status table: why an alert cannot be judged, and since when."""
    reasons: dict[int, str] = attrs.Factory(dict)
    """The reason column of the status table."""
    rules: dict[int, StoredRule] = attrs.Factory(dict)
    """The rules table: alerts' options."""
    states: dict[int, datetime] = attrs.Factory(dict)
    """The state table: when each pending alert's condition began to hold."""
    trend_rules: dict[int, StoredTrend] = attrs.Factory(dict)
    """The trend rules table: trend alerts' options."""
    trend_states: dict[int, tuple[datetime | None, datetime | None]] = attrs.Factory(dict)
    """The trend state table: (forecast_since, rate_since) by alert."""

    def copy(self) -> Tables:
        # copying the dicts is a full snapshot because no row is ever mutated
        return Tables(
            dict(self.devices),
            dict(self.readings),
            dict(self.alerts),
            dict(self.events),
            self.next_event_id,
            dict(self.statuses),
            dict(self.reasons),
            dict(self.rules),
            dict(self.states),
            dict(self.trend_rules),
            dict(self.trend_states),
        )

    def remember_trend(self, change: TrendStateChange) -> None:
        """Set or clear an alert's trend state, as the trend state table's writes do."""
        if change.forecast_since is None and change.rate_since is None:
            self.trend_states.pop(change.alert_id, None)
        elif change.alert_id in self.alerts:
            self.trend_states[change.alert_id] = (change.forecast_since, change.rate_since)

    def window(self, device_id: int, since: datetime, until: datetime) -> list[Reading]:
        """A device's timestamped readings in (since, until], oldest first."""
        return sorted(
            (
                r
                for r in self.readings.values()
                if r.device_id == device_id
                and r.timestamp is not None
                and since < r.timestamp <= until
            ),
            key=lambda r: (r.timestamp, r.id),
        )

    def remember(self, change: StateChange) -> None:
        """Set or clear an alert's state, as the state table's upsert and delete do; only for
        an alert that exists, as the SQL writers do."""
        if change.pending_since is None:
            self.states.pop(change.alert_id, None)
        elif change.alert_id in self.alerts:
            self.states[change.alert_id] = change.pending_since

    def record(self, change: StatusChange) -> None:
        """Set or clear an alert's status, as the status table's upsert and delete do."""
        if change.state is None:
            self.statuses.pop(change.alert_id, None)
            self.reasons.pop(change.alert_id, None)
            return
        assert change.code is not None
        assert change.reason is not None
        self.statuses[change.alert_id] = RecordedStatus(change.state, change.code, change.since)
        self.reasons[change.alert_id] = change.reason

    def open_event_of(
        self, alert_id: int | None, kind: EventKind = EventKind.THRESHOLD
    ) -> AlertEvent | None:
        return next(
            (
                e
                for e in self.events.values()
                if e.alert_id == alert_id and not e.resolved and e.kind is kind
            ),
            None,
        )

    def newest_reading(self, device_id: int) -> Reading | None:
        # history.timestamp is nullable; like the SQL snapshot, the newest reading is the newest
        # timestamped one, or, for a device with none, its newest untimed one (by id)
        own = [r for r in self.readings.values() if r.device_id == device_id]
        timed = [r for r in own if r.timestamp is not None]
        if timed:
            return max(timed, key=lambda r: (r.timestamp, r.id))
        return max(own, key=lambda r: r.id, default=None)

    def insert_event(self, event: AlertEvent) -> AlertEvent | None:
        """Store `event` with a new id; None, storing nothing, if its alert already has an open
        one of its kind: the unique partial index with ON CONFLICT DO NOTHING of ADR 0004."""
        if event.id is not None:
            raise ValueError(f"storage assigns event ids; got an event with id {event.id}")
        if not event.resolved and self.open_event_of(event.alert_id, event.kind) is not None:
            return None
        stored = attrs.evolve(event, id=self.next_event_id)
        self.events[self.next_event_id] = stored
        self.next_event_id += 1
        return stored

    def resolve_event(self, resolution: Resolution) -> bool:
        """Close the event; False if it was closed already."""
        event = self.events.get(resolution.event_id)
        if event is None or event.alert_id != resolution.alert_id:
            raise UnknownEventError(
                f"no event {resolution.event_id} for alert {resolution.alert_id}"
            )
        # like UPDATE ... WHERE id = :id AND NOT is_resolved: closing a closed event does nothing
        if event.resolved:
            return False
        self.events[resolution.event_id] = event.resolve(resolution.resolved_at, resolution.value)
        return True


class InMemoryStore:
    """The database. Tests seed and inspect the committed tables; transactions go through a UoW."""

    def __init__(self) -> None:
        self._committed = Tables()
        self.read_error: Exception | None = None
        """Raised by enabled_alerts() while set."""
        self.apply_error: Exception | None = None
        """Raised by apply() while set, after inserting the opened events: a failure midway."""
        self.snapshot_reads = 0
        """Snapshots read, full or focused."""
        self.lease_owners: dict[int, str] = {}
        """Partition -> the worker whose lease covers it: the lease table."""
        self.trend_tables = True
        """Whether the trend rules and state tables exist (migration 0005)."""
        self.silences: list[Silence] = []
        """Silences the cycle sees (issue 15)."""

    # Seeding and inspection: straight on the committed tables, outside any transaction.

    def add_device(self, device: Device) -> Device:
        self._committed.devices[device.id] = device
        return device

    def add_reading(self, reading: Reading) -> Reading:
        self._committed.readings[reading.id] = reading
        return reading

    def add_alert(self, alert: AlertRow) -> AlertRow:
        self._committed.alerts[alert.id] = alert
        return alert

    def add_event(self, event: AlertEvent) -> AlertEvent:
        """Store `event` and return it with its new id."""
        stored = self._committed.insert_event(event)
        if stored is None:
            raise DuplicateOpenEventError(f"alert {event.alert_id} already has an open event")
        return stored

    def set_rule(self, alert_id: int, rule: StoredRule | None) -> None:
        """Give an alert options (a rules row), or take them away (None)."""
        if rule is None:
            self._committed.rules.pop(alert_id, None)
        else:
            self._committed.rules[alert_id] = rule

    def set_trend_rule(self, alert_id: int, trend: StoredTrend | None) -> None:
        """Give a trend alert trend options, or take them away (None)."""
        if trend is None:
            self._committed.trend_rules.pop(alert_id, None)
        else:
            self._committed.trend_rules[alert_id] = trend

    def trend_states(self) -> Mapping[int, tuple[datetime | None, datetime | None]]:
        return dict(self._committed.trend_states)

    def remove_alert(self, alert_id: int) -> None:
        """Delete an alert, and with it its rules and state rows, as the foreign keys do."""
        committed = self._committed
        for table in (
            committed.alerts,
            committed.rules,
            committed.states,
            committed.trend_rules,
            committed.trend_states,
        ):
            table.pop(alert_id, None)

    def remember_pending(self, alert_id: int, since: datetime) -> None:
        """Seed a state row, as a worker, or a person, wrote it."""
        self._committed.states[alert_id] = since

    def states(self) -> Mapping[int, datetime]:
        """Every committed pending instant, by alert id."""
        return dict(self._committed.states)

    def remove_device(self, device_id: int) -> None:
        self._committed.devices.pop(device_id, None)

    def devices(self) -> Mapping[int, Device]:
        return dict(self._committed.devices)

    def events(self) -> Mapping[int, AlertEvent]:
        """Every committed event by id."""
        return dict(self._committed.events)

    def statuses(self) -> Mapping[int, tuple[RecordedStatus, str]]:
        """Every committed alert status, with its reason, by alert id."""
        committed = self._committed
        return {a: (status, committed.reasons[a]) for a, status in committed.statuses.items()}

    def open_events(self) -> list[AlertEvent]:
        return [e for e in self._committed.events.values() if not e.resolved]

    def snapshot(self) -> Tables:
        """A copy of everything committed, comparable with ==."""
        return self._committed.copy()

    def unit_of_work(self) -> FakeUnitOfWork:
        """The UnitOfWorkFactory to hand to the application."""
        return FakeUnitOfWork(self)

    # The transaction protocol FakeUnitOfWork uses.

    def begin(self) -> Tables:
        return self._committed.copy()

    def commit(self, tables: Tables) -> None:
        self._committed = tables.copy()


class FakeSnapshotReader:
    """SnapshotReader over the transaction's tables."""

    remembers = True

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    @property
    def trends(self) -> bool:
        return self._uow.store.trend_tables

    def windows(
        self, since: Mapping[int, datetime], until: datetime
    ) -> Mapping[int, Sequence[Reading]]:
        tables = self._uow.tables()
        found = {device: tables.window(device, start, until) for device, start in since.items()}
        return {device: readings for device, readings in found.items() if readings}

    def silences(self, now: datetime) -> list[Silence]:
        return [silence for silence in self._uow.store.silences if silence.ends_at > now]

    def enabled_alerts(
        self, shard: Shard = WHOLE, focus: Focus | None = None
    ) -> list[AlertSnapshot]:
        tables = self._uow.tables()
        self._uow.store.snapshot_reads += 1
        if self._uow.store.read_error is not None:
            raise self._uow.store.read_error
        snapshots = []
        for row in sorted(tables.alerts.values(), key=lambda a: a.id):
            if row.enabled is False or not shard.includes(row.id):
                continue
            if focus is not None and not (row.device_id in focus.devices or row.id in focus.alerts):
                continue
            open_event = tables.open_event_of(row.id)
            no_data_event = tables.open_event_of(row.id, EventKind.NO_DATA)
            forecast = tables.open_event_of(row.id, EventKind.FORECAST)
            rate = tables.open_event_of(row.id, EventKind.RATE)
            forecast_since, rate_since = tables.trend_states.get(row.id, (None, None))
            snapshots.append(
                AlertSnapshot(
                    alert=StoredAlert(
                        row.id,
                        row.device_id,
                        row.metric,
                        row.operator,
                        row.threshold,
                        row.trend_enabled,
                        row.enabled,
                    ),
                    device=tables.devices.get(row.device_id),
                    reading=tables.newest_reading(row.device_id),
                    open_event_id=open_event.id if open_event is not None else None,
                    status=tables.statuses.get(row.id),
                    no_data_event_id=None if no_data_event is None else no_data_event.id,
                    rule=tables.rules.get(row.id),
                    pending_since=tables.states.get(row.id),
                    forecast_event_id=None if forecast is None else forecast.id,
                    rate_event_id=None if rate is None else rate.id,
                    trend=tables.trend_rules.get(row.id),
                    forecast_since=forecast_since,
                    rate_since=rate_since,
                )
            )
        return snapshots


class FakeEventWriter:
    """EventWriter over the transaction's tables; writes each submission at once."""

    metric_limit: int | None = None

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow
        self._opened: set[tuple[int, str]] = set()
        self._resolved: set[int] = set()

    def submit(self, changes: EventChanges) -> None:
        tables = self._uow.tables()
        self._opened |= {
            (e.alert_id, e.kind.value)
            for e in changes.opened
            if tables.insert_event(e) is not None and e.alert_id is not None
        }
        # fail after writing something, so only the transaction can keep the store unchanged
        if self._uow.store.apply_error is not None:
            raise self._uow.store.apply_error
        self._resolved |= {r.event_id for r in changes.resolved if tables.resolve_event(r)}
        for change in changes.statuses:
            tables.record(change)
        for state in changes.states:
            tables.remember(state)
        for trend_state in changes.trend_states:
            tables.remember_trend(trend_state)

    def flush(self) -> AppliedChanges:
        applied = AppliedChanges(frozenset(self._opened), frozenset(self._resolved))
        self._opened, self._resolved = set(), set()
        return applied


class FakeLeaseKeeper:
    """LeaseKeeper over the store's lease table: a lease holds while the store names its owner."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    def renew(self, shard: Shard) -> bool:
        if shard.leased_by is None:
            return True
        return all(self._store.lease_owners.get(p) == shard.leased_by for p in shard.owned)


class FakeUnitOfWork:
    """UnitOfWork over an InMemoryStore: copy the tables on enter, publish them on commit."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self._tables: Tables | None = None
        self.snapshots: SnapshotReader = FakeSnapshotReader(self)
        self.events: EventWriter = FakeEventWriter(self)
        self.leases: LeaseKeeper = FakeLeaseKeeper(store)

    def __enter__(self) -> Self:
        if self._tables is not None:
            raise RuntimeError("this unit of work is already open")
        self._tables = self.store.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._tables = None  # whatever was not committed is dropped

    def commit(self) -> None:
        self.store.commit(self.tables())

    def rollback(self) -> None:
        self.tables()
        self._tables = self.store.begin()

    def tables(self) -> Tables:
        """The transaction's working copy; only usable inside the `with` block."""
        if self._tables is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._tables


class FakeReadingWatcher:
    """ReadingWatcher over the store's committed readings, by id, as the SQL one reads history."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._last: int | None = None

    def start(self) -> None:
        if self._store.read_error is not None:
            raise self._store.read_error
        self._last = max(self._store.snapshot().readings, default=0)

    def noticed(self) -> set[int]:
        if self._last is None:
            self.start()
            return set()
        if self._store.read_error is not None:
            raise self._store.read_error
        readings = self._store.snapshot().readings
        last, self._last = self._last, max(readings, default=self._last)
        return {reading.device_id for key, reading in readings.items() if key > last}
