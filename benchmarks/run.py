"""Time one cycle of reef_alerts against the specification's per-alert reference, size by size.

For each size: generate the data once, clone it, run each implementation in a process of its
own on its own copy, and print one JSON line. The last line judges the targets.

    python -m benchmarks.run                              # PostgreSQL, 10,000 alerts
    python -m benchmarks.run --alerts 1000,10000,100000   # the reference is skipped above 10,000
    python -m benchmarks.run --sqlite --alerts 100000 --generation legacy
    python -m benchmarks.run --suite                      # every size the targets need
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.databases import DEFAULT_SERVER_URL, Scratch, scratch_for
from benchmarks.generate import Summary, generate
from benchmarks.targets import judge_all
from reef_alerts.adapters.notify_tables import outbox
from reef_alerts.adapters.tables import Generation, rules, tables_for, trend_rules

ROOT = Path(__file__).resolve().parents[1]
LEGACY, CURRENT = Generation.LEGACY, Generation.CURRENT
SUITE = (
    ("postgresql", 1_000, CURRENT),
    ("postgresql", 10_000, CURRENT),
    ("postgresql", 100_000, LEGACY),
    ("postgresql", 100_000, CURRENT),
    ("sqlite", 100_000, LEGACY),
    ("sqlite", 100_000, CURRENT),
)
OPTIONS_SUITE = (("postgresql", 100_000, CURRENT), ("sqlite", 100_000, CURRENT))
"""The sizes at which the suite also times every alert with rule options against none."""
OPTIONS = {"pending_seconds": 300.0, "recovery_margin": 0.2, "no_data_after_seconds": 600.0}
"""Every alert's options in the options runs: a 5-minute pending time (so the alerts that would
open an event wait instead, and their state is written), a margin, and no-data events (so the
silent devices of the mix open them)."""
OUTBOX_SUITE = (("postgresql", 100_000, CURRENT), ("sqlite", 100_000, CURRENT))
"""The sizes at which the suite also times cycles that write the notification outbox (the
generated databases have it, as `db upgrade` makes them) against the same without it (issue
15)."""
TRENDS_SUITE = (("postgresql", 10_000, CURRENT), ("postgresql", 100_000, CURRENT))
"""The sizes at which the suite also times every alert as a trend alert against none (issue 13):
its 2x target at 10,000, and a report at 100,000."""
TREND_READINGS = 60
"""Readings in each trend alert's window: its window is this many of its device's polls."""
HISTORY_ROWS = 5_000_000
"""The history the default depth gives each size: a thousand readings a device at 1,000 alerts,
500 at 10,000 and 50 at 100,000 (the mix has a device per alert)."""
MAX_DEPTH = 1_000


def default_depth(alerts: int) -> int:
    """Readings per device for `alerts` alerts when --readings is not given."""
    return max(5, min(MAX_DEPTH, HISTORY_ROWS // alerts))


def bench(
    scratch: Scratch, alerts: int, generation: Generation, args: argparse.Namespace
) -> dict[str, Any]:
    """Generate `alerts` alerts' worth of data and time both implementations on copies of it."""
    template = scratch.create()
    readings = args.readings or default_depth(alerts)
    summary = generate(template, alerts, readings, generation=generation)
    _progress(
        f"{scratch.backend} {generation.value} {alerts:,} x {readings}: "
        f"generated in {summary.seconds:.1f} s"
    )
    result: dict[str, Any] = {
        "backend": scratch.backend,
        "generation": generation.value,
        "alerts": alerts,
        "readings_per_device": readings,
        "history_rows": summary.history_rows,
        "generate_seconds": round(summary.seconds, 2),
        "open_events_before": _open_events_before(summary),
        "expected_open_events": len(summary.dataset.expected.open_alert_ids),
    }
    reef, reef_open = _run_reef(scratch, template, summary, args)
    result |= reef
    if (scratch.backend, alerts, generation) in args.options_jobs:
        result |= _run_options(scratch, template, summary, args)
    if (scratch.backend, alerts, generation) in args.trend_jobs:
        result |= _run_trends(scratch, template, summary, args)
    if (scratch.backend, alerts, generation) in args.outbox_jobs:
        result |= _run_outbox(scratch, template, summary, args)
    if args.skip_reference or alerts > args.reference_limit:
        result |= {"reference_seconds": None, "ratio": None, "events_match": None}
    else:
        repeat = args.reference_repeat or (3 if alerts <= 10_000 else 1)
        reference, reference_open = _run_reference(scratch, template, summary, repeat)
        result |= reference | _compare(reef, reef_open, reference, reference_open)
    if args.profile and alerts == max(n for name, n, _ in args.jobs if name == scratch.backend):
        path = _profile_path(args.profile, scratch.backend, args.jobs)
        copy = scratch.clone(template)
        measure_in_process("reef", copy, summary.now, ["--profile", str(path)])
        result["profile"] = str(path)
        scratch.drop(copy)
    scratch.drop(template)
    return result


