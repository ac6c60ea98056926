"""Hypothesis laws of the state machine with options (ADR 15): step() driven over any series of
readings, gaps and options, its state carried from one evaluation to the next as the worker
carries it through its tables."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    DEFAULT_TOLERANCE,
    Alert,
    AlertState,
    Device,
    EvaluationPolicy,
    NoChange,
    OpenNoData,
    Operator,
    Pending,
    Reading,
    Resolve,
    ResolveNoData,
    RuleOptions,
    Skip,
    Transition,
    Trigger,
    evaluate,
    step,
)
from reef_alerts.domain.evaluation import PENDING_GAP
from tests.fakes import T0

THRESHOLD = 82.0
POLICY = EvaluationPolicy()


@attrs.frozen
class Moment:
    """One evaluation: the clock moves on, and the device's newest reading is as described."""

    advance: timedelta
    value: float | None
    """The newest reading's value; None: the device has no reading at all."""
    age: timedelta
    """How old the newest reading is at the evaluation."""
    active: bool = True
    polled: bool = True


moments = st.builds(
    Moment,
    advance=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(minutes=20)),
    # Around the threshold, so that conditions hold, clear, and sit in the margin band.
    value=st.none()
    | st.floats(min_value=THRESHOLD - 3, max_value=THRESHOLD + 3)
    | st.sampled_from([THRESHOLD, THRESHOLD - 0.3, THRESHOLD + 0.3]),
    age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(minutes=30)),
    active=st.booleans() | st.just(True),
    polled=st.booleans() | st.just(True),
)
series = st.lists(moments, max_size=30)
options = st.builds(
    RuleOptions,
    pending=st.sampled_from([0, 30, 60, 300, 900]).map(lambda s: timedelta(seconds=s)),
    recovery_margin=st.sampled_from([0.0, 0.001, 0.3, 1.0, 2.5]),
    no_data_after=st.none() | st.sampled_from([60, 300, 600]).map(lambda s: timedelta(seconds=s)),
)
alerts = st.builds(
    Alert,
    id=st.just(7),
    device_id=st.just(1),
    metric=st.just("value"),
    operator=st.sampled_from(Operator),
    threshold=st.just(THRESHOLD),
)


@attrs.frozen
class Seen:
    """One evaluation as it went: when, what was read, the state before and the transition."""

    now: datetime
    moment: Moment
    before: AlertState
    transition: Transition


def observed(alert: Alert, moment: Moment, now: datetime, reading_id: int) -> tuple:
    """What an evaluation at `now` is given: the alert, its device, the newest reading."""
    device = Device(1, "Display Tank heater", "heater", active=moment.active, polled=moment.polled)
    if moment.value is None:
        return alert, device, None
    return alert, device, Reading(reading_id, 1, now - moment.age, value=moment.value)


def replay(
    alert: Alert,
    moments: list[Moment],
    rule: RuleOptions,
    state: AlertState | None = None,
    *,
    start: datetime = T0,
    first_reading: int = 1,
) -> list[Seen]:
    """Step the alert through `moments` from `state`, the clock starting at `start`."""
    now, state = start, state or AlertState()
    seen = []
    for index, moment in enumerate(moments):
        now += moment.advance
        observation = observed(alert, moment, now, first_reading + index)
        transition = step(state, observation, now, rule, POLICY)
        seen.append(Seen(now, moment, state, transition))
        state = transition.state
    return seen


def holds(alert: Alert, value: float) -> bool:
    return alert.operator.holds(value, alert.threshold, DEFAULT_TOLERANCE)


@given(alerts, series, options)
def test_no_event_of_either_kind_opens_while_one_of_its_kind_is_open(alert, moments, rule):
    for seen in replay(alert, moments, rule):
        if isinstance(seen.transition.decision, Trigger):
            assert not seen.before.firing
        if isinstance(seen.transition.decision, Resolve):
            assert seen.before.firing
        if isinstance(seen.transition.no_data, OpenNoData):
            assert not seen.before.silent
        if isinstance(seen.transition.no_data, ResolveNoData):
            assert seen.before.silent


@given(alerts, series, options)
def test_no_event_opens_before_its_condition_has_held_for_the_pending_duration(
    alert, moments, rule
):
    held_since: datetime | None = None
    for seen in replay(alert, moments, rule):
        decision = seen.transition.decision
        held_since = (held_since or seen.now) if isinstance(decision, Trigger | Pending) else None
        if held_since is not None and seen.now - held_since > rule.pending + PENDING_GAP:
            held_since = seen.now  # nobody saw it hold for that long: it starts over
        if isinstance(decision, Trigger):
            assert held_since is not None
            assert seen.now - held_since >= rule.pending
            if rule.pending:
                assert decision.event.metadata["condition_since"] == held_since.isoformat()


@given(alerts, series, options)
def test_an_event_opens_once_its_condition_has_held_for_the_pending_duration(alert, moments, rule):
    held_since: datetime | None = None
    for seen in replay(alert, moments, rule):
        decision = seen.transition.decision
        if isinstance(decision, Pending):
            held_since = held_since or seen.now
            if seen.now - held_since > rule.pending + PENDING_GAP:
                held_since = seen.now  # nobody saw it hold for that long: it starts over
            assert seen.now - held_since < rule.pending
        elif not isinstance(decision, Trigger):
            held_since = None


def ball(alert: Alert, value: float, margin: float) -> list[float]:
    """Values within `margin` of `value`, the threshold among them where it lies there."""
    points = [value - margin, value, value + margin]
    if value - margin <= alert.threshold <= value + margin:
        points.append(alert.threshold)
    return points


