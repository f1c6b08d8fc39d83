"""Caller IDs: the account's ExoPhones, anything else refused with a clear 400, the number used per call."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialstream.errors import ConfigurationError
from dialstream.settings import Settings
from sim.__main__ import build_config, build_parser
from sim.callee import CalleeProfile
from sim.config import SandboxConfig
from sim.validation import BadRequest, exophone_of
from tests.sim.harness import Harness, async_test, fast_config, harness

DEFAULT = Settings().exophone  # EXOTEL_EXOPHONE's default, the sandbox's default caller ID
POOL = ("+918030752400", "+912240001234")
QUICK = CalleeProfile(ring_ms=(10, 10), talk_ms=None)


async def dial_from(h: Harness, exophone: str) -> tuple[int, dict]:
    body = {"contact_uri": "+919800000001", "exophone": exophone, "leg_event_endpoint": h.endpoint}
    status, envelope, _ = await h.call("POST", h.legs_path, body)
    return status, envelope


@async_test
async def test_by_default_only_the_configured_exophone_may_call() -> None:
    """Without a list, the default ExoPhone dials; any other caller ID is a 400 naming it and the allowed ones."""
    async with harness() as h:
        ok, _ = await dial_from(h, DEFAULT)
        refused, envelope = await dial_from(h, "+911100000000")
    assert ok == 202 and refused == 400
    error = envelope["response"]["error_data"]
    assert error["message"] == "invalid exophone"
    assert error["description"] == f"+911100000000 is not one of this account's ExoPhones ({DEFAULT})"


@async_test
async def test_every_exophone_of_the_list_dials_and_each_call_records_its_own() -> None:
    """With exophones configured, each of them dials; the call's report and the summary say which one it used."""
    async with harness(fast_config(QUICK, exophones=POOL)) as h:
        first = await h.create_leg("+919800000001", exophone=POOL[0])
        second = await h.create_leg("+919800000002", exophone=POOL[1])
        third = await h.create_leg("+919800000003", exophone=POOL[1])
        reports = [await h.report(sid) for sid in (first, second, third)]
        summary = await h.summary()
        refused, _ = await dial_from(h, DEFAULT.replace("0752400", "0000000"))
    assert [r["exophone"] for r in reports] == [POOL[0], POOL[1], POOL[1]]
    assert summary["exophones"] == {POOL[0]: 1, POOL[1]: 2}
    assert refused == 400


@pytest.mark.parametrize("spelling", ["+918030752400", "08030752400", "918030752400", "+91 80 3075 2400"])
def test_an_exophone_may_be_written_any_way_exotel_takes_a_number(spelling: str) -> None:
    """0-prefixed, country-prefixed without +, or spaced: the same ExoPhone is accepted."""
    assert exophone_of(spelling, ("+918030752400",)) == spelling


def test_a_sip_identity_must_match_exactly() -> None:
    """A SIP caller identity is compared as written."""
    assert exophone_of("sip:bot@example.com", ("sip:bot@example.com",)) == "sip:bot@example.com"
    with pytest.raises(BadRequest):
        exophone_of("sip:other@example.com", ("sip:bot@example.com",))


@async_test
async def test_dial_from_an_exophone_not_in_the_list_is_refused_before_anything_runs() -> None:
    """<Dial exophone=...> with a caller ID that is not the account's is a 400; no second leg is created."""
    async with harness(fast_config(QUICK, exophones=POOL)) as h:
        caller = await h.answered_leg(exophone=POOL[0])
        status, envelope = await h.exoml(caller, '<Dial contactUri="+918000000001" exophone="+911100000000"/>')
        assert status == 400 and envelope["response"]["error_data"]["message"] == "invalid exophone"
        assert len(h.sandbox.calls) == 1 and h.sandbox.leg(caller).actions == []
        await h.hang_up(caller)


def test_scenario_exophones_and_the_stacks_own(tmp_path: Path) -> None:
    """A scenario's exophones list is the account's; without one, python -m sim allows EXOTEL_EXOPHONES, else EXOTEL_EXOPHONE."""
    scenario = tmp_path / "pool.yaml"
    scenario.write_text("exophones: ['+918030752400', '+912240001234']\n")
    settings = Settings(exophone="+912299999999")
    assert build_config(build_parser().parse_args(["--scenario", str(scenario)]), settings).caller_ids == POOL
    assert build_config(build_parser().parse_args([]), settings).caller_ids == ("+912299999999",)
    pool = Settings(exophone="+912299999999", exophones=POOL)
    assert build_config(build_parser().parse_args([]), pool).caller_ids == POOL
    assert SandboxConfig().caller_ids == (DEFAULT,)
    with pytest.raises(ConfigurationError, match="exophones: expected a list"):
        SandboxConfig.from_mapping({"exophones": "+918030752400"})
