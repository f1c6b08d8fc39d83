"""up's watch on an external Redis: one line when it is lost, none while it stays down, one when it is back."""

from __future__ import annotations

from dialstream.app.embedded_redis import EmbeddedRedis
from dialstream.app.redis_watch import RedisWatch
from dialstream.state.client import connect


def test_losing_and_regaining_redis_is_said_once_each() -> None:
    """A stopped server gives one 'unreachable' line however often it is checked; restarted on its port, one 'back' line."""
    server = EmbeddedRedis().start()
    client = connect(server.url, timeout=1)
    now = [0.0]
    watch = RedisWatch(client, clock=lambda: now[0])
    try:
        assert watch.check() is None
        server.stop()
        lines = [watch.check() for _ in range(5)]
        assert lines[0].startswith("redis is unreachable (ConnectionError") and lines[1:] == [None] * 4
        server.start()
        now[0] = 5.0
        assert watch.check() == "redis is back after 5.0s"
        assert watch.check() is None
    finally:
        client.close()
        server.stop()
