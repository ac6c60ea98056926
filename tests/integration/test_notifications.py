"""Notifications on real databases and real servers on the loopback (issue 15): the outbox is
written with the events, delivery groups, retries, gives up, holds back and reminds."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine, select

from reef_alerts.adapters import notify_admin, rule_store, schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.notify_tables import notifications, outbox
from reef_alerts.adapters.outbox import SqlOutbox
from reef_alerts.adapters.senders import AppriseSender
from reef_alerts.adapters.tables import Generation
from reef_alerts.adapters.unit_of_work import SqlUnitOfWorkFactory
from reef_alerts.application import RunCycle
from reef_alerts.application.delivery import Deliver, DeliveryStats
from reef_alerts.domain import EvaluationPolicy
from reef_alerts.domain.notices import DeliveryPolicy

from .notify_servers import Webhook, refused_url, smtp_server
from .reef import NOW, FixedClock, add_alert, add_device, add_reading, events, make_app_tables

LOG = logging.getLogger("reef_alerts.tests.notifications")
QUICK = DeliveryPolicy(timeout=timedelta(seconds=1))


@pytest.fixture
def upgraded(engine: Engine) -> Engine:
    """A database of either backend and generation, with the worker's tables."""
    schema.upgrade(engine)
    return engine


@pytest.fixture
def sqlite_reef(sqlite_url: str) -> Iterator[Engine]:
    """An upgraded SQLite database of the current generation."""
    make_app_tables(sqlite_url, Generation.CURRENT)
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


def cycle(engine: Engine, clock: FixedClock, *, dry_run: bool = False) -> None:
    RunCycle(SqlUnitOfWorkFactory(engine, LOG), clock, EvaluationPolicy(), LOG, dry_run=dry_run)()


def deliverer(
    engine: Engine, clock: FixedClock, policy: DeliveryPolicy = QUICK, **kwargs: Any
) -> Deliver:
    return Deliver(
        SqlOutbox(engine, LOG), AppriseSender(), clock, policy, LOG, jitter=lambda: 0.5, **kwargs
    )


def add_channel(engine: Engine, name: str, url: str, *tags: str) -> None:
    notify_admin.add_channel(engine, name, url, tags, NOW)


def outbox_rows(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(outbox.c.event_id, outbox.c.change, outbox.c.state).order_by(outbox.c.id)
        )
        return [tuple(row) for row in rows]


def messages(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(notifications).order_by(notifications.c.id)))


def firing_tank(engine: Engine, alerts: int = 1, device_id: int = 1, value: float = 84.5) -> None:
    add_device(engine, device_id, f"Tank {device_id}")
    for number in range(alerts):
        add_alert(engine, device_id * 1000 + number, device_id, threshold=82.0 - number)
    add_reading(engine, device_id, value)


def test_each_event_change_writes_its_outbox_row_in_the_same_transaction(
    upgraded: Engine,
) -> None:
    firing_tank(upgraded)
    clock = FixedClock()
    cycle(upgraded, clock, dry_run=True)
    assert outbox_rows(upgraded) == []  # rolled back with its events

    cycle(upgraded, clock)
    event_id = events(upgraded)[0]["id"]
    add_reading(upgraded, 1, 80.0, age=timedelta(seconds=1))
    cycle(upgraded, clock)

    assert outbox_rows(upgraded) == [(event_id, "opened", "new"), (event_id, "resolved", "new")]


def test_one_cycles_changes_reach_a_webhook_as_one_alertmanager_message(upgraded: Engine) -> None:
    firing_tank(upgraded, alerts=3)
    clock = FixedClock()
    cycle(upgraded, clock)
    with Webhook() as hook:
        add_channel(upgraded, "hook", hook.url)
        stats = deliverer(upgraded, clock)()

    assert (stats.planned.messages, stats.sent) == (1, 1)
    [body] = hook.received
    assert hook.message_ids == ["reef-alerts-1"] == [body["messageId"]]
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "hook")
    assert len(body["alerts"]) == 3
    first = next(a for a in body["alerts"] if a["labels"]["alertname"] == "temperature > 82")
    assert set(first) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert first["labels"]["device"] == "Tank 1"
    assert "FIRING Tank 1 temperature 84.5 F > 82 F" in first["annotations"]["summary"]
    assert first["startsAt"] == NOW.isoformat()
    assert [m.state for m in messages(upgraded)] == ["sent"]
    assert {state for _, _, state in outbox_rows(upgraded)} == {"planned"}


