"""The bot serves wss:// in process from PEM files, with Basic auth still checked at the handshake."""

from __future__ import annotations

import ssl

import pytest
import trustme
from websockets.exceptions import InvalidStatus

from bot.__main__ import main
from bot.config import TlsFiles
from bot.server import server_tls
from dialstream.errors import ConfigurationError
from dialstream.exotel.agentstream import with_credentials
from tests.bot.exotel import FakeExotel, run, streaming
from tests.bot.scenario import events, scenario_bot, serving, until


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(ca, tmp_path_factory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("bot-tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(directory / "bot.key")
    cert.cert_chain_pems[0].write_to_path(directory / "bot.pem")
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(directory / "bot.pem", append=True)
    return TlsFiles(str(directory / "bot.pem"), str(directory / "bot.key"))


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_wss_stream_with_credentials_is_served(ca, tls_files):
    """Over wss:// with the test CA trusted and the right credentials, a call reaches the bot."""
    bot = scenario_bot()

    async def scenario() -> None:
        async with serving(bot, tls=tls_files, basic_auth=("exotel", "s3cret")) as server:
            assert server.url.startswith("wss://") and server.public_url.startswith("wss://")
            url = with_credentials(server.url, "exotel", "s3cret")
            async with streaming(url, ssl=client_context(ca)):
                await until(lambda: events(bot, "start"))

    run(scenario())


def test_wss_without_credentials_gets_401(ca, tls_files):
    """TLS does not replace auth: without credentials the upgrade is refused with 401."""

    async def scenario() -> None:
        async with serving(scenario_bot(), tls=tls_files, basic_auth=("exotel", "s3cret")) as server:
            with pytest.raises(InvalidStatus) as info:
                async with FakeExotel(server.url, ssl=client_context(ca)):
                    pass
        assert info.value.response.status_code == 401

    run(scenario())


def test_client_not_trusting_the_ca_cannot_connect(tls_files):
    """A client with only the system's trust store refuses the test certificate (it is really TLS)."""

    async def scenario() -> None:
        async with serving(scenario_bot(), tls=tls_files) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                async with FakeExotel(server.url):
                    pass

    run(scenario())


def test_unreadable_tls_files_are_a_one_line_configuration_error(tmp_path, monkeypatch, capsys):
    """A missing certificate fails start-up with one line naming the setting, not a traceback."""
    with pytest.raises(ConfigurationError, match="DIALSTREAM_BOT_TLS_CERT"):
        server_tls(TlsFiles(str(tmp_path / "missing.pem"), str(tmp_path / "missing.key")))
    monkeypatch.setenv("DIALSTREAM_BOT_TLS_CERT", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("DIALSTREAM_BOT_TLS_KEY", str(tmp_path / "missing.key"))
    assert main(["--port", "0", "--redis-url", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bot TLS: cannot load") and "\n" not in err


def test_cert_without_key_is_refused(monkeypatch):
    """Setting only one of the two TLS variables exits with status 2 before anything starts."""
    monkeypatch.setenv("DIALSTREAM_BOT_TLS_CERT", "bot.pem")
    monkeypatch.delenv("DIALSTREAM_BOT_TLS_KEY", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["--port", "0"])
    assert info.value.code == 2

