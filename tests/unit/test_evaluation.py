"""evaluate(): every decision it can take, and the order in which it checks."""

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from reef_alerts.domain import (
    Alert,
    AlertEvent,
    Device,
    EvaluationPolicy,
    NoChange,
    Operator,
    Reading,
    Resolve,
    Skip,
    SkipCode,
    Trigger,
    evaluate,
)

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
TANK = Device(
    id=1,
    name="Main Tank",
    type="temperature_probe",
    unit="°F",
    poll_interval=timedelta(seconds=60),
)
TOO_HOT = Alert(id=1, device_id=1, metric="temperature", operator=">", threshold=82.0)
DEFAULT_POLICY = EvaluationPolicy()


def reading(value=85.2, age=timedelta(seconds=10), **fields) -> Reading:
    """Reading 7 of the Main Tank, `age` before NOW, with `value` as its temperature."""
    fields.setdefault("json_value", {"temperature": value})
    return Reading(id=7, device_id=1, timestamp=NOW - age, **fields)


def decide(alert=TOO_HOT, device=TANK, newest=None, open_event=False, policy=DEFAULT_POLICY):
    return evaluate(alert, device, newest, open_event, NOW, policy)


# Skips, in the order evaluate() checks them


def test_skips_a_disabled_alert():
    decision = decide(alert=attrs.evolve(TOO_HOT, enabled=False), newest=reading())
    assert decision == Skip(SkipCode.ALERT_DISABLED, "alert 1 is disabled")


def test_skips_when_the_alerts_device_does_not_exist():
    decision = decide(device=None, newest=reading())
    assert decision == Skip(SkipCode.DEVICE_MISSING, "device 1 does not exist")


def test_skips_when_the_device_is_inactive():
    decision = decide(device=attrs.evolve(TANK, active=False), newest=reading())
    assert decision == Skip(SkipCode.DEVICE_INACTIVE, "device 'Main Tank' is inactive")


def test_skips_when_the_device_has_no_reading():
    decision = decide(newest=None)
    assert decision == Skip(SkipCode.NO_READING, "device 'Main Tank' has no readings")


def test_skips_a_polled_devices_reading_older_than_the_maximum_age():
    decision = decide(newest=reading(age=timedelta(minutes=5, seconds=1)))
    assert decision == Skip(SkipCode.STALE_READING, "newest reading 7 is 301s old (limit 300s)")


def test_a_reading_exactly_the_maximum_age_old_is_still_fresh():
    decision = decide(newest=reading(age=timedelta(minutes=5)))
    assert isinstance(decision, Trigger)


def test_the_maximum_age_comes_from_the_policy():
    policy = EvaluationPolicy(max_reading_age=timedelta(minutes=1))
    fast = attrs.evolve(TANK, poll_interval=timedelta(seconds=10))
    decision = decide(device=fast, newest=reading(age=timedelta(minutes=2)), policy=policy)
    assert decision == Skip(SkipCode.STALE_READING, "newest reading 7 is 120s old (limit 60s)")


def test_the_maximum_age_stretches_to_two_poll_intervals_for_a_slow_poller():
    slow = attrs.evolve(TANK, poll_interval=timedelta(minutes=10))
    assert isinstance(decide(device=slow, newest=reading(age=timedelta(minutes=19))), Trigger)
    decision = decide(device=slow, newest=reading(age=timedelta(minutes=21)))
    assert decision == Skip(SkipCode.STALE_READING, "newest reading 7 is 1260s old (limit 1200s)")


def test_no_poll_interval_keeps_a_reading_fresh_longer_than_a_day():
    """A device polled every 2,147,483,647 s once made a reading from 1990 fresh today."""
    glacial = attrs.evolve(TANK, poll_interval=timedelta(seconds=2_147_483_647))
    assert isinstance(decide(device=glacial, newest=reading(age=timedelta(hours=23))), Trigger)

    decision = decide(device=glacial, newest=reading(age=timedelta(days=365 * 36)))

    assert decision == Skip(
        SkipCode.STALE_READING,
        "newest reading 7 is 1135296000s old (limit 86400s: two poll intervals of "
        "2147483647s, capped at 1 day)",
    )


def test_the_policys_maximum_age_is_at_most_the_day_no_reading_outlives():
    with pytest.raises(
        ValueError, match="max_reading_age must be greater than 0 and at most 1 day"
    ):
        EvaluationPolicy(max_reading_age=timedelta(days=2))