def test_an_email_arrives_at_the_smtp_server_with_the_values_and_the_message_id(
    sqlite_reef: Engine,
) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    cycle(sqlite_reef, clock)
    with smtp_server() as (url, mailbox):
        add_channel(sqlite_reef, "mail", url)
        stats = deliverer(sqlite_reef, clock)()

    assert stats.sent == 1
    [(sender, recipients, content)] = mailbox.messages
    assert (sender, recipients) == ("reef@example.org", ["keeper@example.org"])
    assert "Subject: [reef] FIRING Tank 1 temperature 84.5 F > 82 F since 2026-11-29 12:00" in (
        content
    )
    assert "Message id: reef-alerts-1" in content


def test_a_webhook_that_answers_500_is_retried_with_backoff_until_delivery_gives_up(
    sqlite_reef: Engine,
) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    cycle(sqlite_reef, clock)
    # No reminders: they would be messages of their own.
    deliver = deliverer(sqlite_reef, clock, attrs.evolve(QUICK, repeat_interval=None))
    with Webhook() as hook:
        hook.mode = "error"
        add_channel(sqlite_reef, "hook", hook.url)
        delays = []
        while True:
            stats = deliver()
            [message] = messages(sqlite_reef)
            if message.state == "failed":
                break
            assert stats.retried == 1
            delays.append(message.next_attempt_at - clock.current)
            clock.current = message.next_attempt_at

    # 30 s doubling, at most an hour, each at the middle of its jitter here (jitter 0.5).
    assert delays[:3] == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert max(delays) == timedelta(hours=1)
    assert clock.current - message.created_at >= timedelta(hours=24)
    assert message.attempts == hook.attempts == len(delays) + 1
    [shown] = notify_admin.list_messages(sqlite_reef, failed=True, limit=10)
    assert shown.last_error is not None
    assert "answered HTTP 500" in shown.last_error


def test_a_webhook_that_hangs_past_the_timeout_is_retried_and_sent_once_it_answers(
    sqlite_reef: Engine,
) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    cycle(sqlite_reef, clock)
    deliver = deliverer(sqlite_reef, clock)
    with Webhook() as hook:
        hook.mode = "hang"
        add_channel(sqlite_reef, "hook", hook.url)
        assert deliver().retried == 1
        [message] = messages(sqlite_reef)
        assert "did not answer within 1s" in message.last_error
        hook.mode = "ok"
        clock.current += timedelta(minutes=1)
        assert deliver().sent == 1
    assert hook.message_ids == ["reef-alerts-1"]


def test_a_webhook_that_redirects_is_an_error_not_a_delivery(sqlite_reef: Engine) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    cycle(sqlite_reef, clock)
    with Webhook() as hook:
        hook.mode = "redirect"
        add_channel(sqlite_reef, "hook", hook.url.replace("json://", "json://user:pw@"))
        stats = deliverer(sqlite_reef, clock)()

    [message] = messages(sqlite_reef)
    assert (stats.retried, message.state, hook.redirected) == (1, "pending", [])
    assert "answered HTTP 302" in message.last_error


def test_a_deliverer_whose_claim_ran_out_marks_nothing(sqlite_reef: Engine) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    cycle(sqlite_reef, clock)
    add_channel(sqlite_reef, "hook", refused_url())
    outbox_port = SqlOutbox(sqlite_reef, LOG)
    outbox_port.plan(NOW, QUICK)
    [slow] = outbox_port.claim(NOW, NOW + timedelta(seconds=40), 1)
    [quick] = outbox_port.claim(NOW + timedelta(minutes=1), NOW + timedelta(minutes=2), 1)

    assert outbox_port.sent(quick, NOW + timedelta(minutes=1), "title")
    assert not outbox_port.retry(slow, NOW + timedelta(minutes=3), "late", "title")
    [message] = messages(sqlite_reef)
    assert (message.state, message.attempts, message.last_error) == ("sent", 2, None)


