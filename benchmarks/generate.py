"""Fill a database with the benchmark's realistic mix (see `benchmarks.mix`), fast.

PostgreSQL is loaded with COPY through psycopg2's `copy_expert`, then VACUUM ANALYZE; SQLite with
`executemany` in large batches. The schema comes from `reef_alerts.adapters.tables`.

    python -m benchmarks.generate sqlite:////tmp/reef.sqlite --alerts 100000
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import attrs
import sqlalchemy as sa

from benchmarks.mix import (
    ALERT_COLUMNS,
    DEVICE_COLUMNS,
    EVENT_COLUMNS,
    HISTORY_COLUMNS,
    Dataset,
    Row,
    build,
)
from reef_alerts.adapters import schema
from reef_alerts.adapters.database import make_engine
from reef_alerts.adapters.tables import CURRENT, Generation, SharedTables, tables_for

BATCH = 50_000


@attrs.frozen
class Summary:
    """What was loaded, and how long it took."""

    url: str
    generation: Generation
    now: datetime
    """The instant the data was generated for; fresh readings are up to a minute older."""
    devices: int
    history_rows: int
    alerts: int
    events: int
    seconds: float
    dataset: Dataset


def generate(
    url: str,
    alerts: int,
    readings: int = 5,
    now: datetime | None = None,
    generation: Generation = CURRENT.generation,
) -> Summary:
    """Create the web app's tables of `generation` in `url`, load `alerts` devices, alerts and
    their readings, and add the worker's objects as `db upgrade` does."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    dataset = build(alerts, readings, now)
    tables = tables_for(generation)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    postgres = engine.dialect.name == "postgresql"
    try:
        # Indexes are built after the load: faster than maintaining them row by row.
        with engine.begin() as conn:
            tables.metadata.create_all(conn)
            for index in _indexes(tables):
                index.drop(conn)
        load = copy_into if postgres else _insert_into
        raw = engine.raw_connection()
        try:
            if postgres:  # the rows are consistent by construction: skip per-row FK triggers
                _execute(
                    raw,
                    "DO $$ BEGIN IF current_setting('is_superuser') = 'on' THEN "
                    "SET session_replication_role = replica; END IF; END $$",
                )
            load(raw, "devices", DEVICE_COLUMNS, dataset.devices)
            load(raw, "history", _named(tables.history, HISTORY_COLUMNS), dataset.history())
            load(raw, "alerts", ALERT_COLUMNS, dataset.alerts)
            load(raw, "alert_events", _named(tables.alert_events, EVENT_COLUMNS), dataset.events)
            raw.commit()
        finally:
            raw.close()
        with engine.begin() as conn:
            for index in _indexes(tables):
                index.create(conn)
        if postgres:
            finish_postgres(engine)
    finally:
        engine.dispose()
    upgraded = make_engine(url)
    try:
        schema.upgrade(upgraded)  # the worker's objects, on a database with data, as in the field
    finally:
        upgraded.dispose()
    return Summary(
        url=url,
        generation=generation,
        now=now,
        devices=len(dataset.devices),
        history_rows=dataset.history_rows,
        alerts=len(dataset.alerts),
        events=len(dataset.events),
        seconds=time.perf_counter() - started,
        dataset=dataset,
    )


def copy_into(raw: Any, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
    statement = f"COPY {table} ({', '.join(_quoted(columns))}) FROM STDIN"
    lines = ("\t".join(map(_copy_text, row)) + "\n" for row in rows)
    with raw.cursor() as cursor:
        # One streamed COPY per table: the server parses while Python produces the next chunk.
        cursor.copy_expert(statement, _LineReader(lines), size=1 << 20)


class _LineReader(io.TextIOBase):
    """A read-only text file whose content is produced, a chunk at a time, by `lines`."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        wanted = size if size is not None and size >= 0 else None
        parts = [self._pending]
        length = len(self._pending)
        while wanted is None or length < wanted:
            chunk = "".join(islice(self._lines, 2000))
            if not chunk:
                break
            parts.append(chunk)
            length += len(chunk)
        text = "".join(parts)
        if wanted is None:
            self._pending = ""
            return text
        self._pending = text[wanted:]
        return text[:wanted]


def _copy_text(value: object) -> str:
    """`value` in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return _escaped(json.dumps(value))
    return str(value)


def _escaped(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        text = text.replace("\r", "\\r")
    return text


def _insert_into(raw: Any, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table} ({', '.join(_quoted(columns))}) VALUES ({placeholders})"
    cursor = raw.cursor()
    try:
        for batch in _batches(rows):
            cursor.executemany(statement, [tuple(map(_sqlite_value, row)) for row in batch])
    finally:
        cursor.close()


def _sqlite_value(value: object) -> object:
    """`value` as SQLAlchemy stores it in SQLite: naive UTC text for datetimes, JSON text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def finish_postgres(engine: sa.Engine) -> None:
    """Move the id sequences past the loaded ids, then VACUUM ANALYZE as autovacuum would."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("devices", "history", "alerts", "alert_events"):
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            )
        conn.exec_driver_sql("VACUUM ANALYZE")


def _indexes(tables: SharedTables) -> list[sa.Index]:
    return [index for table in tables.metadata.sorted_tables for index in table.indexes]


def _named(table: sa.Table, columns: Sequence[str]) -> list[str]:
    """`columns` as `table` names them in this generation: `metadata` is its `metadata_` key."""
    return [table.c["metadata_"].name if name == "metadata" else name for name in columns]


def _execute(raw: Any, statement: str) -> None:
    cursor = raw.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _batches(rows: Iterable[Row]) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def _quoted(columns: Sequence[str]) -> list[str]:
    return [f'"{column}"' for column in columns]


def _plain(_instance: object, _attribute: object, value: object) -> object:
    return value.value if isinstance(value, Generation) else value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="SQLAlchemy URL of an empty database")
    parser.add_argument("--alerts", type=int, default=10_000, help="devices and alerts")
    parser.add_argument("--readings", type=int, default=5, help="readings per device")
    parser.add_argument(
        "--generation", type=Generation, choices=list(Generation), default=CURRENT.generation
    )
    args = parser.parse_args(argv)
    summary = generate(args.url, args.alerts, args.readings, generation=args.generation)
    counts = attrs.asdict(
        summary, filter=lambda a, _: a.name not in {"dataset", "now"}, value_serializer=_plain
    )
    print(json.dumps(counts | {"expected_open": len(summary.dataset.expected.open_alert_ids)}))


if __name__ == "__main__":
    main()
