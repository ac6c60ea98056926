"""The realistic mix of devices, readings, alerts and events the benchmark loads, built from a seed.

Pure Python: rows are tuples in the column order of the `*_COLUMNS` constants, with aware
datetimes and bools; JSON is a dict, except in history rows, which carry it as JSON text.
`benchmarks.generate` writes them out.

The data avoids the cases where reef_alerts departs from the specification on purpose, so both
implementations must end a cycle with the same open events:
- a reading has either `value` or `json_value`, never both (the order of extraction is moot);
- no reading is in the future;
- a fresh reading is at most a minute old and a stale one at least fifteen minutes, while poll
  intervals are at most five minutes (so a 5-minute limit and max(5 min, 2 x poll) agree);
- thresholds are either exactly the value or at least 0.5 away from it (tolerance is moot).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

Row = tuple[Any, ...]

DEVICE_COLUMNS: Final = (
    "id",
    "name",
    "device_type",
    "address",
    "poll_enabled",
    "poll_interval",
    "unit",
    "is_active",
    "created_at",
)
HISTORY_COLUMNS: Final = ("id", "device_id", "timestamp", "value", "json_value", "metadata")
ALERT_COLUMNS: Final = (
    "id",
    "device_id",
    "metric",
    "operator",
    "threshold_value",
    "is_enabled",
    "trend_enabled",
    "created_at",
)
EVENT_COLUMNS: Final = (
    "id",
    "alert_id",
    "device_id",
    "triggered_at",
    "current_value",
    "threshold_value",
    "operator",
    "metric",
    "is_resolved",
    "resolved_at",
    "resolution_value",
    "metadata",
)

# metric -> (device_type, unit, low, high) of a single-metric probe
PROBES: Final = {
    "temperature": ("temperature_probe", "F", 76.0, 82.0),
    "ph": ("ph_probe", "pH", 7.8, 8.4),
    "salinity": ("salinity_probe", "ppt", 33.0, 36.0),
    "orp": ("orp_probe", "mV", 300.0, 420.0),
}
MULTI_METRICS: Final = ("temperature", "ph", "salinity", "probe1.temperature")
METADATA_METRIC: Final = "signal_strength"
MISSING_METRIC: Final = "nitrate"
POLL_INTERVALS: Final = (10, 30, 60, 60, 60, 120, 300)
OPERATORS: Final = (">", "<", ">=", "<=", "==", "!=")
OPERATOR_WEIGHTS: Final = (40, 40, 8, 8, 2, 2)


@attrs.frozen
class Proportions:
    """The shares of each kind of row; per device or per alert as named."""

    inactive_devices: float = 0.03
    stale_devices: float = 0.05
    """Polled devices whose newest reading is 15 minutes to 3 hours old."""
    unpolled_devices: float = 0.02
    """Devices the controller does not poll: their old readings never go stale."""
    multi_sensor_devices: float = 0.30
    disabled_alerts: float = 0.05
    missing_metric_alerts: float = 0.02
    metadata_metric_alerts: float = 0.01
    dotted_metric_share: float = 0.25
    """Of the alerts on multi-sensor devices that name a JSON metric."""
    firing_alerts: float = 0.115
    """Chance that an alert's condition holds; about 10 % of all alerts then trigger."""
    open_events: float = 0.03
    open_event_still_firing: float = 0.5
    """Chance that an alert with an open event still holds; the others resolve."""
    past_resolved_events: float = 0.2


@attrs.frozen
class DevicePlan:
    """What the generator decided about one device."""

    id: int
    metric: str | None
    """The probe's single metric; None for a multi-sensor device."""
    active: bool
    polled: bool
    poll_interval: int
    newest_age: float
    """Seconds between the newest reading and `now`."""
    newest: dict[str, float]
    """The newest reading's value of each metric it carries."""

    @property
    def fresh(self) -> bool:
        return not self.polled or self.newest_age < 300


@attrs.frozen
class Expected:
    """What one correct cycle does to this data, known by construction."""

    open_alert_ids: frozenset[int] = attrs.field(repr=False)
    """Alerts with an unresolved event after the cycle."""
    triggered: int
    resolved: int
    evaluated: int


