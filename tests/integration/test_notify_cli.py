"""The notification commands as a keeper meets them (issue 15), and a deliverer killed with
SIGKILL in the middle of a send."""

from __future__ import annotations

import base64
import logging
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.notify_tables import notifications
from reef_alerts.adapters.outbox import SqlOutbox
from reef_alerts.adapters.senders import AppriseSender
from reef_alerts.adapters.tables import Generation
from reef_alerts.application.delivery import Deliver
from reef_alerts.container import environment_channels
from reef_alerts.domain.notices import DeliveryPolicy

from .notify_servers import Webhook, smtp_server
from .reef import FixedClock, add_alert, add_device, add_reading, events, make_app_tables, tables_of
from .test_cli import _worker_process, invoke

SECRET = "Sup3rSecretT0ken"


@pytest.fixture
def reef(sqlite_url: str) -> tuple[Engine, str]:
    """An upgraded SQLite database of the current generation with one hot tank, and its URL."""
    make_app_tables(sqlite_url, Generation.CURRENT)
    engine = make_engine(sqlite_url)
    schema.upgrade(engine)
    add_device(engine, 1, "Display Tank")
    add_alert(engine, 1, 1)
    add_reading(engine, 1, 85.2, now=datetime.now(UTC))
    return engine, sqlite_url


def test_channels_are_added_listed_and_removed_with_their_secrets_never_shown(
    reef: tuple[Engine, str], tmp_path: Path
) -> None:
    _, url = reef
    secret_urls = [
        f"mailtos://reef:{SECRET}@smtp.example.com?to=me@example.com",
        f"tgram://123456789:{SECRET}/4242",
        f"json://hook:{SECRET}@127.0.0.1:9/alerts",
    ]
    outputs = []
    for number, channel in enumerate(secret_urls):
        code, out, err = invoke(
            ["channels", "add", channel, "--name", f"c{number}", "--tag", "critical"],
            tmp_path,
            DATABASE_URL=url,
        )
        assert code == 0, err
        outputs.append(out)
    code, listed, _ = invoke(
        ["channels", "list"],
        tmp_path,
        DATABASE_URL=url,
        REEF_ALERTS_NOTIFY_URLS="ntfy://ntfy.sh/reef",
    )

    assert code == 0
    assert "env-1  ntfy://ntfy.sh/reef  [environment]" in listed
    # A webhook's path may be its secret (a Home Assistant webhook id): masked too.
    assert "c2  json://hook:****@127.0.0.1:9/...  [table]  tags: critical" in listed
    assert "(Alertmanager webhook)" in listed
    assert all(SECRET not in out for out in [*outputs, listed])
    assert invoke(["channels", "remove", "c1"], tmp_path, DATABASE_URL=url)[0] == 0
    code, _, err = invoke(["channels", "remove", "c1"], tmp_path, DATABASE_URL=url)
    assert (code, err.strip()) == (
        1,
        "reef-alerts: there is no channel c1 in the channels table; `reef-alerts channels list`",
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["nope://x"], "apprise cannot read nope://... as a notification URL"),
        (["ntfy://ntfy.sh/a", "--name", "bad name"], "'bad name' is not a channel name"),
        ([], "give a URL, or --from-users"),
        (["ntfy://ntfy.sh/a", "--name", "env-1"], "names starting with env- are"),
        (["ntfy.sh/my-reef"], "a channel's URL begins with its service"),
        ([f"pover://{SECRET}"], "apprise cannot read pover://... as a notification URL"),
    ],
)
def test_a_channel_apprise_cannot_take_is_refused_in_one_line(
    reef: tuple[Engine, str], tmp_path: Path, args: list[str], said: str
) -> None:
    code, _, err = invoke(["channels", "add", *args], tmp_path, DATABASE_URL=reef[1])

    assert code != 0
    assert said in err
    assert len(err.strip().splitlines()) == 1
    assert SECRET not in err


def test_channels_test_sends_to_the_webhook_and_fails_in_one_line_without_the_secret(
    reef: tuple[Engine, str], tmp_path: Path
) -> None:
    url = reef[1]
    with Webhook() as hook:
        invoke(["channels", "add", hook.url, "--name", "hook"], tmp_path, DATABASE_URL=url)
        code, out, _ = invoke(["channels", "test", "hook"], tmp_path, DATABASE_URL=url)
        assert (code, out.strip()) == (0, "Sent a test message to hook.")
        assert hook.received[0]["status"] == "resolved"
        hook.mode = "error"
        bad = hook.url.replace("json://", f"json://user:{SECRET}@")
        invoke(["channels", "add", bad, "--name", "bad"], tmp_path, DATABASE_URL=url)
        code, _, err = invoke(["channels", "test", "bad"], tmp_path, DATABASE_URL=url)

    assert code == 1
    assert "answered HTTP 500" in err
    assert SECRET not in err


