"""What a keeper is told, and the rules delivery follows (issue 15): messages, silences, rate
limits, retries; and delivery's loop and metrics."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.application.delivery import DeliveryStats
from reef_alerts.domain import EventKind
from reef_alerts.domain.notices import (
    Change,
    DeliveryPolicy,
    Disposal,
    Notice,
    Silence,
    compose,
    covering,
    disposal,
    holds,
)
from reef_alerts.entrypoints.delivering import DeliveryLoop
from reef_alerts.entrypoints.metrics import WorkerMetrics
from reef_alerts.ports.notifying import Channel, recipients

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def notice(
    change: Change = Change.OPENED,
    kind: EventKind = EventKind.THRESHOLD,
    *,
    device: str = "Display Tank",
    event_id: int = 7,
    **fields: object,
) -> Notice:
    values: dict[str, object] = {
        "item_id": event_id,
        "change": change,
        "event_id": event_id,
        "alert_id": 3,
        "device_id": 1,
        "device": device,
        "kind": kind,
        "metric": "temperature",
        "operator": ">",
        "threshold": 82.0,
        "value": 84.5,
        "unit": "°F",
        "triggered_at": NOW - timedelta(hours=1),
        **fields,
    }
    return Notice(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("told", "line"),
    [
        (
            notice(),
            "FIRING Display Tank temperature 84.5 °F > 82 °F since 2026-11-29 11:00 UTC [event 7]",
        ),
        (
            notice(Change.RESOLVED, resolved_at=NOW, resolution_value=80.2),
            "RESOLVED Display Tank temperature 80.2 °F (was > 82 °F), after 1h [event 7]",
        ),
        (
            notice(
                kind=EventKind.NO_DATA,
                value=None,
                metadata={"last_reading_at": "2026-11-29T10:40:00+00:00"},
            ),
            "NO DATA Display Tank: no reading since 2026-11-29 10:40 UTC [event 7]",
        ),
        (
            notice(
                kind=EventKind.FORECAST,
                metadata={"predicted_crossing_at": "2026-11-29T14:30:00+00:00"},
                threshold=86.0,
            ),
            "FORECAST Display Tank temperature 84.5 °F will reach > 86 °F around "
            "2026-11-29 14:30 UTC [event 7]",
        ),
        (
            notice(kind=EventKind.RATE, metadata={"rate_per_hour": 1.5}),
            "RATE Display Tank temperature moves +1.5/h towards > 82 °F [event 7]",
        ),
        (
            notice(Change.RESOLVED, EventKind.NO_DATA),
            "RESOLVED Display Tank: reporting again after its silence [event 7]",
        ),
        (
            notice(Change.RESOLVED, EventKind.FORECAST),
            "RESOLVED forecast Display Tank temperature: no longer heading for > 82 °F [event 7]",
        ),
        (
            notice(Change.RESOLVED, EventKind.RATE),
            "RESOLVED rate Display Tank temperature: its rate of change is within its limit "
            "again [event 7]",
        ),
        (
            notice(kind=EventKind.NO_DATA, value=None, metadata={"last_reading_at": "lately"}),
            "NO DATA Display Tank: no reading since lately [event 7]",
        ),
        (
            notice(Change.REMINDER),
            "FIRING Display Tank temperature 84.5 °F > 82 °F since 2026-11-29 11:00 UTC "
            "(still open, unacknowledged; reef-alerts ack 7) [event 7]",
        ),
        (
            notice(Change.ESCALATION),
            "ESCALATED, unacknowledged for 1h: FIRING Display Tank temperature 84.5 °F > 82 °F "
            "since 2026-11-29 11:00 UTC [event 7]",
        ),
    ],
)
def test_each_change_is_one_line_with_the_device_value_unit_threshold_and_since_when(
    told: Notice, line: str
) -> None:
    assert told.line(NOW) == line


def test_a_message_sums_its_changes_up_in_its_title_and_keeps_its_id_in_the_body() -> None:
    notices = [
        notice(event_id=1),
        notice(event_id=2, device="Sump"),
        notice(Change.RESOLVED, event_id=3, resolved_at=NOW, resolution_value=80.0),
    ]

    message = compose(42, notices, "phone", NOW)

    assert message.id == "reef-alerts-42"
    assert message.title == "[reef] 2 firing, 1 resolved on 2 devices"
    assert message.body.endswith("\n\nMessage id: reef-alerts-42")
    assert [line.split()[0] for line in message.body.splitlines()[:3]] == [
        "FIRING",
        "RESOLVED",
        "FIRING",
    ]  # by device, then event
    assert message.payload["status"] == "firing"
    assert [a["status"] for a in message.payload["alerts"]] == ["firing", "resolved", "firing"]
    assert message.payload["alerts"][1]["endsAt"] == NOW.isoformat()


def test_silences_and_the_delivery_policy_describe_themselves_for_a_person() -> None:
    end = NOW + timedelta(minutes=30)

    assert Silence(1, 5, None, NOW, end, "water change").describe() == (
        "silence 1: device 5 until 2026-11-29 12:30 UTC (water change)"
    )
    assert (
        Silence(2, None, 9, NOW, end).describe() == "silence 2: alert 9 until 2026-11-29 12:30 UTC"
    )
    assert Silence(3, None, None, NOW, end).describe().startswith("silence 3: every alert")
    assert DeliveryPolicy().describe() == (
        "remind every 4h, escalate after never, at most 20 messages a channel an hour, give up "
        "after 1d, timeout 10s"
    )


def test_a_message_of_one_change_is_titled_by_it_and_one_of_resolutions_says_so() -> None:
    resolved = [
        notice(Change.RESOLVED, event_id=n, resolved_at=NOW, resolution_value=80.0) for n in (1, 2)
    ]

    assert compose(1, [notice()], "", NOW).title == (
        "[reef] FIRING Display Tank temperature 84.5 °F > 82 °F since 2026-11-29 11:00 UTC"
    )
    assert compose(2, resolved, "", NOW).title == "[reef] 2 alerts resolved on Display Tank"
    assert compose(2, resolved, "", NOW).payload["status"] == "resolved"


def test_the_fingerprint_is_the_same_for_every_notice_of_one_alert_and_kind() -> None:
    opened, resolved = notice(), notice(Change.RESOLVED, event_id=8)
    forecast = notice(kind=EventKind.FORECAST)

    assert opened.fingerprint() == resolved.fingerprint() != forecast.fingerprint()


def test_silences_cover_their_alert_their_device_or_every_alert_while_they_last() -> None:
    end = NOW + timedelta(minutes=30)
    device = Silence(1, 5, None, NOW, end)
    alert = Silence(2, None, 9, NOW, end)
    every = Silence(3, None, None, NOW, end)

    assert device.covers(1, 5, NOW)
    assert not device.covers(1, 6, NOW)
    assert alert.covers(9, 6, NOW)
    assert not alert.covers(8, 5, NOW)
    assert every.covers(1, 1, end - timedelta(microseconds=1))
    assert not every.covers(1, 1, end)
    assert not every.covers(1, 1, NOW - timedelta(seconds=1))
    assert covering([device, alert], 9, 6, NOW) is alert
    assert covering([device, alert], 8, 6, NOW) is None


@given(attempts=st.integers(1, 200), jitter=st.floats(0, 1, exclude_max=True))
def test_retries_wait_30s_doubling_up_to_an_hour_give_or_take_a_fifth(
    attempts: int, jitter: float
) -> None:
    delay = (DeliveryPolicy().retry_at(NOW, attempts, jitter) - NOW).total_seconds()
    expected = min(30 * 2 ** (attempts - 1), 3600)

    assert 0.8 * expected <= delay < 1.2 * expected + 1e-6


@given(st.lists(st.integers(0, 7200), max_size=60), st.integers(1, 30))
def test_a_channel_never_gets_more_than_its_limit_in_any_hour(ages: list[int], limit: int) -> None:
    """The next slot leaves at most `limit - 1` other messages in the hour before it."""
    policy = DeliveryPolicy(per_hour=limit)
    made = [NOW - timedelta(seconds=age) for age in ages]

    slot = policy.next_slot(made, NOW)

    assert slot >= NOW
    assert sum(slot - timedelta(hours=1) < at <= slot for at in made) < limit
    if sum(at > NOW - timedelta(hours=1) for at in made) < limit:
        assert slot == NOW


def test_delivery_gives_up_on_a_message_once_it_is_older_than_give_up_after() -> None:
    policy = DeliveryPolicy(give_up_after=timedelta(hours=24))

    assert not policy.gives_up(NOW, NOW + timedelta(hours=23, minutes=59))
    assert policy.gives_up(NOW, NOW + timedelta(hours=24))


def test_a_failing_delivery_round_is_logged_once_until_one_succeeds_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[Exception | None] = [OSError("db down"), OSError("db down"), None]

    def deliver() -> DeliveryStats:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return DeliveryStats(sent=2)

    metrics = WorkerMetrics(30)
    loop = DeliveryLoop(
        deliver, logging.getLogger("reef.test"), threading.Event(), observers=[metrics]
    )
    with caplog.at_level(logging.INFO):
        results = [loop.once() for _ in range(3)]

    assert results[:2] == [None, None]
    assert results[2] is not None
    assert [r.getMessage() for r in caplog.records] == [
        "Notification delivery failed: OSError: db down; retrying",
        "Notification delivery works again",
    ]
    assert (
        metrics.registry.get_sample_value("reef_alerts_notifications_total", {"outcome": "sent"})
        == 2
    )


def test_the_notification_metrics_count_every_outcome_from_zero() -> None:
    metrics = WorkerMetrics(30)
    before = {
        outcome: metrics.registry.get_sample_value(
            "reef_alerts_notifications_total", {"outcome": outcome}
        )
        for outcome in ("sent", "retry", "failed")
    }

    metrics.delivered(DeliveryStats(sent=3, retried=2, failed=1))

    assert before == {"sent": 0, "retry": 0, "failed": 0}
    assert [
        metrics.registry.get_sample_value("reef_alerts_notifications_total", {"outcome": o})
        for o in ("sent", "retry", "failed")
    ] == [3, 2, 1]


def _disposal(change: Change = Change.OPENED, **facts: bool) -> Disposal:
    given = {
        "gone": False,
        "held": False,
        "was_held": False,
        "resolved": False,
        "acknowledged": False,
        "told_open": False,
        **facts,
    }
    return disposal(change, **given)


def test_planning_tells_holds_or_drops_each_change_by_what_the_keeper_was_told() -> None:
    assert _disposal() is Disposal.PLAN
    assert _disposal(gone=True) is Disposal.DROP
    assert _disposal(held=True) is Disposal.HOLD
    assert _disposal(held=True, was_held=True) is Disposal.HOLD
    # A hold ends: an event still open is told, one over meanwhile is not.
    assert _disposal(was_held=True) is Disposal.PLAN
    assert _disposal(was_held=True, resolved=True) is Disposal.DROP
    # Held back and acknowledged meanwhile: someone is on it, nothing is sent.
    assert _disposal(Change.REMINDER, was_held=True, acknowledged=True) is Disposal.DROP
    assert _disposal(Change.OPENED, was_held=True, acknowledged=True) is Disposal.DROP
    # The end of an event is told only to whom its opening was; while its opening waits
    # (held, or planned by another deliverer this moment), it waits too.
    assert _disposal(Change.RESOLVED, told_open=True, resolved=True) is Disposal.PLAN
    assert _disposal(Change.RESOLVED, resolved=True) is Disposal.DROP
    assert _disposal(Change.RESOLVED, resolved=True, opening_pending=True) is Disposal.WAIT


def test_a_silence_or_the_devices_no_data_event_holds_back_threshold_notifications() -> None:
    silence = Silence(1, 5, None, NOW, NOW + timedelta(hours=1))

    assert holds([silence], set(), 3, 5, EventKind.FORECAST, NOW)
    assert holds([], {5}, 3, 5, EventKind.THRESHOLD, NOW)
    assert not holds([], {5}, 3, 5, EventKind.NO_DATA, NOW)
    assert not holds([silence], {6}, 3, 7, EventKind.THRESHOLD, NOW)


def test_escalations_go_to_the_escalation_channels_and_the_rest_to_the_others() -> None:
    phone, mail = Channel("phone", "ntfy://x/a"), Channel("mail", "mailto://x")
    boss = Channel("boss", "ntfy://x/b", ("escalation",))

    assert recipients([phone, mail, boss], escalation=True) == [boss]
    assert recipients([phone, mail, boss], escalation=False) == [phone, mail]
    # None of its kind: every channel, so that nothing is lost for want of a tag.
    assert recipients([phone], escalation=True) == [phone]
    assert recipients([boss], escalation=False) == [boss]


def test_a_worker_started_before_db_upgrade_looks_for_the_outbox_every_30s_then_delivers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    there = [False, True]
    looks: list[float] = []
    clock = [0.0]

    def ready() -> bool:
        looks.append(clock[0])
        return there.pop(0)

    loop = DeliveryLoop(
        lambda: DeliveryStats(sent=1),
        logging.getLogger("reef.test"),
        threading.Event(),
        ready=ready,
        monotonic=lambda: clock[0],
    )
    with caplog.at_level(logging.INFO):
        results = []
        for second in (0.0, 10.0, 29.0, 30.0, 31.0):
            clock[0] = second
            results.append(loop.once())

    assert looks == [0.0, 30.0]
    assert [r is not None for r in results] == [False, False, False, True, True]
    assert [r.getMessage() for r in caplog.records] == [
        "Notifications: the outbox is here now; delivering every 1s"
    ]
