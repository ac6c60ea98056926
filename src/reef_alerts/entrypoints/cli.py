"""The `reef-alerts` command: run the worker, manage its schema, play the demo."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import attrs
import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from reef_alerts import __version__, wire
from reef_alerts.adapters import notify_admin, rule_store, schema
from reef_alerts.adapters.coordination import (
    MAX_PARTITIONS,
    PartitionCountMismatchError,
    unleased_partitions,
    worker_statuses,
)
from reef_alerts.adapters.history import SqlHistoryReader
from reef_alerts.adapters.outbox import has_outbox
from reef_alerts.adapters.reports import STATES, alert_report
from reef_alerts.adapters.schema import catalogue
from reef_alerts.adapters.tables import tables_for
from reef_alerts.application import RunCycle, WorkerStatistics
from reef_alerts.application.judging import effective_options
from reef_alerts.application.preview import (
    Changes,
    Preview,
    PreviewAlert,
    Previews,
    Span,
)
from reef_alerts.config import (
    DEFAULT_INTERVAL,
    DEFAULT_LIVE_EVERY,
    LIVE_EVERY_RANGE,
    SHORTEST_REPEAT,
    Settings,
)
from reef_alerts.container import Container, build_container
from reef_alerts.domain import (
    Alert,
    InvalidAlertError,
    Operator,
    format_duration,
    parse_duration,
)
from reef_alerts.entrypoints import charts, notify_cli
from reef_alerts.entrypoints.cli_support import LARGEST_ID
from reef_alerts.entrypoints.cli_support import engine_for as _engine
from reef_alerts.entrypoints.cli_support import fail as _fail
from reef_alerts.entrypoints.cli_support import logger as _logging
from reef_alerts.entrypoints.cli_support import on_database as _on_database
from reef_alerts.entrypoints.cli_support import settings_or_fail as _settings
from reef_alerts.entrypoints.delivering import DELIVER_EVERY, DeliveryLoop
from reef_alerts.entrypoints.demo import DEMO_END, DemoFileInUseError, format_events, run_demo
from reef_alerts.entrypoints.logging_setup import (
    WORKER_LOGGER,
    configure_logging,
    log_file_failure,
    quiet_apprise,
)
from reef_alerts.entrypoints.metrics import (
    MetricsServer,
    SystemdWatchdog,
    WorkerMetrics,
    notify_systemd,
)
from reef_alerts.entrypoints.startup import (
    StartupError,
    coordinator_for,
    release_leases,
    verify_database,
)
from reef_alerts.entrypoints.text import alert_lines, rule_lines, trend_notes
from reef_alerts.entrypoints.tuning import switch_interval
from reef_alerts.entrypoints.worker import (
    CycleObserver,
    Worker,
    describe_error,
    install_signal_handlers,
    log_startup,
)
from reef_alerts.ports import StoredRule, StoredTrend
from reef_alerts.redaction import printable, redact

T = TypeVar("T")

app = typer.Typer(
    name="reef-alerts",
    help="Alert worker for reef aquarium controllers: evaluates every enabled alert against its "
    "device's newest reading and records alert events in the shared database.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="Create or inspect the worker's tables and schema objects.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")
rules_app = typer.Typer(
    help="Show or set alerts' options: how long a condition must hold before its event opens "
    "(pending), how far back a value must come before it resolves (recovery margin), when "
    "a silent device opens a no-data event (no data after), and for trend alerts their window, "
    "forecast horizon, rate limit and smoothing.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(rules_app, name="rules")
app.add_typer(notify_cli.channels_app, name="channels")
app.add_typer(notify_cli.silence_app, name="silence")
app.command()(notify_cli.deliver)
app.command()(notify_cli.notifications)
app.command()(notify_cli.ack)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reef-alerts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Configuration comes from the environment: see README.md or `reef-alerts run --help`."""


MAX_INTERVAL = 86_400.0


def _positive_interval(value: float) -> float:
    if not 0 < value <= MAX_INTERVAL:  # NaN fails this too
        raise typer.BadParameter(
            f"must be greater than 0 and at most {MAX_INTERVAL:g}, got {value:g}"
        )
    return value


def _live_every(value: float) -> float:
    least, most = LIVE_EVERY_RANGE
    if not least <= value <= most:  # NaN fails this too
        raise typer.BadParameter(f"must be from {least:g} to {most:g} seconds, got {value:g}")
    return value


def _log_file(value: str) -> Path | None:
    return None if value == "-" else Path(value)


