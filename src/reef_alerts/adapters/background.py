"""One helper thread per unit of work, through which its statements reach the database, and
the pipeline that fetches a cursor's batches on it ahead of the caller.

While the helper waits on PostgreSQL (psycopg2 lets go of the GIL), the cycle goes on judging
alerts: the server's work on the snapshot and on the event writes overlaps the worker's (ADR 8).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class StatementThread:
    """Runs a connection's statements on one helper thread: reads before writes, each kind in the
    order it was submitted.

    A read waiting goes before any write waiting, because the cycle is held up by a read it has
    not got and by no write until its very end. So a read must not depend on a write submitted
    before it. The snapshot's do not: its FETCHes read a cursor, which sees the data as of its
    DECLARE, and the DECLARE comes before any write.

    Writes wait while any read is queued, and the event writer merges what was submitted
    meanwhile into few statements. With a server slower than the judging (a distant one), that
    is until the snapshot's last fetch, and it is still the faster order: a write let in
    between fetches costs a round trip in which no rows come (ADR 9 has the figures).

    Once one statement fails, the rest fail with its error rather than with PostgreSQL's "current
    transaction is aborted", so the cause is what the cycle reports.

    The helper gets on with the next statement when the server answers only once the cycle's
    thread offers it the GIL: the worker shortens the interpreter's switch interval for that
    (entrypoints/worker.py, ADR 8), a process-wide setting this class leaves alone.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._reads: deque[_Job[Any]] = deque()
        self._writes: deque[_Job[Any]] = deque()
        self._closing = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="reef-alerts-sql", daemon=True)
        self._thread.start()

    def read(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run `work(*args)` after the reads submitted before it, and before any write waiting."""
        return self._enqueue(self._reads, work, args)

    def write(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run `work(*args)` after every write submitted before it, once no read is waiting."""
        return self._enqueue(self._writes, work, args)

    def _enqueue(self, lane: deque[_Job[Any]], work: Callable[..., T], args: Any) -> Future[T]:
        job = _Job(work, args)
        with self._lock:
            if self._closing:
                raise RuntimeError("statement thread is closed")
            lane.append(job)
            self._lock.notify()
        return job.future

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not (self._reads or self._writes or self._closing):
                    self._lock.wait()
                if self._closing:
                    return
                job = self._next()
            if not job.future.set_running_or_notify_cancel():
                continue
            if self._failure is not None:
                job.future.set_exception(self._failure)
                continue
            try:
                job.future.set_result(job.work(*job.args))
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits on it
                self._failure = error
                job.future.set_exception(error)

    def _next(self) -> _Job[Any]:
        """The job to run next; called with the lock held and a job waiting."""
        return (self._reads or self._writes).popleft()

    def close(self) -> None:
        """Wait for the statement in flight, if any; drop those not started. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            dropped = [*self._reads, *self._writes]
            self._reads.clear()
            self._writes.clear()
            self._lock.notify()
        for job in dropped:
            job.future.cancel()
        self._thread.join()


class _Job(Generic[T]):
    __slots__ = ("args", "future", "work")

    def __init__(self, work: Callable[..., T], args: tuple[Any, ...]) -> None:
        self.work = work
        self.args = args
        self.future: Future[T] = Future()


def prefetched(
    fetch: Callable[[int], Sequence[T]],
    thread: StatementThread,
    *,
    first: int,
    largest: int,
    ahead: int,
) -> Iterator[Sequence[T]]:
    """The batches `fetch(size)` returns, up to the first short one, fetched on `thread` `ahead`
    fetches before the caller asks for them.

    Batches grow from `first` rows, doubling up to `largest`: the caller can start on the first
    after a few milliseconds, and each next one is fetched in about the time the one before
    takes to use (ADR 8).
    """
    sizes = _doubling(first, largest)
    queued = deque((size, thread.read(fetch, size)) for size in itertools.islice(sizes, ahead))
    while queued:
        size, fetched = queued.popleft()
        batch = fetched.result()
        if len(batch) < size:  # the last: what was fetched ahead of it is empty
            for _, empty in queued:
                empty.cancel()
            queued.clear()
        else:
            size = next(sizes)
            queued.append((size, thread.read(fetch, size)))
        yield batch


def _doubling(first: int, largest: int) -> Iterator[int]:
    size = first
    while True:
        yield size
        size = min(2 * size, largest)
