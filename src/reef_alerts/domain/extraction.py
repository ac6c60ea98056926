"""The metric extractor: which number in a reading an alert's metric names (see ADR 0002)."""

from __future__ import annotations

import contextlib
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
    if json_value is not None and isinstance(json_value, Mapping):  # a multi-metric reading
        raw = _lookup(json_value, metric)
        if raw is not _MISSING:
            return _number(raw, metric, "json_value")
    elif reading.value is not None:
        return _number(reading.value, metric, "value")
    metadata = reading.metadata
    if metadata is not None and isinstance(metadata, Mapping):
        raw = _lookup(metadata, metric)
        if raw is not _MISSING:
            return _number(raw, metric, "metadata")
    return NoMetric(f"metric {quoted(metric)} not in reading {reading.id}", invalid=False)


def _lookup(document: Mapping[str, JSON], metric: str) -> object:
    """`document[metric]`, or the dotted path `a.b.c` through nested objects; _MISSING if absent."""
    if metric in document:
        return document[metric]
    node: object = document
    for key in metric.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _number(raw: object, metric: str, source: Source) -> tuple[float, Source] | NoMetric:
    """`raw` as a finite float if it is a number (not a bool) or a numeric string; else why not."""
    number: float | None = None
    if isinstance(raw, float):
        number = raw
    elif isinstance(raw, int) and not isinstance(raw, bool):
        with contextlib.suppress(OverflowError):
            number = float(raw)
    elif isinstance(raw, str) and _NUMERIC.fullmatch(raw):
        number = float(raw)
    if number is None or not math.isfinite(number):
        kind = "null" if raw is None else type(raw).__name__
        shown = quoted(raw)  # a whole JSON object would flood the log
        return NoMetric(
            f"{quoted(metric)} in {source} is not a finite number: {shown} ({kind})", True
        )
    return number, source
