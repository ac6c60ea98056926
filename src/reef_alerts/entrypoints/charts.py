"""What `reef-alerts preview` prints: the line a keeper reads first, a chart of the series with
its threshold and the spans events were open, drawn by plotext, a table of the events, and the
preview as JSON (what the web app's router returns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import plotext as plt

from reef_alerts.application.preview import Preview
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Alert,
    NoMetric,
    RuleOptions,
    Timeline,
    extract_metric,
    format_duration,
)
from reef_alerts.entrypoints.text import columns
from reef_alerts.redaction import printable

_DATES = "%d/%m/%Y %H:%M:%S"
"""How dates reach plotext, which reads them by its own pattern below."""
_PLOTEXT_DATES = "d/m/Y H:M:S"


def headline(preview: Preview) -> str:
    """One line: how often the alert would have fired, and how often as it is compared with."""
    alert = preview.alert
    who = f"Alert {alert.id}" if alert.id is not None else "The draft alert"
    line = f"{who} ({_condition(preview, alert)}) would have fired {_times(preview.timeline)}"
    if preview.options != DEFAULT_OPTIONS:
        line += f" with {preview.options.describe()}"
    if preview.compared is not None and preview.compared_with is not None:
        other, options = preview.compared_with
        label = "as stored" if alert.id is not None else "with the default options alone"
        described = _condition(preview, other)
        if options != DEFAULT_OPTIONS:
            described += f", {options.describe()}"
        line += f"; {_times(preview.compared)} {label} ({described})"
    return line


def _condition(preview: Preview, alert: Alert) -> str:
    return (
        f"{printable(preview.device.name, 40)}: {printable(alert.metric, 40)} "
        f"{alert.operator.value} {alert.threshold:g}"
    )


def _times(timeline: Timeline) -> str:
    count = len(timeline.threshold_events)
    said = _plural(count, "time")
    if count:
        said += (
            f" ({format_duration(timeline.time_in_alert)} in alert, "
            f"{_plural(timeline.flaps, 'flap')})"
        )
    silent = len(timeline.no_data_events)
    if silent:
        said += f" and opened {_plural(silent, 'no-data event')}"
    return said


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def chart(preview: Preview, *, width: int = 100, height: int = 24, color: bool = False) -> str:
    """The metric's series, its threshold, and where the threshold events were open."""
    points = [
        (r.timestamp, found.value)
        for r in preview.history.readings
        if r.timestamp is not None
        and preview.timeline.start <= r.timestamp <= preview.timeline.end
        and not isinstance(found := extract_metric(r, preview.alert.metric), NoMetric)
    ]
    if not points:
        return "(no reading of the metric in the range: nothing to chart)"
    plt.clear_figure()
    plt.date_form(_PLOTEXT_DATES)
    plt.plotsize(width, height)
    plt.theme("clear")
    plt.plot([_date(t) for t, _ in points], [v for _, v in points], label=preview.alert.metric)
    plt.hline(preview.alert.threshold, "red")
    top = max([v for _, v in points] + [preview.alert.threshold])
    opened = [e.at for e in preview.timeline.evaluations if e.outcome in ("trigger", "firing")]
    if opened:
        plt.scatter([_date(t) for t in opened], [top] * len(opened), label="event open", marker="x")
    plt.title(_condition(preview, preview.alert))
    drawn = str(plt.build())
    return drawn if color else str(plt.uncolorize(drawn))


def _date(at: datetime) -> str:
    return at.strftime(_DATES)


def event_lines(timeline: Timeline) -> list[str]:
    """The events the rule would have opened, as a table."""
    if not timeline.events:
        return ["(no event)"]
    return columns(
        ("kind", "opened", "value", "resolved", "value", "open for"),
        [
            (
                e.kind.value.replace("_", "-"),
                f"{e.opened_at:%Y-%m-%d %H:%M:%S}",
                _number(e.value),
                "still open" if e.resolved_at is None else f"{e.resolved_at:%Y-%m-%d %H:%M:%S}",
                _number(e.resolution_value),
                format_duration(e.duration(timeline.end)),
            )
            for e in timeline.events
        ],
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def as_json(preview: Preview) -> dict[str, Any]:
    """The preview as plain data."""
    return {
        "alert": _alert(preview.alert),
        "options": _options(preview.options),
        "timeline": _timeline(preview.timeline),
        "compared": None
        if preview.compared is None or preview.compared_with is None
        else {
            "alert": _alert(preview.compared_with[0]),
            "options": _options(preview.compared_with[1]),
            "timeline": _timeline(preview.compared),
        },
    }


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "device_id": alert.device_id,
        "metric": alert.metric,
        "operator": alert.operator.value,
        "threshold_value": alert.threshold,
    }


def _options(options: RuleOptions) -> dict[str, Any]:
    return {
        "pending_seconds": options.pending.total_seconds(),
        "recovery_margin": options.recovery_margin,
        "no_data_after_seconds": None
        if options.no_data_after is None
        else options.no_data_after.total_seconds(),
    }


def _timeline(timeline: Timeline) -> dict[str, Any]:
    return {
        "from": timeline.start.isoformat(),
        "to": timeline.end.isoformat(),
        "step_seconds": timeline.step.total_seconds(),
        "counts": {
            "events": len(timeline.threshold_events),
            "no_data_events": len(timeline.no_data_events),
            "time_in_alert_seconds": timeline.time_in_alert.total_seconds(),
            "flaps": timeline.flaps,
            "evaluations": len(timeline.evaluations),
        },
        "events": [
            {
                "kind": e.kind.value,
                "opened_at": e.opened_at.isoformat(),
                "value": e.value,
                "resolved_at": None if e.resolved_at is None else e.resolved_at.isoformat(),
                "resolution_value": e.resolution_value,
                "condition_since": None
                if e.condition_since is None
                else e.condition_since.isoformat(),
            }
            for e in timeline.events
        ],
        "evaluations": [
            {"at": e.at.isoformat(), "outcome": e.outcome, "value": e.value, "reason": e.reason}
            for e in timeline.evaluations
        ],
        "warnings": list(timeline.warnings),
    }
