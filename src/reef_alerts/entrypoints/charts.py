"""What `reef-alerts preview` prints: the line a keeper reads first, a chart of the series with
its threshold and the spans events were open, drawn by plotext, and a table of the events."""

from __future__ import annotations

from datetime import datetime

import plotext as plt

from reef_alerts.application.preview import Preview
from reef_alerts.domain import (
    DEFAULT_OPTIONS,
    Alert,
    EventKind,
    NoMetric,
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
    others = [
        _plural(len(timeline.events_of(kind)), f"{kind.value.replace('_', '-')} event")
        for kind in (EventKind.NO_DATA, EventKind.FORECAST, EventKind.RATE)
        if timeline.events_of(kind)
    ]
    if others:
        said += f" and opened {', '.join(others)}"
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
    opened = _instants(preview.timeline, ("trigger", "firing"))
    if opened:
        plt.scatter([_date(t) for t in opened], [top] * len(opened), label="event open", marker="x")
    plt.title(_condition(preview, preview.alert))
    drawn = str(plt.build())
    return drawn if color else str(plt.uncolorize(drawn))


def _instants(timeline: Timeline, outcomes: tuple[str, ...]) -> list[datetime]:
    """The instants of the evaluations with one of `outcomes`."""
    return [
        segment.start + n * timeline.step
        for segment in timeline.segments
        if segment.outcome in outcomes
        for n in range(segment.evaluations)
    ]


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
