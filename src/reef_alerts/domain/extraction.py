"""The metric extractor: which number in a reading an alert's metric names (see ADR 0002)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final, Literal

import attrs

from reef_alerts.domain.model import JSON, Reading, quoted

Source = Literal["json_value", "value", "metadata"]


@attrs.frozen
class Metric:
    """The metric's value and the field it came from."""

    value: float
    source: Source


@attrs.frozen
class NoMetric:
    """Why a reading gives no usable number for the metric."""

    reason: str
    invalid: bool
    """True when the metric is present but its value is not a finite number; False when absent."""


_MISSING: Final = object()
# A decimal number as JSON and controllers write it, blanks around it allowed; unlike float(),
# no "nan", "inf", "1_000" or non-ASCII digits.
_NUMERIC: Final = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)


def extract_metric(reading: Reading, metric: str) -> Metric | NoMetric:
    """The number for `metric`: `json_value[metric]`, else `value`, else `metadata[metric]`.

    `value` stands for any metric only in a simple reading, one whose `json_value` is not an
    object: a multi-sensor's `value` is one of its channels, not the one the alert names. A metric
    found in a field decides the answer there: an unusable value is not replaced by a later
    field, because it would be a different measurement.
    """
    multi_metric = _is_object(reading.json_value)
    found = _lookup(reading.json_value, metric) if multi_metric else _MISSING
    if found is not _MISSING:
        return _as_metric(found, metric, "json_value")
    if reading.value is not None and not multi_metric:
        return _as_metric(reading.value, metric, "value")
    found = _lookup(reading.metadata, metric)
    if found is not _MISSING:
        return _as_metric(found, metric, "metadata")
    return NoMetric(f"metric {quoted(metric)} not in reading {reading.id}", invalid=False)


def _lookup(document: JSON, metric: str) -> object:
    """`document[metric]`, or the dotted path `a.b.c` through nested objects; _MISSING if absent."""
    if not _is_object(document):
        return _MISSING
    if metric in document:
        return document[metric]
    node: object = document
    for key in metric.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _is_object(document: object) -> bool:
    return isinstance(document, Mapping)


def _as_metric(raw: object, metric: str, source: Source) -> Metric | NoMetric:
    number = as_finite_number(raw)
    if number is None:
        kind = "null" if raw is None else type(raw).__name__
        shown = quoted(raw)  # a whole JSON object would flood the log
        return NoMetric(
            f"{quoted(metric)} in {source} is not a finite number: {shown} ({kind})", True
        )
    return Metric(number, source)


def as_finite_number(raw: object) -> float | None:
    """`raw` as a finite float if it is a number or a numeric string; None otherwise (bools too)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:
            return None
    elif isinstance(raw, str):
        if not _NUMERIC.fullmatch(raw):
            return None
        number = float(raw)
    else:
        return None
    return number if math.isfinite(number) else None
