"""Configuration objects: visible defaults and validation."""

from __future__ import annotations

import pytest

from bot.config import DEFAULT_LIMITS, DEFAULT_PACING, DEFAULT_TIMEOUTS, BotServerConfig, Pacing


def test_defaults_follow_the_reference():
    """Defaults match Exotel's limits and the websockets guidance."""
    assert DEFAULT_TIMEOUTS.open == 10.0
    assert DEFAULT_LIMITS.max_message_size == 2**20
    assert DEFAULT_PACING.chunk_bytes == 3200


def test_pacing_refuses_illegal_chunks():
    """A chunk size that breaks Exotel's rules, or a negative lead, is refused."""
    with pytest.raises(ValueError):
        Pacing(chunk_bytes=4000)
    with pytest.raises(ValueError):
        Pacing(lead=-1)


def test_credentials_are_not_in_repr():
    """The Basic-auth password never appears in a logged config."""
    assert "s3cret" not in repr(BotServerConfig(basic_auth=("exotel", "s3cret")))