def test_a_webhook_password_with_special_characters_is_sent_as_written_quoted(
    reef: tuple[Engine, str], tmp_path: Path
) -> None:
    url = reef[1]
    with Webhook() as hook:
        quoted = hook.url.replace("json://", "json://bob:p%40ss%23w0rd@")
        invoke(["channels", "add", quoted, "--name", "hook"], tmp_path, DATABASE_URL=url)
        code, _, err = invoke(["channels", "test", "hook"], tmp_path, DATABASE_URL=url)

    assert code == 0, err
    assert hook.authorizations == ["Basic " + base64.b64encode(b"bob:p@ss#w0rd").decode()]


def test_from_users_adds_a_mail_channel_for_every_active_user_with_an_email(
    reef: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, url = reef
    users = tables_of(engine).metadata.tables["users"]
    with engine.begin() as connection:
        connection.execute(
            insert(users),
            [
                {
                    "username": "sam",
                    "email": "sam@example.org",
                    "hashed_password": "x",
                    "is_active": True,
                },
                {"username": "ana", "email": None, "hashed_password": "x", "is_active": True},
                {
                    "username": "old",
                    "email": "o@example.org",
                    "hashed_password": "x",
                    "is_active": False,
                },
            ],
        )
    with smtp_server() as (smtp, mailbox):
        base = smtp.split("&to=")[0]
        code, out, err = invoke(
            ["channels", "add", "--from-users"],
            tmp_path,
            DATABASE_URL=url,
            REEF_ALERTS_SMTP_URL=base,
        )
        assert code == 0, err
        assert out.startswith("Added channel user-sam: mailto://127.0.0.1")
        assert len(out.strip().splitlines()) == 1
        code, _, err = invoke(["channels", "test", "user-sam"], tmp_path, DATABASE_URL=url)
    assert code == 0, err
    assert mailbox.messages[0][1] == ["sam@example.org"]
    code, _, err = invoke(["channels", "add", "--from-users"], tmp_path, DATABASE_URL=url)
    assert (code, "--from-users needs REEF_ALERTS_SMTP_URL" in err) == (1, True)


def test_deliver_once_sends_the_outbox_and_notifications_lists_what_was_sent(
    reef: tuple[Engine, str], tmp_path: Path
) -> None:
    url = reef[1]
    assert invoke(["run", "--once"], tmp_path, DATABASE_URL=url)[0] == 0
    with Webhook() as hook:
        code, _, err = invoke(
            ["deliver", "--once"], tmp_path, DATABASE_URL=url, REEF_ALERTS_NOTIFY_URLS=hook.url
        )
    assert code == 0, err
    assert len(hook.received) == 1
    code, listed, _ = invoke(["notifications"], tmp_path, DATABASE_URL=url)
    assert code == 0
    assert "reef-alerts-1  env-1  sent" in listed
    assert "[reef] FIRING Display Tank temperature 85.2 F > 82 F" in listed
    assert invoke(["notifications", "--failed"], tmp_path, DATABASE_URL=url)[1].strip() == (
        "No failed messages."
    )


def test_ack_stops_reminders_and_alerts_shows_who_acknowledged(
    reef: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, url = reef
    assert invoke(["run", "--once"], tmp_path, DATABASE_URL=url)[0] == 0
    event_id = events(engine)[0]["id"]

    code, out, _ = invoke(
        ["ack", str(event_id), "--by", "sam", "--note", "heater swapped"],
        tmp_path,
        DATABASE_URL=url,
    )
    assert (code, out.strip()) == (
        0,
        f"Event {event_id} (alert 1) acknowledged by sam: no more reminders or escalation.",
    )
    code, shown, _ = invoke(["alerts"], tmp_path, DATABASE_URL=url)
    assert "acknowledged by sam" in shown
    code, out, _ = invoke(["ack", str(event_id)], tmp_path, DATABASE_URL=url)
    assert (code, out.strip().endswith("already; that stands.")) == (0, True)
    assert "acknowledged by sam" in out
    code, _, err = invoke(["ack", "999"], tmp_path, DATABASE_URL=url)
    assert (code, err.strip()) == (1, "reef-alerts: there is no event 999")


def test_rules_set_stores_an_alerts_notification_options_and_rules_show_lists_them(
    reef: tuple[Engine, str], tmp_path: Path
) -> None:
    url = reef[1]
    code, out, _ = invoke(
        ["rules", "set", "1", "--repeat-interval", "1h", "--escalate-after", "30m"],
        tmp_path,
        DATABASE_URL=url,
    )
    assert (code, out.strip()) == (
        0,
        "Alert 1 notifications: reminders every 1h, escalation after 30m",
    )
    shown = invoke(["rules", "show"], tmp_path, DATABASE_URL=url)[1]
    assert "Alert 1 notifications: reminders every 1h, escalation after 30m" in shown
    assert "No alert has options of its own." not in shown
    code, _, err = invoke(
        ["rules", "set", "1", "--repeat-interval", "10s"], tmp_path, DATABASE_URL=url
    )
    assert (code, err.strip()) == (2, "reef-alerts: --repeat-interval must be at least 1m, or off")


def test_silences_are_added_listed_and_ended(reef: tuple[Engine, str], tmp_path: Path) -> None:
    url = reef[1]
    code, out, _ = invoke(
        ["silence", "add", "--device", "1", "--for", "30m", "--reason", "water change"],
        tmp_path,
        DATABASE_URL=url,
    )
    assert code == 0
    assert out.startswith("Added silence 1: device 1 until ")
    assert "(water change)" in out
    listed = invoke(["silence", "list"], tmp_path, DATABASE_URL=url)[1]
    assert "silence 1: device 1" in listed
    assert invoke(["silence", "end", "1"], tmp_path, DATABASE_URL=url)[0] == 0
    assert invoke(["silence", "list"], tmp_path, DATABASE_URL=url)[1].strip() == (
        "No silence is in force."
    )
    for args, said in (
        (["--for", "30m"], "give one of --device ID, --alert ID and --all"),
        (["--all", "--for", "soon"], "--for: 'soon' is not a duration"),
        (["--device", "7", "--for", "1h"], "there is no device 7"),
    ):
        code, _, err = invoke(["silence", "add", *args], tmp_path, DATABASE_URL=url)
        assert code != 0
        assert said in err


def test_the_commands_on_a_database_without_the_notification_tables_say_to_upgrade(
    sqlite_url: str, tmp_path: Path
) -> None:
    make_app_tables(sqlite_url, Generation.LEGACY)

    code, _, err = invoke(["channels", "list"], tmp_path, DATABASE_URL=sqlite_url)

    assert (code, err.strip()) == (
        1,
        "reef-alerts: this database has no notification tables; `reef-alerts db upgrade` adds them",
    )


def test_a_deliverer_killed_mid_send_leaves_the_message_for_another_to_send(
    database_url: str, tmp_path: Path
) -> None:
    make_app_tables(database_url, Generation.CURRENT)
    engine = make_engine(database_url)
    schema.upgrade(engine)
    add_device(engine, 1, "Display Tank")
    add_alert(engine, 1, 1)
    add_reading(engine, 1, 85.2, now=datetime.now(UTC))
    assert invoke(["run", "--once"], tmp_path, DATABASE_URL=database_url)[0] == 0
    with Webhook() as hook:
        hook.mode, hook.hang_seconds = "hang", 60
        deliverer = _worker_process(
            tmp_path,
            "deliver",
            DATABASE_URL=database_url,
            REEF_ALERTS_NOTIFY_URLS=hook.url,
            REEF_ALERTS_NOTIFY_TIMEOUT="30",
        )
        try:
            deadline = time.monotonic() + 30
            while hook.attempts == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert hook.attempts == 1
            deliverer.send_signal(signal.SIGKILL)
            deliverer.wait(10)
        finally:
            deliverer.kill()
        hook.mode = "ok"
        log = logging.getLogger("reef_alerts.tests.notify_cli")
        policy = DeliveryPolicy()

        def another(clock: FixedClock) -> int:
            outbox = SqlOutbox(engine, log, environment_channels((hook.url,)))
            return Deliver(outbox, AppriseSender(), clock, policy, log)().sent

        now = datetime.now(UTC)
        assert another(FixedClock(now)) == 0  # still claimed by the dead deliverer
        assert another(FixedClock(now + timedelta(minutes=2))) == 1
    with engine.connect() as connection:
        [(state, attempts)] = connection.execute(
            select(notifications.c.state, notifications.c.attempts)
        ).all()
    engine.dispose()

    assert (state, attempts) == ("sent", 2)
    assert hook.message_ids == ["reef-alerts-1"]
