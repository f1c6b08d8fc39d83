"""Campaign configuration and the leg tag that routes a leg's events back to its contact.

Pure data: no I/O. A campaign chooses its flow:

- ``bot_first`` (approach 1): on ``leg_answered`` start the bot stream.
- ``greeting_say`` / ``greeting_play`` (approach 2): start the stream together with a short
  greeting (TTS text or an audio URL, 200-500 ms), stopped the moment ``stream_started``.

and how it is dialled: its own concurrency cap, a calling window in the callee's local time,
per-outcome redials, and which contact variables reach the bot. What every campaign of the
account shares (the Legs API budget, the account's call and stream caps) is
:class:`~dialstream.settings.EngineConfig`, part of the process's settings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from dialstream.domain.redial import NO_REDIALS, RedialPolicy
from dialstream.domain.windows import SAFE_HOURS, CallingWindow
from dialstream.errors import ConfigurationError
from dialstream.exotel.legs_api import DEFAULT_CONTENT_TYPE

__all__ = ["Flow", "CampaignState", "CampaignConfig", "Contact", "LegTag"]

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CONTENT_TYPE = re.compile(r"^audio/[\w.+-]+(;\s*rate=\d+)?$")


class Flow(StrEnum):
    BOT_FIRST = "bot_first"
    GREETING_SAY = "greeting_say"
    GREETING_PLAY = "greeting_play"

    @property
    def has_greeting(self) -> bool:
        return self is not Flow.BOT_FIRST


class CampaignState(StrEnum):
    """Where a campaign is. Only a running campaign is dialled; canceled and done are final."""

    DRAFT = "draft"  # contacts still being loaded
    RUNNING = "running"
    PAUSED = "paused"  # no new dials; calls in progress finish
    CANCELED = "canceled"  # pending contacts recorded as canceled; calls in progress finish
    DONE = "done"  # every contact has its final record


@dataclass(frozen=True)
class CampaignConfig:
    """Everything the workers need to run one campaign's calls."""

    campaign_id: str
    name: str = ""
    flow: Flow = Flow.GREETING_SAY
    greeting_text: str = "Hello!"
    greeting_url: str = ""
    # Empty: the workers pick a live bot from the fleet, else DIALSTREAM_BOT_URLS.
    bot_url: str = ""
    stream_direction: str = "bidirectional"
    stream_content_type: str = DEFAULT_CONTENT_TYPE
    ring_timeout: int = 30
    time_limit: int = 14400
    # Bot stream failover: wait this long for stream_started, then try another bot; after
    # max_stream_attempts (including one reconnect after a bot drops mid-call) play the
    # fallback message and hang up.
    stream_start_timeout: float = 3.0
    max_stream_attempts: int = 2
    hold_message: str = "One moment please."
    fallback_message: str = "Sorry, we are unable to connect you right now. We will call you back."
    # Answering machines (amd_enable): "hangup", or "voicemail" to leave voicemail_message first.
    amd_enable: bool = False
    amd_action: str = "hangup"
    voicemail_message: str = ""
    # AMD's result as an event while the call goes on (Exotel's async_amd): the greeting and
    # the bot start for humans at once; a voicemail waits for the beep.
    async_amd: bool = False
    # Ask Exotel to record the call; its recording URL goes in the report.
    record: bool = False
    # Hand-off to a human: agent numbers, taken round-robin; "cold" (connect at once) or "warm"
    # (the agent hears whisper_message, else the bot's summary, first). An agent who does not
    # answer within agent_ring_timeout sends the call back to the "bot", or to the fallback
    # "message" and a hang-up. transfer_key: a DTMF key that asks for an agent whatever the bot does.
    agents: tuple[str, ...] = ()
    transfer_mode: str = "cold"
    agent_ring_timeout: int = 20
    transfer_fallback: str = "bot"
    transfer_key: str = ""
    whisper_message: str = ""
    # Dialing. Live calls of this campaign at once (0: only the account's caps apply).
    max_concurrent: int = 0
    # When calls may be placed, in the callee's local time (dialstream.domain.windows grammar,
    # e.g. "mon-sat 09:00-20:00"; "any": at any time). Empty is stored as SAFE_HOURS, so the
    # stored config always says which window is in force.
    window: str = SAFE_HOURS
    # Redials per outcome, as RedialPolicy.from_dict reads them ({"busy": {"max_attempts": 3,
    # "delay": 300}}); None: every contact is dialled once.
    retries: Mapping[str, Any] | None = None
    # Contact variables appended to the bot's stream URL, in this order, within Exotel's
    # limits (3 pairs, 256 characters); empty: the contact's first variables that fit.
    stream_variables: tuple[str, ...] = ()
    # Caller IDs of this campaign (dialstream.domain.caller_id); empty: the account's pool.
    exophones: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.campaign_id or ":" in self.campaign_id:
            raise ConfigurationError(f"campaign id {self.campaign_id!r} must be non-empty and contain no ':'")
        object.__setattr__(self, "flow", Flow(self.flow))
        if self.flow is Flow.GREETING_SAY and not self.greeting_text:
            raise ConfigurationError("flow greeting_say needs a greeting text")
        if self.flow is Flow.GREETING_PLAY and not self.greeting_url:
            raise ConfigurationError("flow greeting_play needs a greeting audio URL")
        if self.amd_action not in ("hangup", "voicemail"):
            raise ConfigurationError(f"amd_action {self.amd_action!r} is not hangup/voicemail")
        if self.amd_action == "voicemail" and not self.voicemail_message:
            raise ConfigurationError("amd_action voicemail needs a voicemail_message")
        if self.max_stream_attempts < 1 or self.stream_start_timeout <= 0:
            raise ConfigurationError("max_stream_attempts must be >= 1 and stream_start_timeout > 0")
        if self.stream_direction not in ("bidirectional", "unidirectional"):
            raise ConfigurationError(f"stream direction {self.stream_direction!r} is not bidirectional/unidirectional")
        if self.max_concurrent < 0:
            raise ConfigurationError(f"max_concurrent {self.max_concurrent} must be >= 0 (0: no campaign cap)")
        if self.async_amd and not self.amd_enable:
            raise ConfigurationError("async_amd needs amd_enable")
        if not 1 <= self.ring_timeout <= 120 or not 1 <= self.time_limit <= 14400:
            raise ConfigurationError(f"ring_timeout {self.ring_timeout} must be 1-120 s and time_limit {self.time_limit} 1-14400 s")
        if not _CONTENT_TYPE.match(self.stream_content_type):
            raise ConfigurationError(f"stream content type {self.stream_content_type!r} is not like audio/x-mulaw;rate=8000")
        # Lists, from JSON.
        for name in ("stream_variables", "exophones", "agents"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for what, number in (*(("exophone", n) for n in self.exophones), *(("agent", n) for n in self.agents)):
            if not _E164.match(number):
                raise ConfigurationError(f"{what} {number!r} is not an E.164 number like +918030752400")
        self._check_transfer()
        object.__setattr__(self, "window", self.window.strip() or SAFE_HOURS)
        # Parsed now so that a bad window or redial rule fails at submission, not at the first dial.
        _ = self.calling_window, self.redial_policy

    def _check_transfer(self) -> None:
        if self.transfer_mode not in ("cold", "warm"):
            raise ConfigurationError(f"transfer mode {self.transfer_mode!r} is not cold/warm")
        if self.transfer_fallback not in ("bot", "message"):
            raise ConfigurationError(f"transfer fallback {self.transfer_fallback!r} is not bot/message")
        if not 5 <= self.agent_ring_timeout <= 120:
            raise ConfigurationError(f"agent_ring_timeout {self.agent_ring_timeout} must be 5-120 s")
        if self.transfer_key and (len(self.transfer_key) != 1 or self.transfer_key not in "0123456789*#"):
            raise ConfigurationError(f"transfer key {self.transfer_key!r} is not one of 0-9 * #")
        if self.transfer_key and not self.agents:
            raise ConfigurationError("a transfer key needs agent numbers")

    @cached_property
    def calling_window(self) -> CallingWindow:
        return CallingWindow.parse(self.window)

    @cached_property
    def redial_policy(self) -> RedialPolicy:
        return NO_REDIALS if self.retries is None else RedialPolicy.from_dict(self.retries)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> CampaignConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Contact:
    """One row of a campaign: an E.164 number and its per-row variables."""

    contact_id: str
    phone: str
    variables: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"contact_id": self.contact_id, "phone": self.phone, "variables": dict(self.variables)})

    @classmethod
    def from_json(cls, text: str | bytes) -> Contact:
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class LegTag:
    """What a leg's ``custom_param`` carries so every event names its campaign and contact.

    Exotel echoes ``custom_param`` on every event of the leg, so a worker can route an
    event that arrives before the create-leg response was even recorded.
    """

    campaign_id: str
    contact_id: str
    attempt: int = 1
    # On an agent's leg (a transfer): the callee's leg, whose record its events go to.
    agent_of: str = ""

    @property
    def call_id(self) -> str:
        """``campaign:contact:attempt``: the call's concurrency slot and its entry in the API reserve."""
        return f"{self.campaign_id}:{self.contact_id}:{self.attempt}"

    def encode(self, secret: bytes = b"") -> str:
        """The ``custom_param`` to create the leg with, signed with ``secret`` when given."""
        fields: dict[str, Any] = {"ds": 1, "c": self.campaign_id, "k": self.contact_id, "a": self.attempt}
        if self.agent_of:
            fields["p"] = self.agent_of
        if secret:
            fields["s"] = self._signature(secret)
        return json.dumps(fields, separators=(",", ":"))

    def _signature(self, secret: bytes) -> str:
        parts = [self.campaign_id, self.contact_id, str(self.attempt), *([self.agent_of] if self.agent_of else [])]
        message = "\x1f".join(parts).encode()
        return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]

    @classmethod
    def verify(cls, custom_param: str, secret: bytes) -> LegTag | None:
        """The tag in ``custom_param`` if ``secret`` signed it, else None.

        Contact ids are guessable (``r{line}``); the signature is what tells the ingress an
        event belongs to a call dialstream placed, so a forged event cannot name a contact.
        """
        tag = cls.decode(custom_param)
        if tag is None:
            return None
        try:
            signature = json.loads(custom_param).get("s")
        except (ValueError, AttributeError):
            return None
        if not isinstance(signature, str) or not hmac.compare_digest(signature, tag._signature(secret)):
            return None
        return tag

    @classmethod
    def decode(cls, custom_param: str) -> LegTag | None:
        """The tag in ``custom_param``, or None when the leg was not placed by dialstream."""
        try:
            raw: Any = json.loads(custom_param)
        except ValueError:
            return None
        if not isinstance(raw, dict) or raw.get("ds") != 1:
            return None
        campaign, contact, attempt, agent_of = raw.get("c"), raw.get("k"), raw.get("a", 1), raw.get("p", "")
        if not isinstance(campaign, str) or not isinstance(contact, str) or not isinstance(attempt, int) or not isinstance(agent_of, str):
            return None
        return cls(campaign, contact, attempt, agent_of)
