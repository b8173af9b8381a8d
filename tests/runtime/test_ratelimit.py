"""Inbound rate limits over real HTTP: per user (JWT), per client IP without auth, global,
the 429 shape and its headers, windows that reset, a budget shared by two servers through
Redis, and the in-memory fallback when Redis is unreachable."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentflow.checkpointer.redis import RedisLink
from agentflow.runtime import load_settings
from agentflow.runtime.ratelimit import Counter, Limit
from agentflow.runtime.settings import ConfigError, Rate
from tests.faults.conftest import PG_DSN, REDIS_URL, pg_execute, probe_postgres, unavailable
from tests.runtime.conftest import ServerFactory, user_message, write_project
from tests.runtime.test_auth import SECRET, claims, hs_token

JWT_ENV = {"JWT_SECRET_KEY": SECRET}


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hs_token(claims(sub=user))}"}


def threads(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"{url}/v1/threads", headers=headers or {}, timeout=15)


def assert_limited(response: httpx.Response, limit: int, *words: str) -> int:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["request_id"] == response.headers["X-Request-ID"]
    for word in words:
        assert word in error["message"]
    retry = int(response.headers["Retry-After"])
    assert retry >= 1
    assert f"retry in {retry} s" in error["message"]
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == str(retry)
    return retry


def window_start() -> None:
    """Sleep to just after a whole second, so a burst of requests stays in one 1s window."""
    time.sleep(1.02 - time.time() % 1.0)


# -- settings -------------------------------------------------------------------------------


def test_settings_parse_rates_and_default_off(tmp_path: Path) -> None:
    assert load_settings(write_project(tmp_path / "off"), environ={}).rate_limits is None
    config = {"rate_limits": {"per_user": "60/minute", "global": "5/Seconds"}}
    limits = load_settings(write_project(tmp_path / "on", config), environ={}).rate_limits
    assert limits is not None and limits.per_user is not None and limits.global_ is not None
    assert (limits.per_user.limit, limits.per_user.window) == (60, 60.0)
    assert (limits.global_.limit, limits.global_.window, limits.global_.text) == (
        5,
        1.0,
        "5/second",
    )


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"per_user": "60 per minute"}, "rate_limits.per_user"),
        ({"global": "0/second"}, "rate_limits.global"),
        ({"per_user": 60}, "rate_limits.per_user"),
        ({"per_user": "1/day"}, "rate_limits.per_user"),
        ({"per_ip": "1/second"}, "rate_limits"),
        ("60/minute", "rate_limits"),
    ],
)
def test_settings_errors_name_the_key(tmp_path: Path, value: Any, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_project(tmp_path, {"rate_limits": value}), environ={})
    assert where in str(caught.value)


# -- one server -----------------------------------------------------------------------------


def test_per_user_limit_spares_other_users(make_server: ServerFactory) -> None:
    url = make_server({"auth": "jwt", "rate_limits": {"per_user": "2/hour"}}, env=JWT_ENV)
    alice, bob = bearer("alice"), bearer("bob")
    first = httpx.post(f"{url}/v1/graph/invoke", json=user_message("hi"), headers=alice)
    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"] == "2"
    assert first.headers["RateLimit-Remaining"] == "1"
    assert 1 <= int(first.headers["RateLimit-Reset"]) <= 3600
    second = threads(url, alice)
    assert second.status_code == 200 and second.headers["RateLimit-Remaining"] == "0"
    retry = assert_limited(threads(url, alice), 2, "this user's", "2/hour")
    assert retry <= 3600
    assert_limited(httpx.post(f"{url}/v1/graph/stream", json=user_message("x"), headers=alice), 2)
    assert threads(url, bob).status_code == 200  # bob has his own budget
    # unauthenticated requests are refused before they are counted; probes are never limited
    assert threads(url).status_code == 401
    for path in ("/ping", "/health", "/metrics", "/v1/graph"):
        for _ in range(3):
            response = httpx.get(url + path, headers=alice)
            assert response.status_code == 200, path
            assert "RateLimit-Limit" not in response.headers


def test_per_ip_without_auth(make_server: ServerFactory) -> None:
    url = make_server({"rate_limits": {"per_user": "2/hour"}})
    assert threads(url).status_code == 200
    stop = httpx.post(f"{url}/v1/graph/stop", json={"thread_id": "nope"})
    assert stop.status_code == 404 and stop.headers["RateLimit-Remaining"] == "0"
    assert_limited(threads(url), 2, "this client's", "2/hour")


def test_global_limit_counts_every_user(make_server: ServerFactory) -> None:
    url = make_server(
        {"auth": "jwt", "rate_limits": {"per_user": "100/hour", "global": "3/hour"}}, env=JWT_ENV
    )
    assert threads(url, bearer("alice")).status_code == 200
    assert threads(url, bearer("alice")).status_code == 200
    last = threads(url, bearer("bob"))
    assert last.status_code == 200
    assert last.headers["RateLimit-Limit"] == "3"  # the tighter of the two
    assert last.headers["RateLimit-Remaining"] == "0"
    assert_limited(threads(url, bearer("carol")), 3, "global", "3/hour")


def test_window_resets(make_server: ServerFactory) -> None:
    url = make_server({"rate_limits": {"per_user": "2/second"}})
    window_start()
    assert [threads(url).status_code for _ in range(2)] == [200, 200]
    assert assert_limited(threads(url), 2, "2/second") == 1
    time.sleep(1.02 - time.time() % 1.0)
    again = threads(url)
    assert again.status_code == 200 and again.headers["RateLimit-Remaining"] == "1"


# -- shared through Redis -------------------------------------------------------------------


def require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    try:
        probe_postgres(PG_DSN)
    except Exception as exc:  # any failure to connect means "not available"
        unavailable(f"Postgres is not reachable at {PG_DSN}: {exc}")
    schema = "t_rl_" + uuid.uuid4().hex[:16]
    yield schema
    pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pg_config(schema: str, redis_url: str, rate: str) -> dict[str, Any]:
    checkpointer = {"kind": "postgres", "dsn": PG_DSN, "redis": redis_url, "schema": schema}
    return {"checkpointer": checkpointer, "rate_limits": {"per_user": rate}}


def test_two_servers_share_the_budget_through_redis(
    make_server: ServerFactory, pg_schema: str
) -> None:
    require_redis()
    config = pg_config(pg_schema, REDIS_URL, "4/hour")
    one, two = make_server(config), make_server(config)
    codes = [threads(url).status_code for url in (one, two, one, two)]
    assert codes == [200, 200, 200, 200]
    assert_limited(threads(one), 4, "4/hour")
    assert_limited(threads(two), 4, "4/hour")


def test_memory_fallback_when_redis_is_unreachable(
    make_server: ServerFactory, pg_schema: str
) -> None:
    config = pg_config(pg_schema, "redis://127.0.0.1:1/0", "2/hour")
    one, two = make_server(config), make_server(config)
    for url in (one, two):  # each worker enforces the limit on its own
        assert [threads(url).status_code for _ in range(2)] == [200, 200]
        assert_limited(threads(url), 2, "2/hour")


# -- Redis leases: blocks of counts reserved per worker -------------------------------------


class CountingCounter(Counter):
    """A real Counter on real Redis that also counts its round trips."""

    def __init__(self, redis: Any) -> None:
        super().__init__(redis)
        self.reservations = 0

    async def _reserve(self, key: str, rate: Rate, window: int, block: int) -> int | None:
        self.reservations += 1
        return await super()._reserve(key, rate, window, block)


@pytest.fixture
async def link() -> AsyncIterator[RedisLink]:
    """A link to the real Redis under a prefix of its own, emptied afterwards."""
    require_redis()
    link = RedisLink(REDIS_URL, prefix="t_rl_" + uuid.uuid4().hex[:12])
    await link.connect()
    assert link.healthy
    try:
        yield link
    finally:
        await link.client.delete(*await link.client.keys(link.key("*")))
        await link.close()


async def test_leases_never_hand_out_a_position_twice_across_workers(link: RedisLink) -> None:
    limit = Limit.of("per-user", Rate(10_000, 3600.0, "10000/hour"))
    assert limit.block == 64
    workers = [CountingCounter(link), CountingCounter(link)]

    async def burst(counter: Counter) -> list[int]:
        return [await counter.take("user:u", limit, 7) for _ in range(600)]

    results = await asyncio.gather(*(burst(c) for c in workers), burst(workers[0]))
    positions = [p for r in results for p in r]
    assert len(set(positions)) == len(positions) == 1800  # unique across workers
    reserved = int(await link.client.get(link.key("rl", "user:u", "3600", "7")) or 0)
    assert max(positions) <= reserved <= 1800 + 2 * 64  # at most a block left per worker
    # busy keys take blocks: far fewer round trips than requests
    assert sum(w.reservations for w in workers) < 1800 / 8


async def test_leases_never_admit_more_than_the_limit(link: RedisLink) -> None:
    limit = Limit.of("global", Rate(1_000, 60.0, "1000/minute"))
    assert limit.block == 10
    workers = [Counter(link), Counter(link), Counter(link)]

    async def burst(counter: Counter) -> list[int]:
        return [await counter.take("global", limit, 3) for _ in range(500)]

    positions = [p for r in await asyncio.gather(*map(burst, workers)) for p in r]
    admitted = [p for p in positions if p <= 1_000]
    assert len(admitted) == len(set(admitted))
    assert 1_000 - 3 * 10 <= len(admitted) <= 1_000
    # a new window starts from zero
    assert await workers[0].take("global", limit, 4) == 1


async def test_small_limits_are_counted_exactly_in_redis(link: RedisLink) -> None:
    limit = Limit.of("per-user", Rate(100, 60.0, "100/minute"))
    assert limit.block == 1
    one, two = CountingCounter(link), CountingCounter(link)
    positions = [await c.take("ip:1", limit, 1) for c in (one, two) * 10]
    assert positions == list(range(1, 21))
    assert one.reservations == two.reservations == 10
