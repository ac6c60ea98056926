"""Coordination ports: which partitions of the alerts this worker evaluates, under a lease.

Several workers share one database and nothing else. Alerts are split into `count` partitions by
alert id; each worker leases some of them each cycle and evaluates only those. The lease is
renewed in the cycle's own transaction, so a worker that lost it cannot commit a stale cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import attrs


@attrs.frozen
class Shard:
    """The partitions one cycle evaluates: alerts whose `id % count` is in `owned`."""

    count: int = 1
    owned: frozenset[int] = frozenset({0})
    leased_by: str | None = None
    """The worker whose lease covers `owned`; None when no lease is involved (a lone worker)."""

    @classmethod
    def of(cls, count: int, owned: Iterable[int], leased_by: str | None) -> Shard:
        return cls(count, frozenset(owned), leased_by)

    @property
    def whole(self) -> bool:
        """Every alert is in this shard."""
        return len(self.owned) == self.count

    def includes(self, alert_id: int) -> bool:
        return alert_id % self.count in self.owned

    def describe(self) -> str:
        if self.count == 1:
            return "all alerts"
        if not self.owned:
            return f"no partitions of {self.count}"
        return f"partitions {', '.join(map(str, sorted(self.owned)))} of {self.count}"


WHOLE = Shard()
"""Every alert, no lease: a worker that coordinates with nobody."""


class LeaseLostError(Exception):
    """The worker no longer holds a partition it evaluated: its cycle must not commit."""


@attrs.frozen
class CycleRecord:
    """What a worker tells the others about its last cycle (for `reef-alerts status`)."""

    started_at: datetime
    seconds: float
    alerts: int
    succeeded: bool


class PartitionCoordinator(Protocol):
    """Leases partitions among the live workers."""

    def claim(self, last_cycle: CycleRecord | None) -> Shard:
        """Heartbeat, renew this worker's leases, take a fair share of the free ones, and give
        back any beyond its share. Its own transaction."""
        ...

    def release(self) -> None:
        """Give every lease back at once (graceful shutdown), so others take over at once."""
        ...


class LeaseKeeper(Protocol):
    """Inside the cycle's transaction: confirm the shard's leases are still this worker's."""

    def renew(self, shard: Shard) -> bool:
        """Extend the leases on `shard`'s partitions; False if any is no longer held."""
        ...
