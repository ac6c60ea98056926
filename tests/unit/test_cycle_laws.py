"""Hypothesis laws of RunCycle over the fakes: any sequence of readings, several alerts.

Two devices and a few alerts (some broken, some disabled). Each step moves the clock, may
change the devices, adds readings, then runs one cycle, whose write sometimes fails; each
successful cycle can be run a second time on the same data. The generator records which number each
reading carries for each metric; the oracle below adds the freshness rule as the spec states it.
"""

import contextlib
import logging
import math
from collections import Counter
from datetime import datetime, timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reef_alerts.application import CycleStats, RunCycle
from reef_alerts.domain import Device, EvaluationPolicy, Operator, Reading
from tests.fakes import AlertRow, FakeClock, InMemoryStore, Tables

POLICY = EvaluationPolicy()
METRICS = ["temperature", "probe1.temperature", "ph"]
INVALID = [math.nan, math.inf, "warm", True, None, [5.0], {"v": 5.0}]
LOG = logging.getLogger("reef_alerts.tests.cycle_laws")
SEQUENCES = settings(max_examples=max(10, settings.default.max_examples // 2))
"""Each example is up to ten cycles over several alerts, so half the profile's examples do."""


class WriteFailedError(RuntimeError):
    """The injected failure of apply()."""


@attrs.frozen
class StoredMetric:
    """How a new reading stores one metric in json_value."""

    kind: str
    """"number", "text" (its repr), "invalid" or "absent"."""
    number: float
    invalid: object


@attrs.frozen
class NewReading:
    device_id: int
    age: timedelta
    """How long before "now" it was taken (negative: in the future)."""
    value: float | None
    metrics: tuple[StoredMetric, ...]
    """One per entry of METRICS."""

    @property
    def simple(self) -> bool:
        """No metric in json_value: a simple reading, whose `value` stands for every metric."""
        return all(stored.kind == "absent" for stored in self.metrics)

    def document(self) -> dict[str, object] | None:
        """json_value: {"temperature": ..., "probe1": {"temperature": ...}, "ph": ...}, or None
        for a simple reading."""
        if self.simple:
            return None
        document: dict[str, object] = {}
        for metric, stored in zip(METRICS, self.metrics, strict=True):
            if stored.kind == "absent":
                continue
            raw = {"number": stored.number, "text": repr(stored.number)}.get(
                stored.kind, stored.invalid
            )
            *parents, leaf = metric.split(".")
            node = document
            for key in parents:
                node = node.setdefault(key, {})  # type: ignore[assignment]
            node[leaf] = raw
        return document

    def numbers(self) -> dict[str, float | None]:
        """What the reading carries for each metric: a number, or None (absent or invalid).

        A multi-metric reading's `value` is one of its channels, never a stand-in (ADR 0002)."""
        if self.simple:
            return dict.fromkeys(METRICS, self.value)
        return {
            metric: None if stored.kind in {"absent", "invalid"} else stored.number
            for metric, stored in zip(METRICS, self.metrics, strict=True)
        }


@attrs.frozen
class CycleStep:
    advance: timedelta
    device_states: dict[int, str]
    """Each device's state for this cycle: "active", "inactive" or "missing"."""
    readings: tuple[NewReading, ...]
    write_fails: bool


@attrs.frozen
class World:
    devices: tuple[Device, ...]
    alerts: tuple[AlertRow, ...]
    steps: tuple[CycleStep, ...]


@attrs.frozen
class CycleRecord:
    now: datetime
    alerts: tuple[AlertRow, ...]
    usable: dict[int, float | None]
    """Per enabled, well-formed alert: the number to judge, None when it cannot be judged."""
    before: Tables
    after: Tables
    stats: CycleStats | None
    """None when the write failed."""
    rerun_stats: CycleStats | None
    rerun_after: Tables | None


THRESHOLDS = [4.0, 5.0, 6.0]
# readings cluster around the thresholds, so conditions start and stop holding often
values = st.sampled_from([3.5, 4.0, 4.5, 5.0005, 5.5, 6.5]) | st.floats(0, 10)
seconds = st.integers  # whole seconds draw faster than st.timedeltas
numbers = values.map(lambda n: StoredMetric("number", n, None))
stored_metrics = st.one_of(
    numbers,
    numbers,
    values.map(lambda n: StoredMetric("text", n, None)),
    st.sampled_from(INVALID).map(lambda raw: StoredMetric("invalid", 0.0, raw)),
    st.just(StoredMetric("absent", 0.0, None)),
)
new_readings = st.builds(
    NewReading,
    device_id=st.sampled_from([1, 2]),
    # mostly fresh when stored; the clock moves on
    age=st.one_of(seconds(0, 240), seconds(0, 240), seconds(-120, 1500)).map(
        lambda s: timedelta(seconds=s)
    ),
    value=st.one_of(st.none(), st.none(), values),
    metrics=st.tuples(*[stored_metrics] * len(METRICS)),
)
steps = st.builds(
    CycleStep,
    advance=st.one_of(seconds(0, 180), st.just(600)).map(lambda s: timedelta(seconds=s)),
    device_states=st.fixed_dictionaries(
        dict.fromkeys([1, 2], st.sampled_from(["active"] * 8 + ["inactive", "missing"]))
    ),
    readings=st.lists(new_readings, min_size=1, max_size=3).map(tuple),
    write_fails=st.sampled_from([False] * 7 + [True]),
)
alert_rows = st.builds(
    AlertRow,
    id=st.just(0),  # numbered below
    device_id=st.sampled_from([1, 2]),
    metric=st.sampled_from(METRICS),
    # now and then a row the web app should never have stored
    operator=st.sampled_from([op.value for op in Operator] * 3 + ["=>"]),
    threshold=st.tuples(
        st.sampled_from(THRESHOLDS), st.sampled_from(["finite"] * 18 + ["null", "nan"])
    ).map(lambda number_kind: {"null": None, "nan": math.nan}.get(number_kind[1], number_kind[0])),
    enabled=st.sampled_from([True] * 9 + [False]),
)
devices = st.builds(
    Device,
    id=st.just(0),  # numbered below
    name=st.just("Tank"),
    type=st.just("probe"),
    polled=st.booleans(),
    poll_interval=st.sampled_from([timedelta(seconds=10), timedelta(minutes=5)]),
)
worlds = st.builds(
    World,
    devices=st.tuples(devices, devices).map(
        lambda pair: tuple(attrs.evolve(d, id=i, name=f"Tank {i}") for i, d in enumerate(pair, 1))
    ),
    alerts=st.lists(alert_rows, min_size=1, max_size=4).map(
        lambda rows: tuple(attrs.evolve(row, id=i) for i, row in enumerate(rows, 1))
    ),
    steps=st.lists(steps, min_size=1, max_size=10).map(tuple),
)


def is_broken(alert: AlertRow) -> bool:
    return alert.operator not in {op.value for op in Operator} or not (
        alert.threshold is not None and math.isfinite(alert.threshold)
    )


def holds(alert: AlertRow, value: float) -> bool:
    assert alert.threshold is not None
    return Operator.parse(alert.operator).holds(value, alert.threshold, POLICY.tolerance)


def usable_number(
    alert: AlertRow, tables: Tables, now: datetime, numbers: dict[tuple[int, str], float | None]
) -> float | None:
    """The number the alert must be judged on, or None when it cannot be judged now."""
    device = tables.devices.get(alert.device_id)
    reading = tables.newest_reading(alert.device_id)
    if device is None or not device.active or reading is None:
        return None
    if reading.timestamp > now + POLICY.clock_skew:
        return None
    limit = max(POLICY.max_reading_age, 2 * device.poll_interval)
    if device.polled and now - reading.timestamp > limit:
        return None
    return numbers[(reading.id, alert.metric)]


def replay(world: World, rerun: bool = False) -> list[CycleRecord]:
    """Run the world's cycles; with `rerun`, run each successful cycle a second time."""
    store, clock = InMemoryStore(), FakeClock()
    for device in world.devices:
        store.add_device(device)
    for alert in world.alerts:
        store.add_alert(alert)
    run = RunCycle(store.unit_of_work, clock, POLICY, LOG)
    numbers: dict[tuple[int, str], float | None] = {}
    reading_id = 0
    records = []
    for step in world.steps:
        clock.advance(step.advance)
        for device_id, state in step.device_states.items():
            if state == "missing":
                store.remove_device(device_id)
            else:
                device = world.devices[device_id - 1]
                store.add_device(attrs.evolve(device, active=state == "active"))
        for new in step.readings:
            reading_id += 1
            store.add_reading(
                Reading(
                    id=reading_id,
                    device_id=new.device_id,
                    timestamp=clock.now() - new.age,
                    value=new.value,
                    json_value=new.document(),
                )
            )
            numbers.update({(reading_id, metric): n for metric, n in new.numbers().items()})
        before = store.snapshot()
        usable = {
            a.id: usable_number(a, before, clock.now(), numbers)
            for a in world.alerts
            if a.enabled and not is_broken(a)
        }
        store.apply_error = WriteFailedError("write failed") if step.write_fails else None
        stats = rerun_stats = rerun_after = None
        with contextlib.suppress(WriteFailedError):
            stats = run()
        store.apply_error = None
        after = store.snapshot()
        if rerun and stats is not None:
            rerun_stats, rerun_after = run(), store.snapshot()
        records.append(
            CycleRecord(
                clock.now(), world.alerts, usable, before, after, stats, rerun_stats, rerun_after
            )
        )
    return records


def open_event_ids(tables: Tables) -> dict[int, int]:
    """alert id -> its open event's id."""
    return {e.alert_id: e.id for e in tables.events.values() if not e.resolved}  # type: ignore[misc]


def alert_by_id(record: CycleRecord) -> dict[int, AlertRow]:
    return {a.id: a for a in record.alerts}


@SEQUENCES
@given(worlds)
def test_run_cycle_never_leaves_two_open_events_for_one_alert(world):
    """After every cycle, failed or not, each alert has at most one open event in the store."""
    for record in replay(world):
        opened = Counter(e.alert_id for e in record.after.events.values() if not e.resolved)
        assert all(count <= 1 for count in opened.values()), opened


@SEQUENCES
@given(worlds)
def test_run_cycle_resolves_only_on_valid_fresh_readings_that_no_longer_meet_the_condition(
    world,
):
    """An event the cycle resolves belongs to an alert whose newest reading is fresh, valid and
    no longer meets the condition; it is closed at the cycle's time with that value."""
    for record in replay(world):
        alerts = alert_by_id(record)
        for event_id in open_event_ids(record.before).values():
            event = record.after.events[event_id]
            if event.resolved:
                number = record.usable.get(event.alert_id)
                assert number is not None, record
                assert not holds(alerts[event.alert_id], number)
                assert (event.resolved_at, event.resolution_value) == (record.now, number)


@SEQUENCES
@given(worlds)
def test_run_cycle_opens_only_when_the_condition_holds_on_a_valid_fresh_reading(world):
    """An event the cycle opens belongs to an enabled, well-formed alert that had none open and
    whose newest reading is fresh, valid and meets the condition; it records that value."""
    for record in replay(world):
        alerts = alert_by_id(record)
        had_open = open_event_ids(record.before)
        for event_id, event in record.after.events.items():
            if event_id not in record.before.events:
                number = record.usable.get(event.alert_id)
                assert event.alert_id not in had_open
                assert number is not None, record
                assert holds(alerts[event.alert_id], number)
                assert (event.current_value, event.triggered_at) == (number, record.now)


@SEQUENCES
@given(worlds)
def test_run_cycle_leaves_each_judged_alert_open_exactly_when_its_condition_holds(world):
    """After a successful cycle, an alert judged on a fresh valid reading has an open event iff
    its condition holds; every other alert keeps the open event it had; the statistics add up."""
    for record in replay(world):
        if record.stats is None:
            continue
        alerts = alert_by_id(record)
        open_before, open_after = open_event_ids(record.before), open_event_ids(record.after)
        for alert in record.alerts:
            number = record.usable.get(alert.id)
            if number is None:
                assert open_after.get(alert.id) == open_before.get(alert.id)
            else:
                assert (alert.id in open_after) is holds(alerts[alert.id], number)
        stats = record.stats
        assert stats.total_alerts == sum(a.enabled for a in record.alerts)
        assert stats.total_alerts == stats.evaluated + stats.skipped + stats.errors
        assert stats.errors == sum(a.enabled and is_broken(a) for a in record.alerts)
        assert stats.evaluated == sum(n is not None for n in record.usable.values())
        assert stats.triggered == len(record.after.events) - len(record.before.events)
        assert stats.resolved == len(set(open_before.values()) - set(open_after.values()))


@SEQUENCES
@given(worlds)
def test_a_failed_write_leaves_the_store_as_it_was(world):
    """A cycle whose write fails commits nothing: the store after it equals the store before."""
    for record in replay(world):
        if record.stats is None:
            assert record.after == record.before


@SEQUENCES
@given(worlds)
def test_rerunning_a_cycle_without_new_data_changes_nothing(world):
    """A cycle run again at the same time on the same data triggers and resolves nothing."""
    for record in replay(world, rerun=True):
        if record.rerun_stats is not None:
            assert record.rerun_after == record.after
            assert (record.rerun_stats.triggered, record.rerun_stats.resolved) == (0, 0)
            assert record.rerun_stats.evaluated == record.stats.evaluated
