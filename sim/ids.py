"""Identifiers in Exotel's shapes: 32-character SIDs ending in ``00000``, 32-hex request ids."""

from __future__ import annotations

import random
import string
import uuid

__all__ = ["SidFactory", "request_id", "SID_LENGTH", "SID_SUFFIX"]

SID_SUFFIX = "00000"  # every documented leg, bridge and event SID ends this way
SID_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits


class SidFactory:
    """Leg, action, event and stream SIDs.

    Never seeded, even when the sandbox is: receivers de-duplicate by ``event_sid`` for a
    day, so a rerun (or a reset) with the same seed must not repeat the SIDs of the last one.
    """

    def __init__(self) -> None:
        self._rng = random.SystemRandom()

    def __call__(self) -> str:
        return "".join(self._rng.choices(_ALPHABET, k=SID_LENGTH - len(SID_SUFFIX))) + SID_SUFFIX


def request_id() -> str:
    """The envelope's ``request_id``: 32 lowercase hex characters."""
    return uuid.uuid4().hex
