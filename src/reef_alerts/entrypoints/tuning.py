"""Process-wide settings a worker process runs its cycles with.

Set only by entrypoints, never by the use cases or adapters: a web app that embeds the domain or
a use case keeps its process as it was.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

SWITCH_INTERVAL = 0.001
"""Seconds between the interpreter's offers of the GIL to another thread, while cycles run."""


@contextlib.contextmanager
def switch_interval(seconds: float = SWITCH_INTERVAL) -> Iterator[None]:
    """Offer the GIL to another thread every `seconds` (at most; never longer than it was).

    The statement thread waits on PostgreSQL while the cycle's thread judges; when the server
    answers, it gets on with the next statement only once offered the GIL, so the sooner the
    offer, the sooner the server has its next statement (ADR 8 has the figures).
    """
    saved = sys.getswitchinterval()
    sys.setswitchinterval(min(saved, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, for one cycle.

    A cycle builds a few objects per alert, all short-lived and acyclic, which the collector
    would pass over again and again for nothing (docs/performance.md has the figures).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
