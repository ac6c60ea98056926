"""The `reef-alerts` command, through typer's CliRunner and as a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import Generation
from reef_alerts.entrypoints.cli import app

from .reef import add_alert, add_device, add_reading, events, make_app_tables

DATABASE_VARIABLES = (
    "DATABASE_URL",
    "POSTGRES_SERVER",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_PORT",
    "ENV",
    "REEF_ALERTS_SQLITE_PATH",
)
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - [\w.]+ - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - .+$"
)
PASSWORD = "Tr0ub4dor&3"
UNREACHABLE = f"postgresql://reef:{PASSWORD}@127.0.0.1:9/bellasreef"


def invoke(args: list[str], cwd: Path, **env: str) -> tuple[int, str, str]:
    """Run the CLI in-process with only `env` for configuration; (exit code, stdout, stderr)."""
    environment: dict[str, str | None] = dict.fromkeys(DATABASE_VARIABLES)
    environment.update(env)
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, args, env=environment)
    finally:
        os.chdir(previous)
    return result.exit_code, result.stdout, result.stderr


def a_hot_tank(engine: Engine) -> None:
    schema.upgrade(engine)
    add_device(engine, 1, "Main Tank")
    add_alert(engine, 1, 1, "temperature", ">", 82.0)
    now = datetime.now(UTC)
    add_reading(engine, 1, 85.2, now=now)


class TestConfigCheck:
    def test_passes_on_a_database_with_the_tables_and_names_their_generation(
        self, app_database_url: str, generation: Generation, tmp_path: Path
    ) -> None:
        engine = make_engine(app_database_url)
        schema.upgrade(engine)
        engine.dispose()

        code, out, _ = invoke(
            ["run", "--config-check", "--log-file", "-"], tmp_path, DATABASE_URL=app_database_url
        )

        assert code == 0, out
        assert f"schema generation: {generation.value} (" in out
        assert "result: ready" in out

    def test_fails_on_an_unreachable_database(self, tmp_path: Path) -> None:
        code, out, err = invoke(
            ["run", "--config-check", "--log-file", "-"], tmp_path, DATABASE_URL=UNREACHABLE
        )

        assert code == 1
        assert "database: unreachable" in out
        assert PASSWORD not in out + err

    @pytest.mark.postgres
    def test_fails_on_a_database_without_the_tables(
        self, postgres_url: str, tmp_path: Path
    ) -> None:
        code, out, _ = invoke(
            ["run", "--config-check", "--log-file", "-"], tmp_path, DATABASE_URL=postgres_url
        )

        assert code == 1
        assert "table alerts: MISSING" in out

    def test_fails_in_production_without_database_settings_in_one_line(
        self, tmp_path: Path
    ) -> None:
        code, out, err = invoke(["run", "--config-check"], tmp_path, ENV="production")

        assert code == 1
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith("reef-alerts: configuration error: DATABASE_URL is not set")


class TestSingleCycles:
    def test_a_dry_run_prints_what_it_would_write_and_writes_nothing(
        self, database_url: str, tmp_path: Path
    ) -> None:
        engine = make_engine(database_url)
        a_hot_tank(engine)

        code, out, _ = invoke(
            ["run", "--dry-run", "--log-file", "-"], tmp_path, DATABASE_URL=database_url
        )

        assert code == 0, out
        assert out.splitlines()[:2] == [
            "would trigger alert 1 at 85.2: Threshold exceeded: 85.2 > 82.0",
            "dry run: nothing was written; 1 changes rolled back",
        ]
        assert '"triggered": 1' in out
        assert events(engine) == []
        engine.dispose()

    def test_once_writes_the_triggered_events_and_prints_the_statistics(
        self, database_url: str, tmp_path: Path
    ) -> None:
        engine = make_engine(database_url)
        a_hot_tank(engine)

        code, out, _ = invoke(
            ["run", "--once", "--log-file", "-"], tmp_path, DATABASE_URL=database_url
        )

        assert code == 0, out
        assert '"triggered": 1' in out
        assert [(e["alert_id"], e["current_value"]) for e in events(engine)] == [(1, 85.2)]
        engine.dispose()

    def test_fails_with_exit_1_when_the_database_is_unreachable(self, tmp_path: Path) -> None:
        code, out, err = invoke(
            ["run", "--once", "--log-file", "-"], tmp_path, DATABASE_URL=UNREACHABLE
        )

        assert code == 1
        assert "Database verification failed" in err
        assert PASSWORD not in out + err

    @pytest.mark.postgres
    def test_evaluates_and_writes_on_a_database_made_by_the_web_apps_ddl(
        self, app_postgres_url: str, generation: Generation, tmp_path: Path
    ) -> None:
        engine = make_engine(app_postgres_url)
        add_device(engine, 1, "Main Tank")
        add_alert(engine, 1, 1, "temperature", ">", 82.0)
        add_reading(engine, 1, 85.2, now=datetime.now(UTC))

        code, _out, err = invoke(
            ["run", "--once", "--log-file", "-"], tmp_path, DATABASE_URL=app_postgres_url
        )

        assert code == 0, err
        assert f"Schema generation: {generation.value} (" in err
        assert "Alert 1 triggered: Threshold exceeded: 85.2 > 82.0" in err
        assert "Created alert event for alert 1, device Main Tank, value 85.2" in err
        assert "concurrent workers could duplicate events" in err
        [row] = events(engine)
        assert row["metadata_"]["device_name"] == "Main Tank"
        with engine.connect() as connection:  # the app's tables were left as they were
            assert schema.open_event_index(connection) is None
        engine.dispose()

    def test_creates_the_embedded_database_in_development(self, tmp_path: Path) -> None:
        code, _out, err = invoke(["run", "--once", "--log-file", "-"], tmp_path)

        assert code == 0, err
        assert "Using the embedded SQLite database" in err
        assert (tmp_path / "reef_alerts.db").exists()


class TestArguments:
    @pytest.mark.parametrize("interval", ["0", "-5", "soon", "nan", "inf", "86401"])
    def test_a_bad_interval_is_one_clear_line_and_exit_2(
        self, interval: str, tmp_path: Path
    ) -> None:
        code, _, err = invoke(["run", "--interval", interval], tmp_path)

        assert code == 2
        assert "Invalid value for '--interval' / '-i'" in err
        assert "Traceback" not in err

    def test_prints_the_version(self, tmp_path: Path) -> None:
        code, out, _ = invoke(["--version"], tmp_path)

        assert code == 0
        assert re.fullmatch(r"reef-alerts \d+\.\d+\.\d+\n", out)


def test_the_log_file_holds_the_specification_format(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    a_hot_tank(engine)

    code, _, err = invoke(["run", "--once"], tmp_path, DATABASE_URL=sqlite_url)

    assert code == 0, err
    lines = (tmp_path / "alert_worker.log").read_text().splitlines()
    assert lines
    assert all(LOG_LINE.match(line) for line in lines), lines
    messages = [line.split(" - ", 3)[3] for line in lines if " - alert_worker - " in line]
    assert messages[0].startswith("Starting Reef Alert Worker")
    for expected in (
        "Configuration validation passed",
        "Database connection and table verification successful",
        "Starting evaluation cycle 1",
        "Found 1 enabled alerts to evaluate",
        "Alert 1 triggered: Threshold exceeded: 85.2 > 82.0",
        "Created alert event for alert 1, device Main Tank, value 85.2",
    ):
        assert expected in messages
    assert any(
        re.fullmatch(r"Evaluation cycle completed in \d+\.\d\ds: \{.*\}", m) for m in messages
    )
    engine.dispose()


def test_no_password_reaches_any_output_or_log_of_a_failing_connection(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    for args in (["run", "--once", "--log-file", str(log)], ["db", "check"], ["db", "upgrade"]):
        code, out, err = invoke(args, tmp_path, DATABASE_URL=UNREACHABLE)
        assert code == 1
        assert PASSWORD not in out + err
    assert PASSWORD not in log.read_text()
    code, out, err = invoke(
        ["run", "--once", "--log-file", "-", "-v"],
        tmp_path,
        POSTGRES_SERVER="127.0.0.1",
        POSTGRES_PORT="9",
        POSTGRES_DB="bellasreef",
        POSTGRES_USER="reef",
        POSTGRES_PASSWORD=PASSWORD,
    )
    assert code == 1
    assert PASSWORD not in out + err


class TestDbCommands:
    def test_upgrade_then_check_is_ready_and_upgrade_is_idempotent(
        self, database_url: str, tmp_path: Path
    ) -> None:
        for _ in range(2):
            code, out, _ = invoke(["db", "upgrade"], tmp_path, DATABASE_URL=database_url)
            assert code == 0, out
        code, out, _ = invoke(["db", "check"], tmp_path, DATABASE_URL=database_url)

        assert code == 0, out
        assert "schema generation: current (" in out
        assert "worker object uq_alert_events_one_open_per_kind: present" in out
        assert "result: ready" in out

    def test_check_warns_while_history_lacks_the_index_the_worker_reads_through(
        self, sqlite_url: str, tmp_path: Path
    ) -> None:
        make_app_tables(sqlite_url, Generation.CURRENT)

        code, out, _ = invoke(["db", "check"], tmp_path, DATABASE_URL=sqlite_url)

        assert code == 0, out
        assert "WARNING: history has no index on (device_id, timestamp)" in out

    @pytest.mark.postgres
    def test_upgrade_refuses_duplicate_open_events_and_changes_nothing(
        self, app_postgres_url: str, tmp_path: Path
    ) -> None:
        engine = make_engine(app_postgres_url)
        add_device(engine, 1)
        add_alert(engine, 3, 1)
        with engine.begin() as connection:
            for _ in range(2):
                connection.execute(
                    text(
                        "INSERT INTO alert_events (alert_id, device_id, threshold_value, operator,"
                        " metric) VALUES (3, 1, 82, '>', 'temperature')"
                    )
                )

        code, _out, err = invoke(["db", "upgrade"], tmp_path, DATABASE_URL=app_postgres_url)

        assert code == 1
        assert "more than one unresolved event for alerts 3" in err
        assert "UPDATE alert_events SET is_resolved = true" in err
        report = schema.check(engine)
        assert not report.guarded
        assert report.revision is None
        engine.dispose()


def test_the_demo_shows_a_triggered_and_resolved_temperature_alert(tmp_path: Path) -> None:
    code, out, err = invoke(["demo", "--path", str(tmp_path / "demo.db")], tmp_path)

    assert code == 0, err
    assert "Alert 1 triggered: Threshold exceeded: 82.4 > 82.0" in err
    table = out[out.index("Alert events:") :]
    assert re.search(
        r"1\s+Display Tank Heater\s+temperature > 82\s+threshold\s+82.4\s+13:04\s+yes", table
    )


def test_the_demo_shows_what_rule_options_change_for_a_hovering_heater_and_a_silent_probe(
    tmp_path: Path,
) -> None:
    code, out, err = invoke(["demo", "--path", str(tmp_path / "demo.db")], tmp_path)

    assert code == 0, err
    assert "alert 8, by the specification's rule, opened 3 events" in out
    assert "with a 3-minute pending time and a 0.5 °F recovery margin, opened 1." in out
    assert "alert 10 opened a no-data event at 13:06 and resolved it at 13:10" in out
    table = out[out.index("Alert events:") :]
    assert re.search(r"10\s+Quarantine Tank pH\s+ph < 7.8\s+no-data\s+-\s+13:06\s+yes", table)
    assert "Alert 10: no data: device 'Quarantine Tank pH' has sent no reading for 4m" in err
    assert "reef-alerts preview --alert 8 --until 2026-07-14T13:12 --since 12m" in out


def test_the_demo_shows_a_sliding_ph_forecast_hours_before_its_threshold_event(
    tmp_path: Path,
) -> None:
    code, out, err = invoke(["demo", "--path", str(tmp_path / "demo.db")], tmp_path)

    assert code == 0, err
    assert "10:32 UTC  alert 11 opened a forecast event: Forecast: ph < 7.9 by 2026-07-14" in out
    assert "forecast it at 10:32, 2h before its threshold event opened at 12:32." in out
    table = out[out.index("Alert events:") :]
    assert re.search(r"11\s+Frag Tank pH\s+ph < 7.9\s+forecast\s+7.979\s+10:32\s+yes", table)
    assert re.search(r"11\s+Frag Tank pH\s+ph < 7.9\s+threshold\s+7.899\s+12:32\s+no", table)


def test_the_demo_will_not_overwrite_a_database_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "mine.db"
    engine = make_engine(f"sqlite:///{mine}")
    schema.upgrade(engine)
    engine.dispose()

    code, _, err = invoke(["demo", "--path", str(mine)], tmp_path)

    assert code == 1
    assert "is not a demo database" in err
    assert schema.check(make_engine(f"sqlite:///{mine}")).can_run


def _worker_process(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k not in DATABASE_VARIABLES}
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "reef_alerts", *args],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(path: Path, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not in {path} after {timeout}s")


def test_a_running_worker_stops_on_sigterm_with_exit_0_and_its_statistics(tmp_path: Path) -> None:
    worker = _worker_process(tmp_path, "run", "--interval", "60")
    try:
        _wait_for(tmp_path / "alert_worker.log", "Evaluation cycle completed")
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=10)
        waited = time.monotonic() - sent
    finally:
        worker.kill()

    assert worker.returncode == 0, output
    assert waited < 1.5  # idle: it must not sleep out the 60 s interval
    assert "Received SIGTERM" in output
    assert re.search(r"Worker statistics: \{'uptime': .*'cycles': 1,", output)


def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reef_alerts", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0
    assert done.stdout.startswith("reef-alerts ")


class TestEveryUserFailureIsOneLine:
    """What a person can get wrong ends in one line on stderr and a non-zero exit."""

    def test_the_demo_refuses_a_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        notes = tmp_path / "notes.txt"
        notes.write_text("feed the fish twice a day\n")

        code, _, err = invoke(["demo", "--path", str(notes)], tmp_path)

        assert code == 1
        assert err.count("\n") == 1
        assert f"reef-alerts: {notes} exists and is not a demo database" in err
        assert notes.read_text() == "feed the fish twice a day\n"

    def test_the_demo_makes_no_directory_for_its_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "nonexistent"

        code, _, err = invoke(["demo", "--path", str(missing / "x.db")], tmp_path)

        assert code == 1
        assert err.count("\n") == 1
        assert f"{missing} is not an existing directory" in err
        assert not missing.exists()

    def test_a_log_file_that_cannot_be_written_is_said_once(self, tmp_path: Path) -> None:
        code, _, err = invoke(
            ["run", "--once", "--log-file", "/dev/full"],
            tmp_path,
            REEF_ALERTS_SQLITE_PATH=str(tmp_path / "reef.db"),
        )

        assert code == 1
        assert "Traceback" not in err
        failures = [line for line in err.splitlines() if line.startswith("reef-alerts:")]
        assert failures == [
            "reef-alerts: cannot write the log file /dev/full: No space left on device; "
            "logging to stderr only"
        ]

    def test_config_check_on_a_new_sqlite_path_creates_nothing_and_fails(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "fresh.db"

        code, out, _ = invoke(
            ["run", "--config-check", "--log-file", "-"],
            tmp_path,
            REEF_ALERTS_SQLITE_PATH=str(path),
        )

        assert code == 1
        assert f"database: no SQLite file at {path}" in out
        assert "`reef-alerts run` creates it and its tables on first start" in out
        assert not path.exists()

    def test_db_check_on_a_missing_sqlite_file_creates_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "typo.db"

        code, _, _ = invoke(["db", "check"], tmp_path, DATABASE_URL=f"sqlite:///{path}")

        assert code == 1
        assert not path.exists()

    @pytest.mark.parametrize(
        ("variable", "value", "said"),
        [
            ("REEF_ALERTS_TOLERANCE", "1e308", "REEF_ALERTS_TOLERANCE must be at most 1"),
            ("DATABASE_URL", "postgresql://u:Head7@Tail9x@host/db", "percent-encode it as %40"),
        ],
    )
    def test_an_absurd_setting_is_refused_before_anything_runs(
        self, tmp_path: Path, variable: str, value: str, said: str
    ) -> None:
        code, out, err = invoke(["run", "--once", "--log-file", "-"], tmp_path, **{variable: value})

        assert code == 1
        assert out == ""
        assert err.count("\n") == 1
        assert said in err
        assert "Tail9x" not in err
