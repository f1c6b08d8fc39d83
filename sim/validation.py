"""Validation of Legs API request bodies: the rules behind every 400 the sandbox answers.

Pure: functions take decoded JSON and return typed values or raise :class:`BadRequest`.
The named actions (``/actions/start_say``...) and the ExoML verbs (``sim.exoml``) are
checked by the same :func:`action_params`, so both doors accept exactly the same things.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dialstream.domain.phones import normalize_number
from dialstream.exotel.agentstream import AudioEncoding, MediaFormat
from sim.bridge import BridgeRequest
from sim.leg import LegRequest

__all__ = [
    "BadRequest",
    "ACTIONS",
    "NAMED_ACTIONS",
    "DEFAULT_CONTENT_TYPE",
    "MAX_LOOP",
    "create_leg_request",
    "create_bridge_request",
    "field_text",
    "field_seconds",
    "field_flag",
    "action_params",
    "custom_param_of",
    "exophone_of",
    "event_endpoint",
    "endpoint_kind",
    "ENDPOINT_SCHEMES",
    "media_format",
]

DEFAULT_CONTENT_TYPE = "audio/x-mulaw;rate=8000"  # documented start_stream default
MAX_LOOP = 10  # "max 10" on the StartPlay page
NAMED_ACTIONS = ("start_stream", "stop_stream", "start_say", "stop_say", "start_play", "stop_play")
ACTIONS = (*NAMED_ACTIONS, "hangup")  # hangup only as the ExoML <Hangup/>
_DIRECTIONS = ("bidirectional", "unidirectional")
ENDPOINT_SCHEMES = ("grpc://", "grpcs://", "https://", "http://")
_PCM16_RATES = (8000, 16000, 24000)


class BadRequest(Exception):
    """HTTP 400: ``message`` names the field, ``description`` says what is wrong."""

    def __init__(self, message: str, description: str) -> None:
        super().__init__(f"{message}: {description}")
        self.message = message
        self.description = description


def create_leg_request(body: Any) -> LegRequest:
    if not isinstance(body, Mapping):
        raise BadRequest("invalid body", "expected a JSON object")
    contact_uri = field_text(body, "contact_uri", required=True)
    exophone = field_text(body, "exophone", required=True)
    endpoint = field_text(body, "leg_event_endpoint", required=True)
    event_endpoint(endpoint, "leg_event_endpoint")
    network_type = field_text(body, "network_type") or ("voip" if contact_uri.startswith("sip:") else "pstn")
    if network_type not in ("pstn", "voip"):
        raise BadRequest("invalid network_type", f"must be pstn or voip, got {network_type!r}")
    priority = field_text(body, "priority") or "normal"
    if priority not in ("normal", "high"):
        raise BadRequest("invalid priority", f"must be normal or high, got {priority!r}")
    return LegRequest(
        contact_uri=contact_uri,
        exophone=exophone,
        leg_event_endpoint=endpoint,
        custom_param=field_text(body, "custom_param"),
        network_type=network_type,
        timeout=field_seconds(body, "timeout", 30),
        ring_timeout=field_seconds(body, "ring_timeout", 30),
        time_limit=field_seconds(body, "time_limit", 14400),
        amd_enable=field_flag(body, "amd_enable"),
        async_amd=field_flag(body, "async_amd"),
        priority=priority,
        reference_leg_sid=field_text(body, "reference_leg_sid"),
        requested_dc_code=field_text(body, "requested_dc_code"),
        record=field_flag(body, "record"),
    )


def create_bridge_request(body: Any, default_max: int) -> BridgeRequest:
    """Either documented shape: ``{leg_sids, bridge_event_endpoint, absorb_dtmf}`` (the legs
    are bridged at once) or ``{bridge_type, max_participants, recording}`` (an empty bridge
    that legs join with ``<JoinBridge>``)."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise BadRequest("invalid body", "expected a JSON object")
    leg_sids = body.get("leg_sids")
    if leg_sids is not None and (
        not isinstance(leg_sids, list) or not leg_sids or not all(isinstance(s, str) and s for s in leg_sids)
    ):
        raise BadRequest("invalid leg_sids", "expected a non-empty list of leg SIDs")
    endpoint = field_text(body, "bridge_event_endpoint")
    if endpoint:
        event_endpoint(endpoint, "bridge_event_endpoint")
    bridge_type = field_text(body, "bridge_type") or "audio"
    if bridge_type != "audio":
        raise BadRequest("invalid bridge_type", f"only audio bridges exist, got {bridge_type!r}")
    participants = body.get("max_participants", default_max)
    if isinstance(participants, bool) or not isinstance(participants, int) or participants < 2:
        raise BadRequest("invalid max_participants", f"expected an integer of at least 2, got {participants!r}")
    if leg_sids is not None and len(set(leg_sids)) > participants:
        raise BadRequest("invalid leg_sids", f"{len(set(leg_sids))} legs for a bridge of at most {participants}")
    return BridgeRequest(
        leg_sids=tuple(dict.fromkeys(leg_sids or ())),
        bridge_event_endpoint=endpoint,
        absorb_dtmf=field_flag(body, "absorb_dtmf"),
        bridge_type=bridge_type,
        max_participants=participants,
        recording=field_flag(body, "recording"),
    )


