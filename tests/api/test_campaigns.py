"""The HTTP API over a real ``python -m api`` process and Redis: campaigns created from JSON lists
and uploaded files with every setting, steered, reported; errors as problem details; keys and scopes.
No workers run here, so contacts wait (and the status says why); calls are tests/api/test_end_to_end.py's."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import httpx

from dialstream.domain.campaign import CampaignConfig
from dialstream.engine.campaigns import REPORT_COLUMNS

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict:
    """The problem details of an error response, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["instance"] == response.request.url.path
    return body


SETTINGS = {
    "campaign_id": "every-setting", "name": "Every setting", "flow": "greeting_play", "greeting_url": "https://example.com/hi.wav",
    "bot_url": "wss://bots.example.com/media", "stream_direction": "unidirectional", "stream_content_type": "audio/x-l16;rate=16000",
    "ring_timeout": 25, "time_limit": 600, "stream_start_timeout": 2.5, "max_stream_attempts": 3, "hold_message": "Hold on.",
    "fallback_message": "Call you later.", "amd_enable": True, "amd_action": "voicemail", "voicemail_message": "Please call back.",
    "max_concurrent": 4, "window": "mon-sat 09:00-20:00", "retries": "busy=3/5m,failed=none", "stream_variables": ["name", "amount"],
    "async_amd": True, "record": True, "exophones": ["+918030752400", "+912261234567"], "agents": ["+918000000001", "+918000000002"],
    "transfer_mode": "warm", "agent_ring_timeout": 25, "transfer_fallback": "message", "transfer_key": "0",
    "whisper_message": "A loan customer who asked for a person.",
}  # fmt: skip


def test_a_campaign_from_a_json_list_keeps_every_setting_and_reports_its_rejected_rows(writer):
    """Every CampaignConfig field given as JSON is stored as given; bad rows are rejected with their line and reason."""
    contacts = [{"phone": "+919812345601", "name": "Asha", "amount": "500"}, {"phone": "12345", "name": "Bad"}, {"phone": "+919812345602"}]
    response = writer.post("/v1/campaigns", json={**SETTINGS, "contacts": contacts, "paused": True})
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["campaign_id"], created["state"], created["accepted"], created["rejected"]) == ("every-setting", "paused", 2, 1)
    assert created["rejected_sample"] == [{"line": 2, "code": "invalid_number", "reason": created["rejected_sample"][0]["reason"]}]
    stored = writer.get("/v1/campaigns/every-setting").json()["settings"]
    for name in SETTINGS:
        if name != "retries":
            assert stored[name] == SETTINGS[name], name
    assert stored["retries"]["busy"] == {"max_attempts": 3, "delay": 300.0} and stored["retries"]["failed"] is None
    assert {f.name for f in dataclasses.fields(CampaignConfig)} <= set(stored)


def test_status_says_how_far_a_campaign_is_and_why_it_is_not_dialling(writer):
    """Status has the counts, rate, calls in flight and the reasons: here no dial worker runs."""
    writer.post("/v1/campaigns", json={"campaign_id": "waiting", "window": "any", "contacts": [{"phone": "+919812345603"}]}).raise_for_status()
    status = writer.get("/v1/campaigns/waiting").json()
    assert (status["state"], status["total"], status["pending"], status["due_now"], status["in_flight"], status["done"]) == ("running", 1, 1, 1, 0, 0)
    assert "dials_last_minute" in status and status["finished"] is False
    assert any("no dial worker is running" in reason for reason in status["waiting_for"])
    listed = {c["campaign_id"]: c for c in writer.get("/v1/campaigns").json()}
    assert listed["waiting"]["total"] == 1


def test_uploads_of_csv_and_json_lines_keep_the_input_columns_in_file_order(writer):
    """A CSV and a JSONL file become campaigns; contacts and the report (CSV and JSON) carry every input column, rows in file order."""
    rows = "".join(f"+9198123456{i:02d},name{i},{i * 10}\n" for i in range(1, 13))
    settings = json.dumps({"name": "Uploaded", "max_concurrent": 2})
    response = writer.post("/v1/campaigns/upload", files={"file": ("batch.csv", f"phone,name,amount\n{rows}")}, data={"settings": settings})
    assert response.status_code == 201, response.text
    cid = response.json()["campaign_id"]
    assert cid.startswith("uploaded-") and response.json()["accepted"] == 12
    listed = writer.get(f"/v1/campaigns/{cid}/contacts").json()["contacts"]
    assert [c["contact_id"] for c in listed] == [f"r{i}" for i in range(2, 14)]
    assert listed[0]["variables"] == {"name": "name1", "amount": "10"}
    report = list(csv.DictReader(io.StringIO(writer.get(f"/v1/campaigns/{cid}/report", params={"format": "csv"}).text)))
    assert list(report[0]) == [*REPORT_COLUMNS, "name", "amount"] and report[-1]["name"] == "name12"
    as_json = writer.get("/v1/campaigns/Uploaded/report", params={"format": "json"}).json()
    assert as_json["campaign"]["campaign_id"] == cid and as_json["contacts"][1]["variables"]["amount"] == "20"
    lines = "\n".join(json.dumps({"mobile": f"+9198000000{i:02d}", "city": "Pune"}) for i in range(3))
    response = writer.post("/v1/campaigns/upload", files={"file": ("more.jsonl", lines)})
    assert response.status_code == 201 and response.json()["accepted"] == 3 and response.json()["name"] == "more"


