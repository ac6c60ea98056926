"""Backtests: the live state machine replayed over history, and the same events as the live
cycle would have made from the same readings."""

from __future__ import annotations

import itertools
import logging
import math
from datetime import datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reef_alerts.application import RunCycle
from reef_alerts.domain import (
    Alert,
    Device,
    EvaluationPolicy,
    EventKind,
    Operator,
    Reading,
    RuleOptions,
    Timeline,
    TrendOptions,
    backtest,
)
from reef_alerts.ports import StoredRule, StoredTrend
from tests.fakes import T0, AlertRow, FakeClock, InMemoryStore

HEATER = Device(1, "Frag Tank Heater", "heater", "°F")
TOO_HOT = Alert(7, 1, "temperature", Operator.GT, 82.0)
STEP = timedelta(seconds=30)


def hovering(minutes: int = 120) -> list[Reading]:
    """A reading a minute, swinging ±0.3 °F around 82 °F, crossing it about every 5 minutes."""
    return [
        Reading(n + 1, 1, T0 + timedelta(minutes=n), value=82.0 + 0.3 * math.sin(n * math.pi / 5))
        for n in range(minutes)
    ]


def test_a_hovering_heater_opens_an_event_per_crossing_by_the_specifications_rule():
    timeline = backtest(TOO_HOT, HEATER, hovering(), T0, T0 + timedelta(hours=2), STEP)
    events = timeline.threshold_events
    assert len(events) == 12
    assert timeline.flaps == 11
    assert timedelta(minutes=40) < timeline.time_in_alert < timedelta(minutes=60)  # about half
    assert all(e.resolved_at is not None for e in events)


def test_a_pending_time_and_a_margin_quiet_the_same_heater():
    options = RuleOptions(pending=timedelta(minutes=5), recovery_margin=0.3)
    timeline = backtest(TOO_HOT, HEATER, hovering(), T0, T0 + timedelta(hours=2), STEP, options)
    assert timeline.threshold_events == ()
    assert {s.outcome for s in timeline.segments} == {"ok", "pending"}


def test_every_evaluation_is_in_the_timeline_in_order():
    timeline = backtest(TOO_HOT, HEATER, hovering(10), T0, T0 + timedelta(minutes=10), STEP)
    assert_segments_tile(timeline)
    assert timeline.segments[0].start == T0
    assert timeline.evaluations == 21


def assert_segments_tile(timeline: Timeline) -> None:
    """The segments follow one another a step apart, each a run of one outcome (skips: of one
    reason), from the
    range's start to its last instant."""
    segments = timeline.segments
    assert segments[0].start == timeline.start
    assert segments[-1].end <= timeline.end < segments[-1].end + timeline.step
    for segment in segments:
        assert segment.end == segment.start + (segment.evaluations - 1) * timeline.step
    for before, after in itertools.pairwise(segments):
        assert after.start == before.end + timeline.step
        assert after.outcome != before.outcome or after.outcome == "skipped"  # another reason


def test_a_range_longer_than_the_cap_is_cut_and_says_so():
    timeline = backtest(
        TOO_HOT, HEATER, hovering(), T0, T0 + timedelta(hours=2), STEP, max_evaluations=100
    )
    assert timeline.evaluations == 100
    assert timeline.end == T0 + 99 * STEP
    assert "the range was cut to 100 evaluations" in timeline.warnings[0]


def test_gaps_and_skips_are_warned_of():
    readings = [r for r in hovering(60) if not 10 <= r.id <= 40]  # half an hour of silence
    timeline = backtest(TOO_HOT, HEATER, readings, T0, T0 + timedelta(hours=1), STEP)
    assert any(w.startswith("no reading for 32m from ") for w in timeline.warnings)
    assert any("evaluations were skipped: stale reading" in w for w in timeline.warnings)


def test_a_silent_device_opens_and_resolves_a_no_data_event():
    readings = [r for r in hovering(60) if not 10 <= r.id <= 40]
    options = RuleOptions(no_data_after=timedelta(minutes=10))
    timeline = backtest(TOO_HOT, HEATER, readings, T0, T0 + timedelta(hours=1), STEP, options)
    (silent,) = [e for e in timeline.events if e.kind is EventKind.NO_DATA]
    assert silent.opened_at == T0 + timedelta(minutes=18, seconds=30)
    assert silent.resolved_at == T0 + timedelta(minutes=40)


def test_a_backtest_refuses_a_step_that_goes_nowhere():
    with pytest.raises(ValueError, match="the step must be longer than 0"):
        backtest(TOO_HOT, HEATER, [], T0, T0, timedelta(0))


def live_events(
    store: InMemoryStore, clock: FakeClock, readings: list[Reading], end: datetime
) -> list[tuple[object, ...]]:
    """The events a live worker leaves in `store`, cycling every STEP from the clock's instant
    to `end`, each reading stored once its timestamp has come."""
    cycle = RunCycle(store.unit_of_work, clock, EvaluationPolicy(), logging.getLogger("bt"))
    waiting = iter(readings)
    upcoming = next(waiting, None)
    while clock.now() <= end:
        while upcoming is not None and upcoming.timestamp is not None:
            if upcoming.timestamp > clock.now():
                break
            store.add_reading(upcoming)
            upcoming = next(waiting, None)
        cycle()
        clock.advance(STEP)
    return sorted(
        (e.kind.value, e.triggered_at, e.current_value, e.resolved_at, e.resolution_value)
        for e in store.events().values()
    )


