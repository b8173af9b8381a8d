"""The LangGraph store API (`/store/*`) over real HTTP, driven by the real `langgraph_sdk`
client (async and sync) against a uvicorn serving agentflow on memory, SQLite and Postgres,
behind JWT auth: items, search, namespaces, per-user isolation and refused input."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import jwt
import msgspec
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient
from langgraph_sdk.errors import UnprocessableEntityError

from agentflow.checkpointer import open_checkpointer
from agentflow.runtime.lgapi.store_types import (
    StoreItem,
    StoreNamespaceList,
    StoreSearchResult,
)
from tests.faults.conftest import PG_DSN, pg_execute, probe_postgres, unavailable
from tests.runtime.conftest import ServerFactory

SECRET = secrets.token_hex(32)


def token(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def fresh_postgres() -> Iterator[dict[str, Any]]:
    try:
        probe_postgres(PG_DSN)
    except Exception as exc:  # any failure to connect means "not available"
        unavailable(f"Postgres is not reachable at {PG_DSN}: {exc}")
    schema = "t_store_" + uuid.uuid4().hex[:16]
    yield {"kind": "postgres", "dsn": PG_DSN, "schema": schema}
    pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The `checkpointer` config of a fresh store of each kind."""
    if request.param == "postgres":
        yield from fresh_postgres()
    else:
        yield request.param


@pytest.fixture
def pg_store() -> Iterator[dict[str, Any]]:
    yield from fresh_postgres()


@pytest.fixture
def url(make_server: ServerFactory, store: Any) -> str:
    return make_server(
        config={"checkpointer": store, "auth": "jwt"}, env={"JWT_SECRET_KEY": SECRET}
    )


@pytest.fixture
async def alice(url: str) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=url, headers=auth("alice")) as client:
        yield client


@pytest.fixture
def alice_sync(url: str) -> Iterator[SyncLangGraphClient]:
    with get_sync_client(url=url, headers=auth("alice")) as client:
        yield client


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30, headers=auth("alice")) as client:
        yield client


def keys(found: Any) -> list[str]:
    return [item["key"] for item in found["items"]]


# -- items -------------------------------------------------------------------------------------


