"""RunCycle with rule options, against the in-memory fakes: pending durations across cycles and
restarts, recovery margins, no-data events, default options, broken option rows."""

from __future__ import annotations

import logging
from datetime import timedelta

import attrs
import pytest

from reef_alerts.application import RunCycle
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Device,
    EvaluationPolicy,
    EventKind,
    Reading,
    RuleOptions,
)
from reef_alerts.ports import StoredRule
from tests.fakes import AlertRow, FakeClock, InMemoryStore

LOGGER = "reef_alerts.tests.rules_cycle"
HEATER = Device(id=1, name="Frag Tank Heater", type="heater", unit="°F")
TOO_HOT = AlertRow(id=1, device_id=1, metric="temperature", operator=">", threshold=82.0)
SALINITY = Device(id=2, name="Salinity", type="salinity", unit="ppt")
TOO_SALTY = AlertRow(id=2, device_id=2, metric="value", operator=">", threshold=36.0)


@pytest.fixture
def store() -> InMemoryStore:
    store = InMemoryStore()
    store.add_device(HEATER)
    store.add_alert(TOO_HOT)
    return store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Reef:
    """The heater's readings, one a step, and the worker's cycles over them."""

    def __init__(
        self, store: InMemoryStore, clock: FakeClock, defaults: RuleOptions = DEFAULT_OPTIONS
    ) -> None:
        self.store, self.clock, self.defaults = store, clock, defaults
        self.next_id = 1
        self.cycle = self.restart()

    def restart(self) -> RunCycle:
        """A new worker process: nothing kept in memory, the store as it is."""
        self.cycle = RunCycle(
            self.store.unit_of_work,
            self.clock,
            EvaluationPolicy(),
            logging.getLogger(LOGGER),
            defaults=self.defaults,
        )
        return self.cycle

    def read(self, value: float, device_id: int = 1) -> None:
        self.store.add_reading(
            Reading(self.next_id, device_id, self.clock.now(), json_value={"temperature": value})
        )
        self.next_id += 1

    def step(self, value: float | None, every: timedelta = timedelta(minutes=1)) -> None:
        """Move on a step, take a reading (none: the device is silent) and run a cycle."""
        self.clock.advance(every)
        if value is not None:
            self.read(value)
        self.cycle()

    def events(self, kind: EventKind = EventKind.THRESHOLD) -> list:
        return [e for e in self.store.events().values() if e.kind is kind]


def test_an_event_opens_only_once_its_condition_has_held_for_the_pending_time(store, clock):
    store.set_rule(1, StoredRule(300.0, None, None))
    reef = Reef(store, clock)
    reef.step(82.4)
    started = clock.now()
    assert store.states() == {1: started}
    for _ in range(4):
        reef.step(82.6)
    assert reef.events() == []
    reef.step(82.5)  # five minutes since it began to hold
    (event,) = reef.events()
    assert event.triggered_at == clock.now()
    assert event.metadata["condition_since"] == started.isoformat()
    assert store.states() == {}


def test_a_condition_that_stops_holding_starts_its_pending_time_over(store, clock):
    store.set_rule(1, StoredRule(180.0, None, None))
    reef = Reef(store, clock)
    reef.step(82.4)
    reef.step(82.4)
    reef.step(81.9)
    assert store.states() == {}
    reef.step(82.4)
    reef.step(82.4)
    reef.step(82.4)
    assert reef.events() == []


def test_a_restarted_worker_neither_forgets_a_pending_condition_nor_opens_its_event_early(
    store, clock
):
    store.set_rule(1, StoredRule(180.0, None, None))
    reef = Reef(store, clock)
    reef.step(82.4)
    reef.step(82.4)
    reef.restart()
    reef.step(82.4)
    assert reef.events() == []
    reef.restart()
    reef.step(82.4)
    assert len(reef.events()) == 1


def test_an_open_event_stays_open_until_the_value_is_back_past_the_margin(store, clock):
    store.set_rule(1, StoredRule(None, 0.5, None))
    reef = Reef(store, clock)
    reef.step(82.4)
    for value in (81.9, 82.2, 81.6, 82.1):
        reef.step(value)
    (event,) = reef.events()
    assert not event.resolved
    reef.step(81.4)
    (event,) = reef.events()
    assert event.resolution_value == 81.4


