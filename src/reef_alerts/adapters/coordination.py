"""Partition leases on PostgreSQL: expiring lease rows, claimed with FOR UPDATE SKIP LOCKED.

Leases are rows, not session advisory locks, so a worker whose pooled connection is dropped and
re-opened (a restarted server, pg_terminate_backend) keeps its partitions; a worker that dies
loses them when its lease expires. All times are the database's `now()`, so the hosts' clocks
never have to agree (see ADR 0006).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta

import attrs
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    func,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from reef_alerts.adapters.tables import partition_leases, workers
from reef_alerts.ports import WHOLE, CycleRecord, Shard

MAX_PARTITIONS = 1_000
"""More partitions than this gain nothing, and cost a lease row each to every claim."""


class MissingLeaseTablesError(RuntimeError):
    """Partitions were asked for on a database without the worker's lease tables."""


class PartitionCountMismatchError(RuntimeError):
    """Another live worker on the database splits the alerts into another number of partitions:
    both would evaluate the same alerts."""


# Claims take this transaction-scoped advisory lock first, so that two workers starting at once
# with different partition counts cannot both see the other absent.
_CLAIM_LOCK = 0x7265_6566  # "reef"


# Registry rows of workers silent for this many lease periods are deleted.
_FORGET_AFTER_LEASES = 20


