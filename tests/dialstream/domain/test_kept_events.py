"""Events kept beside a leg's record: what a record names as quiet calls for no action, and
applying what was kept at the next load is applying the events."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from dialstream.domain.campaign import CampaignConfig, Flow, LegTag
from dialstream.domain.kept_events import apply_kept, quiet_events, quiet_key
from dialstream.domain.leg_record import Decision, GreetingState, LegRecord
from dialstream.domain.leg_state import apply_event, apply_timer
from dialstream.exotel import events as ev
from dialstream.exotel.events import LegEvent

_sids = itertools.count(1)
_clock = itertools.count(100)
Step = Callable[[LegRecord], "LegEvent | str"]


def event(name: str, attempt: str = "", stream_sid: str = "", reason: str = "", **extra) -> LegEvent:
    detail = {key: value for key, value in (("stream_sid", stream_sid), ("reason", reason)) if value}
    return LegEvent(
        f"E{next(_sids):031d}", ev.LIFECYCLE, name, float(next(_clock)), "LEG1",
        action_custom_parameter=attempt, event_data={"data": detail}, **extra,
    )  # fmt: skip


def campaign(flow: Flow) -> CampaignConfig:
    return CampaignConfig("camp", flow=flow, greeting_url="https://x/hi.wav", bot_url="ws://bot/media")


def on_greeting(name: str) -> Step:
    """The event ``name`` of the greeting the record has now (a hold or fallback message too)."""
    return lambda record: event(name, record.greeting_action_id)


def on_stream(name: str, attempt: int, reason: str = "") -> Step:
    return lambda record: event(name, f"start_stream#{attempt}", f"S{attempt}", reason)


def timer(timer_id: str) -> Step:
    return lambda record: timer_id


ANSWERED = lambda record: event(ev.LEG_ANSWERED)  # noqa: E731
ENDED = lambda record: event(ev.LEG_TERMINATED, data={"terminal_status": "completed"})  # noqa: E731
GREETING = {Flow.GREETING_SAY: (ev.SAY_STARTED, ev.SAY_INTERRUPTED), Flow.GREETING_PLAY: (ev.PLAY_STARTED, ev.PLAY_COMPLETED)}


def walks(flow: Flow) -> list[list[Step]]:
    """Event orders a leg of ``flow`` may see: in order, overtaken, a stream superseded with a
    hold message, every attempt failed into the fallback message, the bot dropping mid-call."""
    started, ended = GREETING.get(flow, (ev.SAY_STARTED, ev.SAY_COMPLETED))
    call = [on_stream(ev.STREAM_INITIATED, 1), on_greeting(started), on_stream(ev.STREAM_STARTED, 1), on_greeting(ended)]
    hung_up = on_stream(ev.STREAM_STOPPED, 1, "callended")
    orders = [[ANSWERED, *order, hung_up, ENDED] for order in itertools.permutations(call)]
    hold = [on_greeting(ev.SAY_STARTED), on_stream(ev.STREAM_INITIATED, 2), on_stream(ev.STREAM_STARTED, 2), on_greeting(ev.SAY_INTERRUPTED)]
    orders += [[ANSWERED, on_stream(ev.STREAM_INITIATED, 1), timer("start_stream#1"), *order] for order in itertools.permutations(hold)]
    fallback = [on_greeting(ev.SAY_STARTED), on_greeting(ev.SAY_COMPLETED), ENDED]
    orders.append([ANSWERED, timer("start_stream#1"), timer("start_stream#2"), *fallback])
    dropped = on_stream(ev.STREAM_STOPPED, 1, "bot closed (1011)")
    orders.append([ANSWERED, on_stream(ev.STREAM_STARTED, 1), dropped, on_greeting(ev.SAY_STARTED), on_stream(ev.STREAM_INITIATED, 2)])
    return orders


def records(flow: Flow, steps: list[Step]) -> list[LegRecord]:
    """The leg's record after each step."""
    config, record = campaign(flow), LegRecord.new("LEG1", LegTag("camp", "c1"), campaign(flow))
    seen = [record]
    for step in steps:
        item = step(record)
        result = apply_timer(record, item, config) if isinstance(item, str) else apply_event(record, item, config)
        record = result.record if isinstance(result, Decision) else result
        seen.append(record)
    return seen


def quiet_as_event(key: str, record: LegRecord) -> LegEvent:
    """The event ``key`` names, as Exotel would send it to ``record``'s leg."""
    name, attempt, *reason = key.split(" ")
    return event(name, attempt, record.stream_sid or "S9", *reason)


@pytest.mark.parametrize("flow", list(Flow), ids=lambda flow: flow.value)
def test_every_event_a_record_names_quiet_calls_for_no_action(flow):
    """For every record a leg reaches (events in any order, superseded streams, the fallback),
    each event it names as quiet, arriving then, calls for no action; and some are named."""
    named = set()
    for steps in walks(flow):
        for record in records(flow, steps):
            for key in quiet_events(record):
                named.add(key.split(" ")[0])
                result = apply_event(record, quiet_as_event(key, record), campaign(flow))
                assert not (isinstance(result, Decision) and result.actions), (key, record)
    assert {ev.STREAM_INITIATED, ev.STREAM_STOPPED} <= named
    if flow is not Flow.BOT_FIRST:
        assert set(GREETING[flow]) <= named


def test_a_greeting_whose_start_must_stop_it_and_a_fallback_messages_end_are_not_quiet():
    """A greeting overtaken by the stream (its start calls for the stop), the fallback message
    (its end hangs up), and a stream stopping while the call is up (the bot dropped) go to a worker."""
    overtaken = records(Flow.GREETING_SAY, [ANSWERED, on_stream(ev.STREAM_STARTED, 1)])[-1]
    assert overtaken.greeting is GreetingState.STOP_PENDING
    assert not any(key.startswith(ev.SAY_STARTED) for key in quiet_events(overtaken))
    fallback = records(Flow.BOT_FIRST, [ANSWERED, timer("start_stream#1"), timer("start_stream#2")])[-1]
    assert not any(key.startswith((ev.SAY_STARTED, ev.SAY_COMPLETED)) for key in quiet_events(fallback))
    streaming = records(Flow.BOT_FIRST, [ANSWERED, on_stream(ev.STREAM_STARTED, 1)])[-1]
    assert "stream_stopped start_stream#1 callended" in quiet_events(streaming)
    assert quiet_key(event(ev.STREAM_STOPPED, "start_stream#1", "S1", "bot closed (1011)")) not in quiet_events(streaming)
    ended = records(Flow.BOT_FIRST, [ANSWERED, ENDED])[-1]
    assert quiet_events(ended) == ()


def test_kept_events_applied_at_load_make_the_record_their_arrival_would_have():
    """stream_initiated and say_started kept (in either order of arrival): applied oldest first
    they give the record that applying them gives; applied again after later events, nothing."""
    config = campaign(Flow.GREETING_SAY)
    answered = records(Flow.GREETING_SAY, [ANSWERED])[-1]
    initiated, say_started = event(ev.STREAM_INITIATED, "start_stream#1", "S1"), event(ev.SAY_STARTED, "start_say#1")
    direct = apply_event(apply_event(answered, initiated, config).record, say_started, config).record
    assert apply_kept(answered, [say_started, initiated], config) == direct
    assert direct.stream_sids == {"start_stream#1": "S1"} and direct.greeting is GreetingState.PLAYING
    later = apply_event(direct, event(ev.STREAM_STARTED, "start_stream#1", "S1"), config).record
    assert apply_kept(later, [initiated, say_started], config) == later
