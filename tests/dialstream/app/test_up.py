"""``dialstream up`` as a user runs it: a subprocess that prints its components, serves
Flower and every component's /metrics, carries a campaign, and stops everything on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from dialstream.app.up import READY_LINE, uses_sandbox
from dialstream.broker.celery_app import HANDLE_LEG_EVENT
from dialstream.domain.campaign import CampaignConfig, Contact
from dialstream.settings import Settings
from dialstream.state.store import Store
from tests.campaigns import submit
from tests.dialstream.app.processes import alive, descendants, pids_in_groups
from tests.utils import settings_free_env, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "up-test-secret"
LINE = re.compile(r"^dialstream up: (\S+)\s+(\S+).*?(?:metrics (\S+))?$")


def read_until_ready(stream: IO[str], timeout: float) -> list[str]:
    """The status lines up to READY_LINE; fails if the process ends or stalls first."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise AssertionError("dialstream up exited early:\n" + "".join(lines))
        lines.append(line.rstrip("\n"))
        if READY_LINE in line:
            return lines
    raise AssertionError("dialstream up not ready in time:\n" + "\n".join(lines))


NOT_COMPONENTS = ("starting;", "dialstream", "dashboard", "apikey", "state")


def clean_env() -> dict[str, str]:
    """The environment without any dialstream or Exotel setting (and no REDIS_URL)."""
    return {k: v for k, v in settings_free_env().items() if k != "REDIS_URL"}


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, tuple[str, str | None]]]]:
    """``python -m dialstream.app.up`` in ``tmp_path/here`` with an embedded Valkey and free Flower and API
    ports; the status lines by component (and the dashboard, apikey and state lines under their names)."""
    env = {**clean_env(), "DIALSTREAM_FLOWER_PASSWORD": PASSWORD}
    (tmp_path / "here").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "dialstream.app.up", "--flower-port", "0", "--api-port", "0", "--bots", "1", "--log-dir", str(tmp_path / "logs")],
        cwd=tmp_path / "here", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = read_until_ready(process.stdout, timeout=90)
        components = {}
        for line in lines:
            match = LINE.match(line)
            if match and match.group(1) not in ("starting;", "dialstream"):
                components[match.group(1)] = (match.group(2), match.group(3))
        yield process, components
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def scrape(url: str) -> dict[str, float]:
    """Every sample of a /metrics page, keyed by name and labels."""
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_up_serves_flower_and_metrics_carries_calls_and_stops_everything_on_ctrl_c(up):
    """Every component prints a line; Flower (with auth) and each /metrics answer; tasks show masked args; SIGINT stops all."""
    process, components = up
    extra = {name: components.pop(name) for name in NOT_COMPONENTS if name in components}
    assert set(components) == {"redis", "sandbox", "ingress", "events-0", "dial-0", "webhooks-0", "bot-0", "api", "flower"}
    assert all(metrics for name, (_, metrics) in components.items() if name != "redis")
    assert extra["dashboard"][0] == f"{components['api'][0]}/dashboard#key={extra['apikey'][0]}"
    flower = components["flower"][0]
    assert httpx.get(f"{flower}/healthcheck", timeout=10).text == "OK"
    assert httpx.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{flower}/api/workers", auth=("dialstream", PASSWORD), timeout=10).status_code == 200

    # A small campaign through the running stack.
    redis_url = components["redis"][0]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = Store(client)
    campaign = CampaignConfig(f"up-{uuid.uuid4().hex[:6]}", greeting_text="Hello!", window="any")
    phones = ["+919900001111", "+919900002222"]
    submit(store, campaign, [Contact(f"c{i}", phone) for i, phone in enumerate(phones)])
    wait_for(lambda: store.progress(campaign.campaign_id)[0] == len(phones), timeout=60)
    client.close()

    def flower_tasks() -> dict:
        response = httpx.get(
            f"{flower}/api/tasks", params={"taskname": HANDLE_LEG_EVENT}, auth=("dialstream", PASSWORD), timeout=10
        )
        return response.json()

    tasks = wait_for(lambda: [t for t in flower_tasks().values() if t.get("args")], timeout=30)
    page = httpx.get(f"{flower}/tasks", auth=("dialstream", PASSWORD), timeout=10).text
    assert "<th>args</th>" in page.replace(" ", "").lower() or ">args<" in page.lower()  # the args column is shown
    for task in tasks:
        assert f"campaign={campaign.campaign_id}" in task["args"] and "leg=" in task["args"]
        assert not any(phone in task["args"] or phone[1:] in task["args"] for phone in phones)

    metrics = {name: scrape(url) for name, (_, url) in components.items() if url}
    assert metrics["ingress"]["dialstream_ingress_events_total{result=accepted}"] > 0
    assert metrics["sandbox"]["dialstream_sim_dispatch_latency_seconds_count{}"] == len(phones)
    assert metrics["bot-0"]["dialstream_bot_streams_started_total{}"] == len(phones)
    assert metrics["flower"]["flower_worker_online{worker=events-0@" + os.uname().nodename + "}"] == 1
    for worker in ("events-0", "dial-0"):
        assert metrics[worker]["process_cpu_seconds_total{}"] > 0
    assert metrics["dial-0"]["dialstream_worker_actions_total{kind=create_leg,result=sent}"] == len(phones)
    assert metrics["dial-0"]["dialstream_rate_limit_wait_seconds_count{granted=yes,kind=dial}"] == len(phones)
    assert metrics["events-0"]["dialstream_worker_actions_total{kind=start_stream,result=sent}"] == len(phones)
    assert metrics["events-0"]["dialstream_rate_limit_wait_seconds_count{granted=yes,kind=action}"] >= len(phones)

    children = descendants(process.pid)
    assert len(children) >= 9
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "every component stopped" in output
    assert not [pid for pid in children if alive(pid)]


