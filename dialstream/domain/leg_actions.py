"""The building blocks of a leg's decisions: an action added to a record's outbox. Pure.

The state machine (``dialstream.domain.leg_state``) and the rules it hands parts of a call
to (``dialstream.domain.voicemail``, ``dialstream.domain.transfer``) decide *which* actions a
leg needs; these functions add them to the record, each with an id unique within the leg
(``start_say#2``) that makes sending it idempotent, and keep what the callee hears from
Exotel (a greeting, a hold, fallback or voicemail message) in the record's greeting state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.leg_record import Action, Decision, Ending, GreetingState, LegRecord, StreamState
from dialstream.exotel.actions import ActionKind

__all__ = [
    "add_action", "start_stream", "start_greeting", "stop_greeting", "give_up", "hangup", "latest_stream", "callee_hears_something",
]  # fmt: skip


def add_action(record: LegRecord, kind: ActionKind, params: dict[str, Any], *, on_leg: str = "") -> tuple[LegRecord, Action]:
    """``record`` with one more action of ``kind`` in its outbox (``on_leg``: for another leg of the call)."""
    count = record.action_counts.get(kind, 0) + 1
    action = Action(f"{kind}#{count}", kind, params, on_leg=on_leg)
    record = dataclasses.replace(
        record, action_counts={**record.action_counts, kind.value: count}, outbox=(*record.outbox, action)
    )
    return record, action


def start_stream(record: LegRecord, campaign: CampaignConfig, *, avoid_tried_bots: bool = False) -> tuple[LegRecord, Action]:
    """Start a bot stream (another bot than those tried, on a retry)."""
    params = {
        "url": campaign.bot_url,  # empty: the sender picks a live bot from the fleet
        "direction": campaign.stream_direction,
        "content_type": campaign.stream_content_type,
        "avoid_tried_bots": avoid_tried_bots,
    }
    record, action = add_action(record, ActionKind.START_STREAM, params)
    return dataclasses.replace(record, stream=StreamState.REQUESTED, stream_attempts=record.stream_attempts + 1), action


def start_greeting(record: LegRecord, kind: str, params: dict[str, Any]) -> tuple[LegRecord, Action]:
    """Start something the callee hears from Exotel: the greeting, a hold, fallback or voicemail message."""
    record, action = add_action(record, ActionKind.start(kind), params)
    record = dataclasses.replace(record, greeting=GreetingState.REQUESTED, greeting_kind=kind, greeting_action_id=action.action_id)
    return record, action


def stop_greeting(record: LegRecord, greeting: GreetingState) -> Decision:
    """Stop what the callee hears from Exotel; ``greeting`` is the state it is in meanwhile."""
    record, action = add_action(record, ActionKind.stop(record.greeting_kind), {})
    return Decision(dataclasses.replace(record, greeting=greeting), (action,))


def give_up(record: LegRecord, campaign: CampaignConfig, reason: str) -> Decision:
    """No bot (nor agent) will be on this call: the callee hears the fallback message, then is hung up."""
    actions: list[Action] = []
    if callee_hears_something(record):
        record, stop = add_action(record, ActionKind.stop(record.greeting_kind), {})
        actions.append(stop)
    record, message = start_greeting(record, "say", {"text": campaign.fallback_message})
    record = dataclasses.replace(record, ending=Ending.FALLBACK, ending_action_id=message.action_id, reason=reason)
    return Decision(record, (*actions, message))


def hangup(record: LegRecord, ending: Ending = Ending.HANGUP) -> Decision:
    """Hang the leg up; ``ending`` says who ended the call (we, or the bot)."""
    record, action = add_action(record, ActionKind.HANGUP, {})
    return Decision(dataclasses.replace(record, ending=ending), (action,))


def latest_stream(record: LegRecord) -> str:
    """The action id of the leg's latest stream attempt."""
    return f"{ActionKind.START_STREAM}#{record.action_counts.get(ActionKind.START_STREAM, 0)}"


def callee_hears_something(record: LegRecord) -> bool:
    """Whether a greeting, hold or fallback message was asked for and has not ended."""
    return record.greeting in (GreetingState.REQUESTED, GreetingState.PLAYING)
