"""The API's FastAPI application: routes, problem details, the Redis client it shares.

Example::

    app = create_app(Settings.from_env())   # what ``python -m api`` serves with uvicorn
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import account, campaigns, dashboard, metrics, problems, webhooks
from dialstream.engine.campaigns import CampaignEngine
from dialstream.settings import Settings
from dialstream.state.client import connect_settings

__all__ = ["create_app"]

DESCRIPTION = """Campaigns as a service: create campaigns from contact lists, steer and watch them,
fetch their reports, keep the do-not-call list, receive signed webhooks (Standard Webhooks).

Every `/v1` route needs an API key (`dialstream apikey create --scope read|write`) as
`Authorization: Bearer <key>`. Errors are RFC 9457 problem details (`application/problem+json`).
"""


def create_app(settings: Settings) -> FastAPI:
    """The application over ``settings.redis_url``; its client closes when the app shuts down."""
    client = connect_settings(settings)
    engine = CampaignEngine(client, settings.account_sid, settings.engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        client.close()

    app = FastAPI(title="dialstream", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings, app.state.redis, app.state.engine = settings, client, engine
    app.state.metrics_registry = metrics.registry_for(engine)
    problems.install(app)
    for module in (account, campaigns, webhooks, dashboard, metrics):
        app.include_router(module.router)
    return app
