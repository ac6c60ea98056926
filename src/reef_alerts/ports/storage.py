"""Storage ports: one read of a cycle's snapshot, one batched write of its event changes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, NamedTuple, Protocol, Self

import attrs

from reef_alerts.domain import AlertEvent, Device, Reading, Resolution, TrendOptions, quoted
from reef_alerts.domain.notices import Silence
from reef_alerts.ports.coordination import WHOLE, LeaseKeeper, Shard
from reef_alerts.ports.live import Focus


class StoredAlert(NamedTuple):
    """An enabled alert's row as stored, before the domain has validated it.

    Raw, so that a row with a bad operator or threshold reaches the application, which counts it
    as an error, instead of failing the whole read. A tuple, so that the application can key the
    alerts it has already built by it: an unchanged row is the same key.
    """

    id: int
    device_id: int
    metric: str
    operator: str
    threshold: float | None
    trend_enabled: bool | None
    enabled: bool | None
    """None when the row's is_enabled is NULL: neither enabled nor disabled (ADR 12)."""


class RecordedStatus(NamedTuple):
    """Why an alert could not be judged, as the last cycle that found out recorded it."""

    state: str
    """"skipped" or "error"."""
    code: str
    """The skip's code (`SkipCode.value`), or "error"."""
    since: datetime
    """When the alert came to be in this state for this reason."""


class StoredRule(NamedTuple):
    """An alert's row of options as stored, before the domain has validated it; a NULL
    option is the worker's default (ADR 15)."""

    pending_seconds: float | None
    recovery_margin: float | None
    no_data_after_seconds: float | None
    """0: no no-data events for this alert."""

    @classmethod
    def of(cls, row: Any) -> StoredRule | None:
        """The options of a row that has them as attributes of the same names; None when it
        has none of its own (all NULL)."""
        rule = cls._make(getattr(row, name) for name in cls._fields)
        return None if rule == _NO_OPTIONS else rule


_NO_OPTIONS: Final = (None, None, None)


class StoredTrend(NamedTuple):
    """A trend alert's row of trend options as stored, before the domain has validated it; a
    NULL option is the default (issue 13)."""

    trend_window_seconds: float | None
    min_samples: int | None
    forecast_horizon_seconds: float | None
    max_rate_per_hour: float | None
    """0: no rate events for this alert."""
    smoothing: bool | None

    @classmethod
    def of(cls, row: Any) -> StoredTrend | None:
        """As StoredRule.of."""
        trend = cls._make(getattr(row, name) for name in cls._fields)
        return None if trend == _NO_TREND else trend

    def options(self, defaults: TrendOptions) -> TrendOptions:
        """The trend options this row stores, each NULL the default's. Raises TypeError or
        ValueError, naming the column, for a row the table's checks should have refused."""
        smoothing = self.smoothing
        if smoothing is not None and smoothing not in (True, False):
            raise TypeError(f"smoothing {quoted(smoothing)} is not a boolean")
        window, horizon, rate = (
            self.trend_window_seconds,
            self.forecast_horizon_seconds,
            self.max_rate_per_hour,
        )
        return TrendOptions(
            defaults.window if window is None else stored_seconds(window, "window"),
            defaults.min_samples if self.min_samples is None else self.min_samples,
            defaults.horizon if horizon is None else stored_seconds(horizon, "horizon"),
            defaults.max_rate_per_hour if rate is None else rate or None,
            defaults.smoothing if smoothing is None else bool(smoothing),
        )


_NO_TREND: Final = (None,) * len(StoredTrend._fields)


def stored_seconds(seconds: object, name: str) -> timedelta:
    """A duration as the worker's tables store one, a number of seconds, for the option `name`.
    Raises TypeError or ValueError for one no option can use."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{name} {quoted(seconds)} is not a number of seconds")
    if not math.isfinite(seconds) or abs(seconds) > 1e9:
        raise ValueError(f"{name} {seconds!r} is not a number of seconds it can use")
    return timedelta(seconds=seconds)


class AlertSnapshot(NamedTuple):
    """One enabled alert as stored, with its device, the newest reading, its open events, and
    its options and state.

    A tuple, like StoredAlert: a cycle makes one per alert.
    """

    alert: StoredAlert
    device: Device | None
    """None when the alert's device row does not exist, or could not be read (`problem`)."""
    reading: Reading | None
    """The device's newest reading; None when it has none, or it could not be read."""
    open_event_id: int | None
    """The alert's unresolved event, None when there is none."""
    problem: str | None = None
    """Why the device's row or its newest reading's could not be read (naming the row and what
    is wrong with it); None when both were."""
    status: RecordedStatus | None = None
    """Why the alert could not be judged last time; None when it could."""
    no_data_event_id: int | None = None
    """The alert's unresolved no-data event, None when there is none."""
    rule: StoredRule | None = None
    """The alert's options; None when it has none of its own."""
    pending_since: datetime | None = None
    """When the alert's condition began to hold, while it waits out its pending duration."""
    forecast_event_id: int | None = None
    """The alert's unresolved forecast event (issue 13), None when there is none."""
    rate_event_id: int | None = None
    """The alert's unresolved rate event, None when there is none."""
    trend: StoredTrend | None = None
    """The alert's trend options; None when it has none of its own."""
    forecast_since: datetime | None = None
    """When its forecast began to say the condition will hold, while it waits out its pending
    duration."""
    rate_since: datetime | None = None
    """When its rate of change went beyond its limit, while it waits out its pending duration."""

    @property
    def alert_id(self) -> int:
        return self.alert.id


