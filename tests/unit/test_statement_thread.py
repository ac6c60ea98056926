"""The unit of work's statement thread: order, failure, closing, and the interpreter setting it
borrows."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import Connection

from reef_alerts.adapters.background import StatementThread
from reef_alerts.adapters.events import PostgresEventWriter
from reef_alerts.adapters.tables import CURRENT
from reef_alerts.domain import Resolution
from reef_alerts.ports import EventChanges


@pytest.mark.parametrize("lane", ["read", "write"])
def test_runs_work_of_one_kind_in_the_order_it_was_submitted_on_one_other_thread(
    lane: str,
) -> None:
    thread = StatementThread()
    submit = getattr(thread, lane)
    seen: list[tuple[int, str]] = []
    try:
        futures = [
            submit(lambda n: seen.append((n, threading.current_thread().name)), n)
            for n in range(20)
        ]
        for future in futures:
            future.result()
    finally:
        thread.close()

    assert [n for n, _ in seen] == list(range(20))
    assert len({name for _, name in seen}) == 1
    assert seen[0][1] != threading.current_thread().name


def _blocked(thread: StatementThread) -> threading.Event:
    """Occupy `thread` until the returned event is set, so that what comes next waits."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(timeout=10)

    thread.read(hold)
    started.wait(timeout=10)
    return release


@pytest.mark.parametrize("reads", [1, 5])
def test_every_waiting_read_goes_before_the_waiting_writes_and_each_kind_keeps_its_order(
    reads: int,
) -> None:
    """A write waits for every read queued when its turn would come, however many: the cycle is
    held up by a read it has not got, and by no write until its very end."""
    thread = StatementThread()
    ran: list[str] = []
    try:
        release = _blocked(thread)
        futures = [thread.write(ran.append, f"write {n}") for n in range(2)]
        futures += [thread.read(ran.append, f"read {n}") for n in range(reads)]
        release.set()
        for future in futures:
            future.result(timeout=10)
    finally:
        thread.close()

    assert ran == [f"read {n}" for n in range(reads)] + ["write 0", "write 1"]


def test_closing_waits_for_the_work_in_flight_and_drops_the_work_not_started() -> None:
    thread = StatementThread()
    ran: list[str] = []
    started, release = threading.Event(), threading.Event()

    def in_flight() -> None:
        started.set()
        release.wait(timeout=10)
        ran.append("in flight")

    thread.read(in_flight)
    started.wait(timeout=10)
    waiting = thread.write(ran.append, "waiting")
    threading.Timer(0.05, release.set).start()

    thread.close()

    assert waiting.cancelled()
    assert ran == ["in flight"]
    with pytest.raises(RuntimeError, match="closed"):
        thread.read(ran.append, "too late")


@pytest.mark.parametrize("seen_first", [False, True], ids=["queued behind it", "after it"])
def test_work_after_a_failure_does_not_run_and_fails_with_the_same_error(
    seen_first: bool,
) -> None:
    """A write submitted while the failing one waits its turn, or a read once its failure is
    known. (A read queued behind a waiting write would go first: reads go before writes.)"""
    thread = StatementThread()
    ran: list[str] = []
    cause = ValueError("insert failed")

    def fail() -> None:
        raise cause

    try:
        release = _blocked(thread)
        failing = thread.write(fail)
        if seen_first:
            release.set()
            with pytest.raises(ValueError, match="insert failed"):
                failing.result(timeout=10)
        submit = thread.read if seen_first else thread.write
        later = submit(ran.append, "later")
        release.set()
        with pytest.raises(ValueError, match="insert failed") as raised:
            later.result(timeout=10)
    finally:
        thread.close()

    assert raised.value is cause
    assert ran == []


def test_a_writer_whose_thread_is_closed_refuses_every_submission_rather_than_keep_one() -> None:
    thread = StatementThread()
    thread.close()
    writer = PostgresEventWriter(
        cast(Connection, object()), CURRENT, guarded=lambda: True, thread=thread
    )
    changes = EventChanges(resolved=[Resolution(1, 1, datetime(2024, 6, 1, tzinfo=UTC), 80.0)])

    for _ in range(2):  # the second would be kept and never written if the first left a trace
        with pytest.raises(RuntimeError, match="closed"):
            writer.submit(changes)


def test_a_statement_thread_leaves_the_process_switch_interval_alone() -> None:
    before = sys.getswitchinterval()
    thread = StatementThread()
    during = sys.getswitchinterval()
    thread.close()

    assert during == before == sys.getswitchinterval()
