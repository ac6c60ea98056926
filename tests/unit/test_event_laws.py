"""Hypothesis laws of the event state machine: evaluate() driven over any sequence of readings.

One alert, one device. Each step moves the clock, maybe changes the device, and hands evaluate()
the newest reading (or none). The generator knows, for every reading, whether it is fresh and
which number it carries for the metric, so the laws below do not re-derive either from the code.
The decisions are applied to a list of events, as the application would.
"""

import math
from datetime import datetime, timedelta

import attrs
from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.domain import (
    Alert,
    AlertEvent,
    Decision,
    Device,
    EvaluationPolicy,
    NoChange,
    NoMetric,
    Reading,
    Resolve,
    Skip,
    SkipCode,
    Trigger,
    evaluate,
    extract_metric,
)
from tests.fakes import T0
from tests.strategies import alerts, devices, operators, readings, utc_datetimes

METRICS = ["temperature", "probe1.temperature"]
INVALID = [math.nan, math.inf, -math.inf, "warm", "", True, False, None, [1.0], {"v": 1.0}]


def nest(metric: str, leaf: object) -> dict[str, object]:
    """{"probe1": {"temperature": leaf}} for the metric "probe1.temperature"."""
    document: object = leaf
    for key in reversed(metric.split(".")):
        document = {key: document}
    assert isinstance(document, dict)
    return document


@attrs.frozen
class Step:
    """One moment: the clock moves, the device may change, the newest reading is described."""

    advance: timedelta
    device_state: str
    """"active", "inactive" or "missing"."""
    when: str
    """The newest reading is "fresh", "stale" or from the "future"; or there is "none"."""
    share: float
    """Where a fresh reading's age falls in [-clock skew, max age], from 0 to 1."""
    beyond: timedelta
    """How far past the max age (stale) or the clock skew (future) the reading lies."""
    stored_as: str
    """Where the metric's value is stored, or how it is invalid or absent."""
    offset: float
    """A valid value is the alert's threshold plus this, so conditions flip often."""
    invalid: object
    """The stored raw value when `stored_as` is an invalid kind."""


STORED_AS = ["json", "text", "value", "metadata"] * 2 + [
    "invalid json",
    "invalid metadata",
    "invalid value",
    "absent",
]

steps = st.builds(
    Step,
    advance=st.timedeltas(timedelta(0), timedelta(minutes=10)),
    device_state=st.sampled_from(["active"] * 6 + ["inactive", "missing"]),
    when=st.sampled_from(["fresh"] * 4 + ["stale", "future", "none"]),
    share=st.floats(0, 1),
    beyond=st.timedeltas(timedelta(microseconds=1), timedelta(days=2)),
    stored_as=st.sampled_from(STORED_AS),
    offset=st.floats(-2, 2) | st.sampled_from([0.0, 0.001, -0.0005, 0.25, -0.5]),
    invalid=st.sampled_from(INVALID),
)


@attrs.frozen
class Scenario:
    alert: Alert
    device: Device
    policy: EvaluationPolicy
    steps: list[Step]


scenarios = st.builds(
    Scenario,
    alert=st.builds(
        Alert,
        id=st.just(1),
        device_id=st.just(1),
        metric=st.sampled_from(METRICS),
        operator=operators,
        threshold=st.floats(-100, 100),
    ),
    device=st.builds(
        Device,
        id=st.just(1),
        name=st.just("Main Tank"),
        type=st.just("temperature_probe"),
        polled=st.booleans(),
        poll_interval=st.sampled_from([timedelta(seconds=10), timedelta(minutes=10)]),
    ),
    policy=st.builds(
        EvaluationPolicy,
        max_reading_age=st.sampled_from([timedelta(minutes=1), timedelta(minutes=5)]),
        clock_skew=st.sampled_from([timedelta(0), timedelta(seconds=30)]),
        tolerance=st.sampled_from([0.0, 0.001, 0.5]),
    ),
    steps=st.lists(steps, max_size=25),
)


@attrs.frozen
class Transition:
    step: Step
    usable: float | None
    """The number evaluate() must judge: set only for a fresh, valid reading of an active device."""
    decision: Decision
    open_before: int
    open_after: int


def stored_fields(step: Step, metric: str, number: float) -> dict[str, object]:
    """value / json_value / metadata of a reading storing the metric as `step` says."""
    kind = step.stored_as
    if kind == "value":
        return {"value": number}
    if kind == "invalid value":
        return {"value": step.invalid}
    if kind == "absent":
        return {"json_value": {"salinity": 35.0}, "metadata": {"note": "x"}}
    field = "metadata" if kind.endswith("metadata") else "json_value"
    leaf = {"json": number, "text": repr(number), "metadata": number}.get(kind, step.invalid)
    return {field: nest(metric, leaf)}


def reading_for(step: Step, scenario: Scenario, now: datetime, reading_id: int) -> Reading | None:
    """The newest reading `step` describes, timestamped relative to `now`."""
    if step.when == "none":
        return None
    skew = scenario.policy.clock_skew
    limit = max(scenario.policy.max_reading_age, 2 * scenario.device.poll_interval)
    age = {
        "fresh": -skew + (limit + skew) * step.share,
        "stale": limit + step.beyond,
        "future": -skew - step.beyond,
    }[step.when]
    number = scenario.alert.threshold + step.offset
    return Reading(
        id=reading_id,
        device_id=1,
        timestamp=now - age,
        **stored_fields(step, scenario.alert.metric, number),  # type: ignore[arg-type]
    )