@given(alerts, series, options)
def test_values_within_the_recovery_margin_never_resolve_an_open_event(alert, moments, rule):
    margin = 0.0 if alert.operator is Operator.NE else rule.recovery_margin
    for seen in replay(alert, moments, rule):
        decision = seen.transition.decision
        if isinstance(decision, Resolve):
            assert not any(holds(alert, x) for x in ball(alert, decision.value, margin))
        if isinstance(decision, NoChange) and seen.before.firing:
            assert any(holds(alert, x) for x in ball(alert, decision.value, margin))


@given(alerts, series)
def test_with_every_option_at_its_default_the_decisions_are_the_specifications(alert, moments):
    for index, seen in enumerate(replay(alert, moments, DEFAULT_OPTIONS)):
        _, device, reading = observed(alert, seen.moment, seen.now, index + 1)
        expected = evaluate(alert, device, reading, seen.before.firing, seen.now, POLICY)
        assert seen.transition.decision == expected
        assert seen.transition.no_data is None
        assert seen.transition.state.pending_since is None


@given(alerts, series, options)
def test_a_no_data_event_opens_at_the_first_evaluation_past_the_limit_and_resolves_at_the_first_fresh_reading(  # noqa: E501
    alert, moments, rule
):
    if rule.no_data_after is None:
        return
    # A device polled less often than the limit is given two poll intervals (a minute each here).
    limit = max(rule.no_data_after, timedelta(minutes=2))
    for seen in replay(alert, moments, rule):
        moment, after = seen.moment, seen.transition.state
        if not (moment.active and moment.polled):
            assert after.silent == seen.before.silent
        elif moment.value is None or moment.age > limit:
            assert after.silent
        else:
            assert not after.silent


@given(alerts, series, options)
def test_silence_never_opens_or_resolves_a_threshold_event(alert, moments, rule):
    without = attrs.evolve(rule, no_data_after=None)
    with_no_data = replay(alert, moments, rule)
    for seen, other in zip(with_no_data, replay(alert, moments, without), strict=True):
        assert seen.transition.decision == other.transition.decision


@given(alerts, series, options, st.integers(min_value=0, max_value=30))
def test_a_restart_resumes_from_the_stored_state_without_forgetting_or_hurrying(
    alert, moments, rule, split
):
    whole = replay(alert, moments, rule)
    first = replay(alert, moments[:split], rule)
    if not first:
        return
    # A new process knows only what the tables keep: the pending instant and the open events.
    kept = first[-1].transition.state
    stored = AlertState(kept.pending_since, kept.firing, kept.silent)
    rest = replay(
        alert, moments[split:], rule, stored, start=first[-1].now, first_reading=split + 1
    )
    assert [seen.transition for seen in whole] == [seen.transition for seen in first + rest]


# Readings up to two minutes in the future too, past the 30 s clock skew: distrusted until then.
live_series = st.lists(
    st.builds(
        Moment,
        advance=moments.map(lambda m: m.advance),
        value=moments.map(lambda m: m.value),
        age=st.timedeltas(min_value=timedelta(minutes=-2), max_value=timedelta(minutes=30)),
        active=st.booleans() | st.just(True),
        polled=st.booleans() | st.just(True),
    ),
    max_size=30,
)


@given(alerts, live_series, options, st.floats(min_value=0.0, max_value=1.0))
def test_time_alone_changes_nothing_before_the_instant_the_live_path_judges_again(
    alert, moments, rule, fraction
):
    """Issue 16: between an evaluation and the earlier of its Transition.due and its reading's
    Evaluator.rejudged_at, an evaluation of the same reading leaves everything as it was; at
    that instant, or with none, the live path has nothing more to wait for."""
    for seen in replay(alert, moments, rule):
        _, device, reading = observed(alert, seen.moment, seen.now, 1)
        instants = [
            seen.transition.due,
            POLICY.at(seen.now).rejudged_at(device, reading),
        ]
        due = min((at for at in instants if at is not None), default=None)
        if due is None:
            due = seen.now + timedelta(days=2)  # nothing due: time alone changes nothing
        assert due > seen.now
        later = seen.now + (due - seen.now) * fraction
        if later >= due:
            continue
        state, observation = seen.transition.state, (alert, device, reading)
        again = step(state, observation, later, rule, POLICY)
        after = step(state, observation, seen.now, rule, POLICY)
        assert _outcome(again) == _outcome(after)


@given(alerts, live_series, options)
def test_at_the_instant_the_live_path_judges_again_the_outcome_changes(alert, moments, rule):
    """The instants are not merely safe but tight: an evaluation at the one found decides
    otherwise than one a microsecond before it."""
    for seen in replay(alert, moments, rule):
        _, device, reading = observed(alert, seen.moment, seen.now, 1)
        instants = [seen.transition.due, POLICY.at(seen.now).rejudged_at(device, reading)]
        due = min((at for at in instants if at is not None), default=None)
        if due is None:
            continue
        state, observation = seen.transition.state, (alert, device, reading)
        before = step(state, observation, due - timedelta(microseconds=1), rule, POLICY)
        at = step(state, observation, due, rule, POLICY)
        assert _outcome(before) != _outcome(at)


def _outcome(transition: Transition) -> tuple[object, ...]:
    decision = transition.decision
    code = decision.code if isinstance(decision, Skip) else None
    return transition.state, type(decision), code, type(transition.no_data)
