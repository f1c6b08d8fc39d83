"""dialstream across five hosts, built from Linux network namespaces on one machine.

The test makes its own network: a namespace holding a bridge (the "switch"), one namespace
per host joined to it by a veth pair, and a veth from this process's namespace so the test
can reach them, all on a /24 of 10.99.x.0 that nothing on the machine uses. The hosts:

    redis   Redis (AOF, noeviction)           edge    the Exotel sandbox and the ingress
    bots    two bot servers                   w1, w2  an `events` and a `dial` worker each

Every process runs in its host's namespace (``ip netns exec``) under a Supervisor, and
reaches the others only at their 10.99.x addresses. The namespaces and the veths are
deleted when the module ends, whatever happened. Skipped where network namespaces cannot be
made (not root, no iproute2, no permission).

The campaign engine paces the dials (a concurrency cap per campaign, a Legs API budget
raised above Exotel's 200 requests a minute, which would stretch a campaign to minutes).
After each campaign, every contact must have a final record and every answered call exactly
one bot stream, as the sandbox saw it on the wire. As in front of real Exotel, the sandbox
delivers events to the ingress over mutual TLS (a CA made by the test) and the bots require
HTTP Basic auth on the upgrade.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import trustme
import yaml

from dialstream.app.demo import fetch_timelines
from dialstream.app.embedded_redis import _binary as valkey_binary
from dialstream.app.stack import StackConfig, worker_argv
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.broker.celery_app import DIAL_QUEUE, EVENTS_QUEUE
from dialstream.domain.campaign import CampaignConfig, Contact, Flow
from dialstream.domain.report import build_report
from dialstream.settings import EngineConfig, Settings
from dialstream.state.store import Store
from tests.campaigns import submit
from tests.utils import wait_for

pytestmark = pytest.mark.e2e

HOSTS = ("redis", "edge", "bots", "w1", "w2")
CALLS = 200
# Live calls at once: about 9 answered calls a second with these callees, what this 2-core
# machine carries while it also runs every other host.
MAX_CONCURRENT = 24
# A dial lost with its worker goes back to the campaign's queue after this (the engine's lease).
ENGINE = EngineConfig(api_budget=1_000_000, dial_lease=10.0)
SANDBOX_PORT, INGRESS_PORT, REDIS_PORT, BOT_PORTS = 8080, 50051, 6379, (8765, 8766)
# Most callees answer; a few are busy or do not pick up. No account limits in the sandbox:
# the engine's own caps pace the campaign.
SCENARIO = {
    "seed": 29,
    "callee": {"answer": 0.9, "busy": 0.05, "ring_ms": [200, 600], "talk_ms": [1500, 2500]},
    "limits": {"requests_per_minute": 0, "concurrent_legs": 0, "active_streams": 0},
}


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def free_subnet() -> ipaddress.IPv4Network:
    """A 10.99.x.0/24 that overlaps no address or route of this machine."""
    used = []
    for what in ("addr", "route"):
        listing = json.loads(
            subprocess.run(["ip", "-j", "-4", what], check=True, capture_output=True, text=True).stdout
        )
        for entry in listing:
            for info in entry.get("addr_info", [entry]):
                prefix = info.get("dst") if what == "route" else f"{info['local']}/{info['prefixlen']}"
                if prefix and prefix != "default":
                    used.append(ipaddress.ip_network(prefix, strict=False))
    for third in range(99, 255):
        candidate = ipaddress.ip_network(f"10.99.{third}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise RuntimeError("no free 10.99.x.0/24")


def namespaces_unavailable() -> str:
    """Why this machine cannot build the test's network, or '' if it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"dsmh{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.strip()}"
    ip("netns", "del", probe)
    return ""


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, Host]]:
    """Five namespaces on a private bridge, and a veth from here; all deleted afterwards."""
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(f"multi-host test skipped: {reason}")
    subnet = free_subnet()
    prefix = f"dsmh{os.getpid()}"
    switch, control = f"{prefix}-switch", f"{prefix}c"
    made: list[str] = []
    try:
        ip("netns", "add", switch)
        made.append(switch)
        ip("-n", switch, "link", "add", "br0", "type", "bridge")
        ip("-n", switch, "link", "set", "br0", "up")
        result = {}
        for index, name in enumerate(HOSTS, start=2):
            host = Host(name, f"{prefix}-{name}", str(subnet[index]))
            ip("netns", "add", host.namespace)
            made.append(host.namespace)
            ip("-n", host.namespace, "link", "set", "lo", "up")
            ip(
                "link",
                "add",
                "eth0",
                "netns",
                host.namespace,
                "type",
                "veth",
                "peer",
                "name",
                f"v-{name}",
                "netns",
                switch,
            )
            ip("-n", host.namespace, "addr", "add", f"{host.address}/{subnet.prefixlen}", "dev", "eth0")
            ip("-n", host.namespace, "link", "set", "eth0", "up")
            ip("-n", switch, "link", "set", f"v-{name}", "master", "br0", "up")
            result[name] = host
        ip("link", "add", control, "type", "veth", "peer", "name", "v-control", "netns", switch)
        ip("addr", "add", f"{subnet[254]}/{subnet.prefixlen}", "dev", control)
        ip("link", "set", control, "up")
        ip("-n", switch, "link", "set", "v-control", "master", "br0", "up")
        yield result
    finally:
        # Deleting a namespace deletes its end of each veth, and so the pair.
        for namespace in reversed(made):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", control], capture_output=True)


