"""Fresh databases for integration tests: SQLite always, PostgreSQL when reachable.

PostgreSQL tests get a uniquely named database on the server at REEF_TEST_POSTGRES_URL, dropped
afterwards. When the server is unreachable they are skipped, unless REEF_REQUIRE_POSTGRES=1 makes
that a failure (CI does).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import Generation
from reef_alerts.entrypoints.logging_setup import reset_logging

from .reef import make_app_tables

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _server_url() -> URL:
    return make_url(os.environ.get("REEF_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    """What a command run in-process configured (handlers on the root logger) goes with it."""
    yield
    reset_logging()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the test server's maintenance database."""
    url = _server_url()
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        reason = (
            f"PostgreSQL unreachable at {url.render_as_string(hide_password=True)} "
            f"(set REEF_TEST_POSTGRES_URL): {' '.join(str(error.orig).split())}"
        )
        if os.environ.get("REEF_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}; REEF_REQUIRE_POSTGRES=1 makes this a failure")
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_server: Engine) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped after the test."""
    yield from _scratch_database(postgres_server)


@pytest.fixture
def second_postgres_url(postgres_server: Engine) -> Iterator[str]:
    """Another new, empty database, for tests that compare two."""
    yield from _scratch_database(postgres_server)


def _scratch_database(postgres_server: Engine) -> Iterator[str]:
    name = f"reef_test_{uuid.uuid4().hex[:12]}"
    with postgres_server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _server_url().set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'reef.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(params=list(Generation), ids=[g.value for g in Generation])
def generation(request: pytest.FixtureRequest) -> Generation:
    """Each test that takes it runs once on each generation of the web app's schema."""
    return Generation(request.param)


@pytest.fixture
def app_database_url(database_url: str, generation: Generation) -> str:
    """A database of either backend holding the web app's tables of either generation."""
    make_app_tables(database_url, generation)
    return database_url


@pytest.fixture
def engine(app_database_url: str) -> Iterator[Engine]:
    """An engine on a database of either backend and generation, as the web app made it."""
    engine = make_engine(app_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def app_postgres_url(postgres_url: str, generation: Generation) -> str:
    """A PostgreSQL database made by the web app's DDL of either generation, verbatim."""
    make_app_tables(postgres_url, generation)
    return postgres_url
