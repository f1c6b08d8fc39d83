"""ExoML for ``POST /legs/{sid}/actions`` and ``POST /bridges/{sid}/actions``: ``<Flow>`` verbs to actions.

Pure. The verbs that match a named action are validated by the same rules
(:func:`sim.validation.action_params`):

* ``<Hangup/>``; ``<Say>``/``<StartSay>`` (text, ``loop``); ``<StartPlay>`` (URL as text,
  ``loop``); ``<StopSay/>``; ``<StopPlay/>``; ``<StartStream>`` (``url`` or ``streamUrl``,
  ``streamType``, ``contentType``); ``<StopStream/>`` (``streamSid`` stops that stream only);
* ``<Dial contactUri exophone networkType absorbDtmf timeout customParam/>``;
  ``<JoinBridge bridgeSid/>``; ``<LeaveBridge/>``; ``<Hold>`` with an optional nested
  ``<StartPlay>`` (music on hold); ``<UnHold/>``; ``<StartRecording direction format/>``;
  ``<StopRecording/>``;
* on a bridge only: ``<Refer bridgeEventEndpoint/>``, and of the above only the says,
  plays and recordings.

Documented verbs the sandbox does not simulate raise :class:`NotImplementedVerb` (HTTP
501); a leg verb sent to a bridge, anything else, or malformed XML is a 400.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from sim.validation import BadRequest, action_params, event_endpoint, field_flag, field_seconds, field_text

__all__ = ["NotImplementedVerb", "parse_exoml", "UNSIMULATED_VERBS", "BRIDGE_VERBS"]

UNSIMULATED_VERBS = frozenset(
    {
        "Answer", "Gather", "SendDigits", "Mute", "UnMute", "StartMonitoring", "StopMonitoring", "PlaySequence",
    }
)  # fmt: skip
# What a bridge's actions may do ("media actions affect current and future participants").
BRIDGE_VERBS = frozenset({"start_say", "stop_say", "start_play", "stop_play", "start_recording", "stop_recording", "refer"})
_RECORDING_DIRECTIONS = ("both", "in", "out")
_RECORDING_FORMATS = ("wav", "mp3")


class NotImplementedVerb(Exception):
    """HTTP 501: a documented ExoML verb the sandbox does not simulate."""

    def __init__(self, verb: str) -> None:
        super().__init__(f"<{verb}> is documented ExoML but the sandbox does not simulate it")
        self.verb = verb


def parse_exoml(exoml: Any, *, bridge: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """The ``(action name, params)`` of each verb in a ``<Flow>``, in document order.

    ``bridge``: the flow is for a bridge, which takes only :data:`BRIDGE_VERBS`.
    """
    if not isinstance(exoml, str) or not exoml.strip():
        raise BadRequest("missing exoml", "exoml is mandatory: an XML document with a <Flow> root")
    try:
        # Bytes, not str: ElementTree refuses a str that carries an encoding declaration.
        root = ET.fromstring(exoml.strip().encode("utf-8"))
    except ET.ParseError as exc:
        raise BadRequest("malformed exoml", str(exc)) from None
    if root.tag != "Flow":
        raise BadRequest("malformed exoml", f"the root element must be <Flow>, got <{root.tag}>")
    if len(root) == 0:
        raise BadRequest("malformed exoml", "<Flow> has no verbs")
    verbs = [_verb(element) for element in root]
    for (name, _), element in zip(verbs, root):
        if name not in BRIDGE_VERBS if bridge else name == "refer":
            where = "a bridge" if bridge else "a leg"
            raise BadRequest("malformed exoml", f"<{element.tag}> is not a verb for {where}")
    return verbs


def _verb(element: ET.Element) -> tuple[str, dict[str, Any]]:
    tag, attrs, text = element.tag, element.attrib, (element.text or "").strip()
    if tag == "Hangup":
        return "hangup", {}
    if tag in ("Say", "StartSay"):
        return "start_say", action_params("start_say", {"text": text, "loop": attrs.get("loop", "0")})
    if tag == "StartPlay":
        return "start_play", action_params("start_play", {"url": text, "loop": attrs.get("loop", "0")})
    if tag == "StartStream":
        body = {
            "url": attrs.get("url") or attrs.get("streamUrl"),
            "direction": attrs.get("streamType"),
            "content_type": attrs.get("contentType"),
        }
        return "start_stream", action_params("start_stream", body)
    if tag == "StopStream":
        return "stop_stream", action_params("stop_stream", {"stream_sid": attrs.get("streamSid") or attrs.get("stream_sid")})
    if tag == "Dial":
        return "dial", _dial(attrs)
    if tag == "JoinBridge":
        return "join_bridge", {"bridge_sid": field_text(_camel(attrs, "bridgeSid"), "bridge_sid", required=True)}
    if tag == "LeaveBridge":
        return "leave_bridge", {}
    if tag == "Hold":
        music = element.find("StartPlay")
        return "hold", {"music_url": (music.text or "").strip() if music is not None else ""}
    if tag == "Refer":
        endpoint = field_text(_camel(attrs, "bridgeEventEndpoint"), "bridge_event_endpoint", required=True)
        return "refer", {"bridge_event_endpoint": event_endpoint(endpoint, "bridgeEventEndpoint")}
    if tag == "StartRecording":
        return "start_recording", _recording(attrs)
    simple = {"StopSay": "stop_say", "StopPlay": "stop_play", "UnHold": "unhold", "StopRecording": "stop_recording"}
    if tag in simple:
        return simple[tag], {}
    if tag in UNSIMULATED_VERBS:
        raise NotImplementedVerb(tag)
    raise BadRequest("malformed exoml", f"unknown verb <{tag}>")


def _camel(attrs: dict[str, str], *names: str) -> dict[str, str]:
    """Attributes keyed in snake_case, accepting the documented camelCase spelling or snake_case."""
    out: dict[str, str] = {}
    for name in names:
        snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
        value = attrs.get(name, attrs.get(snake))
        if value is not None:
            out[snake] = value
    return out


def _recording(attrs: dict[str, str]) -> dict[str, Any]:
    """``<StartRecording>``: direction (in, out, both) and format (wav, mp3); storage attributes are accepted as given."""
    direction = attrs.get("direction", "both")
    if direction not in _RECORDING_DIRECTIONS:
        raise BadRequest("invalid direction", f"StartRecording direction must be one of {_RECORDING_DIRECTIONS}, got {direction!r}")
    fmt = attrs.get("format", "wav")
    if fmt not in _RECORDING_FORMATS:
        raise BadRequest("invalid format", f"StartRecording format must be one of {_RECORDING_FORMATS}, got {fmt!r}")
    return {"direction": direction, "format": fmt}


def _dial(attrs: dict[str, str]) -> dict[str, Any]:
    """``<Dial>``: contactUri (required), exophone, networkType, absorbDtmf, timeout, customParam, record."""
    body = _camel(attrs, "contactUri", "exophone", "networkType", "absorbDtmf", "timeout", "customParam", "record")
    params: dict[str, Any] = {
        "contact_uri": field_text(body, "contact_uri", required=True),
        "exophone": field_text(body, "exophone"),
        "custom_param": field_text(body, "custom_param"),
        "timeout": field_seconds(body, "timeout", 30),
        "absorb_dtmf": field_flag(body, "absorb_dtmf"),
        "record": field_flag(body, "record"),
    }
    network_type = field_text(body, "network_type")
    if network_type and network_type not in ("pstn", "voip"):
        raise BadRequest("invalid networkType", f"must be pstn or voip, got {network_type!r}")
    params["network_type"] = network_type
    return params
