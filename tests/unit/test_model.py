"""The value objects' own rules: alert construction, aware timestamps, resolving an event."""

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from reef_alerts.domain import (
    Alert,
    AlertEvent,
    Device,
    EvaluationPolicy,
    InvalidAlertError,
    Operator,
    Reading,
    UnknownOperatorError,
)

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
NAIVE = datetime(2024, 1, 1, 12, 0)


def make_alert(operator: object = ">", threshold: object = 82.0) -> Alert:
    return Alert(
        id=1,
        device_id=1,
        metric="temperature",
        operator=operator,  # type: ignore[arg-type]
        threshold=threshold,  # type: ignore[arg-type]
    )


def make_event(**overrides: object) -> AlertEvent:
    fields: dict[str, object] = {
        "alert_id": 1,
        "device_id": 1,
        "triggered_at": NOW,
        "current_value": 85.2,
        "threshold_value": 82.0,
        "operator": Operator.GT,
        "metric": "temperature",
    }
    return AlertEvent(**(fields | overrides))  # type: ignore[arg-type]


def test_alert_converts_its_operator_symbol_to_an_operator():
    assert make_alert(operator=" <= ").operator is Operator.LE


def test_alert_with_unknown_operator_fails_naming_the_operator_and_the_allowed_ones():
    with pytest.raises(UnknownOperatorError, match=r"'=>'.*>, <, ==, >=, <=, !="):
        make_alert(operator="=>")


@pytest.mark.parametrize("threshold", [math.nan, math.inf, -math.inf, True, False, "82"])
def test_alert_rejects_a_threshold_that_is_not_a_finite_number(threshold):
    with pytest.raises(InvalidAlertError, match=r"threshold must be a finite number"):
        make_alert(threshold=threshold)


def test_alert_rejects_a_missing_threshold():
    with pytest.raises(InvalidAlertError, match=r"threshold is missing \(NULL\)"):
        make_alert(threshold=None)


def test_alert_stores_a_whole_number_threshold_as_a_float():
    threshold = make_alert(threshold=82).threshold

    assert threshold == 82.0
    assert isinstance(threshold, float)


@pytest.mark.parametrize("threshold", [0.0, -40.0, 1e300, 82])
def test_alert_accepts_any_finite_threshold(threshold):
    assert make_alert(threshold=threshold).threshold == threshold


def test_alert_is_enabled_and_ignores_trends_unless_told_otherwise():
    alert = make_alert()
    assert alert.enabled
    assert not alert.trend_enabled


def test_reading_rejects_a_naive_timestamp():
    with pytest.raises(ValueError, match=r"timestamp must be timezone-aware"):
        Reading(id=1, device_id=1, timestamp=NAIVE, value=1.0)


def test_reading_accepts_an_aware_timestamp_in_any_zone():
    plus_ten = timezone(timedelta(hours=10))
    reading = Reading(id=1, device_id=1, timestamp=NOW.astimezone(plus_ten))
    assert reading.timestamp == NOW


def test_alert_event_rejects_a_naive_triggered_at():
    with pytest.raises(ValueError, match=r"triggered_at must be timezone-aware"):
        make_event(triggered_at=NAIVE)


def test_alert_event_rejects_a_naive_resolved_at():
    with pytest.raises(ValueError, match=r"resolved_at must be timezone-aware"):
        make_event(resolved=True, resolved_at=NAIVE, resolution_value=80.0)


def test_new_alert_event_is_open_and_unstored():
    event = make_event()
    assert not event.resolved
    assert event.resolved_at is None
    assert event.resolution_value is None
    assert event.id is None
    assert event.metadata == {}


def test_resolving_an_event_records_when_and_at_which_value():
    event = make_event(id=9)
    later = NOW + timedelta(minutes=3)
    resolved = event.resolve(later, 80.1)
    assert resolved.resolved
    assert resolved.resolved_at == later
    assert resolved.resolution_value == 80.1
    assert resolved.id == 9
    assert resolved.current_value == event.current_value
    assert not event.resolved, "resolve() returns a new event; the original is frozen"


def test_resolving_an_already_resolved_event_fails():
    resolved = make_event().resolve(NOW, 80.1)
    with pytest.raises(ValueError, match=r"already resolved"):
        resolved.resolve(NOW, 79.0)


def test_max_reading_age_is_the_policy_limit_for_fast_pollers():
    policy = EvaluationPolicy(max_reading_age=timedelta(minutes=5))
    device = Device(id=1, name="Main Tank", type="probe", poll_interval=timedelta(seconds=60))
    assert policy.max_age_for(device) == timedelta(minutes=5)


def test_max_reading_age_stretches_to_two_poll_intervals_for_slow_pollers():
    policy = EvaluationPolicy(max_reading_age=timedelta(minutes=5))
    device = Device(id=1, name="Sump", type="probe", poll_interval=timedelta(minutes=10))
    assert policy.max_age_for(device) == timedelta(minutes=20)


def test_a_readings_timestamp_may_be_missing_but_is_never_anything_else():
    assert Reading(id=1, device_id=1, timestamp=None, value=80.0).timestamp is None
    with pytest.raises(TypeError, match="timestamp must be a datetime"):
        Reading(id=1, device_id=1, timestamp="2024-01-01", value=80.0)  # type: ignore[arg-type]


def test_an_alert_without_an_id_is_a_draft():
    draft = Alert(None, device_id=1, metric="temperature", operator=">", threshold=82.0)

    assert draft.id is None
    assert draft.operator is Operator.GT


@pytest.mark.parametrize("metric", [None, 5, b"ph"])
def test_an_alerts_metric_must_be_text(metric):
    with pytest.raises(InvalidAlertError, match="metric must be text"):
        Alert(1, device_id=1, metric=metric, operator=">", threshold=82.0)
