"""What a worker decides before its first cycle, on a real database (SQLite here: the decisions
are the same on PostgreSQL, which the CLI tests run)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.config import load_settings
from reef_alerts.container import build_container
from reef_alerts.entrypoints.startup import StartupError, coordinator_for, verify_database

UNREACHABLE = "postgresql://reef@127.0.0.1:9/reef"


def test_creates_the_tables_of_an_empty_embedded_database_and_goes_on(tmp_path: Path) -> None:
    settings = load_settings({"REEF_ALERTS_SQLITE_PATH": str(tmp_path / "reef.db")})
    engine = make_engine(settings.database_url)

    report = verify_database(engine, settings, logging.getLogger(), required=True)

    assert settings.embedded
    assert report.can_run
    assert schema.check(engine).can_run
    engine.dispose()


def test_refuses_a_database_of_its_own_choosing_without_the_tables(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'theirs.db'}"
    create_engine(url).connect().close()  # exists, and is empty
    settings = load_settings({"DATABASE_URL": url})
    engine = make_engine(url)

    with caplog.at_level(logging.ERROR), pytest.raises(StartupError, match="MISSING"):
        verify_database(engine, settings, logging.getLogger(), required=False)

    assert "Database verification failed" in caplog.text
    assert not schema.check(engine).tables["alerts"]  # nothing was created behind its back
    engine.dispose()


@pytest.mark.parametrize("required", [False, True], ids=["service", "single cycle"])
def test_an_unreachable_database_stops_only_a_single_cycle(required: bool) -> None:
    settings = load_settings({"DATABASE_URL": UNREACHABLE})
    engine = make_engine(UNREACHABLE)

    if required:
        with pytest.raises(StartupError, match="unreachable"):
            verify_database(engine, settings, logging.getLogger(), required=True)
    else:
        report = verify_database(engine, settings, logging.getLogger(), required=False)
        assert not report.connected
    engine.dispose()


def test_a_sqlite_worker_leases_nothing(tmp_path: Path) -> None:
    settings = load_settings({"REEF_ALERTS_SQLITE_PATH": str(tmp_path / "reef.db")})
    container = build_container(settings, logging.getLogger())
    engine = container.adapters.engine()
    report = verify_database(engine, settings, logging.getLogger(), required=True)

    assert coordinator_for(container, settings, report, 1, logging.getLogger()) is None
    engine.dispose()