@app.command()
def run(
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            "-i",
            callback=_positive_interval,
            help="Seconds from the start of one evaluation cycle to the start of the next.",
        ),
    ] = DEFAULT_INTERVAL.total_seconds(),
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Run one evaluation cycle and roll it back: print the events it would have "
            "opened and resolved, and its statistics, and exit 0 (1 if it failed). It writes "
            "no event or status.",
        ),
    ] = False,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Run one evaluation cycle, which writes its events, print its statistics and "
            "exit 0 if it completed, 1 if it failed (for cron).",
        ),
    ] = False,
    config_check: Annotated[
        bool,
        typer.Option(
            "--config-check",
            help="Validate the settings, connect, tell the schema's generation, verify the tables "
            "and the role's privileges, report the worker's own objects and exit 0 or 1; "
            "evaluates nothing and creates no database file or table.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Log at DEBUG: every skip every cycle, with its reason; sleeps."
        ),
    ] = False,
    log_file: Annotated[
        str,
        typer.Option(
            "--log-file", metavar="PATH", help="Also log to this file; '-' logs to stderr only."
        ),
    ] = "alert_worker.log",
    partitions: Annotated[
        int,
        typer.Option(
            "--partitions",
            min=1,
            max=MAX_PARTITIONS,
            help="Split the alerts into this many partitions by alert id; each running worker "
            f"leases a fair share. PostgreSQL only; at most {MAX_PARTITIONS:,}. Every worker on "
            "a database must use the same number: a worker that finds another using a "
            "different one refuses to start.",
        ),
    ] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve Prometheus metrics on /metrics and the worker's health on /healthz "
            "(200 while the last successful cycle is younger than three intervals, 503 after) "
            "on this port.",
        ),
    ] = None,
    metrics_address: Annotated[
        str,
        typer.Option(
            "--metrics-address",
            help="The address --metrics-port listens on; 0.0.0.0 for every interface.",
        ),
    ] = "127.0.0.1",
    live: Annotated[
        bool,
        typer.Option(
            "--live/--no-live",
            help="Between cycles, look for new readings every --live-every seconds and judge "
            "at once the alerts of the devices that have some, and those whose pending "
            "duration, staleness or no-data limit has come; each interval's full cycle judges "
            "everything still. --no-live: full cycles only.",
        ),
    ] = True,
    live_every: Annotated[
        float,
        typer.Option(
            "--live-every",
            callback=_live_every,
            metavar="SECONDS",
            help="How often live passes look for new readings (one indexed read of history), "
            f"from {LIVE_EVERY_RANGE[0]:g} to {LIVE_EVERY_RANGE[1]:g}.",
        ),
    ] = DEFAULT_LIVE_EVERY,
) -> None:
    """Run the alert worker: evaluate every enabled alert each interval until SIGINT/SIGTERM.

    Between cycles, live passes judge at once the alerts of devices with new readings, and
    those whose pending duration, staleness or no-data limit has come (--no-live: off). Beside
    them, notifications are delivered every second on a thread of their own (see `reef-alerts
    channels --help`).

    Environment: DATABASE_URL (or POSTGRES_SERVER, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD,
    POSTGRES_PORT), ENV (development|production), REEF_ALERTS_SQLITE_PATH,
    REEF_ALERTS_MAX_READING_AGE, REEF_ALERTS_CLOCK_SKEW, REEF_ALERTS_TOLERANCE,
    REEF_ALERTS_STATS_EVERY, REEF_ALERTS_LOCK_TIMEOUT, REEF_ALERTS_STATEMENT_TIMEOUT,
    REEF_ALERTS_DEFAULT_*, REEF_ALERTS_NOTIFY_URLS, REEF_ALERTS_REPEAT_INTERVAL,
    REEF_ALERTS_ESCALATE_AFTER, REEF_ALERTS_NOTIFY_PER_HOUR, REEF_ALERTS_NOTIFY_GIVE_UP_AFTER,
    REEF_ALERTS_NOTIFY_TIMEOUT.

    SIGTERM or SIGINT stops it after the cycle in flight, cancelled if it has not ended within a
    second; a second signal ends it at once.
    """
    settings = _settings()
    if live_every != DEFAULT_LIVE_EVERY and not live:
        _fail("--live-every is for live passes, which --no-live turns off", code=2)
    if live_every != DEFAULT_LIVE_EVERY and (dry_run or once or config_check):
        _fail("--live-every is for a worker that keeps running, not one cycle or a check", code=2)
    if metrics_port is not None and (dry_run or once or config_check):
        _fail("--metrics-port is for a worker that keeps running, not one cycle or a check", code=2)
    if metrics_port is None and metrics_address != "127.0.0.1":
        _fail("--metrics-address needs --metrics-port", code=2)
    if not metrics_address.strip():
        _fail("--metrics-address: give an address, such as 127.0.0.1 or 0.0.0.0", code=2)
    if partitions > 1 and settings.backend != "postgresql":
        _fail(
            f"--partitions {partitions} needs PostgreSQL: SQLite takes one writer at a time, "
            "so run a single worker on it",
            code=2,
        )
    log = _logging(verbose, _log_file(log_file), settings)
    single = dry_run or once
    log_startup(log, settings, None if single or config_check else interval)
    if not (single or config_check):
        log.info(
            "Live passes: %s",
            f"every {live_every:g}s between cycles, for new readings"
            if live
            else "off (--no-live)",
        )
    if log_file_failure() is not None:  # said on stderr, in one line
        raise typer.Exit(1)
    container = build_container(settings, log)
    container.adapters.run.from_dict(  # type: ignore[attr-defined]
        {"interval": interval, "partitions": partitions}
    )
    engine: Engine = container.adapters.engine()

    if config_check:
        report = schema.check(engine)
        _print_report(report, settings)
        if settings.embedded and not report.can_run:
            typer.echo(
                "embedded database: `reef-alerts run` creates it and its tables on first start"
            )
        raise typer.Exit(0 if report.can_run else 1)

    # The port before the database: a port in use is refused before anything is created.
    observers: list[CycleObserver] = []
    server = (
        None
        if metrics_port is None
        else _serve_metrics(interval, metrics_address, metrics_port, observers, log, engine)
    )
    try:
        report = verify_database(engine, settings, log, required=single)
        # A dry run writes nothing, so it takes no partition: it looks at every alert.
        coordinator = (
            None if dry_run else coordinator_for(container, settings, report, partitions, log)
        )
    except StartupError:  # logged, on one line
        if server is not None:
            server.close()
        raise typer.Exit(1) from None
    if report.generation is not None:
        container.adapters.tables.override(tables_for(report.generation))
    statistics = WorkerStatistics(started_at=time.monotonic())
    stop = threading.Event()
    if not single and "WATCHDOG_USEC" in os.environ:
        observers.append(SystemdWatchdog(log))
        _check_watchdog(int(os.environ["WATCHDOG_USEC"]) / 1e6, interval, log)
    live = live and not single
    run_cycle: RunCycle = container.use_cases.run_cycle(
        coordinator=coordinator,
        dry_run=dry_run,
        watcher=container.adapters.watcher() if live else None,
    )
    worker = Worker(
        run_cycle,
        interval,
        log,
        statistics,
        stop,
        stats_every=settings.stats_every,
        secrets=settings.secrets,
        aligned=coordinator is not None,  # so that all workers cycle in the same rounds
        cancel=container.adapters.uow_factory().cancel,
        # Another worker splits the alerts otherwise: retrying would fail every cycle.
        fatal=(PartitionCountMismatchError,),
        observers=observers,
        live=run_cycle.live if live else None,
        live_every=live_every,
    )
    delivery = None if single else _delivery(container, settings, log, stop, observers)
    # SIGTERM and SIGINT let the cycle in flight finish, or cancel it if it does not within a
    # second, for --once too, so that the leases are handed back on the way out.
    restore = install_signal_handlers(worker.request_stop)
    try:
        with switch_interval():
            if single:
                _run_once(worker, dry_run=dry_run)
            else:
                notify_systemd("READY=1", log)
                _run_until_stopped(worker)
    finally:
        restore()
        if not single:
            notify_systemd("STOPPING=1", log)
        if delivery is not None:
            stop.set()
            delivery.join(timeout=2 * settings.delivery.timeout.total_seconds())
        if server is not None:
            server.close()
        if coordinator is not None:
            release_leases(coordinator, log, settings)
        engine.dispose()


