"""How many concurrent echo streams one bot process holds in real time.

The bot runs as its own process (``python -m bot --bot echo``) so that its CPU and
memory are measured alone; this process plays Exotel for N streams at once: 8 kHz
mu-law, one 100 ms ``media`` frame per stream every 100 ms, reading the echo back. The
stream count steps up through ``levels``; each level is held for ``hold`` seconds and
reports, for the bot process:

* ``p99_lateness_ms``: 99th percentile of outbound chunk lateness (how long after its
  real-time deadline each chunk left), from the bot's own histogram, so it is the upper
  bound of a bucket (1, 2, 5, 10, 20, 50... ms);
* ``cpu_percent`` (of one core) and ``cpu_ms_per_stream_second``;
* ``rss_mib`` and ``rss_kib_per_stream`` (growth over the idle process);
* ``echo_ratio``: audio received back / audio sent (about 1 when keeping up);
* ``generator_lag_p99_ms``: how late this process sent its frames (if high, the load
  generator, not the bot, is the bottleneck).

``max_streams_within_target`` is the largest level whose p99 lateness stayed within
``target_p99_ms``. Loopback only, bounded in time, stops by itself (Linux: reads /proc).

Example::

    python -m bench.bot_streams --levels 50 100 200 --hold 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from dialstream.agentstream import Connected, Media, MediaFormat, Start, encode
from dialstream.audio import tone
from dialstream.embedded_redis import free_port

__all__ = ["run"]

FORMAT = MediaFormat.mulaw(8000)
FRAME_SECONDS = 0.1
ROOT = Path(__file__).resolve().parents[1]


def run(
    *,
    levels: tuple[int, ...] = (25, 50, 100, 200),
    hold: float = 5.0,
    warmup: float = 1.5,
    target_p99_ms: float = 20.0,
) -> dict[str, object]:
    """Run the benchmark and return its results as a JSON-safe dict."""
    return asyncio.run(_run(levels, hold, warmup, target_p99_ms))


@dataclass
class _Load:
    sent_bytes: int = 0
    received_bytes: int = 0
    lags: list[float] = field(default_factory=list)
    failures: int = 0


async def _run(levels: tuple[int, ...], hold: float, warmup: float, target_p99_ms: float) -> dict[str, object]:
    port, metrics_port = free_port(), free_port()
    bot = subprocess.Popen(
        [
            sys.executable, "-m", "bot", "--bot", "echo", "--port", str(port), "--capacity", str(max(levels) + 10),
            "--metrics-port", str(metrics_port), "--redis-url", "", "--log-level", "WARNING", "--drain-timeout", "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    stop = asyncio.Event()
    load = _Load()
    tasks: list[asyncio.Task[None]] = []
    results: list[_LevelResult] = []
    try:
        _wait_listening(bot)
        url = f"ws://127.0.0.1:{port}/"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as http:
            idle_rss = _rss_kib(bot.pid)
            for level in levels:
                while len(tasks) < level:
                    tasks.append(asyncio.create_task(_stream(url, len(tasks), stop, load)))
                    if len(tasks) % 20 == 0:
                        await asyncio.sleep(0.01)  # spread the stream starts over the frame period
                await asyncio.sleep(warmup)
                before = await _snapshot(http, bot.pid)
                load.sent_bytes = load.received_bytes = 0
                load.lags.clear()
                await asyncio.sleep(hold)
                after = await _snapshot(http, bot.pid)
                results.append(_level_result(level, before, after, load, idle_rss))
                if results[-1].p99_lateness_ms > target_p99_ms * 4 or load.failures:
                    break  # far past the target: higher levels only waste time
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        _stop(bot)
    within = [r for r in results if r.p99_lateness_ms <= target_p99_ms and r.echo_ratio >= 0.9]
    return {
        "bench": "bot_streams",
        "format": FORMAT.to_content_type(),
        "target_p99_ms": target_p99_ms,
        "max_streams_within_target": max((r.streams for r in within), default=0),
        "levels": [asdict(r) for r in results],
        "stream_failures": load.failures,
    }


async def _stream(url: str, index: int, stop: asyncio.Event, load: _Load) -> None:
    sid = f"bench{index:05d}"
    frame = encode(Media(sid, 0, 0, 0, tone(FORMAT, 300 + index % 200, FRAME_SECONDS * 1000)))
    frame_bytes = FORMAT.bytes_for(FRAME_SECONDS)
    loop = asyncio.get_running_loop()
    try:
        async with connect(url, compression=None, open_timeout=10) as ws:
            await ws.send(encode(Connected()))
            await ws.send(encode(Start(sid, f"call-{sid}", "bench", media_format=FORMAT)))
            reader = asyncio.create_task(_count_echo(ws, load))
            deadline = loop.time()
            while not stop.is_set():
                await ws.send(frame)
                load.sent_bytes += frame_bytes
                deadline += FRAME_SECONDS
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    load.lags.append(-delay)
                    continue
                load.lags.append(max(0.0, loop.time() - deadline))
            await ws.close()
            await reader
    except (OSError, ConnectionClosed, TimeoutError):
        load.failures += 1


async def _count_echo(ws: ClientConnection, load: _Load) -> None:
    async for message in ws:
        # The payload is about 3/4 of the base64 text; exact bytes are not needed for a ratio.
        match = re.search(r'"payload":"([^"]*)"', str(message))
        if match:
            load.received_bytes += len(match.group(1)) * 3 // 4


@dataclass
class _Snapshot:
    at: float
    cpu_seconds: float
    rss_kib: int
    lateness_buckets: dict[float, float]


async def _snapshot(http: httpx.AsyncClient, pid: int) -> _Snapshot:
    text = (await http.get("/metrics")).text
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "dialstream_bot_chunk_lateness_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets[float(sample.labels["le"])] = sample.value
    return _Snapshot(time.monotonic(), _cpu_seconds(pid), _rss_kib(pid), buckets)


@dataclass
class _LevelResult:
    streams: int
    chunks: int
    p99_lateness_ms: float
    cpu_percent: float
    cpu_ms_per_stream_second: float
    rss_mib: float
    rss_kib_per_stream: float
    echo_ratio: float
    generator_lag_p99_ms: float


def _level_result(streams: int, before: _Snapshot, after: _Snapshot, load: _Load, idle_rss: int) -> _LevelResult:
    wall = after.at - before.at
    cpu = after.cpu_seconds - before.cpu_seconds
    counts = {
        le: after.lateness_buckets.get(le, 0) - before.lateness_buckets.get(le, 0) for le in after.lateness_buckets
    }
    total = counts.get(float("inf"), 0)
    p99 = next((le for le in sorted(counts) if total and counts[le] >= 0.99 * total), float("inf"))
    lags = sorted(load.lags)
    return _LevelResult(
        streams=streams,
        chunks=int(total),
        # No chunk at all (or all beyond the last bucket) counts as hopelessly late.
        p99_lateness_ms=round(p99 * 1000, 1) if p99 != float("inf") else 1e9,
        cpu_percent=round(100 * cpu / wall, 1),
        cpu_ms_per_stream_second=round(1000 * cpu / wall / streams, 3),
        rss_mib=round(after.rss_kib / 1024, 1),
        rss_kib_per_stream=round((after.rss_kib - idle_rss) / streams, 1),
        echo_ratio=round(load.received_bytes / load.sent_bytes, 3) if load.sent_bytes else 0.0,
        generator_lag_p99_ms=round(1000 * lags[int(0.99 * (len(lags) - 1))], 1) if lags else 0.0,
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wait_listening(bot: subprocess.Popen[str], timeout: float = 15.0) -> None:
    assert bot.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([bot.stdout], [], [], 0.1)[0]:
            line = bot.stdout.readline()
            if "listening on" in line:
                return
            if not line:
                break
    raise RuntimeError("the bot process did not start")


def _stop(bot: subprocess.Popen[str]) -> None:
    if bot.poll() is None:
        bot.send_signal(signal.SIGTERM)
        try:
            bot.wait(timeout=5)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()
    if bot.stdout is not None:
        bot.stdout.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bot_streams", description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--target-p99-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    print(json.dumps(run(levels=tuple(args.levels), hold=args.hold, target_p99_ms=args.target_p99_ms), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
