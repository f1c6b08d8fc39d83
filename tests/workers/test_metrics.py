"""Worker metrics and the task arguments Flower shows: recorded where they happen, phone numbers masked."""

from __future__ import annotations

import httpx
import pytest

from dialstream.campaign import LegTag
from dialstream.errors import LegsApiRateLimited, LegsApiServerError
from dialstream.legs_api import LegsClient
from dialstream.settings import Settings
from workers.app import DIAL_CONTACT, HANDLE_LEG_EVENT, SEND_ACTION
from workers.metrics import (
    REGISTRY,
    record_action,
    record_event,
    record_legs_api,
    record_rate_limit_wait,
    task_argsrepr,
)

SETTINGS = Settings.from_env({"EXOTEL_API_BASE_URL": "https://api.test"})


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_legs_client_reports_each_request_to_its_observer_by_operation_and_status():
    """A LegsClient observed by record_legs_api counts latency per operation and errors by kind."""
    statuses = iter([202, 429, 503])

    def answer(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        body = {"response": {"data": {"leg_sid": "L1", "action_sid": "A1"}, "error_data": None}}
        return httpx.Response(status, json=body, headers={"Retry-After": "1"})

    before = value("dialstream_legs_api_request_seconds_count", operation="start_stream", status="202")
    client = LegsClient(SETTINGS, transport=httpx.MockTransport(answer), observe=record_legs_api)
    client.start_stream("L1", "ws://bot/")
    with pytest.raises(LegsApiRateLimited):
        client.start_say("L1", "Hi")
    with pytest.raises(LegsApiServerError):
        client.hangup("L1")
    assert value("dialstream_legs_api_request_seconds_count", operation="start_stream", status="202") == before + 1
    assert value("dialstream_legs_api_errors_total", operation="start_say", error="rate_limited") >= 1
    assert value("dialstream_legs_api_errors_total", operation="exoml", error="server") >= 1


def test_legs_client_reports_a_request_without_response_as_status_zero():
    """A transport failure is observed with status 0 and counted as a transport error."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    before = value("dialstream_legs_api_errors_total", operation="create_leg", error="transport")
    client = LegsClient(SETTINGS, transport=httpx.MockTransport(refuse), observe=record_legs_api)
    with pytest.raises(LegsApiServerError):
        client.create_leg("+919812345678", exophone="e", leg_event_endpoint="grpc://h:1")
    assert value("dialstream_legs_api_errors_total", operation="create_leg", error="transport") == before + 1


def test_record_helpers_count_events_actions_and_rate_limiter_waits():
    """record_event/record_action count by their labels; record_rate_limit_wait observes seconds by kind."""
    record_event("leg_answered", "rescued")
    record_action("start_stream", "sent")
    record_rate_limit_wait("dial", 0.25, granted=False)
    assert value("dialstream_worker_events_total", event="leg_answered", result="rescued") >= 1
    assert value("dialstream_worker_actions_total", kind="start_stream", result="sent") >= 1
    assert value("dialstream_rate_limit_wait_seconds_sum", kind="dial", granted="no") >= 0.25


def test_leg_event_arguments_name_leg_campaign_and_contact_and_mask_the_number():
    """handle_leg_event's argsrepr names the event, leg, campaign and contact, never the full number."""
    event = {
        "event_name": "leg_answered",
        "leg_sid": "CA123",
        "custom_param": LegTag("camp1", "c7", 2).encode(),
        "data": {"contact_uri": "+919812345678", "leg_sid": "CA123"},
    }
    text = task_argsrepr(HANDLE_LEG_EVENT, [event])
    assert text == "leg_answered leg=CA123 campaign=camp1 contact=c7 attempt=2 to=+9198*****678"


def test_action_and_dial_arguments_are_summaries():
    """send_action shows the action and leg; dial_contact the campaign, contact and attempt."""
    action = {"action_id": "start_stream:1", "kind": "start_stream", "params": {"url": "wss://u:p@bot/"}}
    assert task_argsrepr(SEND_ACTION, ["CA1", action]) == "start_stream leg=CA1 action=start_stream:1"
    assert task_argsrepr(DIAL_CONTACT, ["camp1", "c7"]) == "dial campaign=camp1 contact=c7 attempt=1"


def test_unexpected_arguments_are_hidden_rather_than_shown():
    """Arguments of an unknown shape or task are hidden: nothing unmasked reaches Flower."""
    assert task_argsrepr(HANDLE_LEG_EVENT, ["+919812345678"]) == "(arguments hidden)"
    assert task_argsrepr("other.task", [{"phone": "+919812345678"}]) == "(arguments hidden)"
