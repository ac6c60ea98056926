"""Text a command prints: fixed-width tables whose cells are safe to show."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from reef_alerts.adapters.reports import AlertReport
from reef_alerts.adapters.rule_store import AlertRule
from reef_alerts.application.judging import effective_options
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    InvalidAlertError,
    RuleOptions,
    TrendOptions,
    format_duration,
)
from reef_alerts.ports import StoredRule, StoredTrend
from reef_alerts.redaction import printable

CELL_LIMIT = 60
"""Characters of one cell: a device's name, a condition."""


def columns(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    last: int = 200,
    wide: Collection[int] = (),
) -> list[str]:
    """`header` and `rows` as lines of left-aligned columns; each cell printable and cut short,
    the last column and the `wide` ones less so (a reason, a trend)."""
    longer = {len(header) - 1, *wide}
    cut = [
        [printable(cell, last if i in longer else CELL_LIMIT) for i, cell in enumerate(row)]
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
    shown = [line for line in report.lines if not states or line.state in states]
    trends = any(line.trend for line in shown)
    return columns(
        (
            *("alert", "device", "condition", "options", "state", "since"),
            *(("trend",) if trends else ()),
            "reason",
        ),
        [
            (
                str(line.alert_id),
                line.device,
                line.condition,
                _options(
                    line.rule, defaults if report.remembers else DEFAULT_OPTIONS, line.trend_rule
                ),
                line.state,
                "" if line.since is None else f"{line.since:%Y-%m-%d %H:%M} UTC",
                *((line.trend,) if trends else ()),
                line.reason,
            )
            for line in shown
        ],
        wide=(6,) if trends else (),
    )


def _options(
    rule: StoredRule | None, defaults: RuleOptions, trend: StoredTrend | None = None
) -> str:
    try:
        options = effective_options(rule, defaults, trend)
    except InvalidAlertError as error:
        return f"INVALID ({error})"
    return "-" if options == DEFAULT_OPTIONS else options.describe()


def _shown(own: object, default: str, *, duration: bool = False, off: bool = False) -> str:
    """An option as the alert set it, or the default it takes."""
    if own is None:
        return f"{default} (default)"
    if isinstance(own, bool) or not isinstance(own, int | float) or not -1e12 < own < 1e12:
        return f"INVALID ({own!r})"  # a row edited by hand: shown, not trusted
    if off and own == 0:
        return "off"
    return format_duration(timedelta(seconds=own)) if duration else f"{own:g}"


def rule_lines(rules: Sequence[AlertRule], defaults: RuleOptions) -> list[str]:
    """Alerts' options as a table: each option as the alert set it, or the default it takes;
    then, for trend alerts and alerts with trend options, their trend options."""
    shown = _shown
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
    ) + _trend_lines(rules, defaults.trend)


MAX_WINDOW_READINGS = 10_000
"""More readings than this in one window each cycle are worth a word to the keeper."""


def trend_notes(options: TrendOptions, poll_interval: timedelta | None) -> list[str]:
    """What a keeper should know of trend options on a device polled every `poll_interval`
    (None: not known): a window that can never hold enough readings, or that holds a great
    many."""
    if poll_interval is None or poll_interval <= timedelta(0):
        return []
    fits = int(options.window / poll_interval)
    polled = f"the device is polled every {format_duration(poll_interval)}"
    window = format_duration(options.window)
    if fits < options.min_samples:
        skipped = " (a smoothed alert is skipped)" if options.smoothing else ""
        return [
            f"{polled}: a {window} window holds about {fits} of its readings, fewer than the "
            f"{options.min_samples} a trend needs, so it never tells one{skipped}; lengthen "
            "--trend-window or lower --min-samples"
        ]
    if fits > MAX_WINDOW_READINGS:
        return [
            f"{polled}: each cycle reads about {fits:,} readings for a {window} window; a "
            "shorter one costs less"
        ]
    return []


def _trend_lines(rules: Sequence[AlertRule], defaults: TrendOptions) -> list[str]:
    trends = [line for line in rules if line.trend_enabled or line.trend is not None]
    if not trends:
        return []
    rate = "off" if defaults.max_rate_per_hour is None else f"{defaults.max_rate_per_hour:g}"

    def switch(own: object, default: bool) -> str:
        if own is None:
            return f"{'on' if default else 'off'} (default)"
        return "on" if own in (True, 1) else "off" if own in (False, 0) else f"INVALID ({own!r})"

    table = columns(
        (
            "alert",
            "trend",
            "window",
            "min samples",
            "forecast horizon",
            "max rate per hour",
            "smoothing",
        ),
        [
            (
                str(line.alert_id),
                "on" if line.trend_enabled else "off (trend_enabled is false)",
                _shown(trend.trend_window_seconds, format_duration(defaults.window), duration=True),
                _shown(trend.min_samples, str(defaults.min_samples)),
                _shown(
                    trend.forecast_horizon_seconds, format_duration(defaults.horizon), duration=True
                ),
                _shown(trend.max_rate_per_hour, rate, off=True),
                switch(trend.smoothing, defaults.smoothing),
            )
            for line in trends
            for trend in [line.trend or StoredTrend(None, None, None, None, None)]
        ],
    )
    return ["", *table]
