"""Client for Exotel's Legs API (``/v2/accounts/{sid}/legs``): create legs, run actions, bridge legs.

One :class:`LegsClient` per process holds one pooled ``httpx.Client``. Every response is
read through the documented envelope ``{request_id, method, http_code, response:
{error_data, data}}``; errors become the :mod:`dialstream.errors` hierarchy so callers
decide retries from the exception type alone. Pass ``transport=httpx.MockTransport(...)``
to test without a server, and ``observe=`` to be told the operation, HTTP status (0 when
there was no response) and seconds of every request (the workers record them as metrics,
``workers.metrics.record_legs_api``).

Example::

    client = LegsClient(settings.legs_api)
    leg = client.create_leg("+919812345678", custom_param="...")
    client.start_stream(leg.leg_sid, "wss://bot.example.com/stream")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx

from dialstream.errors import LegsApiClientError, LegsApiRateLimited, LegsApiServerError
from dialstream.exotel.actions import ActionKind

__all__ = ["LegsApiConfig", "LegsClient", "CreatedLeg", "AcceptedAction", "Observer", "DEFAULT_CONTENT_TYPE"]

DEFAULT_CONTENT_TYPE = "audio/x-mulaw;rate=8000"  # the documented default on start_stream
_DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 carries no usable Retry-After

Observer = Callable[[str, int, float], None]  # (operation, HTTP status or 0, seconds)


@dataclass(frozen=True, slots=True)
class LegsApiConfig:
    """Where and as whom a :class:`LegsClient` calls: ``Settings.legs_api`` builds it."""

    base_url: str  # https://cpaas-api.in.exotel.com/v2/accounts/{account_sid}
    api_key: str  # HTTP Basic user
    api_token: str = field(repr=False)  # HTTP Basic password
    timeout: float = 5.0  # seconds for one request, connect and read


@dataclass(frozen=True, slots=True)
class CreatedLeg:
    """``response.data`` of a create-leg call (HTTP 202): the call is being placed."""

    leg_sid: str
    contact_uri: str
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AcceptedAction:
    """``response.data`` of an action call (HTTP 202): the outcome arrives as events."""

    action_sid: str
    leg_sid: str
    raw: Mapping[str, Any]


class LegsClient:
    """Synchronous Legs API client with one connection pool; safe to share within a process."""

    def __init__(
        self, config: LegsApiConfig, *, transport: httpx.BaseTransport | None = None, observe: Observer | None = None
    ) -> None:
        self._base = config.base_url
        self._observe = observe
        self._http = httpx.Client(
            auth=(config.api_key, config.api_token),
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
            headers={"Content-Type": "application/json", "User-Agent": "dialstream/0.1"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LegsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Legs

    def create_leg(
        self,
        contact_uri: str,
        *,
        exophone: str,
        leg_event_endpoint: str,
        custom_param: str = "",
        timeout: int | None = None,
        ring_timeout: int | None = None,
        time_limit: int | None = None,
        amd_enable: bool = False,
        async_amd: bool = False,
        priority: str | None = None,
        reference_leg_sid: str = "",
        record: bool = False,
    ) -> CreatedLeg:
        """Place an outbound call (``POST /legs``). Its progress arrives as leg events.

        ``reference_leg_sid``: create it where that leg is (legs to be bridged should be
        co-located). ``record``: record the call from its answer; the recording's URL arrives
        in ``recording_available`` (the parameter's name is inferred: no page of Exotel's shows it)."""
        body: dict[str, Any] = {
            "contact_uri": contact_uri,
            "exophone": exophone,
            "leg_event_endpoint": leg_event_endpoint,
            "network_type": "voip" if contact_uri.startswith("sip:") else "pstn",
        }
        optional = {
            "custom_param": custom_param or None,
            "timeout": timeout,
            "ring_timeout": ring_timeout,
            "time_limit": time_limit,
            "amd_enable": amd_enable or None,
            "async_amd": async_amd or None,
            "priority": priority,
            "reference_leg_sid": reference_leg_sid or None,
            "record": record or None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        data = self._request("POST", "/legs", body, operation="create_leg")
        return CreatedLeg(leg_sid=_required(data, "leg_sid"), contact_uri=contact_uri, raw=data)

    def get_leg(self, leg_sid: str) -> Mapping[str, Any]:
        """The leg as Exotel knows it (``GET /legs/{sid}``): ``state``, ``terminal_status``, ``start_time``..."""
        return self._request("GET", f"/legs/{leg_sid}", operation="get_leg")

    def leg_events(self, leg_sid: str) -> list[Mapping[str, Any]]:
        """Every event Exotel emitted for the leg, each with whether it was delivered
        (``GET /legs/{sid}/external-events``: ``endpoint_response``, ``error``, ``event_info``)."""
        data = self._request("GET", f"/legs/{leg_sid}/external-events", operation="leg_events")
        entries = data.get("external_events")
        return [entry for entry in entries if isinstance(entry, Mapping)] if isinstance(entries, list) else []

    # Bridges

    def create_bridge(self, leg_sids: Sequence[str], *, bridge_event_endpoint: str) -> str:
        """Bridge live legs (``POST /bridges``, the shape with ``leg_sids``): their parties talk.
        Returns the bridge's sid; ``leg_joined_bridge`` on each leg says it is up."""
        body = {"leg_sids": list(leg_sids), "bridge_event_endpoint": bridge_event_endpoint}
        return _required(self._request("POST", "/bridges", body, operation="create_bridge"), "bridge_sid")

    # Actions

    def act(self, leg_sid: str, kind: ActionKind, params: Mapping[str, Any], *, action_custom_param: str = "") -> AcceptedAction:
        """Run the action ``kind`` with ``params`` as the state machine gives them
        (``dialstream.domain.leg_state``): each kind's request is one entry of ``_ACTIONS``.
        The agent's leg and the bridge of a transfer are not leg actions: the worker fills
        them in and calls :meth:`create_leg` and :meth:`create_bridge`."""
        return _ACTIONS[kind](self, leg_sid, params, action_custom_param)

    # Named actions (the AgentStream guides' style)

    def start_stream(
        self,
        leg_sid: str,
        url: str,
        *,
        direction: str = "bidirectional",
        content_type: str = DEFAULT_CONTENT_TYPE,
        action_custom_param: str = "",
    ) -> AcceptedAction:
        body = {"direction": direction, "url": url, "content_type": content_type}
        return self._action(leg_sid, ActionKind.START_STREAM, body, action_custom_param)

    def stop_stream(self, leg_sid: str, *, stream_sid: str = "", action_custom_param: str = "") -> AcceptedAction:
        """Stop the leg's stream; with ``stream_sid``, that one stream (ExoML ``<StopStream streamSid>``)."""
        if stream_sid:
            return self.exoml(leg_sid, f"<StopStream streamSid={quoteattr(stream_sid)}/>", action_custom_param=action_custom_param)
        return self._action(leg_sid, ActionKind.STOP_STREAM, {}, action_custom_param)

    def start_say(self, leg_sid: str, text: str, *, loop: int = 0, action_custom_param: str = "") -> AcceptedAction:
        return self._action(leg_sid, ActionKind.START_SAY, {"text": text, "loop": loop}, action_custom_param)

    def stop_say(self, leg_sid: str, *, action_custom_param: str = "") -> AcceptedAction:
        return self._action(leg_sid, ActionKind.STOP_SAY, {}, action_custom_param)

    def start_play(self, leg_sid: str, url: str, *, loop: int = 0, action_custom_param: str = "") -> AcceptedAction:
        return self._action(leg_sid, ActionKind.START_PLAY, {"url": url, "loop": loop}, action_custom_param)

    def stop_play(self, leg_sid: str, *, action_custom_param: str = "") -> AcceptedAction:
        return self._action(leg_sid, ActionKind.STOP_PLAY, {}, action_custom_param)

    def hangup(self, leg_sid: str, *, action_custom_param: str = "") -> AcceptedAction:
        """Terminate the leg with the ExoML ``<Hangup/>`` action (the documented way)."""
        return self.exoml(leg_sid, "<Hangup/>", action_custom_param=action_custom_param)

    def exoml(self, leg_sid: str, verbs: str, *, action_custom_param: str = "") -> AcceptedAction:
        """Run ExoML verbs on a leg (``POST /legs/{leg_sid}/actions``)."""
        body: dict[str, Any] = {"exoml": f'<?xml version="1.0" encoding="UTF-8"?><Flow>{verbs}</Flow>'}
        if action_custom_param:
            body["action_custom_param"] = action_custom_param
        data = self._request("POST", f"/legs/{leg_sid}/actions", body, operation="exoml")
        return AcceptedAction(action_sid=data.get("action_sid", ""), leg_sid=leg_sid, raw=data)

    # Plumbing

    def _action(self, leg_sid: str, name: ActionKind, body: dict[str, Any], action_custom_param: str) -> AcceptedAction:
        if action_custom_param:
            body = {**body, "action_custom_param": action_custom_param}
        data = self._request("POST", f"/legs/{leg_sid}/actions/{name}", body, operation=name)
        return AcceptedAction(action_sid=data.get("action_sid", ""), leg_sid=leg_sid, raw=data)

    def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, operation: str
    ) -> Mapping[str, Any]:
        where = {"method": method, "path": path}
        started = time.perf_counter()
        try:
            response = self._http.request(method, self._base + path, json=body)
        except httpx.TransportError as exc:  # timeouts, refused connections, resets
            self._observed(operation, 0, started)
            raise LegsApiServerError(0, f"{type(exc).__name__}: {exc}", **where) from exc
        self._observed(operation, response.status_code, started)
        envelope = _envelope(response)
        if response.status_code == 429:
            raise LegsApiRateLimited(_retry_after(response), _error_message(envelope, response), **where)
        if response.status_code >= 500:
            raise LegsApiServerError(response.status_code, _error_message(envelope, response), **where)
        if response.status_code >= 400:
            error = _error_data(envelope)
            raise LegsApiClientError(
                response.status_code,
                _error_message(envelope, response),
                code=str(error.get("code") or error.get("error_code") or ""),
                **where,
            )
        data = _response(envelope).get("data")
        if not isinstance(data, Mapping):
            raise LegsApiServerError(response.status_code, "response has no response.data object", **where)
        return data

    def _observed(self, operation: str, status: int, started: float) -> None:
        if self._observe is not None:
            self._observe(operation, status, time.perf_counter() - started)


