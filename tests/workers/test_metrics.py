"""Worker metrics: recorded where they happen."""

from __future__ import annotations

import httpx
import pytest

from dialstream.errors import LegsApiRateLimited, LegsApiServerError
from dialstream.exotel.legs_api import LegsClient
from dialstream.settings import Settings
from workers.metrics import REGISTRY, record_action, record_event, record_legs_api, record_rate_limit_wait

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
    client = LegsClient(SETTINGS.legs_api, transport=httpx.MockTransport(answer), observe=record_legs_api)
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
    client = LegsClient(SETTINGS.legs_api, transport=httpx.MockTransport(refuse), observe=record_legs_api)
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
