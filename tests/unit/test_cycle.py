"""RunCycle against the in-memory fakes: statistics, events written, logs, atomic writes."""

import logging
import math
from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from reef_alerts.application import RunCycle
from reef_alerts.domain import AlertEvent, Device, EvaluationPolicy, Operator, Reading
from reef_alerts.ports import WHOLE, AlertSnapshot, EventChanges, Focus, Shard, StoredRule
from tests.fakes import (
    AlertRow,
    DuplicateOpenEventError,
    FakeClock,
    FakeUnitOfWork,
    InMemoryStore,
)

LOGGER = "reef_alerts.tests.cycle"
STAT_KEYS = {"total_alerts", "evaluated", "triggered", "resolved", "skipped", "errors"}

TANK = Device(id=1, name="Main Tank", type="temperature_probe", unit="°F")
SUMP = Device(id=2, name="Sump", type="ph_probe", unit="pH")
TOO_HOT = AlertRow(id=1, device_id=1, metric="temperature", operator=">", threshold=82.0)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def caplog_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def make_cycle(
    store: InMemoryStore, clock: FakeClock, policy: EvaluationPolicy | None = None
) -> RunCycle:
    return RunCycle(
        store.unit_of_work, clock, policy or EvaluationPolicy(), logging.getLogger(LOGGER)
    )


def add_temperature(
    store: InMemoryStore,
    clock: FakeClock,
    value: object,
    *,
    reading_id: int = 1,
    device_id: int = 1,
    age: timedelta = timedelta(seconds=10),
) -> Reading:
    return store.add_reading(
        Reading(
            id=reading_id,
            device_id=device_id,
            timestamp=clock.now() - age,
            json_value={"temperature": value},
        )
    )


def open_event_for(store: InMemoryStore, alert: AlertRow, value: float) -> AlertEvent:
    return store.add_event(
        AlertEvent(
            alert_id=alert.id,
            device_id=alert.device_id,
            triggered_at=FakeClock().now() - timedelta(hours=1),
            current_value=value,
            threshold_value=alert.threshold or 0.0,
            operator=Operator.parse(alert.operator),
            metric=alert.metric,
        )
    )


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def seed_one_of_each_outcome(store: InMemoryStore, clock: FakeClock) -> None:
    """Alert 1 triggers, 2 resolves, 3 stays open, 4 is skipped, 5 is broken, 6 is disabled."""
    store.add_device(TANK)
    store.add_device(SUMP)
    add_temperature(store, clock, 85.2)
    store.add_reading(
        Reading(id=2, device_id=2, timestamp=clock.now(), json_value={"ph": 8.1, "alk": 7.0})
    )
    store.add_alert(TOO_HOT)
    ph_high = store.add_alert(AlertRow(2, 2, "ph", ">", 8.4))
    open_event_for(store, ph_high, 8.6)
    alk_low = store.add_alert(AlertRow(3, 2, "alk", "<", 7.5))
    open_event_for(store, alk_low, 7.2)
    store.add_alert(AlertRow(4, 2, "salinity", ">", 36.0))
    store.add_alert(AlertRow(5, 1, "temperature", "=>", 82.0))
    store.add_alert(AlertRow(6, 1, "temperature", ">", 10.0, enabled=False))


# Statistics


def test_statistics_have_exactly_the_six_documented_keys(store, clock):
    seed_one_of_each_outcome(store, clock)
    assert set(make_cycle(store, clock)().as_dict()) == STAT_KEYS


def test_statistics_count_each_outcome_and_total_is_evaluated_plus_skipped_plus_errors(
    store, clock
):
    seed_one_of_each_outcome(store, clock)
    stats = make_cycle(store, clock)().as_dict()
    assert stats == {
        "total_alerts": 5,
        "evaluated": 3,
        "triggered": 1,
        "resolved": 1,
        "skipped": 1,
        "errors": 1,
    }
    assert stats["total_alerts"] == stats["evaluated"] + stats["skipped"] + stats["errors"]


def test_a_cycle_counts_the_state_it_leaves_each_alert_in(store, clock):
    seed_one_of_each_outcome(store, clock)
    store.add_alert(AlertRow(7, 1, "temperature", ">", 82.0))
    store.set_rule(7, StoredRule(300.0, None, None))  # holds, but must hold for 5 minutes
    store.add_alert(AlertRow(8, 3, "temperature", ">", 82.0))
    store.set_rule(8, StoredRule(None, None, 600.0))  # a device that never reported
    store.add_device(Device(id=3, name="Frag Tank", type="heater", unit="°F"))

    stats = make_cycle(store, clock)()

    assert stats.states == {
        "firing": 2,
        "ok": 1,
        "skipped": 1,
        "error": 1,
        "pending": 1,
        "no_data": 1,
    }
    assert sum(stats.states.values()) == stats.total_alerts


