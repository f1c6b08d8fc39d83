"""The Legs API client against httpx.MockTransport: requests as documented, errors by type."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from dialstream.errors import LegsApiClientError, LegsApiRateLimited, LegsApiServerError
from dialstream.exotel.actions import ActionKind
from dialstream.exotel.legs_api import LegsClient
from dialstream.settings import Settings

SETTINGS = Settings.from_env(
    {"EXOTEL_API_BASE_URL": "https://api.test", "EXOTEL_ACCOUNT_SID": "acc1", "EXOTEL_API_KEY": "k", "EXOTEL_API_TOKEN": "t"}
)


def envelope(status: int, data=None, error=None) -> httpx.Response:
    body = {"request_id": "0" * 32, "method": "POST", "http_code": status, "response": {"error_data": error, "data": data}}
    return httpx.Response(status, json=body)


def client_with(handler) -> tuple[LegsClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return LegsClient(SETTINGS.legs_api, transport=httpx.MockTransport(record)), seen


def test_create_leg_posts_the_documented_body_with_basic_auth():
    """create_leg POSTs contact_uri, exophone and the grpc endpoint to /v2/accounts/{sid}/legs."""
    client, seen = client_with(lambda r: envelope(202, {"leg_sid": "L" * 27 + "00000"}))
    leg = client.create_leg("+919812345678", exophone="+918030752400", leg_event_endpoint="grpc://h:1", custom_param="cp")
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.test/v2/accounts/acc1/legs"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"k:t").decode()
    body = json.loads(request.content)
    assert body == {
        "contact_uri": "+919812345678",
        "exophone": "+918030752400",
        "leg_event_endpoint": "grpc://h:1",
        "network_type": "pstn",
        "custom_param": "cp",
    }
    assert leg.leg_sid == "L" * 27 + "00000"


def test_sip_contacts_use_voip_network_type():
    """A sip: contact_uri is created with network_type voip, as the docs require."""
    client, seen = client_with(lambda r: envelope(202, {"leg_sid": "x"}))
    client.create_leg("sip:alice@example.com", exophone="e", leg_event_endpoint="grpc://h:1")
    assert json.loads(seen[0].content)["network_type"] == "voip"


def test_named_actions_post_to_their_paths():
    """Each named action posts its JSON body to /legs/{leg}/actions/{name}."""
    client, seen = client_with(lambda r: envelope(202, {"action_sid": "a1"}))
    accepted = client.start_stream("leg1", "wss://bot/x", action_custom_param="start_stream#1")
    client.start_say("leg1", "Hello")
    client.stop_say("leg1")
    client.start_play("leg1", "https://x/y.wav")
    client.stop_play("leg1")
    paths = [r.url.path for r in seen]
    assert paths == [f"/v2/accounts/acc1/legs/leg1/actions/{n}" for n in ("start_stream", "start_say", "stop_say", "start_play", "stop_play")]
    assert json.loads(seen[0].content) == {
        "direction": "bidirectional",
        "url": "wss://bot/x",
        "content_type": "audio/x-mulaw;rate=8000",
        "action_custom_param": "start_stream#1",
    }
    assert accepted.action_sid == "a1"


def test_hangup_is_an_exoml_action():
    """hangup posts <Hangup/> inside a Flow to the generic actions endpoint."""
    client, seen = client_with(lambda r: envelope(202, {"action_sid": "a2"}))
    client.hangup("leg1")
    assert seen[0].url.path == "/v2/accounts/acc1/legs/leg1/actions"
    assert "<Flow><Hangup/></Flow>" in json.loads(seen[0].content)["exoml"]


def test_every_action_kind_is_sent_by_kind_as_its_named_method_sends_it():
    """act(kind, params) sends, for every ActionKind on a leg, the request its named method sends with the same values."""
    by_kind, by_name = client_with(lambda r: envelope(202, {"action_sid": "a"})), client_with(lambda r: envelope(202, {"action_sid": "a"}))
    params = {
        ActionKind.START_STREAM: {"url": "wss://bot/x", "direction": "inbound", "content_type": "audio/x-l16;rate=8000"},
        ActionKind.STOP_STREAM: {"stream_sid": "S1"},
        ActionKind.START_SAY: {"text": "Hello"},
        ActionKind.START_PLAY: {"url": "https://x/y.wav"},
    }
    on_the_leg = [kind for kind in ActionKind if not kind.creates]
    for kind in on_the_leg:
        by_kind[0].act("leg1", kind, params.get(kind, {}), action_custom_param=f"{kind}#1")
    named = by_name[0]
    named.start_stream("leg1", "wss://bot/x", direction="inbound", content_type="audio/x-l16;rate=8000", action_custom_param="start_stream#1")
    named.stop_stream("leg1", stream_sid="S1", action_custom_param="stop_stream#1")
    named.start_say("leg1", "Hello", action_custom_param="start_say#1")
    named.stop_say("leg1", action_custom_param="stop_say#1")
    named.start_play("leg1", "https://x/y.wav", action_custom_param="start_play#1")
    named.stop_play("leg1", action_custom_param="stop_play#1")
    named.hangup("leg1", action_custom_param="hangup#1")
    assert [(r.url.path, json.loads(r.content)) for r in by_kind[1]] == [(r.url.path, json.loads(r.content)) for r in by_name[1]]
    assert len(by_kind[1]) == len(on_the_leg) == len(ActionKind) - 2


def test_an_agent_leg_beside_another_and_a_bridge_of_two_legs():
    """create_leg sends reference_leg_sid and record when given; create_bridge posts leg_sids and the event endpoint."""
    client, sent = client_with(lambda r: envelope(202, {"leg_sid": "L2", "bridge_sid": "B1"}))
    client.create_leg("+918000000001", exophone="+918030752400", leg_event_endpoint="grpc://h:1", reference_leg_sid="L1", record=True)
    assert client.create_bridge(["L1", "L2"], bridge_event_endpoint="grpc://h:1") == "B1"
    leg, bridge = (json.loads(r.content) for r in sent)
    assert (leg["reference_leg_sid"], leg["record"]) == ("L1", True) and sent[1].url.path.endswith("/bridges")
    assert bridge == {"leg_sids": ["L1", "L2"], "bridge_event_endpoint": "grpc://h:1"}


def test_a_leg_is_looked_up_with_get_leg_and_its_event_history_with_external_events():
    """get_leg GETs /legs/{sid} (its data); leg_events GETs /legs/{sid}/external-events (its external_events list)."""
    history = {"sid": "L1", "external_events": [{"endpoint_response": False, "event_info": {"event_sid": "E1"}}, "junk"]}
    client, seen = client_with(lambda r: envelope(200, {"state": "terminal"} if r.url.path.endswith("/L1") else history))
    assert client.get_leg("L1")["state"] == "terminal"
    assert client.leg_events("L1") == [history["external_events"][0]]
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/v2/accounts/acc1/legs/L1"), ("GET", "/v2/accounts/acc1/legs/L1/external-events"),
    ]  # fmt: skip


def test_429_raises_rate_limited_with_retry_after():
    """HTTP 429 becomes LegsApiRateLimited carrying the server's Retry-After."""
    client, _ = client_with(lambda r: httpx.Response(429, headers={"Retry-After": "30"}, json={}))
    with pytest.raises(LegsApiRateLimited) as info:
        client.stop_say("leg1")
    assert info.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_raises_server_error(status):
    """5xx answers are retryable server errors."""
    client, _ = client_with(lambda r: envelope(status, error={"message": "boom"}))
    with pytest.raises(LegsApiServerError, match="boom"):
        client.stop_say("leg1")


def test_transport_failure_raises_server_error():
    """A connection failure is a retryable server error with status 0."""

    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    client, _ = client_with(refuse)
    with pytest.raises(LegsApiServerError) as info:
        client.stop_say("leg1")
    assert info.value.status == 0


def test_4xx_raises_client_error_with_the_envelope_reason():
    """Other 4xx answers are not retryable and carry error_data's code and message."""
    error = {"code": 1001, "message": "contact_uri is invalid", "description": "not a number"}
    client, _ = client_with(lambda r: envelope(400, error=error))
    with pytest.raises(LegsApiClientError) as info:
        client.create_leg("x", exophone="e", leg_event_endpoint="grpc://h:1")
    assert info.value.status == 400
    assert info.value.code == "1001"
    assert "contact_uri is invalid" in str(info.value)


def test_success_without_data_is_a_server_error():
    """A 2xx whose envelope has no data object cannot be trusted and is reported."""
    client, _ = client_with(lambda r: httpx.Response(202, text="OK"))
    with pytest.raises(LegsApiServerError, match="response.data"):
        client.stop_say("leg1")
