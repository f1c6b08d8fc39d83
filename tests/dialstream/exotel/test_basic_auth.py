"""The one Basic-auth parser and builder every door shares."""

from __future__ import annotations

import pytest

from dialstream.exotel.agentstream import split_credentials, with_credentials
from dialstream.exotel.basic_auth import basic_auth_header, basic_auth_matches, parse_basic_auth


def test_header_round_trips_including_a_colon_in_the_password():
    """A header built here parses back to the same user and password; the first colon splits them."""
    header = basic_auth_header("exotel", "s3:cret")
    assert header == "Basic ZXhvdGVsOnMzOmNyZXQ="
    assert parse_basic_auth(header) == ("exotel", "s3:cret")
    assert basic_auth_matches(header, "exotel", "s3:cret")


def test_scheme_is_case_insensitive():
    """``basic`` in any case is the Basic scheme (RFC 7617)."""
    assert parse_basic_auth("bAsIc ZXhvdGVsOnMzY3JldA==") == ("exotel", "s3cret")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer abc", "Basic", "Basic %%%", "Basic ZXhvdGVs", "Basic " + "gA==", "Digest ZXhvdGVsOnMzY3JldA=="],
)
def test_malformed_headers_parse_as_none(header):
    """Missing, other schemes, bad base64, no colon or non-UTF-8 credentials give None, never an exception."""
    assert parse_basic_auth(header) is None
    assert not basic_auth_matches(header, "exotel", "s3cret")


def test_wrong_user_or_password_does_not_match():
    """Either half wrong is a mismatch."""
    assert not basic_auth_matches(basic_auth_header("exotel", "wrong"), "exotel", "s3cret")
    assert not basic_auth_matches(basic_auth_header("other", "s3cret"), "exotel", "s3cret")


def test_stream_url_credentials_become_the_upgrade_header():
    """``user:pass@`` leaves the URL (percent-decoded) and becomes the Basic header, as Exotel sends it."""
    url, header = split_credentials("wss://ex%40otel:p%3Ass@[::1]:8443/media?x=1")
    assert url == "wss://[::1]:8443/media?x=1"
    assert parse_basic_auth(header) == ("ex@otel", "p:ss")
    assert split_credentials("ws://bot:8765/") == ("ws://bot:8765/", None)


def test_with_credentials_round_trips_through_split():
    """Credentials added for start_stream come back out exactly as Exotel would send them."""
    url = with_credentials("wss://bots.example:8443/media?sample-rate=16000", "exotel", "p@ss:w/rd")
    assert url.startswith("wss://exotel:p%40ss%3Aw%2Frd@bots.example:8443/")
    bare, header = split_credentials(url)
    assert bare == "wss://bots.example:8443/media?sample-rate=16000"
    assert parse_basic_auth(header) == ("exotel", "p@ss:w/rd")


def test_with_credentials_leaves_url_alone_without_user_or_with_its_own():
    """No user configured, or a URL that already carries credentials, is returned unchanged."""
    assert with_credentials("ws://bot:8765/", "", "x") == "ws://bot:8765/"
    assert with_credentials("ws://a:b@bot:8765/", "exotel", "s3cret") == "ws://a:b@bot:8765/"
