"""Text a command prints: fixed-width tables whose cells are safe to show."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from reef_alerts.adapters.reports import AlertReport
from reef_alerts.adapters.rule_store import AlertRule
from reef_alerts.application.judging import effective_options
from reef_alerts.domain import DEFAULT_OPTIONS, InvalidAlertError, RuleOptions, format_duration
from reef_alerts.ports import StoredRule
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


def alert_lines(
    report: AlertReport,
    states: Collection[str] | None = None,
    defaults: RuleOptions = DEFAULT_OPTIONS,
) -> list[str]:
    """The alerts of `report` as a table, those in `states` only when given, each with the
    options it has: its own, or `defaults`."""
    return columns(
        ("alert", "device", "condition", "options", "state", "since", "reason"),
        [
            (
                str(line.alert_id),
                line.device,
                line.condition,
                _options(line.rule, defaults if report.remembers else DEFAULT_OPTIONS),
                line.state,
                "" if line.since is None else f"{line.since:%Y-%m-%d %H:%M} UTC",
                line.reason,
            )
            for line in report.lines
            if not states or line.state in states
        ],
    )


def _options(rule: StoredRule | None, defaults: RuleOptions) -> str:
    try:
        options = effective_options(rule, defaults)
    except InvalidAlertError as error:
        return f"INVALID ({error})"
    return "-" if options == DEFAULT_OPTIONS else options.describe()


def rule_lines(rules: Sequence[AlertRule], defaults: RuleOptions) -> list[str]:
    """Alerts' options as a table: each option as the alert set it, or the default it takes."""

    def shown(own: object, default: str, *, duration: bool = False, off: bool = False) -> str:
        if own is None:
            return f"{default} (default)"
        if isinstance(own, bool) or not isinstance(own, int | float) or not -1e12 < own < 1e12:
            return f"INVALID ({own!r})"  # a row edited by hand: shown, not trusted
        if off and own == 0:
            return "off"
        return format_duration(timedelta(seconds=own)) if duration else f"{own:g}"

    no_data = "off" if defaults.no_data_after is None else format_duration(defaults.no_data_after)
    return columns(
        ("alert", "device", "condition", "pending", "recovery margin", "no data after"),
        [
            (
                str(line.alert_id),
                line.device,
                line.condition,
                shown(rule.pending_seconds, format_duration(defaults.pending), duration=True),
                shown(rule.recovery_margin, f"{defaults.recovery_margin:g}"),
                shown(rule.no_data_after_seconds, no_data, duration=True, off=True),
            )
            for line in rules
            for rule in [line.rule or StoredRule(None, None, None)]
        ],
    )
