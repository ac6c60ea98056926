"""Text a command prints: fixed-width tables whose cells are safe to show."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from reef_alerts.adapters.reports import AlertReport
from reef_alerts.redaction import printable

CELL_LIMIT = 60
"""Characters of one cell: a device's name, a condition."""


def columns(header: Sequence[str], rows: Sequence[Sequence[str]], *, last: int = 200) -> list[str]:
    """`header` and `rows` as lines of left-aligned columns; each cell printable and cut short,
    the last column less so (a reason)."""
    cut = [
        [printable(cell, last if i == len(row) - 1 else CELL_LIMIT) for i, cell in enumerate(row)]
        for row in [header, *rows]
    ]
    widths = [max(len(line[i]) for line in cut) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cut
    ]


def alert_lines(report: AlertReport, states: Collection[str] | None = None) -> list[str]:
    """The alerts of `report` as a table, those in `states` only when given."""
    return columns(
        ("alert", "device", "condition", "state", "since", "reason"),
        [
            (
                str(line.alert_id),
                line.device,
                line.condition,
                line.state,
                "" if line.since is None else f"{line.since:%Y-%m-%d %H:%M} UTC",
                line.reason,
            )
            for line in report.lines
            if not states or line.state in states
        ],
    )
