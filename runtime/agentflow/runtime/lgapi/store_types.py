"""Bodies of the LangGraph store API (`/store/*`), as langgraph-api declares them
(StorePutRequest, StoreSearchRequest, StoreDeleteRequest, StoreListNamespacesRequest, Item),
declared once as msgspec types: decoding validates them, the OpenAPI document shows them.

What a namespace label may be (non-empty, no ".", at most MAX_LABEL_LENGTH characters) is
stated in the document and checked by one function (items.label_problem), which says why
and how to fix it; msgspec checks the types."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct

from agentflow.checkpointer.items import (
    MAX_KEY_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_NAMESPACE_DEPTH,
    MAX_PAGE,
)
from agentflow.runtime.api_types import MAX_INT32, REF, JsonObject, Text

__all__ = [
    "LABEL_PATTERN",
    "StoreDelete",
    "StoreGetQuery",
    "StoreItem",
    "StoreNamespaceList",
    "StoreNamespaces",
    "StorePut",
    "StoreSearch",
    "StoreSearchItem",
    "StoreSearchResult",
]

LABEL_PATTERN = f"^[^.\\x00]{{1,{MAX_LABEL_LENGTH}}}$"
Label = Annotated[
    str,
    Meta(
        extra_json_schema={"pattern": LABEL_PATTERN},
        description=f"1-{MAX_LABEL_LENGTH} characters, no '.'",
    ),
]
Labels = Annotated[list[Label], Meta(extra_json_schema={"maxItems": MAX_NAMESPACE_DEPTH})]
Namespace = Annotated[
    list[Label],
    Meta(
        extra_json_schema={"minItems": 1, "maxItems": MAX_NAMESPACE_DEPTH},
        description='the item\'s namespace: a path of labels, e.g. ["memories", "prefs"]',
    ),
]
Key = Annotated[
    str,
    Meta(
        extra_json_schema={"pattern": f"^[^\\x00]{{1,{MAX_KEY_LENGTH}}}$"},
        description=f"the item's key in its namespace: 1-{MAX_KEY_LENGTH} characters",
    ),
]
Limit = Annotated[float, Meta(ge=1, le=MAX_PAGE, multiple_of=1)]
Offset = Annotated[float, Meta(ge=0, le=MAX_INT32, multiple_of=1)]
# A value that is not an object of LangGraph's comparison operators ({"$gt": 1}): filters
# match values, and operators are refused (422) rather than compared as values.
NOT_OPERATORS = {
    "not": {"type": "object", "not": {"propertyNames": {"pattern": "^([^$][\\s\\S]*)?$"}}}
}
Filter = Annotated[
    JsonObject,
    Meta(
        extra_json_schema={
            "additionalProperties": {"allOf": [{"$ref": REF.format(name="JsonValue")}],
                                     **NOT_OPERATORS}
        },
        description="items whose value has each of these keys with an equal value (objects "
        "and arrays: contained in the stored one). Operators ($gt, ...) are not supported.",
    ),
]  # fmt: skip


class _Body(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Request bodies refuse fields they do not declare (a typo is a 422, not ignored)."""


class _Query(Struct):
    """Query parameters; others (a cache buster) are ignored."""


class _Answer(Struct, forbid_unknown_fields=True):
    """What the server sends."""


class StorePut(_Body):
    namespace: Namespace
    key: Key
    value: JsonObject
    index: Annotated[
        bool | list[Text] | None,
        Meta(description="accepted for compatibility; this server keeps no semantic index"),
    ] = None
    ttl: (
        Annotated[
            float,
            Meta(gt=0, lt=1e9, description="minutes to keep the item after its last write or read"),
        ]
        | None
    ) = None


class StoreDelete(_Body):
    namespace: Namespace
    key: Key


class StoreGetQuery(_Query):
    namespace: Annotated[
        str,
        Meta(
            extra_json_schema={
                "pattern": f"^[^.\\x00]{{1,{MAX_LABEL_LENGTH}}}"
                f"(\\.[^.\\x00]{{1,{MAX_LABEL_LENGTH}}}){{0,{MAX_NAMESPACE_DEPTH - 1}}}$"
            },
            description="the namespace's labels joined by '.'",
        ),
    ]
    key: Key
    refresh_ttl: Annotated[
        bool | None, Meta(description="renew a timed item's ttl (default true)")
    ] = None


class StoreSearch(_Body):
    namespace_prefix: Annotated[
        Labels | None, Meta(description="items in this namespace or below it; all when empty")
    ] = None
    filter: Filter | None = None
    limit: Limit = 10
    offset: Offset = 0
    query: Annotated[
        Text | None,
        Meta(
            description="semantic search needs an embedding index, which this server does not "
            "keep: accepted and filters nothing, as langgraph dev without an index config"
        ),
    ] = None
    refresh_ttl: Annotated[
        bool | None, Meta(description="renew the ttl of timed items found (default true)")
    ] = None


class StoreNamespaces(_Body):
    prefix: Annotated[Labels | None, Meta(description="'*' matches any label")] = None
    suffix: Annotated[Labels | None, Meta(description="'*' matches any label")] = None
    max_depth: Annotated[float, Meta(ge=1, le=MAX_NAMESPACE_DEPTH, multiple_of=1)] | None = None
    limit: Limit = 100
    offset: Offset = 0


class StoreItem(_Answer):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
    updated_at: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class StoreSearchItem(_Answer):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
    updated_at: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
    score: Annotated[None, Meta(description="always null: no semantic search")] = None


class StoreSearchResult(_Answer):
    items: list[StoreSearchItem]


class StoreNamespaceList(_Answer):
    namespaces: list[list[str]]
