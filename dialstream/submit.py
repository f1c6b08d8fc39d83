"""Hand a campaign to the workers: store it, then enqueue one dial task per contact."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from dialstream.campaign import CampaignConfig, Contact
from dialstream.store import Store
from workers.app import DIAL_CONTACT, DIAL_QUEUE

__all__ = ["submit_campaign"]


def submit_campaign(store: Store, celery_app: Celery, config: CampaignConfig, contacts: Sequence[Contact]) -> int:
    """Store ``config`` and ``contacts`` and queue their dials; returns the number queued."""
    store.create_campaign(config, contacts)
    with celery_app.producer_or_acquire() as producer:
        for contact in contacts:
            celery_app.send_task(DIAL_CONTACT, args=[config.campaign_id, contact.contact_id], queue=DIAL_QUEUE, producer=producer)
    return len(contacts)
