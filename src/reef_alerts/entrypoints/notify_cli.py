"""The notification commands (issue 15): `channels`, `deliver`, `notifications`, `ack` and
`silence`. See docs/notifications.md."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from reef_alerts.adapters import notify_admin
from reef_alerts.adapters.outbox import has_outbox
from reef_alerts.adapters.senders import WEBHOOK_SCHEMES, AppriseSender
from reef_alerts.container import build_container, environment_channels
from reef_alerts.domain import format_duration, parse_duration
from reef_alerts.domain.notices import Message, Silence, alertmanager
from reef_alerts.entrypoints.cli_support import (
    LARGEST_ID,
    fail,
    logger,
    on_database,
    settings_or_fail,
)
from reef_alerts.entrypoints.delivering import DELIVER_EVERY, DeliveryLoop
from reef_alerts.entrypoints.worker import install_signal_handlers
from reef_alerts.redaction import printable

channels_app = typer.Typer(
    help="Where notifications go: apprise URLs for email, ntfy, Telegram, Pushover, Discord, "
    "Slack, SMS gateways, JSON webhooks and more (docs/notifications.md).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
silence_app = typer.Typer(
    help="Maintenance: send nothing about a device's, an alert's or every alert's events for a "
    "while. Events are still recorded; one notification goes out when a silence ends on an "
    "event still open.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


@channels_app.command("add")
def channels_add(
    url: Annotated[
        str | None,
        typer.Argument(
            help="An apprise URL: mailtos://user:pass@smtp.example.com?to=me@example.com, "
            "ntfy://ntfy.sh/my-reef, tgram://BOT_TOKEN/CHAT_ID, json://host:port/path (an "
            "Alertmanager-shaped webhook) ...",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="The channel's name (default: the URL's scheme, e.g. ntfy)."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            help="A tag, repeatable; a channel tagged 'escalation' gets escalations only.",
        ),
    ] = None,
    from_users: Annotated[
        bool,
        typer.Option(
            "--from-users",
            help="A channel for every active user with an email (the web app's users table), "
            "through the mail server REEF_ALERTS_SMTP_URL (mailtos://user:pass@host?from=...).",
        ),
    ] = False,
) -> None:
    """Add a notification channel; its secrets are never shown."""
    settings = settings_or_fail()
    tags = list(dict.fromkeys(t.strip().lower() for t in tag or () if t.strip()))
    if from_users == (url is not None):
        fail("give a URL, or --from-users", code=2)
    if from_users:
        if name is not None:
            fail("--name is for one URL; --from-users names each channel user-USERNAME", code=2)
        smtp = settings.smtp_url
        if smtp is None:
            fail(
                "--from-users needs REEF_ALERTS_SMTP_URL, the mail server to send through, "
                "e.g. mailtos://user:password@smtp.example.com?from=reef@example.com"
            )
        found = on_database(settings, lambda engine: notify_admin.users_channels(engine, smtp))
        if not found:
            typer.echo("No active user has an email address: no channel added.")
            return
        for user_name, user_url in found:
            shown = on_database(settings, _adding(user_name, user_url, tags))
            typer.echo(f"Added channel {shown.name}: {shown.url}")
        return
    assert url is not None
    url = url.strip()
    if "://" not in url:
        fail(
            f"a channel's URL begins with its service, such as ntfy://, mailtos:// or json://; "
            f"{printable(url.split('/')[0].split('@')[-1], 40)!r}... has none"
        )
    if name is not None and not name.strip():
        fail("--name must not be empty", code=2)
    chosen = name or url.partition("://")[0].strip().lower()
    shown = on_database(
        settings, lambda engine: notify_admin.add_channel(engine, chosen, url, tags, _now())
    )
    tagged = f" (tags: {', '.join(shown.tags)})" if shown.tags else ""
    typer.echo(f"Added channel {shown.name}: {shown.url}{tagged}")
    typer.echo(f"Try it: reef-alerts channels test {shown.name}")


def _adding(name: str, url: str, tags: list[str]) -> Callable[[Engine], notify_admin.ShownChannel]:
    return lambda engine: notify_admin.add_channel(engine, name, url, tags, _now())


@channels_app.command("list")
def channels_list() -> None:
    """List the channels, secrets masked: the table's and REEF_ALERTS_NOTIFY_URLS'."""
    settings = settings_or_fail()
    environment = environment_channels(settings.notify_urls)
    found = on_database(settings, lambda e: notify_admin.list_channels(e, environment))
    if not found:
        typer.echo(
            "No channels: add one with `reef-alerts channels add URL`, or set "
            "REEF_ALERTS_NOTIFY_URLS"
        )
    for channel in found:
        tags = f"  tags: {', '.join(channel.tags)}" if channel.tags else ""
        kind = "  (Alertmanager webhook)" if channel.url.split("://")[0] in WEBHOOK_SCHEMES else ""
        typer.echo(f"{channel.name}  {channel.url}  [{channel.source}]{tags}{kind}")


@channels_app.command("test")
def channels_test(
    name: Annotated[str, typer.Argument(help="The channel to send a test message to.")],
) -> None:
    """Send a test message to a channel now, outside the outbox; exit 1 if it failed."""
    settings = settings_or_fail()
    environment = environment_channels(settings.notify_urls)
    channel = on_database(settings, lambda e: notify_admin.find_channel(e, name, environment))
    now = _now()
    ident = f"reef-alerts-test-{int(now.timestamp())}"
    text = f"If you can read this, channel {name} works."
    payload = alertmanager(ident, [], name, now)
    payload["status"] = "resolved"
    payload["alerts"] = [
        {
            "status": "resolved",
            "labels": {"alertname": "reef-alerts test"},
            "annotations": {"summary": text},
            "startsAt": now.isoformat(),
            "endsAt": now.isoformat(),
            "generatorURL": "",
            "fingerprint": "reef-alerts-test",
        }
    ]
    message = Message(
        ident,
        "[reef] Test message from reef-alerts",
        f"{text}\n\nMessage id: {ident}",
        payload,
    )
    error = AppriseSender().send(channel, message, settings.delivery.timeout)
    if error is not None:
        fail(f"channel {name}: {error}")
    typer.echo(f"Sent a test message to {name}.")


@channels_app.command("remove")
def channels_remove(
    name: Annotated[str, typer.Argument(help="The channel to remove.")],
) -> None:
    """Remove a channel of the table; its messages not yet sent are retried, in case it comes
    back under the same name, until they are given up on."""
    settings = settings_or_fail()
    on_database(settings, lambda engine: notify_admin.remove_channel(engine, name))
    typer.echo(f"Removed channel {name}.")


def deliver(
    once: Annotated[
        bool,
        typer.Option("--once", help="One round: plan, send what is due, and exit 0 (for cron)."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
    log_file: Annotated[
        str,
        typer.Option(
            "--log-file", metavar="PATH", help="Also log to this file; '-' logs to stderr only."
        ),
    ] = "-",
) -> None:
    """Deliver notifications from the outbox until SIGINT/SIGTERM: what `reef-alerts run` does
    beside evaluation, alone. Several deliverers may run at once: none sends a message another
    has claimed."""
    settings = settings_or_fail()
    log = logger(verbose, None if log_file == "-" else Path(log_file), settings)
    container = build_container(settings, log)
    engine: Engine = container.adapters.delivery_engine()
    try:
        if not on_database(settings, has_outbox):
            fail("this database has no notification tables; `reef-alerts db upgrade` adds them")
        stop = threading.Event()
        loop = DeliveryLoop(container.use_cases.deliver(), log, stop, secrets=settings.secrets)
        if once:
            stats = loop.once()
            if stats is None:
                raise typer.Exit(1)
            typer.echo(
                f"planned {stats.planned.messages} messages; sent {stats.sent}, retrying "
                f"{stats.retried}, failed {stats.failed}"
            )
            return
        log.info("Delivering notifications every %gs", DELIVER_EVERY)
        restore = install_signal_handlers(lambda _why: stop.set())
        try:
            loop.run()
        finally:
            restore()
    finally:
        engine.dispose()


def notifications(
    failed: Annotated[
        bool, typer.Option("--failed", help="Only the messages delivery gave up on.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="The newest this many.")] = 50,
) -> None:
    """List the newest messages: sent, pending (and when they are tried next) or failed, with
    the last error."""
    settings = settings_or_fail()
    found = on_database(
        settings, lambda engine: notify_admin.list_messages(engine, failed=failed, limit=limit)
    )
    waiting = on_database(settings, notify_admin.outbox_waiting)
    if not found:
        typer.echo("No failed messages." if failed else "No messages yet.")
    for message in found:
        match message.state:
            case "sent":
                state = f"sent {_when(message.sent_at)}"
            case "pending":
                state = f"pending, next try {_when(message.next_attempt_at)}"
            case _:
                state = "FAILED"
        line = (
            f"{message.id}  {message.channel}  {state}  attempts {message.attempts}  "
            f"{message.events} change{'' if message.events == 1 else 's'}  "
            f"{printable(message.title or '(not yet composed)', 120)}"
        )
        typer.echo(line)
        if message.last_error and message.state != "sent":
            typer.echo(f"    last error: {printable(message.last_error, 300)}")
    if waiting:
        typer.echo(f"{waiting} event changes wait in the outbox (held, or not yet planned).")


def ack(
    event_id: Annotated[
        int, typer.Argument(help="The open event to acknowledge.", min=1, max=LARGEST_ID)
    ],
    by: Annotated[str | None, typer.Option(help="Who acknowledges it.")] = None,
    note: Annotated[str | None, typer.Option(help="Why, or what is being done.")] = None,
) -> None:
    """Acknowledge an open event: its reminders and escalation stop."""
    settings = settings_or_fail()
    done = on_database(
        settings, lambda engine: notify_admin.acknowledge(engine, event_id, _now(), by, note)
    )
    who = f" by {printable(done.by, 100)}" if done.by else ""
    if done.earlier:
        typer.echo(
            f"Event {done.event_id} (alert {done.alert_id}) was acknowledged{who} at "
            f"{_when(done.at)} already; that stands."
        )
        return
    typer.echo(
        f"Event {done.event_id} (alert {done.alert_id}) acknowledged{who}: no more reminders "
        "or escalation."
    )


@silence_app.command("add")
def silence_add(
    length: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1h30m (at most 7d).")],
    device: Annotated[
        int | None, typer.Option("--device", min=1, max=LARGEST_ID, help="A device's alerts.")
    ] = None,
    alert: Annotated[
        int | None, typer.Option("--alert", min=1, max=LARGEST_ID, help="One alert.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every alert.")] = False,
    reason: Annotated[str | None, typer.Option(help='Why, e.g. "water change".')] = None,
) -> None:
    """Silence a device's, an alert's or every alert's notifications for a while."""
    if sum((device is not None, alert is not None, every)) != 1:
        fail("give one of --device ID, --alert ID and --all", code=2)
    try:
        duration = parse_duration(length)
    except ValueError as error:
        fail(f"--for: {error}", code=2)
    if not duration or duration.days > 7:
        fail("--for must be more than 0s and at most 7d", code=2)
    settings = settings_or_fail()
    silence = on_database(
        settings,
        lambda engine: notify_admin.add_silence(
            engine, _now(), duration, device_id=device, alert_id=alert, reason=reason
        ),
    )
    typer.echo(
        f"Added {_described(silence)}; end it early with `reef-alerts silence end {silence.id}`"
    )


@silence_app.command("list")
def silence_list() -> None:
    """List the silences in force."""
    settings = settings_or_fail()
    found = on_database(settings, lambda engine: notify_admin.list_silences(engine, _now()))
    if not found:
        typer.echo("No silence is in force.")
    for silence in found:
        left = format_duration(silence.ends_at - _now())
        typer.echo(f"{_described(silence)}, {left} left")


@silence_app.command("end")
def silence_end(
    silence_id: Annotated[int, typer.Argument(help="The silence to end now.", min=1)],
) -> None:
    """End a silence now: an event it held back that is still open is told once."""
    settings = settings_or_fail()
    on_database(settings, lambda engine: notify_admin.end_silence(engine, silence_id, _now()))
    typer.echo(f"Ended silence {silence_id}.")


def _described(silence: Silence) -> str:
    return printable(silence.describe(), 300)
