"""The chaos rig: the stack ``dialstream up`` runs, whose parts are SIGKILLed for real and healed.

Redis is the durable embedded Valkey (its append-only file in a data directory, as
``DIALSTREAM_DATA_DIR`` gives ``up``), started by the same :class:`Supervisor` as every other
component, so that killing it and starting it again on its data is what ``up`` does; healing
is ``up``'s own :meth:`Supervisor.heal`. Kills follow a :class:`KillPlan` keyed to the
campaign's progress (contacts with a final record), not to the clock, so a loaded machine
shifts them in time but never skips one: each waits until its target is ready again after
the previous kill.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml

from dialstream.app.embedded_redis import EmbeddedRedis
from dialstream.app.stack import Stack, StackConfig, start_stack
from dialstream.app.supervisor import Supervisor
from dialstream.settings import Settings
from dialstream.state.client import connect

__all__ = ["Kill", "KillPlan", "ChaosRig", "chaos_rig", "KILLED"]

# The components a run kills: the ingress, one of the two events workers, one of the two
# bots, and Redis itself.
KILLED = ("ingress", "events-0", "bot-0", "redis")


@dataclass
class Kill:
    """SIGKILL ``component`` once ``at`` (a fraction) of the contacts have a final record."""

    component: str
    at: float
    killed_at: float | None = None  # Unix seconds, as the sandbox's timelines
    back_at: float | None = None  # when the component was ready again

    @property
    def back_after_s(self) -> float | None:
        return None if self.killed_at is None or self.back_at is None else self.back_at - self.killed_at


@dataclass
class KillPlan:
    """Kills in order; one is done only once its component is ready again."""

    kills: list[Kill]

    @classmethod
    def rounds(cls, count: int, components: tuple[str, ...] = KILLED) -> KillPlan:
        """``count`` rounds of one kill per component, spread over 10 % to 80 % of the campaign."""
        total = count * len(components)
        steps = [0.1 + 0.7 * index / max(1, total - 1) for index in range(total)]
        return cls([Kill(components[index % len(components)], at) for index, at in enumerate(steps)])

    @property
    def finished(self) -> bool:
        return all(kill.back_after_s is not None for kill in self.kills)

    def step(self, supervisor: Supervisor, progress: float) -> str | None:
        """Kill what is due, note what came back; a line when something happened."""
        for kill in self.kills:
            if kill.back_after_s is not None:
                continue
            if kill.killed_at is None:
                if progress < kill.at or not supervisor.ready(kill.component):
                    return None
                supervisor.kill(kill.component, signal.SIGKILL)
                kill.killed_at = time.time()
                return f"SIGKILL {kill.component} at {progress:.0%} of the campaign"
            if not supervisor.ready(kill.component):
                return None
            kill.back_at = time.time()
            return f"{kill.component} ready again {kill.back_after_s:.1f}s after its kill"
        return None


@dataclass
class ChaosRig:
    supervisor: Supervisor
    stack: Stack
    client: redis.Redis  # survives Redis restarts: each command reconnects
    lines: list[str] = field(default_factory=list)  # what the supervisor and the plan said

    def heal(self) -> None:
        self.supervisor.heal(self.say)

    def say(self, line: str) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S')} {line}")


@contextmanager
def chaos_rig(tmp_path: Path, scenario: dict[str, Any], env: dict[str, str]) -> Iterator[ChaosRig]:
    """Durable Valkey, sandbox playing ``scenario``, ingress, two events workers, a dial worker
    and two bots, all under one supervisor; ``env`` is every process's environment on top of ours."""
    scenario_path = tmp_path / "scenario.yaml"
    scenario_path.write_text(yaml.safe_dump(scenario))
    server = EmbeddedRedis(data_dir=tmp_path / "data" / "valkey")
    try:
        with Supervisor(tmp_path / "logs", base_env={**os.environ, **env}) as supervisor:
            supervisor.start(server.spec())
            supervisor.wait_ready()
            settings = Settings.from_env({**env, "REDIS_URL": server.url})
            config = StackConfig(scenario=scenario_path, events_workers=2, bots=2, seed=int(scenario["seed"]))
            stack = start_stack(supervisor, settings, config)
            client = connect(server.url, timeout=5)
            try:
                yield ChaosRig(supervisor, stack, client)
            finally:
                client.close()
    finally:
        server.unlock()
