"""Answering machines: hang up, or wait for the beep and leave the campaign's voicemail. Pure.

The state machine (``dialstream.domain.leg_state``) hands these events to this module:

- ``amd_result_success`` MACHINE (the campaign has ``amd_enable``): the bot stream and the
  greeting stop (with ``async_amd`` they started at the answer, for humans). With
  ``amd_action`` hangup the leg is hung up (outcome ``machine``); with voicemail the leg
  waits for the machine's beep, since a message said over its greeting is not recorded.
- ``amd_beep_detected`` (the sandbox's name for the beep; Exotel documents none): the
  voicemail message starts (``start_say``).
- The message's ``say_completed``: the voicemail is left (outcome ``voicemail_left``, never
  redialled) and the leg hung up. A message cut short leaves the outcome ``machine``.

A machine whose beep is not detected within :data:`BEEP_WAIT` seconds gets the message
anyway: most machines record whatever follows their greeting, and a missed beep is likelier
than a machine that does not record; hanging up would leave nothing at all. The message
then starts late rather than over the greeting. Its end is watched like a fallback
message's (``leg_state.FALLBACK_GRACE``): the leg is hung up even without ``say_completed``.
"""

from __future__ import annotations

import dataclasses

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.leg_actions import add_action, hangup, start_greeting
from dialstream.domain.leg_record import Action, Decision, Ending, GreetingState, LegRecord, Phase, StreamState
from dialstream.exotel import events as ev
from dialstream.exotel.actions import ActionKind

__all__ = ["machine_answered", "beep", "beep_deadline", "message_ended", "timers_for", "BEEP_TIMER", "BEEP_WAIT"]

BEEP_TIMER = "beep"
BEEP_WAIT = 30.0  # seconds from the machine's verdict to its beep at most; then the message starts anyway


def machine_answered(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    """``amd_result_success``: a MACHINE stops the stream and the greeting, then hangs up or waits for the beep."""
    result = str(event.detail.get("result") or "").upper()
    if result != "MACHINE" or not campaign.amd_enable or record.machine or record.phase is Phase.ENDED:
        return record
    record = dataclasses.replace(record, machine=True, reason="answering machine")
    actions: list[Action] = []
    if record.stream in (StreamState.REQUESTED, StreamState.STARTED):
        record, stop = add_action(record, ActionKind.STOP_STREAM, {"stream_sid": record.stream_sid} if record.stream_sid else {})
        record = dataclasses.replace(record, stream=StreamState.STOPPED)
        actions.append(stop)
    if record.greeting in (GreetingState.REQUESTED, GreetingState.PLAYING, GreetingState.STOP_PENDING):
        record, stop = add_action(record, ActionKind.stop(record.greeting_kind), {})
        record = dataclasses.replace(record, greeting=GreetingState.STOPPING)
        actions.append(stop)
    if campaign.amd_action == "voicemail":
        # Waiting for the beep: the ending is set, its message not started yet.
        return Decision(dataclasses.replace(record, ending=Ending.VOICEMAIL, ending_action_id=""), tuple(actions))
    decision = hangup(record)
    return Decision(decision.record, (*actions, *decision.actions))


def beep(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    """``amd_beep_detected``: the machine records now; leave the message if one is awaited."""
    if not _awaits_beep(record):
        return record  # no voicemail to leave, a duplicate, or the deadline came first
    return _leave_message(record, campaign)


def beep_deadline(record: LegRecord, campaign: CampaignConfig) -> LegRecord | Decision:
    """The :data:`BEEP_TIMER` fired: no beep came; leave the message anyway."""
    if not _awaits_beep(record):
        return record
    record = dataclasses.replace(record, errors=(*record.errors, f"no beep within {BEEP_WAIT:g}s: voicemail left without it"))
    return _leave_message(record, campaign)


def message_ended(record: LegRecord, event: ev.LegEvent) -> Decision:
    """What the callee heard ended while a voicemail is under way (``record``: the greeting
    state already updated): the greeting stopped for the beep changes nothing; the message's
    end hangs up, completed (left on the machine) or not."""
    if not record.ending_action_id:
        return Decision(record)  # the greeting stopped for the machine; the message waits for the beep
    if event.event_name == ev.SAY_COMPLETED:
        record = dataclasses.replace(record, voicemail_left_at=event.timestamp)
    return hangup(record)


def timers_for(record: LegRecord, actions: tuple[Action, ...]) -> list[tuple[str, float]]:
    """The beep deadline, armed with the machine's verdict (its ``stop_stream``)."""
    if _awaits_beep(record) and any(a.kind is ActionKind.STOP_STREAM for a in actions):
        return [(BEEP_TIMER, BEEP_WAIT)]
    return []


def _awaits_beep(record: LegRecord) -> bool:
    return record.ending is Ending.VOICEMAIL and not record.ending_action_id and record.phase is not Phase.ENDED


def _leave_message(record: LegRecord, campaign: CampaignConfig) -> Decision:
    record, message = start_greeting(record, "say", {"text": campaign.voicemail_message})
    return Decision(dataclasses.replace(record, ending_action_id=message.action_id), (message,))