# Each action kind's request, from the state machine's params; ``custom`` is the action_custom_param.
_ACTIONS: dict[ActionKind, Callable[[LegsClient, str, Mapping[str, Any], str], AcceptedAction]] = {
    ActionKind.START_STREAM: lambda client, leg_sid, params, custom: client.start_stream(
        leg_sid, params["url"], direction=params["direction"], content_type=params["content_type"], action_custom_param=custom
    ),
    ActionKind.STOP_STREAM: lambda client, leg_sid, params, custom: client.stop_stream(
        leg_sid, stream_sid=params.get("stream_sid", ""), action_custom_param=custom
    ),
    ActionKind.START_SAY: lambda client, leg_sid, params, custom: client.start_say(
        leg_sid, params["text"], loop=params.get("loop", 0), action_custom_param=custom
    ),
    ActionKind.STOP_SAY: lambda client, leg_sid, params, custom: client.stop_say(leg_sid, action_custom_param=custom),
    ActionKind.START_PLAY: lambda client, leg_sid, params, custom: client.start_play(leg_sid, params["url"], action_custom_param=custom),
    ActionKind.STOP_PLAY: lambda client, leg_sid, params, custom: client.stop_play(leg_sid, action_custom_param=custom),
    ActionKind.HANGUP: lambda client, leg_sid, params, custom: client.hangup(leg_sid, action_custom_param=custom),
}


def _envelope(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def _error_data(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    error = _response(envelope).get("error_data")
    return error if isinstance(error, Mapping) else {}


def _response(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = envelope.get("response")
    return inner if isinstance(inner, Mapping) else {}


def _error_message(envelope: Mapping[str, Any], response: httpx.Response) -> str:
    error = _error_data(envelope)
    parts = [str(error[key]) for key in ("message", "description") if error.get(key)]
    return " - ".join(parts) or f"HTTP {response.status_code}: {response.text[:200]}"


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return _DEFAULT_RETRY_AFTER


def _required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise LegsApiServerError(202, f"response.data has no {key}")
    return value