class SqlPartitionCoordinator:
    """Leases a fair share of `partition_count` partitions to this worker, once per cycle."""

    def __init__(
        self,
        engine: Engine,
        worker_id: str,
        hostname: str,
        pid: int,
        started_at: datetime,
        partition_count: int,
        lease_ttl: timedelta,
        log: logging.Logger,
    ) -> None:
        if not 1 <= partition_count <= MAX_PARTITIONS:
            raise ValueError(
                f"partition_count must be between 1 and {MAX_PARTITIONS}, got {partition_count}"
            )
        self._engine = engine
        self._id = worker_id
        self._identity = {"worker_id": worker_id, "hostname": hostname, "pid": pid}
        self._started_at = started_at
        self._count = partition_count
        self._ttl = lease_ttl
        self._log = log
        self._held: frozenset[int] | None = None
        self._tables_found = False
        self._warned = False

    def claim(self, last_cycle: CycleRecord | None) -> Shard:
        with self._engine.begin() as connection:
            if not self._has_lease_tables(connection):
                return self._uncoordinated()
            connection.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))
            self._refuse_another_count(connection)
            self._heartbeat(connection, last_cycle)
            self._ensure_lease_rows(connection)
            held = self._renew(connection)
            share = math.ceil(self._count / self._live_workers(connection))
            if len(held) > share:
                held -= self._release(connection, sorted(held)[share:])
            elif len(held) < share:
                held |= self._take_free(connection, share - len(held))
            connection.execute(
                update(workers)
                .where(workers.c.worker_id == self._id)
                .values(partitions=sorted(held))
            )
        shard = Shard.of(self._count, held, self._id)
        if held != self._held:
            self._log.info("Now holding %s (fair share %d)", shard.describe(), share)
            self._held = frozenset(held)
        return shard

    def _has_lease_tables(self, connection: Connection) -> bool:
        # Looked for until found: `db upgrade` may run while the worker is up.
        if not self._tables_found:
            inspector = inspect(connection)
            self._tables_found = all(
                inspector.has_table(table.name) for table in (workers, partition_leases)
            )
        return self._tables_found

    def check(self) -> None:
        """Raise PartitionCountMismatchError if a live worker uses another partition count; do
        nothing without the lease tables. For a worker's start-up, before its first cycle."""
        with self._engine.begin() as connection:
            if self._has_lease_tables(connection):
                connection.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))
                self._refuse_another_count(connection)

    def _refuse_another_count(self, connection: Connection) -> None:
        alive = workers.c.heartbeat_at > func.now() - func.make_interval(
            0, 0, 0, 0, 0, 0, workers.c.lease_seconds
        )
        other = connection.execute(
            select(workers.c.worker_id, workers.c.partition_count)
            .where(
                alive,
                workers.c.partition_count != self._count,
                workers.c.worker_id != self._id,
            )
            .limit(1)
        ).first()
        if other is not None:
            raise PartitionCountMismatchError(
                f"worker {other.worker_id} runs on this database with --partitions "
                f"{other.partition_count}, this one with --partitions {self._count}: every "
                "worker on a database must use the same number"
            )

    def _uncoordinated(self) -> Shard:
        if self._count > 1:
            raise MissingLeaseTablesError(
                "--partitions needs the worker's lease tables: run `reef-alerts db upgrade`"
            )
        if not self._warned:
            self._warned = True
            self._log.warning(
                "No partition lease tables: this worker does not coordinate with others (no hot "
                "standby) until `reef-alerts db upgrade` has been run"
            )
        return WHOLE

    def release(self) -> None:
        if not self._tables_found:
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(partition_leases)
                .where(partition_leases.c.owner == self._id)
                .values(owner=None, expires_at=None)
            )
            connection.execute(delete(workers).where(workers.c.worker_id == self._id))
        self._log.info("Released the partition leases of worker %s", self._id)

    def _heartbeat(self, connection: Connection, last_cycle: CycleRecord | None) -> None:
        values: dict[str, object] = {
            **self._identity,
            "partition_count": self._count,
            "partitions": sorted(self._held or ()),
            "lease_seconds": self._ttl.total_seconds(),
            "started_at": self._started_at,
            "heartbeat_at": func.now(),
        }
        if last_cycle is not None:
            values.update(
                last_cycle_at=last_cycle.started_at,
                last_cycle_seconds=last_cycle.seconds,
                last_cycle_alerts=last_cycle.alerts,
                last_cycle_ok=last_cycle.succeeded,
            )
        statement = insert(workers).values(values)
        changed = {k: statement.excluded[k] for k in values if k != "worker_id"}
        connection.execute(
            statement.on_conflict_do_update(index_elements=[workers.c.worker_id], set_=changed)
        )
        connection.execute(
            delete(workers).where(
                workers.c.heartbeat_at < func.now() - _FORGET_AFTER_LEASES * self._ttl
            )
        )

    def _ensure_lease_rows(self, connection: Connection) -> None:
        partition = func.generate_series(0, self._count - 1).column_valued("partition")
        connection.execute(
            insert(partition_leases)
            .from_select(["partition_count", "partition"], select(literal(self._count), partition))
            .on_conflict_do_nothing()
        )

    def _renew(self, connection: Connection) -> frozenset[int]:
        renewed = connection.scalars(
            update(partition_leases)
            .where(self._mine())
            .values(expires_at=func.now() + self._ttl)
            .returning(partition_leases.c.partition)
        )
        return frozenset(renewed)

    def _live_workers(self, connection: Connection) -> int:
        alive = connection.scalar(
            select(func.count()).where(
                workers.c.partition_count == self._count,
                workers.c.heartbeat_at > func.now() - self._ttl,
            )
        )
        return max(int(alive or 0), 1)

    def _release(self, connection: Connection, partitions: Collection[int]) -> frozenset[int]:
        released = connection.scalars(
            update(partition_leases)
            .where(self._mine(), partition_leases.c.partition.in_(partitions))
            .values(owner=None, expires_at=None)
            .returning(partition_leases.c.partition)
        )
        return frozenset(released)

    def _take_free(self, connection: Connection, wanted: int) -> frozenset[int]:
        # The free rows are locked and fixed once, in a materialised CTE: inside an IN (...) the
        # locking subquery could be re-run and take more than `wanted`.
        free = (
            select(partition_leases.c.partition)
            .where(partition_leases.c.partition_count == self._count, _is_free())
            .order_by(partition_leases.c.partition)
            .limit(wanted)
            .with_for_update(skip_locked=True)
            .cte("free")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        taken = connection.scalars(
            update(partition_leases)
            .where(
                partition_leases.c.partition_count == self._count,
                partition_leases.c.partition == free.c.partition,
                _is_free(),
            )
            .values(owner=self._id, expires_at=func.now() + self._ttl)
            .returning(partition_leases.c.partition)
        )
        return frozenset(taken)

    def _mine(self) -> ColumnElement[bool]:
        return and_(
            partition_leases.c.partition_count == self._count,
            partition_leases.c.owner == self._id,
        )


def _is_free() -> ColumnElement[bool]:
    """A lease nobody holds, or whose holder let it expire."""
    return or_(
        partition_leases.c.owner.is_(None),
        partition_leases.c.expires_at.is_(None),
        partition_leases.c.expires_at < func.now(),
    )


class SqlLeaseKeeper:
    """Renews a shard's leases inside the cycle's transaction: the cycle's fencing check."""

    def __init__(self, connection: Connection, lease_ttl: timedelta | None) -> None:
        self._connection = connection
        self._ttl = lease_ttl

    def renew(self, shard: Shard) -> bool:
        if shard.leased_by is None:
            return True
        if self._ttl is None:
            raise RuntimeError("a leased shard needs a unit of work made with a lease_ttl")
        renewed = self._connection.execute(
            update(partition_leases)
            .where(
                partition_leases.c.partition_count == shard.count,
                partition_leases.c.partition.in_(shard.owned),
                partition_leases.c.owner == shard.leased_by,
            )
            .values(expires_at=func.now() + self._ttl)
        )
        return renewed.rowcount == len(shard.owned)


@attrs.frozen
class WorkerStatus:
    """One row of `reef-alerts status`."""

    worker_id: str
    alive: bool
    partition_count: int
    partitions: list[int]
    heartbeat_age: float
    last_cycle_at: datetime | None
    last_cycle_seconds: float | None
    last_cycle_alerts: int | None
    last_cycle_ok: bool | None


def worker_statuses(engine: Engine) -> list[WorkerStatus]:
    """The registered workers, newest heartbeat first; `alive` within one lease period."""
    age = func.extract("epoch", func.now() - workers.c.heartbeat_at)
    query = select(workers, age.label("age")).order_by(workers.c.heartbeat_at.desc())
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        WorkerStatus(
            worker_id=row.worker_id,
            alive=float(row.age) <= row.lease_seconds,
            partition_count=row.partition_count,
            partitions=list(row.partitions or []),
            heartbeat_age=float(row.age),
            last_cycle_at=row.last_cycle_at,
            last_cycle_seconds=row.last_cycle_seconds,
            last_cycle_alerts=row.last_cycle_alerts,
            last_cycle_ok=row.last_cycle_ok,
        )
        for row in rows
    ]


def unleased_partitions(engine: Engine) -> dict[int, list[int]]:
    """Per partition count, the partitions that no live lease covers."""
    query = (
        select(partition_leases.c.partition_count, partition_leases.c.partition)
        .where(_is_free())
        .order_by(partition_leases.c.partition_count, partition_leases.c.partition)
    )
    free: dict[int, list[int]] = {}
    with engine.connect() as connection:
        for count, partition in connection.execute(query):
            free.setdefault(count, []).append(partition)
    return free


def new_worker_id(hostname: str, pid: int) -> str:
    """A name for this process that no other worker, here or elsewhere, will have."""
    return f"{hostname}:{pid}:{uuid.uuid4().hex[:8]}"
