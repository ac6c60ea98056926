"""Settings from the environment: defaults, the database URL, validation errors, masking."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from reef_alerts.config import ConfigError, Settings, load_settings
from reef_alerts.domain import DEFAULT_OPTIONS, EvaluationPolicy, RuleOptions
from reef_alerts.redaction import mask_url, redact

PG = {
    "POSTGRES_SERVER": "db.reef.lan",
    "POSTGRES_DB": "bellasreef",
    "POSTGRES_USER": "reef",
    "POSTGRES_PASSWORD": "s3cr3t-Pa55",
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # the embedded default is relative to the working directory
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_error(environ: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value


def test_development_with_nothing_set_uses_embedded_sqlite_in_the_working_directory(
    workdir: Path,
) -> None:
    settings = load_settings({})

    assert settings.env == "development"
    assert settings.embedded
    assert settings.sqlite_path == workdir.resolve() / "reef_alerts.db"
    assert settings.database_url == f"sqlite:///{workdir.resolve() / 'reef_alerts.db'}"
    assert make_url(settings.database_url).database == str(settings.sqlite_path)
    assert settings.secrets == ()


def test_embedded_sqlite_path_comes_from_reef_alerts_sqlite_path(tmp_path: Path) -> None:
    settings = load_settings({"REEF_ALERTS_SQLITE_PATH": str(tmp_path / "reef.db")})

    assert settings.embedded
    assert settings.sqlite_path == tmp_path.resolve() / "reef.db"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'reef.db'}"


def test_relative_sqlite_path_is_made_absolute(workdir: Path) -> None:
    settings = load_settings({"REEF_ALERTS_SQLITE_PATH": "data.db"})

    assert settings.sqlite_path == workdir.resolve() / "data.db"
    assert settings.database_url.startswith("sqlite:////")


def test_defaults_for_the_tunables_match_the_domain_policy(workdir: Path) -> None:
    settings = load_settings({})

    assert settings.max_reading_age == timedelta(seconds=300)
    assert settings.clock_skew == timedelta(seconds=30)
    assert settings.tolerance == 0.001
    assert settings.stats_every == 10
    assert settings.policy() == EvaluationPolicy()


def test_tunables_are_read_from_reef_alerts_variables(workdir: Path) -> None:
    settings = load_settings(
        {
            "REEF_ALERTS_MAX_READING_AGE": "120",
            "REEF_ALERTS_CLOCK_SKEW": "0",
            "REEF_ALERTS_TOLERANCE": "0.05",
            "REEF_ALERTS_STATS_EVERY": "3",
        }
    )

    assert settings.stats_every == 3
    assert settings.policy() == EvaluationPolicy(
        max_reading_age=timedelta(seconds=120), clock_skew=timedelta(0), tolerance=0.05
    )


def test_database_url_wins_over_the_postgres_variables() -> None:
    url = "postgresql://web:hunter2@localhost/bellasreef"

    settings = load_settings({"DATABASE_URL": url, **PG})

    assert settings.database_url == url
    assert not settings.embedded
    assert settings.sqlite_path is None
    assert "hunter2" in settings.secrets


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://reef:pw@localhost/bellasreef",
        "postgresql+psycopg2://reef:pw@localhost:5433/bellasreef",
        "postgresql:///bellasreef",
        "sqlite:////var/lib/reef/alerts.db",
    ],
)
def test_postgresql_and_sqlite_urls_are_accepted(url: str) -> None:
    assert load_settings({"DATABASE_URL": url, "ENV": "production"}).database_url == url


def test_a_sqlite_database_url_reports_its_file_but_is_not_embedded() -> None:
    settings = load_settings({"DATABASE_URL": "sqlite:////srv/reef/alerts.db"})

    assert settings.sqlite_path == Path("/srv/reef/alerts.db")
    assert not settings.embedded


def test_postgres_variables_build_a_postgresql_url() -> None:
    settings = load_settings({**PG, "POSTGRES_PORT": "5433"})

    url = make_url(settings.database_url)
    assert url.drivername == "postgresql"
    assert (url.username, url.password) == ("reef", "s3cr3t-Pa55")
    assert (url.host, url.port, url.database) == ("db.reef.lan", 5433, "bellasreef")
    assert not settings.embedded


def test_postgres_user_and_password_are_url_quoted() -> None:
    environ = {**PG, "POSTGRES_USER": "reef@home", "POSTGRES_PASSWORD": "p@ss:w/rd?#%"}

    url = make_url(load_settings(environ).database_url)

    assert (url.username, url.password, url.host) == ("reef@home", "p@ss:w/rd?#%", "db.reef.lan")


@pytest.mark.parametrize("missing", sorted(PG))
def test_a_partial_set_of_postgres_variables_names_the_missing_one(missing: str) -> None:
    environ = {name: value for name, value in PG.items() if name != missing}

    error = config_error(environ)

    assert error.variable == missing
    assert missing in str(error)
    assert "s3cr3t" not in str(error)


def test_a_partial_set_names_every_missing_variable() -> None:
    error = config_error({"POSTGRES_SERVER": "db"})

    assert error.variable == "POSTGRES_DB"
    for name in ("POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        assert name in str(error)


def test_production_with_no_database_settings_fails_naming_database_url() -> None:
    error = config_error({"ENV": "production"})

    assert error.variable == "DATABASE_URL"
    assert "DATABASE_URL" in str(error)
    assert "production" in str(error)


def test_production_with_postgres_variables_is_fine() -> None:
    settings = load_settings({"ENV": "production", **PG})

    assert settings.env == "production"
    assert not settings.embedded


def test_blank_variables_count_as_unset(workdir: Path) -> None:
    settings = load_settings({"DATABASE_URL": "  ", "POSTGRES_SERVER": "", "ENV": ""})

    assert settings.embedded
    assert settings.env == "development"


@pytest.mark.parametrize("value", ["staging", "prod", "Production"])
def test_an_unknown_env_is_an_error_naming_env(value: str) -> None:
    error = config_error({"ENV": value})

    assert error.variable == "ENV"
    assert str(error).startswith("ENV ")
    assert repr(value) in str(error)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("REEF_ALERTS_MAX_READING_AGE", "five minutes", "must be a number"),
        ("REEF_ALERTS_MAX_READING_AGE", "0", "greater than 0"),
        ("REEF_ALERTS_MAX_READING_AGE", "-10", "greater than 0"),
        ("REEF_ALERTS_MAX_READING_AGE", "inf", "finite"),
        ("REEF_ALERTS_MAX_READING_AGE", "1e300", "must be at most 86400, got '1e300'"),
        ("REEF_ALERTS_MAX_READING_AGE", "86401", "must be at most 86400"),
        ("REEF_ALERTS_CLOCK_SKEW", "1e9", "must be at most 86400"),
        (
            "REEF_ALERTS_TOLERANCE",
            "1e308",
            "must be at most 1 (it applies to every alert: values this close to a threshold "
            "count as equal to it), got '1e308'",
        ),
        ("REEF_ALERTS_CLOCK_SKEW", "-1", "must not be negative"),
        ("REEF_ALERTS_CLOCK_SKEW", "soon", "must be a number"),
        ("REEF_ALERTS_TOLERANCE", "-0.1", "must not be negative"),
        ("REEF_ALERTS_TOLERANCE", "nan", "finite"),
        ("REEF_ALERTS_STATS_EVERY", "0", "greater than 0"),
        ("REEF_ALERTS_STATS_EVERY", "-2", "greater than 0"),
        ("REEF_ALERTS_STATS_EVERY", "2.5", "whole number"),
        ("POSTGRES_PORT", "fifty", "port number"),
        ("POSTGRES_PORT", "70000", "port number"),
    ],
)
def test_each_invalid_number_is_an_error_naming_its_variable(
    workdir: Path, variable: str, value: str, problem: str
) -> None:
    environ = {variable: value, **(PG if variable == "POSTGRES_PORT" else {})}

    error = config_error(environ)

    assert error.variable == variable
    assert str(error).startswith(variable)
    assert problem in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "not a valid database URL"),
        ("postgresql://reef:hunter2@db:port/reef", "not a valid database URL"),
        ("mysql://reef:hunter2@db/reef", "unsupported database"),
        ("postgresql+asyncpg://reef:hunter2@db/reef", "unsupported driver 'asyncpg'"),
        ("postgres://reef:hunter2@db/reef", "postgresql://"),
    ],
)
def test_a_bad_database_url_is_an_error_naming_database_url_without_its_password(
    url: str, problem: str
) -> None:
    error = config_error({"DATABASE_URL": url})

    assert error.variable == "DATABASE_URL"
    assert problem in str(error)
    assert "hunter2" not in str(error)


def test_a_raw_at_sign_in_the_password_is_refused_showing_no_part_of_it() -> None:
    """`u:Head7@Tail9x@host` once sent `Tail9x@host` to DNS, and its error to the log."""
    error = config_error({"DATABASE_URL": "postgresql://u:Head7@Tail9x@host/db"})

    assert error.variable == "DATABASE_URL"
    assert "percent-encode it as %40" in str(error)
    assert "Head7" not in str(error)
    assert "Tail9x" not in str(error)


def test_sqlite_path_in_a_missing_directory_is_an_error_naming_the_variable(
    tmp_path: Path,
) -> None:
    error = config_error({"REEF_ALERTS_SQLITE_PATH": str(tmp_path / "nowhere" / "reef.db")})

    assert error.variable == "REEF_ALERTS_SQLITE_PATH"
    assert "not an existing directory" in str(error)


def test_sqlite_path_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    error = config_error({"REEF_ALERTS_SQLITE_PATH": str(tmp_path)})

    assert error.variable == "REEF_ALERTS_SQLITE_PATH"


def test_settings_repr_and_safe_url_hide_the_password() -> None:
    settings = load_settings({**PG, "POSTGRES_PASSWORD": "p@ss word"})

    assert "p@ss" not in repr(settings)
    assert "p%40ss" not in repr(settings)
    assert settings.safe_url == "postgresql://reef:***@db.reef.lan/bellasreef"
    assert "p@ss" not in str(settings.describe())


def test_secrets_hold_every_spelling_of_the_password() -> None:
    settings = load_settings({**PG, "POSTGRES_PASSWORD": "p@ss word"})

    assert {"p@ss word", "p%40ss%20word", "p%40ss+word"} <= set(settings.secrets)


def test_describe_names_the_embedded_database(workdir: Path) -> None:
    described = load_settings({}).describe()

    assert described["database"] == f"embedded SQLite at {workdir.resolve() / 'reef_alerts.db'}"
    assert described["env"] == "development"


def test_settings_reject_a_non_positive_reading_age() -> None:
    with pytest.raises(ValueError, match="max_reading_age"):
        Settings(database_url="sqlite://", max_reading_age=timedelta(0))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://reef:hunter2@db/reef", "postgresql://reef:***@db/reef"),
        ("postgresql+psycopg2://reef:p%40ss@db:5432/r", "postgresql+psycopg2://reef:***@db:5432/r"),
        ("postgresql://reef:p@ss@db/reef", "postgresql://reef:***@db/reef"),
        ("postgresql://:hunter2@db/reef", "postgresql://:***@db/reef"),
        ("postgresql://reef@db/reef", "postgresql://reef@db/reef"),
        ("sqlite:////tmp/reef.db", "sqlite:////tmp/reef.db"),
    ],
)
def test_mask_url_replaces_only_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_redact_masks_secrets_and_passwords_in_any_url_in_a_driver_message() -> None:
    message = (
        '(psycopg2.OperationalError) connection to server at "db" (10.0.0.5), port 5432 failed: '
        'FATAL: password authentication failed for user "reef" '
        "dsn: host=db password=hunter2 user=reef; "
        "url: postgresql://reef:other-secret@db/reef, also s3cr3t appears raw"
    )

    redacted = redact(message, ["s3cr3t"])

    for secret in ("hunter2", "other-secret", "s3cr3t"):
        assert secret not in redacted
    assert "password=***" in redacted
    assert "postgresql://reef:***@db/reef" in redacted
    assert 'for user "reef"' in redacted


def test_redact_masks_the_longest_secret_whole() -> None:
    assert redact("token abcdef", ["abc", "abcdef"]) == "token ***"


def test_redact_ignores_empty_secrets() -> None:
    assert redact("nothing to hide", ["", "absent"]) == "nothing to hide"


def test_an_embedded_path_with_a_url_query_character_is_refused(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_settings({"REEF_ALERTS_SQLITE_PATH": str(tmp_path / "reef?mode=ro.db")})

    assert raised.value.variable == "REEF_ALERTS_SQLITE_PATH"
    assert "must not contain '?' or '#'" in str(raised.value)


def test_default_rule_options_are_the_specifications_rule_unless_set(workdir: Path) -> None:
    assert load_settings({}).default_options is DEFAULT_OPTIONS
    assert load_settings({"REEF_ALERTS_DEFAULT_NO_DATA_AFTER": "off"}).default_options is (
        DEFAULT_OPTIONS
    )


def test_default_rule_options_are_read_as_a_keeper_writes_them(workdir: Path) -> None:
    settings = load_settings(
        {
            "REEF_ALERTS_DEFAULT_PENDING": "5m",
            "REEF_ALERTS_DEFAULT_RECOVERY_MARGIN": "0.3",
            "REEF_ALERTS_DEFAULT_NO_DATA_AFTER": "1h30m",
        }
    )
    assert settings.default_options == RuleOptions(
        timedelta(minutes=5), 0.3, timedelta(hours=1, minutes=30)
    )
    assert settings.describe()["default_rule_options"] == (
        "pending 5m, recovery margin 0.3, no data after 1h30m"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REEF_ALERTS_DEFAULT_PENDING", "5 minutes", "must be a duration such as 30s"),
        ("REEF_ALERTS_DEFAULT_PENDING", "8d", "must be at most 7d"),
        ("REEF_ALERTS_DEFAULT_NO_DATA_AFTER", "-10m", "must be a duration such as 30s"),
        ("REEF_ALERTS_DEFAULT_RECOVERY_MARGIN", "-1", "must not be negative"),
        ("REEF_ALERTS_DEFAULT_RECOVERY_MARGIN", "nan", "must be a finite number"),
    ],
)
def test_an_invalid_default_rule_option_is_an_error_naming_its_variable(
    workdir: Path, variable: str, value: str, message: str
) -> None:
    error = config_error({variable: value})
    assert error.variable == variable
    assert message in str(error)


def test_notification_settings_are_read_and_their_passwords_redacted(workdir: Path) -> None:
    settings = load_settings(
        {
            "REEF_ALERTS_NOTIFY_URLS": " ntfy://ntfy.sh/reef \n mailtos://me:Hunter2x@smtp.x.org ",
            "REEF_ALERTS_REPEAT_INTERVAL": "2h",
            "REEF_ALERTS_ESCALATE_AFTER": "30m",
            "REEF_ALERTS_NOTIFY_PER_HOUR": "5",
        }
    )

    assert settings.notify_urls == ("ntfy://ntfy.sh/reef", "mailtos://me:Hunter2x@smtp.x.org")
    assert "Hunter2x" in settings.secrets
    assert (settings.delivery.repeat_interval, settings.delivery.escalate_after) == (
        timedelta(hours=2),
        timedelta(minutes=30),
    )
    assert settings.delivery.per_hour == 5
    assert load_settings({"REEF_ALERTS_REPEAT_INTERVAL": "off"}).delivery.repeat_interval is None


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        (
            {"REEF_ALERTS_NOTIFY_URLS": "ntfy://ntfy.sh/a,mailto://x@y.org"},
            "two are joined by a comma",
        ),
        (
            {"REEF_ALERTS_NOTIFY_URLS": "ntfy://ntfy.sh/a, mailto://x@y.org"},
            "two are joined by a comma",
        ),
        ({"REEF_ALERTS_NOTIFY_URLS": "ntfy.sh/reef"}, "one has no scheme://"),
        ({"REEF_ALERTS_REPEAT_INTERVAL": "10s"}, "must be at least 1m, or off"),
        ({"REEF_ALERTS_NOTIFY_PER_HOUR": "0"}, "must be greater than 0"),
    ],
)
def test_a_notification_setting_it_cannot_use_is_refused_in_one_line(
    workdir: Path, environ: dict[str, str], said: str
) -> None:
    assert said in str(config_error(environ))
