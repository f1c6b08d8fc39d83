"""``python -m bot`` as a real process: start-up line, SIGTERM drain, workers, arguments."""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from websockets.asyncio.client import connect

from bot import fleet
from bot.__main__ import build_parser, main
from dialstream.agentstream import OutboundMedia
from dialstream.audio import tone
from tests.bot.exotel import FakeExotel, run
from tests.utils import MS

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (ws://\S+)")


class BotProcess:
    """A ``python -m bot`` child and the URLs its listening lines announced."""

    def __init__(self, args: list[str], *, lines: int = 1) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DIALSTREAM_METRICS_PORT")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "--log-level", "WARNING", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group, so that stop() also reaches --workers children.
            start_new_session=True,
        )
        self.output: list[str] = []
        self.urls = [self._listening_url() for _ in range(lines)]

    @property
    def url(self) -> str:
        return self.urls[0]

    def _listening_url(self, timeout: float = 10.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    break
                self.output.append(line)
                if match := LISTENING.search(line):
                    return match.group(1)
        raise AssertionError(f"bot did not start: {self.output} {self.stop()}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> str:
        """Kill the process (and its workers) if still running; return its stderr."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, stderr = self.process.communicate(timeout=10)
        return stderr


@pytest.fixture
def spawn_bot() -> Iterator[Callable[..., BotProcess]]:
    """Starts ``python -m bot`` processes and always kills them at the end of the test."""
    processes: list[BotProcess] = []

    def spawn(*args: str, lines: int = 1) -> BotProcess:
        processes.append(BotProcess(list(args), lines=lines))
        return processes[-1]

    yield spawn
    for process in processes:
        process.stop()


def consecutive_free_ports(count: int) -> int:
    """A port such that it and the next ``count - 1`` ports are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for offset in range(count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no consecutive free ports")


def test_parser_defaults():
    """The parser's defaults are the documented ones."""
    args = build_parser().parse_args([])
    assert (args.bot, args.host, args.port, args.workers, args.capacity) == ("greeter", "127.0.0.1", 8765, 1, 500)


@pytest.mark.parametrize(
    "argv",
    [["--workers", "0"], ["--auth", "nocolon"], ["--workers", "2", "--port", "0"], ["--bot", "nobody"]],
)
def test_main_rejects_bad_arguments(argv, capsys):
    """Invalid combinations exit with status 2 before anything starts."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_sigterm_drains_then_exits(spawn_bot, redis_url):
    """SIGTERM deregisters, refuses new streams, lets the call in progress finish, then exits 0."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    bot = spawn_bot(
        "--bot", "echo", "--port", "0", "--redis-url", redis_url, "--key-prefix", prefix, "--drain-timeout", "10"
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    async def scenario() -> None:
        assert [b.url for b in fleet.live_bots(client, prefix=prefix)] == [bot.url]
        async with FakeExotel(bot.url) as exotel:
            await exotel.start()
            await exotel.stream_audio(tone(exotel.media_format, 300, 500), realtime=False)
            await exotel.until(lambda: exotel.of_type(OutboundMedia))
            bot.signal(signal.SIGTERM)
            await asyncio.sleep(300 * MS)
            assert fleet.live_bots(client, prefix=prefix) == []
            with pytest.raises(OSError):
                async with connect(bot.url, open_timeout=1.0):
                    pass
            # The call goes on during the drain.
            count = len(exotel.of_type(OutboundMedia))
            await exotel.stream_audio(tone(exotel.media_format, 300, 800), realtime=False)
            await exotel.until(lambda: len(exotel.of_type(OutboundMedia)) > count)
            assert bot.process.poll() is None
            await exotel.stop()
            assert (await exotel.closed())[0] == 1000

    try:
        run(scenario())
        assert bot.wait(timeout=5) == 0
    finally:
        client.close()


def test_sigterm_drain_timeout_closes_calls_with_1001(spawn_bot):
    """Calls still running after the drain timeout are closed with 1001 and the process exits 0."""
    bot = spawn_bot("--bot", "echo", "--port", "0", "--redis-url", "", "--drain-timeout", "0.3")

    async def scenario() -> None:
        async with FakeExotel(bot.url) as exotel:
            await exotel.start()
            await asyncio.sleep(100 * MS)
            bot.signal(signal.SIGTERM)
            assert await exotel.closed(timeout=3.0) == (1001, "server shutting down")

    run(scenario())
    assert bot.wait(timeout=5) == 0


def test_workers_listen_on_consecutive_ports(spawn_bot):
    """--workers 2 runs two processes on consecutive ports; SIGTERM to the parent stops both."""
    port = consecutive_free_ports(2)
    bot = spawn_bot("--bot", "echo", "--port", str(port), "--workers", "2", "--redis-url", "", lines=2)
    assert sorted(bot.urls) == [f"ws://127.0.0.1:{port}/", f"ws://127.0.0.1:{port + 1}/"]

    async def scenario() -> None:
        for url in bot.urls:
            async with FakeExotel(url) as exotel:
                await exotel.start()
                await exotel.stop()
                assert (await exotel.closed())[0] == 1000

    run(scenario())
    bot.signal(signal.SIGTERM)
    assert bot.wait(timeout=10) == 0
