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

from bot.__main__ import build_config, build_parser, main
from dialstream.app.embedded_redis import free_port
from dialstream.exotel.agentstream import OutboundMedia
from dialstream.exotel.audio import tone
from dialstream.settings import Settings
from dialstream.state import fleet
from tests.bot.exotel import run, streaming
from tests.utils import MS

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (ws://\S+)")


class BotProcess:
    """A ``python -m bot`` child and the URLs its listening lines announced."""

    def __init__(self, args: list[str], *, lines: int = 1, env: dict[str, str] | None = None) -> None:
        # Settings the bot reads from the environment come only from the test.
        inherited = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("DIALSTREAM_")}
        env = inherited | (env or {})
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
        self.urls = self._listening_urls(lines)

    @property
    def url(self) -> str:
        return self.urls[0]

    def _listening_urls(self, count: int, timeout: float = 10.0) -> list[str]:
        # --workers children share the pipe and print at the same moment, so their lines
        # may interleave (text, text, newline, newline): read raw and match the whole.
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                data = os.read(fd, 65536)
                if not data:
                    break
                self.output.append(data.decode())
                urls = LISTENING.findall("".join(self.output))
                if len(urls) >= count:
                    return urls[:count]
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

    def spawn(*args: str, lines: int = 1, env: dict[str, str] | None = None) -> BotProcess:
        processes.append(BotProcess(list(args), lines=lines, env=env))
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
    [
        ["--workers", "0"],
        ["--auth", "u:p"],  # no such flag: credentials never on a command line
        ["--workers", "2", "--port", "0"],
        ["--bot", "nobody"],
        ["--public-url", "ws://u:p@bot:8765/"],  # would put the password in the fleet registry
    ],
)
def test_main_rejects_bad_arguments(argv, capsys):
    """Invalid combinations exit with status 2 before anything starts."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_settings_supply_credentials_public_url_and_redis():
    """Basic auth comes from the settings only; the public URL and the Redis URL unless a flag overrides them."""
    settings = Settings.from_env(
        {
            "DIALSTREAM_BOT_AUTH_USER": "exotel",
            "DIALSTREAM_BOT_AUTH_PASSWORD": "s3cret",
            "DIALSTREAM_BOT_PUBLIC_URL": "wss://bots.example.com/media",
            "REDIS_URL": "redis://10.0.0.5:6379/0",
        }
    )
    config = build_config(build_parser().parse_args([]), settings)
    assert config.basic_auth == ("exotel", "s3cret")
    assert config.registration.public_url == "wss://bots.example.com/media"
    assert config.registration.redis_url == "redis://10.0.0.5:6379/0"
    flags = build_parser().parse_args(["--public-url", "ws://lb:9000/", "--redis-url", ""])
    config = build_config(flags, settings)
    assert (config.basic_auth, config.registration.public_url, config.registration.redis_url) == (
        ("exotel", "s3cret"),
        "ws://lb:9000/",
        "",
    )
    unset = build_config(build_parser().parse_args([]), Settings.from_env({}))
    assert (unset.basic_auth, unset.registration.public_url) == (None, "")


def test_metrics_listen_on_the_metrics_bind_address(spawn_bot):
    """/metrics is served on DIALSTREAM_METRICS_BIND, not on the bot's own --host."""
    port = free_port()
    spawn_bot(
        "--bot", "echo", "--host", "127.0.0.1", "--port", "0", "--redis-url", "",
        env={"DIALSTREAM_METRICS_PORT": str(port), "DIALSTREAM_METRICS_BIND": "127.0.0.2"},
    )  # fmt: skip
    with socket.create_connection(("127.0.0.2", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert b"dialstream_bot_streams_active" in b"".join(iter(lambda: sock.recv(65536), b""))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_sigterm_drains_then_exits(spawn_bot, redis_url):
    """SIGTERM deregisters, refuses new streams, lets the call in progress finish, then exits 0."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    bot = spawn_bot(
        "--bot", "echo", "--port", "0", "--redis-url", redis_url, "--key-prefix", prefix, "--drain-timeout", "10"
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    async def scenario() -> None:
        assert [b.url for b in fleet.live_bots(client, prefix=prefix)] == [bot.url]
        async with streaming(bot.url) as exotel:
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
        async with streaming(bot.url) as exotel:
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
            async with streaming(url) as exotel:
                await exotel.stop()
                assert (await exotel.closed())[0] == 1000

    run(scenario())
    bot.signal(signal.SIGTERM)
    assert bot.wait(timeout=10) == 0


def test_workers_register_the_public_url_from_the_environment_each_on_its_port(spawn_bot, redis_url):
    """With DIALSTREAM_BOT_PUBLIC_URL and --workers 2, each worker registers that URL with its own port."""
    port = consecutive_free_ports(2)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    bot = spawn_bot(
        "--bot", "echo", "--port", str(port), "--workers", "2", "--redis-url", redis_url, "--key-prefix", prefix,
        lines=2, env={"DIALSTREAM_BOT_PUBLIC_URL": "ws://lb.example:9000/media"},
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert sorted(b.url for b in fleet.live_bots(client, prefix=prefix)) == [
            "ws://lb.example:9000/media",
            "ws://lb.example:9001/media",
        ]
    finally:
        client.close()
    bot.signal(signal.SIGTERM)
    assert bot.wait(timeout=10) == 0
