"""ExoML for ``POST /legs/{leg_sid}/actions``: ``<Flow>`` verbs to the sandbox's actions.

Pure. Supported verbs map onto the named actions and are validated by the same rules
(:func:`sim.validation.action_params`): ``<Hangup/>``; ``<Say>``/``<StartSay>`` (text,
``loop``); ``<StartPlay>`` (URL as text, ``loop``); ``<StopSay/>``; ``<StopPlay/>``;
``<StartStream>`` (``url`` or ``streamUrl``, ``streamType``, ``contentType``);
``<StopStream/>`` (``streamSid`` stops that stream only). Documented verbs the sandbox does not simulate raise
:class:`NotImplementedVerb` (HTTP 501); anything else, or malformed XML, is a 400.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from sim.validation import BadRequest, action_params

__all__ = ["NotImplementedVerb", "parse_exoml", "UNSIMULATED_VERBS"]

UNSIMULATED_VERBS = frozenset(
    {
        "Answer", "Gather", "SendDigits", "Mute", "UnMute", "Hold", "UnHold", "Dial",
        "JoinBridge", "LeaveBridge", "StartRecording", "StopRecording",
        "StartMonitoring", "StopMonitoring", "PlaySequence", "Refer",
    }
)  # fmt: skip


class NotImplementedVerb(Exception):
    """HTTP 501: a documented ExoML verb the sandbox does not simulate."""

    def __init__(self, verb: str) -> None:
        super().__init__(f"<{verb}> is documented ExoML but the sandbox does not simulate it")
        self.verb = verb


def parse_exoml(exoml: Any) -> list[tuple[str, dict[str, Any]]]:
    """The ``(action name, params)`` of each verb in a ``<Flow>``, in document order."""
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
    return [_verb(element) for element in root]


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
    simple = {"StopSay": "stop_say", "StopPlay": "stop_play"}
    if tag in simple:
        return simple[tag], {}
    if tag in UNSIMULATED_VERBS:
        raise NotImplementedVerb(tag)
    raise BadRequest("malformed exoml", f"unknown verb <{tag}>")