@dataclass
class Cluster:
    settings: Settings
    store: Store
    supervisor: Supervisor
    sandbox_url: str


@pytest.fixture
def cluster(hosts: dict[str, Host], tmp_path: Path) -> Iterator[Cluster]:
    """Redis, sandbox, ingress, bots and workers, each on its host; stopped after the test."""
    redis_host, edge, bots = hosts["redis"], hosts["edge"], hosts["bots"]
    # As in front of real Exotel: events over mutual TLS (a throwaway CA), bots behind Basic auth.
    tls = tmp_path / "tls"
    tls.mkdir()
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tls / "ca.pem"))
    server = ca.issue_cert(edge.address)
    server.private_key_and_cert_chain_pem.write_to_path(str(tls / "ingress.pem"))
    exotel = ca.issue_cert("exotel-events")
    exotel.cert_chain_pems[0].write_to_path(str(tls / "exotel.crt"))
    exotel.private_key_pem.write_to_path(str(tls / "exotel.key"))
    settings = Settings.from_env({
        "REDIS_URL": f"redis://{redis_host.address}:{REDIS_PORT}/0",
        "EXOTEL_API_BASE_URL": f"http://{edge.address}:{SANDBOX_PORT}",
        "DIALSTREAM_INGRESS_BIND": f"{edge.address}:{INGRESS_PORT}",
        "DIALSTREAM_EVENT_ENDPOINT": f"grpcs://{edge.address}:{INGRESS_PORT}",
        "DIALSTREAM_INGRESS_TLS_CERT": str(tls / "ingress.pem"),
        "DIALSTREAM_INGRESS_TLS_KEY": str(tls / "ingress.pem"),
        "DIALSTREAM_INGRESS_CLIENT_CA": str(tls / "ca.pem"),
        "DIALSTREAM_BOT_AUTH_USER": "exotel",
        "DIALSTREAM_BOT_AUTH_PASSWORD": "bot-password",
    }).replace(engine=ENGINE)  # fmt: skip
    env = settings.to_env()
    scenario = tmp_path / "scenario.yaml"
    delivery = {"ca_file": str(tls / "ca.pem"), "client_cert_file": str(tls / "exotel.crt"), "client_key_file": str(tls / "exotel.key")}
    scenario.write_text(yaml.safe_dump({**SCENARIO, "delivery": delivery}))
    (tmp_path / "redis").mkdir()
    with Supervisor(tmp_path / "logs") as supervisor:
        redis_argv = redis_host.argv(
            str(valkey_binary()), "--bind", redis_host.address, "--port", str(REDIS_PORT), "--dir", str(tmp_path / "redis"),
            "--appendonly", "yes", "--maxmemory-policy", "noeviction", "--save", "", "--protected-mode", "no", "--logfile", "",
        )  # fmt: skip
        supervisor.start(ProcessSpec("redis", redis_argv, ready_text="Ready to accept connections"))
        supervisor.wait_ready()
        sim = edge.argv(
            *Supervisor.python(
                "-m", "sim", "--host", edge.address, "--port", str(SANDBOX_PORT), "--scenario", str(scenario)
            )
        )
        supervisor.start(ProcessSpec("sandbox", sim, env, ready_text="sandbox listening"))
        supervisor.start(
            ProcessSpec("ingress", edge.argv(*Supervisor.python("-m", "ingress")), env, ready_text="ingress listening")
        )
        for port in BOT_PORTS:
            argv = bots.argv(
                *Supervisor.python("-m", "bot", "--bot", "greeter", "--host", bots.address, "--port", str(port))
            )
            supervisor.start(ProcessSpec(f"bot-{port}", argv, env, ready_text="listening on"))
        for host in (hosts["w1"], hosts["w2"]):
            for queue in (EVENTS_QUEUE, DIAL_QUEUE):
                name = f"{queue}-{host.name}"
                argv = host.argv(*worker_argv(queue, name, StackConfig()))
                supervisor.start(ProcessSpec(name, argv, env, ready_text=" ready."))
        supervisor.wait_ready()
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=10)
        try:
            yield Cluster(settings, Store(client), supervisor, f"http://{edge.address}:{SANDBOX_PORT}")
        finally:
            client.close()