def _run_reef(
    scratch: Scratch, template: str, summary: Summary, args: argparse.Namespace
) -> tuple[dict[str, Any], set[int] | None]:
    """reef_alerts's figures on `args.copies` fresh copies (medians), and the alerts it leaves
    with an open event.

    Each copy gets `args.repeat` cycles: the first, which writes the new events, and the steady
    ones after it. The first copy after generating the data has run up to a third slower than
    the next ones, so one copy alone would say more about the machine's state than about the
    worker.
    """
    try:
        runs, open_ids, duplicates = _on_fresh_copies(
            "reef", scratch, template, summary, args.copies, args.repeat
        )
    except RuntimeError as error:
        return {"reef_seconds": None, "reef_error": str(error)}, None
    first = [run["seconds"] for run in runs]
    steady = [s for run in runs for s in run["all_seconds"][1:]]
    median_run = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return {
        "reef_seconds": round(statistics.median(first), 4),
        "reef_first_seconds_all": [round(s, 4) for s in first],
        "reef_repeat_median_seconds": _round(statistics.median(steady) if steady else None),
        "reef_all_seconds": [run["all_seconds"] for run in runs],
        "reef_cpu_seconds": median_run["cpu_seconds"],
        "reef_statements": runs[0]["statements"],
        "reef_peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "reef_stats": runs[0]["stats"],
        "reef_duplicate_open_events": duplicates,
        "load_average_before": runs[0]["load_average_before"],
        "reef_matches_expected": open_ids == summary.dataset.expected.open_alert_ids,
    }, open_ids


def _run_options(
    scratch: Scratch, template: str, summary: Summary, args: argparse.Namespace
) -> dict[str, Any]:
    """reef_alerts with OPTIONS on every alert against none, side by side."""
    plain, options = _side_by_side(
        scratch, template, summary, _give_every_alert_options, args.copies, args.repeat
    )
    return {"options": OPTIONS, **_paired("options", plain, options)}


