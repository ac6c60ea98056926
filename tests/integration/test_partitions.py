"""Partition leases on a real PostgreSQL: fair shares, expiry, fencing, and the CLI around them."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reef_alerts.adapters import schema
from reef_alerts.adapters.coordination import (
    MissingLeaseTablesError,
    PartitionCountMismatchError,
    SqlLeaseKeeper,
    SqlPartitionCoordinator,
    unleased_partitions,
    worker_statuses,
)
from reef_alerts.adapters.database import make_engine
from reef_alerts.ports import CycleRecord

from .reef import seed_fleet
from .test_cli import invoke

pytestmark = pytest.mark.postgres


@pytest.fixture
def upgraded(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


def coordinator(
    engine: Engine, name: str, count: int = 4, ttl: float = 30
) -> SqlPartitionCoordinator:
    return SqlPartitionCoordinator(
        engine,
        worker_id=name,
        hostname="test",
        pid=1,
        started_at=datetime.now(UTC),
        partition_count=count,
        lease_ttl=timedelta(seconds=ttl),
        log=logging.getLogger("alert_worker"),
    )


def test_a_lone_worker_leases_every_partition(upgraded: Engine) -> None:
    shard = coordinator(upgraded, "a").claim(None)

    assert shard.owned == {0, 1, 2, 3}
    assert shard.leased_by == "a"
    assert unleased_partitions(upgraded) == {}


def test_a_second_worker_gets_a_fair_share_within_two_cycles(upgraded: Engine) -> None:
    a, b = coordinator(upgraded, "a"), coordinator(upgraded, "b")
    a.claim(None)

    first_b = b.claim(None)  # a still holds everything
    a_after = a.claim(None)  # a sees two workers and gives half back
    b_after = b.claim(None)

    assert first_b.owned == frozenset()
    assert a_after.owned == {0, 1}
    assert b_after.owned == {2, 3}


def test_an_expired_lease_is_taken_over_and_fences_its_old_holder(upgraded: Engine) -> None:
    a, b = coordinator(upgraded, "a", ttl=0.5), coordinator(upgraded, "b", ttl=0.5)
    held_by_a = a.claim(None)
    time.sleep(0.7)  # a stalls past its lease

    taken = b.claim(None)

    assert taken.owned == {0, 1, 2, 3}
    with upgraded.begin() as connection:
        assert not SqlLeaseKeeper(connection, timedelta(seconds=1)).renew(held_by_a)
        assert SqlLeaseKeeper(connection, timedelta(seconds=1)).renew(taken)


def test_a_released_worker_hands_its_partitions_over_at_once(upgraded: Engine) -> None:
    a, b = coordinator(upgraded, "a"), coordinator(upgraded, "b")
    a.claim(None)
    a.release()

    assert b.claim(None).owned == {0, 1, 2, 3}
    assert [w.worker_id for w in worker_statuses(upgraded)] == ["b"]


def test_status_reports_each_workers_partitions_and_last_cycle(upgraded: Engine) -> None:
    a = coordinator(upgraded, "a")
    a.claim(None)
    a.claim(CycleRecord(datetime(2026, 11, 29, 12, 0, tzinfo=UTC), 0.25, 1250, True))

    [status] = worker_statuses(upgraded)

    assert status.alive
    assert status.partitions == [0, 1, 2, 3]
    assert (status.last_cycle_seconds, status.last_cycle_alerts, status.last_cycle_ok) == (
        0.25,
        1250,
        True,
    )


class TestCommandLine:
    def test_refuses_partitions_on_sqlite_with_one_line(
        self, sqlite_url: str, tmp_path: Path
    ) -> None:
        code, _, err = invoke(["run", "--partitions", "4"], tmp_path, DATABASE_URL=sqlite_url)

        assert code == 2
        assert err.strip() == (
            "reef-alerts: --partitions 4 needs PostgreSQL: SQLite takes one writer at a time, "
            "so run a single worker on it"
        )

    def test_refuses_partitions_on_an_app_database_until_it_is_upgraded(
        self, app_postgres_url: str, tmp_path: Path
    ) -> None:
        code, _, err = invoke(
            ["run", "--once", "--partitions", "4", "--log-file", "-"],
            tmp_path,
            DATABASE_URL=app_postgres_url,
        )

        assert code == 1
        assert "--partitions needs the worker's lease tables: run `reef-alerts db upgrade`" in err

    def test_a_once_run_evaluates_its_leased_partitions_and_gives_them_back(
        self, upgraded: Engine, postgres_url: str, tmp_path: Path
    ) -> None:
        seed_fleet(upgraded, 40, now=datetime.now(UTC))

        code, out, err = invoke(
            ["run", "--once", "--partitions", "4", "--log-file", "-"],
            tmp_path,
            DATABASE_URL=postgres_url,
        )

        assert code == 0, err
        assert "Found 40 enabled alerts to evaluate in partitions 0, 1, 2, 3 of 4" in err
        assert '"triggered": 20' in out
        assert unleased_partitions(upgraded) == {4: [0, 1, 2, 3]}

    def test_refuses_more_partitions_than_the_bound_with_one_line(
        self, postgres_url: str, tmp_path: Path
    ) -> None:
        code, _, err = invoke(
            ["run", "--once", "--partitions", "1000000"], tmp_path, DATABASE_URL=postgres_url
        )

        assert code == 2
        assert "Invalid value for '--partitions'" in err
        assert "less than or equal to 1000" in err

    def test_a_worker_with_another_partition_count_refuses_to_start(
        self, upgraded: Engine, postgres_url: str, tmp_path: Path
    ) -> None:
        coordinator(upgraded, "host:42:cafe", count=4).claim(None)

        code, _, err = invoke(
            ["run", "--once", "--partitions", "2", "--log-file", "-"],
            tmp_path,
            DATABASE_URL=postgres_url,
        )

        assert code == 1
        assert (
            "worker host:42:cafe runs on this database with --partitions 4, this one with "
            "--partitions 2: every worker on a database must use the same number"
        ) in err
        assert [w.worker_id for w in worker_statuses(upgraded)] == ["host:42:cafe"]

    def test_status_lists_the_workers(
        self, upgraded: Engine, postgres_url: str, tmp_path: Path
    ) -> None:
        coordinator(upgraded, "host:42:cafe").claim(None)

        code, out, _ = invoke(["status"], tmp_path, DATABASE_URL=postgres_url)

        assert code == 0
        # The heartbeat's age is whole seconds: a slow machine reads it a second later.
        assert re.match(
            r"host:42:cafe  alive, heartbeat [01]s ago  partitions 0, 1, 2, 3 of 4", out
        )


def test_a_claim_with_another_count_than_a_live_workers_is_refused(upgraded: Engine) -> None:
    coordinator(upgraded, "a", count=4).claim(None)
    other = coordinator(upgraded, "b", count=8)

    with pytest.raises(PartitionCountMismatchError, match="worker a runs on this database"):
        other.claim(None)

    assert coordinator(upgraded, "c", count=4).claim(None).count == 4


def test_a_gone_workers_count_no_longer_binds_the_others(upgraded: Engine) -> None:
    first = coordinator(upgraded, "a", count=4)
    first.claim(None)
    first.release()

    assert coordinator(upgraded, "b", count=8).claim(None).owned == set(range(8))


def test_a_worker_started_before_db_upgrade_coordinates_once_it_has_run(
    app_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(app_postgres_url)
    lone = coordinator(engine, "early", count=1)

    with caplog.at_level(logging.WARNING, logger="alert_worker"):
        before = lone.claim(None)
    schema.upgrade(engine)
    after = lone.claim(None)

    assert (before.leased_by, before.whole) == (None, True)
    assert "does not coordinate with others" in caplog.text
    assert (after.leased_by, after.owned) == ("early", {0})
    engine.dispose()


def test_partitions_without_the_lease_tables_fail_each_cycle_until_db_upgrade(
    app_postgres_url: str,
) -> None:
    engine = make_engine(app_postgres_url)
    sharing = coordinator(engine, "early", count=4)

    with pytest.raises(MissingLeaseTablesError, match="run `reef-alerts db upgrade`"):
        sharing.claim(None)
    schema.upgrade(engine)

    assert sharing.claim(None).owned == {0, 1, 2, 3}
    engine.dispose()
