"""A call's recording URL, kept from recording_available, before or after the call ended (pure)."""

from __future__ import annotations

from dialstream.domain.campaign import CampaignConfig, Flow
from dialstream.exotel import events as ev
from tests.dialstream.domain.test_leg_state import drive, drive_from, event

RECORDED = CampaignConfig("camp", flow=Flow.BOT_FIRST, bot_url="ws://b/m", record=True)
URL = "https://recordings.exotel.com/exotelrecordings/acct/rec1.mp3"


def available(url: str = URL, status: str = "completed"):
    return event(ev.RECORDING_AVAILABLE, event_data={"data": {"status": status, "recording_sid": "rec1", "url": url}})


def test_the_recordings_url_is_kept_and_reaches_the_call_record():
    """recording_available before the hang-up: the URL is on the record, no action is sent, a duplicate changes nothing."""
    record, sent = drive(RECORDED, event(ev.LEG_ANSWERED), event(ev.STREAM_STARTED), available())
    assert record.recording_url == URL and [a.kind for a in sent] == ["start_stream"]
    again, more = drive_from(record, RECORDED, available())
    assert again is record and more == []


def test_a_recording_ready_after_the_call_ended_is_kept_and_an_unfinished_one_is_not():
    """After leg_terminated the URL is still kept (the worker adds it to the call's record); a status other than completed is not."""
    record, _ = drive(RECORDED, event(ev.LEG_ANSWERED), event(ev.LEG_TERMINATED, data={"terminal_status": "completed"}),
                      available(status="failed"))  # fmt: skip
    assert record.recording_url == ""
    record, _ = drive_from(record, RECORDED, available())
    assert record.finished and record.recording_url == URL
