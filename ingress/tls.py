"""The ingress's TLS certificates, read from files and picked up again when the files change.

Exotel delivers leg events only to a TLS endpoint ("mutual TLS optional but recommended").
:class:`ServerCertificates` serves the same files to both doors: gRPC through
``grpc.dynamic_ssl_server_credentials`` (gRPC asks for the configuration before each new
handshake, and gets a new one when a file's modification time changed), the HTTPS door through
an ``ssl.SSLContext`` whose chain is loaded again on change (:meth:`refresh`, run
periodically). So a certificate rotated on disk (cert-manager, certbot) is used by the next
connection, with no restart. With a client CA, both doors require a client certificate it
signed (mutual TLS).
"""

from __future__ import annotations

import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from dialstream.errors import ConfigurationError

__all__ = ["ServerCertificates"]


@dataclass(frozen=True)
class _Files:
    cert: bytes
    key: bytes
    client_ca: bytes | None


class ServerCertificates:
    """A certificate chain and key (PEM files), and optionally a client CA for mutual TLS."""

    def __init__(self, cert_file: str, key_file: str, client_ca_file: str = "") -> None:
        self._paths = [Path(cert_file), Path(key_file)] + ([Path(client_ca_file)] if client_ca_file else [])
        self._mtimes = self._stat()
        self._files = self._read()
        self._generation = 0  # bumped on every change; each door remembers the one it loaded
        self._grpc_generation = 0
        self._context: ssl.SSLContext | None = None
        self._context_generation = 0
        self._lock = threading.Lock()  # gRPC asks from its own threads, the HTTPS door from the loop

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate signed by the client CA."""
        return self._files.client_ca is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config(), self._grpc_config_if_changed, require_client_authentication=self.mutual
        )

    def ssl_context(self) -> ssl.SSLContext:
        """The HTTPS door's context (one object: :meth:`refresh` updates it in place)."""
        if self._context is None:
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._load_into(self._context)
        return self._context

    def refresh(self) -> None:
        """Read the files again if any changed, and reload the HTTPS door's context.

        Raises:
            ConfigurationError: a file is unreadable or not PEM (half written?); the
                certificates in use stay as they were.
        """
        with self._lock:
            mtimes = self._stat()
            if mtimes != self._mtimes:
                self._files, self._mtimes = self._read(), mtimes
                self._generation += 1
            if self._context is not None and self._context_generation != self._generation:
                self._load_into(self._context)
                self._context_generation = self._generation

    def _grpc_config(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self._files.key, self._files.cert)], root_certificates=self._files.client_ca
        )

    def _grpc_config_if_changed(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            self.refresh()
        except (ConfigurationError, ssl.SSLError):
            return None  # keep serving the previous certificate
        if self._grpc_generation == self._generation:
            return None
        self._grpc_generation = self._generation
        return self._grpc_config()

    def _load_into(self, context: ssl.SSLContext) -> None:
        cert, key = (str(p) for p in self._paths[:2])
        context.load_cert_chain(cert, key)
        if self._files.client_ca is not None:
            context.load_verify_locations(cadata=self._files.client_ca.decode())
            context.verify_mode = ssl.CERT_REQUIRED

    def _stat(self) -> tuple[float, ...]:
        try:
            return tuple(os.stat(p).st_mtime_ns for p in self._paths)
        except OSError as exc:
            raise ConfigurationError(f"ingress TLS: cannot read {exc.filename}: {exc.strerror}") from None

    def _read(self) -> _Files:
        try:
            contents = [p.read_bytes() for p in self._paths]
        except OSError as exc:
            raise ConfigurationError(f"ingress TLS: cannot read {exc.filename}: {exc.strerror}") from None
        if not all(b"-----BEGIN" in c for c in contents):
            raise ConfigurationError(f"ingress TLS: {', '.join(map(str, self._paths))} must be PEM files")
        return _Files(contents[0], contents[1], contents[2] if len(contents) > 2 else None)
