"""Start child processes, wait until they are ready, and always stop every one of them.

Used by ``dialstream demo``, ``dialstream up``, the end-to-end test fixtures and the
benchmarks, so that "no process left behind" is enforced in one place: each child runs in
its own process group (its own children, e.g. Celery's pool, are signalled with it), is
sent SIGTERM on stop, and SIGKILL if it has not exited within the grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ProcessSpec", "Supervisor", "ProcessFailed"]


class ProcessFailed(RuntimeError):
    """A child exited early or did not become ready in time; the message has its log tail."""


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one child and how to tell it is ready.

    Ready means: ``ready_port`` accepts TCP connections on 127.0.0.1, and/or
    ``ready_text`` has appeared in its output.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_port: int | None = None
    ready_text: str | None = None
    ready_timeout: float = 60.0


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    ready: bool = False  # once seen ready, never searched for again (its log keeps growing)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
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
        log_file = log_path.open("wb")
        env = {**self._base_env, **spec.env, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            list(spec.argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: we can signal its whole tree
        )
        log_file.close()  # the child holds its own descriptor
        self._children.append(_Child(spec, process, log_path))
        return process

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

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

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
        if spec.ready_text is not None and spec.ready_text not in child.log_tail(1_000_000):
            return False
        if spec.ready_port is not None:
            try:
                with socket.create_connection(("127.0.0.1", spec.ready_port), timeout=0.2):
                    pass
            except OSError:
                return False
        return True


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
