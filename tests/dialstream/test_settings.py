"""Settings come from the environment once, with documented defaults and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialstream.errors import ConfigurationError
from dialstream.settings import Settings


def test_defaults_without_environment():
    """With no variables set, REDIS_URL is empty (embedded server) and the India host is used."""
    settings = Settings.from_env({})
    assert settings.redis_url == ""
    assert settings.legs_base_url == "https://cpaas-api.in.exotel.com/v2/accounts/dialstream1"


def test_values_are_converted_to_field_types():
    """Numbers, floats and comma lists are parsed from their text."""
    settings = Settings.from_env(
        {"DIALSTREAM_API_TIMEOUT": "2.5", "DIALSTREAM_DEDUPE_TTL": "60", "DIALSTREAM_BOT_URLS": "ws://a/x, ws://b/y,"}
    )
    assert settings.api_timeout == 2.5
    assert settings.dedupe_ttl == 60
    assert settings.bot_urls == ("ws://a/x", "ws://b/y")


def test_bad_value_names_the_variable():
    """A value that does not parse raises ConfigurationError naming the variable."""
    with pytest.raises(ConfigurationError, match="DIALSTREAM_DEDUPE_TTL"):
        Settings.from_env({"DIALSTREAM_DEDUPE_TTL": "a day"})


def test_a_command_is_told_a_bad_value_in_one_line(monkeypatch, capsys):
    """for_command gives a command no settings and one stderr line naming it and the variable, not a traceback."""
    monkeypatch.setenv("DIALSTREAM_DEDUPE_TTL", "a day")
    assert Settings.for_command("dialstream api") is None
    assert capsys.readouterr().err == "dialstream api: DIALSTREAM_DEDUPE_TTL='a day': invalid literal for int() with base 10: 'a day'\n"
    monkeypatch.setenv("DIALSTREAM_DEDUPE_TTL", "60")
    assert Settings.for_command("dialstream api").dedupe_ttl == 60


def test_to_env_round_trips():
    """A child process given to_env() rebuilds the same settings."""
    settings = Settings.from_env({"REDIS_URL": "redis://h:1/2", "DIALSTREAM_BOT_URLS": "ws://a/x,ws://b/y"})
    assert Settings.from_env(settings.to_env()) == settings


def test_token_is_not_shown():
    """The API token never appears in repr or in the documentation table."""
    settings = Settings.from_env({"EXOTEL_API_TOKEN": "s3cret"})
    assert "s3cret" not in repr(settings)
    assert all("s3cret" not in default for _, default, _ in Settings.documentation())


def test_the_accounts_limits_are_settings_too():
    """DIALSTREAM_API_BUDGET and the other engine limits are read into settings.engine, round-trip and are validated."""
    settings = Settings.from_env({"DIALSTREAM_API_BUDGET": "120", "DIALSTREAM_MAX_CALLS": "8"})
    assert settings.engine.api_budget == 120 and settings.engine.max_calls == 8
    assert Settings.from_env(settings.to_env()) == settings
    with pytest.raises(ConfigurationError, match="DIALSTREAM_MAX_CALLS"):
        Settings.from_env({"DIALSTREAM_MAX_CALLS": "many"})
    assert "DIALSTREAM_MAX_DIALING" in {name for name, _, _ in Settings.documentation()}


def test_the_readme_documents_every_variable():
    """Each variable of `dialstream settings` has a row in the README's configuration table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert [name for name, _, _ in Settings.documentation() if f"`{name}`" not in readme] == []


def test_the_values_in_effect_mask_secrets():
    """`dialstream settings` shows each variable's value in effect; tokens, keys and a password in a URL are masked."""
    settings = Settings.from_env({"REDIS_URL": "redis://:hunter2@redis:6379/0", "EXOTEL_API_TOKEN": "s3cret", "DIALSTREAM_API_KEY": "dsk_x", "DIALSTREAM_MAX_CALLS": "7"})
    shown = {name: value for name, value, _ in settings.in_effect()}
    assert shown["REDIS_URL"] == "redis://:***@redis:6379/0" and shown["EXOTEL_API_TOKEN"] == "***" and shown["DIALSTREAM_API_KEY"] == "***"
    assert shown["DIALSTREAM_MAX_CALLS"] == "7" and set(shown) == {name for name, _, _ in Settings.documentation()}