async def test_put_get_update_delete_with_the_async_client(alice: LangGraphClient) -> None:
    ns = ["memories", "prefs"]
    await alice.store.put_item(ns, key="food", value={"likes": "pizza", "n": 1})
    item: Any = await alice.store.get_item(ns, key="food")  # the SDK's type says datetime
    msgspec.convert(item, StoreItem)  # the declared shape, no more
    assert (item["namespace"], item["key"], item["value"]) == (
        ns,
        "food",
        {"likes": "pizza", "n": 1},
    )
    created = datetime.fromisoformat(item["created_at"])
    assert created.utcoffset() is not None and item["updated_at"] == item["created_at"]

    await asyncio.sleep(0.01)
    await alice.store.put_item(ns, key="food", value={"likes": "sushi"})
    updated: Any = await alice.store.get_item(ns, key="food")
    assert updated["value"] == {"likes": "sushi"}  # replaced, not merged
    assert updated["created_at"] == item["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) > created

    await alice.store.delete_item(ns, key="food")
    assert await alice.store.get_item(ns, key="food") is None
    await alice.store.delete_item(ns, key="food")  # deleting what is gone is fine


def test_status_codes_are_langgraph_apis(http: httpx.Client) -> None:
    body = {"namespace": ["a"], "key": "k", "value": {"x": 1}}
    put = http.put("/store/items", json=body)
    assert (put.status_code, put.content) == (204, b"")
    got = http.get("/store/items", params={"namespace": "a", "key": "k"})
    assert got.status_code == 200 and got.json()["value"] == {"x": 1}
    missing = http.get("/store/items", params={"namespace": "a", "key": "nope"})
    assert (missing.status_code, missing.json()) == (200, None)  # as langgraph dev answers
    deleted = http.request("DELETE", "/store/items", json={"namespace": ["a"], "key": "k"})
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "X-Request-ID" in deleted.headers


def test_search_by_prefix_filter_limit_and_offset_with_the_sync_client(
    alice_sync: SyncLangGraphClient,
) -> None:
    store = alice_sync.store
    store.put_item(["docs", "a"], key="1", value={"author": "ann", "tags": ["x", "y"]})
    store.put_item(["docs", "a", "deep"], key="2", value={"author": "bob", "meta": {"v": 1}})
    store.put_item(["docs", "b"], key="3", value={"author": "ann", "n": 1})
    store.put_item(["docsx"], key="4", value={"author": "ann"})  # not under ["docs"]
    store.put_item(["other"], key="5", value={"author": "ann"})

    found = store.search_items(["docs"])
    msgspec.convert(found, StoreSearchResult)
    assert keys(found) == ["3", "2", "1"]  # most recently updated first
    assert all(item["score"] is None for item in found["items"])
    assert keys(store.search_items(["docs", "a"])) == ["2", "1"]
    assert keys(store.search_items(["docs", "a", "deep"])) == ["2"]
    assert keys(store.search_items([])) == ["5", "4", "3", "2", "1"]

    assert keys(store.search_items(["docs"], filter={"author": "ann"})) == ["3", "1"]
    assert keys(store.search_items([], filter={"author": "ann", "n": 1})) == ["3"]
    assert keys(store.search_items([], filter={"tags": ["y"]})) == ["1"]  # contained
    assert keys(store.search_items([], filter={"meta": {"v": 1}})) == ["2"]
    assert keys(store.search_items([], filter={"author": "nobody"})) == []
    assert keys(store.search_items([], filter={"n": "1"})) == []  # types differ

    pages = [keys(store.search_items([], limit=2, offset=o)) for o in (0, 2, 4, 6)]
    assert pages == [["5", "4"], ["3", "2"], ["1"], []]

    # No semantic index: a query filters nothing, as langgraph dev without an index config.
    assert keys(store.search_items(["docs"], query="anything")) == ["3", "2", "1"]

    store.put_item(["docs", "a"], key="1", value={"author": "ann", "tags": ["x", "y"]})
    assert keys(store.search_items(["docs"]))[0] == "1"  # an update moves it first


def test_namespaces_by_prefix_suffix_and_depth(alice_sync: SyncLangGraphClient) -> None:
    store = alice_sync.store
    for ns in (["a", "b", "c"], ["a", "b", "d"], ["a", "x"], ["a", "x", "c"], ["z"]):
        store.put_item(ns, key="k", value={})
    store.put_item(["a", "b", "c"], key="k2", value={})  # one namespace, two items

    every = store.list_namespaces()
    msgspec.convert(every, StoreNamespaceList)
    assert every["namespaces"] == [["a", "b", "c"], ["a", "b", "d"], ["a", "x"],
                                   ["a", "x", "c"], ["z"]]  # fmt: skip
    assert store.list_namespaces(prefix=["a", "b"])["namespaces"] == [["a", "b", "c"],
                                                                      ["a", "b", "d"]]  # fmt: skip
    assert store.list_namespaces(suffix=["c"])["namespaces"] == [["a", "b", "c"], ["a", "x", "c"]]
    assert store.list_namespaces(prefix=["a", "*", "c"])["namespaces"] == [
        ["a", "b", "c"], ["a", "x", "c"]
    ]  # fmt: skip
    assert store.list_namespaces(max_depth=1)["namespaces"] == [["a"], ["z"]]
    two_deep = store.list_namespaces(prefix=["a"], max_depth=2)["namespaces"]
    assert two_deep == [["a", "b"], ["a", "x"]]
    assert store.list_namespaces(limit=2, offset=1)["namespaces"] == [["a", "b", "d"], ["a", "x"]]
    assert store.list_namespaces(prefix=["nope"])["namespaces"] == []
    store.delete_item(["z"], key="k")
    assert ["z"] not in store.list_namespaces()["namespaces"]


def test_an_item_with_a_ttl_expires(http: httpx.Client) -> None:
    body = {"namespace": ["t"], "key": "k", "value": {"x": 1}, "ttl": 0.005}  # 0.3 s
    assert http.put("/store/items", json=body).status_code == 204
    assert http.get("/store/items", params={"namespace": "t", "key": "k"}).json() is not None
    time.sleep(0.5)
    assert http.get("/store/items", params={"namespace": "t", "key": "k"}).json() is None
    found = http.post("/store/items/search", json={"namespace_prefix": ["t"]}).json()
    assert found == {"items": []}
    assert http.post("/store/namespaces", json={}).json() == {"namespaces": []}


# -- isolation ---------------------------------------------------------------------------------


async def test_one_user_never_sees_another_users_items(url: str) -> None:
    async with (
        get_client(url=url, headers=auth("alice")) as alice,
        get_client(url=url, headers=auth("bob")) as bob,
    ):
        await check_isolation(url, alice, bob)


async def check_isolation(url: str, alice: LangGraphClient, bob: LangGraphClient) -> None:
    await alice.store.put_item(["shared", "name"], key="k", value={"owner": "alice"})

    assert await bob.store.get_item(["shared", "name"], key="k") is None
    assert (await bob.store.search_items(["shared"]))["items"] == []
    assert (await bob.store.search_items([], filter={"owner": "alice"}))["items"] == []
    assert (await bob.store.list_namespaces())["namespaces"] == []

    await bob.store.put_item(["shared", "name"], key="k", value={"owner": "bob"})
    await bob.store.delete_item(["shared", "name"], key="k")  # bob's own, not alice's
    item = await alice.store.get_item(["shared", "name"], key="k")
    assert item["value"] == {"owner": "alice"}

    async with httpx.AsyncClient(base_url=url) as anonymous:
        refused = await anonymous.get(
            "/store/items", params={"namespace": "shared.name", "key": "k"}
        )
        assert refused.status_code == 401
        assert refused.json()["error"]["code"]


# -- refused input -----------------------------------------------------------------------------


def refused(response: httpx.Response, loc: list[Any], says: str = "") -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["request_id"]
    found = {tuple(d["loc"]): d["msg"] for d in error["details"]}
    assert tuple(loc) in found, error
    assert says in found[tuple(loc)], found


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        ({"namespace": ["a"], "key": "k", "value": "text"}, ["body", "value"], "object"),
        ({"namespace": ["a"], "key": 7, "value": {}}, ["body", "key"], "str"),
        ({"namespace": "a", "key": "k", "value": {}}, ["body", "namespace"], "array"),
        ({"key": "k", "value": {}}, ["body", "namespace"], "required"),
        ({"namespace": [], "key": "k", "value": {}}, ["body", "namespace"], "at least one"),
        ({"namespace": ["a", ""], "key": "k", "value": {}}, ["body", "namespace", 1], "empty"),
        ({"namespace": ["a.b"], "key": "k", "value": {}}, ["body", "namespace", 0], "'.'"),
        ({"namespace": ["a"], "key": "", "value": {}}, ["body", "key"], "empty"),
        ({"namespace": ["a"], "key": "k", "value": {}, "ttl": -1}, ["body", "ttl"], ">"),
        ({"namespace": ["a"], "key": "k", "value": {}, "tll": 1}, ["body", "tll"], "unknown"),
        ({"namespace": ["langgraph"], "key": "k", "value": {}}, [], "reserves"),
    ],
)
def test_bad_puts_are_422_naming_the_field(
    http: httpx.Client, body: dict[str, Any], loc: list[Any], says: str
) -> None:
    response = http.put("/store/items", json=body)
    if not loc:  # refused by the store itself: a 422 with the reason
        assert response.status_code == 422, response.text
        assert says in response.json()["error"]["message"]
        return
    refused(response, loc, says)