def test_the_sandbox_runs_unless_real_exotel_credentials_are_configured():
    """The sandbox's own credentials (the defaults) mean the sandbox; any other key or token means real Exotel."""
    assert uses_sandbox(Settings.from_env({}))
    assert uses_sandbox(Settings.from_env({"EXOTEL_API_BASE_URL": "http://10.0.0.5:8080"}))
    assert not uses_sandbox(Settings.from_env({"EXOTEL_API_KEY": "live-key", "EXOTEL_API_TOKEN": "live-token"}))


def dialstream(cwd: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``dialstream`` command as a user runs it in ``cwd``, without REDIS_URL."""
    return subprocess.run([sys.executable, "-m", "dialstream.app.cli", *argv], cwd=cwd, env={**clean_env(), **(env or {})},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_cli_finds_the_stack_a_second_up_refuses_and_the_api_drives_it_remotely(up, tmp_path):
    """In up's directory the CLI needs no REDIS_URL; a second up refuses in one line (same directory, or a port taken)
    before starting anything; --api with the printed key drives the same stack from anywhere."""
    process, components = up
    here = tmp_path / "here"
    assert (here / ".ds-run" / "stack.json").exists()
    submitted = dialstream(here, "campaign", "submit", str(ROOT / "tests" / "dialstream" / "app" / "two.csv"), "--name", "found", "--paused")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    listed = dialstream(here, "campaign", "list")
    assert listed.returncode == 0 and "found" in listed.stdout
    again = dialstream(here, "up", "--api-port", "0", "--flower-port", "0")
    assert again.returncode == 2 and "another dialstream up" in again.stdout and "Traceback" not in again.stdout + again.stderr
    (tmp_path / "elsewhere").mkdir()
    api_port = components["api"][0].rpartition(":")[2]
    taken = dialstream(tmp_path / "elsewhere", "up", "--api-port", api_port, "--flower-port", "0")
    assert taken.returncode == 2 and f"port {api_port} on 127.0.0.1 (the API) is taken" in taken.stdout
    key = components["apikey"][0]
    remote = dialstream(tmp_path / "elsewhere", "campaign", "status", "found", "--api", components["api"][0], "--once", env={"DIALSTREAM_API_KEY": key})
    assert remote.returncode == 0 and "campaign found-" in remote.stdout and "paused" in remote.stdout, remote.stderr
    lost = dialstream(tmp_path / "elsewhere", "campaign", "list")
    assert lost.returncode == 2 and lost.stderr.strip().startswith("dialstream campaign: no stack found")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert not (here / ".ds-run" / "stack.json").exists()


class Up:
    """A running ``python -m dialstream.app.up`` in ``here``: its output lines as they come (read by a thread)."""

    def __init__(self, here: Path, data_dir: Path, log_dir: Path, *extra: str) -> None:
        self.env = {**clean_env(), "DIALSTREAM_FLOWER_PASSWORD": PASSWORD, "DIALSTREAM_DATA_DIR": str(data_dir)}
        self.here, self.log_dir = here, log_dir
        argv = ["--flower-port", "0", "--api-port", "0", "--bots", "1", "--log-dir", str(log_dir), *extra]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dialstream.app.up", *argv], cwd=here, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.children: set[int] = set()  # every process seen below up, for the clean-up

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, timeout: float = 90) -> str:
        """The first output line containing ``text``; fails if up exits or stalls first."""

        def found() -> str | None:
            line = next((line for line in self.lines if text in line), None)
            if line is None and self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"dialstream up exited ({self.process.returncode}) before {text!r}")
            return line

        try:
            return wait_for(found, timeout=timeout, interval=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n" + "\n".join(self.lines)) from None

    def redis_url(self) -> str:
        """Once up is ready: the Redis URL of its status line."""
        self.wait_line(READY_LINE)
        self.children |= descendants(self.process.pid)
        line = next(line for line in self.lines if LINE.match(line) and LINE.match(line).group(1) == "redis")
        return LINE.match(line).group(2)

    def pid_of(self, node: str) -> int:
        """The pid of the worker whose Celery node name is ``node`` (e.g. events-0)."""
        for pid in descendants(self.process.pid):
            with contextlib.suppress(OSError):
                if f"{node}@%h".encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                    return pid
        raise AssertionError(f"no process for {node}")

    def close(self) -> None:
        """Kill up and anything it left (by pid and by process group): the fixture's clean-up."""
        self.children |= descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in pids_in_groups(self.children) | {pid for pid in self.children if alive(pid)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reader.join(timeout=5)
        self.process.stdout.close()


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    """Starts ``dialstream up`` in tmp_path/here (data in tmp_path/data); every one is killed afterwards, with all it started."""
    here = tmp_path / "here"
    here.mkdir()
    started: list[Up] = []

    def start(*extra: str) -> Up:
        started.append(Up(here, tmp_path / "data", tmp_path / f"logs-{len(started)}", *extra))
        return started[-1]

    yield start
    for running in started:
        running.close()


SCENARIO = """\
seed: 7
callee:
  answer: 1.0
  ring_ms: [200, 400]
  talk_ms: [1500, 2500]
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """Callees who all answer and talk about two seconds: campaigns that take a while."""
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    return path


def phones(count: int, first: int = 1) -> list[str]:
    return [f"+9198{n:08d}" for n in range(first, first + count)]


def run_to_the_end(redis_url: str, name: str, numbers: list[str]) -> dict:
    """Submit a campaign of ``numbers`` through ``redis_url``; its results once every contact has a final record."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = Store(client)
        campaign = CampaignConfig(f"{name}-{uuid.uuid4().hex[:6]}", greeting_text="Hello there, one moment please.", window="any")
        submit(store, campaign, [Contact(f"c{i}", phone) for i, phone in enumerate(numbers)])
        wait_for(lambda: store.progress(campaign.campaign_id)[0] == len(numbers), timeout=120)
        return store.results(campaign.campaign_id)
    finally:
        client.close()


def test_up_heals_a_killed_worker_and_its_killed_valkey_and_leaves_no_orphan_when_killed(start_up, scenario):
    """SIGKILLed, a worker and then the Valkey are restarted (one line each), calls keep completing and the data is kept; SIGKILL of up leaves no process."""
    running = start_up("--scenario", str(scenario))
    redis_url = running.redis_url()

    os.kill(running.pid_of("events-0"), signal.SIGKILL)
    running.wait_line("events-0 died (killed by SIGKILL); restarting it in 1s")
    log = running.log_dir / "events-0.log"  # both lives write to it: ready twice once restarted
    wait_for(lambda: log.read_text().count(" ready.") == 2, timeout=90)
    before = run_to_the_end(redis_url, "after-worker", phones(4))
    assert {result["outcome"] for result in before.values()} == {"completed"}

    valkey = next(pid for pid in descendants(running.process.pid) if b"valkey-server" in Path(f"/proc/{pid}/cmdline").read_bytes())
    os.kill(valkey, signal.SIGKILL)
    running.wait_line("redis died (killed by SIGKILL); restarting it in 1s")
    running.wait_line("redis is back after")
    after = run_to_the_end(redis_url, "after-valkey", phones(4, first=11))
    assert {result["outcome"] for result in after.values()} == {"completed"}
    assert sum("redis is unreachable" in line for line in running.lines) == 1
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert len(Store(client).campaign_ids()) == 2  # the first campaign outlived its Valkey
    client.close()

    children = descendants(running.process.pid)
    assert len(children) >= 9  # valkey, sandbox, bot, ingress, three workers, the API, Flower
    running.process.kill()
    running.process.wait()
    wait_for(lambda: not pids_in_groups(children) and not any(alive(pid) for pid in children), timeout=30)


def test_a_campaign_survives_an_up_restart(start_up, scenario, tmp_path):
    """A campaign submitted with the CLI to a running up, stopped midway with Ctrl-C, is still there for the CLI while up is down, and finishes after up starts again: every contact gets a final record."""
    numbers = phones(16, first=21)
    batch = tmp_path / "batch.csv"
    batch.write_text("phone\n" + "\n".join(numbers) + "\n")
    first = start_up("--scenario", str(scenario))
    redis_url = first.redis_url()

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "dialstream.app.cli", "campaign", *args],
            cwd=first.here, env=first.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    cli("submit", str(batch), "--id", "survivor", "--max-concurrent", "2", "--retries", "none", "--window", "any")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: Store(client).progress("survivor")[0] >= 3, timeout=120)
    client.close()
    first.process.send_signal(signal.SIGINT)
    first.wait_line("every component stopped", timeout=120)
    assert first.process.wait(timeout=30) == 0

    # up is down: the CLI runs the data directory's Valkey itself and sees the campaign midway.
    status = json.loads(cli("status", "survivor", "--json"))
    assert status["state"] == "running" and 3 <= status["done"] < len(numbers), status

    second = start_up("--scenario", str(scenario))
    client = redis.Redis.from_url(second.redis_url(), decode_responses=True)
    store = Store(client)
    wait_for(lambda: store.progress("survivor")[0] == len(numbers), timeout=180)
    results = store.results("survivor")
    client.close()
    assert len(results) == len(numbers) and {result["outcome"] for result in results.values()} == {"completed"}
    status = json.loads(cli("status", "survivor", "--json"))
    assert (status["state"], status["done"], status["total"]) == ("done", len(numbers), len(numbers))