@attrs.define
class Dataset:
    """The rows to load; history is produced lazily because it is the bulk."""

    now: datetime
    readings_per_device: int
    seed: int
    devices: list[Row]
    alerts: list[Row]
    events: list[Row]
    expected: Expected
    plans: list[DevicePlan]

    def history(self) -> Iterator[Row]:
        """Readings round by round, oldest first, so ids grow with time as in a live database."""
        rng = random.Random(self.seed + 1)
        reading_id = 0
        for back in reversed(range(self.readings_per_device)):
            for plan in self.plans:
                reading_id += 1
                age = plan.newest_age + back * plan.poll_interval
                values = plan.newest if back == 0 else _jitter(rng, plan.newest)
                yield _reading(reading_id, plan, self.now - timedelta(seconds=age), values, rng)

    @property
    def history_rows(self) -> int:
        return len(self.plans) * self.readings_per_device


def build(alerts: int, readings_per_device: int, now: datetime, seed: int = 20240601) -> Dataset:
    """`alerts` devices with `readings_per_device` readings each and `alerts` alerts."""
    shares = Proportions()
    rng = random.Random(seed)
    plans = [_plan_device(rng, device_id, shares) for device_id in range(1, alerts + 1)]
    devices = [_device_row(plan, now) for plan in plans]
    alert_rows: list[Row] = []
    event_rows: list[Row] = []
    open_ids: set[int] = set()
    triggered = resolved = evaluated = 0
    for alert_id in range(1, alerts + 1):
        plan = plans[rng.randrange(alerts)]
        enabled = rng.random() >= shares.disabled_alerts
        metric = _choose_metric(rng, plan, shares)
        operator = rng.choices(OPERATORS, OPERATOR_WEIGHTS)[0]
        has_open = rng.random() < shares.open_events
        holds = rng.random() < (
            shares.open_event_still_firing if has_open else shares.firing_alerts
        )
        value = plan.newest.get(metric)
        threshold = _threshold(rng, operator, value if value is not None else 50.0, holds)
        alert_rows.append(
            (alert_id, plan.id, metric, operator, threshold, enabled, False, now - _days(rng, 400))
        )
        if rng.random() < shares.past_resolved_events:
            event_rows.append(_past_event(rng, len(event_rows) + 1, alert_id, plan, now, metric))
        if has_open:
            event_rows.append(
                _open_event(
                    rng, len(event_rows) + 1, alert_id, plan, now, metric, operator, threshold
                )
            )
        judged = enabled and plan.active and plan.fresh and value is not None
        if judged:
            evaluated += 1
            triggered += holds and not has_open
            resolved += has_open and not holds
        if holds if judged else has_open:  # an alert that cannot be judged keeps its event
            open_ids.add(alert_id)
    expected = Expected(frozenset(open_ids), triggered, resolved, evaluated)
    return Dataset(now, readings_per_device, seed, devices, alert_rows, event_rows, expected, plans)


def _plan_device(rng: random.Random, device_id: int, shares: Proportions) -> DevicePlan:
    multi = rng.random() < shares.multi_sensor_devices
    metric = None if multi else rng.choice(list(PROBES))
    draw = rng.random()
    polled = draw >= shares.unpolled_devices
    stale = polled and draw < shares.unpolled_devices + shares.stale_devices
    if stale:
        age = rng.uniform(15 * 60, 3 * 3600)
    elif polled:
        age = rng.uniform(1, 60)
    else:
        age = rng.uniform(3600, 6 * 3600)
    metrics = MULTI_METRICS if metric is None else (metric,)
    newest = {name: _sample(rng, name) for name in metrics}
    newest[METADATA_METRIC] = float(rng.randint(-90, -40))
    return DevicePlan(
        id=device_id,
        metric=metric,
        active=rng.random() >= shares.inactive_devices,
        polled=polled,
        poll_interval=rng.choice(POLL_INTERVALS),
        newest_age=age,
        newest=newest,
    )