def _delivery(
    container: Container,
    settings: Settings,
    log: logging.Logger,
    stop: threading.Event,
    observers: list[CycleObserver],
) -> DeliveryLoop:
    """Delivery on a thread of its own, from the start where the database has the outbox, or
    once `db upgrade` has made it."""
    engine = container.adapters.engine()
    metrics = [o for o in observers if isinstance(o, WorkerMetrics)]
    try:
        ready: bool | None = has_outbox(engine)
    except SQLAlchemyError:  # down now: the cycle says so, and delivery looks again
        ready = None
    loop = DeliveryLoop(
        container.use_cases.deliver(),
        log,
        stop,
        secrets=settings.secrets,
        observers=metrics,
        ready=None if ready else lambda: has_outbox(engine),
    )
    if ready:
        log.info(
            "Notifications: delivered every %gs (%s)", DELIVER_EVERY, settings.delivery.describe()
        )
    elif ready is False:
        log.info("Notifications: off until `reef-alerts db upgrade` adds the outbox")
    loop.start()
    return loop


def _serve_metrics(
    interval: float,
    address: str,
    port: int,
    observers: list[CycleObserver],
    log: logging.Logger,
    engine: Engine,
) -> MetricsServer:
    """/metrics and /healthz on `address:port`, the metrics added to `observers`; a port that
    cannot be had ends the command with one line."""
    metrics = WorkerMetrics(interval)
    shown = f"[{address}]" if ":" in address else address
    try:
        server = MetricsServer(metrics, address, port)
    except OSError as error:
        log.error("Cannot serve metrics on %s:%d: %s", shown, port, error.strerror or error)
        engine.dispose()
        raise typer.Exit(1) from None
    log.info("Serving metrics on http://%s:%d/metrics", shown, server.port)
    observers.append(metrics)
    return server


