"""Every route over real HTTP, without auth (the anonymous user)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from agentflow.graph import CompiledGraph
from agentflow.models import ChatModel, DemoChat, FallbackChat, OpenAIChat
from agentflow.tools import create_react_agent
from tests.models.conftest import FAST_RETRY, SECRET_KEY, FakeProvider
from tests.runtime import graphs
from tests.runtime.conftest import ServerFactory, user_message


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["message"]
    return error  # type: ignore[no-any-return]


def test_ping_and_request_ids(client: httpx.Client) -> None:
    response = client.get("/ping")
    assert response.json() == {"status": "ok"}
    assert len(response.headers["x-request-id"]) == 32
    echoed = client.get("/ping", headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    forged = client.get("/ping", headers={"X-Request-ID": "bad id\twith spaces"})
    assert forged.headers["x-request-id"] != "bad id\twith spaces"


def test_health_reports_each_check(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["checkpointer"] == {"status": "ok", "kind": "memory"}
    assert body["checks"]["graph"]["status"] == "ok"


def test_health_reports_the_model_provider_and_memory_without_values(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-abcdefghijklmnopqrstuvwx123456")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    response = client.get("/health")
    checks = response.json()["checks"]
    assert checks["model_provider"]["api_key_set"] is True
    assert checks["model_provider"]["base_url_set"] is False
    assert "sk-proj" not in response.text
    memory = checks["memory"]
    assert memory["status"] in ("ok", "degraded")
    assert 1 < memory["rss_mb"] < memory["limit_mb"]
    assert memory["limit_source"] in ("cgroup", "machine")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert client.get("/health").json()["checks"]["model_provider"]["status"] == "not_configured"


def test_invoke_creates_a_thread_and_continues_it(client: httpx.Client) -> None:
    first = client.post("/v1/graph/invoke", json=user_message("hello"))
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "done"
    assert [m["content"] for m in body["messages"]] == ["echo: hello"]
    assert body["usage"] == {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "by_model": {},
    }  # fmt: skip
    thread_id = body["thread_id"]
    second = client.post("/v1/graph/invoke", json=user_message("again", thread_id=thread_id))
    assert second.json()["thread_id"] == thread_id
    messages = client.get(f"/v1/threads/{thread_id}/messages").json()
    assert [m["content"] for m in messages["messages"]] == [
        "hello", "echo: hello", "again", "echo: again",
    ]  # fmt: skip
    assert messages["total"] == 4 and messages["next_offset"] is None


def test_content_blocks_are_accepted(client: httpx.Client) -> None:
    blocks = [{"type": "text", "text": "from "}, {"type": "text", "text": "blocks"}]
    response = client.post(
        "/v1/graph/invoke", json={"messages": [{"role": "user", "content": blocks}]}
    )
    assert response.json()["messages"][0]["content"] == "echo: from blocks"


def test_client_chosen_thread_id_creates_that_thread(client: httpx.Client) -> None:
    response = client.post("/v1/graph/invoke", json=user_message("hi", thread_id="my-thread-1"))
    assert response.json()["thread_id"] == "my-thread-1"
    info = client.get("/v1/threads/my-thread-1").json()
    assert info["thread_id"] == "my-thread-1" and info["title"] == "hi"
    assert "user_id" not in info


def test_missing_threads_are_404_on_every_route(client: httpx.Client) -> None:
    for path in ("", "/state", "/messages", "/history"):
        assert_error(client.get(f"/v1/threads/nope{path}"), 404, "thread_not_found")
    assert_error(client.delete("/v1/threads/nope"), 404, "thread_not_found")
    assert_error(client.post("/v1/graph/stop", json={"thread_id": "nope"}), 404, "thread_not_found")


def test_thread_list_paginates(client: httpx.Client) -> None:
    for i in range(5):
        client.post("/v1/graph/invoke", json=user_message("hi", thread_id=f"t{i}"))
    first = client.get("/v1/threads", params={"limit": 2}).json()
    assert [t["thread_id"] for t in first["threads"]] == ["t4", "t3"]
    second = client.get("/v1/threads", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [t["thread_id"] for t in second.json()["threads"]] == ["t2", "t1"]
    error = assert_error(
        client.get("/v1/threads", params={"cursor": "junk"}), 422, "validation_error"
    )
    assert error["details"] == [
        {"loc": ["query", "cursor"], "msg": "invalid cursor; use next_cursor as given"}
    ]
    assert_error(client.get("/v1/threads", params={"limit": 0}), 422, "validation_error")


def test_state_history_and_delete(client: httpx.Client) -> None:
    client.post("/v1/graph/invoke", json=user_message("hi", thread_id="t1"))
    state = client.get("/v1/threads/t1/state").json()
    assert state["status"] == "done" and state["next"] == [] and state["message_count"] == 2
    history = client.get("/v1/threads/t1/history", params={"limit": 1}).json()
    assert len(history["checkpoints"]) == 1 and history["next_cursor"]
    older = client.get(
        "/v1/threads/t1/history", params={"limit": 10, "before": history["next_cursor"]}
    ).json()
    assert [c["source"] for c in older["checkpoints"]] == ["input"]
    deleted = client.delete("/v1/threads/t1")
    assert deleted.json() == {"thread_id": "t1", "deleted": True}
    assert_error(client.get("/v1/threads/t1"), 404, "thread_not_found")
    # Its id is free again: a run naming it starts a new thread, with nothing of the old one.
    client.post("/v1/graph/invoke", json=user_message("again", thread_id="t1"))
    assert client.get("/v1/threads/t1/state").json()["message_count"] == 2


def test_graph_info(client: httpx.Client) -> None:
    info = client.get("/v1/graph").json()
    assert [n["id"] for n in info["nodes"]] == ["__start__", "respond", "__end__"]
    assert info["mermaid"].startswith("flowchart TD")


def test_interrupt_then_resume(client: httpx.Client) -> None:
    paused = client.post("/v1/graph/invoke", json=user_message("ask", thread_id="q1")).json()
    assert paused["status"] == "interrupted"
    assert paused["interrupt"]["value"] == {"question": "are you sure?"}
    state = client.get("/v1/threads/q1/state").json()
    assert state["next"] == ["respond"] and state["interrupt"]["node"] == "respond"
    resumed = client.post("/v1/graph/invoke", json={"thread_id": "q1", "resume": "yes"}).json()
    assert resumed["status"] == "done"
    assert resumed["messages"][-1]["content"] == "you answered yes"
    nothing = client.post("/v1/graph/invoke", json={"thread_id": "q1", "resume": "again"})
    assert_error(nothing, 409, "nothing_to_resume")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"messages": "hi"}, ["body", "messages"]),
        ({"messages": [{"role": "robot", "content": "x"}]}, ["body", "messages", 0, "role"]),
        (
            {"messages": [], "config": {"recursion_limit": "10"}},
            ["body", "config", "recursion_limit"],
        ),
        ({"messages": [], "thread_id": "has spaces"}, ["body", "thread_id"]),
        ({"messages": [], "surprise": 1}, ["body", "surprise"]),
        ([1, 2], ["body"]),
    ],
)
def test_validation_errors_name_the_field_and_never_echo_the_body(
    client: httpx.Client, body: object, loc: list[object]
) -> None:
    response = client.post("/v1/graph/invoke", json=body)
    error = assert_error(response, 422, "validation_error")
    assert loc in [d["loc"] for d in error["details"]]  # type: ignore[union-attr]
    assert "robot" not in response.text and "has spaces" not in response.text


def test_malformed_json_and_oversized_bodies(make_server: ServerFactory) -> None:
    url = make_server(env={"MAX_BODY_BYTES": "2000"})
    with httpx.Client(base_url=url) as http:
        bad = http.post(
            "/v1/graph/invoke",
            content=b'{"messages": [',
            headers={"content-type": "application/json"},
        )
        assert_error(bad, 400, "invalid_json")
        empty = http.post("/v1/graph/invoke", content=b"")
        assert_error(empty, 400, "invalid_json")
        big = http.post("/v1/graph/invoke", json=user_message("x" * 5000))
        assert_error(big, 413, "body_too_large")

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield b'{"messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}]}'

        streamed = http.post("/v1/graph/invoke", content=chunks())
        assert_error(streamed, 413, "body_too_large")


def test_unknown_route_and_method(client: httpx.Client) -> None:
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.get("/v1/graph/invoke"), 405, "method_not_allowed")


def test_recursion_limit_is_a_clear_error(make_server: ServerFactory) -> None:
    url = make_server(graph=graphs.loop)
    with httpx.Client(base_url=url) as http:
        response = http.post(
            "/v1/graph/invoke", json=user_message("go", config={"recursion_limit": 5})
        )
        error = assert_error(response, 422, "recursion_limit_exceeded")
        assert "recursion_limit=5" in str(error["message"])
        assert http.get("/ping").status_code == 200


def test_run_timeout(make_server: ServerFactory) -> None:
    url = make_server(env={"RUN_TIMEOUT": "0.3"})
    with httpx.Client(base_url=url) as http:
        response = http.post("/v1/graph/invoke", json=user_message("sleep 5", thread_id="slow"))
        assert_error(response, 504, "run_timeout")
        state = http.get("/v1/threads/slow/state").json()
        assert state["status"] == "cancelled" and state["next"] == ["respond"]


def test_node_error_in_development_is_masked(client: httpx.Client) -> None:
    response = client.post("/v1/graph/invoke", json=user_message("fail"))
    error = assert_error(response, 500, "run_failed")
    assert "RuntimeError" in str(error["message"])
    assert "hunter2" not in response.text and "u:p@" not in response.text


def test_busy_thread_is_409_and_stop_cancels(client: httpx.Client, server: str) -> None:
    results: dict[str, httpx.Response] = {}

    def slow() -> None:
        with httpx.Client(base_url=server, timeout=30) as other:
            results["slow"] = other.post(
                "/v1/graph/invoke", json=user_message("sleep 10", thread_id="busy")
            )

    worker = threading.Thread(target=slow)
    worker.start()
    deadline = time.monotonic() + 5
    while not client.get("/v1/threads/busy").is_success and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.get("/v1/threads/busy").json()["running"] is True
    busy = client.post("/v1/graph/invoke", json=user_message("me too", thread_id="busy"))
    assert_error(busy, 409, "thread_busy")
    assert_error(client.delete("/v1/threads/busy"), 409, "thread_busy")
    stopped = client.post("/v1/graph/stop", json={"thread_id": "busy"})
    assert stopped.json() == {"thread_id": "busy", "stopped": True}
    worker.join(10)
    assert_error(results["slow"], 409, "run_cancelled")
    assert client.get("/v1/threads/busy/state").json()["status"] == "cancelled"
    again = client.post("/v1/graph/invoke", json=user_message("after", thread_id="busy"))
    assert again.status_code == 200


def test_idempotency_key_replays_the_stored_response(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "order-42"}
    body = user_message("charge me", thread_id="pay")
    first = client.post("/v1/graph/invoke", json=body, headers=headers)
    second = client.post("/v1/graph/invoke", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    messages = client.get("/v1/threads/pay/messages").json()
    assert messages["total"] == 2  # ran once
    reused = client.post(
        "/v1/graph/invoke", json=user_message("different", thread_id="pay"), headers=headers
    )
    assert_error(reused, 422, "idempotency_key_reused")


def test_stream_is_real_sse(client: httpx.Client) -> None:
    body = user_message("stream hello big world", thread_id="s1")
    with connect_sse(client, "POST", "/v1/graph/stream", json=body) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = list(source.iter_sse())
    names = [e.event for e in events]
    assert names[0] == "metadata" and names[-1] == "end"
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    deltas = [e.json()["delta"] for e in events if e.event == "delta"]
    assert "".join(deltas) == "hello big world "
    message = next(e.json() for e in events if e.event == "message")
    assert message["message"]["content"] == "hello big world"
    nodes = [e.json() for e in events if e.event == "node"]
    assert [n["status"] for n in nodes] == ["start", "end"]
    assert nodes[1]["duration_ms"] >= 0
    assert events[-1].json()["status"] == "done"


def test_stream_error_event_then_end(client: httpx.Client) -> None:
    with connect_sse(client, "POST", "/v1/graph/stream", json=user_message("fail")) as source:
        events = list(source.iter_sse())
    assert [e.event for e in events][-2:] == ["error", "end"]
    error = events[-2].json()
    assert error["code"] == "run_failed"
    assert "hunter2" not in events[-2].data and "u:p@" not in events[-2].data
    assert events[-1].json()["status"] == "error"


def test_stream_heartbeats_while_quiet(make_server: ServerFactory) -> None:
    url = make_server(env={"HEARTBEAT_INTERVAL": "0.1"})
    body = user_message("sleep 0.5")
    with (
        httpx.Client(base_url=url, timeout=10) as http,
        http.stream("POST", "/v1/graph/stream", json=body) as response,
    ):
        raw = b"".join(response.iter_raw())
    assert raw.count(b": heartbeat\n\n") >= 2
    assert raw.rstrip().endswith(
        b'"status":"done","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,'
        b'"by_model":{}}}'
    )


def test_disconnected_stream_still_completes_and_persists(client: httpx.Client) -> None:
    body = user_message("sleep 0.5", thread_id="gone")
    with client.stream("POST", "/v1/graph/stream", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("event: node"):
                break  # leave mid-run
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = client.get("/v1/threads/gone/state").json()
        if state["status"] == "done":
            break
        time.sleep(0.05)
    assert state["status"] == "done"
    messages = client.get("/v1/threads/gone/messages").json()["messages"]
    assert [m["content"] for m in messages] == ["sleep 0.5", "echo: sleep 0.5"]


def test_metrics_count_requests_runs_and_nodes(client: httpx.Client) -> None:
    client.post("/v1/graph/invoke", json=user_message("hi"))
    text = client.get("/metrics").text
    assert (
        'agentflow_http_requests_total{method="POST",route="/v1/graph/invoke",status="200"} 1.0'
        in text
    )
    assert 'agentflow_runs_total{outcome="done"} 1.0' in text
    assert 'agentflow_node_duration_seconds_count{node="respond"} 1.0' in text
    assert "agentflow_active_runs 0.0" in text
    assert "agentflow_http_request_duration_seconds_bucket" in text


def test_openapi_document_lists_every_route(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    for path, method in [
        ("/ping", "get"), ("/health", "get"), ("/metrics", "get"), ("/v1/graph", "get"),
        ("/v1/graph/invoke", "post"), ("/v1/graph/stream", "post"), ("/v1/graph/stop", "post"),
        ("/v1/threads", "get"), ("/v1/threads/{thread_id}", "get"),
        ("/v1/threads/{thread_id}", "delete"), ("/v1/threads/{thread_id}/state", "get"),
        ("/v1/threads/{thread_id}/messages", "get"), ("/v1/threads/{thread_id}/history", "get"),
    ]:  # fmt: skip
        assert method in paths[path], (path, method)
    invoke = paths["/v1/graph/invoke"]["post"]
    ref = invoke["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    components = document["components"]["schemas"]
    assert components[ref.rsplit("/", 1)[1]]["properties"]["messages"]
    assert "422" in invoke["responses"]


def test_token_usage_per_model_in_response_stream_and_metrics(make_server: ServerFactory) -> None:
    from agentflow.graph import END, START, Message, StateGraph, Usage

    async def two_models(state: object) -> list[Message]:
        return [
            Message.assistant("draft", usage=Usage(10, 5), metadata={"model": "small-1"}),
            Message.assistant("final", usage=Usage(30, 7), metadata={"model": "large-2"}),
        ]

    graph = StateGraph()
    graph.add_node("answer", two_models)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    url = make_server(graph=graph.compile())
    with httpx.Client(base_url=url, timeout=10) as http:
        usage = http.post("/v1/graph/invoke", json=user_message("hi")).json()["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (40, 12)
        assert usage["by_model"] == {
            "small-1": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "large-2": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37},
        }
        with connect_sse(http, "POST", "/v1/graph/stream", json=user_message("hi")) as source:
            events = list(source.iter_sse())
        end = next(e for e in events if e.event == "end").json()
        assert end["usage"]["by_model"]["large-2"]["prompt_tokens"] == 30
        metrics = http.get("/metrics").text
    assert 'agentflow_tokens_total{kind="prompt",model="large-2"} 60.0' in metrics
    assert 'agentflow_tokens_total{kind="completion",model="small-1"} 10.0' in metrics


# -- the models in use, and a provider that refuses the key ---------------------------------------


def provider_agent(provider: FakeProvider, *fallbacks: ChatModel) -> CompiledGraph:
    """A ReAct agent on an OpenAI-compatible model served by `provider`."""
    model: ChatModel = OpenAIChat(
        "gpt-test-2024-01-01", base_url=provider.url, api_key=SECRET_KEY, retry=FAST_RETRY
    )
    if fallbacks:
        model = FallbackChat([model, *fallbacks])
    return create_react_agent(model, [])


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    server = FakeProvider()
    yield server
    server.close()


def test_health_names_the_models_in_use(make_server: ServerFactory, provider: FakeProvider) -> None:
    url = make_server(graph=provider_agent(provider, DemoChat()))
    response = httpx.get(url + "/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["checks"]["models"] == {
        "status": "ok",
        "models": [
            {"name": "gpt-test-2024-01-01", "class": "OpenAIChat", "offline": False},
            {"name": "demo", "class": "DemoChat", "offline": True},
        ],
    }
    assert SECRET_KEY not in response.text and "sk-test" not in response.text
    plain = httpx.get(make_server() + "/health", timeout=10).json()  # no model in the graph
    assert plain["checks"]["models"] == {"status": "ok", "models": []}


PROVIDER_REFUSAL = (
    f"Incorrect API key provided: {SECRET_KEY}. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)


@pytest.mark.parametrize("status", [401, 403])
def test_a_key_the_provider_refuses_is_a_502_with_its_reason_masked(
    make_server: ServerFactory, provider: FakeProvider, status: int
) -> None:
    provider.error(status, PROVIDER_REFUSAL).error(status, PROVIDER_REFUSAL)
    url = make_server(graph=provider_agent(provider))
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.post("/v1/graph/invoke", json=user_message("hi"))
        error = assert_error(response, 502, "model_auth_failed")
        message = str(error["message"])
        assert message.startswith("the model provider refused the server's credentials: ")
        assert f"HTTP {status}" in message and "Incorrect API key provided: " in message
        with connect_sse(http, "POST", "/v1/graph/stream", json=user_message("hi")) as source:
            events = list(source.iter_sse())
    assert [e.event for e in events][-2:] == ["error", "end"]
    streamed = events[-2].json()
    assert (streamed["code"], streamed["message"]) == ("model_auth_failed", message)
    for text in (message, events[-2].data):
        assert SECRET_KEY not in text and "SECRET0123" not in text
    assert provider.attempts == 2  # one call per request: a refused key is never retried
