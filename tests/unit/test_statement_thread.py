"""The unit of work's statement thread: order, failure, and the interpreter setting it borrows."""

from __future__ import annotations

import sys
import threading

import pytest

from reef_alerts.adapters.background import StatementThread


def test_runs_work_in_the_order_it_was_submitted_on_one_other_thread() -> None:
    thread = StatementThread()
    seen: list[tuple[int, str]] = []
    try:
        futures = [
            thread.submit(lambda n: seen.append((n, threading.current_thread().name)), n)
            for n in range(20)
        ]
        for future in futures:
            future.result()
    finally:
        thread.close()

    assert [n for n, _ in seen] == list(range(20))
    assert len({name for _, name in seen}) == 1
    assert seen[0][1] != threading.current_thread().name


def test_after_a_failure_later_work_does_not_run_and_fails_with_the_same_error() -> None:
    thread = StatementThread()
    ran: list[str] = []
    cause = ValueError("insert failed")

    def fail() -> None:
        raise cause

    try:
        failed = thread.submit(fail)
        later = thread.submit(ran.append, "fetch")
        with pytest.raises(ValueError, match="insert failed"):
            failed.result()
        with pytest.raises(ValueError, match="insert failed") as raised:
            later.result()
    finally:
        thread.close()

    assert raised.value is cause
    assert ran == []


def test_shortens_the_switch_interval_while_open_and_restores_it_on_close() -> None:
    before = sys.getswitchinterval()
    thread = StatementThread()
    during = sys.getswitchinterval()
    thread.close()

    assert during == pytest.approx(min(before, StatementThread.SWITCH_INTERVAL))
    assert sys.getswitchinterval() == before


def test_overlapping_threads_restore_the_switch_interval_only_when_the_last_one_closes() -> None:
    before = sys.getswitchinterval()
    first, second = StatementThread(), StatementThread()
    first.close()
    while_second_runs = sys.getswitchinterval()
    second.close()
    second.close()  # closing twice gives nothing back twice

    assert while_second_runs == pytest.approx(min(before, StatementThread.SWITCH_INTERVAL))
    assert sys.getswitchinterval() == before
