"""Prometheus metrics of the bot server, in a module-level registry.

A registry of its own (not the global default) so that tests and the benchmark can
read exact values, and so that a process embedding the bot does not mix them with its
own. ``python -m bot --metrics-port N`` serves them on ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "REGISTRY",
    "STREAMS_ACTIVE",
    "STREAMS_STARTED",
    "STREAM_CLOSES",
    "PROTOCOL_ERRORS",
    "CHUNK_LATENESS",
    "CHUNKS_SENT",
]

REGISTRY = CollectorRegistry(auto_describe=True)

STREAMS_ACTIVE = Gauge("dialstream_bot_streams_active", "WebSocket streams open on this process.", registry=REGISTRY)
STREAMS_STARTED = Counter("dialstream_bot_streams_started", "Streams that received a start frame.", registry=REGISTRY)
STREAM_CLOSES = Counter(
    "dialstream_bot_stream_closes",
    "Closed streams by close code and by which side closed first (bot or exotel).",
    ["code", "initiator"],
    registry=REGISTRY,
)
PROTOCOL_ERRORS = Counter(
    "dialstream_bot_protocol_errors",
    "Streams closed for a malformed frame, by close code.",
    ["code"],
    registry=REGISTRY,
)
CHUNK_LATENESS = Histogram(
    "dialstream_bot_chunk_lateness_seconds",
    "How long after its real-time deadline each outbound audio chunk was sent.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    registry=REGISTRY,
)
CHUNKS_SENT = Counter("dialstream_bot_chunks_sent", "Outbound audio chunks sent.", registry=REGISTRY)