def endpoint_kind(endpoint: str) -> str:
    """``grpc``, ``grpcs``, ``https`` or ``http``; raises ValueError for anything else."""
    for scheme in ENDPOINT_SCHEMES:
        if endpoint.startswith(scheme) and endpoint.removeprefix(scheme).strip("/"):
            return scheme.removesuffix("://")
    raise ValueError(f"must look like grpc://host:port, grpcs://host:port or https://host/path, got {endpoint!r}")


def event_endpoint(endpoint: str, key: str) -> str:
    """A leg or bridge event endpoint: ``grpc://``, ``grpcs://`` or ``https://`` (``http://`` for local tests)."""
    try:
        endpoint_kind(endpoint)
    except ValueError as exc:
        raise BadRequest(f"invalid {key}", str(exc)) from None
    return endpoint


def exophone_of(exophone: str, caller_ids: tuple[str, ...]) -> str:
    """``exophone`` if it is one of the account's caller IDs, written any way Exotel takes a
    number (``+918030752400``, ``08030752400``, ``918030752400``); else a 400."""
    if _number(exophone) not in {_number(c) for c in caller_ids}:
        listed = ", ".join(caller_ids)
        raise BadRequest("invalid exophone", f"{exophone} is not one of this account's ExoPhones ({listed})")
    return exophone


def _number(text: str) -> str:
    """E.164 of a phone number (India when no country code), or the text itself (a SIP identity)."""
    try:
        return normalize_number(text, strict=False)
    except ValueError:
        return text.strip()


def custom_param_of(body: Mapping[str, Any]) -> str:
    """The optional ``action_custom_param`` of any action body."""
    return field_text(body, "action_custom_param")


def action_params(name: str, body: Any) -> dict[str, Any]:
    """The validated parameters of action ``name`` (one of :data:`ACTIONS`)."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise BadRequest("invalid body", "expected a JSON object")
    if name == "start_stream":
        url = field_text(body, "url", required=True)
        if not url.startswith(("ws://", "wss://")):
            raise BadRequest("invalid url", f"a stream URL must start with ws:// or wss://, got {url!r}")
        direction = field_text(body, "direction", required=True)
        if direction not in _DIRECTIONS:
            raise BadRequest("invalid direction", f"must be one of {_DIRECTIONS}, got {direction!r}")
        content_type = field_text(body, "content_type") or DEFAULT_CONTENT_TYPE
        media_format(content_type)  # validates
        return {"url": url, "direction": direction, "content_type": content_type}
    if name == "start_say":
        return {"text": field_text(body, "text", required=True), "loop": _loop(body)}
    if name == "start_play":
        return {"url": field_text(body, "url", required=True), "loop": _loop(body)}
    if name == "stop_stream":
        # Naming the stream stops that one only (a stream superseded by failover); without
        # a name every stream of the leg stops. JSON bodies are snake_case; streamSid is accepted.
        stream_sid = field_text(body, "stream_sid") or field_text(body, "streamSid")
        return {"stream_sid": stream_sid} if stream_sid else {}
    if name in ACTIONS:
        return {}
    raise BadRequest("unknown action", f"{name!r} is not one of {ACTIONS}")


def media_format(content_type: str) -> MediaFormat:
    """mu-law at 8 kHz, or 16-bit PCM (``audio/L16``) at 8, 16 or 24 kHz."""
    try:
        fmt = MediaFormat.from_content_type(content_type)
    except ValueError as exc:
        raise BadRequest("invalid content_type", str(exc)) from None
    mime = content_type.partition(";")[0].strip().lower()
    if fmt.encoding_kind is AudioEncoding.MULAW:
        if fmt.sample_rate != 8000:
            raise BadRequest("invalid content_type", "mu-law is only carried at rate=8000")
    elif mime not in ("audio/l16", "audio/x-l16", "audio/x-raw", "audio/pcm") or fmt.sample_rate not in _PCM16_RATES:
        raise BadRequest(
            "invalid content_type",
            f"supported: {DEFAULT_CONTENT_TYPE} or audio/L16;rate=8000|16000|24000, got {content_type!r}",
        )
    return fmt


def field_text(body: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing {key}", f"{key} is mandatory")
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"invalid {key}", f"expected a string, got {type(value).__name__}")
    return value.strip()


def field_seconds(body: Mapping[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, str) and value.isdigit():  # form-style clients send numbers as text
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest(f"invalid {key}", f"expected a positive integer number of seconds, got {value!r}")
    return value


def field_flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise BadRequest(f"invalid {key}", f"expected true or false, got {value!r}")
    return value


def _loop(body: Mapping[str, Any]) -> int:
    value = body.get("loop", 0)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LOOP:
        raise BadRequest("invalid loop", f"expected an integer from 0 to {MAX_LOOP}, got {value!r}")
    return value