def _check_watchdog(seconds: float, interval: float, log: logging.Logger) -> None:
    """Say so where systemd's watchdog would kill a worker between two healthy cycles."""
    if seconds < 2 * interval:
        log.warning(
            "systemd's watchdog (WatchdogSec=%gs) is shorter than two intervals (%gs): a cycle "
            "that waits out the interval may get the worker killed; set WatchdogSec to three "
            "intervals",
            seconds,
            2 * interval,
        )


def _run_once(worker: Worker, *, dry_run: bool) -> None:
    try:
        stats = worker.run_once()
    except Exception:  # noqa: BLE001 - already logged, on one line, by the worker
        raise typer.Exit(1) from None
    if dry_run:
        for change in stats.changes:
            value = "" if change.value is None else f" at {change.value:g}"
            typer.echo(
                f"would {_DRY_RUN_VERBS[change.change]} alert {change.alert_id}{value}: "
                f"{printable(change.reason, 300)}"
            )
        typer.echo(f"dry run: nothing was written; {len(stats.changes)} changes rolled back")
    typer.echo(json.dumps(stats.as_dict()))


_DRY_RUN_VERBS: Final = {
    "trigger": "trigger",
    "resolve": "resolve",
    "no_data": "open a no-data event for",
    "no_data_resolved": "resolve the no-data event of",
    "forecast": "open a forecast event for",
    "forecast_resolved": "resolve the forecast event of",
    "rate": "open a rate event for",
    "rate_resolved": "resolve the rate event of",
}


def _run_until_stopped(worker: Worker) -> None:
    worker.run()
    if worker.fatal is not None:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the web app's tables where absent and add the worker's own objects (idempotent)."""
    settings = _settings()
    engine = _engine(settings)
    try:
        report = schema.upgrade(engine)
    except (schema.DuplicateOpenEventsError, schema.MissingPrivilegesError) as error:
        _fail(str(error))
    except Exception as error:  # noqa: BLE001 - one clear line instead of a traceback
        _fail(f"upgrade failed: {describe_error(error, settings.secrets)}")
    _print_report(report, settings)


@db_app.command("check")
def db_check() -> None:
    """Report connectivity, the four tables and the worker's objects; exit 0 if it can run."""
    settings = _settings()
    report = schema.check(_engine(settings))
    _print_report(report, settings)
    raise typer.Exit(0 if report.can_run else 1)


@app.command()
def status() -> None:
    """Show the workers sharing this database: their partitions and their last cycle."""
    settings = _settings()
    engine = _engine(settings)
    report = schema.check(engine)
    if not report.connected:
        _fail(redact("; ".join(report.problems), settings.secrets))
    if not report.coordinated:
        _fail("no worker registry here: workers coordinate after `reef-alerts db upgrade`")
    statuses = worker_statuses(engine)
    if not statuses:
        typer.echo("No workers are registered: none runs with partition leases on this database.")
    for worker in statuses:
        state = "alive" if worker.alive else "gone"
        held = ", ".join(map(str, worker.partitions)) or "none"
        line = (
            f"{worker.worker_id}  {state}, heartbeat {worker.heartbeat_age:.0f}s ago  "
            f"partitions {held} of {worker.partition_count}"
        )
        if worker.last_cycle_at is not None:
            outcome = "ok" if worker.last_cycle_ok else "FAILED"
            line += (
                f"  last cycle {worker.last_cycle_at:%Y-%m-%d %H:%M:%S} UTC "
                f"{outcome} in {worker.last_cycle_seconds:.2f}s ({worker.last_cycle_alerts} alerts)"
            )
        typer.echo(line)
    for count, free in unleased_partitions(engine).items():
        typer.echo(f"unleased partitions of {count}: {', '.join(map(str, free))}")
    engine.dispose()


@app.command()
def alerts(
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            "-s",
            metavar="STATE",
            help=f"Show only alerts in this state ({', '.join(STATES)}); repeatable.",
        ),
    ] = None,
) -> None:
    """List every alert with its options and its state as the worker last found it: ok,
    pending (since when its condition holds), firing, no_data (its device is silent), skipped
    (and why, since when), error (its rows cannot be read), disabled."""
    state = None if state is None else [s.strip().lower().replace("-", "_") for s in state]
    unknown = sorted(set(state or ()) - set(STATES))
    if unknown:
        _fail(f"unknown state {', '.join(unknown)}; the states are {', '.join(STATES)}", code=2)
    settings = _settings()
    engine = _engine(settings)
    report = schema.check(engine)
    if report.error is not None or report.missing_file is not None or report.generation is None:
        problem = "; ".join(report.problems) or "no shared tables here"
        _fail(redact(problem, settings.secrets))  # it only reads: no privilege to write needed
    found = alert_report(engine, policy=settings.policy())
    acknowledged = notify_admin.acknowledgements(engine)
    engine.dispose()
    if acknowledged:
        found = attrs.evolve(
            found,
            lines=[
                attrs.evolve(line, reason=_with_acks(line.reason, acknowledged[line.alert_id]))
                if line.alert_id in acknowledged
                else line
                for line in found.lines
            ],
        )
    for line in alert_lines(found, state, settings.default_options):
        typer.echo(line)
    if not found.recorded:
        typer.echo(
            "note: this database has no status table, so skipped alerts show as unknown; "
            "`reef-alerts db upgrade` adds it"
        )


