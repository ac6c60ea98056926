"""Storage ports: one read of a cycle's snapshot, one batched write of its event changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import NamedTuple, Protocol, Self

import attrs

from reef_alerts.domain import AlertEvent, Device, Reading
from reef_alerts.ports.coordination import WHOLE, LeaseKeeper, Shard


class StoredAlert(NamedTuple):
    """An enabled alert's row as stored, before the domain has validated it.

    Raw, so that a row with a bad operator or threshold reaches the application, which counts it
    as an error, instead of failing the whole read. A tuple, so that an adapter can take it from
    the driver's row without a Python call, and the application can key the alerts it has already
    built by it: an unchanged row is the same key.
    """

    id: int
    device_id: int
    metric: str
    operator: str
    threshold: float | None
    trend_enabled: bool | int | None
    """As the driver gives it: SQLite stores booleans as 0 and 1."""


class AlertSnapshot(NamedTuple):
    """One enabled alert as stored, with its device, the newest reading and its open event.

    A tuple, like StoredAlert: a cycle makes one per alert, and a tuple is built in a third of
    the time of a frozen attrs class.
    """

    alert: StoredAlert
    device: Device | None
    """None when the alert's device row does not exist."""
    reading: Reading | None
    """The device's newest reading, None when it has none."""
    open_event_id: int | None
    """The alert's unresolved event, None when there is none."""

    @property
    def alert_id(self) -> int:
        return self.alert.id


@attrs.frozen
class Resolution:
    """Close the open event `event_id` of alert `alert_id`."""

    event_id: int
    alert_id: int
    resolved_at: datetime
    value: float


@attrs.frozen
class EventChanges:
    """Everything one cycle writes."""

    opened: Sequence[AlertEvent] = ()
    resolved: Sequence[Resolution] = ()

    def __bool__(self) -> bool:
        return bool(self.opened or self.resolved)


@attrs.frozen
class AppliedChanges:
    """What a write actually changed: less than asked where another worker got there first."""

    opened: frozenset[int] = frozenset()
    """The alerts whose new event was inserted."""
    resolved: frozenset[int] = frozenset()
    """The events that were closed."""


class SnapshotReader(Protocol):
    """Reads what a cycle evaluates."""

    def enabled_alerts(self, shard: Shard = WHOLE) -> Iterable[AlertSnapshot]:
        """Every enabled alert of `shard`, with its context, as one consistent snapshot.

        The read has begun when this returns. An adapter may stream the rest from the database
        while the caller iterates, so iterate it once, and to the end before committing.
        """
        ...


class EventWriter(Protocol):
    """Writes a cycle's event changes, possibly while the cycle is still judging."""

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
