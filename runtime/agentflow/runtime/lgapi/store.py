"""The LangGraph store API (`/store/*`, what `langgraph_sdk`'s `client.store` calls) on the
checkpointer's item store (agentflow.checkpointer.items), with the same auth as /v1: every
item belongs to the caller, who never sees another user's items.

Paths, bodies and status codes are langgraph-api's: PUT and DELETE answer 204, GET answers
the item or `null` when there is none (the SDK returns that None; a 404 would raise in it),
search `{"items": [...]}`, namespaces `{"namespaces": [...]}`. Errors are agentflow's one
error shape; a wrong namespace label is a 422 naming it, as langgraph-api refuses it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from agentflow.checkpointer.items import Item, ItemStore, item_store, key_problem, label_problem
from agentflow.runtime.endpoints import Call, Endpoint
from agentflow.runtime.errors import validation_error
from agentflow.runtime.lgapi.store_types import (
    StoreDelete,
    StoreGetQuery,
    StoreItem,
    StoreNamespaceList,
    StoreNamespaces,
    StorePut,
    StoreSearch,
    StoreSearchResult,
)

__all__ = [
    "STORE_ENDPOINTS",
    "delete_item",
    "get_item",
    "list_namespaces",
    "put_item",
    "search_items",
]


def _items(call: Call[Any, Any]) -> ItemStore:
    return item_store(call.rt.checkpointer)


def check_namespace(labels: Sequence[str], loc: list[str | int], *, empty: bool) -> None:
    """A 422 naming the first wrong label of a namespace (or an empty namespace where one
    is needed), saying why and what to send instead."""
    if not labels and not empty:
        msg = 'a namespace needs at least one label, e.g. ["memories"]'
        raise validation_error([{"loc": loc, "msg": msg}])
    for index, label in enumerate(labels):
        problem = label_problem(label)
        if problem is not None:
            raise validation_error([{"loc": [*loc, index], "msg": problem}])


def check_key(key: str, loc: list[str | int]) -> None:
    problem = key_problem(key)
    if problem is not None:
        raise validation_error([{"loc": loc, "msg": problem}])


def item_body(item: Item) -> dict[str, Any]:
    return item.to_dict()


async def put_item(call: Call[StorePut, None]) -> Response:
    body = call.body
    check_namespace(body.namespace, ["body", "namespace"], empty=False)
    check_key(body.key, ["body", "key"])
    await _items(call).put(call.user_id, body.namespace, body.key, body.value, ttl=body.ttl)
    return Response(status_code=204)


async def get_item(call: Call[None, StoreGetQuery]) -> dict[str, Any] | None:
    query = call.query
    namespace = query.namespace.split(".")
    check_namespace(namespace, ["query", "namespace"], empty=False)
    check_key(query.key, ["query", "key"])
    item = await _items(call).get(call.user_id, namespace, query.key, refresh_ttl=query.refresh_ttl)
    return item_body(item) if item is not None else None


async def delete_item(call: Call[StoreDelete, None]) -> Response:
    body = call.body
    check_namespace(body.namespace, ["body", "namespace"], empty=False)
    check_key(body.key, ["body", "key"])
    await _items(call).delete(call.user_id, body.namespace, body.key)
    return Response(status_code=204)


async def search_items(call: Call[StoreSearch, None]) -> dict[str, Any]:
    body = call.body
    prefix = body.namespace_prefix or []
    check_namespace(prefix, ["body", "namespace_prefix"], empty=True)
    if body.filter:
        for key, wanted in body.filter.items():
            if isinstance(wanted, dict) and any(k.startswith("$") for k in wanted):
                msg = (
                    "operators ($eq, $ne, $gt, ...) are not supported; filter by the value "
                    "itself, or search without this key and compare in your code"
                )
                raise validation_error([{"loc": ["body", "filter", key], "msg": msg}])
    found = await _items(call).search(
        call.user_id,
        prefix,
        filter=body.filter,
        limit=int(body.limit),
        offset=int(body.offset),
        query=body.query,
        refresh_ttl=body.refresh_ttl,
    )
    return {"items": [{**item_body(item), "score": None} for item in found]}


async def list_namespaces(call: Call[StoreNamespaces, None]) -> dict[str, Any]:
    body = call.body
    check_namespace(body.prefix or [], ["body", "prefix"], empty=True)
    check_namespace(body.suffix or [], ["body", "suffix"], empty=True)
    found = await _items(call).list_namespaces(
        call.user_id,
        prefix=body.prefix,
        suffix=body.suffix,
        max_depth=int(body.max_depth) if body.max_depth is not None else None,
        limit=int(body.limit),
        offset=int(body.offset),
    )
    return {"namespaces": [list(ns) for ns in found]}


STORE_ENDPOINTS: list[Endpoint] = [
    Endpoint("PUT", "/store/items", put_item, "Store or replace an item of the caller (204)",
             "store", body=StorePut, status=204),
    Endpoint("GET", "/store/items", get_item, "One item of the caller, or null when there is "
             "none (as langgraph-api answers)", "store", query=StoreGetQuery,
             response=StoreItem | None),
    Endpoint("DELETE", "/store/items", delete_item, "Delete an item of the caller (204, also "
             "when there was none)", "store", body=StoreDelete, status=204),
    Endpoint("POST", "/store/items/search", search_items, "The caller's items under a "
             "namespace prefix matching a filter, most recently updated first", "store",
             body=StoreSearch, response=StoreSearchResult),
    Endpoint("POST", "/store/namespaces", list_namespaces, "The caller's namespaces by prefix, "
             "suffix and depth, sorted", "store", body=StoreNamespaces,
             response=StoreNamespaceList),
]  # fmt: skip