def test_a_trigger_says_when_its_reading_was_taken(store, clock):
    store.add_device(TANK)
    reading = add_temperature(store, clock, 85.2, age=timedelta(seconds=40))
    store.add_alert(TOO_HOT)

    [change] = make_cycle(store, clock)().changes

    assert (change.change, change.reading_at) == ("trigger", reading.timestamp)


def test_a_cycle_without_enabled_alerts_reports_zeros(store, clock, caplog_debug):
    store.add_device(TANK)
    store.add_alert(AlertRow(1, 1, "temperature", ">", 82.0, enabled=False))
    stats = make_cycle(store, clock)().as_dict()
    assert stats == dict.fromkeys(STAT_KEYS, 0)
    assert "Found 0 enabled alerts to evaluate" in messages(caplog_debug, logging.INFO)


# Triggering and resolving


def test_triggers_an_event_and_logs_it_as_the_legacy_worker_did(store, clock, caplog_debug):
    store.add_device(TANK)
    add_temperature(store, clock, 85.2)
    store.add_alert(TOO_HOT)
    make_cycle(store, clock)()
    assert messages(caplog_debug, logging.INFO) == [
        "Found 1 enabled alerts to evaluate",
        "Alert 1 triggered: Threshold exceeded: 85.2 > 82.0",
        "Created alert event for alert 1, device Main Tank, value 85.2",
    ]


def test_the_triggered_event_is_stored_open_with_its_reading_in_the_metadata(store, clock):
    store.add_device(TANK)
    newest = add_temperature(store, clock, 85.2, reading_id=41)
    store.add_alert(TOO_HOT)
    stats = make_cycle(store, clock)()
    [event] = store.open_events()
    assert stats.triggered == 1
    assert event.id is not None
    assert (event.alert_id, event.device_id, event.current_value) == (1, 1, 85.2)
    assert event.triggered_at == clock.now()
    assert event.metadata["reading_id"] == 41
    assert event.metadata["reading_timestamp"] == newest.timestamp.isoformat()
    assert event.metadata["device_name"] == "Main Tank"


def test_resolves_open_event_when_value_returns_below_threshold(store, clock, caplog_debug):
    store.add_device(TANK)
    add_temperature(store, clock, 80.1)
    store.add_alert(TOO_HOT)
    opened = open_event_for(store, TOO_HOT, 85.2)
    stats = make_cycle(store, clock)()
    resolved = store.events()[opened.id]
    assert stats.resolved == 1
    assert resolved.resolved
    assert resolved.resolved_at == clock.now()
    assert resolved.resolution_value == 80.1
    assert store.open_events() == []
    assert "Alert 1 resolved: Condition cleared: 80.1 > 82.0 no longer holds" in messages(
        caplog_debug, logging.INFO
    )


def test_an_open_event_stays_open_while_the_condition_holds(store, clock):
    store.add_device(TANK)
    add_temperature(store, clock, 84.0)
    store.add_alert(TOO_HOT)
    opened = open_event_for(store, TOO_HOT, 85.2)
    stats = make_cycle(store, clock)()
    assert (stats.evaluated, stats.triggered, stats.resolved) == (1, 0, 0)
    assert store.open_events() == [opened]


def test_an_alert_triggers_again_after_its_event_was_resolved(store, clock):
    store.add_device(TANK)
    store.add_alert(TOO_HOT)
    run = make_cycle(store, clock)
    for reading_id, value in enumerate([85.2, 80.1, 86.0], start=1):
        clock.advance(timedelta(minutes=1))
        add_temperature(store, clock, value, reading_id=reading_id)
        run()
    events = sorted(store.events().values(), key=lambda e: e.id)
    assert [(e.current_value, e.resolved) for e in events] == [(85.2, True), (86.0, False)]


def test_evaluates_the_devices_newest_reading(store, clock):
    store.add_device(TANK)
    add_temperature(store, clock, 85.2, reading_id=1, age=timedelta(minutes=2))
    add_temperature(store, clock, 80.0, reading_id=2, age=timedelta(minutes=1))
    store.add_alert(TOO_HOT)
    stats = make_cycle(store, clock)()
    assert (stats.evaluated, stats.triggered) == (1, 0)


