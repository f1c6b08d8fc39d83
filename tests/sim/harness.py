"""A real sandbox, a recording gRPC event receiver and a scriptable AgentStream bot, on loopback.

Tests are plain functions decorated with :func:`async_test`, which runs them in a fresh
event loop with an overall deadline (pytest-asyncio is not a project dependency).
Everything a harness starts is stopped when its ``async with`` block ends.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import websockets
from google.protobuf import json_format

from dialstream.exotel import agentstream as proto
from dialstream.exotel.events import LegEvent
from dialstream.exotel.proto import CallbackEventResponse, CallbackServiceServicer, add_servicer, event_from_message
from sim.callee import CalleeProfile
from sim.config import SandboxConfig, Timing
from sim.sandbox import Sandbox
from sim.scenario import Scenario
from tests.utils import MS, until

TEST_DEADLINE = 20_000 * MS
WAIT = 5_000 * MS  # as tests.utils.until

# Fast, deterministic defaults: answer after 20-40 ms, never hang up on their own.
FAST_TIMING = Timing(connecting_ms=5, setup_ms=10, say_start_ms=20, play_start_ms=15, stream_setup_ms=30, hangup_ms=5)
ANSWERING = CalleeProfile(ring_ms=(20, 40), talk_ms=None)


def fast_config(profile: CalleeProfile = ANSWERING, **changes: Any) -> SandboxConfig:
    scenario = changes.pop("scenario", Scenario(callee=profile))
    timing = changes.pop("timing", FAST_TIMING)
    return SandboxConfig(seed=1, timing=timing, scenario=scenario, **changes)


def async_test(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an ``async def`` test in its own event loop, failing it after ``TEST_DEADLINE``."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(TEST_DEADLINE):
                await fn(*args, **kwargs)
            # grpc.aio's server finishes an RPC cut off by its stop a few loop turns later:
            # give tasks a moment to end, then any still pending were leaked.
            leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if leftovers:
                await asyncio.wait(leftovers, timeout=1.0)
            leftovers = [t for t in leftovers if not t.done()]
            assert not leftovers, f"tasks left behind: {leftovers}"

        asyncio.run(bounded())

    return run


class Recorder(CallbackServiceServicer):
    """The leg-event receiver: records each delivery; ``fail_next`` rejects that many first.

    ``react``, when set, is started as a task for every event received (a stand-in for the
    workers); :meth:`drain` waits for those tasks.
    """

    def __init__(self) -> None:
        self.events: list[LegEvent] = []
        self.bridge_events: list[dict[str, Any]] = []  # bridge_* events (no leg: not LegEvents), as JSON
        self.metadata: list[dict[str, str]] = []  # each call's invocation metadata
        self.fail_next = 0
        self.react: Callable[[LegEvent], Awaitable[None]] | None = None
        self._reactions: set[asyncio.Task[None]] = set()

    async def TriggerCallbackEvent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.metadata.append({key: str(value) for key, value in context.invocation_metadata() or ()})
        if self.fail_next:
            self.fail_next -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "receiver told to fail")
        if request.event_type == "bridge_lifecycle_event" or request.event_type == "bridge_action_event":
            self.bridge_events.append(json_format.MessageToDict(request, preserving_proto_field_name=True))
            return CallbackEventResponse(success=True, message="recorded")
        event = event_from_message(request, received_at=time.time())
        self.events.append(event)
        if self.react is not None:
            task = asyncio.create_task(self.react(event))
            self._reactions.add(task)
            task.add_done_callback(self._reactions.discard)
        return CallbackEventResponse(success=True, message="recorded")

    async def drain(self) -> None:
        while self._reactions:
            await asyncio.gather(*self._reactions)

    async def cancel_reactions(self) -> None:
        self.react = None
        for task in list(self._reactions):
            task.cancel()
        await asyncio.gather(*self._reactions, return_exceptions=True)

    def of(self, leg_sid: str) -> list[LegEvent]:
        return [e for e in self.events if e.leg_sid == leg_sid]

    def names(self, leg_sid: str) -> list[str]:
        return [e.event_name for e in self.of(leg_sid)]


BotScript = Callable[["websockets.ServerConnection", "Bot", proto.Start], Awaitable[None]]


@dataclass
class Bot:
    """An AgentStream bot server. ``script`` runs after ``start``; frames are recorded."""

    script: BotScript | None = None
    frames: list[Any] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the frames as received
    headers: list[Any] = field(default_factory=list)
    connections: int = 0
    url: str = ""

    async def handler(self, ws: websockets.ServerConnection) -> None:
        self.connections += 1
        self.headers.append(ws.request.headers if ws.request else None)
        start: proto.Start | None = None
        tasks = []
        try:
            async for text in ws:
                self.texts.append(str(text))
                message = proto.parse_from_exotel(text)
                self.frames.append(message)
                if isinstance(message, proto.Start):
                    start = message
                    if self.script is not None:
                        tasks.append(asyncio.create_task(self.script(ws, self, start)))
        except websockets.ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def of(self, kind: type) -> list[Any]:
        return [f for f in self.frames if isinstance(f, kind)]


@asynccontextmanager
async def serve_bot(bot: Bot, **kwargs: Any) -> AsyncIterator[Bot]:
    async with websockets.serve(bot.handler, "127.0.0.1", 0, **kwargs) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        bot.url = f"ws://127.0.0.1:{port}/media"
        yield bot


@dataclass
class Harness:
    sandbox: Sandbox
    recorder: Recorder
    http: aiohttp.ClientSession
    endpoint: str

    @property
    def legs_path(self) -> str:
        return f"/v2/accounts/{self.sandbox.config.account_sid}/legs"

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.http.request(method, path, json=body, **kwargs) as response:
            return response.status, await response.json(), response.headers

    async def create_leg(self, contact_uri: str = "+919800000001", **fields: Any) -> str:
        body = {"contact_uri": contact_uri, "exophone": "+918030752400", "leg_event_endpoint": self.endpoint, **fields}
        status, envelope, _ = await self.call("POST", self.legs_path, body)
        assert status == 202, envelope
        return envelope["response"]["data"]["leg_sid"]

    async def action(self, leg_sid: str, name: str, **body: Any) -> tuple[int, Any]:
        status, envelope, _ = await self.call("POST", f"{self.legs_path}/{leg_sid}/actions/{name}", body)
        return status, envelope

    async def exoml(self, leg_sid: str, verbs: str, **body: Any) -> tuple[int, Any]:
        document = f'<?xml version="1.0" encoding="UTF-8"?><Flow>{verbs}</Flow>'
        status, envelope, _ = await self.call("POST", f"{self.legs_path}/{leg_sid}/actions", {"exoml": document, **body})
        return status, envelope

    async def event(self, leg_sid: str, name: str, timeout: float = WAIT) -> LegEvent:
        def found() -> LegEvent | None:
            return next((e for e in self.recorder.of(leg_sid) if e.event_name == name), None)

        return await until(found, timeout, f"{name} on {leg_sid}")

    async def settled(self, leg_sid: str) -> dict[str, Any]:
        """The leg's report once every event emitted so far has a final delivery result."""
        deadline = time.monotonic() + WAIT
        while True:
            current = await self.report(leg_sid)
            if all(e["delivered"] is not None for e in current["events"]):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"events of {leg_sid} still in flight: {current['events']}")
            await asyncio.sleep(5 * MS)

    async def report(self, leg_sid: str) -> dict[str, Any]:
        async with self.http.get(f"/sim/v1/calls/{leg_sid}") as response:
            assert response.status == 200
            return await response.json()

    async def summary(self) -> dict[str, Any]:
        async with self.http.get("/sim/v1/summary") as response:
            return await response.json()

    async def answered_leg(self, contact_uri: str = "+919800000001", **fields: Any) -> str:
        leg_sid = await self.create_leg(contact_uri, **fields)
        await self.event(leg_sid, "leg_answered")
        return leg_sid

    async def request_stream(self, leg_sid: str, url: str, **body: Any) -> None:
        """start_stream to ``url`` (bidirectional unless ``direction`` is given), accepted with a 202."""
        status, envelope = await self.action(leg_sid, "start_stream", **{"direction": "bidirectional", "url": url, **body})
        assert status == 202, envelope

    async def start_stream(self, leg_sid: str, url: str, **body: Any) -> LegEvent:
        """:meth:`request_stream`, then the stream_started that follows."""
        await self.request_stream(leg_sid, url, **body)
        return await self.event(leg_sid, "stream_started")

    async def hang_up(self, leg_sid: str) -> None:
        status, envelope = await self.exoml(leg_sid, "<Hangup/>")
        assert status == 202, envelope
        await self.event(leg_sid, "leg_terminated")