def _notify_line(alert_id: int, stored: dict[str, float | None], settings: Settings) -> str:
    """An alert's notification options for a person: its own, or the worker's defaults."""
    policy = settings.delivery
    said = []
    for column, what, every, default in (
        ("repeat_interval_seconds", "reminders", "every", policy.repeat_interval),
        ("escalate_after_seconds", "escalation", "after", policy.escalate_after),
    ):
        seconds = stored.get(column)
        chosen = default if seconds is None else timedelta(seconds=seconds) or None
        shown = "never" if chosen is None else f"{every} {format_duration(chosen)}"
        said.append(f"{what} {shown}{' (default)' if seconds is None else ''}")
    return f"Alert {alert_id} notifications: {', '.join(said)}"


def _with_acks(reason: str, acks: list[notify_admin.Acknowledged]) -> str:
    said = [reason] if reason else []
    for ack in acks:
        who = f" by {ack.by}" if ack.by else ""
        note = f" ({ack.note})" if ack.note else ""
        said.append(f"event {ack.event_id} acknowledged{who} {ack.at:%Y-%m-%d %H:%M} UTC{note}")
    return printable("; ".join(said), 300)


_DEFAULT_WORD = "default"


@rules_app.command("show")
def rules_show(
    alert_id: Annotated[
        int | None,
        typer.Argument(
            help="The alert to show; without it, every alert with options of its own.",
            min=1,
            max=LARGEST_ID,
        ),
    ] = None,
) -> None:
    """Show alerts' options, and the defaults every other alert takes."""
    settings = _settings()
    found = _on_database(settings, lambda engine: rule_store.rules_of(engine, alert_id))
    defaults = settings.default_options
    notify = _on_database(settings, lambda engine: notify_admin.notify_rules_of(engine, alert_id))
    if found:
        for line in rule_lines(found, defaults):
            typer.echo(line)
    elif not notify:
        typer.echo("No alert has options of its own.")
    for shown_id, stored_notify in notify.items():
        typer.echo(_notify_line(shown_id, stored_notify, settings))
    typer.echo(
        f"Defaults (REEF_ALERTS_DEFAULT_* in this environment; the worker's own environment "
        f"decides): {defaults.describe()}"
    )
    typer.echo(f"Trend alerts' defaults: {defaults.trend.describe()}")


