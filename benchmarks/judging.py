"""The cycle's judging alone, on snapshot rows fetched beforehand: for counting instructions.

Wall-clock times on a shared machine move by ±10 % from run to run; the instructions a fixed piece
of work executes do not. This runs the cycle's decoding and judging (building the snapshot
objects, the alerts and the verdicts) over rows saved from a PostgreSQL snapshot, with no
database and no thread, so that two versions of the code can be compared under
`valgrind --tool=callgrind`:

    python -m benchmarks.judging save postgresql://postgres@127.0.0.1:5432/DB /tmp/rows.pickle
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.judging run /tmp/rows.pickle --passes 0    # imports and loading only
    valgrind ... python -m benchmarks.judging run /tmp/rows.pickle --passes 1

The difference of the two "Collected" counts is one pass: a first cycle's judging (which builds
the alerts) and a later one's (which reuses them). DB is a database `benchmarks.generate` filled;
the cycle judges as of its newest reading that is not in the future, saved with the rows.
"""

from __future__ import annotations

import argparse
import gc
import pickle
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reef_alerts.adapters import snapshots
from reef_alerts.adapters.schema import detect_tables
from reef_alerts.adapters.snapshot_queries import snapshot_query
from reef_alerts.application.judging import Judge
from reef_alerts.domain import EvaluationPolicy


def save(url: str, path: Path, rows: int) -> None:
    """The first `rows` rows of the snapshot of the database at `url`, and its newest reading's
    timestamp, pickled into `path`."""
    engine = sa.create_engine(url, connect_args={"options": "-c timezone=UTC -c jit=off"})
    with engine.connect() as connection:
        tables = detect_tables(connection)
    sql = str(
        snapshot_query(tables).compile(
            dialect=engine.dialect, compile_kwargs={"literal_binds": True}
        )
    )
    with engine.connect() as connection:
        fetched = connection.exec_driver_sql(sql).cursor.fetchall()[:rows]
        now = connection.exec_driver_sql(
            "SELECT max(timestamp) FROM history WHERE timestamp <= now()"
        ).scalar_one()
    engine.dispose()
    path.write_bytes(pickle.dumps({"rows": fetched, "now": now}))


def run(path: Path, passes: int) -> None:
    """Judge the saved rows `passes` times over: a first cycle and a later one each time."""
    saved: dict[str, Any] = pickle.loads(path.read_bytes())
    rows: Sequence[Any] = saved["rows"]
    now: datetime = saved["now"]
    gc.disable()  # as during a cycle
    evaluator = EvaluationPolicy().at(now)
    for _ in range(passes):
        known = None
        for _first_then_later in range(2):
            judge = Judge(evaluator, known=known)
            judge(snapshots._snapshots(iter([rows])))
            known = judge.built


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save", help="fetch snapshot rows from a database into a file")
    saving.add_argument("url")
    saving.add_argument("path", type=Path)
    saving.add_argument("--rows", type=int, default=20_000)
    running = commands.add_parser("run", help="judge the saved rows")
    running.add_argument("path", type=Path)
    running.add_argument("--passes", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "save":
        save(args.url, args.path, args.rows)
    else:
        run(args.path, args.passes)


if __name__ == "__main__":
    main()
