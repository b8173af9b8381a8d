"""LangGraph's store interface (`langgraph.store.base.BaseStore`) on agentflow's item store,
for one user: what a LangGraph graph's nodes read and write as long-term memory (the same
items `/store/*` serves that user). Needs the `langgraph` extra.

    store = LangGraphStore(item_store(checkpointer), user_id="alice")
    graph = builder.compile(checkpointer=saver, store=store)

Semantics are the item store's (agentflow.checkpointer.items): filters match values (no
operators), `query` filters nothing (no embedding index), `ttl` is minutes. The synchronous
API needs what the store's `call_blocking` needs (SQLite: setup done; Postgres: its event
loop running in another thread); async nodes use the async API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from agentflow.checkpointer.items import Item, ItemStore
from agentflow.errors import InvalidItemError

try:
    from langgraph.store.base import (
        BaseStore,
        GetOp,
        ListNamespacesOp,
        Op,
        PutOp,
        Result,
        SearchItem,
        SearchOp,
    )
    from langgraph.store.base import Item as LangGraphItem
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        f"agentflow.checkpointer.langgraph_store needs LangGraph ({exc}); install the extra: "
        'pip install "agentflow-runner[langgraph]"'
    ) from exc

__all__ = ["LangGraphStore"]


def _item(item: Item) -> LangGraphItem:
    return LangGraphItem(
        namespace=item.namespace,
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _found(item: Item) -> SearchItem:
    return SearchItem(
        namespace=item.namespace,
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _conditions(op: ListNamespacesOp) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """(prefix, suffix) of a ListNamespacesOp: the item store takes one of each."""
    prefix: tuple[str, ...] | None = None
    suffix: tuple[str, ...] | None = None
    for condition in op.match_conditions or ():
        if condition.match_type == "prefix" and prefix is None:
            prefix = tuple(condition.path)
        elif condition.match_type == "suffix" and suffix is None:
            suffix = tuple(condition.path)
        else:
            raise InvalidItemError(
                f"list_namespaces takes one prefix and one suffix condition at most, got "
                f"{op.match_conditions}; narrow the result in your code"
            )
    return prefix, suffix


Answer = Callable[[Any], Result]


def _maybe_item(found: Item | None) -> Result:
    return _item(found) if found is not None else None


def _found_items(found: list[Item]) -> Result:
    return [_found(item) for item in found]


def _nothing(_: object) -> Result:
    return None


class LangGraphStore(BaseStore):
    """A BaseStore whose items are `user_id`'s items in an ItemStore."""

    supports_ttl = True

    def __init__(self, items: ItemStore, *, user_id: str) -> None:
        self.items = items
        self.user_id = user_id

    def for_user(self, user_id: str) -> LangGraphStore:
        """The same items, seen as another user (e.g. the user of a run)."""
        return LangGraphStore(self.items, user_id=user_id)

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        results = []
        for op in ops:
            method, args, kwargs, answer = self._plan(op)
            results.append(answer(getattr(self.items, method + "_blocking")(*args, **kwargs)))
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        results = []
        for op in ops:
            method, args, kwargs, answer = self._plan(op)
            results.append(answer(await getattr(self.items, method)(*args, **kwargs)))
        return results

    def _plan(self, op: Op) -> tuple[str, tuple[Any, ...], dict[str, Any], Answer]:
        """The ItemStore call an operation is (its method, arguments) and how its result
        becomes the operation's; `batch` makes it blocking, `abatch` awaits it."""
        user = self.user_id
        if isinstance(op, GetOp):
            return "get", (user, op.namespace, op.key), {"refresh_ttl": op.refresh_ttl}, _maybe_item
        if isinstance(op, PutOp):
            if op.value is None:
                return "delete", (user, op.namespace, op.key), {}, _nothing
            value = dict(op.value)
            return "put", (user, op.namespace, op.key, value), {"ttl": op.ttl}, _nothing
        if isinstance(op, SearchOp):
            kwargs: dict[str, Any] = {"filter": op.filter, "limit": op.limit, "offset": op.offset,
                      "query": op.query, "refresh_ttl": op.refresh_ttl}  # fmt: skip
            return "search", (user, op.namespace_prefix), kwargs, _found_items
        if isinstance(op, ListNamespacesOp):
            prefix, suffix = _conditions(op)
            kwargs = {"prefix": prefix, "suffix": suffix, "max_depth": op.max_depth,
                      "limit": op.limit, "offset": op.offset}  # fmt: skip
            return "list_namespaces", (user,), kwargs, list
        raise InvalidItemError(f"unknown store operation {type(op).__name__}")

    def __repr__(self) -> str:
        return f"<LangGraphStore user={self.user_id!r} items={type(self.items).__name__}>"
