"""RunCycle with a partition coordinator: only leased partitions, and never past a lost lease."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from reef_alerts.application import RunCycle
from reef_alerts.domain import Device, EvaluationPolicy, Reading
from reef_alerts.ports import CycleRecord, LeaseLostError, Shard
from tests.fakes import AlertRow, FakeClock, InMemoryStore

WORKER = "host:1:abc"


class ScriptedCoordinator:
    """Hands out the shards it is given, in order, and keeps what each claim was told."""

    def __init__(self, *shards: Shard) -> None:
        self._shards = list(shards)
        self.reports: list[CycleRecord | None] = []

    def claim(self, last_cycle: CycleRecord | None) -> Shard:
        self.reports.append(last_cycle)
        return self._shards.pop(0)

    def release(self) -> None:
        self._shards.clear()


@pytest.fixture
def store() -> InMemoryStore:
    """Eight hot tanks, alert i on device i, every one of them firing."""
    store = InMemoryStore()
    clock = FakeClock()
    for i in range(1, 9):
        store.add_device(Device(id=i, name=f"Tank {i}", type="heater"))
        store.add_reading(Reading(i, i, clock.now() - timedelta(seconds=5), value=90.0))
        store.add_alert(AlertRow(i, i, "temperature", ">", 82.0))
    return store


def cycle(store: InMemoryStore, coordinator: ScriptedCoordinator) -> RunCycle:
    return RunCycle(
        store.unit_of_work,
        FakeClock(),
        EvaluationPolicy(),
        logging.getLogger("reef_alerts.tests.partitions"),
        coordinator,
    )


def test_evaluates_only_the_alerts_of_the_leased_partitions(store: InMemoryStore) -> None:
    store.lease_owners.update({1: WORKER, 3: WORKER})
    coordinator = ScriptedCoordinator(Shard.of(4, {1, 3}, WORKER))

    stats = cycle(store, coordinator)()

    assert stats.total_alerts == 4
    assert sorted(e.alert_id for e in store.events().values()) == [1, 3, 5, 7]


def test_holding_no_partition_evaluates_nothing(store: InMemoryStore) -> None:
    store.read_error = RuntimeError("must not read")

    stats = cycle(store, ScriptedCoordinator(Shard.of(4, set(), WORKER)))()

    assert stats.as_dict() == dict.fromkeys(stats.as_dict(), 0)


def test_a_cycle_whose_lease_was_lost_commits_nothing(store: InMemoryStore) -> None:
    store.lease_owners.update({0: WORKER, 1: "another:2:def"})
    coordinator = ScriptedCoordinator(Shard.of(2, {0, 1}, WORKER))

    with pytest.raises(LeaseLostError, match="partitions 0, 1 of 2"):
        cycle(store, coordinator)()

    assert dict(store.events()) == {}


def test_tells_the_coordinator_how_the_last_cycle_went(store: InMemoryStore) -> None:
    store.lease_owners.update(dict.fromkeys(range(2), WORKER))
    shard = Shard.of(2, {0, 1}, WORKER)
    coordinator = ScriptedCoordinator(shard, shard)
    run = cycle(store, coordinator)

    run()
    run()

    first, second = coordinator.reports
    assert first is None
    assert second is not None
    assert (second.alerts, second.succeeded) == (8, True)


class TestShard:
    def test_a_single_partition_is_every_alert(self) -> None:
        shard = Shard()

        assert shard.whole
        assert all(shard.includes(alert_id) for alert_id in range(50))
        assert shard.describe() == "all alerts"

    def test_partitions_split_alerts_by_id_modulo_the_count(self) -> None:
        shard = Shard.of(4, {0, 2}, WORKER)

        assert not shard.whole
        assert [a for a in range(1, 9) if shard.includes(a)] == [2, 4, 6, 8]
        assert shard.describe() == "partitions 0, 2 of 4"

    def test_describes_an_empty_shard(self) -> None:
        assert Shard.of(8, (), WORKER).describe() == "no partitions of 8"
