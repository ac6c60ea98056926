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
    """The number for `metric` and the field it came from: `json_value[metric]`, else `value`,
    else `metadata[metric]`.

    `value` stands for any metric only in a simple reading, one whose `json_value` is not an
    object: a multi-sensor's `value` is one of its channels, not the one the alert names. A metric
    found in a field decides the answer there: an unusable value is not replaced by a later
    field, because it would be a different measurement.
    """
    found = locate_metric(reading, metric)
    if isinstance(found, NoMetric):
        return found
    return Metric(*found)


def locate_metric(reading: Reading, metric: str) -> tuple[float, Source] | NoMetric:
    """extract_metric's rule, its answer as a plain pair: what an evaluation asks once per
    alert, without building a Metric."""
    json_value = reading.json_value
    if _is_object(json_value):
        raw = _lookup(json_value, metric)
        if raw is not _MISSING:
            return _number(raw, metric, "json_value")
    elif reading.value is not None:
        return _number(reading.value, metric, "value")
    raw = _lookup(reading.metadata, metric)
    if raw is not _MISSING:
        return _number(raw, metric, "metadata")
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
    """Whether `document` is a JSON object; most readings have none (None), told at once."""
    return document is not None and isinstance(document, Mapping)


def _number(raw: object, metric: str, source: Source) -> tuple[float, Source] | NoMetric:
    number = as_finite_number(raw)
    if number is None:
        kind = "null" if raw is None else type(raw).__name__
        shown = quoted(raw)  # a whole JSON object would flood the log
        return NoMetric(
            f"{quoted(metric)} in {source} is not a finite number: {shown} ({kind})", True
        )
    return number, source


def as_finite_number(raw: object) -> float | None:
    """`raw` as a finite float if it is a number or a numeric string; None otherwise (bools too)."""
    if isinstance(raw, float):
        number = raw
    elif isinstance(raw, bool):
        return None
    elif isinstance(raw, int):
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
