"""A model endpoint that echoes the API key back (in tool-call arguments and in its answer)
never gets the key stored, returned, streamed or logged; a base URL carrying credentials is
refused before any call is made."""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agentflow.graph import AgentState, CompiledGraph, Message, ToolCall
from agentflow.models import ModelConfigError, OpenAIChat
from agentflow.tools import ToolNode, create_react_agent, tool
from agentflow.utils.secrets import register_secret
from tests.cli.test_doctor import doctor, make_project
from tests.runtime.conftest import ServerFactory, make_server, serve_app, user_message

__all__ = ["make_server"]  # a fixture, used by name

# No pattern of mask_secrets recognises this shape: only the registry of known values can.
KEY = "echo-" + secrets.token_hex(16)
PIECE = 4  # streamed deltas are this short, so the key is split across many of them


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return "data: " + json.dumps({"id": "c1", "model": "echo", "choices": [choice]}) + "\n\n"


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)]


async def completions(request: Request) -> Response:
    """Answer with a tool call whose arguments hold the caller's key; after the tool ran,
    answer with the key in the text."""
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    body = await request.json()
    answered = any(m.get("role") == "tool" for m in body["messages"])
    arguments = json.dumps({"query": f"look up {key}"})
    content = f"Your key is {key}, keep it safe."
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if not answered:
            call = {"id": "call_1", "type": "function",
                    "function": {"name": "lookup", "arguments": arguments}}  # fmt: skip
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return JSONResponse({"id": "c1", "model": "echo", "choices": [choice]})

    async def events() -> AsyncIterator[str]:
        if answered:
            for piece in _pieces(content):
                yield _chunk({"content": piece})
        else:
            opening = {"index": 0, "id": "call_1", "type": "function",
                       "function": {"name": "lookup", "arguments": ""}}  # fmt: skip
            yield _chunk({"tool_calls": [opening]})
            for piece in _pieces(arguments):
                yield _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield _chunk({}, "stop")
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture
def echo_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    with serve_app(app) as url:
        yield url + "/v1"


@tool
def lookup(query: str) -> str:
    """Look something up.

    Args:
        query: what to look up
    """
    return f"found: {query}"


def echo_agent(url: str) -> CompiledGraph:
    return create_react_agent(OpenAIChat("echo-2024-01-01", base_url=url, api_key=KEY), [lookup])


# ------------------------------------------------------------------------------- the model


async def test_a_completion_that_echoes_the_key_is_masked(echo_url: str) -> None:
    model = OpenAIChat("echo-2024-01-01", base_url=echo_url, api_key=KEY)
    first = await model.ainvoke([Message.user("hi")])
    assert first.tool_calls[0].arguments == {"query": "look up [REDACTED]"}
    done = [Message.user("hi"), first, Message.tool("found", tool_call_id="call_1")]
    second = await model.ainvoke(done)
    assert second.content == "Your key is [REDACTED], keep it safe."


async def test_a_stream_that_echoes_the_key_is_masked_across_deltas(echo_url: str) -> None:
    model = OpenAIChat("echo-2024-01-01", base_url=echo_url, api_key=KEY)
    items = [item async for item in model.astream([Message.user("hi")])]
    final = items[-1]
    assert isinstance(final, Message)
    assert final.tool_calls[0].arguments == {"query": "look up [REDACTED]"}
    done = [Message.user("hi"), final, Message.tool("found", tool_call_id="call_1")]
    items = [item async for item in model.astream(done)]
    *deltas, final = items
    assert all(isinstance(d, str) for d in deltas)
    assert len(deltas) > 3
    assert "".join(map(str, deltas)) == "Your key is [REDACTED], keep it safe."
    assert isinstance(final, Message) and final.content == "Your key is [REDACTED], keep it safe."


# ------------------------------------------------------------------------------ the server