def test_a_webhook_that_refuses_the_connection_is_retried(sqlite_reef: Engine) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    cycle(sqlite_reef, clock)
    add_channel(sqlite_reef, "hook", refused_url())

    stats = deliverer(sqlite_reef, clock)()

    [message] = messages(sqlite_reef)
    assert (stats.retried, message.state) == (1, "pending")
    assert "could not be reached" in message.last_error


def test_a_burst_of_1000_events_becomes_one_message_per_channel(database_url: str) -> None:
    make_app_tables(database_url, Generation.CURRENT)
    engine = make_engine(database_url)
    schema.upgrade(engine)
    for device_id in range(1, 101):
        firing_tank(engine, alerts=10, device_id=device_id)
    clock = FixedClock()
    cycle(engine, clock)
    with Webhook() as hook, smtp_server() as (url, mailbox):
        add_channel(engine, "hook", hook.url)
        add_channel(engine, "mail", url)
        stats = deliverer(engine, clock)()
    engine.dispose()

    assert (stats.planned.messages, stats.sent) == (2, 2)
    [body] = hook.received
    assert len(body["alerts"]) == 1000
    assert body["alerts"][0]["status"] == "firing"
    [(_, _, content)] = mailbox.messages
    assert "Subject: [reef] 1000 alerts firing on 100 devices" in content


def test_beyond_the_rate_limit_changes_fold_into_the_next_message_and_none_is_dropped(
    sqlite_reef: Engine,
) -> None:
    policy = DeliveryPolicy(timeout=timedelta(seconds=1), per_hour=3)
    clock = FixedClock()
    with Webhook() as hook:
        add_channel(sqlite_reef, "hook", hook.url)
        deliver = deliverer(sqlite_reef, clock, policy)
        for device_id in range(1, 7):  # six changes a minute apart
            firing_tank(sqlite_reef, device_id=device_id)
            add_reading(sqlite_reef, device_id, 84.5, now=clock.current)
            cycle(sqlite_reef, clock)
            deliver()
            clock.current += timedelta(minutes=1)
        assert len(hook.received) == 3  # the limit
        [waiting] = [m for m in messages(sqlite_reef) if m.state == "pending"]
        assert len(waiting.item_ids) == 3  # the other three, folded into one
        clock.current = waiting.next_attempt_at
        deliver()

    assert len(hook.received) == 4
    told = [alert["labels"]["device"] for body in hook.received for alert in body["alerts"]]
    assert sorted(told) == [f"Tank {n}" for n in range(1, 7)]
    assert waiting.next_attempt_at == NOW + timedelta(hours=1)


def test_a_silence_holds_back_notifications_and_one_goes_out_when_it_ends_on_an_open_event(
    upgraded: Engine,
) -> None:
    firing_tank(upgraded, device_id=1)
    clock = FixedClock()
    silence = notify_admin.add_silence(
        upgraded, NOW - timedelta(minutes=1), timedelta(minutes=30), device_id=1, reason="water"
    )
    add_device(upgraded, 2, "Sump")
    add_alert(upgraded, 2, 2)
    add_reading(upgraded, 2, 84.0)
    with Webhook() as hook:
        add_channel(upgraded, "hook", hook.url)
        deliver = deliverer(upgraded, clock)
        cycle(upgraded, clock)
        deliver()
        silenced = next(e for e in events(upgraded) if e["device_id"] == 1)
        assert silenced["metadata_"]["silenced"]["id"] == silence.id
        assert [a["labels"]["device"] for b in hook.received for a in b["alerts"]] == ["Sump"]

        clock.current += timedelta(minutes=10)
        deliver()  # still silenced: nothing more
        assert len(hook.received) == 1

        notify_admin.end_silence(upgraded, silence.id, clock.current)
        deliver()
        deliver()  # told once, not at every round

    assert len(hook.received) == 2
    [alert] = hook.received[1]["alerts"]
    assert (alert["labels"]["device"], alert["status"]) == ("Tank 1", "firing")


