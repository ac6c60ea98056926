"""One helper thread per unit of work, through which its statements reach the database in order.

While the helper waits on PostgreSQL (psycopg2 lets go of the GIL), the cycle goes on judging
alerts: the server's work on the snapshot and on the event writes overlaps the worker's.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class StatementThread:
    """Runs a connection's statements on one helper thread, in the order they were submitted.

    Once one fails, the rest fail with its error rather than with PostgreSQL's "current
    transaction is aborted", so the cause is what the cycle reports.

    While it runs, the interpreter offers the GIL to another thread every millisecond instead of
    every five: when the server answers, the helper gets on with the next statement at once
    instead of waiting out the cycle's judging. (At 100,000 alerts this took a tenth off the
    cycle that writes; the judging is not slowed measurably.)
    """

    SWITCH_INTERVAL = 0.001

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reef-alerts-sql")
        self._failure: BaseException | None = None
        self._closed = False
        _switch_interval.borrow(self.SWITCH_INTERVAL)

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run `work(*args)` after everything submitted before it."""
        return self._pool.submit(self._run, work, *args)

    def _run(self, work: Callable[..., T], *args: Any) -> T:
        if self._failure is not None:
            raise self._failure
        try:
            return work(*args)
        except BaseException as error:
            self._failure = error
            raise

    def close(self) -> None:
        """Wait for the statement in flight, if any; drop those not started. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            _switch_interval.give_back()


class _SwitchInterval:
    """The interpreter's switch interval, lowered while any statement thread is open.

    It is process-wide and units of work may overlap, so the first borrower saves it and the
    last one to give it back restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._borrowers = 0
        self._saved = 0.0

    def borrow(self, seconds: float) -> None:
        with self._lock:
            if self._borrowers == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, seconds))
            self._borrowers += 1

    def give_back(self) -> None:
        with self._lock:
            self._borrowers -= 1
            if self._borrowers == 0:
                sys.setswitchinterval(self._saved)


_switch_interval = _SwitchInterval()