def test_the_key_is_never_stored_returned_streamed_or_logged(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory, echo_url: str
) -> None:
    logs = io.StringIO()
    monkeypatch.setattr(sys, "stderr", logs)
    url = make_server(env={"MODE": "production", "LOG_LEVEL": "DEBUG"}, graph=echo_agent(echo_url))
    with httpx.Client(base_url=url, timeout=30) as http:
        invoked = http.post("/v1/graph/invoke", json=user_message("hi", thread_id="echo-1"))
        assert invoked.status_code == 200, invoked.text
        with connect_sse(
            http, "POST", "/v1/graph/stream", json=user_message("hi", thread_id="echo-2")
        ) as source:
            events = [(e.event, e.data) for e in source.iter_sse()]
        stored = [http.get(f"/v1/threads/echo-{n}/messages").text for n in (1, 2)]
    assert events[-1][0] == "end"
    texts = [invoked.text, *stored, *(data for _, data in events), logs.getvalue()]
    for text in texts:
        assert KEY not in text
        assert KEY[5:20] not in text  # not even a piece of it
    messages = invoked.json()["messages"]
    assert messages[0]["tool_calls"][0]["arguments"] == {"query": "look up [REDACTED]"}
    assert messages[1]["content"] == "found: look up [REDACTED]"
    assert messages[-1]["content"] == "Your key is [REDACTED], keep it safe."
    streamed = "".join(json.loads(data).get("delta", "") for event, data in events
                       if event == "delta")  # fmt: skip
    assert streamed == "Your key is [REDACTED], keep it safe."


# ------------------------------------------------------------------------------ the tools


async def test_tool_messages_mask_known_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """A tool that reads a secret (or a model other than OpenAIChat that passed one in the
    arguments) does not get it stored as the tool message or logged by agentflow.tools."""
    token = "tool-" + secrets.token_hex(12)
    register_secret(token)

    @tool
    def reveal() -> str:
        """Say the token."""
        return f"the token is {token}"

    @tool
    def count(times: int) -> str:
        """Count."""
        return str(times)

    calls = [ToolCall("reveal", {}), ToolCall("count", {"times": token})]
    state = AgentState(context=[Message.assistant("", tool_calls=calls)])
    with caplog.at_level(logging.WARNING, logger="agentflow.tools"):
        revealed, refused = await ToolNode([reveal, count])(state, {})
    assert revealed.text == "the token is [REDACTED]"
    assert refused.metadata["status"] == "error"
    for text in (revealed.text, refused.text, caplog.text):
        assert token not in text


# ------------------------------------------------------------------- credentials in the URL

URL_PASSWORD = "pw-" + secrets.token_hex(8)


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_a_base_url_with_credentials_is_refused(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    url = f"https://user:{URL_PASSWORD}@llm.example.com/v1"
    with pytest.raises(ModelConfigError) as info:
        if where == "argument":
            OpenAIChat("gpt-4o-2024-08-06", base_url=url, api_key="sk-x")
        else:
            monkeypatch.setenv("OPENAI_BASE_URL", url)
            OpenAIChat("gpt-4o-2024-08-06", api_key="sk-x")
    message = str(info.value)
    assert URL_PASSWORD not in message
    assert ("base_url" if where == "argument" else "OPENAI_BASE_URL") in message
    assert "credentials" in message and "Basic" in message
    assert "OPENAI_API_KEY" in message and "https://llm.example.com/v1" in message


GRAPH_WITH_URL_CREDENTIALS = """
from agentflow.models import OpenAIChat
from agentflow.tools import create_react_agent

app = create_react_agent(OpenAIChat("gpt-4o-2024-08-06"), [])
"""


def test_doctor_names_the_credentials_in_the_url_without_the_password(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"graph": "graph.react:app"}, GRAPH_WITH_URL_CREDENTIALS)
    env = {
        "OPENAI_API_KEY": "sk-" + secrets.token_hex(16),
        "OPENAI_BASE_URL": f"https://user:{URL_PASSWORD}@llm.example.com/v1",
    }
    run = doctor(project, env=env)
    assert run.exit_code != 0
    assert URL_PASSWORD not in run.output
    assert "OPENAI_BASE_URL contains credentials" in " ".join(run.output.split())