@rules_app.command("set")
def rules_set(
    alert_id: Annotated[
        int, typer.Argument(help="The alert whose options to set.", min=1, max=LARGEST_ID)
    ],
    pending: Annotated[
        str | None,
        typer.Option(
            help="How long the condition must hold, at every evaluation, before the event "
            "opens: 30s, 5m, 1h, 1h30m; 0 (or off) for at once; 'default' for the default.",
        ),
    ] = None,
    recovery_margin: Annotated[
        str | None,
        typer.Option(
            help="How far back past the threshold the value must come before the event "
            "resolves, in the metric's unit (0.3 for 82 > 81.7 with `temperature > 82`); "
            "'default' for the default.",
        ),
    ] = None,
    no_data_after: Annotated[
        str | None,
        typer.Option(
            help="How long the device may send no reading before a no-data event opens: 10m, "
            "1h; 'off' for never; 'default' for the default.",
        ),
    ] = None,
    trend_window: Annotated[
        str | None,
        typer.Option(
            help="Trend alerts: how far back the readings a trend is fitted to go, up to 7d "
            "(default 1h); 'default' for the default.",
        ),
    ] = None,
    min_samples: Annotated[
        str | None,
        typer.Option(
            help="Trend alerts: the fewest readings in the window that tell a trend, 2 to "
            "10,000, 3 at least with smoothing (default 5); 'default' for the default.",
        ),
    ] = None,
    forecast_horizon: Annotated[
        str | None,
        typer.Option(
            help="Trend alerts: how far ahead the forecast looks, up to 7d (default 2h); a "
            "forecast event opens when the value will meet the condition by then; 'default' for "
            "the default.",
        ),
    ] = None,
    max_rate_per_hour: Annotated[
        str | None,
        typer.Option(
            help="Trend alerts: a rate of change towards the condition beyond this, in the "
            "metric's unit per hour, opens a rate event; 'off' or 0 (the default) for none.",
        ),
    ] = None,
    repeat_interval: Annotated[
        str | None,
        typer.Option(
            help="Notifications: remind of an open, unacknowledged event this often: 1h, 4h; "
            "'off' for never; 'default' for the worker's (REEF_ALERTS_REPEAT_INTERVAL, 4h).",
        ),
    ] = None,
    escalate_after: Annotated[
        str | None,
        typer.Option(
            help="Notifications: send to the channels tagged escalation once an event is still "
            "unacknowledged this long after it opened: 30m, 2h; 'off' for never; 'default' for "
            "the worker's (REEF_ALERTS_ESCALATE_AFTER, off).",
        ),
    ] = None,
    smoothing: Annotated[
        str | None,
        typer.Option(
            help="Trend alerts: 'on' judges the threshold on the window's median instead of "
            "the newest reading, so one wild reading cannot open or resolve an event (the "
            "median trails a steady slide by half the window); 'off' (the default).",
        ),
    ] = None,
) -> None:
    """Set some of an alert's options; the others stay as they are."""
    given = {
        "pending_seconds": _seconds_option("--pending", pending),
        "recovery_margin": _margin_option(recovery_margin),
        "no_data_after_seconds": _seconds_option("--no-data-after", no_data_after),
    }
    given_trend = {
        "trend_window_seconds": _span_option("--trend-window", trend_window),
        "min_samples": _count_option("--min-samples", min_samples),
        "forecast_horizon_seconds": _span_option("--forecast-horizon", forecast_horizon),
        "max_rate_per_hour": _rate_option(max_rate_per_hour),
        "smoothing": _switch_option("--smoothing", smoothing),
    }
    given_notify = {
        "repeat_interval_seconds": _seconds_option("--repeat-interval", repeat_interval),
        "escalate_after_seconds": _seconds_option("--escalate-after", escalate_after),
    }
    changes = {name: value for name, value in given.items() if value is not _NOT_GIVEN}
    trend_changes = {name: v for name, v in given_trend.items() if v is not _NOT_GIVEN}
    notify_changes = {name: v for name, v in given_notify.items() if v is not _NOT_GIVEN}
    repeat = notify_changes.get("repeat_interval_seconds")
    if repeat and repeat < SHORTEST_REPEAT.total_seconds():
        _fail("--repeat-interval must be at least 1m, or off", code=2)
    if not (changes or trend_changes or notify_changes):
        _fail(
            "give at least one of --pending, --recovery-margin, --no-data-after, "
            "--trend-window, --min-samples, --forecast-horizon, --max-rate-per-hour, "
            "--smoothing, --repeat-interval and --escalate-after",
            code=2,
        )
    settings = _settings()
    if not (changes or trend_changes):
        _set_notify_options(settings, alert_id, notify_changes)
        return
    found = _on_database(settings, lambda engine: rule_store.rules_of(engine, alert_id))
    stored = found[0].rule or StoredRule(None, None, None)
    stored_trend = found[0].trend or StoredTrend(None, None, None, None, None)
    defaults = settings.default_options
    try:
        effective_options(
            stored._replace(**changes), defaults, stored_trend._replace(**trend_changes)
        )
    except InvalidAlertError as error:
        said = _as_options(str(error).removeprefix(_INVALID).removeprefix(_INVALID_TREND))
        try:
            effective_options(stored, defaults, stored_trend)
        except InvalidAlertError:
            _fail(
                f"alert {alert_id}'s stored options are invalid ({said}); set that option again "
                f"or `reef-alerts rules clear {alert_id}`"
            )
        _fail(said)
    _on_database(
        settings, lambda engine: rule_store.set_rule(engine, alert_id, changes, trend_changes)
    )
    shown = _on_database(settings, lambda engine: rule_store.rules_of(engine, alert_id))
    for line in rule_lines(shown, defaults):
        typer.echo(line)
    if found[0].operator.strip() == "!=" and changes.get("recovery_margin"):
        typer.echo(
            "note: a != condition clears only at the threshold itself, so a recovery margin "
            "does not apply to it (docs/adr/0017)"
        )
    if trend_changes and not found[0].trend_enabled:
        typer.echo(
            f"note: alert {alert_id}'s trend_enabled is off, so its trend options apply only "
            "once the web app turns it on"
        )
    if trend_changes or found[0].trend_enabled:
        now_stored = shown[0]
        options = effective_options(now_stored.rule, defaults, now_stored.trend).trend
        for note in trend_notes(options, now_stored.poll_interval):
            typer.echo(f"note: {note}")
    if notify_changes:  # once the rule options above were taken
        _set_notify_options(settings, alert_id, notify_changes)


def _set_notify_options(
    settings: Settings, alert_id: int, changes: dict[str, float | None]
) -> None:
    stored = _on_database(
        settings,
        lambda engine: notify_admin.set_notify_rule(engine, alert_id, changes, datetime.now(UTC)),
    )
    typer.echo(_notify_line(alert_id, stored, settings))


