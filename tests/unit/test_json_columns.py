"""How the snapshot reads a JSON column's text: as json.loads would, whatever its layout."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from reef_alerts.adapters.snapshots import _decode, _decode_lazily

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
blanks = st.text(alphabet=" \t\r\n", max_size=3)


@given(json_values, blanks, blanks, st.booleans())
def test_a_json_column_reads_as_json_loads_reads_it_blanks_and_all(
    value: object, before: str, after: str, indented: bool
) -> None:
    text = before + json.dumps(value, indent=2 if indented else None) + after

    assert _decode(text) == json.loads(text)
    assert _decode_lazily(text) == json.loads(text)


@given(st.sampled_from(["Inf", "-Inf", "{", '{"a": 1} trailing', "[1, 2", ""]))
def test_text_that_is_not_json_reads_as_itself(text: str) -> None:
    assert _decode(text) == text