def _side_by_side(
    scratch: Scratch,
    template: str,
    summary: Summary,
    change: Callable[[str], None],
    copies: int,
    repeat: int,
    touch: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """reef_alerts's runs on `copies` pairs of fresh copies, the second of each pair with
    `change` made to it (and the first with `touch`, a change that changes nothing the cycle
    does, so that both copies are opened and written alike before their runs): one right after
    the other, so that both meet the machine in the same state, and the pairs alternate which
    runs first."""
    plain: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for index in range(copies):
        order = [(plain, False), (changed, True)]
        for runs, with_change in order if index % 2 == 0 else reversed(order):
            copy = scratch.clone(template)
            prepare = change if with_change else touch
            if prepare is not None:
                prepare(copy)
            runs.append(measure_in_process("reef", copy, summary.now, ["--repeat", str(repeat)]))
            scratch.drop(copy)
            name = "changed" if with_change else "plain"
            _progress(f"  reef {name}: {runs[-1]['seconds']:.3f} s")
    return plain, changed


def _paired(
    prefix: str, plain: list[dict[str, Any]], changed: list[dict[str, Any]]
) -> dict[str, Any]:
    """Side-by-side runs' figures under `prefix`: medians of the first cycles and of the later
    ones, and their ratios."""
    first_plain, first_changed = (
        statistics.median(r["seconds"] for r in runs) for runs in (plain, changed)
    )
    later_plain, later_changed = (
        statistics.median(s for run in runs for s in run["all_seconds"][1:])
        for runs in (plain, changed)
    )
    return {
        f"{prefix}_reef_seconds": round(first_changed, 4),
        f"{prefix}_plain_seconds": round(first_plain, 4),
        f"{prefix}_first_seconds_all": [round(r["seconds"], 4) for r in changed],
        f"{prefix}_plain_first_seconds_all": [round(r["seconds"], 4) for r in plain],
        f"{prefix}_ratio": round(first_changed / first_plain, 3),
        f"{prefix}_later_seconds": round(later_changed, 4),
        f"{prefix}_plain_later_seconds": round(later_plain, 4),
        f"{prefix}_ratio_later_cycles": round(later_changed / later_plain, 3),
        f"{prefix}_peak_rss_mb": max(r["peak_rss_mb"] for r in changed),
        f"{prefix}_stats": changed[0]["stats"],
    }


def _run_outbox(
    scratch: Scratch, template: str, summary: Summary, args: argparse.Namespace
) -> dict[str, Any]:
    """reef_alerts writing the notification outbox with its events (the template has it)
    against the same database without the outbox, side by side; ratio with / without."""
    with_outbox, without = _side_by_side(
        scratch,
        template,
        summary,
        _drop_the_outbox,
        args.copies,
        args.repeat,
        touch=_empty_the_outbox,
    )
    return _paired("outbox", without, with_outbox)


def _drop_the_outbox(url: str) -> None:
    """The database as it was before issue 15: the worker writes no outbox where there is
    none (and reads no silences)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            outbox.drop(connection)
    finally:
        engine.dispose()


def _empty_the_outbox(url: str) -> None:
    """What `_drop_the_outbox` does to a copy, but for dropping: a write that leaves the empty
    outbox as it was."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(outbox.delete())
    finally:
        engine.dispose()


def _give_every_alert_options(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            alerts = tables_for(CURRENT).alerts  # the columns read are in both generations
            connection.execute(
                sa.insert(rules).from_select(
                    ["alert_id", *OPTIONS, "updated_at"],
                    sa.select(
                        alerts.c.id,
                        *(sa.literal(value) for value in OPTIONS.values()),
                        sa.func.current_timestamp(),
                    ),
                )
            )
    finally:
        engine.dispose()


def _run_trends(
    scratch: Scratch, template: str, summary: Summary, args: argparse.Namespace
) -> dict[str, Any]:
    """reef_alerts with every alert a trend alert (a window of TREND_READINGS of its device's
    polls, forecasts, rates) against the same alerts without, side by side. Above 10,000
    alerts, one pair of copies of three cycles: a report, not a target."""
    copies, repeat = (args.copies, args.repeat) if summary.alerts <= 10_000 else (1, 3)
    plain, trends = _side_by_side(
        scratch, template, summary, _make_every_alert_a_trend_alert, copies, repeat
    )
    return {
        "trends_window_readings": TREND_READINGS,
        **_paired("trends", plain, trends),
    }


def _make_every_alert_a_trend_alert(url: str) -> None:
    """trend_enabled on every alert, each with a window of TREND_READINGS of its device's
    polls, a forecast horizon as long, and a rate limit."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            tables = tables_for(CURRENT)  # the columns used are in both generations
            alerts, devices = tables.alerts, tables.devices
            connection.execute(sa.update(alerts).values(trend_enabled=True))
            window = TREND_READINGS * sa.func.coalesce(devices.c.poll_interval, 60)
            rest = ("max_rate_per_hour", "updated_at")
            connection.execute(
                sa.insert(trend_rules).from_select(
                    [*("alert_id", "trend_window_seconds", "forecast_horizon_seconds"), *rest],
                    sa.select(
                        alerts.c.id,
                        window,
                        window,
                        sa.literal(5.0),
                        sa.func.current_timestamp(),
                    ).select_from(alerts.join(devices, devices.c.id == alerts.c.device_id)),
                )
            )
    finally:
        engine.dispose()


def _run_reference(
    scratch: Scratch, template: str, summary: Summary, repeat: int
) -> tuple[dict[str, Any], set[int]]:
    """The reference's figures (medians of `repeat` runs), and the alerts it leaves open.

    Each run takes two cycles: the first, which writes, and a second, which changes nothing,
    to compare with reef_alerts's later cycles.
    """
    runs, open_ids, _ = _on_fresh_copies("reference", scratch, template, summary, repeat, 2)
    seconds = statistics.median(run["seconds"] for run in runs)
    return {
        "reference_seconds": round(seconds, 4),
        "reference_repeats": repeat,
        "reference_all_seconds": [round(run["seconds"], 4) for run in runs],
        "reference_repeat_median_seconds": round(
            statistics.median(run["all_seconds"][1] for run in runs), 4
        ),
        "reference_statements": runs[0]["statements"],
        "reference_peak_rss_mb": runs[0]["peak_rss_mb"],
        "reference_stats": runs[0]["stats"],
        "reference_matches_expected": open_ids == summary.dataset.expected.open_alert_ids,
    }, open_ids


def _on_fresh_copies(
    implementation: str,
    scratch: Scratch,
    template: str,
    summary: Summary,
    copies: int,
    cycles: int,
) -> tuple[list[dict[str, Any]], set[int], int]:
    """`cycles` cycles of `implementation` on each of `copies` fresh copies of `template`, each
    in a process of its own (both implementations write, so every run needs fresh data): the
    runs' figures, and the open events the first copy was left with (alert ids, duplicates)."""
    runs: list[dict[str, Any]] = []
    open_ids: set[int] = set()
    duplicates = 0
    for attempt in range(copies):
        copy = scratch.clone(template)
        runs.append(
            measure_in_process(implementation, copy, summary.now, ["--repeat", str(cycles)])
        )
        if attempt == 0:
            open_ids, duplicates = open_alert_ids(copy)
        scratch.drop(copy)
        run = runs[-1]
        _progress(f"  {implementation}: {run['seconds']:.3f} s, {run['statements']} statements")
    return runs, open_ids, duplicates


def _compare(
    reef: dict[str, Any],
    reef_open: set[int] | None,
    reference: dict[str, Any],
    reference_open: set[int],
) -> dict[str, Any]:
    """The speed-ups (first cycles; later ones), and whether both left the same alerts with an
    open event."""
    reef_seconds, reef_steady = reef.get("reef_seconds"), reef.get("reef_repeat_median_seconds")
    if reef_seconds is None or reef_open is None:
        return {"ratio": None, "events_match": None}
    differing = sorted(reef_open ^ reference_open)
    steady = reference["reference_repeat_median_seconds"] / reef_steady if reef_steady else None
    return {
        "ratio": round(reference["reference_seconds"] / reef_seconds, 1),
        "ratio_later_cycles": None if steady is None else round(steady, 1),
        "events_match": not differing,
        "differing_alerts": len(differing),
        "differing_alert_ids_sample": differing[:20],
    }


def measure_in_process(
    implementation: str, url: str, now: datetime, extra: list[str], checkout: Path = ROOT
) -> dict[str, Any]:
    """`benchmarks.measure`'s JSON line for `implementation` on `url`, run in a process of its
    own with `checkout`'s code: its `src/` goes first on PYTHONPATH, ahead of the installed
    package."""
    command = [sys.executable, "-m", "benchmarks.measure", implementation, url]
    command += ["--now", now.isoformat(), *extra]
    env = None
    if checkout != ROOT:
        env = os.environ | {"PYTHONPATH": os.pathsep.join([str(checkout / "src"), str(checkout)])}
    done = subprocess.run(
        command, cwd=checkout, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{implementation} in {checkout} failed: {last}")
    parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


def open_alert_ids(url: str) -> tuple[set[int], int]:
    """The alerts with an unresolved event, and how many open events beyond one per alert."""
    alert_events = tables_for(CURRENT).alert_events  # the columns read are in both generations
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            ids = conn.execute(
                sa.select(alert_events.c.alert_id).where(alert_events.c.is_resolved.is_(False))
            ).scalars()
            alert_ids = list(ids)
    finally:
        engine.dispose()
    return set(alert_ids), len(alert_ids) - len(set(alert_ids))


def _open_events_before(summary: Summary) -> int:
    return sum(1 for event in summary.dataset.events if not event[8])  # is_resolved


def _profile_path(path: Path, backend: str, jobs: Sequence[tuple[str, int, Generation]]) -> Path:
    """`path`, or `path` with the backend in its name when both backends run."""
    if len({name for name, _, _ in jobs}) == 1:
        return path
    return path.with_name(f"{path.stem}-{backend}{path.suffix}")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", default=DEFAULT_SERVER_URL, help="PostgreSQL server for scratch databases"
    )
    parser.add_argument("--sqlite", action="store_true", help="use SQLite files in /tmp instead")
    parser.add_argument("--alerts", type=_sizes, action="append", help="sizes, e.g. 1000,10000")
    parser.add_argument(
        "--readings",
        type=int,
        help=f"readings per device (default: {HISTORY_ROWS:,} rows of history in all, "
        f"between 5 and {MAX_DEPTH:,} a device)",
    )
    parser.add_argument(
        "--generation",
        type=Generation,
        choices=list(Generation),
        default=CURRENT,
        help="of the web app's schema (default current)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="reef cycles per copy (first + rest)")
    parser.add_argument("--copies", type=int, default=5, help="fresh copies reef runs on (median)")
    parser.add_argument(
        "--reference-repeat", type=int, help="reference runs (default 3, 1 > 10,000)"
    )
    parser.add_argument("--reference-limit", type=int, default=10_000, help="skip it above this")
    parser.add_argument("--force-reference", action="store_true", help="run it at every size")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--profile", type=Path, help="pyinstrument profile of one reef cycle")
    parser.add_argument(
        "--options",
        action="store_true",
        help="also time every alert with rule options against none, side by side",
    )
    parser.add_argument(
        "--trends",
        action="store_true",
        help="also time every alert as a trend alert against none, side by side (issue 13)",
    )
    parser.add_argument(
        "--outbox",
        action="store_true",
        help="also time cycles writing the notification outbox against none, side by side "
        "(issue 15)",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="PostgreSQL 1k/10k, and 100k and SQLite 100k on both generations",
    )
    args = parser.parse_args(argv)
    sizes = sorted({n for group in args.alerts or [[10_000]] for n in group})
    backend = "sqlite" if args.sqlite else "postgresql"
    args.jobs = list(SUITE) if args.suite else [(backend, n, args.generation) for n in sizes]
    args.options_jobs = set(OPTIONS_SUITE if args.suite else args.jobs if args.options else ())
    args.trend_jobs = set(TRENDS_SUITE if args.suite else args.jobs if args.trends else ())
    args.outbox_jobs = set(OUTBOX_SUITE if args.suite else args.jobs if args.outbox else ())
    if args.force_reference:
        args.reference_limit = sys.maxsize
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    results: list[dict[str, Any]] = []
    for backend in dict.fromkeys(name for name, _, _ in args.jobs):
        with scratch_for(backend == "sqlite", args.url) as scratch:
            for name, alerts, generation in args.jobs:
                if name != backend:
                    continue
                try:
                    result = bench(scratch, alerts, generation, args)
                except (RuntimeError, sa.exc.SQLAlchemyError) as error:  # e.g. a server restart
                    result = {
                        "backend": backend,
                        "generation": generation.value,
                        "alerts": alerts,
                        "error": str(error)[:300],
                    }
                results.append(result)
                print(json.dumps(result), flush=True)
    print(json.dumps(judge_all(results)), flush=True)


if __name__ == "__main__":
    main()
