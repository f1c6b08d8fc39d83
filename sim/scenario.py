"""Which callee profile applies to a leg, and which faults are on: the scenario.

A scenario has a default ``callee`` profile, optional per-``campaigns`` and per-``numbers``
overrides (each a partial profile merged onto the default), and ``faults``. A number's
profile wins over its campaign's, which wins over the default. The listed ``numbers``
double as the scenario's contact list (``Scenario.contacts``) for demos.

``agents`` are callees too, the humans a call is transferred to: each number answers
after ``answer_after_s`` seconds (``null``: never, it rings out) and stays on the line
until hung up (or ``hang_up_after_s``). A plain number is shorthand for ``answer_after_s``.

A leg belongs to campaign ``c`` when its ``custom_param`` is ``c``, starts with ``c:``,
``c/`` or ``c|``, or is a JSON object whose ``campaign`` or ``campaign_id`` is ``c``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dialstream.errors import ConfigurationError
from sim.callee import ANSWERED, NO_ANSWER, OUTCOME_KEYS, CalleeProfile
from sim.faults import Faults
from sim.schema import build

__all__ = ["Scenario", "campaign_of"]

_SEPARATORS = (":", "/", "|")


@dataclass(frozen=True)
class Scenario:
    callee: CalleeProfile = field(default_factory=CalleeProfile)
    campaigns: Mapping[str, CalleeProfile] = field(default_factory=dict)
    numbers: Mapping[str, CalleeProfile] = field(default_factory=dict)
    agents: Mapping[str, CalleeProfile] = field(default_factory=dict)  # not contacts: who calls are transferred to
    faults: Faults = field(default_factory=Faults)

    @property
    def contacts(self) -> tuple[str, ...]:
        """The numbers the scenario describes, in file order."""
        return tuple(self.numbers)

    def profile_for(self, contact_uri: str, custom_param: str = "") -> CalleeProfile:
        number = self.numbers.get(_normalise(contact_uri)) or self.agents.get(_normalise(contact_uri))
        if number is not None:
            return number
        campaign = campaign_of(custom_param, self.campaigns)
        return self.campaigns[campaign] if campaign is not None else self.callee

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Scenario:
        """Build from the ``callee``, ``campaigns``, ``numbers``, ``agents`` and ``faults`` keys of ``raw``."""
        base = _mapping(raw.get("callee"), "callee")
        callee = build(CalleeProfile, base, "callee")
        campaign_raw = _mapping(raw.get("campaigns"), "campaigns")
        campaigns = {
            str(name): build(CalleeProfile, _merge(base, _mapping(v, f"campaigns.{name}")), f"campaigns.{name}")
            for name, v in campaign_raw.items()
        }
        numbers: dict[str, CalleeProfile] = {}
        for number, value in _mapping(raw.get("numbers"), "numbers").items():
            where = f"numbers.{number}"
            override = {"outcome": value} if isinstance(value, str) else _mapping(value, where)
            # A number inherits from its campaign when it names one.
            campaign = override.pop("campaign", None) if isinstance(override, dict) else None
            parent = base
            if campaign is not None:
                if campaign not in campaign_raw:
                    raise ConfigurationError(f"{where}.campaign: unknown campaign {campaign!r}")
                parent = _merge(base, campaign_raw[campaign])
            numbers[_normalise(str(number))] = build(CalleeProfile, _merge(parent, override), where)
        agents: dict[str, CalleeProfile] = {}
        for number, value in _mapping(raw.get("agents"), "agents").items():
            key = _normalise(str(number))
            if key in numbers:
                raise ConfigurationError(f"agents.{number}: also listed under numbers")
            agents[key] = _agent(value, f"agents.{number}")
        faults = build(Faults, raw.get("faults"), "faults")
        return cls(callee=callee, campaigns=campaigns, numbers=numbers, agents=agents, faults=faults)


def campaign_of(custom_param: str, campaigns: Mapping[str, Any]) -> str | None:
    """The campaign named by a leg's ``custom_param``, if it is one of ``campaigns``."""
    if not custom_param or not campaigns:
        return None
    if custom_param in campaigns:
        return custom_param
    for name in campaigns:
        if any(custom_param.startswith(name + sep) for sep in _SEPARATORS):
            return name
    if custom_param.startswith("{"):
        try:
            decoded = json.loads(custom_param)
        except ValueError:
            return None
        if isinstance(decoded, dict):
            for key in ("campaign", "campaign_id"):
                if str(decoded.get(key)) in campaigns:
                    return str(decoded[key])
    return None


def _agent(value: Any, where: str) -> CalleeProfile:
    """An agent's callee profile: answers after a fixed time (or never), talks until hung up."""
    spec = value if isinstance(value, Mapping) else {"answer_after_s": value}
    unknown = sorted(set(spec) - {"answer_after_s", "hang_up_after_s"})
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {unknown}; expected answer_after_s, hang_up_after_s")
    answer, talk = spec.get("answer_after_s"), spec.get("hang_up_after_s")
    for key, seconds in (("answer_after_s", answer), ("hang_up_after_s", talk)):
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0):
            raise ConfigurationError(f"{where}.{key}: expected a number of seconds or null, got {seconds!r}")
    if answer is None:
        return CalleeProfile(outcome=NO_ANSWER, talk_ms=None)
    talk_ms = None if talk is None else (talk * 1000.0, talk * 1000.0)
    return CalleeProfile(outcome=ANSWERED, ring_ms=(answer * 1000.0, answer * 1000.0), talk_ms=talk_ms)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    # Naming any outcome probability replaces the parent's whole outcome mix; otherwise
    # "answer: 1" on a number would clash with "busy: 0.1" inherited from the default.
    merged = dict(base)
    if OUTCOME_KEYS & set(override):
        for key in OUTCOME_KEYS:
            merged.pop(key, None)
    merged.update(override)
    return merged


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _normalise(number: str) -> str:
    return "".join(number.split())
