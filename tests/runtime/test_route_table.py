"""The route table is the one truth of the HTTP API: handlers get what their row promises
(and do not authenticate or parse for themselves), the document describes each row with the
row's own types, and what the server really sends, over real HTTP, is those types (response
types refuse undeclared fields when decoded)."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import httpx
import msgspec
import pytest

from agentflow.runtime import api_types as api
from agentflow.runtime.endpoints import Endpoint
from agentflow.runtime.routes import ENDPOINTS, graph, system, threads
from tests.runtime.conftest import ServerFactory, sse, user_message

HANDLER_MODULES = (graph, system, threads)
# What the table's wrapper does before a handler runs; a handler doing it again would mean
# the table and the handler can disagree.
DONE_BY_THE_TABLE = {
    "current_user", "require_graph", "runtime", "read_body", "decode_body", "decode_query",
    "path_value", "read_json", "query_int", "query_text", "path_text",
}  # fmt: skip
EVENTS = {kind.name: kind for kind in api.STREAM_EVENTS}


def test_every_handler_takes_only_the_call_its_row_builds() -> None:
    for endpoint in ENDPOINTS:
        assert list(inspect.signature(endpoint.handler).parameters) == ["call"], endpoint.path


@pytest.mark.parametrize("module", HANDLER_MODULES, ids=lambda m: m.__name__)
def test_handlers_do_not_authenticate_or_parse_for_themselves(module: Any) -> None:
    tree = ast.parse(inspect.getsource(module))
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert not used & DONE_BY_THE_TABLE


def ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[1]


def test_the_document_describes_each_row_with_its_types(server: str) -> None:
    document = httpx.get(f"{server}/openapi.json").json()
    components = document["components"]["schemas"]
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        if endpoint.status == 204:
            assert "content" not in operation["responses"]["204"]
            continue
        ok = operation["responses"][str(endpoint.status)]["content"][endpoint.media_type]
        ok = ok["schema"]
        if endpoint.body is not None:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert ref_name(body) == endpoint.body.__name__
        if endpoint.events:
            named = [e["properties"]["event"]["const"] for e in ok["oneOf"]]
            assert named == [kind.name for kind in endpoint.events]
            for event in ok["oneOf"]:
                assert ref_name(event["properties"]["data"]["contentSchema"]) in components
        elif isinstance(endpoint.response, type) and issubclass(endpoint.response, msgspec.Struct):
            assert ref_name(ok) == endpoint.response.__name__
        if endpoint.query is not None:
            names = [p["name"] for p in operation["parameters"] if p["in"] == "query"]
            assert names == list(endpoint.query.__struct_fields__)
        for code in operation["responses"]:
            if code != str(endpoint.status):
                error = operation["responses"][code]["content"]["application/json"]["schema"]
                assert ref_name(error) == "ErrorBody"
        assert ("401" in operation["responses"]) is endpoint.auth


def row(method: str, path: str) -> Endpoint:
    return next(e for e in ENDPOINTS if e.method == method and e.path == path)


def holds(kind: Any, body: Any) -> None:
    """`body` is a `kind`: every field declared, of its type, and nothing else."""
    msgspec.convert(body, kind)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, data) for _, name, data in sse(text)]


def test_what_the_server_sends_is_the_declared_types(make_server: ServerFactory) -> None:
    with httpx.Client(base_url=make_server(), timeout=30) as client:
        run = client.post("/v1/graph/invoke", json=user_message("hi", thread_id="t1"))
        holds(row("POST", "/v1/graph/invoke").response, run.json())
        asked = client.post("/v1/graph/invoke", json=user_message("ask", thread_id="t2"))
        holds(api.RunResponse, asked.json())
        assert asked.json()["interrupt"]["node"] == "respond"
        streamed = client.post(
            "/v1/graph/stream", json=user_message("stream a few words", thread_id="t1")
        )
        events = sse_events(streamed.text)
        assert {name for name, _ in events} >= {"metadata", "node", "delta", "message", "end"}
        for name, data in events:
            holds(EVENTS[name], data)
        failed = sse_events(client.post("/v1/graph/stream", json=user_message("fail")).text)
        assert "error" in [name for name, _ in failed]
        for name, data in failed:
            holds(EVENTS[name], data)
        paused = sse_events(client.post("/v1/graph/stream", json=user_message("ask")).text)
        assert "interrupt" in [name for name, _ in paused]
        for name, data in paused:
            holds(EVENTS[name], data)
        started = client.post("/v1/threads/t2/runs", json=user_message("sleep 0.1"))
        holds(api.Run, started.json())
        run_ids = {"t1": events[0][1]["run_id"], "t2": started.json()["run_id"]}
        for endpoint in ENDPOINTS:
            if endpoint.method != "GET" or not isinstance(endpoint.response, type):
                continue
            if not issubclass(endpoint.response, msgspec.Struct):
                continue
            for thread in ("t1", "t2"):
                path = endpoint.path.replace("{run_id}", run_ids[thread])
                response = client.get(path.replace("{thread_id}", thread))
                assert response.status_code == 200, (endpoint.path, response.text)
                holds(endpoint.response, response.json())
        fresh = client.get("/v1/threads/t3/state")
        holds(api.ErrorBody, fresh.json())
        stopped = client.post("/v1/graph/stop", json={"thread_id": "t1"})
        holds(api.StopResponse, stopped.json())
        deleted = client.delete("/v1/threads/t1")
        holds(api.DeleteResponse, deleted.json())
        invalid = client.post("/v1/graph/invoke", json={"messages": [{"role": 1}]})
        assert invalid.status_code == 422
        holds(api.ErrorBody, invalid.json())


def test_a_response_with_an_undeclared_field_is_caught() -> None:
    """The check above can fail: a field the type does not declare is refused."""
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        holds(api.StopResponse, {"thread_id": "t", "stopped": True, "secret": 1})
