"""Fixtures of the API tests: a real ``python -m api`` process on its own Redis database, and keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from dialstream.app.embedded_redis import free_port
from dialstream.app.supervisor import ProcessSpec, Supervisor
from dialstream.state.api_keys import ApiKeys
from tests.utils import settings_free_env

DB = 13  # the API tests' database on the session's server


@pytest.fixture(scope="module")
def api_redis_url(redis_url: str) -> str:
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def start_api(supervisor: Supervisor, redis_url: str, env: dict[str, str] | None = None) -> str:
    """``python -m api`` on a free port under ``supervisor``; its base URL once it accepts connections."""
    port = free_port()
    env = {"REDIS_URL": redis_url, "EXOTEL_ACCOUNT_SID": "acct", **(env or {})}
    supervisor.start(ProcessSpec("api", Supervisor.python("-m", "api", "--bind", f"127.0.0.1:{port}"), env, ready_port=port))
    supervisor.wait_ready()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def api_url(api_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base_env = settings_free_env()
    with Supervisor(Path(tmp_path_factory.mktemp("api-logs")), base_env=base_env) as supervisor:
        yield start_api(supervisor, api_redis_url)


@pytest.fixture(scope="module")
def keys(api_redis_url: str) -> Iterator[ApiKeys]:
    client = redis.Redis.from_url(api_redis_url, decode_responses=True)
    yield ApiKeys(client)
    client.close()


@pytest.fixture(scope="module")
def writer(api_url: str, keys: ApiKeys) -> Iterator[httpx.Client]:
    """A client of the API with a write key."""
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {keys.create('write')[1]}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def reader(api_url: str, keys: ApiKeys) -> Iterator[httpx.Client]:
    """A client of the API with a read key."""
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {keys.create('read')[1]}"}, timeout=30) as client:
        yield client
