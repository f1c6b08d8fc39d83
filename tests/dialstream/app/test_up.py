"""``dialstream up`` as a user runs it: a subprocess that prints its components, serves
Flower and every component's /metrics, carries a campaign, and stops everything on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
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
from tests.utils import wait_for

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


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc), to check that none outlives it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


NOT_COMPONENTS = ("starting;", "dialstream", "dashboard", "apikey", "state")


def clean_env() -> dict[str, str]:
    """The environment without any dialstream or Exotel setting (and no REDIS_URL)."""
    return {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith(("EXOTEL_", "DIALSTREAM_"))}


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
