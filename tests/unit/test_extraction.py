"""The metric extractor: json_value first (dotted paths too), then value, then metadata."""

import math
from datetime import UTC, datetime

import pytest

from reef_alerts.domain import Metric, NoMetric, Reading, extract_metric

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def reading(value=None, json_value=None, metadata=None) -> Reading:
    return Reading(
        id=7, device_id=1, timestamp=NOW, value=value, json_value=json_value, metadata=metadata
    )


def test_reads_the_metric_from_json_value_before_value_and_metadata():
    found = extract_metric(
        reading(value=70.0, json_value={"temperature": 85.2}, metadata={"temperature": 60.0}),
        "temperature",
    )
    assert found == Metric(85.2, "json_value")


def test_follows_a_dotted_path_into_nested_json_objects():
    found = extract_metric(
        reading(json_value={"probe1": {"temperature": 78.4}, "probe2": {"temperature": 79.0}}),
        "probe1.temperature",
    )
    assert found == Metric(78.4, "json_value")


def test_follows_dotted_paths_several_levels_deep():
    document = {"sump": {"probe1": {"temperature": 77.0}}}
    found = extract_metric(reading(json_value=document), "sump.probe1.temperature")
    assert found == Metric(77.0, "json_value")


def test_a_key_that_literally_contains_the_dots_wins_over_the_nested_path():
    document = {"probe1.temperature": 1.0, "probe1": {"temperature": 2.0}}
    assert extract_metric(reading(json_value=document), "probe1.temperature") == Metric(
        1.0, "json_value"
    )


@pytest.mark.parametrize(
    "document",
    [
        {"probe1": [78.4]},
        {"probe1": "78.4"},
        {"probe1": None},
        {"probe1": {"ph": 8.1}},
        {"probe2": {"temperature": 78.4}},
    ],
)
def test_a_dotted_path_that_does_not_reach_a_value_is_absent_from_json_value(document):
    found = extract_metric(
        reading(json_value=document, value=80.0, metadata={"probe1": {"temperature": 79.5}}),
        "probe1.temperature",
    )
    assert found == Metric(79.5, "metadata")


def test_a_multi_sensor_value_never_stands_in_for_a_metric_its_json_lacks():
    multi_sensor = reading(value=78.4, json_value={"temperature": 78.4, "salinity": 35.1})

    found = extract_metric(multi_sensor, "ph")

    assert found == NoMetric("metric 'ph' not in reading 7", invalid=False)


@pytest.mark.parametrize("json_value", [None, [1, 2], "warm", 3])
def test_value_stands_for_any_metric_when_json_value_is_not_an_object(json_value):
    found = extract_metric(reading(value=80.0, json_value=json_value), "temperature")

    assert found == Metric(80.0, "value")


def test_a_multi_sensor_reading_without_the_metric_falls_back_to_metadata_not_value():
    found = extract_metric(
        reading(value=80.5, json_value={"ph": 8.1}, metadata={"temperature": 79.0}), "temperature"
    )
    assert found == Metric(79.0, "metadata")


def test_value_stands_for_any_metric_of_a_simple_reading():
    assert extract_metric(reading(value=8.1), "ph") == Metric(8.1, "value")


def test_falls_back_to_metadata_when_json_value_lacks_the_metric_and_value_is_null():
    found = extract_metric(
        reading(json_value={"ph": 8.1}, metadata={"temperature": 79.5}), "temperature"
    )
    assert found == Metric(79.5, "metadata")


def test_follows_dotted_paths_in_metadata_too():
    found = extract_metric(
        reading(metadata={"probe1": {"temperature": 79.5}}), "probe1.temperature"
    )
    assert found == Metric(79.5, "metadata")


def test_reports_a_missing_metric_when_no_field_has_it():
    found = extract_metric(reading(json_value={"ph": 8.1}, metadata={"note": "x"}), "temperature")
    assert isinstance(found, NoMetric)
    assert not found.invalid
    assert found.reason == "metric 'temperature' not in reading 7"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("85.2", 85.2),
        (" 7.9 ", 7.9),
        ("-3", -3.0),
        ("1e2", 100.0),
        (8, 8.0),
        (-0.0, 0.0),
        (2**53 + 1, float(2**53 + 1)),
    ],
)
def test_numbers_and_numeric_strings_count_as_the_float_they_spell(raw, expected):
    found = extract_metric(reading(json_value={"temperature": raw}), "temperature")
    assert found == Metric(expected, "json_value")
    assert type(found.value) is float


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (True, "bool"),
        (False, "bool"),
        (math.nan, "float"),
        (math.inf, "float"),
        (-math.inf, "float"),
        (10**400, "int"),
        ("warm", "str"),
        ("", "str"),
        ("nan", "str"),
        ("inf", "str"),
        ("1e999", "str"),
        ("1_000", "str"),
        ("\u0661\u0662\u0663", "str"),  # Arabic-Indic digits, which float() would accept
        ([85.2], "list"),
        ({"value": 85.2}, "dict"),
        (None, "null"),
    ],
)
def test_a_value_that_is_not_a_finite_number_is_invalid_and_the_reason_says_why(raw, kind):
    found = extract_metric(reading(json_value={"temperature": raw}), "temperature")
    assert isinstance(found, NoMetric)
    assert found.invalid
    assert found.reason.startswith("'temperature' in json_value is not a finite number")
    assert found.reason.endswith(f"({kind})")


def test_the_reason_shows_a_large_value_shortened():
    found = extract_metric(reading(json_value={"temperature": list(range(10_000))}), "temperature")

    assert isinstance(found, NoMetric)
    assert len(found.reason) < 200


def test_an_invalid_value_in_json_value_does_not_fall_through_to_value():
    found = extract_metric(
        reading(value=80.0, json_value={"temperature": "warm"}, metadata={"temperature": 79.0}),
        "temperature",
    )
    assert isinstance(found, NoMetric)
    assert found.invalid
    assert "json_value" in found.reason


def test_an_invalid_value_field_does_not_fall_through_to_metadata():
    found = extract_metric(reading(value=math.nan, metadata={"temperature": 79.0}), "temperature")
    assert isinstance(found, NoMetric)
    assert found.invalid
    assert found.reason == "'temperature' in value is not a finite number: nan (float)"


def test_a_boolean_value_field_is_invalid_rather_than_one():
    found = extract_metric(reading(value=True), "temperature")
    assert isinstance(found, NoMetric)
    assert found.invalid
    assert found.reason.endswith("(bool)")


def test_an_invalid_value_in_metadata_is_invalid():
    found = extract_metric(reading(metadata={"temperature": "n/a"}), "temperature")
    assert isinstance(found, NoMetric)
    assert found.invalid
    assert "metadata" in found.reason


@pytest.mark.parametrize("document", [[85.2], [{"temperature": 85.2}], "85.2", 85.2, 0, True, None])
def test_json_value_that_is_not_an_object_has_no_metrics(document):
    assert extract_metric(reading(json_value=document, value=80.0), "temperature") == Metric(
        80.0, "value"
    )
    missing = extract_metric(reading(json_value=document), "temperature")
    assert isinstance(missing, NoMetric)
    assert not missing.invalid


@pytest.mark.parametrize("document", [[79.0], [{"temperature": 79.0}], "79.0", 79.0, False, None])
def test_metadata_that_is_not_an_object_has_no_metrics(document):
    found = extract_metric(reading(metadata=document), "temperature")
    assert isinstance(found, NoMetric)
    assert not found.invalid