@attrs.frozen
class StatusChange:
    """An alert's status as a cycle found it, where it changed: why it cannot be judged now,
    or (`state` None) that it can again."""

    alert_id: int
    state: str | None
    """"skipped" or "error"; None: the alert can be judged again."""
    code: str | None
    reason: str | None
    since: datetime


@attrs.frozen
class StateChange:
    """What the state machine now remembers of an alert, where it changed (ADR 16)."""

    alert_id: int
    pending_since: datetime | None
    """None: nothing is pending, and the alert's row can go."""


@attrs.frozen
class TrendStateChange:
    """What the state machine now remembers of a trend alert's pending trend events, where it
    changed."""

    alert_id: int
    forecast_since: datetime | None
    rate_since: datetime | None
    """Both None: nothing is pending, and the alert's row can go."""


@attrs.frozen
class EventChanges:
    """Everything one cycle writes: events opened and resolved, alert statuses and states that
    changed."""

    opened: Sequence[AlertEvent] = ()
    resolved: Sequence[Resolution] = ()
    statuses: Sequence[StatusChange] = ()
    states: Sequence[StateChange] = ()
    trend_states: Sequence[TrendStateChange] = ()

    def __bool__(self) -> bool:
        return bool(
            self.opened or self.resolved or self.statuses or self.states or self.trend_states
        )


@attrs.frozen
class AppliedChanges:
    """What a write actually changed: less than asked where another worker got there first."""

    opened: frozenset[tuple[int, str]] = frozenset()
    """The alerts whose new event was inserted, with the event's kind (EventKind's value)."""
    resolved: frozenset[int] = frozenset()
    """The events that were closed."""


class SnapshotReader(Protocol):
    """Reads what a cycle evaluates."""

    @property
    def remembers(self) -> bool:
        """Whether the storage keeps alerts' options and state (a database that `db upgrade`
        has brought to them); without, every alert is judged by the specification's rule."""
        ...

    @property
    def trends(self) -> bool:
        """Whether it keeps trend alerts' options and state too (issue 13); without, a trend
        alert is judged on its threshold alone."""
        ...

    def windows(
        self, since: Mapping[int, datetime], until: datetime
    ) -> Mapping[int, Sequence[Reading]]:
        """The timestamped readings of each device of `since` taken after its instant there and
        at `until` or before, oldest first, in one statement; a reading whose row cannot be
        decoded is left out. Called between the snapshot's batches, in its transaction."""
        ...

    def silences(self, now: datetime) -> Sequence[Silence]:
        """The silences not over at `now` (issue 15): events they cover are marked silenced;
        none where the storage keeps no notifications. Called before `enabled_alerts`."""
        ...

    def enabled_alerts(
        self, shard: Shard = WHOLE, focus: Focus | None = None
    ) -> Iterable[AlertSnapshot]:
        """Every enabled alert of `shard`, with its context, as one consistent snapshot; with a
        `focus` (a live pass), only those of `shard` it names.

        The read has begun when this returns. An adapter may stream the rest from the database
        while the caller iterates, so iterate it once, and to the end before committing.
        """
        ...


class EventWriter(Protocol):
    """Writes a cycle's event changes, possibly while the cycle is still judging."""

    @property
    def metric_limit(self) -> int | None:
        """The most characters an event's metric can hold here; None when unlimited."""
        ...

    def submit(self, changes: EventChanges) -> None:
        """Insert the opened events (never a second open one per alert); close the resolved.

        A constant number of statements per write, however many changes it holds. An adapter
        may write them later, in the background or at `flush`, merging submissions; a failure
        then surfaces at `flush` or `UnitOfWork.commit`.
        """
        ...

    def flush(self) -> AppliedChanges:
        """Wait until every submitted change is written; what the submissions since the last
        flush changed, which under concurrency can be less than they asked."""
        ...


class UnitOfWork(Protocol):
    """One transaction: everything read and written inside it commits together or not at all."""

    @property
    def snapshots(self) -> SnapshotReader: ...

    @property
    def events(self) -> EventWriter: ...

    @property
    def leases(self) -> LeaseKeeper: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        ...

    def commit(self) -> None:
        """Commit, once every submitted write is done; a failed write fails the commit."""
        ...

    def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
