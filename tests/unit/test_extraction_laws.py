"""Hypothesis laws of the metric extractor, over any JSON the controller may have stored."""

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.domain import Metric, NoMetric, Reading, extract_metric
from tests.strategies import finite_floats, json_values, metric_names, readings

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
path_keys = st.lists(st.text(alphabet="abcdefghij_0123456789", min_size=1), min_size=1, max_size=3)
"""The keys of a dotted path; no key contains a dot."""


def nest(keys: list[str], leaf: object) -> dict[str, object]:
    """{"a": {"b": leaf}} for keys ["a", "b"]."""
    document: object = leaf
    for key in reversed(keys):
        document = {key: document}
    assert isinstance(document, dict)
    return document


@given(readings, metric_names)
def test_extraction_never_raises_on_any_json_value(reading, metric):
    """For any reading whose fields hold any JSON values, extraction returns Metric or NoMetric."""
    assert isinstance(extract_metric(reading, metric), Metric | NoMetric)


@given(readings, metric_names)
def test_an_extracted_metric_is_always_a_finite_float(reading, metric):
    """A Metric's value is a float (never a bool, int or str), and never NaN or infinite."""
    found = extract_metric(reading, metric)
    if isinstance(found, Metric):
        assert type(found.value) is float
        assert math.isfinite(found.value)
        assert found.source in {"json_value", "value", "metadata"}
    else:
        assert found.reason


@given(readings, metric_names)
def test_a_metric_present_in_json_value_is_decided_there(reading, metric):
    """If json_value is an object holding the metric key, the answer comes from json_value:
    its number, or NoMetric(invalid) - never value or metadata."""
    found = extract_metric(reading, metric)
    if isinstance(reading.json_value, Mapping) and metric in reading.json_value:
        if isinstance(found, Metric):
            assert found.source == "json_value"
        else:
            assert found.invalid


@given(path_keys, st.booleans(), st.none() | finite_floats, json_values)
def test_booleans_never_become_numbers(keys, flag, value, metadata):
    """A bool stored under the metric (at any depth) is invalid, never 0.0 or 1.0, and it does
    not fall through to value or metadata."""
    reading = Reading(
        id=1,
        device_id=1,
        timestamp=NOW,
        value=value,
        json_value=nest(keys, flag),
        metadata=metadata,
    )
    found = extract_metric(reading, ".".join(keys))
    assert isinstance(found, NoMetric)
    assert found.invalid


@given(path_keys, finite_floats, st.booleans(), json_values)
def test_a_finite_number_at_the_metrics_path_is_extracted_exactly(keys, number, as_text, metadata):
    """A finite number, or the string repr() spells it with, stored at the metric's dotted path
    in json_value, is the extracted value, whatever value and metadata hold."""
    leaf = repr(number) if as_text else number
    reading = Reading(
        id=1,
        device_id=1,
        timestamp=NOW,
        value=-1.0,
        json_value=nest(keys, leaf),
        metadata=metadata,
    )
    assert extract_metric(reading, ".".join(keys)) == Metric(number, "json_value")


@given(json_values, json_values, metric_names)
def test_a_non_object_json_value_has_no_metrics(json_value, metadata, metric):
    """A json_value that is not an object (list, string, number, bool, null) contributes
    nothing: the result is what value and metadata alone give."""
    if isinstance(json_value, Mapping):
        json_value = [json_value]
    with_it = Reading(
        id=1, device_id=1, timestamp=NOW, value=None, json_value=json_value, metadata=metadata
    )
    without_it = Reading(
        id=1, device_id=1, timestamp=NOW, value=None, json_value=None, metadata=metadata
    )
    assert _same(extract_metric(with_it, metric), extract_metric(without_it, metric))


def _same(left: Metric | NoMetric, right: Metric | NoMetric) -> bool:
    # NoMetric reasons can quote NaN, which is never == itself, so compare the reprs
    return repr(left) == repr(right)
