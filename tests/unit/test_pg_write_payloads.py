"""PostgreSQL's writes take their rows as JSON arrays: each row must carry exactly the columns
the statement's json_to_recordset declares, or a value would be silently dropped or NULL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from reef_alerts.adapters.events import _Encoded, _postgres_writes
from reef_alerts.adapters.tables import CURRENT, LEGACY, OPEN_EVENT_INDEX, SharedTables
from reef_alerts.domain import AlertEvent, Operator, Resolution
from reef_alerts.ports import EventChanges

AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _declared_columns(sql: str, alias: str) -> list[str]:
    declared = re.search(rf"AS {alias}\((.*?)\)\n", sql, re.DOTALL)
    assert declared is not None, f"no json_to_recordset ... AS {alias}(...) in the statement"
    return [column.split()[0] for column in declared.group(1).split(",")]


GENERATIONS = pytest.mark.parametrize("tables", [LEGACY, CURRENT], ids=["legacy", "current"])


@GENERATIONS
def test_an_opened_event_row_carries_exactly_the_columns_the_insert_declares(
    tables: SharedTables,
) -> None:
    event = AlertEvent(
        alert_id=7,
        device_id=3,
        triggered_at=AT,
        current_value=82.4,
        threshold_value=82.0,
        operator=Operator.GT,
        metric="temperature",
        metadata={"device_name": "Heater", "reading_id": 11},
    )

    encoded = _Encoded.of(EventChanges(opened=[event], resolved=[]), tables)

    assert encoded.opened is not None
    (row,) = json.loads(encoded.opened)
    insert = _postgres_writes(tables).inserts[OPEN_EVENT_INDEX]
    assert sorted(row) == sorted(_declared_columns(insert, "opened"))
    assert row["operator"] == ">"
    assert row["triggered_at"] == "2024-06-01T12:00:00+00:00"
    metadata_column = tables.alert_events.c.metadata_.name
    assert row[metadata_column] == {"device_name": "Heater", "reading_id": 11}


@GENERATIONS
def test_a_resolution_row_carries_exactly_the_columns_the_update_declares(
    tables: SharedTables,
) -> None:
    resolution = Resolution(event_id=5, alert_id=7, resolved_at=AT, value=81.4)

    encoded = _Encoded.of(EventChanges(opened=[], resolved=[resolution]), tables)

    assert encoded.resolved is not None
    (row,) = json.loads(encoded.resolved)
    resolve = _postgres_writes(tables).resolve
    assert sorted(row) == sorted(_declared_columns(resolve, "resolution"))
    assert row == {"id": 5, "resolved_at": "2024-06-01T12:00:00+00:00", "value": 81.4}
