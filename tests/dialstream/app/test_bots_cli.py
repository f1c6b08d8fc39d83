"""``dialstream bots``: external fleets registered with capacity and formats, listed, removed; bad input changes nothing."""

from __future__ import annotations

import pytest
import redis

from dialstream.app.cli import main
from dialstream.state import fleet

DB = 13  # this module's database on the session's server


@pytest.fixture
def client(redis_url, monkeypatch):
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    monkeypatch.setenv("REDIS_URL", url)
    connection = redis.Redis.from_url(url, decode_responses=True)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def test_add_list_remove_an_external_fleet(client, capsys):
    """add stores the bare URL with its capacity and formats (PCM16 8 kHz by default); remove drops it."""
    assert main(["bots", "add", "wss://pipecat.example/ws", "--capacity", "200"]) == 0
    assert main(["bots", "add", "ws://vendor:9000/", "--capacity", "5", "--formats", "mulaw,pcm16:16000"]) == 0
    bots = {bot.url: bot for bot in fleet.live_bots(client)}
    assert bots["wss://pipecat.example/ws"].formats == ("audio/L16;rate=8000",)
    assert bots["wss://pipecat.example/ws"].capacity == 200
    assert bots["ws://vendor:9000/"].formats == ("audio/x-mulaw;rate=8000", "audio/L16;rate=16000")
    capsys.readouterr()
    assert main(["bots", "list"]) == 0
    listed = capsys.readouterr().out
    assert "wss://pipecat.example/ws" in listed and "audio/L16;rate=16000" in listed
    assert main(["bots", "remove", "ws://vendor:9000/"]) == 0
    assert [bot.url for bot in fleet.live_bots(client)] == ["wss://pipecat.example/ws"]
    assert main(["bots", "remove", "ws://vendor:9000/"]) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["wss://u:p@bot/ws", "--capacity", "5"], "must not hold user:pass@"),
        (["https://bot/ws", "--capacity", "5"], "expected a ws:// or wss:// URL"),
        (["wss://bot/ws", "--capacity", "0"], "--capacity must be at least 1"),
        (["wss://bot/ws", "--capacity", "5", "--formats", "opus"], "--formats:"),
    ],
)
def test_bad_input_is_one_line_and_registers_nothing(client, capsys, argv, message):
    """Credentials in the URL, another scheme, no capacity or an unknown format: exit 2, one line, nothing stored."""
    assert main(["bots", "add", *argv]) == 2
    out = capsys.readouterr().out.strip()
    assert message in out and "Traceback" not in out
    assert fleet.live_bots(client) == []
    assert client.keys("*") == []