def test_a_silent_device_opens_a_no_data_event_and_its_next_reading_resolves_it(store, clock):
    store.set_rule(1, StoredRule(None, None, 600.0))
    reef = Reef(store, clock)
    reef.step(82.4)  # the threshold event opens
    for _ in range(10):
        reef.step(None)
    assert reef.events(EventKind.NO_DATA) == []
    reef.step(None)  # eleven minutes since the last reading
    (silent,) = reef.events(EventKind.NO_DATA)
    assert silent.current_value is None
    assert silent.metadata["silent_seconds"] == 660.0
    assert silent.metadata["last_reading_at"] == (clock.now() - timedelta(minutes=11)).isoformat()
    (threshold,) = reef.events()
    assert not threshold.resolved  # silence never resolves it
    reef.step(81.0)
    (silent,) = reef.events(EventKind.NO_DATA)
    assert silent.resolved
    (threshold,) = reef.events()
    assert threshold.resolved  # the fresh reading judged it, as ever


def test_a_device_that_never_reported_opens_a_no_data_event(store, clock):
    reef = Reef(store, clock, RuleOptions(no_data_after=timedelta(minutes=10)))
    reef.step(None)
    (silent,) = reef.events(EventKind.NO_DATA)
    assert silent.metadata["last_reading_at"] is None


def test_the_default_options_apply_to_every_alert_without_its_own(store, clock):
    store.add_device(SALINITY)
    store.add_alert(TOO_SALTY)
    store.set_rule(2, StoredRule(None, None, 0.0))  # no-data events off, whatever the default
    reef = Reef(store, clock, RuleOptions(no_data_after=timedelta(minutes=5)))
    reef.step(None, every=timedelta(minutes=6))
    assert [e.alert_id for e in reef.events(EventKind.NO_DATA)] == [1]


def test_the_cycle_counts_pending_alerts_and_no_data_events(store, clock):
    store.set_rule(1, StoredRule(300.0, None, 120.0))
    reef = Reef(store, clock)
    reef.clock.advance(timedelta(minutes=1))
    reef.read(82.4)
    stats = reef.cycle()
    assert (stats.evaluated, stats.pending, stats.no_data_opened) == (1, 1, 0)
    clock.advance(timedelta(minutes=3))
    stats = reef.cycle()
    assert (stats.skipped, stats.pending, stats.no_data_opened) == (0, 1, 1)
    assert stats.as_dict()["no_data_opened"] == 1


def test_a_broken_options_row_costs_its_alert_alone(store, clock, caplog):
    store.add_device(SALINITY)
    store.add_alert(TOO_SALTY)
    store.set_rule(1, StoredRule(-5.0, None, None))
    reef = Reef(store, clock)
    reef.clock.advance(timedelta(minutes=1))
    reef.read(82.4)
    store.add_reading(Reading(99, 2, clock.now(), value=37.0))
    stats = reef.cycle()
    assert stats.errors == 1
    assert [e.alert_id for e in reef.events()] == [2]
    assert "its options in reef_alerts_rules are invalid: pending must be 0" in caplog.text


def test_a_deleted_alert_takes_its_options_and_state_with_it(store, clock):
    store.set_rule(1, StoredRule(300.0, None, None))
    reef = Reef(store, clock)
    reef.step(82.4)
    assert store.states()
    store.remove_alert(1)
    reef.step(82.4)
    assert store.states() == {}
    assert reef.events() == []


def test_a_pending_condition_nobody_saw_hold_for_a_while_starts_over(store, clock):
    store.set_rule(1, StoredRule(600.0, None, None))
    reef = Reef(store, clock)
    reef.step(82.4)
    store.add_alert(attrs.evolve(TOO_HOT, enabled=False))  # disabled for a day
    reef.step(82.4, every=timedelta(days=1))
    store.add_alert(TOO_HOT)
    reef.step(82.4)
    assert reef.events() == []
    assert store.states() == {1: clock.now()}  # its wait began again now


@pytest.mark.parametrize("offset", [timedelta(days=3650), -timedelta(days=3650)])
def test_a_pending_instant_from_far_away_counts_as_none(store, clock, offset):
    store.set_rule(1, StoredRule(300.0, None, None))
    reef = Reef(store, clock)
    reef.read(82.4)
    store.remember_pending(1, clock.now() + offset)  # a row edited by hand
    reef.cycle()
    assert reef.events() == []
    assert store.states() == {1: clock.now()}


def test_a_device_polled_less_often_than_the_limit_gets_two_poll_intervals(store, clock):
    store.add_device(attrs.evolve(HEATER, poll_interval=timedelta(minutes=30)))
    store.set_rule(1, StoredRule(None, None, 600.0))
    reef = Reef(store, clock)
    reef.step(80.0)
    reef.step(None, every=timedelta(minutes=45))
    assert reef.events(EventKind.NO_DATA) == []
    reef.step(None, every=timedelta(minutes=16))
    (silent,) = reef.events(EventKind.NO_DATA)
    assert silent.metadata["no_data_after_seconds"] == 3600.0
