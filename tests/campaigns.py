"""Hand a campaign to a running stack, and read back what happened to it.

The one place the end-to-end tests submit campaigns: adapting :func:`submit` adapts them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialstream.app.demo import fetch_timelines
from dialstream.app.stack import Stack
from dialstream.domain.campaign import CampaignConfig, Contact
from dialstream.domain.report import CampaignReport, build_report
from dialstream.engine.submit import submit_contacts
from dialstream.state.store import Store
from tests.utils import wait_for

__all__ = ["submit", "run_campaign"]


def submit(store: Store, campaign: CampaignConfig, contacts: Sequence[Contact]) -> None:
    """Create ``campaign`` with ``contacts`` and start it; the workers' pollers dial them."""
    report = submit_contacts(store, campaign, contacts)
    assert report.accepted == len(contacts), report


def run_campaign(
    stack: Stack, store: Store, config: CampaignConfig, contacts: Sequence[Contact], *, timeout: float = 90
) -> tuple[CampaignReport, dict[str, Any], dict[str, Any]]:
    """Submit, wait for every contact's final record; (report, results, sandbox timelines)."""
    submit(store, config, contacts)
    wait_for(lambda: store.progress(config.campaign_id)[0] == len(contacts), timeout=timeout)
    results = store.results(config.campaign_id)
    timelines = fetch_timelines(stack.sandbox_url)
    report = build_report(config.campaign_id, config.flow.value, [c.contact_id for c in contacts], results, timelines)
    return report, results, timelines