@rules_app.command("clear")
def rules_clear(
    alert_id: Annotated[
        int, typer.Argument(help="The alert whose options to remove.", min=1, max=LARGEST_ID)
    ],
) -> None:
    """Remove an alert's own options: it takes the defaults again."""
    settings = _settings()
    had = _on_database(settings, lambda engine: rule_store.clear_rule(engine, alert_id))
    had |= _on_database(settings, lambda engine: notify_admin.clear_notify_rule(engine, alert_id))
    defaults = settings.default_options.describe()
    if had:
        typer.echo(f"Alert {alert_id} takes the defaults again: {defaults}")
    else:
        typer.echo(f"Alert {alert_id} had no options of its own; it takes the defaults: {defaults}")


_NOT_GIVEN: Final = object()
_INVALID: Final = "its options in reef_alerts_rules are invalid: "
_INVALID_TREND: Final = "its options in reef_alerts_trend_rules are invalid: "
_OPTION_NAMES: Final = {
    "pending_seconds": "--pending",
    "no_data_after_seconds": "--no-data-after",
    "recovery_margin": "--recovery-margin",
    "no_data_after": "--no-data-after",
    "pending": "--pending",
    "trend_window_seconds": "--trend-window",
    "forecast_horizon_seconds": "--forecast-horizon",
    "max_rate_per_hour": "--max-rate-per-hour",
    "min_samples": "--min-samples",
    "smoothing": "--smoothing",
    "window": "--trend-window",
    "horizon": "--forecast-horizon",
}


def _as_options(message: str) -> str:
    """A validation message in the command's words: its options, not the fields."""
    for field, option in _OPTION_NAMES.items():
        message = message.replace(field, option)
    return message


def _given(raw: str | None, parse: Callable[[str], Any]) -> Any:
    """An option of `rules set` as given: _NOT_GIVEN when absent, None (the default) for
    `default`, else `parse` of its word, stripped and lower-cased."""
    if raw is None:
        return _NOT_GIVEN
    word = raw.strip().lower()
    return None if word == _DEFAULT_WORD else parse(word)


def _seconds_option(name: str, raw: str | None) -> Any:
    """A duration option as the rules table stores it: seconds; 0 for none (`0`, `off`)."""

    def seconds(word: str) -> float:
        if word == "off":
            return 0.0
        return _duration_option(name, word, zero=True).total_seconds()

    return _given(raw, seconds)


def _span_option(name: str, raw: str | None) -> Any:
    """A duration a trend cannot do without (its window, its horizon): seconds, more than 0."""

    def seconds(word: str) -> float:
        if word == "off":
            _fail(f"{name} cannot be off; 'default' takes the default")
        return _duration_option(name, word).total_seconds()

    return _given(raw, seconds)


def _count_option(name: str, raw: str | None) -> Any:
    """A whole-number option."""

    def count(word: str) -> int:
        if re.fullmatch(r"[+-]?[0-9]+", word) is None:
            _fail(f"{name}: {raw!r} is not a whole number")
        return int(word)

    return _given(raw, count)


def _rate_option(raw: str | None) -> Any:
    """--max-rate-per-hour: a number above 0; 0 (`off`) for no rate events."""

    def rate(word: str) -> float:
        if word == "off":
            return 0.0
        number = _number("--max-rate-per-hour", word, raw)
        if not math.isfinite(number) or number < 0:
            _fail(f"--max-rate-per-hour must be a finite number above 0 (or off), got {raw!r}")
        return number

    return _given(raw, rate)


def _switch_option(name: str, raw: str | None) -> Any:
    """An on/off option."""

    def switch(word: str) -> bool:
        if word not in ("on", "off"):
            _fail(f"{name}: {raw!r} is not on, off or default")
        return word == "on"

    return _given(raw, switch)


def _margin_option(raw: str | None) -> Any:
    return _given(raw, lambda word: _number("--recovery-margin", word, raw))


def _number(name: str, word: str, raw: str | None) -> float:
    """A number as a person writes one: not Python's `1_0`."""
    try:
        if "_" in word or not word.isascii():
            raise ValueError(word)
        return float(word)
    except ValueError:
        _fail(f"{name}: {raw!r} is not a number")


