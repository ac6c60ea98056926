"""Live passes (issue 16) against the in-memory fakes: between full cycles, only the alerts of
devices with new readings, and those whose time has come, are judged, with the cycle's rules."""

from __future__ import annotations

import logging
from datetime import timedelta

import attrs
import pytest

from reef_alerts.application import RunCycle
from reef_alerts.application.deadlines import Deadlines
from reef_alerts.domain import Device, EvaluationPolicy, EventKind, Reading
from reef_alerts.domain.notices import Silence
from reef_alerts.ports import CycleRecord, Focus, LeaseLostError, Shard, StoredRule
from tests.fakes import AlertRow, FakeClock, FakeReadingWatcher, InMemoryStore

LOGGER = "reef_alerts.tests.live"
TANK = Device(id=1, name="Main Tank", type="temperature_probe", unit="°F")
SUMP = Device(id=2, name="Sump", type="temperature_probe", unit="°F")
TANK_HOT = AlertRow(id=1, device_id=1, metric="temperature", operator=">", threshold=82.0)
SUMP_HOT = AlertRow(id=2, device_id=2, metric="temperature", operator=">", threshold=82.0)
WORKER = "host:1:abc"


class Reef:
    """A tank and a sump, one alert each, a live worker over them, and a clock."""

    def __init__(self, coordinator: object | None = None) -> None:
        self.store = InMemoryStore()
        self.clock = FakeClock()
        self.watcher = FakeReadingWatcher(self.store)
        self.next_id = 1
        for device, alert in ((TANK, TANK_HOT), (SUMP, SUMP_HOT)):
            self.store.add_device(device)
            self.store.add_alert(alert)
            self.read(device.id, 78.0)
        self.cycle = RunCycle(
            self.store.unit_of_work,
            self.clock,
            EvaluationPolicy(),
            logging.getLogger(LOGGER),
            coordinator,  # type: ignore[arg-type]
            watcher=self.watcher,
        )

    def read(self, device_id: int, value: float, age: timedelta = timedelta(0)) -> None:
        self.store.add_reading(
            Reading(
                self.next_id,
                device_id,
                self.clock.now() - age,
                json_value={"temperature": value},
            )
        )
        self.next_id += 1

    def open_alerts(self, kind: EventKind = EventKind.THRESHOLD) -> list[int]:
        return sorted(
            e.alert_id
            for e in self.store.open_events()
            if e.alert_id is not None and e.kind is kind
        )


class OneShard:
    """A partition coordinator that always hands out `shard`."""

    def __init__(self, shard: Shard) -> None:
        self.shard = shard

    def claim(self, last_cycle: CycleRecord | None) -> Shard:
        return self.shard

    def release(self) -> None:
        pass


@pytest.fixture
def reef() -> Reef:
    return Reef()


def test_a_live_pass_judges_only_the_alerts_of_the_devices_with_new_readings(reef: Reef) -> None:
    reef.cycle()
    reef.clock.advance(timedelta(seconds=1))
    reef.read(TANK.id, 85.0)

    stats = reef.cycle.live()

    assert stats is not None
    assert (stats.total_alerts, stats.triggered) == (1, 1)
    assert reef.open_alerts() == [TANK_HOT.id]
    assert stats.changes[0].reading_at == reef.clock.now()


def test_a_live_pass_with_no_new_reading_and_nothing_due_reads_nothing(reef: Reef) -> None:
    reef.cycle()
    reef.clock.advance(timedelta(seconds=30))
    reads = reef.store.snapshot_reads

    assert reef.cycle.live() is None
    assert reef.store.snapshot_reads == reads


def test_no_live_pass_runs_before_the_first_full_cycle(reef: Reef) -> None:
    reef.read(TANK.id, 85.0)

    assert reef.cycle.live() is None
    assert reef.open_alerts() == []


def test_a_reading_committed_before_the_first_cycle_is_judged_by_that_cycle(reef: Reef) -> None:
    reef.read(TANK.id, 85.0)

    stats = reef.cycle()

    assert stats.triggered == 1
    assert reef.cycle.live() is None


def test_a_pending_alert_opens_its_event_when_its_duration_ends_without_a_new_reading(
    reef: Reef,
) -> None:
    reef.store.set_rule(TANK_HOT.id, StoredRule(60.0, None, None))
    reef.read(TANK.id, 85.0)
    reef.cycle()
    reef.clock.advance(timedelta(seconds=59))
    assert reef.cycle.live() is None

    reef.clock.advance(timedelta(seconds=1))
    stats = reef.cycle.live()

    assert stats is not None
    assert (stats.total_alerts, stats.triggered) == (1, 1)
    assert reef.open_alerts() == [TANK_HOT.id]


def test_a_reading_is_judged_stale_the_moment_it_passes_the_limit(reef: Reef) -> None:
    """The default limit: 5 minutes, or two poll intervals of 60 s, whichever is longer."""
    reef.cycle()
    reef.clock.advance(timedelta(minutes=5))
    assert reef.cycle.live() is None

    reef.clock.advance(timedelta(microseconds=1))
    stats = reef.cycle.live()

    assert stats is not None
    assert (stats.total_alerts, stats.skipped) == (2, 2)
    assert reef.cycle.live() is None  # stale stays stale: nothing more is due


def test_a_silent_device_opens_its_no_data_event_without_waiting_for_the_cycle(
    reef: Reef,
) -> None:
    reef.store.set_rule(SUMP_HOT.id, StoredRule(None, None, 120.0))
    reef.cycle()
    reef.clock.advance(timedelta(seconds=121))

    stats = reef.cycle.live()

    assert stats is not None
    assert stats.no_data_opened == 1
    assert reef.open_alerts(EventKind.NO_DATA) == [SUMP_HOT.id]


