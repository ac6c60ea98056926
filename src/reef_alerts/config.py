"""Settings from the environment, validated once before anything runs.

Every `ConfigError` names the variable at fault; no password ever reaches a message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

import attrs
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    DEFAULT_TOLERANCE,
    MAX_AGE_LIMIT,
    MAX_RULE_DURATION,
    EvaluationPolicy,
    RuleOptions,
    format_duration,
    parse_duration,
)
from reef_alerts.domain.notices import DeliveryPolicy
from reef_alerts.redaction import mask_url, redact, spellings, url_secrets

Env = Literal["development", "production"]
ENVIRONMENTS: Final = ("development", "production")

DEFAULT_SQLITE_PATH: Final = "reef_alerts.db"
DEFAULT_INTERVAL: Final = timedelta(seconds=30)
"""How often the worker evaluates (`run --interval`), and a preview's step."""
LIVE_EVERY_RANGE: Final = (0.05, 60.0)
"""The shortest and longest `run --live-every`, in seconds."""
DEFAULT_LIVE_EVERY: Final = 0.25
"""Seconds between two live passes' looks for new readings (`run --live-every`, ADR 23): a
reading waits an eighth of a second for one on average."""
POSTGRES_REQUIRED: Final = ("POSTGRES_SERVER", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
DATABASE_VARIABLES: Final = ("DATABASE_URL", *POSTGRES_REQUIRED, "POSTGRES_PORT")

# backend -> the drivers we ship and test; "" is SQLAlchemy's default driver for the backend.
_DRIVERS: Final = {"postgresql": ("", "psycopg2"), "sqlite": ("", "pysqlite")}
_URL_HINT: Final = "postgresql://user:password@host/dbname or sqlite:///path/to/file.db"


class ConfigError(Exception):
    """A setting is missing or invalid. The message is one line and names `variable`."""

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        self.message = " ".join(message.split())
        super().__init__(self.message)


def _positive(_instance: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{attribute.name} must be greater than 0, got {value}")


@attrs.frozen
class Settings:
    """The worker's validated settings. Build them with `load_settings`."""

    database_url: str = attrs.field(repr=False)
    """The SQLAlchemy URL, password included: show `safe_url` instead."""
    env: Env = attrs.field(default="development", validator=attrs.validators.in_(ENVIRONMENTS))
    embedded: bool = False
    """True when no database was configured and the development SQLite file is in use."""
    sqlite_path: Path | None = None
    """The SQLite database file, when the database is one (embedded or via DATABASE_URL)."""
    max_reading_age: timedelta = attrs.field(default=timedelta(seconds=300), validator=_positive)
    clock_skew: timedelta = timedelta(seconds=30)
    tolerance: float = DEFAULT_TOLERANCE
    stats_every: int = 10
    """Log the worker's statistics every this many cycles."""
    lock_timeout: timedelta | None = None
    """How long a worker's statement may wait for a lock; None: derived from the interval."""
    statement_timeout: timedelta | None = None
    """How long a worker's statement may run; None: derived from the interval."""
    default_options: RuleOptions = DEFAULT_OPTIONS
    """The rule options of every alert that sets none of its own (ADR 15)."""
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    """Strings to redact from every output: the database password in each spelling it may take,
    and the passwords of the notification URLs below."""
    notify_urls: tuple[str, ...] = attrs.field(default=(), repr=False)
    """REEF_ALERTS_NOTIFY_URLS: channels beside the channels table's (issue 15)."""
    smtp_url: str | None = attrs.field(default=None, repr=False)
    """REEF_ALERTS_SMTP_URL: the mail server `channels add --from-users` sends through."""
    delivery: DeliveryPolicy = attrs.field(factory=DeliveryPolicy)
    """How notifications are retried, limited and repeated."""

    @property
    def backend(self) -> str:
        """ "postgresql" or "sqlite"."""
        return make_url(self.database_url).get_backend_name()

    @property
    def safe_url(self) -> str:
        """`database_url` with its password replaced by ***."""
        return redact(mask_url(self.database_url), self.secrets)

    def policy(self) -> EvaluationPolicy:
        """The evaluation tunables these settings choose."""
        return EvaluationPolicy(
            max_reading_age=self.max_reading_age,
            clock_skew=self.clock_skew,
            tolerance=self.tolerance,
        )

    def describe(self) -> dict[str, str]:
        """The settings as text that is safe to print (for `--config-check` and start-up logs)."""
        database = f"embedded SQLite at {self.sqlite_path}" if self.embedded else self.safe_url
        return {
            "env": self.env,
            "database": database,
            "max_reading_age": f"{self.max_reading_age.total_seconds():g}s",
            "clock_skew": f"{self.clock_skew.total_seconds():g}s",
            "tolerance": f"{self.tolerance:g}",
            "stats_every": f"{self.stats_every} cycles",
            "lock_timeout": _or_derived(self.lock_timeout),
            "statement_timeout": _or_derived(self.statement_timeout),
            "default_rule_options": self.default_options.describe(),
            "notifications": self.delivery.describe(),
        }


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the settings from `environ` (normally `os.environ`).

    Raises ConfigError for the first setting that is missing or invalid.
    """
    env = _environment(environ)
    database = _database(environ, env)
    notify_urls = _notify_urls(environ)
    smtp_url = _get(environ, "REEF_ALERTS_SMTP_URL")
    return Settings(
        database_url=database.url,
        env=env,
        embedded=database.embedded,
        sqlite_path=database.sqlite_path,
        max_reading_age=_seconds(
            environ, "REEF_ALERTS_MAX_READING_AGE", 300.0, positive=True, most=_A_DAY
        ),
        clock_skew=_seconds(environ, "REEF_ALERTS_CLOCK_SKEW", 30.0, positive=False, most=_A_DAY),
        tolerance=_number(
            environ,
            "REEF_ALERTS_TOLERANCE",
            DEFAULT_TOLERANCE,
            positive=False,
            most=MAX_TOLERANCE,
            why="it applies to every alert: values this close to a threshold count as equal to it",
        ),
        stats_every=_whole_number(environ, "REEF_ALERTS_STATS_EVERY", 10),
        lock_timeout=_optional_seconds(environ, "REEF_ALERTS_LOCK_TIMEOUT"),
        statement_timeout=_optional_seconds(environ, "REEF_ALERTS_STATEMENT_TIMEOUT"),
        default_options=_default_options(environ),
        secrets=(*database.secrets, *_url_secrets(notify_urls, smtp_url)),
        notify_urls=notify_urls,
        smtp_url=smtp_url,
        delivery=_delivery(environ),
    )


def _notify_urls(environ: Mapping[str, str]) -> tuple[str, ...]:
    """REEF_ALERTS_NOTIFY_URLS: apprise URLs separated by blanks (commas belong to URLs)."""
    raw = _get(environ, "REEF_ALERTS_NOTIFY_URLS")
    urls = tuple(raw.split()) if raw else ()
    for url in urls:
        if "://" not in url or _JOINED_URLS.search(raw or "") or url.endswith(","):
            why = "one has no scheme://" if "://" not in url else "two are joined by a comma"
            raise ConfigError(
                "REEF_ALERTS_NOTIFY_URLS",
                "REEF_ALERTS_NOTIFY_URLS must be notification URLs separated by blanks, such as "
                f"ntfy://ntfy.sh/my-reef mailtos://...; {why} ({len(url)} characters)",
            )
    return urls


_JOINED_URLS: Final = re.compile(r",\s*[A-Za-z][A-Za-z0-9+.-]*://")
"""A comma before a scheme: apprise's list syntax, which one channel a URL cannot be."""


SHORTEST_REPEAT: Final = timedelta(minutes=1)
"""The shortest repeat interval of reminders: shorter, a keeper's phone would ring on and on."""


def _repeat_interval(environ: Mapping[str, str]) -> timedelta | None:
    name = "REEF_ALERTS_REPEAT_INTERVAL"
    repeat = _duration(environ, name)
    if repeat is not None and repeat < SHORTEST_REPEAT:
        raise ConfigError(name, f"{name} must be at least 1m, or off; got {environ[name]!r}")
    return repeat


def _url_secrets(urls: Iterable[str], smtp: str | None) -> tuple[str, ...]:
    found: set[str] = set()
    for url in (*urls, *(() if smtp is None else (smtp,))):
        found |= url_secrets(url)
    return tuple(sorted(found))


def _delivery(environ: Mapping[str, str]) -> DeliveryPolicy:
    """How notifications are delivered: the defaults DeliveryPolicy states, unless set."""
    defaults = DeliveryPolicy()
    repeat = _get(environ, "REEF_ALERTS_REPEAT_INTERVAL")
    return DeliveryPolicy(
        give_up_after=_seconds(
            environ,
            "REEF_ALERTS_NOTIFY_GIVE_UP_AFTER",
            defaults.give_up_after.total_seconds(),
            positive=True,
            most=7 * _A_DAY,
        ),
        per_hour=_whole_number(environ, "REEF_ALERTS_NOTIFY_PER_HOUR", defaults.per_hour),
        repeat_interval=defaults.repeat_interval if repeat is None else _repeat_interval(environ),
        escalate_after=_duration(environ, "REEF_ALERTS_ESCALATE_AFTER"),
        timeout=_seconds(
            environ,
            "REEF_ALERTS_NOTIFY_TIMEOUT",
            defaults.timeout.total_seconds(),
            positive=True,
            most=300,
        ),
    )


def _default_options(environ: Mapping[str, str]) -> RuleOptions:
    """The options every alert has unless its own say otherwise; DEFAULT_OPTIONS, the
    specification's rule, when none is set."""
    options = RuleOptions(
        pending=_duration(environ, "REEF_ALERTS_DEFAULT_PENDING") or timedelta(0),
        recovery_margin=_number(
            environ, "REEF_ALERTS_DEFAULT_RECOVERY_MARGIN", 0.0, positive=False, most=math.inf
        ),
        no_data_after=_duration(environ, "REEF_ALERTS_DEFAULT_NO_DATA_AFTER") or None,
    )
    return DEFAULT_OPTIONS if options == DEFAULT_OPTIONS else options


def _duration(environ: Mapping[str, str], name: str) -> timedelta | None:
    """A duration such as `10m`; None when unset, `0` or `off`."""
    raw = _get(environ, name)
    if raw is None or raw.strip().lower() in ("off", "0"):
        return None
    try:
        duration = parse_duration(raw)
    except ValueError:
        raise ConfigError(
            name, f"{name} must be a duration such as 30s, 5m, 1h or 1h30m, or off; got {raw!r}"
        ) from None
    if duration > MAX_RULE_DURATION:
        most = format_duration(MAX_RULE_DURATION)
        raise ConfigError(name, f"{name} must be at most {most}, got {raw!r}")
    return duration or None


def _get(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value with blanks trimmed; None when unset or blank, as in an env file."""
    value = environ.get(name, "").strip()
    return value or None


def _any_set(environ: Mapping[str, str]) -> bool:
    return any(_get(environ, name) is not None for name in DATABASE_VARIABLES)


def _environment(environ: Mapping[str, str]) -> Env:
    value = _get(environ, "ENV") or "development"
    if value == "development":
        return "development"
    if value == "production":
        return "production"
    raise ConfigError("ENV", f"ENV must be development or production, got {value!r}")


@attrs.frozen
class _Database:
    url: str
    embedded: bool = False
    sqlite_path: Path | None = None
    secrets: tuple[str, ...] = ()


def _database(environ: Mapping[str, str], env: Env) -> _Database:
    url = _get(environ, "DATABASE_URL")
    if url is None and _any_set(environ):
        url = _postgres_url(environ)
    if url is None:
        if env == "production":
            raise ConfigError(
                "DATABASE_URL",
                "DATABASE_URL is not set: in production (ENV=production) set DATABASE_URL, "
                f"or {_and(POSTGRES_REQUIRED)} (and optionally POSTGRES_PORT)",
            )
        path = _sqlite_path(environ)
        return _Database(f"sqlite:///{path}", embedded=True, sqlite_path=path)
    return _check_url(url)


def _postgres_url(environ: Mapping[str, str]) -> str:
    missing = [name for name in POSTGRES_REQUIRED if _get(environ, name) is None]
    if missing:
        given = [name for name in DATABASE_VARIABLES if _get(environ, name) is not None]
        raise ConfigError(
            missing[0],
            f"{_and(missing)} {_is(missing)} not set, but {_and(given)} {_is(given)} set: "
            f"set all of {_and(POSTGRES_REQUIRED)}, or set DATABASE_URL instead",
        )
    server = environ["POSTGRES_SERVER"].strip()
    database = environ["POSTGRES_DB"].strip()
    # A password is taken as written: blanks around it may be part of it.
    user = quote(environ["POSTGRES_USER"].strip(), safe="")
    password = quote(environ["POSTGRES_PASSWORD"], safe="")
    port = _get(environ, "POSTGRES_PORT")
    if port is not None:
        if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
            raise ConfigError(
                "POSTGRES_PORT", f"POSTGRES_PORT must be a port number (1-65535), got {port!r}"
            )
        server = f"{server}:{int(port)}"
    return f"postgresql://{user}:{password}@{server}/{database}"


def _check_url(url: str) -> _Database:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Not echoed: the password cannot be told apart reliably in a URL that does not parse.
        raise ConfigError(
            "DATABASE_URL",
            f"DATABASE_URL is not a valid database URL (check the port, and URL-quote special "
            f"characters in the password); expected {_URL_HINT}",
        ) from None
    if parsed.host and "@" in parsed.host:
        # The password ran on past a raw `@`, and what followed it would be taken for the host:
        # a DNS error would then show part of the password.
        raise ConfigError(
            "DATABASE_URL",
            "DATABASE_URL has a raw '@' in its password or user name: percent-encode it as %40 "
            "(postgresql://user:p%40ssword@host/db), or set POSTGRES_PASSWORD, which is taken "
            "as written",
        )
    found = url_secrets(url)
    if parsed.password:
        found |= spellings(parsed.password)
    secrets = tuple(sorted(found))
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        raise ConfigError(
            "DATABASE_URL", "DATABASE_URL uses the scheme postgres://; write postgresql:// instead"
        )
    if backend not in _DRIVERS:
        raise ConfigError(
            "DATABASE_URL",
            f"DATABASE_URL names the unsupported database {parsed.drivername!r}; "
            f"expected {_URL_HINT}",
        )
    if driver not in _DRIVERS[backend]:
        accepted = " or ".join(
            f"{backend}+{name}://" if name else f"{backend}://" for name in _DRIVERS[backend]
        )
        raise ConfigError(
            "DATABASE_URL",
            f"DATABASE_URL names the unsupported driver {driver!r}; use {accepted}",
        )
    sqlite_path = None
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        sqlite_path = Path(parsed.database)
    return _Database(url, sqlite_path=sqlite_path, secrets=secrets)


def _sqlite_path(environ: Mapping[str, str]) -> Path:
    raw = _get(environ, "REEF_ALERTS_SQLITE_PATH") or f"./{DEFAULT_SQLITE_PATH}"
    path = Path(raw).expanduser().resolve()
    if "?" in str(path) or "#" in str(path):
        # In a sqlite:/// URL they would start a query string or fragment: another file.
        raise ConfigError(
            "REEF_ALERTS_SQLITE_PATH",
            f"REEF_ALERTS_SQLITE_PATH must not contain '?' or '#', got {path}",
        )
    if path.is_dir():
        raise ConfigError(
            "REEF_ALERTS_SQLITE_PATH",
            f"REEF_ALERTS_SQLITE_PATH must name a file, but {path} is a directory",
        )
    if not path.parent.is_dir():
        raise ConfigError(
            "REEF_ALERTS_SQLITE_PATH",
            f"REEF_ALERTS_SQLITE_PATH is in {path.parent}, which is not an existing directory",
        )
    return path


_A_DAY: Final = MAX_AGE_LIMIT.total_seconds()
MAX_TOLERANCE: Final = 1.0
"""A tolerance of 1 already makes `pH > 8.3` wait for 9.3; more has no use."""


def _number(
    environ: Mapping[str, str],
    name: str,
    default: float,
    *,
    positive: bool,
    most: float,
    why: str = "",
) -> float:
    raw = _get(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(name, f"{name} must be a finite number, got {raw!r}")
    if positive and value <= 0:
        raise ConfigError(name, f"{name} must be greater than 0, got {raw!r}")
    if value < 0:
        raise ConfigError(name, f"{name} must not be negative, got {raw!r}")
    if value > most:
        because = f" ({why})" if why else ""
        raise ConfigError(name, f"{name} must be at most {most:g}{because}, got {raw!r}")
    return value


def _seconds(
    environ: Mapping[str, str], name: str, default: float, *, positive: bool, most: float
) -> timedelta:
    return timedelta(seconds=_number(environ, name, default, positive=positive, most=most))


def _optional_seconds(environ: Mapping[str, str], name: str) -> timedelta | None:
    if _get(environ, name) is None:
        return None
    return _seconds(environ, name, 0.0, positive=True, most=_A_DAY)


def _or_derived(timeout: timedelta | None) -> str:
    return "from the interval" if timeout is None else f"{timeout.total_seconds():g}s"


def _whole_number(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(name, f"{name} must be greater than 0, got {raw!r}")
    return value


def _is(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _and(names: Iterable[str]) -> str:
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
