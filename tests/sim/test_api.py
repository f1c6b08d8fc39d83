"""The Legs REST API of the sandbox: envelopes, authentication, validation, status codes."""

from __future__ import annotations

import re

import pytest

from tests.sim.harness import async_test, basic_auth, harness

HEX32 = re.compile(r"^[0-9a-f]{32}$")
SID = re.compile(r"^[A-Za-z0-9]{27}00000$")


def _assert_envelope(envelope: dict, method: str, status: int) -> None:
    assert set(envelope) == {"request_id", "method", "http_code", "response"}
    assert HEX32.match(envelope["request_id"])
    assert envelope["method"] == method
    assert envelope["http_code"] == status
    assert set(envelope["response"]) == {"error_data", "data"}


@async_test
async def test_create_leg_answers_202_with_the_documented_envelope() -> None:
    """Create-leg returns 202 and echoes the leg in response.data with a 32-character SID ending in 00000."""
    async with harness() as h:
        body = {
            "contact_uri": "+919800000001",
            "exophone": "+918030752400",
            "leg_event_endpoint": h.endpoint,
            "custom_param": "campaign-1:contact-9",
        }
        status, envelope, _ = await h.call("POST", h.legs_path, body)
        assert status == 202
        _assert_envelope(envelope, "POST", 202)
        assert envelope["response"]["error_data"] is None
        data = envelope["response"]["data"]
        assert SID.match(data["leg_sid"])
        assert data["account_sid"] == "dialstream1"
        assert data["contact_uri"] == "+919800000001"
        assert data["exophone"] == "+918030752400"
        assert data["network_type"] == "pstn"
        assert data["custom_param"] == "campaign-1:contact-9"
        assert data["leg_event_endpoint"] == h.endpoint
        assert data["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contact_uri": None}, "missing contact_uri"),
        ({"exophone": ""}, "missing exophone"),
        ({"leg_event_endpoint": None}, "missing leg_event_endpoint"),
        ({"leg_event_endpoint": "wss://events.example.com"}, "invalid leg_event_endpoint"),
        ({"leg_event_endpoint": "grpc://"}, "invalid leg_event_endpoint"),
        ({"contact_uri": 919800000001}, "invalid contact_uri"),
        ({"timeout": "soon"}, "invalid timeout"),
        ({"amd_enable": "maybe"}, "invalid amd_enable"),
        ({"network_type": "satellite"}, "invalid network_type"),
    ],
)
@async_test
async def test_create_leg_rejects_invalid_bodies_with_400(change: dict, message: str) -> None:
    """A missing or mistyped create-leg field is a 400 whose error_data names the field."""
    async with harness() as h:
        body = {"contact_uri": "+919800000001", "exophone": "+918030752400", "leg_event_endpoint": h.endpoint}
        body.update(change)
        body = {k: v for k, v in body.items() if v is not None}
        status, envelope, _ = await h.call("POST", h.legs_path, body)
        assert status == 400
        _assert_envelope(envelope, "POST", 400)
        assert envelope["response"]["data"] is None
        error = envelope["response"]["error_data"]
        assert error["code"] == "INVALID_PARAMETER"
        assert error["message"] == message
        assert error["description"]
        assert h.sandbox.calls == {}


@async_test
async def test_malformed_json_is_a_400() -> None:
    """A body that is not JSON is rejected with a 400 envelope."""
    async with harness() as h:
        async with h.http.post(h.legs_path, data=b"{not json", headers={"Content-Type": "application/json"}) as response:
            envelope = await response.json()
        assert response.status == 400
        assert envelope["response"]["error_data"]["message"] == "invalid JSON"


@pytest.mark.parametrize("authorization", [None, basic_auth("sandbox-key", "wrong-token"), "Bearer sandbox-token"])
@async_test
async def test_requests_without_valid_basic_auth_get_401(authorization: str | None) -> None:
    """Missing, wrong or non-Basic credentials are refused with a 401 envelope before anything else."""
    async with harness(auth=False) as h:
        headers = {"Authorization": authorization} if authorization else {}
        status, envelope, response_headers = await h.call("POST", h.legs_path, {}, headers=headers)
        assert status == 401
        _assert_envelope(envelope, "POST", 401)
        assert envelope["response"]["error_data"]["code"] == "AUTHENTICATION_FAILED"
        assert response_headers["WWW-Authenticate"].startswith("Basic")


