"""``dialstream demo``: it works with bot auth on, and it fails loudly when answered calls get no stream."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dialstream.app.demo import DemoOptions, run_demo, streamless_calls
from dialstream.domain.report import build_report
from dialstream.settings import Settings

DB = 14  # this module's database on the session's server


def test_streamless_calls_names_count_and_first_reason():
    """Answered calls hung up for want of a stream make one line with the count and the first reason."""
    results = {
        "c1": {"outcome": "answered", "leg_sid": "l1"},
        "c2": {"outcome": "answered_no_stream", "reason": "bot stream could not be started", "errors": ["401"]},
        "c3": {"outcome": "busy"},
    }
    line = streamless_calls(build_report("demo", "bot_first", ["c1", "c2", "c3"], results))
    assert line.startswith("1 of 2 answered calls got no bot stream (first: 401)")
    assert "\n" not in line
    assert streamless_calls(build_report("demo", "bot_first", ["c1"], results)) == ""


@pytest.mark.e2e
def test_demo_streams_every_answered_call_with_bot_auth_on(redis_url):
    """With DIALSTREAM_BOT_AUTH_USER/_PASSWORD set, every answered demo call still gets its stream and the demo exits 0."""
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url.rsplit("/", 1)[0] + f"/{DB}",
            "DIALSTREAM_BOT_AUTH_USER": "exotel",
            "DIALSTREAM_BOT_AUTH_PASSWORD": "s3cret:@/",
        }
    )
    out = io.StringIO()
    status = run_demo(DemoOptions(contacts=4, timeout=60), settings, Console(file=out, width=200))
    text = out.getvalue()
    assert status == 0, text
    assert "4 calls: completed 4" in text, text
    assert "got no bot stream" not in text
    assert "s3cret" not in text