def test_the_devices_of_a_failed_live_pass_are_judged_by_the_next(reef: Reef) -> None:
    reef.cycle()
    reef.read(TANK.id, 85.0)
    reef.store.apply_error = RuntimeError("the database went away")
    with pytest.raises(RuntimeError):
        reef.cycle.live()
    reef.store.apply_error = None

    stats = reef.cycle.live()

    assert stats is not None
    assert stats.triggered == 1


def test_a_live_pass_that_lost_its_lease_commits_nothing_and_waits_for_the_next_cycle() -> None:
    reef = Reef(OneShard(Shard.of(1, {0}, WORKER)))
    reef.store.lease_owners[0] = WORKER
    reef.cycle()
    reef.store.lease_owners[0] = "another:2:def"
    reef.read(TANK.id, 85.0)

    with pytest.raises(LeaseLostError):
        reef.cycle.live()
    reef.read(SUMP.id, 85.0)

    assert reef.cycle.live() is None
    assert reef.open_alerts() == []


def test_a_live_pass_uses_the_partitions_of_the_last_cycle() -> None:
    reef = Reef(OneShard(Shard.of(2, {0}, WORKER)))  # alert 2 only
    reef.store.lease_owners[0] = WORKER
    reef.cycle()
    reef.read(TANK.id, 85.0)
    reef.read(SUMP.id, 85.0)

    stats = reef.cycle.live()

    assert stats is not None
    assert reef.open_alerts() == [SUMP_HOT.id]


class TestDeadlines:
    def test_nothing_is_due_before_its_instant(self) -> None:
        now = FakeClock().now()
        deadlines = Deadlines()
        deadlines.replace({1: now + timedelta(seconds=5), 2: None}, {7: now})

        assert deadlines.due(now) == Focus(frozenset(), frozenset({7}))
        assert deadlines.due(now + timedelta(seconds=5)) == Focus(frozenset({1}), frozenset({7}))

    def test_a_live_pass_replaces_the_instants_of_what_it_judged(self) -> None:
        now = FakeClock().now()
        deadlines = Deadlines()
        deadlines.replace({1: now, 2: now}, {7: now, 8: now})

        deadlines.update({1: None}, {}, judged=[7], focus=Focus(frozenset({1, 2})))

        assert deadlines.due(now) == Focus(frozenset(), frozenset({8}))
        assert len(deadlines) == 1


def test_an_alert_disabled_while_due_is_due_no_more(reef: Reef) -> None:
    reef.store.set_rule(TANK_HOT.id, StoredRule(60.0, None, None))
    reef.read(TANK.id, 85.0)
    reef.cycle()  # pending: due in 60 s
    reef.store.add_alert(attrs.evolve(TANK_HOT, enabled=False))
    reef.clock.advance(timedelta(seconds=60))

    first = reef.cycle.live()
    reads = reef.store.snapshot_reads
    second = reef.cycle.live()

    assert first is not None
    assert first.total_alerts == 0
    assert second is None
    assert reef.store.snapshot_reads == reads


def test_readings_a_cycle_has_judged_are_not_judged_again_by_the_passes_after_it(
    reef: Reef,
) -> None:
    """After the database was down, the backlog of readings is the next cycle's alone."""
    reef.cycle()
    reef.read(TANK.id, 85.0)
    reef.read(SUMP.id, 85.0)
    reef.cycle()  # judges both: they crossed

    assert reef.cycle.live() is None


def test_readings_of_devices_no_alert_watches_start_no_pass(reef: Reef) -> None:
    reef.store.add_device(Device(id=3, name="Refugium", type="temperature_probe"))
    reef.cycle()
    reef.read(3, 85.0)
    reads = reef.store.snapshot_reads

    assert reef.cycle.live() is None
    assert reef.store.snapshot_reads == reads


def test_status_lines_of_live_passes_beyond_the_limit_are_counted_by_the_next_cycle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A controller going down: its probes go stale one pass after another, and the log gets
    twenty lines and one that counts the rest, as from a cycle, not a line per alert."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    reef = Reef()
    for device_id in range(3, 33):
        reef.store.add_device(Device(id=device_id, name=f"Tank {device_id}", type="heater"))
        reef.store.add_alert(AlertRow(device_id, device_id, "temperature", ">", 82.0))
        reef.read(device_id, 78.0, age=timedelta(seconds=device_id))
    reef.cycle()
    for _ in range(40):
        reef.clock.advance(timedelta(seconds=1))
        reef.cycle.live()
    caplog.clear()
    reef.clock.advance(timedelta(seconds=400))
    for _ in range(3):
        reef.clock.advance(timedelta(seconds=1))
        reef.cycle.live()
    lines_before_the_cycle = [r.getMessage() for r in caplog.records]
    reef.cycle()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if " is skipped: " in w]) == 20
    assert len(lines_before_the_cycle) <= 20
    assert warnings[-1].startswith("... and 12 more alerts changed status since the last cycle")


def test_an_event_a_silence_covers_says_so_in_its_metadata_and_others_do_not() -> None:
    reef = Reef()
    now = reef.clock.now()
    reef.store.silences = [
        Silence(4, 1, None, now - timedelta(minutes=1), now + timedelta(minutes=30), "water"),
        Silence(5, 2, None, now - timedelta(hours=2), now - timedelta(hours=1)),  # over
    ]
    reef.read(1, 84.0)
    reef.read(2, 84.0)

    reef.cycle()

    marks = {e.alert_id: e.metadata.get("silenced") for e in reef.store.open_events()}
    assert marks == {
        1: {"id": 4, "until": (now + timedelta(minutes=30)).isoformat(), "reason": "water"},
        2: None,
    }
