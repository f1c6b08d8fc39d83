"""The leg actions of Exotel's Legs API, by name.

One enum for the state machine that decides them (``dialstream.domain.leg_state``), the
workers that claim and send them (``dialstream.state.store.Store.claim_action``,
``workers.actions``) and the client that maps each to its request
(``dialstream.exotel.legs_api.LegsClient.act``). The values are Exotel's action names,
which also appear in the leg record's JSON, in action ids (``start_say#2``) and in the
claim script (``dialstream/state/claim.lua``). Two are Legs API calls a call makes beside
its leg's actions, to hand it to an agent: another leg co-located with it, and a bridge.
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
    CREATE_LEG = "create_leg"  # POST /legs with reference_leg_sid: the agent's leg, beside the callee's
    CREATE_BRIDGE = "create_bridge"  # POST /bridges: the callee and the agent talk

    @classmethod
    def start(cls, greeting: str) -> ActionKind:
        """The action that starts a greeting played as ``greeting`` ("say" or "play")."""
        return cls(f"start_{greeting}")

    @classmethod
    def stop(cls, greeting: str) -> ActionKind:
        """The action that stops a greeting played as ``greeting`` ("say" or "play")."""
        return cls(f"stop_{greeting}")

    @property
    def creates(self) -> bool:
        """Whether it creates something beside the leg (a leg, a bridge) rather than act on the
        leg: not sent with ``LegsClient.act``."""
        return self in (ActionKind.CREATE_LEG, ActionKind.CREATE_BRIDGE)

    @property
    def stops(self) -> bool:
        """Whether it stops something the leg is doing (a stream, a greeting)."""
        return self.value.startswith("stop_")
