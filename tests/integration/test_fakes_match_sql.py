"""The in-memory fakes and the SQL adapters on SQLite make the same events from the same history.

A hypothesis state machine seeds a few devices and alerts into both, then replays one random
sequence of readings, alert edits, option edits, device switches, clock moves, restarts and
cycles against each, and compares their events, alert states and cycle statistics after every
step. Ids are mirrored, so the newest
reading (timestamp, then id) and the event metadata that names it agree.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, String, insert, select, type_coerce, update

from reef_alerts.adapters import rule_store, schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.live import SqlReadingWatcher
from reef_alerts.adapters.tables import Generation, alert_state, alert_status, tables_for
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import CycleStats, RunCycle
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Device,
    EvaluationPolicy,
    Operator,
    Reading,
    RuleOptions,
)
from reef_alerts.ports import StoredRule
from tests.fakes import AlertRow, FakeClock, InMemoryStore
from tests.integration.reef import make_app_tables, tables_of

POLICY = EvaluationPolicy()
DEVICE_IDS = (1, 2, 3)
"""Alerts may name device 3 when only two devices were seeded: the missing-device path."""
THRESHOLDS = (8.2, 78.0, 82.0)
OFFSETS = (-1.0, -0.0011, -0.001, -0.0005, 0.0, 0.0005, 0.001, 0.0011, 1.0)
"""Around the legacy tolerance of 0.001, where the six operators part ways."""
SIX = [operator.value for operator in Operator]
operators = st.sampled_from([*SIX, *SIX, " >= ", "=>"])
"""The six; rarely a padded one (still valid) or a broken row, which both must count as an error."""
LOG = logging.getLogger("reef_alerts.tests.fakes_match_sql")

# Repeated entries weight the draw towards readings that decide something: most devices active,
# most readings fresh and carrying the metric, so events open and resolve within a few steps.
mostly_true = st.sampled_from([True, True, True, False])
metrics = st.sampled_from(["temperature", "temperature", "probe1.temperature", "ph", "salinity"])

near_thresholds = st.builds(
    lambda threshold, offset: threshold + offset,
    st.sampled_from(THRESHOLDS),
    st.sampled_from(OFFSETS) | st.floats(-5, 5),
)
thresholds = st.sampled_from(THRESHOLDS) | st.floats(0, 100)

numeric_texts = near_thresholds.map(repr) | st.sampled_from(
    ["82.0", " 81.5 ", "8.2e1", "82", "+82.0005", ".5", "1e999"]
)
"""Numeric strings. SQLite's own text-to-REAL conversion (a string in `value`) rounds them as
float() does; it differs only near 1e-300, far from any reef."""
invalid_texts = st.sampled_from(["n/a", "", "0x10", "1_000", "Infinity", "nan", "8,2"])

json_scalars = st.one_of(
    near_thresholds,
    near_thresholds,
    numeric_texts,
    invalid_texts,
    st.sampled_from([None, True, False, 82, -3, 10**400, math.nan, math.inf, -math.inf]),
)
probe = st.fixed_dictionaries({"temperature": json_scalars}, optional={"ph": json_scalars})
json_objects = st.fixed_dictionaries(
    {"temperature": json_scalars, "probe1": probe},
    optional={"ph": json_scalars, "probe1.temperature": json_scalars},
) | st.fixed_dictionaries(
    {},
    optional={
        "temperature": json_scalars,
        "ph": json_scalars,
        "probe1": probe | json_scalars,
        "probe1.temperature": json_scalars,
    },
)
json_documents = st.one_of(
    st.none(),
    json_objects,
    json_objects,
    st.lists(json_scalars, max_size=2),
    json_scalars,
)

# The column is DOUBLE PRECISION; text gets there only through SQLite's loose typing, so the raw
# strings stand for rows a lax writer left behind. NaN and infinity cannot be stored at all.
raw_values = st.one_of(
    st.none(),
    near_thresholds,
    near_thresholds,
    near_thresholds,
    numeric_texts,
    invalid_texts,
)

ages = st.one_of(
    st.integers(-1, 6).map(lambda tens: 10 * tens),
    st.integers(-1, 6).map(lambda tens: 10 * tens),
    st.integers(-60, 15 * 60),
    st.sampled_from([-31, -30, 119, 120, 121, 299, 300, 301, 599, 600, 601, None]),
)
"""Seconds before "now": mostly on a 10 s grid, so that a device's readings often share a
timestamp and the id breaks the tie; future ones, the skew and staleness limits, None (NULL)."""


@attrs.frozen
class SeedDevice:
    """A device row as seeded; the machine numbers them from 1."""

    active: bool
    polled: bool
    poll_seconds: int
    unit: str | None

    def as_device(self, device_id: int) -> Device:
        return Device(
            id=device_id,
            name=f"Tank {device_id}",
            type="probe",
            unit=self.unit,
            active=self.active,
            polled=self.polled,
            poll_interval=timedelta(seconds=self.poll_seconds),
        )

    def as_row(self, device_id: int) -> dict[str, Any]:
        return {
            "id": device_id,
            "name": f"Tank {device_id}",
            "device_type": "probe",
            "address": f"dev{device_id}",
            "unit": self.unit,
            "is_active": self.active,
            "poll_enabled": self.polled,
            "poll_interval": self.poll_seconds,
        }


seed_devices = st.builds(
    SeedDevice,
    active=mostly_true,
    polled=mostly_true,
    poll_seconds=st.sampled_from([30, 60, 600]),
    unit=st.sampled_from([None, "°F", "pH"]),
)

seed_alerts = st.builds(
    AlertRow,
    id=st.just(0),
    device_id=st.sampled_from(DEVICE_IDS),
    metric=metrics,
    operator=operators,
    threshold=thresholds,
    enabled=mostly_true,
)


def normalised(
    alert_id: int,
    device_id: int,
    triggered_at: datetime,
    current_value: float | None,
    threshold_value: float,
    operator: str,
    metric: str,
    resolved: bool,
    resolved_at: datetime | None,
    resolution_value: float | None,
    metadata: Any,
) -> tuple[Any, ...]:
    return (
        alert_id,
        device_id,
        triggered_at,
        current_value,
        threshold_value,
        operator,
        metric,
        bool(resolved),
        resolved_at,
        resolution_value,
        metadata,
    )


def _order(event: tuple[Any, ...]) -> tuple[int, datetime, str]:
    # an alert opens at most one event of each kind per cycle, and each cycle has its own time
    return event[0], event[2], str(event[-1].get("kind"))


def fake_events(store: InMemoryStore) -> list[tuple[Any, ...]]:
    rows = [
        normalised(
            e.alert_id,
            e.device_id,
            e.triggered_at,
            e.current_value,
            e.threshold_value,
            e.operator.value,
            e.metric,
            e.resolved,
            e.resolved_at,
            e.resolution_value,
            e.metadata,
        )
        for e in store.events().values()
    ]
    return sorted(rows, key=_order)


def sql_events(engine: Engine) -> list[tuple[Any, ...]]:
    events = tables_of(engine).alert_events
    with engine.connect() as connection:
        rows = connection.execute(select(*events.c)).all()
    events = [
        normalised(
            r.alert_id,
            r.device_id,
            r.triggered_at,
            r.current_value,
            r.threshold_value,
            r.operator,
            r.metric,
            r.is_resolved,
            r.resolved_at,
            r.resolution_value,
            r.metadata_,
        )
        for r in rows
    ]
    return sorted(events, key=_order)


class FakesAndSqlMachine(RuleBasedStateMachine):
    """One reef kept twice, in memory and in SQLite, driven by the same steps."""

    generation = Generation.CURRENT
    """Of the web app's schema, in SQLite."""
    defaults = DEFAULT_OPTIONS
    """The options of alerts without their own."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store = InMemoryStore()
        self.directory = Path(tempfile.mkdtemp(prefix="reef_fakes_match_sql_"))
        url = f"sqlite:///{self.directory / 'reef.db'}"
        make_app_tables(url, self.generation)
        self.tables = tables_for(self.generation)
        self.engine = make_engine(url)
        schema.upgrade(self.engine)
        self.fake_cycle = self._fake_cycle()
        self.sql_cycle = self._sql_cycle()
        self.device_ids: list[int] = []
        self.alert_ids: list[int] = []
        self.next_reading_id = 1

    def teardown(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.directory, ignore_errors=True)

    @initialize(
        seeded_devices=st.lists(seed_devices, min_size=2, max_size=3),
        seeded_alerts=st.lists(seed_alerts, min_size=3, max_size=4),
        first_values=st.lists(near_thresholds, min_size=3, max_size=3),
    )
    def seed(
        self,
        seeded_devices: list[SeedDevice],
        seeded_alerts: list[AlertRow],
        first_values: list[float] | None = None,
    ) -> None:
        """Devices numbered from 1, each with a fresh simple reading, and alerts numbered from 1."""
        for device_id, seeded in enumerate(seeded_devices, start=1):
            self.store.add_device(seeded.as_device(device_id))
            self._write(insert(self.tables.devices), seeded.as_row(device_id))
            self.device_ids.append(device_id)
            if first_values:
                self.add(device_id, 10, first_values[device_id - 1], None)
        for alert_id, row in enumerate(seeded_alerts, start=1):
            row = attrs.evolve(row, id=alert_id)
            self.store.add_alert(row)
            self._write(
                insert(self.tables.alerts),
                {
                    "id": row.id,
                    "device_id": row.device_id,
                    "metric": row.metric,
                    "operator": row.operator,
                    "threshold_value": row.threshold,
                    "is_enabled": row.enabled,
                    "trend_enabled": row.trend_enabled,
                },
            )
            self.alert_ids.append(alert_id)

    @precondition(lambda self: self.device_ids)
    @rule(
        data=st.data(),
        age_seconds=ages,
        value=raw_values,
        json_value=json_documents,
        metadata=st.none() | json_objects,
    )
    def add_reading(
        self,
        data: st.DataObject,
        age_seconds: int | None,
        value: Any,
        json_value: Any,
        metadata: Any,
    ) -> None:
        device_id = data.draw(st.sampled_from(self.device_ids), label="device_id")
        self.add(device_id, age_seconds, value, json_value, metadata)

    @rule(data=st.data(), value=raw_values, json_value=json_documents)
    def add_reading_at_the_newest_time(
        self, data: st.DataObject, value: Any, json_value: Any
    ) -> None:
        """A second reading at the device's newest timestamp: only the id tells them apart."""
        timed = [r for r in self.store.snapshot().readings.values() if r.timestamp is not None]
        if not timed:
            return
        device_ids = sorted({r.device_id for r in timed})
        device_id = data.draw(st.sampled_from(device_ids), label="device_id")
        newest = max(r.timestamp for r in timed if r.device_id == device_id)
        self.add(device_id, None, value, json_value, at=newest)

    def add(
        self,
        device_id: int,
        age_seconds: int | None,
        value: Any,
        json_value: Any,
        metadata: Any = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """One reading, with the same id in both, `age_seconds` before now or `at`."""
        timestamp = at
        if age_seconds is not None:
            timestamp = self.clock.now() - timedelta(seconds=age_seconds)
        reading_id = self.next_reading_id
        self.next_reading_id += 1
        if timestamp is not None:
            # A NULL timestamp (the legacy column allows it) makes no domain Reading: the fake
            # never holds one, as the SQL snapshot never reads one.
            self.store.add_reading(
                Reading(reading_id, device_id, timestamp, value, json_value, metadata)
            )
        # a string must reach SQLite as text: the Float type would float() it on the way in
        stored_value = type_coerce(value, String()) if isinstance(value, str) else value
        self._write(
            insert(self.tables.history).values(
                id=reading_id,
                device_id=device_id,
                timestamp=timestamp,
                value=stored_value,
                json_value=json_value,
                metadata_=metadata,
            )
        )

    @precondition(lambda self: self.alert_ids)
    @rule(
        data=st.data(),
        threshold=st.none() | thresholds,
        operator=st.none() | operators,
        enabled=st.none() | st.booleans(),
        metric=st.none() | metrics,
    )
    def edit_alert(
        self,
        data: st.DataObject,
        threshold: float | None,
        operator: str | None,
        enabled: bool | None,
        metric: str | None,
    ) -> None:
        """None leaves a field as it is."""
        alert_id = data.draw(st.sampled_from(self.alert_ids), label="alert_id")
        row = self.store.snapshot().alerts[alert_id]
        row = attrs.evolve(
            row,
            threshold=row.threshold if threshold is None else threshold,
            operator=row.operator if operator is None else operator,
            enabled=row.enabled if enabled is None else enabled,
            metric=row.metric if metric is None else metric,
        )
        self.store.add_alert(row)
        self.edited()
        self._write(
            update(self.tables.alerts)
            .where(self.tables.alerts.c.id == alert_id)
            .values(
                threshold_value=row.threshold,
                operator=row.operator,
                is_enabled=row.enabled,
                metric=row.metric,
            )
        )

    @precondition(lambda self: self.device_ids)
    @rule(data=st.data(), active=mostly_true)
    def switch_device(self, data: st.DataObject, active: bool) -> None:
        device_id = data.draw(st.sampled_from(self.device_ids), label="device_id")
        device = self.store.devices()[device_id]
        self.store.add_device(attrs.evolve(device, active=active))
        self.edited()
        devices = self.tables.devices
        self._write(update(devices).where(devices.c.id == device_id).values(is_active=active))

    @rule(
        seconds=st.integers(0, 6).map(lambda tens: 10 * tens)
        | st.sampled_from([0.000001, 0.5, 1, 31, 270, 300, 301, 600, 900])
    )
    def advance_clock(self, seconds: float) -> None:
        """Mostly by tens of seconds, as the ages are; sub-second moves test stored microseconds."""
        self.clock.advance(timedelta(seconds=seconds))

    @precondition(lambda self: self.alert_ids)
    @rule(
        data=st.data(),
        pending=st.sampled_from([None, 0.0, 30.0, 60.0, 300.0]),
        margin=st.sampled_from([None, 0.0, 0.0005, 0.3, 1.0]),
        no_data_after=st.sampled_from([None, 0.0, 60.0, 300.0, 600.0]),
    )
    def set_options(
        self,
        data: st.DataObject,
        pending: float | None,
        margin: float | None,
        no_data_after: float | None,
    ) -> None:
        """A keeper's `rules set` (all three columns; None: the default) or `rules clear`."""
        alert_id = data.draw(st.sampled_from(self.alert_ids), label="alert_id")
        self.edited()
        rule = StoredRule(pending, margin, no_data_after)
        if rule == StoredRule(None, None, None):
            self.store.set_rule(alert_id, None)
            rule_store.clear_rule(self.engine, alert_id)
        else:
            self.store.set_rule(alert_id, rule)
            rule_store.set_rule(self.engine, alert_id, rule._asdict())

    @rule()
    def restart(self) -> None:
        """A new process: whatever the cycles kept in memory is gone; the tables are not."""
        self.fake_cycle = self._fake_cycle()
        self.sql_cycle = self._sql_cycle()
        self.edited()

    def edited(self) -> None:
        """A step that changed something besides readings and time."""

    def _fake_cycle(self) -> RunCycle:
        return RunCycle(self.store.unit_of_work, self.clock, POLICY, LOG, defaults=self.defaults)

    def _sql_cycle(self) -> RunCycle:
        factory = SqlUnitOfWorkFactory(self.engine, LOG)
        return RunCycle(factory, self.clock, POLICY, LOG, defaults=self.defaults)

    @rule()
    def run_cycle(self) -> None:
        stats = self.cycle()
        for outcome, count in stats.as_dict().items():
            if count and outcome != "total_alerts":
                event(f"a cycle {outcome} some alerts")

    def cycle(self) -> CycleStats:
        """One cycle on each side, at the same time; both must do and leave the same."""
        fake_stats = self.fake_cycle()
        sql_stats = self.sql_cycle()
        assert fake_stats == sql_stats, f"fake {fake_stats} != sql {sql_stats}"
        self._assert_same_events()
        return fake_stats

    @invariant()
    def both_hold_the_same_events(self) -> None:
        self._assert_same_events()

    def _assert_same_events(self) -> None:
        assert fake_events(self.store) == sql_events(self.engine)
        with self.engine.connect() as connection:
            states = dict(connection.execute(select(*alert_state.c)).all())
        assert self.store.states() == states

    def _write(self, statement: Any, parameters: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as connection:
            connection.execute(statement, parameters)


class LiveFakesAndSqlMachine(FakesAndSqlMachine):
    """Issue 16: the SQL worker judges by live passes, which see only new readings and the
    instants at which time alone changes an alert, and by a full cycle only after a step that
    edits something (as its interval's full cycle would catch it), and still leaves the events,
    states and statuses that a full cycle at every step leaves in the fakes."""

    def __init__(self) -> None:
        self.needs_full_cycle = True
        super().__init__()

    def edited(self) -> None:
        self.needs_full_cycle = True

    def _sql_cycle(self) -> RunCycle:
        factory = SqlUnitOfWorkFactory(self.engine, LOG)
        watcher = SqlReadingWatcher(self.engine)
        return RunCycle(factory, self.clock, POLICY, LOG, defaults=self.defaults, watcher=watcher)

    @rule(seconds=st.sampled_from([31, 61, 121, 301, 601, 1201]))
    def time_passes_then_a_cycle(self, seconds: int) -> None:
        """Time alone: past pending durations, staleness and no-data limits, with no reading."""
        self.clock.advance(timedelta(seconds=seconds))
        self.cycle()

    def cycle(self) -> CycleStats:
        fake_stats = self.fake_cycle()
        if self.needs_full_cycle:
            assert self.sql_cycle() == fake_stats
            self.needs_full_cycle = False
            event("a full cycle")
        else:
            live = self.sql_cycle.live()
            event("a live pass that judged nothing" if live is None else "a live pass")
        self._assert_same_events()
        self._assert_same_statuses()
        return fake_stats

    def _assert_same_statuses(self) -> None:
        with self.engine.connect() as connection:
            rows = connection.execute(select(alert_status.c.alert_id, alert_status.c.code)).all()
        assert {
            alert_id: status.code for alert_id, (status, _) in self.store.statuses().items()
        } == dict(rows)


class LegacyFakesAndSqlMachine(FakesAndSqlMachine):
    """On the legacy schema, with default options: every alert goes through the state machine,
    where the current one's go through it only once they have options of their own."""

    generation = Generation.LEGACY
    defaults = RuleOptions(no_data_after=timedelta(minutes=10), recovery_margin=0.0005)


class LegacyLiveFakesAndSqlMachine(LiveFakesAndSqlMachine):
    """Live passes on the legacy schema, where every alert has options (no data after 10m)."""

    generation = Generation.LEGACY
    defaults = LegacyFakesAndSqlMachine.defaults


@pytest.mark.parametrize(
    "machine",
    [
        FakesAndSqlMachine,
        LegacyFakesAndSqlMachine,
        LiveFakesAndSqlMachine,
        LegacyLiveFakesAndSqlMachine,
    ],
    ids=["current", "legacy", "live-current", "live-legacy"],
)
def test_the_fakes_and_sqlite_make_the_same_events_from_any_sequence_of_steps(
    machine: type[FakesAndSqlMachine],
) -> None:
    """Each example creates an SQLite database and runs up to 30 steps. The profile sets how many
    examples run, capped at 250 a generation so that CI's take about a minute instead of four."""
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=min(settings.default.max_examples, 250),
            stateful_step_count=30,
            deadline=None,
        ),
    )


