"""The specification's algorithm, one alert at a time: the peer reef_alerts is measured against.

Written as the worker README describes "Alert Evaluation Logic": one query for the enabled alerts,
then for each alert a device lookup, its latest reading (within 5 minutes for polling devices),
the metric (json_value, then value, then metadata), the threshold test, an open-event lookup, an
insert or a resolve, and a commit. Plain SQLAlchemy Core on the shared tables. It shares no code
with reef_alerts beyond the table definitions, on purpose: a peer that reused the worker's
statistics or evaluation could not catch their mistakes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from reef_alerts.adapters.tables import SharedTables

MAX_READING_AGE = timedelta(minutes=5)
EQUALITY_TOLERANCE = 0.001


@attrs.define
class ReferenceStats:
    """The worker README's statistics for one cycle."""

    total_alerts: int = 0
    evaluated: int = 0
    triggered: int = 0
    resolved: int = 0
    skipped: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


def run_reference_cycle(
    engine: sa.Engine, tables: SharedTables, now: datetime | None = None
) -> ReferenceStats:
    """Evaluate every enabled alert once, committing alert by alert."""
    now = now or datetime.now(UTC)
    stats = ReferenceStats()
    alerts = tables.alerts
    with engine.connect() as conn:
        enabled = conn.execute(
            sa.select(alerts).where(alerts.c.is_enabled.is_(True)).order_by(alerts.c.id)
        ).all()
        conn.commit()
        stats.total_alerts = len(enabled)
        for alert in enabled:
            try:
                outcome = _evaluate_alert(conn, tables, alert, now)
                conn.commit()
            except Exception:  # noqa: BLE001 - as the spec says: log and go on to the next alert
                conn.rollback()
                stats.errors += 1
                continue
            if outcome == "skipped":
                stats.skipped += 1
                continue
            stats.evaluated += 1
            stats.triggered += outcome == "triggered"
            stats.resolved += outcome == "resolved"
    return stats


def _evaluate_alert(conn: Connection, tables: SharedTables, alert: Row[Any], now: datetime) -> str:
    devices, history, alert_events = tables.devices, tables.history, tables.alert_events
    device = conn.execute(sa.select(devices).where(devices.c.id == alert.device_id)).first()
    if device is None or not device.is_active:
        return "skipped"
    latest = sa.select(history).where(history.c.device_id == device.id)
    if device.poll_enabled:
        latest = latest.where(history.c.timestamp >= now - MAX_READING_AGE)
    reading = conn.execute(latest.order_by(history.c.timestamp.desc()).limit(1)).first()
    if reading is None:
        return "skipped"
    value = extract_metric_value(
        reading.value, reading.json_value, reading._mapping[history.c.metadata_], alert.metric
    )
    if value is None:
        return "skipped"
    exceeded = threshold_exceeded(value, alert.operator, alert.threshold_value)

    open_event = conn.execute(
        sa.select(alert_events.c.id)
        .where(alert_events.c.alert_id == alert.id, alert_events.c.is_resolved.is_(False))
        .order_by(alert_events.c.triggered_at.desc())
        .limit(1)
    ).first()
    if exceeded and open_event is None:
        conn.execute(
            alert_events.insert().values(_event_values(alert, device, reading, value, now))
        )
        return "triggered"
    if not exceeded and open_event is not None:
        conn.execute(
            alert_events.update()
            .where(alert_events.c.id == open_event.id)
            .values(is_resolved=True, resolved_at=now, resolution_value=value)
        )
        return "resolved"
    return "evaluated"


def extract_metric_value(
    value: object, json_value: object, metadata: object, metric: str
) -> float | None:
    """`json_value[metric]` (dotted paths allowed), else `value`, else `metadata[metric]`."""
    found = _lookup(json_value, metric)
    if found is None and value is not None:
        found = value
    if found is None:
        found = _lookup(metadata, metric)
    try:
        number = float(found)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _lookup(document: object, metric: str) -> object:
    if not isinstance(document, Mapping):
        return None
    if metric in document:
        return document[metric]
    node: object = document
    for key in metric.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def threshold_exceeded(value: float, operator: str, threshold: float) -> bool:
    """The spec's six operators; `==` and `!=` compare within 0.001."""
    if operator == ">":
        return value > threshold
    if operator == "<":
        return value < threshold
    if operator == ">=":
        return value >= threshold
    if operator == "<=":
        return value <= threshold
    if operator == "==":
        return abs(value - threshold) < EQUALITY_TOLERANCE
    if operator == "!=":
        return abs(value - threshold) >= EQUALITY_TOLERANCE
    raise ValueError(f"unknown operator {operator!r}")


def _event_values(
    alert: Row[Any], device: Row[Any], reading: Row[Any], value: float, now: datetime
) -> dict[str, Any]:
    return {
        "alert_id": alert.id,
        "device_id": device.id,
        "triggered_at": now,
        "current_value": value,
        "threshold_value": alert.threshold_value,
        "operator": alert.operator,
        "metric": alert.metric,
        "is_resolved": False,
        "metadata_": {
            "reading_id": reading.id,
            "reading_timestamp": reading.timestamp.isoformat(),
            "device_name": device.name,
            "device_type": device.device_type,
            "unit": device.unit,
        },
    }
