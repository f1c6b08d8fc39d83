"""Bridges (reference section 1.8): both create shapes, get, stop, bridge actions, joining and leaving, co-location."""

from __future__ import annotations

from typing import Any

import pytest

from sim.config import BridgeConfig
from tests.sim.harness import Harness, async_test, fast_config, harness, until


def bridges_path(h: Harness) -> str:
    return f"/v2/accounts/{h.sandbox.config.account_sid}/bridges"


async def bridge_event(h: Harness, name: str, bridge_sid: str) -> dict[str, Any]:
    """The first bridge event ``name`` of ``bridge_sid`` the receiver got (as JSON)."""

    def found() -> dict[str, Any] | None:
        return next(
            (e for e in h.recorder.bridge_events if e["event_name"] == name and e["data"]["bridge_sid"] == bridge_sid), None
        )

    return await until(found, what=f"{name} on {bridge_sid}")


async def two_legs(h: Harness, *, co_located: bool = True) -> tuple[str, str]:
    """Two answered legs; the second created with the first as reference_leg_sid unless told otherwise."""
    first = await h.answered_leg("+919800000001")
    extra = {"reference_leg_sid": first} if co_located else {}
    second = await h.answered_leg("+919800000002", **extra)
    return first, second


async def bridge_legs(h: Harness, *legs: str) -> str:
    status, envelope, _ = await h.call("POST", bridges_path(h), {"leg_sids": list(legs), "bridge_event_endpoint": h.endpoint})
    assert status == 202, envelope
    return envelope["response"]["data"]["bridge_sid"]


async def bridged_pair(h: Harness, *, co_located: bool = True) -> tuple[str, str, str]:
    """:func:`two_legs` bridged, once the second has joined: (first, second, bridge_sid)."""
    first, second = await two_legs(h, co_located=co_located)
    bridge_sid = await bridge_legs(h, first, second)
    await h.event(second, "leg_joined_bridge")
    return first, second, bridge_sid


async def get_bridge(h: Harness, bridge_sid: str) -> dict[str, Any]:
    status, envelope, _ = await h.call("GET", f"{bridges_path(h)}/{bridge_sid}")
    assert status == 200, envelope
    return envelope["response"]["data"]


# Shape (a): bridge these legs


@async_test
async def test_create_bridge_with_leg_sids_bridges_them_and_emits_the_documented_events() -> None:
    """POST /bridges {leg_sids, bridge_event_endpoint}: 202, bridge_created, then leg_joined_bridge on each leg."""
    async with harness() as h:
        first, second = await two_legs(h)
        body = {"leg_sids": [first, second], "bridge_event_endpoint": h.endpoint, "absorb_dtmf": True}
        status, envelope, _ = await h.call("POST", bridges_path(h), body)
        assert status == 202
        data = envelope["response"]["data"]
        assert set(data) == {"bridge_sid", "created_at", "account_sid", "leg_sids", "bridge_event_endpoint"}
        bridge_sid = data["bridge_sid"]
        assert len(bridge_sid) == 32 and bridge_sid.endswith("00000") and data["leg_sids"] == [first, second]
        created = await bridge_event(h, "bridge_created", bridge_sid)
        assert created["event_type"] == "bridge_lifecycle_event" and created["data"]["state"] == "active"
        for leg_sid in (first, second):
            joined = await h.event(leg_sid, "leg_joined_bridge")
            assert joined.event_type == "leg_lifecycle_event" and joined.detail == {"bridge_sid": bridge_sid}
        details = await get_bridge(h, bridge_sid)
        assert (details["sid"], details["state"], details["active_legs"]) == (bridge_sid, "active", [first, second])
        assert details["leg_sids"] == [first, second] and details["start_time"] and details["end_time"] is None
        report = await h.report(first)
    assert report["timeline"]["bridged"] is not None and report["bridge_audio"]
    assert report["bridges"][0]["bridge_sid"] == bridge_sid and report["bridges"][0]["legs"] == [first, second]
    assert report["warnings"] == {} and report["invariants"] == []


