"""``/v1/campaigns``: create, list, watch, steer and report campaigns.

Each route is a call to :class:`~dialstream.engine.campaigns.CampaignEngine`. A campaign is
named in a path by its id, its name or the start of its id (``CampaignEngine.resolve``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ValidationError

from api import auth
from api.models import CampaignSettings, CreateCampaign, to_config
from api.problems import RESPONSES, Problem
from dialstream.domain.call_timeline import call_timeline, histogram
from dialstream.domain.contacts import RejectedRow
from dialstream.engine.campaigns import CampaignEngine, write_report_csv
from dialstream.state.webhooks import Webhooks

__all__ = ["router", "campaign_id", "status_of"]

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], responses=RESPONSES)

_SAMPLE = 20  # rejected rows returned by a create; all of them are in the report
_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def engine_of(request: Request) -> CampaignEngine:
    return request.app.state.engine


def campaign_id(engine: CampaignEngine, ref: str) -> str:
    """The id ``ref`` names; 404 if none, 409 if several campaigns match."""
    try:
        return engine.resolve(ref)
    except KeyError as exc:
        raise Problem(404, exc.args[0]) from None
    except ValueError as exc:
        raise Problem(409, str(exc)) from None


def status_of(engine: CampaignEngine, ref: str) -> dict[str, Any]:
    """A campaign's status as the API shows it: counts, rate, reasons it waits, its settings."""
    cid = campaign_id(engine, ref)
    status = engine.status(cid)
    config = engine.store.campaign(cid)
    return {**status.to_dict(), "finished": status.finished, "settings": json.loads(config.to_json()) if config else {}}


@router.post("", status_code=201, dependencies=[auth.write], summary="Create a campaign from a JSON list of contacts")
def create(body: CreateCampaign, request: Request) -> dict[str, Any]:  # type: ignore[valid-type]
    lines = io.StringIO("".join(json.dumps(contact) + "\n" for contact in body.contacts))
    return _submit(request, body, lines, "jsonl", "campaign")


@router.post("/upload", status_code=201, dependencies=[auth.write], summary="Create a campaign from a CSV or JSON-lines file")
def upload(
    request: Request,
    file: UploadFile = File(description="contacts: a phone column, every other column a per-row variable (.csv, .jsonl)"),
    settings: str = Form("{}", description="the campaign's settings as JSON (the fields of CampaignSettings)"),
) -> dict[str, Any]:
    try:
        body = CampaignSettings.model_validate_json(settings)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("settings", *e["loc"])} for e in exc.errors()]) from None
    name = Path(file.filename or "contacts").name
    fmt = _FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise Problem(422, f"cannot tell the format of {name!r}: name it .csv or .jsonl")
    return _submit(request, body, file.file, fmt, Path(name).stem)


def _submit(request: Request, body: BaseModel, source: IO[Any], fmt: str, default_name: str) -> dict[str, Any]:
    engine = engine_of(request)
    config = to_config(body, default_name)
    if engine.store.campaign(config.campaign_id) is not None:
        raise Problem(409, f"campaign {config.campaign_id!r} already exists")
    webhooks = Webhooks(engine.redis)
    endpoints = [webhooks.add_endpoint(w.url, campaign_id=config.campaign_id, events=w.events, secret=w.secret) for w in body.webhooks]
    sample: list[RejectedRow] = []
    options: dict[str, Any] = {"phone_column": body.phone_column, "fmt": fmt, "paused": body.paused}
    if body.region:
        options["region"] = body.region
    try:
        report = engine.submit_file(config, source, on_rejected=lambda row: len(sample) < _SAMPLE and sample.append(row), **options)
    except BaseException:
        for endpoint in endpoints:  # the campaign was not created: neither are its endpoints
            webhooks.remove_endpoint(endpoint.id)
        raise
    return {
        "campaign_id": config.campaign_id,
        "name": config.name,
        "state": report.state.value,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "rejected_by_code": dict(report.rejected_by_code),
        "rejected_sample": [{"line": r.line_no, "code": r.code.value, "reason": r.reason} for r in sample],
        # The only time the secrets are shown: the receiver needs them to check signatures.
        "webhooks": [{**e.public(), "secret": e.secret} for e in endpoints],
    }


