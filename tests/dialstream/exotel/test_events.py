"""The internal leg-event model: Exotel's event JSON in, validated LegEvent out."""

from __future__ import annotations

import pytest

from dialstream.errors import InvalidEvent
from dialstream.exotel.events import LegEvent, parse_timestamp

DOCUMENTED_EVENT = {
    "event_sid": "2QmZ1DghXqX1iU9PUrfexRHkECU00000",
    "event_type": "leg_action_event",
    "event_name": "leg_answered",
    "event_timestamp": "2026-01-15T10:30:00.529Z",
    "action_sid": "act1",
    "action_custom_parameter": "your-tracking-value",
    "event_data": {"data": {}},
    "data": {
        "leg_sid": "2QYATxQ9t4UKcUwcqJClSa9OEZ400000",
        "account_sid": "exotel60",
        "contact_uri": "+91XXXXXXXXXX",
        "state": "in-progress",
        "end_time": None,
    },
}


def test_documented_payload_parses_with_routing_from_the_snapshot():
    """The documented HTTPS event payload parses; leg_sid and account_sid come from `data`."""
    event = LegEvent.from_dict(DOCUMENTED_EVENT)
    assert event.leg_sid == "2QYATxQ9t4UKcUwcqJClSa9OEZ400000"
    assert event.account_sid == "exotel60"
    assert event.event_name == "leg_answered"
    assert event.timestamp == pytest.approx(1768473000.529)
    assert event.action_custom_parameter == "your-tracking-value"


def test_round_trip_through_the_task_payload():
    """to_dict output is JSON-safe and parses back to an equal event."""
    event = LegEvent.from_dict({**DOCUMENTED_EVENT, "received_at": 12.5})
    assert LegEvent.from_dict(event.to_dict()) == event


@pytest.mark.parametrize("field", ["event_sid", "event_type", "event_name", "event_timestamp"])
def test_missing_required_field_is_named_in_the_error(field):
    """An event without a required field is rejected with that field's name."""
    raw = {k: v for k, v in DOCUMENTED_EVENT.items() if k != field}
    with pytest.raises(InvalidEvent) as info:
        LegEvent.from_dict(raw)
    assert info.value.field == field


def test_event_without_any_leg_sid_is_rejected():
    """Without leg_sid at the top level or in the snapshot, the event cannot be routed."""
    raw = {**DOCUMENTED_EVENT, "data": {"state": "connected"}}
    with pytest.raises(InvalidEvent, match="data.leg_sid"):
        LegEvent.from_dict(raw)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"event_sid": 42}, "event_sid"),
        ({"event_type": "bogus_event"}, "event_type"),
        ({"data": ["not", "an", "object"]}, "data"),
        ({"event_data": "text"}, "event_data"),
        ({"event_timestamp": "yesterday"}, "event_timestamp"),
    ],
)
def test_mistyped_fields_are_rejected(change, field):
    """Fields of the wrong type are rejected, naming the field."""
    with pytest.raises(InvalidEvent) as info:
        LegEvent.from_dict({**DOCUMENTED_EVENT, **change})
    assert info.value.field == field


def test_non_object_payload_is_rejected():
    """A JSON array or string is not an event."""
    with pytest.raises(InvalidEvent):
        LegEvent.from_dict(["event"])


def test_unknown_event_names_are_kept():
    """Exotel adds events over time: an unknown name is accepted for the workers to ignore."""
    event = LegEvent.from_dict({**DOCUMENTED_EVENT, "event_name": "recording_available"})
    assert event.event_name == "recording_available"


@pytest.mark.parametrize(
    "value, expected",
    [(1700000000.5, 1700000000.5), ({"seconds": 1700000000, "nanos": 500_000_000}, 1700000000.5),
     ("2023-11-14T22:13:20.5Z", 1700000000.5), ("2023-11-14T22:13:20.5", 1700000000.5)],
)  # fmt: skip
def test_timestamps_in_every_documented_form(value, expected):
    """RFC 3339 (with or without zone), Unix seconds and protobuf {seconds, nanos} all parse."""
    assert parse_timestamp(value) == pytest.approx(expected)


def test_detail_and_error_accessors():
    """detail is event_data.data and error is event_data.error, empty when absent."""
    event = LegEvent.from_dict({**DOCUMENTED_EVENT, "event_data": {"data": {"stream_sid": "s1"}}})
    assert event.detail == {"stream_sid": "s1"}
    assert event.error == {}
