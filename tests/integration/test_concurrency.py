"""Several cycles at once on one PostgreSQL database make the events one cycle makes."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest

from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine

from .reef import cycle_in_process, event_outcome, run_cycle, seed_fleet

ALERTS = 1000
WORKERS = 4

pytestmark = pytest.mark.postgres


@pytest.fixture
def twin_urls(postgres_url: str, second_postgres_url: str) -> tuple[str, str]:
    """Two databases holding the same fleet of 1,000 alerts."""
    for url in (postgres_url, second_postgres_url):
        engine = make_engine(url)
        schema.upgrade(engine)
        seed_fleet(engine, ALERTS)
        engine.dispose()
    return postgres_url, second_postgres_url


def test_four_cycles_at_once_make_exactly_the_events_of_one_cycle(
    twin_urls: tuple[str, str],
) -> None:
    concurrent_url, single_url = twin_urls
    engine = make_engine(single_url)
    run_cycle(engine)
    engine.dispose()

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    workers = [
        context.Process(target=cycle_in_process, args=(concurrent_url, barrier, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    stats = [results.get(timeout=5) for _ in workers]
    # Each event is counted by the one worker whose write made it.
    assert sum(s["triggered"] for s in stats) == ALERTS // 2
    assert sum(s["resolved"] for s in stats) == len(range(2, ALERTS + 1, 20))

    concurrent, single = event_outcome(concurrent_url), event_outcome(single_url)
    assert concurrent == single
    open_per_alert = Counter(
        alert for alert, _, resolved, _ in concurrent.elements() if not resolved
    )
    assert max(open_per_alert.values()) == 1
    assert len(open_per_alert) == ALERTS // 2