def replayed_events(timeline: Timeline) -> list[tuple[object, ...]]:
    """A timeline's events as live_events tells the live worker's."""
    return sorted(
        (e.kind.value, e.opened_at, e.value, e.resolved_at, e.resolution_value)
        for e in timeline.events
    )


values = st.floats(min_value=80.0, max_value=84.0) | st.just(82.0)
histories = st.lists(
    st.tuples(st.integers(min_value=10, max_value=400), values),  # seconds to the next reading
    max_size=40,
)
option_sets = st.builds(
    RuleOptions,
    pending=st.sampled_from([0, 60, 300]).map(lambda s: timedelta(seconds=s)),
    recovery_margin=st.sampled_from([0.0, 0.5]),
    no_data_after=st.none() | st.just(timedelta(minutes=4)),
)


@settings(max_examples=60, deadline=None)
@given(histories, option_sets)
def test_a_backtest_makes_the_events_the_live_cycle_makes_from_the_same_readings(history, options):
    readings, at = [], T0
    for n, (gap, value) in enumerate(history, start=1):
        at += timedelta(seconds=gap)
        readings.append(Reading(n, 1, at, value=value))
    end = at + timedelta(minutes=10)
    timeline = backtest(TOO_HOT, HEATER, readings, T0, end, STEP, options)

    store, clock = InMemoryStore(), FakeClock(T0)
    store.add_device(HEATER)
    store.add_alert(AlertRow(7, 1, "temperature", ">", 82.0))
    store.set_rule(
        7,
        StoredRule(
            options.pending.total_seconds(),
            options.recovery_margin,
            0.0 if options.no_data_after is None else options.no_data_after.total_seconds(),
        ),
    )
    assert replayed_events(timeline) == live_events(store, clock, readings, end)
    assert_segments_tile(timeline)


walks = st.lists(
    st.tuples(st.integers(min_value=20, max_value=240), st.floats(min_value=-0.4, max_value=0.4)),
    max_size=50,
)
trend_sets = st.builds(
    TrendOptions,
    window=st.sampled_from([10, 20]).map(lambda m: timedelta(minutes=m)),
    min_samples=st.sampled_from([3, 5]),
    horizon=st.sampled_from([10, 60]).map(lambda m: timedelta(minutes=m)),
    max_rate_per_hour=st.none() | st.just(2.0),
    smoothing=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(walks, trend_sets, st.sampled_from([0, 120]), st.sampled_from([0.0, 0.3]))
def test_a_backtest_of_a_trend_alert_makes_the_events_the_live_cycle_makes(
    walk, trend, pending, margin
):
    readings, at, value = [], T0, 81.0
    for n, (gap, change) in enumerate(walk, start=1):
        at, value = at + timedelta(seconds=gap), value + change
        readings.append(Reading(n, 1, at, value=value))
    end = at + timedelta(minutes=10)
    alert = attrs.evolve(TOO_HOT, trend_enabled=True)
    options = RuleOptions(timedelta(seconds=pending), margin, trend=trend)
    timeline = backtest(alert, HEATER, readings, T0, end, STEP, options)

    store, clock = InMemoryStore(), FakeClock(T0)
    store.add_device(HEATER)
    store.add_alert(AlertRow(7, 1, "temperature", ">", 82.0, trend_enabled=True))
    store.set_rule(7, StoredRule(float(pending), margin, None))
    store.set_trend_rule(
        7,
        StoredTrend(
            trend.window.total_seconds(),
            trend.min_samples,
            trend.horizon.total_seconds(),
            trend.max_rate_per_hour,
            trend.smoothing,
        ),
    )
    assert replayed_events(timeline) == live_events(store, clock, readings, end)
    assert_segments_tile(timeline)


def test_a_backtest_of_a_trend_alert_opens_its_forecast_before_its_threshold_event():
    readings = [
        Reading(n, 1, T0 + n * timedelta(minutes=2), value=80.0 + n * 0.05) for n in range(60)
    ]
    alert = attrs.evolve(TOO_HOT, trend_enabled=True)
    timeline = backtest(
        alert,
        HEATER,
        readings,
        T0,
        T0 + timedelta(hours=2),
        STEP,
        RuleOptions(trend=TrendOptions(window=timedelta(minutes=30))),
    )
    forecast = [e for e in timeline.events if e.kind is EventKind.FORECAST]
    (threshold,) = timeline.threshold_events
    assert len(forecast) == 1
    assert forecast[0].opened_at < threshold.opened_at
    assert forecast[0].resolved_at == threshold.opened_at


def test_the_event_of_a_pending_condition_says_when_it_began():
    readings = [attrs.evolve(r, value=83.0) for r in hovering(20)]
    options = RuleOptions(pending=timedelta(minutes=5))
    timeline = backtest(TOO_HOT, HEATER, readings, T0, T0 + timedelta(minutes=20), STEP, options)
    (event,) = timeline.threshold_events
    assert (event.condition_since, event.opened_at) == (T0, T0 + timedelta(minutes=5))