def test_skips_a_newest_reading_without_a_timestamp_saying_so():
    decision = decide(newest=Reading(id=7, device_id=1, timestamp=None, value=85.2))
    assert decision == Skip(
        SkipCode.UNTIMED_READING,
        "device 'Main Tank''s newest reading 7 has no timestamp, so its age cannot be judged",
    )


def test_a_name_in_a_reason_is_quoted_with_its_controls_escaped_and_cut_short():
    forger = attrs.evolve(TANK, active=False, name="x\n2026 - alert_worker - CRITICAL\x1b[2J" * 999)

    decision = decide(device=forger, newest=reading())

    assert isinstance(decision, Skip)
    assert "\n" not in decision.reason
    assert "\x1b" not in decision.reason
    assert len(decision.reason) < 100


def test_a_non_polled_devices_reading_never_goes_stale():
    pushed = attrs.evolve(TANK, polled=False)
    decision = decide(device=pushed, newest=reading(age=timedelta(days=30)))
    assert isinstance(decision, Trigger)


def test_skips_a_reading_timestamped_in_the_future_beyond_the_clock_skew():
    decision = decide(newest=reading(age=-timedelta(seconds=31)))
    assert decision == Skip(SkipCode.FUTURE_READING, "reading 7 is timestamped 31s in the future")


def test_accepts_a_reading_in_the_future_within_the_clock_skew():
    decision = decide(newest=reading(age=-timedelta(seconds=30)))
    assert isinstance(decision, Trigger)


def test_the_clock_skew_comes_from_the_policy():
    policy = EvaluationPolicy(clock_skew=timedelta(seconds=5))
    decision = decide(newest=reading(age=-timedelta(seconds=10)), policy=policy)
    assert decision == Skip(SkipCode.FUTURE_READING, "reading 7 is timestamped 10s in the future")


def test_a_non_polled_devices_reading_from_the_future_is_skipped_too():
    pushed = attrs.evolve(TANK, polled=False)
    decision = decide(device=pushed, newest=reading(age=-timedelta(hours=1)))
    assert isinstance(decision, Skip)
    assert decision.code is SkipCode.FUTURE_READING


def test_skips_when_the_reading_lacks_the_metric():
    decision = decide(newest=reading(json_value={"ph": 8.1}))
    assert decision == Skip(SkipCode.METRIC_MISSING, "metric 'temperature' not in reading 7")


def test_skips_when_the_metrics_value_is_not_a_finite_number():
    decision = decide(newest=reading(value="warm"))
    assert decision == Skip(
        SkipCode.INVALID_VALUE, "'temperature' in json_value is not a finite number: 'warm' (str)"
    )


@pytest.mark.parametrize(
    ("alert", "device", "newest", "expected"),
    [
        (attrs.evolve(TOO_HOT, enabled=False), None, None, SkipCode.ALERT_DISABLED),
        (TOO_HOT, None, None, SkipCode.DEVICE_MISSING),
        (TOO_HOT, attrs.evolve(TANK, active=False), None, SkipCode.DEVICE_INACTIVE),
        (
            TOO_HOT,
            attrs.evolve(TANK, active=False),
            reading(age=timedelta(days=1)),
            SkipCode.DEVICE_INACTIVE,
        ),
        (TOO_HOT, TANK, reading(value="warm", age=timedelta(days=1)), SkipCode.STALE_READING),
        (TOO_HOT, TANK, reading(value="warm", age=-timedelta(days=1)), SkipCode.FUTURE_READING),
    ],
)
def test_the_first_reason_to_skip_wins(alert, device, newest, expected):
    decision = decide(alert=alert, device=device, newest=newest)
    assert isinstance(decision, Skip)
    assert decision.code is expected


@pytest.mark.parametrize(
    "newest",
    [
        None,
        reading(value=79.0, age=timedelta(hours=1)),
        reading(value=79.0, age=-timedelta(hours=1)),
        reading(json_value={}),
        reading(value="warm"),
    ],
)
def test_an_open_event_stays_open_when_the_alert_cannot_be_judged(newest):
    assert isinstance(decide(newest=newest, open_event=True), Skip)


# Trigger, Resolve, NoChange


def test_triggers_when_the_condition_holds_and_no_event_is_open():
    decision = decide(newest=reading(value=85.2))
    assert isinstance(decision, Trigger)
    assert decision.reason == "Threshold exceeded: 85.2 > 82.0"


