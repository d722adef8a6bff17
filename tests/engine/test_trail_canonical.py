"""The trail's canonical text, written directly for the usual value types, is the encoder's
text to the byte: a chain written before (or by the encoder's path) still verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.store import trail

VALUES = st.one_of(
    st.none(), st.text(), st.integers(), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-7))])),
)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries(dict.fromkeys(trail._FIELDS, VALUES)))
def test_an_event_rows_text_is_the_encoders(row: dict[str, object]) -> None:
    assert trail._canonical(row) == trail._encoded(row, trail._FIELDS)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries(dict.fromkeys(trail._POLICY_FIELDS, VALUES)))
def test_a_policy_records_text_is_the_encoders(row: dict[str, object]) -> None:
    assert trail._canonical(row, trail._POLICY_FIELDS) == \
        trail._encoded(row, trail._POLICY_FIELDS)


class Kind(IntEnum):
    ONE = 1


def test_other_types_and_missing_fields_go_through_the_encoder() -> None:
    row = {"instance_id": Kind.ONE, "step_id": "Task_1", "at": datetime(2026, 1, 2, 3, 4, 5)}
    assert trail._canonical(row) == trail._encoded(row, trail._FIELDS)
    assert '"instance_id":1' in trail._canonical(row)
    assert trail._canonical({}) == trail._encoded({}, trail._FIELDS)
    assert trail._canonical({"a": 1}, ("a",)) == '{"a":1}'


def test_a_known_event_keeps_its_chain() -> None:
    row = {"instance_id": 7, "step_id": "Task_call", "kind": "completed", "actor": "dist-1",
           "data": '{"note":"café"}', "propensity": 0.25,
           "at": datetime(2026, 12, 6, 21, 0, 0, 123456, tzinfo=UTC)}
    assert trail._canonical(row) == (
        '{"actor":"dist-1","at":"2026-12-06T21:00:00.123456","content_shown":null,'
        '"content_used":null,"data":"{\\"note\\":\\"caf\\u00e9\\"}","hook":null,'
        '"instance_id":7,"kind":"completed","policy_version":null,"propensity":"0.25",'
        '"step_id":"Task_call"}')
