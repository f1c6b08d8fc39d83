"""The only code that knows the gRPC wire schema (protos/exotel/callback/v1).

``event_from_message`` turns a received ``CallbackEvent`` into the internal
:class:`~dialstream.exotel.events.LegEvent`; ``message_from_dict`` builds the wire message from
Exotel's documented event JSON (the sandbox sends events this way). When Exotel's real
``.proto`` arrives, only this module changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from dialstream.exotel.events import LegEvent, parse_timestamp
from protos.exotel.callback.v1 import callback_pb2, callback_pb2_grpc

__all__ = [
    "SERVICE_NAME",
    "CallbackEvent",
    "CallbackEventResponse",
    "event_from_message",
    "message_from_dict",
    "add_servicer",
    "CallbackServiceServicer",
    "CallbackServiceStub",
]

CallbackEvent = callback_pb2.CallbackEvent
CallbackEventResponse = callback_pb2.CallbackEventResponse
CallbackServiceServicer = callback_pb2_grpc.CallbackServiceServicer
CallbackServiceStub = callback_pb2_grpc.CallbackServiceStub
add_servicer = callback_pb2_grpc.add_CallbackServiceServicer_to_server
SERVICE_NAME = callback_pb2.DESCRIPTOR.services_by_name["CallbackService"].full_name


def event_from_message(message: callback_pb2.CallbackEvent, *, received_at: float = 0.0) -> LegEvent:
    """Validate a wire message into a LegEvent.

    Raises:
        InvalidEvent: a required field is missing or malformed.
    """
    timestamp: Any = None
    if message.HasField("event_timestamp"):
        timestamp = {"seconds": message.event_timestamp.seconds, "nanos": message.event_timestamp.nanos}
    return LegEvent.from_dict(
        {
            "event_sid": message.event_sid,
            "event_type": message.event_type,
            "event_name": message.event_name,
            "event_timestamp": timestamp,
            "action_sid": message.action_sid,
            "action_custom_parameter": message.action_custom_parameter,
            "event_data": json_format.MessageToDict(message.event_data),
            "data": json_format.MessageToDict(message.data),
            "account_sid": message.account_sid,
            "leg_sid": message.leg_sid,
            "custom_param": message.custom_param,
            "received_at": received_at,
        }
    )


def message_from_dict(payload: Mapping[str, Any]) -> callback_pb2.CallbackEvent:
    """Build the wire message from Exotel's event JSON; routing fields come from ``data``."""
    data = payload.get("data") or {}
    message = callback_pb2.CallbackEvent(
        event_sid=payload.get("event_sid", ""),
        event_type=payload.get("event_type", ""),
        event_name=payload.get("event_name", ""),
        action_sid=payload.get("action_sid") or "",
        action_custom_parameter=payload.get("action_custom_parameter") or "",
        account_sid=payload.get("account_sid") or data.get("account_sid", ""),
        leg_sid=payload.get("leg_sid") or data.get("leg_sid", ""),
        custom_param=payload.get("custom_param") or data.get("custom_param") or "",
    )
    if payload.get("event_timestamp") not in (None, ""):
        seconds = parse_timestamp(payload["event_timestamp"])
        message.event_timestamp.FromNanoseconds(int(round(seconds * 1e9)))
    message.event_data.CopyFrom(_struct(payload.get("event_data") or {}))
    message.data.CopyFrom(_struct(data))
    return message


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct
