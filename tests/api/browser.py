"""A real headless Chromium, driven over the DevTools protocol, for tests of pages.

:func:`open_page` starts Debian's ``chromium`` on a URL and yields a :class:`Page` whose
:meth:`Page.evaluate` runs JavaScript in it; the browser is always stopped. Tests that need
a browser skip, saying why, when none is installed (CI installs one: ``.ci/run``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

__all__ = ["browser_or_skip", "open_page", "Page"]

_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def browser_or_skip() -> str:
    """The Chromium executable, or skip the test with the reason."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium on this machine: apt-get install chromium (CI's .ci/run does)")


class Page:
    """One tab, over its DevTools WebSocket."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._next = 0

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (JSON-serialisable) in the page, awaiting a promise."""
        self._next += 1
        call = {"id": self._next, "method": "Runtime.evaluate", "params": {"expression": expression, "returnByValue": True, "awaitPromise": True}}
        self._socket.send(json.dumps(call))
        while True:
            answer = json.loads(self._socket.recv(timeout=30))
            if answer.get("id") == self._next:
                break
        result = answer["result"]
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """A PNG of the page as it is drawn now."""
        self._next += 1
        self._socket.send(json.dumps({"id": self._next, "method": "Page.captureScreenshot", "params": {"format": "png"}}))
        while True:
            answer = json.loads(self._socket.recv(timeout=30))
            if answer.get("id") == self._next:
                path.write_bytes(base64.b64decode(answer["result"]["data"]))
                return


@contextmanager
def open_page(url: str, profile: Path) -> Iterator[Page]:
    """Chromium showing ``url`` (headless, its own profile in ``profile``), stopped on exit."""
    argv = [
        browser_or_skip(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
        "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1280,1600", url,
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    drain = threading.Thread(target=_drain, args=(process,), daemon=True)
    try:
        endpoint = _endpoint(process)
        drain.start()  # what it logs from now on is read and dropped, so a full pipe never blocks it
        port = endpoint.split(":")[2].split("/")[0]
        tabs = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        tab = next(t for t in tabs if t["type"] == "page")
        with connect(tab["webSocketDebuggerUrl"], max_size=None) as socket:
            yield Page(socket)
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        if drain.is_alive():
            drain.join(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for _ in process.stderr:
        pass


def _endpoint(process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    seen = []
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if match := _LISTENING.search(line):
            return match.group(1)
    raise AssertionError("Chromium did not start:\n" + "".join(seen[-20:]))