def test_the_policy_given_to_the_use_case_decides_staleness(store, clock):
    store.add_device(Device(id=1, name="Main Tank", type="probe", poll_interval=timedelta(0)))
    add_temperature(store, clock, 85.2, age=timedelta(minutes=3))
    store.add_alert(TOO_HOT)
    strict = EvaluationPolicy(max_reading_age=timedelta(minutes=1))
    assert make_cycle(store, clock, strict)().skipped == 1
    assert make_cycle(store, clock)().triggered == 1


def test_a_reading_goes_stale_as_the_clock_moves_on(store, clock):
    store.add_device(TANK)
    add_temperature(store, clock, 85.2)
    store.add_alert(TOO_HOT)
    clock.advance(timedelta(minutes=10))
    stats = make_cycle(store, clock)()
    assert (stats.skipped, stats.triggered) == (1, 0)


# Skips


def _device_missing(store: InMemoryStore, clock: FakeClock) -> None:
    add_temperature(store, clock, 85.2)


def _device_inactive(store: InMemoryStore, clock: FakeClock) -> None:
    store.add_device(Device(id=1, name="Main Tank", type="probe", active=False))
    add_temperature(store, clock, 85.2)


def _no_reading(store: InMemoryStore, clock: FakeClock) -> None:
    store.add_device(TANK)


def _stale(store: InMemoryStore, clock: FakeClock) -> None:
    store.add_device(TANK)
    add_temperature(store, clock, 85.2, age=timedelta(minutes=6))


def _future(store: InMemoryStore, clock: FakeClock) -> None:
    store.add_device(TANK)
    add_temperature(store, clock, 85.2, age=-timedelta(minutes=2))


def _metric_missing(store: InMemoryStore, clock: FakeClock) -> None:
    store.add_device(TANK)
    store.add_reading(Reading(id=1, device_id=1, timestamp=clock.now(), json_value={"ph": 8.1}))


def _invalid_value(store: InMemoryStore, clock: FakeClock) -> None:
    store.add_device(TANK)
    add_temperature(store, clock, "warm")


@pytest.mark.parametrize(
    ("seed", "reason"),
    [
        (_device_missing, "device 1 does not exist"),
        (_device_inactive, "device 'Main Tank' is inactive"),
        (_no_reading, "device 'Main Tank' has no readings"),
        (_stale, "newest reading 1 is 360s old (limit 300s)"),
        (_future, "reading 1 is timestamped 120s in the future"),
        (_metric_missing, "metric 'temperature' not in reading 1"),
        (_invalid_value, "'temperature' in json_value is not a finite number: 'warm' (str)"),
    ],
)
def test_counts_a_skip_and_warns_of_it_once_with_its_reason(
    store, clock, caplog_debug, seed: Callable[[InMemoryStore, FakeClock], None], reason
):
    seed(store, clock)
    store.add_alert(TOO_HOT)
    cycle = make_cycle(store, clock)
    stats = cycle().as_dict()
    assert stats == dict.fromkeys(STAT_KEYS, 0) | {"total_alerts": 1, "skipped": 1}
    assert messages(caplog_debug, logging.WARNING) == [f"Alert 1 is skipped: {reason}"]
    [(status, recorded_reason)] = store.statuses().values()
    assert (status.state, status.since, recorded_reason) == ("skipped", clock.now(), reason)

    caplog_debug.clear()
    clock.advance(timedelta(seconds=30))
    cycle()

    assert messages(caplog_debug, logging.WARNING) == []
    assert messages(caplog_debug, logging.DEBUG)[0].startswith("Alert 1: still ")
    assert store.statuses()[1][0].since == clock.now() - timedelta(seconds=30)


def test_a_new_reason_to_skip_is_warned_of_again(store, clock, caplog_debug):
    _stale(store, clock)
    store.add_alert(TOO_HOT)
    cycle = make_cycle(store, clock)
    cycle()
    store.add_device(attrs.evolve(TANK, active=False))
    caplog_debug.clear()

    cycle()

    assert messages(caplog_debug, logging.WARNING) == [
        "Alert 1 is skipped: device 'Main Tank' is inactive"
    ]
    assert store.statuses()[1][0].code == "device inactive"


def test_an_alert_judged_again_says_so_and_loses_its_status(store, clock, caplog_debug):
    _stale(store, clock)
    store.add_alert(TOO_HOT)
    cycle = make_cycle(store, clock)
    cycle()
    add_temperature(store, clock, 80.0, reading_id=2)
    caplog_debug.clear()

    stats = cycle()

    assert stats.evaluated == 1
    assert "Alert 1 is judged again (it was skipped since 2024-01-01 12:00:00 UTC)" in messages(
        caplog_debug, logging.INFO
    )
    assert store.statuses() == {}


