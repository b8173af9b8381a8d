"""The LangGraph API driven by the real langgraph-sdk client (async and sync) over real HTTP:
a LangGraph graph (its state in agentflow's SQLite file) and an agentflow graph served
together from `graphs`, per-user isolation under JWT auth."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from agentflow.runtime import create_app, load_settings
from tests.runtime.conftest import serve_app

GRAPHS = {
    "agent": "tests.runtime.lg_graphs:agent",
    "approve": "tests.runtime.lg_graphs:approve",
    "echo": "tests.runtime.graphs:echo",
    "memory": "tests.runtime.lg_graphs:memory",
}
SECRET = "a-test-secret-that-is-long-enough-0123456789"
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., str]]:
    with ExitStack() as stack:
        numbers = itertools.count()

        def start(files: dict[str, str] | None = None, **config: Any) -> str:
            project = tmp_path / f"p{next(numbers)}"
            project.mkdir()
            for name, text in (files or {}).items():
                (project / name).write_text(text)
            data = {"graphs": GRAPHS, "checkpointer": "sqlite", **config}
            (project / "agentflow.json").write_text(json.dumps(data))
            settings = load_settings(project / "agentflow.json", environ={})
            return stack.enter_context(serve_app(create_app(settings)))

        yield start


@pytest.fixture
def url(start: Callable[..., str]) -> str:
    return start()


@pytest.fixture
async def client(url: str) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=url) as sdk:
        yield sdk


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def contents(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"]]


async def test_assistants_are_the_graphs_with_langgraphs_ids(client: LangGraphClient) -> None:
    found = await client.assistants.search()
    assert [a["graph_id"] for a in found] == list(GRAPHS)
    for assistant in found:
        expected = str(uuid.uuid5(NAMESPACE_GRAPH, assistant["graph_id"]))
        assert assistant["assistant_id"] == expected
        assert await client.assistants.get(expected) == assistant
        assert await client.assistants.get(assistant["graph_id"]) == assistant
    assert await client.assistants.count() == len(GRAPHS)
    assert [a["graph_id"] for a in await client.assistants.search(graph_id="echo")] == ["echo"]
    with pytest.raises(NotFoundError):
        await client.assistants.get("nope")
    drawing = await client.assistants.get_graph("agent")
    assert {e["source"] for e in drawing["edges"]} == {"__start__", "answer"}
    schemas = await client.assistants.get_schemas("echo")
    assert "messages" in schemas["state_schema"]["properties"]
    assert (await client.assistants.get_schemas("agent"))["graph_id"] == "agent"


@pytest.mark.parametrize("graph", ["agent", "echo"])
async def test_a_conversation_streams_waits_and_keeps_its_state(
    client: LangGraphClient, graph: str
) -> None:
    thread = await client.threads.create(metadata={"owner": "t"})
    tid = thread["thread_id"]
    values = await client.runs.wait(tid, graph, input=say("hello"))
    prefix = "echo: " if graph == "agent" else ""
    assert contents(values)[0] == "hello" and contents(values)[1].startswith(prefix)
    created: list[Any] = []
    parts = [
        p
        async for p in client.runs.stream(
            tid, graph, input=say("again"), stream_mode=["values", "updates", "messages-tuple"],
            on_run_created=created.append,
        )
    ]  # fmt: skip
    events = [p.event for p in parts]
    assert events[0] == "metadata" and events[-1] == "values"
    assert "updates" in events and "messages" in events
    assert created and created[0]["thread_id"] == tid
    assert parts[0].data["run_id"] == created[0]["run_id"]
    assert contents(parts[-1].data)[-2:][0] == "again"
    state = await client.threads.get_state(tid)
    assert contents(state["values"]) == contents(parts[-1].data)
    assert state["checkpoint"]["thread_id"] == tid
    history = await client.threads.get_history(tid, limit=2)
    assert len(history) == 2 and history[0]["checkpoint_id"] == state["checkpoint_id"]
    got = await client.threads.get(tid)
    assert got["status"] == "idle" and got["metadata"]["graph_id"] == graph
    assert contents(got["values"]) == contents(state["values"])
    runs = await client.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "success"]
    assert {r["assistant_id"] for r in runs} == {str(uuid.uuid5(NAMESPACE_GRAPH, graph))}


async def test_stream_modes_of_a_langgraph_graph(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    custom = [p async for p in client.runs.stream(tid, "agent", input=say("x"),
                                                   stream_mode="custom")]  # fmt: skip
    assert [p.event for p in custom] == ["metadata", "custom"]
    assert custom[1].data == {"progress": "answering"}
    tokens = [p async for p in client.runs.stream(tid, "agent", input=say("one two three"),
                                                   stream_mode="messages-tuple")]  # fmt: skip
    chunks = [p.data[0]["content"] for p in tokens if p.event == "messages"]
    assert len(chunks) > 1 and "".join(chunks) == "echo: one two three"
    assert tokens[1].data[1]["langgraph_node"] == "answer"


async def test_background_runs_join_list_cancel_and_rejoin_their_stream(
    client: LangGraphClient,
) -> None:
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "agent", input=say("bg"))
    assert run["status"] in ("pending", "running", "success")
    values = await client.runs.join(tid, run["run_id"])
    assert contents(values)[-1] == "echo: bg"
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    replay = [p.event async for p in client.runs.join_stream(tid, run["run_id"])]
    assert replay[0] == "metadata" and replay[-1] == "values"
    slow = await client.runs.create(tid, "agent", input=say("slow"))
    await client.runs.cancel(tid, slow["run_id"], wait=True)
    assert (await client.runs.get(tid, slow["run_id"]))["status"] == "interrupted"


async def test_multitask_strategies(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "agent", input=say("slow 1"))
    with pytest.raises(ConflictError):
        await client.runs.create(tid, "agent", input=say("no"), multitask_strategy="reject")
    queued = await client.runs.create(tid, "agent", input=say("after"),
                                      multitask_strategy="enqueue")  # fmt: skip
    values = await client.runs.join(tid, queued["run_id"])
    assert contents(values)[-2:] == ["after", "echo: after"]
    assert (await client.runs.get(tid, first["run_id"]))["status"] == "success"
    busy = await client.runs.create(tid, "agent", input=say("slow 2"))
    await asyncio.sleep(0.3)
    taking = await client.runs.create(tid, "agent", input=say("now"),
                                      multitask_strategy="interrupt")  # fmt: skip
    await client.runs.join(tid, taking["run_id"])
    assert (await client.runs.get(tid, busy["run_id"]))["status"] == "interrupted"


async def test_an_interrupt_is_resumed_with_command_resume(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(tid, "approve", input=say("go"))]
    assert parts[-1].data["__interrupt__"][0]["value"] == {"question": "approve?"}
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(tid)
    assert state["next"] == ["ask"] and state["interrupts"][0]["value"]["question"]
    values = await client.runs.wait(tid, "approve", command={"resume": "yes"})
    assert contents(values)[-1] == "approved: yes"
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_state_updates_and_time_travel(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "agent", input=say("first"))
    first = await client.threads.get_state(tid)
    update = await client.threads.update_state(
        tid, {"messages": [{"type": "ai", "content": "edited"}]}, as_node="answer"
    )
    assert update["checkpoint"]["checkpoint_id"] != first["checkpoint_id"]
    assert contents((await client.threads.get_state(tid))["values"])[-1] == "edited"
    at = await client.threads.get_state(tid, checkpoint_id=first["checkpoint_id"])
    assert contents(at["values"]) == contents(first["values"])


async def test_threads_create_search_count_patch_delete(client: LangGraphClient) -> None:
    mark = uuid.uuid4().hex
    made = [await client.threads.create(metadata={"mark": mark, "n": i}) for i in range(3)]
    same = await client.threads.create(thread_id=made[0]["thread_id"], if_exists="do_nothing")
    assert same["thread_id"] == made[0]["thread_id"]
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=made[0]["thread_id"], if_exists="raise")
    found = await client.threads.search(metadata={"mark": mark}, limit=2, offset=1)
    assert len(found) == 2
    assert await client.threads.count(metadata={"mark": mark}) == 3
    patched = await client.threads.update(made[1]["thread_id"], metadata={"k": "v"})
    assert patched["metadata"] == {"mark": mark, "n": 1, "k": "v"}
    await client.threads.delete(made[2]["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(made[2]["thread_id"])
    assert await client.threads.count(metadata={"mark": mark}) == 2


async def test_runs_on_unknown_threads_and_stateless_runs(client: LangGraphClient) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:  # runs.wait raises httpx's
        await client.runs.wait(str(uuid.uuid4()), "agent", input=say("x"))
    assert refused.value.response.status_code == 404
    tid = str(uuid.uuid4())
    values = await client.runs.wait(tid, "agent", input=say("x"), if_not_exists="create")
    assert contents(values)[-1] == "echo: x"
    before = await client.threads.count()
    streamed = [p.event async for p in client.runs.stream(None, "agent", input=say("s"))]
    assert streamed[0] == "metadata" and streamed[-1] == "values"
    assert contents(await client.runs.wait(None, "echo", input=say("w")))[-1] == "echo: w"
    for _ in range(100):  # a stateless run's thread is deleted once the run ends
        if await client.threads.count() == before:
            break
        await asyncio.sleep(0.05)
    assert await client.threads.count() == before


def test_the_sync_client(url: str) -> None:
    with get_sync_client(url=url) as client:
        check_sync(client)


def check_sync(client: SyncLangGraphClient) -> None:
    tid = client.threads.create()["thread_id"]
    values = client.runs.wait(tid, "agent", input=say("sync"))
    assert contents(values)[-1] == "echo: sync"
    events = [p.event for p in client.runs.stream(tid, "echo", input=say("s"))]
    assert events[0] == "metadata"
    assert client.threads.get_state(tid)["values"]["messages"]
    assert len(client.assistants.search()) == len(GRAPHS)


def token(sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


async def test_users_see_only_their_own_threads_and_runs(start: Callable[..., str]) -> None:
    url = start(auth={"type": "jwt", "secret": SECRET})
    async with (
        get_client(url=url, headers={"Authorization": f"Bearer {token('alice')}"}) as alice,
        get_client(url=url, headers={"Authorization": f"Bearer {token('bob')}"}) as bob,
    ):
        await check_isolation(url, alice, bob)


async def check_isolation(url: str, alice: LangGraphClient, bob: LangGraphClient) -> None:
    tid = (await alice.threads.create())["thread_id"]
    run = await alice.runs.create(tid, "agent", input=say("private"))
    await alice.runs.join(tid, run["run_id"])
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: bob.threads.get(tid),
        lambda: bob.threads.get_state(tid),
        lambda: bob.runs.get(tid, run["run_id"]),
        lambda: bob.threads.delete(tid),
        lambda: bob.runs.join(tid, run["run_id"]),
    ]
    calls.append(lambda: bob.runs.wait(tid, "agent", input=say("x")))
    for call in calls:  # the SDK raises NotFoundError, or httpx's error where it reconnects
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await call()
        assert refused.value.response.status_code == 404
    assert await bob.threads.count() == 0
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/threads/search", json={})).status_code == 401
        assert (await http.get("/ok")).json()["ok"] is True


async def test_bad_input_gets_a_clear_error(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        tid = (await http.post("/threads", json={})).json()["thread_id"]
        wrong = await http.post(f"/threads/{tid}/runs/wait", json={"input": {}})
        assert wrong.status_code == 422 and "assistant_id" in wrong.text
        mode = await http.post(f"/threads/{tid}/runs/wait",
                               json={"assistant_id": "agent", "stream_mode": "nope"})  # fmt: skip
        assert mode.status_code == 422
        unknown = await http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "x"})
        assert unknown.status_code == 404 and "agent, approve, echo, memory" in unknown.text
        broken = await http.post(
            "/threads", content=b"{", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400


async def test_a_langgraph_graph_keeps_each_users_memories_in_the_store(
    start: Callable[..., str],
) -> None:
    url = start(auth={"type": "jwt", "secret": SECRET})
    async with (
        get_client(url=url, headers={"Authorization": f"Bearer {token('alice')}"}) as alice,
        get_client(url=url, headers={"Authorization": f"Bearer {token('bob')}"}) as bob,
    ):
        for text in ("tea", "jazz"):  # two threads: the store outlives a thread
            values = await alice.runs.wait(None, "memory", input=say(text))
        assert contents(values)[-1] == "jazz, tea"
        assert contents(await bob.runs.wait(None, "memory", input=say("rock")))[-1] == "rock"
        item = await alice.store.get_item(["notes"], "tea")
        assert item is not None and item["value"] == {"text": "tea"}
        assert await bob.store.get_item(["notes"], "tea") is None


async def test_a_run_pauses_before_a_node_named_at_run_time(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "agent", input=say("later"), interrupt_before=["answer"])
    state = await client.threads.get_state(tid)
    assert state["next"] == ["answer"] and contents(state["values"]) == ["later"]
    values = await client.runs.wait(tid, "agent", input=None)  # continue where it paused
    assert contents(values) == ["later", "echo: later"]
    with pytest.raises(httpx.HTTPStatusError) as refused:  # agentflow graphs: at compile time
        await client.runs.wait(tid, "echo", input=say("x"), interrupt_before=["respond"])
    assert refused.value.response.status_code == 409


def test_graphs_may_be_named_by_file_as_langgraph_json_names_them(
    start: Callable[..., str], tmp_path: Path
) -> None:
    url = start(graphs={"agent": "./mygraph.py:agent"}, files={"mygraph.py": LG_FILE})
    with get_sync_client(url=url) as client:
        values = client.runs.wait(None, "agent", input=say("file"))
    assert contents(values)[-1] == "file!"


LG_FILE = """
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph


def shout(state: MessagesState) -> dict:
    return {"messages": [AIMessage(content=state["messages"][-1].content + "!")]}


builder = StateGraph(MessagesState)
builder.add_node("shout", shout)
builder.add_edge(START, "shout")
builder.add_edge("shout", END)
agent = builder.compile()
"""
