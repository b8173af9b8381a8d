"""PATCH /v1/threads/{id} (metadata) and POST /v1/threads/search, over real HTTP on every
store (memory, SQLite, Postgres): the same answers from each, only the caller's threads, and
keyset pages that neither repeat nor skip a thread."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import msgspec
import pytest

from agentflow.runtime import api_types as api
from tests.faults.conftest import PG_DSN, pg_execute, probe_postgres, unavailable
from tests.runtime.conftest import ServerFactory, user_message

SECRET = secrets.token_hex(32)
SEARCH = "/v1/threads/search"


class Api:
    """One server; requests as a given user (a JWT with that `sub`)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def as_user(self, user: str) -> dict[str, str]:
        token = jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET)
        return {"Authorization": f"Bearer {token}"}

    def thread(
        self, user: str, thread_id: str, metadata: dict[str, Any] | None = None, text: str = "hi"
    ) -> dict[str, Any]:
        """A thread made by a run (`text` "ask" interrupts it, "fail" fails it), as GET
        answers it."""
        body = user_message(text, thread_id=thread_id, metadata=metadata)
        response = self.http.post("/v1/graph/invoke", json=body, headers=self.as_user(user))
        assert response.status_code in (200, 500), response.text
        return self.get(user, thread_id)

    def get(self, user: str, thread_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/threads/{thread_id}", headers=self.as_user(user))
        assert response.status_code == 200, response.text
        return thread(response)

    def patch(self, user: str, thread_id: str, body: Any) -> httpx.Response:
        return self.http.patch(f"/v1/threads/{thread_id}", json=body, headers=self.as_user(user))

    def search(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(SEARCH, json=body, headers=self.as_user(user))
        assert response.status_code == 200, response.text
        listed: dict[str, Any] = msgspec.to_builtins(
            msgspec.json.decode(response.content, type=api.ThreadList)
        )
        return listed

    def found(self, user: str, body: dict[str, Any]) -> list[str]:
        """The ids of every thread the search finds, in its order, read page by page."""
        ids: list[str] = []
        cursor = None
        for _ in range(100):
            page = self.search(user, {**body, "cursor": cursor} if cursor else body)
            ids += [t["thread_id"] for t in page["threads"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids
        raise AssertionError("the pages never ended")


def thread(response: httpx.Response) -> dict[str, Any]:
    """The body, held to the declared Thread type (no field missing or undeclared)."""
    body: dict[str, Any] = msgspec.to_builtins(
        msgspec.json.decode(response.content, type=api.Thread)
    )
    return body


def refused(response: httpx.Response, loc: list[Any]) -> None:
    assert response.status_code == 422, response.text
    assert loc in [d["loc"] for d in response.json()["error"]["details"]], response.text


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The `checkpointer` config of a fresh store of each kind."""
    if request.param != "postgres":
        yield request.param
        return
    try:
        probe_postgres(PG_DSN)
    except Exception as exc:  # any failure to connect means "not available"
        unavailable(f"Postgres is not reachable at {PG_DSN}: {exc}")
    schema = "t_search_" + uuid.uuid4().hex[:16]
    yield {"kind": "postgres", "dsn": PG_DSN, "schema": schema}
    pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def api_(make_server: ServerFactory, store: Any) -> Iterator[Api]:
    url = make_server(config={"checkpointer": store, "auth": "jwt"}, env={"JWT_SECRET_KEY": SECRET})
    client = Api(url)
    yield client
    client.http.close()


# -- PATCH /v1/threads/{id} -------------------------------------------------------------------


def test_patch_sets_and_removes_keys_and_keeps_the_others(api_: Api) -> None:
    before = api_.thread("alice", "p1", {"team": "a", "tier": 1, "drop": "me"})
    patch = {"tier": 2, "drop": None, "new": {"nested": [1, "x"]}, "absent": None}
    response = api_.patch("alice", "p1", {"metadata": patch})
    assert response.status_code == 200, response.text
    updated = thread(response)
    assert updated["metadata"] == {"team": "a", "tier": 2, "new": {"nested": [1, "x"]}}
    assert updated["updated_at"] >= before["updated_at"]
    assert updated["created_at"] == before["created_at"]
    assert updated == api_.get("alice", "p1")  # stored, and the same shape as GET
    emptied = api_.patch("alice", "p1", {"metadata": {"team": None, "tier": None, "new": None}})
    assert thread(emptied)["metadata"] == {}


def test_patch_is_404_for_a_missing_or_another_users_thread(api_: Api) -> None:
    api_.thread("alice", "p2", {"team": "a"})
    for user, thread_id in [("bob", "p2"), ("alice", "no-such-thread")]:
        response = api_.patch(user, thread_id, {"metadata": {"team": "b"}})
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "thread_not_found"
    assert api_.get("alice", "p2")["metadata"] == {"team": "a"}


def test_patch_refuses_a_body_it_does_not_declare(api_: Api) -> None:
    api_.thread("alice", "p3")
    refused(api_.patch("alice", "p3", {"metadata": {}, "title": "x"}), ["body", "title"])
    refused(api_.patch("alice", "p3", {}), ["body", "metadata"])
    refused(api_.patch("alice", "p3", {"metadata": ["a"]}), ["body", "metadata"])


# -- POST /v1/threads/search ------------------------------------------------------------------


def test_search_matches_metadata_by_each_given_key(api_: Api) -> None:
    api_.thread("alice", "m1", {"team": "a", "tier": 1, "tags": ["x", "y"]})
    api_.thread("alice", "m2", {"team": "a", "tier": 2, "owner": {"id": 7, "name": "n"}})
    api_.thread("alice", "m3", {"team": "b", "flag": True})
    api_.thread("alice", "m4")

    def found(metadata: dict[str, Any]) -> set[str]:
        return set(api_.found("alice", {"metadata": metadata}))

    assert found({"team": "a"}) == {"m1", "m2"}
    assert found({"team": "a", "tier": 2}) == {"m2"}
    assert found({"team": "a", "tier": 2.0}) == {"m2"}  # numbers compare by value
    assert found({"team": "c"}) == set()
    assert found({"tags": ["y"]}) == {"m1"}  # arrays contain the elements asked for
    assert found({"tags": "x"}) == set()  # an array is not its element
    assert found({"owner": {"id": 7}}) == {"m2"}  # objects contain the keys asked for
    assert found({"flag": True}) == {"m3"}
    assert found({"flag": 1}) == set()  # true is not 1
    assert found({}) == {"m1", "m2", "m3", "m4"}


def test_search_by_status(api_: Api) -> None:
    api_.thread("alice", "s-done")
    api_.thread("alice", "s-asked", text="ask")
    api_.thread("alice", "s-failed", text="fail")
    assert api_.found("alice", {"status": "done"}) == ["s-done"]
    assert api_.found("alice", {"status": "interrupted"}) == ["s-asked"]
    assert api_.found("alice", {"status": "error"}) == ["s-failed"]
    assert api_.found("alice", {"status": "cancelled"}) == []
    both = {"status": "done", "metadata": {"team": "a"}}
    api_.thread("alice", "s-team", {"team": "a"})
    assert api_.found("alice", both) == ["s-team"]


def test_search_by_time_range_is_half_open(api_: Api) -> None:
    t1, t2, t3 = (api_.thread("alice", f"r{i}") for i in (1, 2, 3))
    created = {"created_after": t2["created_at"], "created_before": t3["created_at"]}
    assert api_.found("alice", created) == ["r2"]
    assert api_.found("alice", {"created_before": t2["created_at"]}) == ["r1"]
    assert api_.found("alice", {"created_after": t2["created_at"]}) == ["r3", "r2"]
    touched = thread(api_.patch("alice", "r1", {"metadata": {"seen": True}}))
    assert api_.found("alice", {"updated_after": touched["updated_at"]}) == ["r1"]
    assert api_.found("alice", {"updated_before": touched["updated_at"]}) == ["r3", "r2"]
    window = {"updated_after": t2["updated_at"], "updated_before": t3["updated_at"]}
    assert api_.found("alice", window) == ["r2"]
    assert api_.found("alice", {"created_after": t1["created_at"], "created_before": 0}) == []


def test_search_sorts_both_ways_by_either_time(api_: Api) -> None:
    for name in ("o1", "o2", "o3"):
        api_.thread("alice", name)
    api_.patch("alice", "o1", {"metadata": {"touched": True}})  # now the latest update
    orders = {
        ("created_at", "asc"): ["o1", "o2", "o3"],
        ("created_at", "desc"): ["o3", "o2", "o1"],
        ("updated_at", "asc"): ["o2", "o3", "o1"],
        ("updated_at", "desc"): ["o1", "o3", "o2"],
    }
    for (sort_by, sort_order), expected in orders.items():
        assert api_.found("alice", {"sort_by": sort_by, "sort_order": sort_order}) == expected
    assert api_.found("alice", {}) == orders["updated_at", "desc"]  # the default


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_pages_neither_repeat_nor_skip_a_thread(api_: Api, limit: int) -> None:
    names = [f"g{i}" for i in range(7)]
    for i, name in enumerate(names):
        api_.thread("alice", name, {"even": i % 2 == 0})
    for sort_by in ("created_at", "updated_at"):
        for sort_order in ("asc", "desc"):
            order = {"sort_by": sort_by, "sort_order": sort_order}
            whole = [
                t["thread_id"] for t in api_.search("alice", {**order, "limit": 100})["threads"]
            ]
            expected = names if sort_order == "asc" else names[::-1]
            assert whole == expected
            assert api_.found("alice", {**order, "limit": limit}) == whole
            evens = {**order, "limit": limit, "metadata": {"even": True}}
            assert api_.found("alice", evens) == [n for n in whole if int(n[1:]) % 2 == 0]
    first = api_.search("alice", {"limit": 7})
    assert len(first["threads"]) == 7 and first["next_cursor"] is None


def test_a_cursor_past_the_end_is_an_empty_page(api_: Api) -> None:
    api_.thread("alice", "c1")
    api_.thread("alice", "c2")
    page = api_.search("alice", {"limit": 1, "sort_order": "asc"})
    assert [t["thread_id"] for t in page["threads"]] == ["c1"]
    last = api_.search("alice", {"limit": 1, "sort_order": "asc", "cursor": page["next_cursor"]})
    assert [t["thread_id"] for t in last["threads"]] == ["c2"]
    assert last["next_cursor"] is None
    far = {"cursor": "9999999999.0~zz", "sort_order": "asc"}
    assert api_.search("alice", far) == {"threads": [], "next_cursor": None}


@pytest.mark.parametrize("cursor", ["nope", "abc~t1", "1.5", "~t1", "1e5~t1", "1.5~t\u00e9\ud800"])
def test_a_bad_cursor_is_a_422_naming_it(api_: Api, cursor: str) -> None:
    body = json.dumps({"cursor": cursor}).encode()  # ASCII: a lone surrogate as its escape
    headers = {**api_.as_user("alice"), "content-type": "application/json"}
    response = api_.http.post(SEARCH, content=body, headers=headers)
    refused(response, ["body", "cursor"])


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"limit": 0}, ["body", "limit"]),
        ({"limit": 101}, ["body", "limit"]),
        ({"limit": 2.5}, ["body", "limit"]),
        ({"status": "bogus"}, ["body", "status"]),
        ({"sort_by": "title"}, ["body", "sort_by"]),
        ({"sort_order": "up"}, ["body", "sort_order"]),
        ({"created_after": -1}, ["body", "created_after"]),
        ({"updated_before": "yesterday"}, ["body", "updated_before"]),
        ({"metadata": ["a"]}, ["body", "metadata"]),
        ({"user_id": "bob"}, ["body", "user_id"]),
    ],
)
def test_a_search_it_cannot_run_is_a_422_naming_the_field(
    api_: Api, body: dict[str, Any], loc: list[Any]
) -> None:
    refused(api_.http.post(SEARCH, json=body, headers=api_.as_user("alice")), loc)


def test_another_users_threads_are_never_found(api_: Api) -> None:
    for i in range(3):
        api_.thread("alice", f"a{i}", {"team": "shared"})
        api_.thread("bob", f"b{i}", {"team": "shared"})
    api_.thread("bob", "b-asked", {"team": "shared"}, text="ask")
    searches: list[dict[str, Any]] = [
        {},
        {"metadata": {"team": "shared"}},
        {"status": "done"},
        {"created_after": 0},
        {"sort_by": "created_at", "sort_order": "asc", "limit": 1},
    ]
    for body in searches:
        assert set(api_.found("alice", body)) == {"a0", "a1", "a2"}, body
        assert set(api_.found("bob", body)) <= {"b0", "b1", "b2", "b-asked"}, body
    assert api_.found("alice", {"status": "interrupted"}) == []
    assert api_.found("carol", {}) == []


def test_the_search_path_is_not_a_thread_id(make_server: ServerFactory) -> None:
    url = make_server(config={"auth": "jwt"}, env={"JWT_SECRET_KEY": SECRET})
    client = Api(url)
    alice = client.as_user("alice")
    for method in ("GET", "PATCH", "DELETE", "OPTIONS"):
        response = client.http.request(method, SEARCH, headers=alice)
        assert response.status_code == 405, (method, response.text)
        assert response.headers["allow"] == "POST"
    assert client.http.get("/v1/threads/searches", headers=alice).status_code == 404
    client.http.close()
