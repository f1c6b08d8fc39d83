"""A call's recording: the URL Exotel gives once it is ready. Pure.

A campaign with ``record`` has its legs created with Exotel's record parameter
(``LegsClient.create_leg``); Exotel then sends ``recording_available`` with the recording's
``url`` (reference 1.7: ``status`` "completed", ``recording_sid``, ``url``). The leg's record
keeps the URL, and the call's record and report show it. The event may come after the call
ended: the URL is kept then too, and the worker adds it to the call's record already written.
"""

from __future__ import annotations

import dataclasses

from dialstream.domain.campaign import CampaignConfig
from dialstream.domain.leg_record import Decision, LegRecord
from dialstream.exotel import events as ev

__all__ = ["available"]


def available(record: LegRecord, event: ev.LegEvent, campaign: CampaignConfig) -> LegRecord | Decision:
    """``recording_available``: keep the recording's URL (a duplicate, or one not completed, changes nothing)."""
    url = str(event.detail.get("url") or "")
    if not url or url == record.recording_url or str(event.detail.get("status") or "completed") != "completed":
        return record
    return Decision(dataclasses.replace(record, recording_url=url))
