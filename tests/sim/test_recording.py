"""Recording: <StartRecording>/<StopRecording/>, create-leg record, bridge recording, and the served WAV."""

from __future__ import annotations

import io
import wave

import aiohttp

from tests.sim.harness import Harness, async_test, harness, until


async def fetch(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.content_type, await response.read()


def names(h: Harness, leg_sid: str) -> list[str]:
    return [n for n in h.recorder.names(leg_sid) if n.startswith("recording_") or n == "leg_terminated"]


@async_test
async def test_exoml_recording_emits_started_stopped_available_with_a_served_wav() -> None:
    """<StartRecording>/<StopRecording/>: recording_started, recording_stopped, then recording_available whose URL serves the audio."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, _ = await h.exoml(leg_sid, '<StartRecording direction="both" format="mp3" storageType="https"/>')
        assert status == 202
        started = await h.event(leg_sid, "recording_started")
        sid = started.detail["recording_sid"]
        assert started.detail == {"recording_sid": sid, "direction": "both", "format": "mp3"} and len(sid) == 32
        _, envelope, _ = await h.call("GET", f"{h.legs_path}/{leg_sid}?fields=recording_status")
        assert envelope["response"]["data"]["additional_info"] == {"recording_status": "recording"}
        await h.exoml(leg_sid, "<StopRecording/>", action_custom_param="rec")
        stopped = await h.event(leg_sid, "recording_stopped")
        available = await h.event(leg_sid, "recording_available")
        assert stopped.action_custom_parameter == available.action_custom_parameter == "rec"
        assert available.detail["status"] == "completed" and available.detail["recording_sid"] == sid
        assert available.detail["duration_ms"] == stopped.detail["duration_ms"] > 0
        url = available.detail["url"]
        assert url == f"{h.sandbox.url}/sim/v1/recordings/{sid}.wav"
        status, content_type, body = await fetch(url)
        report = await h.report(leg_sid)
        await h.hang_up(leg_sid)
    assert (status, content_type) == (200, "audio/wav")
    with wave.open(io.BytesIO(body)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 8000)
        assert audio.getnframes() == int(available.detail["duration_ms"] / 1000 * 8000)
    (recording,) = report["recordings"]
    assert recording["recording_sid"] == sid and recording["available"] is True and recording["url"] == url


@async_test
async def test_create_leg_record_records_from_the_answer_until_the_hang_up() -> None:
    """record: true on create-leg starts recording at leg_answered; the hang-up stops it, available before leg_terminated."""
    async with harness() as h:
        leg_sid = await h.answered_leg(record=True)
        started = await h.event(leg_sid, "recording_started")
        assert started.action_sid == "" and h.recorder.names(leg_sid).index("recording_started") > h.recorder.names(leg_sid).index("leg_answered")
        await h.hang_up(leg_sid)
    assert names(h, leg_sid) == ["recording_started", "recording_stopped", "recording_available", "leg_terminated"]


@async_test
async def test_recording_attributes_are_validated_and_unknown_recordings_are_404() -> None:
    """A StartRecording direction or format outside the documented values is a 400; an unknown recording URL a 404."""
    async with harness() as h:
        leg_sid = await h.answered_leg()
        status, envelope = await h.exoml(leg_sid, '<StartRecording direction="sideways"/>')
        assert status == 400 and envelope["response"]["error_data"]["message"] == "invalid direction"
        status, _ = await h.exoml(leg_sid, '<StartRecording format="flac"/>')
        assert status == 400
        missing, _, _ = await fetch(f"{h.sandbox.url}/sim/v1/recordings/Nope.wav")
        await h.hang_up(leg_sid)
    assert missing == 404


@async_test
async def test_a_bridge_created_with_recording_records_its_conversation() -> None:
    """A bridge created with "recording": true records from its first leg; its end stops and delivers the recording."""
    async with harness() as h:
        first = await h.answered_leg("+919800000001")
        second = await h.answered_leg("+919800000002", reference_leg_sid=first)
        path = f"/v2/accounts/{h.sandbox.config.account_sid}/bridges"
        _, envelope, _ = await h.call("POST", path, {"bridge_type": "audio", "recording": True})
        bridge_sid = envelope["response"]["data"]["bridge_sid"]
        refer = f'<Flow><Refer bridgeEventEndpoint="{h.endpoint}"/></Flow>'
        await h.call("POST", f"{path}/{bridge_sid}/actions", {"exoml": refer})
        for leg_sid in (first, second):
            await h.exoml(leg_sid, f'<JoinBridge bridgeSid="{bridge_sid}"/>')
            await h.event(leg_sid, "leg_joined_bridge")
        await h.call("PUT", f"{path}/{bridge_sid}", {"action": "stop"})

        def ended() -> bool:
            return any(e["event_name"] == "bridge_terminated" for e in h.recorder.bridge_events)

        await until(ended)
        await h.hang_up(first)
        await h.hang_up(second)
    bridge_names = [e["event_name"] for e in h.recorder.bridge_events]
    assert bridge_names[-3:] == ["recording_stopped", "recording_available", "bridge_terminated"]
    assert "recording_started" in bridge_names
    started = next(e for e in h.recorder.bridge_events if e["event_name"] == "recording_started")
    assert started["event_type"] == "bridge_action_event"
