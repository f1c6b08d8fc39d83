"""Start child processes, wait until they are ready, heal them, and always stop every one.

Used by ``dialstream demo``, ``dialstream up``, the end-to-end test fixtures and the
benchmarks, so that "no process left behind" is enforced in one place:

- each child runs in its own process group (its own children, e.g. Celery's pool, are
  signalled with it), is sent SIGTERM on stop, and SIGKILL if it has not exited in time;
- each child dies with its parent, also when the parent is SIGKILLed and so cannot stop
  anything: Linux's ``PR_SET_PDEATHSIG`` (``prctl``, set in the child between fork and exec)
  has the kernel signal the child when its parent goes. We chose it over a process group
  plus a watchdog process because it needs no extra process that could itself be killed,
  and it acts at once. Its one condition: the *thread* that started the child must outlive
  it (the kernel tracks the forking thread), so children are started from the main thread.
- with ``heal``, a child that dies is started again after a backoff (1 s, doubling to 30 s
  while it keeps dying; reset once it has run for a minute), and the supervisor says so.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialstream.domain.retry import exponential_backoff

__all__ = ["ProcessSpec", "Supervisor", "ProcessFailed", "spawn"]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
RESTART_BASE = 1.0  # seconds before the first restart of a dead child
RESTART_CAP = 30.0  # the longest wait between restarts
STABLE_AFTER = 60.0  # seconds of life after which a restarted child's backoff starts again
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


class ProcessFailed(RuntimeError):
    """A child exited early or did not become ready in time; the message has its log tail."""


def spawn(
    argv: Sequence[str], *, death_signal: int = signal.SIGKILL, pass_fds: Sequence[int] = (), **popen: Any
) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` in a new session, signalled with ``death_signal`` when this thread's process dies."""
    parent = os.getpid()

    def tie_to_parent() -> None:
        # Runs in the child before exec: only the already-resolved prctl and two syscalls.
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), death_signal)

    return subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=tie_to_parent, pass_fds=tuple(pass_fds), **popen
    )


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one child and how to tell it is ready.

    Ready means: ``ready_port`` accepts TCP connections on 127.0.0.1, and/or
    ``ready_text`` has appeared in its output. ``death_signal`` reaches it if its parent
    dies; ``pass_fds`` are descriptors it inherits (e.g. a lock it must hold while it lives).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_port: int | None = None
    ready_text: str | None = None
    ready_timeout: float = 60.0
    death_signal: int = signal.SIGKILL
    pass_fds: tuple[int, ...] = ()


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    ready: bool = False  # once seen ready, never searched for again (its log keeps growing)
    deaths: int = 0  # deaths in a row, each followed by a restart (the backoff's exponent)
    restart_at: float | None = None  # when a dead child is started again
    log_start: int = 0  # where this run's output begins in the log (a restart appends to it)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def output(self) -> str:
        """What the running process wrote: a restarted child's ready text must be its own, not its predecessor's."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_start)
                return log.read().decode(errors="replace")
        except OSError:
            return ""


class Supervisor:
    """A set of child processes whose output goes to ``log_dir/<name>.log``.

    Use as a context manager; leaving it (normally, on error or on Ctrl-C) stops all.
    """

    def __init__(self, log_dir: Path, *, base_env: Mapping[str, str] | None = None, stop_grace: float = 10.0) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._children: list[_Child] = []
        self.stop_grace = stop_grace

    @staticmethod
    def python(*args: str) -> list[str]:
        """argv running this interpreter (the project's venv) with ``args``."""
        return [sys.executable, *args]

    def start(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"{spec.name}.log"
        child = _Child(spec, self._spawn(spec, log_path, "wb"), log_path, time.monotonic())
        self._children.append(child)
        return child.process

    def _spawn(self, spec: ProcessSpec, log_path: Path, mode: str) -> subprocess.Popen[bytes]:
        env = {**self._base_env, **spec.env, "PYTHONUNBUFFERED": "1"}
        with log_path.open(mode) as log_file:  # the child holds its own descriptor
            return spawn(
                spec.argv, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                death_signal=spec.death_signal, pass_fds=spec.pass_fds,
            )  # fmt: skip

    def wait_ready(self) -> None:
        """Block until every started child is ready; raise :class:`ProcessFailed` if one is not."""
        for child in self._children:
            deadline = time.monotonic() + child.spec.ready_timeout
            while not (child.ready or self._mark_ready(child)):
                if child.process.poll() is not None:
                    raise ProcessFailed(
                        f"{child.spec.name} exited with {child.process.returncode}:\n{child.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise ProcessFailed(
                        f"{child.spec.name} not ready after {child.spec.ready_timeout:.0f}s:\n{child.log_tail()}"
                    )
                time.sleep(0.05)

    def check_alive(self) -> None:
        """Raise :class:`ProcessFailed` if any child has exited."""
        for child in self._children:
            if child.process.poll() is not None:
                raise ProcessFailed(f"{child.spec.name} exited with {child.process.returncode}:\n{child.log_tail()}")

    def heal(self, say: Callable[[str], None]) -> None:
        """Restart the children that died, each after its backoff; ``say`` gets one line per death."""
        now = time.monotonic()
        for child in self._children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    _signal_group(child.process, signal.SIGKILL)  # whatever the dead leader left behind
                    child.log_start = child.log_path.stat().st_size if child.log_path.exists() else 0
                    child.process = self._spawn(child.spec, child.log_path, "ab")
                    child.started_at, child.restart_at, child.ready = now, None, False
                continue
            code = child.process.poll()
            if code is None:
                if child.deaths and now - child.started_at > STABLE_AFTER:
                    child.deaths = 0
                continue
            delay = exponential_backoff(child.deaths, RESTART_BASE, RESTART_CAP)
            child.deaths += 1
            child.restart_at = now + delay
            say(f"{child.spec.name} died ({describe_exit(code)}); restarting it in {delay:g}s (restart {child.deaths}, log {child.log_path})")

    def ready(self, name: str) -> bool:
        """Whether the child ``name`` runs and is ready (after a restart: ready again)."""
        running = (c for c in self._children if c.spec.name == name and c.process.poll() is None)
        return any(c.ready or self._mark_ready(c) for c in running)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The pid of the running child ``name`` (None while it is dead or unknown)."""
        for child in self._children:
            if child.spec.name == name and child.process.poll() is None:
                return child.process.pid
        return None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one child's whole process group (a test's way to crash a worker host)."""
        for child in self._children:
            if child.spec.name == name and child.process.poll() is None:
                _signal_group(child.process, sig)

    def stop(self, name: str) -> None:
        """Stop one child the way :meth:`stop_all` does, and forget it."""
        self._stop([child for child in self._children if child.spec.name == name])

    def stop_all(self) -> None:
        """SIGTERM every child (newest first), then SIGKILL what is still running after the grace."""
        self._stop(list(reversed(self._children)))

    def _stop(self, children: list[_Child]) -> None:
        for child in children:
            if child.process.poll() is None:
                _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        for child in children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Kill the group even if the leader exited: a pool child may have outlived it.
            _signal_group(child.process, signal.SIGKILL)
            if child.process.poll() is None:
                child.process.wait()
            self._children.remove(child)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def _mark_ready(self, child: _Child) -> bool:
        child.ready = self._is_ready(child)
        return child.ready

    def _is_ready(self, child: _Child) -> bool:
        spec = child.spec
        if spec.ready_text is not None and spec.ready_text not in child.output():
            return False
        if spec.ready_port is not None:
            try:
                with socket.create_connection(("127.0.0.1", spec.ready_port), timeout=0.2):
                    pass
            except OSError:
                return False
        return True


def describe_exit(code: int) -> str:
    """``-9`` -> ``killed by SIGKILL``; ``1`` -> ``exit status 1``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
