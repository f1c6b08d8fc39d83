"""Whole campaigns against the shipped scenarios, with a tiny reactive "worker" written here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dialstream.exotel import agentstream as proto
from dialstream.exotel.audio import silence
from dialstream.exotel.events import LegEvent
from sim.config import DeliveryPolicy, SandboxConfig
from tests.sim.harness import Bot, Harness, async_test, harness, serve_bot, until
from tests.utils import MS

SCENARIOS = Path(__file__).resolve().parents[2] / "sim" / "scenarios"
CONTACTS = [f"+9198{i:08d}" for i in range(1, 21)]


async def prompt(ws: Any, bot: Bot, start: proto.Start) -> None:
    """Speak 800 ms as soon as the stream starts, in 3200-byte chunks (400 ms of mu-law)."""
    for _ in range(2):
        await ws.send(proto.encode(proto.OutboundMedia(start.stream_sid, silence(start.media_format, 400))))


def greeting_worker(h: Harness, bot: Bot) -> Any:
    """Approach 2: on leg_answered start the stream and a greeting; on stream_started stop it."""
    seen: set[str] = set()

    async def retrying(call: Any) -> None:
        for _ in range(20):  # injected 429/5xx: back off briefly and retry
            status, envelope = await call()
            if status < 429:
                return
            await asyncio.sleep(50 * MS)

    async def react(event: LegEvent) -> None:
        if event.event_sid in seen:  # duplicates are the receiver's to drop
            return
        seen.add(event.event_sid)
        leg = event.leg_sid
        if event.event_name == "leg_answered":
            await asyncio.gather(
                retrying(lambda: h.action(leg, "start_stream", direction="bidirectional", url=bot.url)),
                retrying(lambda: h.action(leg, "start_say", text="Hello!")),
            )
        elif event.event_name == "stream_started":
            await retrying(lambda: h.action(leg, "stop_say"))

    return react


@async_test
async def test_demo_scenario_campaign_meets_every_invariant() -> None:
    """The demo's 20 contacts through approach 2: 17 answered with one stream each, 2 busy, 1 no-answer, no violations."""
    config = SandboxConfig.from_yaml(SCENARIOS / "demo.yaml")
    async with harness(config) as h, serve_bot(Bot(script=prompt)) as bot:
        h.recorder.react = greeting_worker(h, bot)
        legs = [await h.create_leg(number, ring_timeout=3, custom_param=f"demo:{i}") for i, number in enumerate(CONTACTS)]
        await until(lambda: all(h.sandbox.leg(leg).state == "terminal" for leg in legs), timeout=15, what="every call ended")
        for leg in legs:
            await h.settled(leg)
        await h.recorder.drain()
        summary = await h.summary()
        assert summary["outcomes"] == {"completed": 17, "busy": 2, "no-answer": 1}
        assert summary["ok"], summary["invariants"]
        assert summary["figures"]["dead_air_ms"]["count"] == 17
        assert summary["figures"]["dispatch_latency_ms"]["count"] == 17
        assert summary["events"]["undelivered"] == 0 and summary["events"]["pending"] == 0


@async_test
async def test_faults_scenario_keeps_the_sandbox_consistent() -> None:
    """Under every fault at once, each leg still ends and every event gets a final delivery result."""
    config = SandboxConfig.from_yaml(SCENARIOS / "faults.yaml", delivery=DeliveryPolicy(attempt_timeout_s=0.2, attempt_interval_s=0.2))
    async with harness(config) as h, serve_bot(Bot(script=prompt)) as bot:
        h.recorder.react = greeting_worker(h, bot)
        legs = []
        for number in CONTACTS:
            while True:  # the create-leg call itself may hit an injected 429/5xx
                status, envelope, _ = await h.call("POST", h.legs_path, {
                    "contact_uri": number, "exophone": "+918030752400", "leg_event_endpoint": h.endpoint,
                    "ring_timeout": 1, "time_limit": 3, "amd_enable": True,
                })  # fmt: skip
                if status == 202:
                    legs.append(envelope["response"]["data"]["leg_sid"])
                    break
        await until(lambda: all(h.sandbox.leg(leg).state == "terminal" for leg in legs), timeout=15, what="every call ended")
        for leg in legs:
            await h.settled(leg)
        await h.recorder.drain()
        summary = await h.summary()
        assert summary["calls"] == 20 and summary["live"] == 0
        assert summary["events"]["pending"] == 0
        assert sum(summary["outcomes"].values()) == 20