def test_an_event_that_opened_and_resolved_during_a_silence_is_never_told(
    sqlite_reef: Engine,
) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    silence = notify_admin.add_silence(sqlite_reef, NOW, timedelta(minutes=30), device_id=1)
    with Webhook() as hook:
        add_channel(sqlite_reef, "hook", hook.url)
        deliver = deliverer(sqlite_reef, clock)
        cycle(sqlite_reef, clock)
        deliver()
        add_reading(sqlite_reef, 1, 80.0, age=timedelta(seconds=1))
        cycle(sqlite_reef, clock)
        deliver()
        notify_admin.end_silence(sqlite_reef, silence.id, clock.current)
        deliver()

    assert hook.received == []
    assert [state for _, _, state in outbox_rows(sqlite_reef)] == ["dropped", "dropped"]


def test_the_end_of_an_event_whose_opening_was_never_told_is_not_told_either(
    sqlite_reef: Engine,
) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    silence = notify_admin.add_silence(sqlite_reef, NOW, timedelta(minutes=30), device_id=1)
    with Webhook() as hook:
        add_channel(sqlite_reef, "hook", hook.url)
        deliver = deliverer(sqlite_reef, clock)
        cycle(sqlite_reef, clock)
        deliver()  # held
        notify_admin.end_silence(sqlite_reef, silence.id, clock.current)
        add_reading(sqlite_reef, 1, 80.0, age=timedelta(seconds=1))
        cycle(sqlite_reef, clock)  # resolved before the next round
        deliver()

    assert hook.received == []


def test_an_event_acknowledged_while_held_back_is_not_told_when_the_hold_ends(
    sqlite_reef: Engine,
) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    silence = notify_admin.add_silence(sqlite_reef, NOW, timedelta(minutes=30), device_id=1)
    with Webhook() as hook:
        add_channel(sqlite_reef, "hook", hook.url)
        deliver = deliverer(sqlite_reef, clock)
        cycle(sqlite_reef, clock)
        deliver()  # held
        notify_admin.acknowledge(sqlite_reef, events(sqlite_reef)[0]["id"], NOW, "sam", None)
        add_reading(sqlite_reef, 1, 80.0, age=timedelta(seconds=1))
        cycle(sqlite_reef, clock)  # resolved while still held
        notify_admin.end_silence(sqlite_reef, silence.id, clock.current)
        deliver()

    assert hook.received == []
    assert [state for _, _, state in outbox_rows(sqlite_reef)] == ["dropped", "dropped"]


def test_reminders_do_not_pile_up_while_a_silence_lasts(sqlite_reef: Engine) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    with Webhook() as hook:
        add_channel(sqlite_reef, "hook", hook.url)
        deliver = deliverer(sqlite_reef, clock)
        cycle(sqlite_reef, clock)
        deliver()  # told open
        silence = notify_admin.add_silence(sqlite_reef, NOW, timedelta(hours=9), device_id=1)
        for _ in range(8):
            clock.current += timedelta(hours=1)
            deliver()
        assert len(hook.received) == 1
        notify_admin.end_silence(sqlite_reef, silence.id, clock.current)
        for _ in range(4):
            clock.current += timedelta(hours=1)
            deliver()

    assert len(hook.received) == 2
    [reminder] = hook.received[1]["alerts"]
    assert reminder["labels"]["change"] == "reminder"


def test_with_every_channel_tagged_escalation_the_other_changes_still_reach_them(
    sqlite_reef: Engine,
) -> None:
    firing_tank(sqlite_reef)
    clock = FixedClock()
    cycle(sqlite_reef, clock)
    with Webhook() as boss:
        add_channel(sqlite_reef, "boss", boss.url, "escalation")
        deliverer(sqlite_reef, clock)()

    assert [a["labels"]["change"] for a in boss.received[0]["alerts"]] == ["opened"]