def _device_row(plan: DevicePlan, now: datetime) -> Row:
    device_type, unit = ("multi_sensor", None)
    if plan.metric is not None:
        device_type, unit, _, _ = PROBES[plan.metric]
    address = f"10.{plan.id // 65536 % 256}.{plan.id // 256 % 256}.{plan.id % 256}"
    return (
        plan.id,
        _device_name(plan),
        device_type,
        address,
        plan.polled,
        plan.poll_interval,
        unit,
        plan.active,
        now - timedelta(days=365),
    )


def _device_name(plan: DevicePlan) -> str:
    kind = "multi_sensor" if plan.metric is None else PROBES[plan.metric][0]
    return f"{kind} {plan.id}"


def _choose_metric(rng: random.Random, plan: DevicePlan, shares: Proportions) -> str:
    if plan.metric is not None:
        return plan.metric
    draw = rng.random() * shares.multi_sensor_devices  # shares below are of all alerts
    if draw < shares.missing_metric_alerts:
        return MISSING_METRIC
    if draw < shares.missing_metric_alerts + shares.metadata_metric_alerts:
        return METADATA_METRIC
    if rng.random() < shares.dotted_metric_share:
        return "probe1.temperature"
    return rng.choice(MULTI_METRICS[:3])


def _threshold(rng: random.Random, operator: str, value: float, holds: bool) -> float:
    """A threshold at which `value <operator> threshold` is `holds`, never near the tolerance."""
    gap = round(rng.uniform(0.5, 3.0), 2)
    above, below, exact = round(value + gap, 2), round(value - gap, 2), value
    choices = {
        ">": (below, above),
        "<": (above, below),
        ">=": (rng.choice((below, exact)), above),
        "<=": (rng.choice((above, exact)), below),
        "==": (exact, rng.choice((above, below))),
        "!=": (rng.choice((above, below)), exact),
    }
    if_holds, if_not = choices[operator]
    return if_holds if holds else if_not


def _reading(
    reading_id: int, plan: DevicePlan, at: datetime, values: dict[str, float], rng: random.Random
) -> Row:
    # JSON written as text here: json.dumps for half a million rows would dominate the load.
    metadata = f'{{"source": "poller", "{METADATA_METRIC}": {values[METADATA_METRIC]}}}'
    if plan.metric is not None:
        return (reading_id, plan.id, at, values[plan.metric], None, metadata)
    ok = "true" if rng.random() < 0.99 else "false"
    document = (
        f'{{"temperature": {values["temperature"]}, "ph": {values["ph"]}, '
        f'"salinity": {values["salinity"]}, '
        f'"probe1": {{"temperature": {values["probe1.temperature"]}, "ok": {ok}}}}}'
    )
    return (reading_id, plan.id, at, None, document, metadata)


def _open_event(
    rng: random.Random,
    event_id: int,
    alert_id: int,
    plan: DevicePlan,
    now: datetime,
    metric: str,
    operator: str,
    threshold: float,
) -> Row:
    triggered_at = now - timedelta(minutes=rng.uniform(10, 2 * 24 * 60))
    value = plan.newest.get(metric, threshold)
    metadata = {"device_name": _device_name(plan), "unit": None}
    return (
        event_id,
        alert_id,
        plan.id,
        triggered_at,
        value,
        threshold,
        operator,
        metric,
        False,
        None,
        None,
        metadata,
    )


def _past_event(
    rng: random.Random, event_id: int, alert_id: int, plan: DevicePlan, now: datetime, metric: str
) -> Row:
    triggered_at = now - _days(rng, 90) - timedelta(days=3)
    resolved_at = triggered_at + timedelta(minutes=rng.uniform(5, 600))
    value = plan.newest.get(metric, 1.0)
    return (
        event_id,
        alert_id,
        plan.id,
        triggered_at,
        value,
        value,
        ">",
        metric,
        True,
        resolved_at,
        value,
        None,
    )


def _sample(rng: random.Random, metric: str) -> float:
    _, _, low, high = PROBES[metric.rsplit(".", 1)[-1]]
    return round(rng.uniform(low, high), 2)


def _jitter(rng: random.Random, values: dict[str, float]) -> dict[str, float]:
    drift = rng.uniform(-0.3, 0.3)
    return {name: round(value + drift, 2) for name, value in values.items()}


def _days(rng: random.Random, most: int) -> timedelta:
    return timedelta(days=rng.uniform(0, most))