@async_test
async def test_another_accounts_path_is_forbidden() -> None:
    """Valid credentials used on another account's path get a 403."""
    async with harness() as h:
        status, envelope, _ = await h.call("GET", "/v2/accounts/someone-else/legs/x")
        assert status == 403
        assert envelope["response"]["error_data"]["code"] == "NOT_AUTHORIZED"


@async_test
async def test_action_on_an_unknown_leg_is_404() -> None:
    """Actions name their leg; an unknown leg SID is a 404 envelope."""
    async with harness() as h:
        status, envelope = await h.action("NoSuchLeg000000000000000000000000", "start_say", text="hi")
        assert status == 404
        assert envelope["response"]["error_data"]["code"] == "NOT_FOUND"


@async_test
async def test_unknown_action_name_is_404() -> None:
    """Only the documented named actions exist."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, envelope = await h.action(leg_sid, "start_dancing")
        assert status == 404
        assert envelope["response"]["error_data"]["message"] == "unknown action"


@async_test
async def test_media_action_before_answer_is_409() -> None:
    """A media action on a leg that is not answered yet is a 409 conflict (INVALID_LEG_STATE)."""
    async with harness() as h:
        leg_sid = await h.create_leg()
        status, envelope = await h.action(leg_sid, "start_say", text="too early")
        assert status == 409
        error = envelope["response"]["error_data"]
        assert error["code"] == "INVALID_LEG_STATE"
        assert "created" in error["description"] or "ringing" in error["description"]


@async_test
async def test_action_after_hang_up_is_409() -> None:
    """Once a leg is terminated every action on it, hang-up included, is a 409."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        await h.hang_up(leg_sid)
        status, _ = await h.action(leg_sid, "start_say", text="hello?")
        assert status == 409
        status, _ = await h.exoml(leg_sid, "<Hangup/>")
        assert status == 409


@async_test
async def test_action_answers_202_and_echoes_the_custom_param() -> None:
    """A named action returns 202 with action_sid, leg_sid, account_sid, created_at and action_custom_param."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, envelope = await h.action(leg_sid, "start_say", text="Hello", loop=0, action_custom_param="greet-1")
        assert status == 202
        _assert_envelope(envelope, "POST", 202)
        data = envelope["response"]["data"]
        assert SID.match(data["action_sid"])
        assert data["leg_sid"] == leg_sid
        assert data["account_sid"] == "dialstream1"
        assert data["action_custom_param"] == "greet-1"
        assert data["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("start_say", {}, "missing text"),
        ("start_say", {"text": "hi", "loop": 11}, "invalid loop"),
        ("start_play", {"loop": 1}, "missing url"),
        ("start_stream", {"url": "ws://127.0.0.1:1/m"}, "missing direction"),
        ("start_stream", {"direction": "bidirectional", "url": "http://bot"}, "invalid url"),
        ("start_stream", {"direction": "sideways", "url": "ws://bot"}, "invalid direction"),
        ("start_stream", {"direction": "bidirectional", "url": "ws://bot", "content_type": "audio/x-mulaw;rate=16000"}, "invalid content_type"),
        ("start_stream", {"direction": "bidirectional", "url": "ws://bot", "content_type": "audio/opus"}, "invalid content_type"),
        ("stop_say", {"action_custom_param": 7}, "invalid action_custom_param"),
    ],
)
@async_test
async def test_action_bodies_are_validated(name: str, body: dict, message: str) -> None:
    """Invalid action bodies are 400s naming the offending field, and nothing happens on the leg."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, envelope = await h.action(leg_sid, name, **body)
        assert status == 400
        assert envelope["response"]["error_data"]["message"] == message
        assert h.sandbox.leg(leg_sid).actions == []