@async_test
async def test_stopping_a_bridge_lets_the_legs_go_and_keeps_them_up() -> None:
    """PUT /bridges/{sid} {"action":"stop"}: leg_left_bridge on each leg, then bridge_terminated; the legs stay connected."""
    async with harness() as h:
        first, second, bridge_sid = await bridged_pair(h)
        status, envelope, _ = await h.call("PUT", f"{bridges_path(h)}/{bridge_sid}", {"action": "stop"})
        assert status == 202 and envelope["response"]["data"]["action"] == "stop"
        ended = await bridge_event(h, "bridge_terminated", bridge_sid)
        assert ended["data"]["state"] == "terminal" and ended["data"]["active_legs"] == []
        for leg_sid in (first, second):
            left = await h.event(leg_sid, "leg_left_bridge")
            assert left.detail == {"bridge_sid": bridge_sid}
            assert h.sandbox.leg(leg_sid).state == "connected"
        details = await get_bridge(h, bridge_sid)
        assert (details["state"], details["terminal_status"], details["active_legs"]) == ("terminal", "completed", [])
        again, envelope, _ = await h.call("PUT", f"{bridges_path(h)}/{bridge_sid}", {"action": "stop"})
        assert again == 409 and envelope["response"]["error_data"]["code"] == "INVALID_BRIDGE_STATE"
        bad, _, _ = await h.call("PUT", f"{bridges_path(h)}/{bridge_sid}", {"action": "pause"})
        assert bad == 400
        report = await h.report(first)
    assert report["bridges"][0]["left_at"] is not None and report["bridge_audio"][0][1] is not None


@pytest.mark.parametrize(
    ("terminal_event", "names"),
    [("bridge_terminal", ["bridge_terminal"]), ("both", ["bridge_terminated", "bridge_terminal"])],
)
@async_test
async def test_the_end_of_a_bridge_can_be_named_bridge_terminal_or_both(terminal_event: str, names: list[str]) -> None:
    """bridges.terminal_event picks the documented alias bridge_terminal, or both names one after the other."""
    async with harness(fast_config(bridges=BridgeConfig(terminal_event=terminal_event))) as h:
        first, second, bridge_sid = await bridged_pair(h)
        await h.call("PUT", f"{bridges_path(h)}/{bridge_sid}", {"action": "stop"})
        await bridge_event(h, names[-1], bridge_sid)
    ends = [e["event_name"] for e in h.recorder.bridge_events if e["event_name"].startswith("bridge_termina")]
    assert ends == names


@async_test
async def test_a_bridge_of_a_leg_not_answered_fails_to_create() -> None:
    """bridge_failed_to_create (with event_data.error) when a leg is not answered; the bridge is terminal, failed."""
    async with harness() as h:
        answered = await h.answered_leg()
        unknown = "NoSuchLeg000000000000000000000000"
        bridge_sid = await bridge_legs(h, answered, unknown)
        failed = await bridge_event(h, "bridge_failed_to_create", bridge_sid)
        assert failed["event_data"]["error"]["error_code"] == "BRIDGE_CREATE_FAILED"
        assert unknown in failed["event_data"]["error"]["description"]
        details = await get_bridge(h, bridge_sid)
        assert (details["state"], details["terminal_status"]) == ("terminal", "failed")
        assert "leg_joined_bridge" not in h.recorder.names(answered)
        await h.hang_up(answered)


@async_test
async def test_legs_not_co_located_are_bridged_with_a_warning() -> None:
    """Bridging legs created without reference_leg_sid works (Exotel says they "should be" co-located) but warns."""
    async with harness() as h:
        first, second, bridge_sid = await bridged_pair(h, co_located=False)
        report = await h.report(second)
        summary = await h.summary()
        (bridge,) = (await h.call("GET", "/sim/v1/bridges"))[1]["bridges"]
    assert "bridge_not_co_located" in report["warnings"] and first in report["warnings"]["bridge_not_co_located"]
    assert set(summary["warnings"]["bridge_not_co_located"]) == {first, second} and summary["ok"]
    assert bridge["bridge_sid"] == bridge_sid and "bridge_not_co_located" in bridge["warnings"]


@pytest.mark.parametrize(
    ("body", "message"),
    [({"leg_sids": []}, "invalid leg_sids"), ({"leg_sids": "abc"}, "invalid leg_sids"),
     ({"bridge_type": "video"}, "invalid bridge_type"), ({"max_participants": 1}, "invalid max_participants"),
     ({"leg_sids": ["a"], "bridge_event_endpoint": "ws://x"}, "invalid bridge_event_endpoint")],
)  # fmt: skip
@async_test
async def test_create_bridge_bodies_are_validated(body: dict[str, Any], message: str) -> None:
    """A malformed create-bridge body is a 400 naming the field."""
    async with harness() as h:
        status, envelope, _ = await h.call("POST", bridges_path(h), body)
    assert status == 400 and envelope["response"]["error_data"]["message"] == message


@async_test
async def test_unknown_bridge_is_404() -> None:
    """GET, PUT and actions on a bridge SID the account never created are 404 envelopes."""
    async with harness() as h:
        path = f"{bridges_path(h)}/NoSuchBridge00000000000000000000"
        answers = [await h.call("GET", path), await h.call("PUT", path, {"action": "stop"})]
    assert [status for status, _, _ in answers] == [404, 404]