@router.get("", dependencies=[auth.read], summary="Every campaign and where it is")
def list_campaigns(request: Request) -> list[dict[str, Any]]:
    return [status.to_dict() for status in engine_of(request).statuses()]


@router.get("/{ref}", dependencies=[auth.read], summary="A campaign's progress, rate, calls in flight and why it waits")
def status(ref: str, request: Request) -> dict[str, Any]:
    return status_of(engine_of(request), ref)


@router.post("/{ref}/pause", dependencies=[auth.write], summary="Stop new dials; calls in progress finish")
def pause(ref: str, request: Request) -> dict[str, Any]:
    return _move(request, ref, "pause")


@router.post("/{ref}/resume", dependencies=[auth.write], summary="Dial again")
def resume(ref: str, request: Request) -> dict[str, Any]:
    return _move(request, ref, "resume")


@router.post("/{ref}/cancel", dependencies=[auth.write], summary="Stop for good: waiting contacts are recorded canceled")
def cancel(ref: str, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    cid = campaign_id(engine, ref)
    try:
        canceled = engine.cancel(cid)
    except ValueError as exc:
        raise Problem(409, str(exc)) from None
    return {"campaign_id": cid, "state": "canceled", "canceled_contacts": canceled}


def _move(request: Request, ref: str, command: str) -> dict[str, Any]:
    engine = engine_of(request)
    cid = campaign_id(engine, ref)
    try:
        state = engine.pause(cid) if command == "pause" else engine.resume(cid)
    except ValueError as exc:
        raise Problem(409, str(exc)) from None
    return {"campaign_id": cid, "state": state.value}


@router.get("/{ref}/contacts", dependencies=[auth.read], summary="Per-contact results with the input columns, in file order")
def contacts(ref: str, request: Request, offset: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=10_000)) -> dict[str, Any]:
    engine = engine_of(request)
    rows = list(engine.report(campaign_id(engine, ref)))
    return {"total": len(rows), "offset": offset, "contacts": rows[offset : offset + limit]}


@router.get(
    "/{ref}/report", dependencies=[auth.read], summary="The report: one row per contact, as CSV or JSON",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)  # fmt: skip
def report(ref: str, request: Request, format: str = Query("csv", pattern="^(csv|json)$")) -> Any:
    engine = engine_of(request)
    cid = campaign_id(engine, ref)
    rows = list(engine.report(cid))
    if format == "json":
        return {"campaign": engine.status(cid).to_dict(), "contacts": rows}
    out = io.StringIO()
    write_report_csv(rows, out)
    headers = {"Content-Disposition": f'attachment; filename="{cid}.csv"'}
    return PlainTextResponse(out.getvalue(), media_type="text/csv", headers=headers)


@router.get("/{ref}/calls", dependencies=[auth.read], summary="Each call's timeline and the campaign's latency histograms")
def calls(ref: str, request: Request, limit: int = Query(200, ge=1, le=5000)) -> dict[str, Any]:
    engine = engine_of(request)
    cid = campaign_id(engine, ref)
    timelines = [call_timeline(r) for r in engine.store.results(cid).values() if r.get("leg_sid")]
    timelines.sort(key=lambda t: t["marks"][0]["at"] if t["marks"] else 0, reverse=True)
    answered = [t for t in timelines if t["answered_to_stream_ms"] is not None or t["answered_to_first_audio_ms"] is not None]
    return {
        "campaign_id": cid,
        "calls": timelines[:limit],
        "histograms": {
            name: histogram(t[name] for t in answered if t[name] is not None)
            for name in ("answered_to_stream_ms", "answered_to_first_audio_ms")
        },
    }