@app.command()
def preview(
    alert_id: Annotated[
        int | None,
        typer.Option(
            "--alert",
            help="A stored alert to replay (with any options below tried on it).",
            min=1,
            max=LARGEST_ID,
        ),
    ] = None,
    device_id: Annotated[
        int | None,
        typer.Option("--device", help="For a draft alert: its device.", min=1, max=LARGEST_ID),
    ] = None,
    metric: Annotated[str | None, typer.Option(help="For a draft alert: its metric.")] = None,
    operator: Annotated[
        str | None, typer.Option("--op", help="The operator: > < == >= <= != (quote it).")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="The threshold.")] = None,
    pending: Annotated[str | None, typer.Option(help="Pending time to try: 5m, 1h30m.")] = None,
    recovery_margin: Annotated[
        float | None, typer.Option(help="Recovery margin to try, in the metric's unit.")
    ] = None,
    no_data_after: Annotated[
        str | None, typer.Option(help="No-data limit to try: 10m; 'off' for none.")
    ] = None,
    since: Annotated[
        str, typer.Option(help="How far back the replay starts from --until: 24h, 7d.")
    ] = "24h",
    until: Annotated[
        str | None,
        typer.Option(help="Where it ends: an ISO date and time in UTC; default now."),
    ] = None,
    step: Annotated[
        str, typer.Option(help="Time between two evaluations, as the worker's --interval.")
    ] = format_duration(DEFAULT_INTERVAL),
    as_json: Annotated[bool, typer.Option("--json", help="Print the preview as JSON.")] = False,
) -> None:
    """Replay an alert, stored or drafted, over its device's history, as the live worker would
    have judged it: how often it would have fired, a chart, and the events. Writes nothing."""
    settings = _settings()
    drafted = (device_id, metric, operator, threshold)
    if alert_id is not None and (device_id is not None or metric is not None):
        _fail("--device and --metric describe a draft: give them or --alert, not both", code=2)
    if alert_id is None and any(part is None for part in drafted):
        _fail("give --alert ID, or a draft's --device, --metric, --op and --threshold", code=2)
    span, every = _duration_option("--since", since), _duration_option("--step", step)
    end = _instant_option(until)
    try:
        start = end - span
    except OverflowError:
        _fail("--since: the range would start before the year 1")
    off = no_data_after is not None and no_data_after.strip().lower() == "off"
    tried = Changes(
        threshold=threshold if alert_id is not None else None,
        operator=None if operator is None else _operator_option(operator),
        pending=None if pending is None else _duration_option("--pending", pending, zero=True),
        recovery_margin=recovery_margin,
        no_data_after=None
        if no_data_after is None or off
        else _duration_option("--no-data-after", no_data_after),
        no_data_off=off,
    )
    try:  # the options tried, checked as the domain checks them, before any database
        tried.applied(Alert(None, 1, "m", ">", 0.0), settings.default_options)
    except (ValueError, TypeError) as error:
        _fail(_as_options(str(error)))

    def replay(engine: Engine) -> Preview:
        with engine.connect() as connection:
            reader = SqlHistoryReader(connection, catalogue(connection))
            previews = PreviewAlert(reader, Previews(settings.policy(), settings.default_options))
            window = Span(start, end, every)
            if alert_id is not None:
                return previews.stored(alert_id, tried, window)
            assert device_id is not None
            assert metric is not None
            assert threshold is not None
            assert operator is not None
            draft = Alert(None, device_id, metric, _operator_option(operator), threshold)
            return previews.draft(draft, tried, window)

    shown = _on_database(settings, replay)
    if as_json:
        typer.echo(json.dumps(wire.preview_json(shown), indent=2))
        return
    typer.echo(charts.headline(shown))
    typer.echo(charts.chart(shown, color=sys.stdout.isatty()))
    for line in charts.event_lines(shown.timeline):
        typer.echo(line)
    for warning in shown.timeline.warnings:
        typer.echo(f"note: {warning}")


def _duration_option(name: str, raw: str, *, zero: bool = False) -> timedelta:
    try:
        duration = parse_duration(raw)
    except ValueError as error:
        _fail(f"{name}: {error}")
    if duration <= timedelta(0) and not zero:
        _fail(f"{name} must be longer than 0")
    return duration


def _instant_option(raw: str | None) -> datetime:
    if raw is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(raw)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        _fail(f"--until: {raw!r} is not an ISO date and time, such as 2026-07-14T13:12")


def _operator_option(raw: str) -> str:
    try:
        return str(Operator.parse(raw).value)
    except InvalidAlertError as error:
        _fail(f"--op: {error}")


@app.command()
def demo(
    path: Annotated[
        Path,
        typer.Option(
            help="The demo's own SQLite file, made afresh each run (never your database)."
        ),
    ] = Path("reef_alerts_demo.db"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
) -> None:
    """Play a simulated reef afternoon on a demo SQLite file and show the alert events."""
    configure_logging(verbose, None, ())
    path = path.resolve()
    typer.echo(f"Demo database: {path} (made afresh; your own database is not touched)")
    try:
        rows = run_demo(path, logging.getLogger(WORKER_LOGGER), typer.echo)
    except DemoFileInUseError as error:
        _fail(str(error))
    typer.echo("\nAlert events:")
    for line in format_events(rows):
        typer.echo(f"  {line}")
    typer.echo(f"\nInspect them yourself: sqlite3 {path} 'SELECT * FROM alert_events'")
    typer.echo(
        f"Replay alert 8 with options of your own: DATABASE_URL=sqlite:///{path} reef-alerts "
        f"preview --alert 8 --until {DEMO_END:%Y-%m-%dT%H:%M} --since 12m --pending 3m"
    )


def main() -> None:
    """The console script."""
    quiet_apprise()
    app()


def _print_report(report: schema.SchemaReport, settings: Settings) -> None:
    for line in report.lines():
        typer.echo(redact(line, settings.secrets))