def usable_number(step: Step, scenario: Scenario) -> float | None:
    """What the generator made the reading carry, if the alert can be judged on it."""
    # a device nobody polls has no stale readings, only future ones
    fresh = step.when == "fresh" or (step.when == "stale" and not scenario.device.polled)
    valid = step.stored_as in {"json", "text", "value", "metadata"}
    if step.device_state != "active" or not fresh or not valid:
        return None
    return scenario.alert.threshold + step.offset


def replay(scenario: Scenario) -> list[Transition]:
    """Run evaluate() over the steps, opening and closing events as its decisions say."""
    now = T0
    events: list[AlertEvent] = []
    transitions = []
    for step in scenario.steps:
        now += step.advance
        device = (
            None
            if step.device_state == "missing"
            else attrs.evolve(scenario.device, active=step.device_state == "active")
        )
        reading = reading_for(step, scenario, now, len(transitions) + 1)
        open_before = sum(not e.resolved for e in events)
        decision = evaluate(scenario.alert, device, reading, open_before > 0, now, scenario.policy)
        if isinstance(decision, Trigger):
            events.append(decision.event)
        elif isinstance(decision, Resolve):
            events = [e if e.resolved else e.resolve(now, decision.value) for e in events]
        transitions.append(
            Transition(
                step=step,
                usable=usable_number(step, scenario),
                decision=decision,
                open_before=open_before,
                open_after=sum(not e.resolved for e in events),
            )
        )
    return transitions


def holds(scenario: Scenario, value: float) -> bool:
    alert = scenario.alert
    return alert.operator.holds(value, alert.threshold, scenario.policy.tolerance)


@given(scenarios)
def test_an_alert_never_has_more_than_one_open_event(scenario):
    """Over any sequence of readings, an alert has at most one open event at all times."""
    for transition in replay(scenario):
        assert transition.open_after <= 1, transition


@given(scenarios)
def test_an_open_event_resolves_only_on_a_valid_fresh_reading_that_no_longer_meets_the_condition(
    scenario,
):
    """Resolve happens only with an event open, on a valid fresh reading of an active device whose
    value does not meet the condition, and it carries that value."""
    for t in replay(scenario):
        if isinstance(t.decision, Resolve):
            assert t.open_before == 1, t
            assert t.usable is not None, t
            assert not holds(scenario, t.usable), t
            assert t.decision.value == t.usable


@given(scenarios)
def test_an_event_opens_only_when_the_condition_holds_on_a_valid_fresh_reading(scenario):
    """Trigger happens only with no event open, on a valid fresh reading of an active device whose
    value meets the condition, and the new event records that value."""
    for t in replay(scenario):
        if isinstance(t.decision, Trigger):
            assert t.open_before == 0, t
            assert t.usable is not None, t
            assert holds(scenario, t.usable), t
            assert t.decision.event.current_value == t.usable
            assert not t.decision.event.resolved


@given(scenarios)
def test_the_open_state_follows_the_condition_on_every_valid_fresh_reading(scenario):
    """A valid fresh reading always leaves an event open exactly when the condition holds (by
    Trigger, Resolve or NoChange); anything else is a Skip that leaves the state as it was."""
    for t in replay(scenario):
        if t.usable is None:
            assert isinstance(t.decision, Skip), t
            assert t.open_after == t.open_before
        else:
            assert not isinstance(t.decision, Skip), t
            assert t.open_after == int(holds(scenario, t.usable)), t
            if isinstance(t.decision, NoChange):
                assert t.decision.value == t.usable


@given(
    alerts,
    st.none() | devices,
    st.none() | readings,
    st.booleans(),
    utc_datetimes(),
)
def test_evaluate_decides_anything_it_is_given(alert, device, reading, has_open_event, now):
    """For any alert, device, reading (any JSON inside) and time, evaluate() returns a decision
    without raising: Trigger only with no event open, Resolve only with one open, and a triggered
    event is open, at `now`, for the alert and the reading it was judged on."""
    decision = evaluate(alert, device, reading, has_open_event, now)
    assert isinstance(decision, Trigger | Resolve | Skip | NoChange)
    if isinstance(decision, Trigger):
        assert not has_open_event
        assert (decision.event.alert_id, decision.event.triggered_at) == (alert.id, now)
        assert decision.event.metadata["reading_id"] == reading.id
        assert not decision.event.resolved
    if isinstance(decision, Resolve):
        assert has_open_event
        assert math.isfinite(decision.value)


@given(alerts, devices, readings, st.booleans(), st.booleans(), utc_datetimes())
def test_evaluate_judges_exactly_the_number_extract_metric_finds(
    alert, device, reading, simple, has_open_event, now
):
    """evaluate() takes a simple reading's value without calling extract_metric: whatever the
    reading, it judges the same number extract_metric finds, or skips for the same reason."""
    alert = attrs.evolve(alert, enabled=True)
    device = attrs.evolve(device, active=True)
    reading = attrs.evolve(
        reading, timestamp=now, json_value=None if simple else reading.json_value
    )
    extracted = extract_metric(reading, alert.metric)

    decision = evaluate(alert, device, reading, has_open_event, now)

    if isinstance(extracted, NoMetric):
        assert isinstance(decision, Skip)
        assert decision.code in {SkipCode.METRIC_MISSING, SkipCode.INVALID_VALUE}
        assert decision.reason == extracted.reason
    elif isinstance(decision, Trigger):
        assert decision.event.current_value == extracted.value
    else:
        assert isinstance(decision, NoChange | Resolve)
        assert decision.value == extracted.value