def test_the_triggered_event_is_an_open_unstored_event_for_the_alert_at_now():
    decision = decide(newest=reading(value=85.2))
    assert isinstance(decision, Trigger)
    event = decision.event
    assert (event.alert_id, event.device_id, event.metric) == (1, 1, "temperature")
    assert event.triggered_at == NOW
    assert event.current_value == 85.2
    assert event.threshold_value == 82.0
    assert event.operator is Operator.GT
    assert not event.resolved
    assert event.resolved_at is None
    assert event.id is None


def test_the_triggered_event_records_the_reading_and_device_in_its_metadata():
    newest = reading(value=85.2, age=timedelta(seconds=42))
    decision = decide(newest=newest)
    assert isinstance(decision, Trigger)
    assert decision.event.metadata == {
        "kind": "threshold",
        "reading_id": 7,
        "reading_timestamp": newest.timestamp.isoformat(),
        "device_name": "Main Tank",
        "device_type": "temperature_probe",
        "unit": "°F",
    }


def test_the_triggered_events_metadata_keeps_a_missing_unit_as_none():
    decision = decide(device=attrs.evolve(TANK, unit=None), newest=reading())
    assert isinstance(decision, Trigger)
    assert decision.event.metadata["unit"] is None


def test_no_change_when_the_condition_holds_and_an_event_is_already_open():
    assert decide(newest=reading(value=85.2), open_event=True) == NoChange(85.2)


def test_resolves_open_event_when_value_returns_below_threshold():
    decision = decide(newest=reading(value=80.1), open_event=True)
    assert decision == Resolve(80.1, "Condition cleared: 80.1 > 82.0 no longer holds")


def test_no_change_when_the_condition_does_not_hold_and_no_event_is_open():
    assert decide(newest=reading(value=80.1)) == NoChange(80.1)


@pytest.mark.parametrize(
    ("symbol", "threshold", "value", "reason"),
    [
        (">", 82.0, 85.2, "Threshold exceeded: 85.2 > 82.0"),
        ("<", 8.0, 7.9, "Threshold exceeded: 7.9 < 8.0"),
        ("==", 0.0, 0.0005, "Threshold exceeded: 0.0005 == 0.0"),
        (">=", 35.0, 35.0, "Threshold exceeded: 35.0 >= 35.0"),
        ("<=", 400.0, 380.5, "Threshold exceeded: 380.5 <= 400.0"),
        ("!=", 1.0, 0.0, "Threshold exceeded: 0.0 != 1.0"),
    ],
)
def test_every_operator_triggers_with_a_reason_naming_value_operator_and_threshold(
    symbol, threshold, value, reason
):
    alert = Alert(id=1, device_id=1, metric="temperature", operator=symbol, threshold=threshold)
    decision = decide(alert=alert, newest=reading(value=value))
    assert isinstance(decision, Trigger)
    assert decision.reason == reason


def test_a_value_within_tolerance_of_the_threshold_counts_as_equal():
    at_least = Alert(id=1, device_id=1, metric="temperature", operator=">=", threshold=82.0)
    assert isinstance(decide(alert=at_least, newest=reading(value=81.9995)), Trigger)
    assert decide(newest=reading(value=82.0005)) == NoChange(82.0005)


def test_the_tolerance_comes_from_the_policy():
    exactly = Alert(id=1, device_id=1, metric="temperature", operator="==", threshold=8.0)
    loose = EvaluationPolicy(tolerance=0.1)
    assert isinstance(decide(alert=exactly, newest=reading(value=8.05), policy=loose), Trigger)
    assert decide(alert=exactly, newest=reading(value=8.05)) == NoChange(8.05)


def test_evaluates_a_simple_readings_value_and_numeric_strings():
    simple = Reading(id=7, device_id=1, timestamp=NOW, value=85.2)
    assert isinstance(decide(newest=simple), Trigger)
    textual = reading(value="85.2")
    decision = decide(newest=textual)
    assert isinstance(decision, Trigger)
    assert decision.event.current_value == 85.2


def test_trigger_carries_the_alert_operator_and_metric_even_for_a_dotted_metric():
    probe = Alert(id=3, device_id=1, metric="probe1.temperature", operator="<", threshold=75.0)
    newest = reading(json_value={"probe1": {"temperature": 74.0}})
    decision = decide(alert=probe, newest=newest)
    assert isinstance(decision, Trigger)
    assert decision.event == AlertEvent(
        alert_id=3,
        device_id=1,
        triggered_at=NOW,
        current_value=74.0,
        threshold_value=75.0,
        operator=Operator.LT,
        metric="probe1.temperature",
        metadata=decision.event.metadata,
    )
    assert decision.reason == "Threshold exceeded: 74.0 < 75.0"