def test_a_thousand_alerts_skipped_at_once_are_twenty_lines_and_a_count(store, clock, caplog_debug):
    store.add_device(attrs.evolve(TANK, active=False))
    for alert_id in range(1, 1_001):
        store.add_alert(attrs.evolve(TOO_HOT, id=alert_id))

    make_cycle(store, clock)()

    warnings = messages(caplog_debug, logging.WARNING)
    assert len(warnings) == 21
    assert warnings[-1] == (
        "... and 980 more alerts changed status in this cycle (980 skipped, 0 could not be "
        "evaluated, 0 judged again): alerts "
        + ", ".join(str(n) for n in range(21, 41))
        + ", ...; `reef-alerts alerts` says why"
    )
    assert len(store.statuses()) == 1_000


def test_a_broken_alert_is_warned_of_once_and_counted_every_cycle(store, clock, caplog_debug):
    store.add_device(TANK)
    add_temperature(store, clock, 85.2)
    store.add_alert(AlertRow(1, 1, "temperature", "=>", 82.0))
    cycle = make_cycle(store, clock)

    first, second = cycle(), cycle()

    assert (first.errors, second.errors) == (1, 1)
    [warning] = messages(caplog_debug, logging.WARNING)
    assert warning.startswith("Alert 1 could not be evaluated: device 1, reading 1: unknown")
    assert store.statuses()[1][0].state == "error"


def test_a_skipped_alert_keeps_its_open_event(store, clock):
    _stale(store, clock)
    store.add_alert(TOO_HOT)
    opened = open_event_for(store, TOO_HOT, 85.2)
    make_cycle(store, clock)()
    assert store.open_events() == [opened]


