"""A webhook receiver for tests: a real HTTP server on loopback that can go down and come back
on the same port, checks every signature with the ``standardwebhooks`` package (the scheme
authors' verifier, not our code), and keeps each verified message once per ``webhook-id``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from dialstream.app.embedded_redis import free_port

__all__ = ["Receiver"]


class Receiver:
    """POSTs to ``url`` are verified against ``secret`` (set once the endpoint exists)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.secret = ""
        self.status = 200  # what a verified delivery is answered with
        self.messages: dict[str, dict[str, Any]] = {}  # webhook-id -> body, first delivery
        self.attempts = 0  # deliveries received, duplicates included
        self.invalid: list[str] = []  # why a delivery failed verification
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver._receive(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: connections to the port are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    def _receive(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            self.attempts += 1
            try:
                verified = Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError as exc:
                self.invalid.append(str(exc))
                return 400
            if self.status < 300:
                self.messages.setdefault(headers["webhook-id"], verified if isinstance(verified, dict) else json.loads(body))
            return self.status

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages.values() if m["type"] == event_type]
