"""The API's request bodies, with every campaign setting the CLI has.

:data:`CampaignSettings` is built from :class:`~dialstream.domain.campaign.CampaignConfig`'s
own fields, so a setting added to campaigns is an API field at once, with its default; the
API adds what submitting needs (the numbers' default region, the phone column, start paused,
webhook endpoints). Unknown fields are refused: a typo is an error, not a silent default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.redial import parse_redials
from dialstream.domain.webhooks import EVENT_TYPES
from dialstream.engine.campaigns import new_campaign_id

__all__ = ["WebhookSpec", "CampaignSettings", "CreateCampaign", "NumbersBody", "to_config", "SUBMIT_OPTIONS"]


class WebhookSpec(BaseModel):
    """A webhook endpoint: where, which events (default: all), and its secret (default: made for it)."""

    model_config = ConfigDict(extra="forbid")
    url: str
    events: list[str] = Field(default_factory=lambda: list(EVENT_TYPES), description=f"any of {', '.join(EVENT_TYPES)}")
    secret: str = Field("", description="whsec_ and 24-64 bytes in base64; empty: a new one, returned once")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _config_fields() -> dict[str, Any]:
    hints = get_type_hints(CampaignConfig)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(CampaignConfig):
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
    fields["campaign_id"] = (str, Field("", description="default: made from the name, unique"))
    # As the CLI's --retries: 'default', 'none', 'busy=3/5m,no_answer=2/30m', or the rules as JSON.
    fields["retries"] = (Mapping[str, Any] | str | None, Field("default", description="'default', 'none', 'busy=3/5m,...' or {outcome: {max_attempts, delay}}"))
    fields["stream_variables"] = (list[str], Field(default_factory=list, description="contact variables for the bot's stream URL, in order"))
    return fields


SUBMIT_OPTIONS = {
    "region": (str, Field("", description="region of numbers without a country code (default: DIALSTREAM_DEFAULT_REGION)")),
    "phone_column": (str | None, Field(None, description="the phone column's name (default: phone, number, mobile...)")),
    "paused": (bool, Field(False, description="load the campaign without starting to dial")),
    "webhooks": (list[WebhookSpec], Field(default_factory=list, description="this campaign's webhook endpoints")),
}

CampaignSettings = create_model("CampaignSettings", __base__=_Strict, **_config_fields(), **SUBMIT_OPTIONS)  # type: ignore[call-overload]
CreateCampaign = create_model(
    "CreateCampaign", __base__=CampaignSettings,
    contacts=(list[dict[str, Any]], Field(min_length=1, description="one object per contact: a phone field, every other field a variable")),
)  # fmt: skip


class NumbersBody(_Strict):
    numbers: list[str] = Field(min_length=1)
    campaign_id: str = Field("", description="one campaign's list instead of the account's")


def to_config(settings: BaseModel, default_name: str) -> CampaignConfig:
    """The campaign ``settings`` describe (ConfigurationError for a bad combination)."""
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(CampaignConfig)}
    values["name"] = values["name"] or default_name
    values["campaign_id"] = values["campaign_id"] or new_campaign_id(values["name"])
    if isinstance(values["retries"], str):
        values["retries"] = parse_redials(values["retries"])
    return CampaignConfig(**values)
