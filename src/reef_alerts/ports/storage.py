"""Storage ports: one read of a cycle's snapshot, one batched write of its event changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import attrs

from reef_alerts.domain import AlertEvent, Device, Reading
from reef_alerts.ports.coordination import WHOLE, LeaseKeeper, Shard


@attrs.frozen
class AlertSnapshot:
    """One enabled alert as stored, with its device, its device's newest reading and its open event.

    The alert's fields are kept raw: a row with a bad operator or threshold must reach the
    application, which counts it as an error, instead of failing the whole read.
    """

    alert_id: int
    device_id: int
    metric: str
    operator: str
    threshold: float | None
    trend_enabled: bool
    device: Device | None
    """None when the alert's device row does not exist."""
    reading: Reading | None
    """The device's newest reading, None when it has none."""
    open_event_id: int | None
    """The alert's unresolved event, None when there is none."""


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

    def enabled_alerts(self, shard: Shard = WHOLE) -> Sequence[AlertSnapshot]:
        """Every enabled alert of `shard`, with its context, read at once."""
        ...


class EventWriter(Protocol):
    """Writes a cycle's event changes."""

    def apply(self, changes: EventChanges) -> AppliedChanges:
        """Insert the opened events (never a second open one per alert); close the resolved.

        Batched: the number of statements does not grow with the number of changes.
        """
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

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
