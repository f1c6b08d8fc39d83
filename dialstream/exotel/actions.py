"""The leg actions of Exotel's Legs API, by name.

One enum for the state machine that decides them (``dialstream.domain.leg_state``), the
workers that claim and send them (``dialstream.state.store.Store.claim_action``,
``workers.actions``) and the client that maps each to its request
(``dialstream.exotel.legs_api.LegsClient.act``). The values are Exotel's action names,
which also appear in the leg record's JSON, in action ids (``start_say#2``) and in the
claim script (``dialstream/state/claim.lua``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ActionKind"]


class ActionKind(StrEnum):
    """One kind of Legs API action on a leg."""

    START_STREAM = "start_stream"
    STOP_STREAM = "stop_stream"
    START_SAY = "start_say"
    STOP_SAY = "stop_say"
    START_PLAY = "start_play"
    STOP_PLAY = "stop_play"
    HANGUP = "hangup"  # the ExoML <Hangup/> verb: Exotel has no named hangup action

    @classmethod
    def start(cls, greeting: str) -> ActionKind:
        """The action that starts a greeting played as ``greeting`` ("say" or "play")."""
        return cls(f"start_{greeting}")

    @classmethod
    def stop(cls, greeting: str) -> ActionKind:
        """The action that stops a greeting played as ``greeting`` ("say" or "play")."""
        return cls(f"stop_{greeting}")

    @property
    def stops(self) -> bool:
        """Whether it stops something the leg is doing (a stream, a greeting)."""
        return self.value.startswith("stop_")