def test_other_bad_requests_are_422s(http: httpx.Client) -> None:
    refused(http.get("/store/items", params={"namespace": "a..b", "key": "k"}),
            ["query", "namespace", 1], "empty")  # fmt: skip
    refused(http.get("/store/items", params={"key": "k"}), ["query", "namespace"], "required")
    refused(http.get("/store/items", params={"namespace": "a"}), ["query", "key"], "required")
    refused(http.request("DELETE", "/store/items", json={"namespace": ["a", ""], "key": "k"}),
            ["body", "namespace", 1], "empty")  # fmt: skip
    search = "/store/items/search"
    refused(http.post(search, json={"filter": {"n": {"$gt": 1}}}), ["body", "filter", "n"],
            "operators")  # fmt: skip
    refused(http.post(search, json={"limit": 0}), ["body", "limit"], ">= 1")
    refused(http.post(search, json={"offset": -1}), ["body", "offset"], ">= 0")
    refused(http.post(search, json={"namespace_prefix": ["a."]}), ["body", "namespace_prefix", 0])
    refused(http.post("/store/namespaces", json={"max_depth": 0}), ["body", "max_depth"])
    refused(http.post("/store/namespaces", json={"suffix": [""]}), ["body", "suffix", 0])


def test_the_sdk_surfaces_the_refusals(alice_sync: SyncLangGraphClient) -> None:
    with pytest.raises(ValueError, match="periods"):  # the SDK refuses '.' itself
        alice_sync.store.put_item(["a.b"], key="k", value={})
    with pytest.raises(UnprocessableEntityError) as caught:
        alice_sync.store.put_item(["a", ""], key="k", value={})
    assert caught.value.status_code == 422
    assert "must not be empty" in caught.value.response.text


# -- storage -----------------------------------------------------------------------------------


async def test_postgres_serves_filters_and_prefixes_from_indexes(
    pg_store: dict[str, Any],
) -> None:
    store = pg_store
    dsn = f"{store['dsn']}?agentflow_schema={store['schema']}"
    checkpointer = open_checkpointer(dsn)
    await checkpointer.setup()
    try:
        from agentflow.checkpointer import item_store

        items = item_store(checkpointer)
        for n in range(300):
            await items.put(f"u{n % 3}", ("docs", f"n{n % 7}"), f"k{n}", {"n": n, "even": n % 2})
        s = f'"{store["schema"]}"'

        async def plan(conn: Any, sql: str, *args: Any) -> str:
            await conn.execute("SET LOCAL enable_seqscan = off")
            rows = await conn.fetch("EXPLAIN " + sql, *args)
            return "\n".join(r[0] for r in rows)

        async def plans(conn: Any) -> tuple[str, str]:
            async with conn.transaction():
                by_filter = await plan(
                    conn, f"SELECT key FROM {s}.store_items WHERE value @> $1::jsonb",
                    '{"n": 5}',
                )  # fmt: skip
                by_prefix = await plan(
                    conn, f"SELECT key FROM {s}.store_items WHERE user_id = $1 AND "
                    "namespace > $2 AND namespace < $3", "u1", "docs.", "docs/",
                )  # fmt: skip
            return by_filter, by_prefix

        by_filter, by_prefix = await checkpointer.call(plans)  # type: ignore[attr-defined]
        assert "store_items_value" in by_filter, by_filter
        assert "store_items_pkey" in by_prefix, by_prefix
        found = await items.search("u2", ("docs",), filter={"n": 5}, limit=100)
        assert [i.key for i in found] == ["k5"]
    finally:
        await checkpointer.close()