def test_skips_are_not_logged_when_debug_is_off(store, clock, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    _no_reading(store, clock)
    store.add_alert(TOO_HOT)
    assert make_cycle(store, clock)().skipped == 1
    assert messages(caplog, logging.DEBUG) == []


# Broken alert rows


@pytest.mark.parametrize(
    ("operator", "threshold", "why"),
    [
        ("=>", 82.0, "unknown operator '=>'; allowed operators are >, <, ==, >=, <=, !="),
        ("", 82.0, "unknown operator ''"),
        (">", math.nan, "threshold must be a finite number, got nan"),
        (">", math.inf, "threshold must be a finite number, got inf"),
        (">", None, "threshold is missing"),
    ],
)
def test_a_broken_alert_row_counts_as_an_error_logged_with_its_id_and_the_cycle_goes_on(
    store, clock, caplog_debug, operator, threshold, why
):
    store.add_device(TANK)
    add_temperature(store, clock, 85.2)
    store.add_alert(AlertRow(1, 1, "temperature", operator, threshold))
    store.add_alert(AlertRow(2, 1, "temperature", ">", 82.0))
    stats = make_cycle(store, clock)()
    assert (stats.total_alerts, stats.errors, stats.evaluated, stats.triggered) == (2, 1, 1, 1)
    [warning] = messages(caplog_debug, logging.WARNING)
    assert warning.startswith("Alert 1 could not be evaluated: ")
    assert why in warning
    assert [e.alert_id for e in store.open_events()] == [2]


# Atomic writes


def seed_a_trigger_and_a_resolution(store: InMemoryStore, clock: FakeClock) -> None:
    store.add_device(TANK)
    add_temperature(store, clock, 85.2)
    store.add_alert(TOO_HOT)
    cold = store.add_alert(AlertRow(2, 1, "temperature", "<", 70.0))
    open_event_for(store, cold, 69.0)


def test_a_failing_write_leaves_the_store_unchanged(store, clock, caplog_debug):
    seed_a_trigger_and_a_resolution(store, clock)
    before = store.snapshot()
    store.apply_error = RuntimeError("connection lost")
    with pytest.raises(RuntimeError, match="connection lost"):
        make_cycle(store, clock)()
    assert store.snapshot() == before
    assert not any(
        m.startswith("Created alert event") for m in messages(caplog_debug, logging.INFO)
    )


def test_the_cycle_after_a_failed_write_recomputes_the_same_changes(store, clock):
    seed_a_trigger_and_a_resolution(store, clock)
    run = make_cycle(store, clock)
    store.apply_error = RuntimeError("connection lost")
    with pytest.raises(RuntimeError, match="connection lost"):
        run()
    store.apply_error = None
    stats = run()
    assert (stats.triggered, stats.resolved) == (1, 1)
    assert [e.alert_id for e in store.open_events()] == [1]


def test_a_failing_snapshot_read_propagates_and_writes_nothing(store, clock):
    seed_a_trigger_and_a_resolution(store, clock)
    before = store.snapshot()
    store.read_error = ConnectionError("database is down")
    with pytest.raises(ConnectionError, match="database is down"):
        make_cycle(store, clock)()
    assert store.snapshot() == before


def test_rerunning_a_cycle_on_unchanged_data_changes_nothing(store, clock):
    seed_one_of_each_outcome(store, clock)
    run = make_cycle(store, clock)
    first = run()
    after_first = store.snapshot()
    second = run()
    assert store.snapshot() == after_first
    assert (first.triggered, first.resolved) == (1, 1)
    assert (second.triggered, second.resolved) == (0, 0)
    assert (second.total_alerts, second.evaluated) == (first.total_alerts, first.evaluated)


# The fakes keep the promises of the ports the cycle relies on


def unstored(event: AlertEvent, **changes: object) -> AlertEvent:
    """A new, not yet stored copy of `event`, with `changes`."""
    return attrs.evolve(event, id=None, **changes)  # type: ignore[arg-type]


def test_fake_unit_of_work_discards_what_was_not_committed(store, clock):
    seed_a_trigger_and_a_resolution(store, clock)
    before = store.snapshot()
    event = store.open_events()[0]
    with store.unit_of_work() as uow:
        uow.events.submit(EventChanges(opened=[unstored(event, alert_id=1)]))
        assert len(uow.snapshots.enabled_alerts()) == 2
    assert store.snapshot() == before


def test_fake_unit_of_work_rollback_forgets_uncommitted_changes(store, clock):
    seed_a_trigger_and_a_resolution(store, clock)
    event = store.open_events()[0]
    with store.unit_of_work() as uow:
        uow.events.submit(EventChanges(opened=[unstored(event, alert_id=1)]))
        uow.rollback()
        uow.commit()
    assert [e.alert_id for e in store.open_events()] == [2]


def test_fake_unit_of_work_commit_makes_changes_visible(store, clock):
    seed_a_trigger_and_a_resolution(store, clock)
    event = store.open_events()[0]
    with store.unit_of_work() as uow:
        uow.events.submit(EventChanges(opened=[unstored(event, alert_id=1)]))
        uow.commit()
    assert sorted(e.alert_id for e in store.open_events()) == [1, 2]


def test_fake_store_never_stores_a_second_open_event_for_an_alert(store, clock):
    seed_a_trigger_and_a_resolution(store, clock)
    event = store.open_events()[0]
    with store.unit_of_work() as uow:
        # like INSERT ... ON CONFLICT DO NOTHING on the partial unique index (ADR 0004)
        uow.events.submit(EventChanges(opened=[unstored(event)]))
        uow.commit()
    assert store.open_events() == [event]
    with pytest.raises(DuplicateOpenEventError):
        store.add_event(unstored(event))


def test_fake_unit_of_work_is_unusable_outside_its_with_block(store):
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        store.unit_of_work().snapshots.enabled_alerts()


class _LateUnitOfWork(FakeUnitOfWork):
    """Reads before another worker's event for alert 1 lands, and writes after it did."""

    def __init__(self, store: InMemoryStore, rival: AlertEvent) -> None:
        super().__init__(store)
        self._rival = rival
        read = self.snapshots.enabled_alerts

        def read_then_lose_the_race(
            shard: Shard = WHOLE, focus: Focus | None = None
        ) -> list[AlertSnapshot]:
            snapshots = read(shard, focus)
            self.tables().insert_event(self._rival)
            return snapshots

        self.snapshots.enabled_alerts = read_then_lose_the_race  # type: ignore[method-assign]


def test_counts_and_logs_only_the_events_it_wrote_itself(store, clock, caplog_debug):
    store.add_device(TANK)
    store.add_alert(TOO_HOT)
    add_temperature(store, clock, 85.2)
    rival = AlertEvent(
        alert_id=1,
        device_id=1,
        triggered_at=clock.now(),
        current_value=85.1,
        threshold_value=82.0,
        operator=Operator.GT,
        metric="temperature",
    )
    cycle = RunCycle(
        lambda: _LateUnitOfWork(store, rival),
        clock,
        EvaluationPolicy(),
        logging.getLogger(LOGGER),
    )

    stats = cycle()

    assert (stats.evaluated, stats.triggered) == (1, 0)
    assert [e.current_value for e in store.events().values()] == [85.1]
    assert "Alert 1: another worker opened its event first" in messages(caplog_debug, logging.DEBUG)
    assert not [m for m in messages(caplog_debug, logging.INFO) if "Created alert event" in m]