def test_a_no_data_event_holds_back_the_devices_threshold_notifications(
    sqlite_reef: Engine,
) -> None:
    add_device(sqlite_reef, 1, "Tank 1")
    add_alert(sqlite_reef, 1, 1)  # temperature > 82
    add_alert(sqlite_reef, 2, 1, threshold=90.0)
    rule_store.set_rule(sqlite_reef, 2, {"no_data_after_seconds": 60.0})
    # The probe's last reading is 200 s old: silent past its limit (60 s, or two 60 s polls),
    # fresh enough to judge (300 s).
    add_reading(sqlite_reef, 1, 84.5, age=timedelta(seconds=200))
    clock = FixedClock()
    with Webhook() as hook:
        add_channel(sqlite_reef, "hook", hook.url)
        deliver = deliverer(sqlite_reef, clock)
        cycle(sqlite_reef, clock)
        assert {e["alert_id"] for e in events(sqlite_reef)} == {1, 2}
        deliver()
        assert [a["labels"]["kind"] for a in hook.received[0]["alerts"]] == ["no_data"]

        add_reading(sqlite_reef, 1, 84.5, age=timedelta(seconds=1))
        cycle(sqlite_reef, clock)
        deliver()

    assert len(hook.received) == 2
    told = {(a["labels"]["kind"], a["status"]) for a in hook.received[1]["alerts"]}
    assert told == {("no_data", "resolved"), ("threshold", "firing")}


def test_an_unacknowledged_event_is_reminded_every_repeat_interval_until_acknowledged(
    upgraded: Engine,
) -> None:
    firing_tank(upgraded)
    clock = FixedClock()
    with Webhook() as hook:
        add_channel(upgraded, "hook", hook.url)
        deliver = deliverer(upgraded, clock)
        cycle(upgraded, clock)
        deliver()
        clock.current += timedelta(hours=3, minutes=59)
        deliver()
        assert len(hook.received) == 1
        clock.current += timedelta(minutes=1)
        deliver()
        assert len(hook.received) == 2
        [reminder] = hook.received[1]["alerts"]
        assert reminder["labels"]["change"] == "reminder"
        assert "unacknowledged; reef-alerts ack" in reminder["annotations"]["summary"]

        event_id = events(upgraded)[0]["id"]
        notify_admin.acknowledge(upgraded, event_id, clock.current, "sam", "on it")
        clock.current += timedelta(hours=8)
        deliver()

    assert len(hook.received) == 2


def test_an_event_still_unacknowledged_after_escalate_after_goes_to_the_escalation_channels(
    upgraded: Engine,
) -> None:
    firing_tank(upgraded)
    alert_id = 1000
    notify_admin.set_notify_rule(upgraded, alert_id, {"escalate_after_seconds": 1800.0}, NOW)
    clock = FixedClock()
    with Webhook() as keeper, Webhook() as boss:
        add_channel(upgraded, "keeper", keeper.url)
        add_channel(upgraded, "boss", boss.url, "escalation")
        deliver = deliverer(upgraded, clock)
        cycle(upgraded, clock)
        deliver()
        assert (len(keeper.received), len(boss.received)) == (1, 0)
        clock.current += timedelta(minutes=30)
        deliver()
        clock.current += timedelta(minutes=30)
        deliver()  # escalated once only

    assert (len(keeper.received), len(boss.received)) == (1, 1)
    [escalation] = boss.received[0]["alerts"]
    assert escalation["annotations"]["summary"].startswith("ESCALATED, unacknowledged for 30m")


@pytest.mark.postgres
def test_two_deliverers_at_once_plan_and_send_every_message_once(postgres_url: str) -> None:
    make_app_tables(postgres_url, Generation.CURRENT)
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    firing_tank(engine, alerts=5)
    clock = FixedClock()
    cycle(engine, clock)
    import threading

    with Webhook() as hook:
        for number in range(30):
            add_channel(engine, f"hook-{number}", f"{hook.url}/{number}")
        barrier = threading.Barrier(2)
        results: list[DeliveryStats] = []

        def deliver_alone() -> None:
            own = make_engine(postgres_url)
            deliver = Deliver(SqlOutbox(own, LOG), AppriseSender(), clock, QUICK, LOG, batch=1)
            barrier.wait()
            results.append(deliver())
            own.dispose()

        threads = [threading.Thread(target=deliver_alone) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    engine.dispose()

    assert sum(r.planned.messages for r in results) == 30
    assert sorted(hook.message_ids) == sorted({f"reef-alerts-{n}" for n in range(1, 31)})
    assert sum(r.sent for r in results) == 30
