"""Basic auth on the bot's upgrade: checked before the WebSocket exists, answered with HTTP 401."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from dialstream.exotel.agentstream import with_credentials
from tests.bot.exotel import FakeExotel, basic_auth, run, streaming
from tests.bot.scenario import events, scenario_bot, serving, until

CREDENTIALS = ("exotel", "s3:cret/@")  # characters that need escaping in a URL's userinfo


def test_credentials_in_the_url_are_accepted_as_exotel_sends_them():
    """A stream URL carrying user:pass@ (sent as the Basic header, as Exotel does) is served."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot, basic_auth=CREDENTIALS) as server:
            async with streaming(with_credentials(server.url, *CREDENTIALS)):
                await until(lambda: events(bot, "start"))

    run(scenario())


@pytest.mark.parametrize(
    "headers",
    [{}, basic_auth("exotel", "wrong"), {"Authorization": "Bearer abc"}, {"Authorization": "Basic %%%"}],
    ids=["missing", "wrong-password", "other-scheme", "bad-base64"],
)
def test_missing_or_wrong_credentials_get_401_before_the_upgrade(headers):
    """The handshake itself is refused with 401 and a Basic challenge; no stream, no bot hook."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot, basic_auth=CREDENTIALS) as server:
            with pytest.raises(InvalidStatus) as info:
                async with FakeExotel(server.url, headers=headers):
                    pass
            assert server.active_streams == 0
        response = info.value.response
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert bot.log == []

    run(scenario())


def test_no_credentials_required_when_none_configured():
    """Without basic_auth the bot serves a stream that sends none (and ignores any it sends)."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot) as server:
            async with streaming(with_credentials(server.url, "any", "thing")):
                await until(lambda: events(bot, "start"))

    run(scenario())