def start_campaign(cluster: Cluster, count: int) -> tuple[CampaignConfig, list[Contact]]:
    campaign = CampaignConfig(
        f"mh-{uuid.uuid4().hex[:6]}", flow=Flow.GREETING_SAY, greeting_text="Hello!", max_concurrent=MAX_CONCURRENT, window="any"
    )
    contacts = [Contact(f"c{i:04d}", f"+9197{i:08d}") for i in range(count)]
    submit(cluster.store, campaign, contacts)
    return campaign, contacts


def finish(cluster: Cluster, campaign: CampaignConfig, contacts: list[Contact], timeout: float) -> None:
    """Wait for a final record per contact (or the timeout), then check every call against the
    sandbox's timelines: a final record for every contact, and every answered call exactly one
    bot stream on the wire (or, hung up on purpose, a recorded reason). Greeting timing is not
    judged here: on a loaded machine a stop_say may land a few ms past the sandbox's grace."""
    deadline = time.monotonic() + timeout
    while cluster.store.progress(campaign.campaign_id)[0] < len(contacts) and time.monotonic() < deadline:
        time.sleep(0.2)
    timelines = fetch_timelines(cluster.sandbox_url)
    results = cluster.store.results(campaign.campaign_id)
    report = build_report(
        campaign.campaign_id, campaign.flow.value, [c.contact_id for c in contacts], results, timelines
    )
    assert not [row.contact_id for row in report.rows if row.outcome == "missing"], report.outcomes
    answered = 0
    for row in report.rows:
        timeline = timelines.get(row.leg_sid)
        if timeline is None or timeline["timeline"]["answered"] is None:
            continue
        answered += 1
        assert timeline["max_concurrent_streams"] <= 1, row
        if row.outcome == "completed":
            assert timeline["streams_started"] == 1, row
        else:
            assert row.reason, row
    assert answered > 0.8 * len(report.rows), report.outcomes


def client_hosts(cluster: Cluster) -> set[str]:
    """The addresses Redis's clients connect from."""
    return {client["addr"].rsplit(":", 1)[0] for client in cluster.store.redis.client_list()}


def test_a_campaign_completes_with_every_process_on_its_own_host(cluster, hosts):
    """A few hundred calls across five hosts: a final record each, one bot stream per answered call, every host in use."""
    campaign, contacts = start_campaign(cluster, CALLS)
    finish(cluster, campaign, contacts, timeout=120)
    assert {h.address for n, h in hosts.items() if n != "redis"} <= client_hosts(cluster)


def test_killing_a_worker_host_mid_campaign_loses_no_call(cluster, hosts):
    """SIGKILL both workers of host w1 with a third of the calls done: w2 rescues its leg events,
    the engine re-dials what it was dialling; every contact still gets a final record and every
    answered call one stream."""
    campaign, contacts = start_campaign(cluster, CALLS)
    wait_for(lambda: cluster.store.progress(campaign.campaign_id)[0] >= CALLS // 3, timeout=60)
    for queue in (EVENTS_QUEUE, DIAL_QUEUE):
        cluster.supervisor.kill(f"{queue}-w1")
    wait_for(lambda: hosts["w1"].address not in client_hosts(cluster), timeout=10)
    finish(cluster, campaign, contacts, timeout=120)