@asynccontextmanager
async def streaming_leg(
    config: SandboxConfig | None = None, bot: Bot | None = None, *, query: str = "", started: bool = True, **body: Any
) -> AsyncIterator[tuple[Harness, Bot, str]]:
    """A :func:`harness`, ``bot`` served (a plain :class:`Bot` by default) and an answered leg streaming
    to it: start_stream to its URL + ``query`` (with ``body``) accepted and, unless ``started`` is
    false, stream_started emitted. Yields (harness, bot, leg SID)."""
    async with harness(config) as h, serve_bot(bot or Bot()) as served:
        leg_sid = await h.answered_leg()
        if started:
            await h.start_stream(leg_sid, served.url + query, **body)
        else:
            await h.request_stream(leg_sid, served.url + query, **body)
        yield h, served, leg_sid


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@asynccontextmanager
async def harness(
    config: SandboxConfig | None = None,
    *,
    auth: bool = True,
    credentials: grpc.ServerCredentials | None = None,
    scheme: str = "grpc",
) -> AsyncIterator[Harness]:
    """A sandbox and a recording gRPC receiver (over TLS with ``credentials``, reached as ``scheme://``)."""
    config = config or fast_config()
    server = grpc.aio.server()
    recorder = Recorder()
    add_servicer(recorder, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    sandbox = Sandbox(config)
    try:
        await sandbox.start()
        headers = {"Authorization": basic_auth(config.api_key, config.api_token)} if auth else None
        async with aiohttp.ClientSession(base_url=sandbox.url, headers=headers) as http:
            try:
                yield Harness(sandbox, recorder, http, f"{scheme}://127.0.0.1:{port}")
            finally:
                await recorder.cancel_reactions()
    finally:
        await sandbox.stop()
        await server.stop(None)
