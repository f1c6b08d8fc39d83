"""The campaign engine through a remote stack's HTTP API: what ``dialstream campaign --api URL`` drives.

:class:`RemoteEngine` answers the calls ``dialstream.app.campaign_cli`` makes of
:class:`~dialstream.engine.campaigns.CampaignEngine` (submit a file, status, report, pause,
resume, cancel, the DNC list) with requests to the API, and turns its problem details back
into the engine's exceptions (404: KeyError, 409: ValueError, 422 and a refused key:
ConfigurationError), so the CLI prints the same one-line errors either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx

from dialstream.domain.campaign import CampaignConfig, CampaignState
from dialstream.domain.contacts import RejectCode, RejectedRow
from dialstream.engine.campaigns import CampaignStatus
from dialstream.engine.submit import SubmitReport
from dialstream.errors import ConfigurationError

__all__ = ["RemoteEngine"]


class RemoteEngine:
    """One account's campaigns behind ``api_url``, with an API key."""

    def __init__(self, api_url: str, key: str, *, timeout: float = 60.0) -> None:
        if not key:
            raise ConfigurationError("--api needs an API key: set DIALSTREAM_API_KEY (dialstream apikey create on the stack)")
        self.url = api_url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
        self.dnc = _RemoteDnc(self)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the JSON answer, or the engine's exception for an error."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ConfigurationError(f"cannot reach the API at {self.url}: {exc}") from None
        if response.is_success:
            return response.json() if "json" in response.headers.get("content-type", "") else response.text
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text or response.reason_phrase
        if response.status_code == 404:
            raise KeyError(detail)
        if response.status_code == 409:
            raise ValueError(detail)
        if response.status_code in (401, 403):
            raise ConfigurationError(f"the API at {self.url} refused the key: {detail}")
        raise ConfigurationError(str(detail))

    def submit_file(
        self, config: CampaignConfig, source: Path, *, on_rejected: Callable[[RejectedRow], None] | None = None, **options: Any
    ) -> SubmitReport:
        settings = {f.name: getattr(config, f.name) for f in fields(CampaignConfig)}
        settings.update({k: v for k, v in (("phone_column", options.get("phone_column")), ("region", options.get("region")), ("paused", options.get("paused"))) if v})
        name = source.name if not options.get("fmt") else f"{source.stem}.{options['fmt']}"
        with open(source, "rb") as handle:
            created = self.call("POST", "/v1/campaigns/upload", files={"file": (name, handle)}, data={"settings": json.dumps(settings)})
        for row in created["rejected_sample"]:
            if on_rejected is not None:
                on_rejected(RejectedRow(row["line"], "", row["reason"], RejectCode(row["code"])))
        return SubmitReport(created["campaign_id"], CampaignState(created["state"]), created["accepted"], created["rejected"], created["rejected_by_code"])

    def resolve(self, ref: str) -> str:
        return self.call("GET", f"/v1/campaigns/{ref}")["campaign_id"]

    def status(self, campaign_id: str) -> CampaignStatus:
        return _status(self.call("GET", f"/v1/campaigns/{campaign_id}"))

    def statuses(self) -> list[CampaignStatus]:
        return [_status(raw) for raw in self.call("GET", "/v1/campaigns")]

    def report(self, campaign_id: str) -> Iterator[dict[str, Any]]:
        yield from self.call("GET", f"/v1/campaigns/{campaign_id}/report", params={"format": "json"})["contacts"]

    def pause(self, campaign_id: str) -> CampaignState:
        return CampaignState(self.call("POST", f"/v1/campaigns/{campaign_id}/pause")["state"])

    def resume(self, campaign_id: str) -> CampaignState:
        return CampaignState(self.call("POST", f"/v1/campaigns/{campaign_id}/resume")["state"])

    def cancel(self, campaign_id: str) -> int:
        return int(self.call("POST", f"/v1/campaigns/{campaign_id}/cancel")["canceled_contacts"])


class _RemoteDnc:
    """The DNC calls the CLI makes, through the API."""

    def __init__(self, engine: RemoteEngine) -> None:
        self.engine = engine

    def add(self, numbers: Iterable[str], campaign_id: str | None = None) -> int:
        return int(self.engine.call("POST", "/v1/dnc", json={"numbers": list(numbers), "campaign_id": campaign_id or ""})["added"])

    def remove(self, numbers: Iterable[str], campaign_id: str | None = None) -> int:
        removed = 0
        for number in numbers:
            try:
                self.engine.call("DELETE", f"/v1/dnc/{number}", params={"campaign_id": campaign_id or ""})
                removed += 1
            except KeyError:
                pass  # not on the list
        return removed

    def count(self, campaign_id: str | None = None) -> int:
        return int(self.engine.call("GET", "/v1/dnc", params={"campaign_id": campaign_id or "", "limit": 1})["count"])

    def load(self, source: str, campaign_id: str | None = None) -> Any:
        raise ConfigurationError("dnc load reads the file next to Redis: through --api, use dnc add NUMBER...")


def _status(raw: dict[str, Any]) -> CampaignStatus:
    known = {f.name for f in fields(CampaignStatus)}
    values = {k: v for k, v in raw.items() if k in known}
    return CampaignStatus(**{**values, "state": CampaignState(raw["state"]), "waiting_for": tuple(raw.get("waiting_for", ()))})
