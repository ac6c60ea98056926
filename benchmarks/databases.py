"""Scratch databases for a benchmark run: create, clone ("copies of the same data") and drop.

PostgreSQL databases are made on a server (`reef_bench_<pid>_<n>`) and cloned with
`CREATE DATABASE ... TEMPLATE`; SQLite databases are files in a temporary directory, cloned by
copying the file. Everything a `Scratch` made is dropped when it closes.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class Scratch(Protocol):
    """Makes throwaway databases and drops them all on close."""

    backend: str

    def create(self) -> str:
        """A new empty database; its URL."""
        ...

    def clone(self, url: str) -> str:
        """A new database holding a copy of `url`'s data; its URL. Nothing may be connected."""
        ...

    def drop(self, url: str) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Closing:
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class PostgresScratch(_Closing):
    """Databases on the PostgreSQL server that `server_url` connects to."""

    backend = "postgresql"

    def __init__(self, server_url: str = DEFAULT_SERVER_URL) -> None:
        self._server_url = make_url(server_url)
        self._admin = sa.create_engine(
            server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )
        self._names = (f"reef_bench_{os.getpid()}_{n}" for n in itertools.count(1))
        self._made: list[str] = []

    def create(self) -> str:
        return self._make("")

    def clone(self, url: str) -> str:
        copy = self._make(f" TEMPLATE {_quote(_database(url))}")
        # PostgreSQL 15 copies a database through its WAL and shared buffers. Flush them now, so
        # that the copy's own writes are not going on while an implementation is being timed.
        with self._admin.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        return copy

    def drop(self, url: str) -> None:
        name = _database(url)
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        if name in self._made:
            self._made.remove(name)

    def close(self) -> None:
        """Drop everything made here, waiting out a server restart for up to a minute."""
        deadline = time.monotonic() + 60
        while self._made:
            try:
                self.drop(self._url(self._made[-1]))
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    print(f"could not drop databases {self._made}", file=sys.stderr)
                    break
                time.sleep(2)
        self._admin.dispose()

    def _make(self, clause: str) -> str:
        name = next(self._names)
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {_quote(name)}{clause}")
        self._made.append(name)
        return self._url(name)

    def _url(self, name: str) -> str:
        return self._server_url.set(database=name).render_as_string(hide_password=False)


class SqliteScratch(_Closing):
    """Database files in a private temporary directory under `parent` (default /tmp)."""

    backend = "sqlite"

    def __init__(self, parent: str | None = None) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="reef_bench_", dir=parent or "/tmp"))
        self._counter = itertools.count(1)

    def create(self) -> str:
        return f"sqlite:///{self._directory / f'db{next(self._counter)}.sqlite'}"

    def clone(self, url: str) -> str:
        copy = self.create()
        shutil.copyfile(_database(url), _database(copy))
        return copy

    def drop(self, url: str) -> None:
        Path(_database(url)).unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)


def scratch_for(sqlite: bool, server_url: str) -> Scratch:
    """The scratch space for the chosen backend."""
    return SqliteScratch() if sqlite else PostgresScratch(server_url)


def _database(url: str) -> str:
    database = make_url(url).database
    if not database:
        raise ValueError(f"{url!r} names no database")
    return database


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