def test_bad_input_is_refused_with_one_problem_and_creates_nothing(writer):
    """An empty file, an unknown format, a bad setting, an unknown field, a taken id: 409/422 problem details, no campaign made."""
    before = len(writer.get("/v1/campaigns").json())
    empty = problem(writer.post("/v1/campaigns/upload", files={"file": ("empty.csv", "")}), 422)
    assert empty["detail"] == "no contacts: the input has no rows"
    assert "format" in problem(writer.post("/v1/campaigns/upload", files={"file": ("batch.xlsx", "x")}), 422)["detail"]
    bad_window = problem(writer.post("/v1/campaigns", json={"window": "someday", "contacts": [{"phone": "+919812345604"}]}), 422)
    assert "someday" in bad_window["detail"] or "window" in bad_window["detail"]
    typo = problem(writer.post("/v1/campaigns", json={"max_concurent": 3, "contacts": [{"phone": "+919812345604"}]}), 422)
    assert typo["errors"] == [{"location": "body.max_concurent", "message": "Extra inputs are not permitted"}]
    bad_settings = problem(writer.post("/v1/campaigns/upload", files={"file": ("a.csv", "phone\n+919812345604\n")}, data={"settings": '{"ring_timeout": "x"}'}), 422)
    assert bad_settings["errors"][0]["location"] == "settings.ring_timeout"
    no_phone = problem(writer.post("/v1/campaigns/upload", files={"file": ("a.csv", "name\nAsha\n")}), 422)
    assert "phone column" in no_phone["detail"]
    bad_webhook = problem(writer.post("/v1/campaigns", json={"webhooks": [{"url": "ftp://x"}], "contacts": [{"phone": "+919812345604"}]}), 422)
    assert "webhook URL" in bad_webhook["detail"]
    assert len(writer.get("/v1/campaigns").json()) == before
    writer.post("/v1/campaigns", json={"campaign_id": "taken", "contacts": [{"phone": "+919812345605"}]}).raise_for_status()
    assert "already exists" in problem(writer.post("/v1/campaigns", json={"campaign_id": "taken", "contacts": [{"phone": "+919812345605"}]}), 409)["detail"]


def test_pause_resume_and_cancel_by_id_or_name(writer):
    """A campaign is steered by its id or its name; a move its state forbids is a 409, an unknown campaign a 404."""
    writer.post("/v1/campaigns", json={"campaign_id": "steer-1", "name": "Steered", "contacts": [{"phone": "+919812345606"}, {"phone": "+919812345607"}]}).raise_for_status()
    assert writer.post("/v1/campaigns/Steered/pause").json() == {"campaign_id": "steer-1", "state": "paused"}
    assert writer.get("/v1/campaigns/steer-1").json()["waiting_for"] == ["the campaign is paused: resume it to dial"]
    assert writer.post("/v1/campaigns/steer-1/resume").json()["state"] == "running"
    assert writer.post("/v1/campaigns/steer-1/cancel").json() == {"campaign_id": "steer-1", "state": "canceled", "canceled_contacts": 2}
    assert "cannot become running" in problem(writer.post("/v1/campaigns/steer-1/resume"), 409)["detail"]
    assert [c["outcome"] for c in writer.get("/v1/campaigns/steer-1/contacts").json()["contacts"]] == ["canceled", "canceled"]
    problem(writer.get("/v1/campaigns/nothing-like-it"), 404)


def test_keys_and_scopes(api_url, keys, reader):
    """No key or an unknown one: 401 (with WWW-Authenticate); a read key cannot write (403); a revoked key stops working at once."""
    missing = httpx.get(f"{api_url}/v1/campaigns")
    assert problem(missing, 401) and missing.headers["www-authenticate"] == "Bearer"
    problem(httpx.get(f"{api_url}/v1/campaigns", headers={"Authorization": "Bearer dsk_made-up"}), 401)
    assert reader.get("/v1/campaigns").status_code == 200
    assert "needs write" in problem(reader.post("/v1/campaigns", json={"contacts": [{"phone": "+919812345608"}]}), 403)["detail"]
    key, token = keys.create("read", name="short-lived")
    assert httpx.get(f"{api_url}/v1/bots", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    keys.revoke(key.id)
    problem(httpx.get(f"{api_url}/v1/bots", headers={"Authorization": f"Bearer {token}"}), 401)


def test_the_openapi_document_and_the_interactive_docs_are_served(api_url):
    """/openapi.json lists every route with its problem responses; /docs is the interactive page."""
    document = httpx.get(f"{api_url}/openapi.json").json()
    assert {"/v1/campaigns", "/v1/campaigns/upload", "/v1/campaigns/{ref}/report", "/v1/dnc", "/v1/bots", "/v1/webhooks/dead/replay"} <= set(document["paths"])
    assert "application/problem+json" in document["paths"]["/v1/campaigns"]["post"]["responses"]["422"]["content"]
    assert "swagger" in httpx.get(f"{api_url}/docs").text.lower()
