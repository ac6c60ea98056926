"""The process-wide settings only the worker's entrypoint makes: the switch interval and the
collector, each given back as it was found."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator

import pytest

from reef_alerts.application import RunCycle
from reef_alerts.domain import EvaluationPolicy
from reef_alerts.entrypoints.tuning import SWITCH_INTERVAL, collector_paused, switch_interval
from tests.fakes import FakeClock, InMemoryStore


@pytest.fixture(autouse=True)
def _collector_as_found() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()


def test_the_switch_interval_is_shortened_inside_and_restored_after() -> None:
    before = sys.getswitchinterval()

    with switch_interval():
        during = sys.getswitchinterval()

    assert during == pytest.approx(min(before, SWITCH_INTERVAL))
    assert sys.getswitchinterval() == before


def test_the_collector_is_paused_inside_and_enabled_after_only_if_it_was() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()

    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_a_cycle_run_by_an_embedding_app_leaves_its_process_as_it_was() -> None:
    gc.enable()
    switch = sys.getswitchinterval()
    seen: list[tuple[bool, float]] = []

    class WatchingClock(FakeClock):
        def now(self):  # type: ignore[no-untyped-def]
            seen.append((gc.isenabled(), sys.getswitchinterval()))
            return super().now()

    RunCycle(
        InMemoryStore().unit_of_work, WatchingClock(), EvaluationPolicy(), logging.getLogger()
    )()

    assert seen
    assert set(seen) == {(True, switch)}