# Shape (b): an empty bridge that legs join


@async_test
async def test_an_empty_bridge_is_joined_and_left_with_exoml() -> None:
    """POST /bridges {bridge_type, max_participants}: 201 created; <JoinBridge> and <LeaveBridge/> move legs in and out."""
    async with harness() as h:
        status, envelope, _ = await h.call("POST", bridges_path(h), {"bridge_type": "audio", "max_participants": 2, "recording": False})
        assert status == 201
        data = envelope["response"]["data"]
        assert (data["bridge_type"], data["state"]) == ("audio", "created") and data["date_created"]
        bridge_sid = data["bridge_sid"]
        first, second = await two_legs(h)
        for leg_sid in (first, second):
            status, _ = await h.exoml(leg_sid, f'<JoinBridge bridgeSid="{bridge_sid}"/>')
            assert status == 202
            await h.event(leg_sid, "leg_joined_bridge")
        assert (await get_bridge(h, bridge_sid))["state"] == "active"
        third = await h.answered_leg("+919800000003", reference_leg_sid=first)
        full, envelope = await h.exoml(third, f'<JoinBridge bridgeSid="{bridge_sid}"/>')
        assert full == 409 and "full" in envelope["response"]["error_data"]["description"]
        missing, _ = await h.exoml(third, '<JoinBridge bridgeSid="NoSuchBridge00000000000000000000"/>')
        assert missing == 404
        await h.exoml(first, "<LeaveBridge/>")
        await h.event(first, "leg_left_bridge")
        assert (await get_bridge(h, bridge_sid))["active_legs"] == [second]
        await h.exoml(second, "<LeaveBridge/>")
        await h.event(second, "leg_left_bridge")
        details = await get_bridge(h, bridge_sid)
    assert details["state"] == "terminal"  # its last leg left


@async_test
async def test_a_leg_that_hangs_up_leaves_its_bridge_first() -> None:
    """leg_left_bridge comes before leg_terminated; the other leg stays up, alone in the bridge."""
    async with harness() as h:
        first, second, bridge_sid = await bridged_pair(h)
        await h.hang_up(first)
        assert h.recorder.names(first)[-2:] == ["leg_left_bridge", "leg_terminated"]
        details = await get_bridge(h, bridge_sid)
        assert details["active_legs"] == [second] and details["state"] == "active"
        assert h.sandbox.leg(second).timeline.heard["bridge"][-1][1] is not None  # nobody left to hear
        await h.hang_up(second)
        await bridge_event(h, "bridge_terminated", bridge_sid)


@async_test
async def test_bridge_actions_play_to_the_bridge_and_refer_sets_its_endpoint() -> None:
    """POST /bridges/{sid}/actions: <Refer> names the event endpoint, <Say> emits say_started/say_completed there."""
    async with harness() as h:
        _, envelope, _ = await h.call("POST", bridges_path(h), {})
        bridge_sid = envelope["response"]["data"]["bridge_sid"]
        refer = f'<?xml version="1.0"?><Flow><Refer bridgeEventEndpoint="{h.endpoint}"/></Flow>'
        status, envelope, _ = await h.call("POST", f"{bridges_path(h)}/{bridge_sid}/actions", {"exoml": refer})
        assert status == 202 and envelope["response"]["data"]["bridge_sid"] == bridge_sid
        say = "<Flow><Say>Please hold</Say></Flow>"
        status, envelope, _ = await h.call("POST", f"{bridges_path(h)}/{bridge_sid}/actions", {"exoml": say, "action_custom_param": "b1"})
        assert status == 202 and envelope["response"]["data"]["action_sid"]
        started = await bridge_event(h, "say_started", bridge_sid)
        assert started["event_type"] == "bridge_action_event" and started["action_custom_parameter"] == "b1"
        await bridge_event(h, "say_completed", bridge_sid)
        leg_verb, _, _ = await h.call("POST", f"{bridges_path(h)}/{bridge_sid}/actions", {"exoml": "<Flow><Hangup/></Flow>"})
    assert leg_verb == 400


@async_test
async def test_reference_leg_sid_must_name_a_leg_of_the_account() -> None:
    """create-leg with a reference_leg_sid the account does not know is a 400."""
    async with harness() as h:
        body = {"contact_uri": "+919800000001", "exophone": "+918030752400", "leg_event_endpoint": h.endpoint,
                "reference_leg_sid": "NoSuchLeg000000000000000000000000"}  # fmt: skip
        status, envelope, _ = await h.call("POST", h.legs_path, body)
    assert status == 400 and envelope["response"]["error_data"]["message"] == "invalid reference_leg_sid"
