"""``/metrics``: each campaign's contacts by state and final outcomes, for Prometheus and the
Grafana dashboard (deploy/grafana), read from Redis at each scrape.

The workers' own metrics say how the machinery runs; these say where each campaign is, from
the counters the campaign engine keeps (a handful of Redis reads per campaign), so they are
right whichever API replica is scraped and survive its restarts.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dialstream.engine.campaigns import CampaignEngine
from dialstream.state.webhooks import Webhooks

__all__ = ["CampaignCollector", "registry_for", "router"]

router = APIRouter()


class CampaignCollector(Collector):
    """Collects every campaign's status at scrape time."""

    def __init__(self, engine: CampaignEngine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (no Redis read): what registering and the deploy checks need."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        contacts, outcomes, dials, running, webhooks = self._families()
        for campaign_id in self.engine.store.campaign_ids():
            try:
                status = self.engine.status(campaign_id)
            except KeyError:  # deleted between the listing and now
                continue
            ids = [campaign_id, status.name]
            for state, value in (
                ("pending", status.pending), ("dialing", status.dialing), ("in_flight", status.in_flight),
                ("done", status.done), ("rejected", status.rejected),
            ):  # fmt: skip
                contacts.add_metric([*ids, state], value)
            for outcome, count in status.outcomes.items():
                outcomes.add_metric([*ids, outcome], count)
            dials.add_metric(ids, status.dials)
            running.add_metric(ids, 1 if status.state.value == "running" else 0)
        for state, count in Webhooks(self.engine.redis).counts().items():
            webhooks.add_metric([state], count)
        yield from (contacts, outcomes, dials, running, webhooks)

    @staticmethod
    def _families() -> tuple[Metric, ...]:
        contacts = GaugeMetricFamily(
            "dialstream_campaign_contacts",
            "Contacts of a campaign by state: pending (queued, due or not), dialing, in_flight (calls up), done, rejected.",
            labels=["campaign", "name", "state"],
        )
        outcomes = GaugeMetricFamily(
            "dialstream_campaign_outcomes", "Contacts of a campaign with a final record, by outcome.", labels=["campaign", "name", "outcome"]
        )
        dials = CounterMetricFamily("dialstream_campaign_dials", "Calls a campaign placed, every attempt counted.", labels=["campaign", "name"])
        running = GaugeMetricFamily("dialstream_campaign_running", "1 while a campaign is running, else 0.", labels=["campaign", "name"])
        webhooks = GaugeMetricFamily("dialstream_webhook_deliveries", "Webhook deliveries waiting (new or retrying) and dead-lettered.", labels=["state"])
        return contacts, outcomes, dials, running, webhooks


def registry_for(engine: CampaignEngine) -> CollectorRegistry:
    """A registry of this API's own (not the process's default one) with the campaigns' collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CampaignCollector(engine))
    return registry


@router.get("/metrics", tags=["health"], summary="Prometheus metrics: every campaign's contacts by state and outcomes")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