def test_the_machine_compares_events_that_open_and_resolve() -> None:
    """A fixed walk through the machine's steps, so the comparison is known not to be vacuous."""
    machine = FakesAndSqlMachine()
    try:
        machine.seed(
            [SeedDevice(True, True, 60, "°F"), SeedDevice(True, True, 60, None)],
            [
                AlertRow(0, 1, "temperature", ">", 82.0),
                AlertRow(0, 1, "probe1.temperature", "<=", 78.0),
                AlertRow(0, 3, "temperature", ">", 82.0),
            ],
        )
        machine.add(1, 5, None, {"temperature": 85.0, "probe1": {"temperature": "77.5"}})
        first = machine.cycle()
        machine.advance_clock(30)
        machine.add(1, 5, None, {"temperature": 80.0, "probe1": {"temperature": 77.0}})
        second = machine.cycle()

        assert (first.triggered, first.skipped, second.resolved) == (2, 1, 1)

        events = fake_events(machine.store)
        assert [(event[0], event[7]) for event in events] == [(1, True), (2, False)]
        assert events == sql_events(machine.engine)
    finally:
        machine.teardown()


def test_a_reading_without_a_timestamp_is_never_the_newest() -> None:
    """history.timestamp is nullable: the SQL snapshot passes over such rows, and so must the fake
    (it used to crash the cycle, or pick the row and count its alerts as errors)."""
    machine = FakesAndSqlMachine()
    try:
        machine.seed(
            [SeedDevice(True, True, 60, None), SeedDevice(True, True, 60, None)],
            [AlertRow(0, 1, "temperature", ">", 82.0), AlertRow(0, 2, "temperature", ">", 82.0)],
        )
        machine.add(1, 5, 85.0, None)
        machine.add(1, None, 70.0, None)
        machine.add(2, None, 85.0, None)

        stats = machine.cycle()

        assert (stats.triggered, stats.skipped, stats.errors) == (1, 1, 0)
    finally:
        machine.teardown()


def test_a_bare_json_number_beyond_the_float_range_has_no_metric_and_stops_no_cycle() -> None:
    """ADR 2: a json_value that is not an object has no metrics. SQLite's JSON columns have
    NUMERIC affinity, so a bare 1e400 is stored as the REAL infinity, whose text is "Inf"."""
    machine = FakesAndSqlMachine()
    try:
        machine.seed(
            [SeedDevice(True, True, 60, None), SeedDevice(True, True, 60, None)],
            [AlertRow(0, 1, "temperature", ">", 82.0), AlertRow(0, 2, "temperature", ">", 82.0)],
        )
        machine.add(1, 5, 85.0, 10**400)
        machine.add(2, 5, 85.0, None, metadata=-(10**400))

        stats = machine.cycle()

        assert (stats.triggered, stats.errors) == (2, 0)
    finally:
        machine.teardown()
