"""Every record that reaches a handler is redacted, whoever logged it: graph code's own
loggers, the root logger, httpx, uvicorn. Production writes JSON lines, development the
pretty format; values the settings load as secrets are masked wherever they appear."""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph
from agentflow.runtime import load_settings
from agentflow.utils import SecretRedactionFilter, configure_logging
from agentflow.utils.logging import ROOT_HANDLER_NAME
from agentflow.utils.secrets import KnownSecretStream, mask_secrets, register_secret
from tests.runtime.conftest import ServerFactory, make_server, user_message, write_project

__all__ = ["make_server"]  # a fixture, used by name

JWT_SECRET = secrets.token_hex(32)  # no pattern matches 64 hex digits: only the registry can
OPENAI_KEY = "sk-proj-" + secrets.token_hex(16)
BEARER = "tok" + secrets.token_hex(12)
ROOT_PASSWORD = "pw-" + secrets.token_hex(8)
SIGNATURE = secrets.token_hex(20)
SIG = secrets.token_hex(12)
LEAKS = (JWT_SECRET, OPENAI_KEY, BEARER, ROOT_PASSWORD, SIGNATURE, SIG)


def chatty_graph() -> CompiledGraph:
    """A node that logs secrets the way graph code does, and calls a signed URL with httpx."""

    async def chat(state: AgentState) -> Message:
        probe = state.context[-1].text  # a URL of the server itself, with a signature
        logging.getLogger("myapp").warning(
            "calling the provider api_key=%s Authorization: Bearer %s", OPENAI_KEY, BEARER
        )
        logging.getLogger().warning("root logger: password=%s", ROOT_PASSWORD)
        logging.getLogger("myapp").info("the JWT secret is %s", JWT_SECRET)
        try:
            raise RuntimeError(f"could not sign with {JWT_SECRET}")
        except RuntimeError:
            logging.getLogger("myapp.jobs").exception("signing failed")
        async with httpx.AsyncClient() as http:
            await http.get(probe)
        return Message.assistant("done")

    graph = StateGraph()
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    graph.add_edge("chat", END)
    return graph.compile(name="chatty")


def token(sub: str) -> dict[str, str]:
    claims = {"sub": sub, "exp": int(time.time()) + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"}


def capture_stderr(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """configure_logging binds its handler to sys.stderr as it is when the app starts."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    return buffer


def wait_for(buffer: io.StringIO, found: Callable[[str], bool], timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not found(buffer.getvalue()):
        if time.monotonic() > deadline:
            raise AssertionError(f"log never matched; it holds:\n{buffer.getvalue()}")
        time.sleep(0.02)
    return buffer.getvalue()


def run_chatty(make_server: ServerFactory, env: dict[str, str]) -> str:
    url = make_server(config={"auth": "jwt"}, env=env, graph=chatty_graph())
    probe = f"{url}/ping?X-Amz-Signature={SIGNATURE}&X-Amz-Expires=60&sig={SIG}"
    with httpx.Client(base_url=url, timeout=30, headers=token("logger")) as http:
        response = http.post("/v1/graph/invoke", json=user_message(probe, thread_id="t-log"))
    assert response.status_code == 200, response.text
    return url


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    """The apps reconfigure the root logger; put it back for the tests that follow."""
    root, agentflow = logging.getLogger(), logging.getLogger("agentflow")
    saved = (list(root.handlers), root.level, list(agentflow.handlers), agentflow.level)
    yield
    root.handlers[:], agentflow.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    agentflow.setLevel(saved[3])


def test_production_logs_every_logger_as_json_without_secrets(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory, restore_root_logging: None
) -> None:
    logs = capture_stderr(monkeypatch)
    run_chatty(make_server, {"MODE": "production", "JWT_SECRET_KEY": JWT_SECRET})
    text = wait_for(logs, lambda t: "agentflow.runtime.access" in t and "HTTP Request" in t)

    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    for leak in LEAKS:
        assert leak not in text, leak
    by_logger: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_logger.setdefault(line["logger"], []).append(line)

    [provider_call, jwt_line] = by_logger["myapp"]
    assert provider_call["level"] == "WARNING"
    assert "api_key=[REDACTED]" in provider_call["message"]
    assert "Bearer [REDACTED]" in provider_call["message"]
    assert jwt_line["message"] == "the JWT secret is [REDACTED]"
    [failure] = by_logger["myapp.jobs"]
    assert failure["exc_type"] == "RuntimeError"
    assert "could not sign with [REDACTED]" in failure["exc"]
    [root_line] = by_logger["root"]
    assert root_line["message"] == "root logger: password=[REDACTED]"
    [request] = [r for r in by_logger["httpx"] if "/ping" in r["message"]]  # the node's call
    assert "X-Amz-Signature=[REDACTED]" in request["message"]
    assert "sig=[REDACTED]" in request["message"]
    assert any("Application startup complete" in r["message"] for r in by_logger["uvicorn.error"])
    # exactly one line per record: the access summary of the one request is written once
    assert len([r for r in by_logger["agentflow.runtime.access"] if r.get("path")]) == 1


def test_development_logs_are_pretty_and_redacted(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory, restore_root_logging: None
) -> None:
    logs = capture_stderr(monkeypatch)
    run_chatty(make_server, {"JWT_SECRET_KEY": JWT_SECRET})
    text = wait_for(logs, lambda t: "HTTP Request" in t)
    for leak in LEAKS:
        assert leak not in text, leak
    assert "myapp: calling the provider api_key=[REDACTED] Authorization: Bearer [REDACTED]" in (
        text
    )
    assert "root: root logger: password=[REDACTED]" in text
    assert "myapp: the JWT secret is [REDACTED]" in text
    assert text.count("root logger: password") == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[-1])


def test_configure_logging_keeps_one_root_handler(restore_root_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(fmt="json", stream=first)
    configure_logging(fmt="json", stream=second)
    configure_logging(level="WARNING", fmt="pretty", stream=second)
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == ROOT_HANDLER_NAME]
    assert len(ours) == 1
    assert not logging.getLogger("agentflow").handlers
    logging.getLogger("agentflow.x").warning("once password=%s", ROOT_PASSWORD)
    logging.getLogger("elsewhere").warning("twice? token=%s", BEARER)
    out = second.getvalue()
    assert first.getvalue() == ""
    assert out.count("once password=[REDACTED]") == 1
    assert out.count("twice? token=[REDACTED]") == 1
    assert ROOT_PASSWORD not in out and BEARER not in out


def test_other_root_handlers_are_redacted_too(restore_root_logging: None) -> None:
    """A handler the graph's module added (logging.basicConfig) gets the redaction too."""
    theirs_stream = io.StringIO()
    theirs = logging.StreamHandler(theirs_stream)
    logging.getLogger().addHandler(theirs)
    configure_logging(fmt="json", stream=io.StringIO())
    assert any(isinstance(f, SecretRedactionFilter) for f in theirs.filters)
    logging.getLogger("myapp").warning("key api_key=%s", OPENAI_KEY)
    assert OPENAI_KEY not in theirs_stream.getvalue()


def test_library_errors_stay_one_line(restore_root_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream)
    try:
        raise ConnectionRefusedError(f"redis://:{ROOT_PASSWORD}@cache:6379 refused")
    except ConnectionRefusedError:
        logging.getLogger("redis.connection").warning("reconnecting", exc_info=True)
        logging.getLogger("myapp").warning("mine", exc_info=True)
    library, mine = (json.loads(line) for line in stream.getvalue().splitlines())
    assert library["message"].startswith("reconnecting (ConnectionRefusedError: redis://:")
    assert "exc" not in library
    assert "exc" in mine  # graph code keeps its traceback
    assert ROOT_PASSWORD not in stream.getvalue()


# ------------------------------------------------------------------------- known secret values


def test_registered_values_are_masked_anywhere() -> None:
    value = "Zq8" + secrets.token_hex(10)
    assert mask_secrets(f"plain {value} text") == f"plain {value} text"
    register_secret(value)
    assert mask_secrets(f"plain {value} text") == "plain [REDACTED] text"
    assert mask_secrets(f"x{value}y") == "x[REDACTED]y"


def test_a_stream_masks_a_value_split_anywhere() -> None:
    value = "Qx7-" + secrets.token_hex(8)
    register_secret(value)
    text = f"the key is {value}, and again:{value}"
    for cut in range(1, len(text)):
        for size in (1, 3, cut):
            pieces = [text[i : i + size] for i in range(0, len(text), size)]
            stream = KnownSecretStream()
            shown = [stream.feed(piece) for piece in pieces] + [stream.flush()]
            assert "".join(shown) == "the key is [REDACTED], and again:[REDACTED]"
            assert not any(value[:6] in piece for piece in shown)


def test_a_stream_without_secrets_keeps_its_pieces() -> None:
    register_secret("Tw-" + secrets.token_hex(8))
    stream = KnownSecretStream()
    assert [stream.feed(p) for p in ["One", " two", "OTw", " Tw"]] == ["One", " two", "OTw", " "]
    assert stream.feed("o!") == "Two!"  # "Tw" began a word: held until it was not the secret
    assert stream.feed(" Tw") == " "
    assert stream.flush() == "Tw"


@pytest.mark.parametrize("value", ["short1", "postgres", "password", "changeme", "", None])
def test_short_values_and_words_are_not_registered(value: str | None) -> None:
    register_secret(value)
    text = "the postgres password changeme short1 checkpointer"
    assert mask_secrets(text) == text


def test_settings_register_their_secrets(tmp_path: Any) -> None:
    password = "Pg-" + secrets.token_hex(8)
    redis_password = "Rd-" + secrets.token_hex(8)
    jwt_secret = secrets.token_hex(32)
    path = write_project(tmp_path, {"checkpointer": "postgres", "auth": "jwt"})
    load_settings(
        path,
        environ={
            "DATABASE_URL": f"postgresql://app:{password}@db:5432/agents",
            "REDIS_URL": f"redis://:{redis_password}@cache:6379/0",
            "JWT_SECRET_KEY": jwt_secret,
        },
    )
    said = f"auth failed for {password}; redis {redis_password}; jwt {jwt_secret}"
    assert mask_secrets(said) == "auth failed for [REDACTED]; redis [REDACTED]; jwt [REDACTED]"
    # the rest of the URL is not a secret
    assert mask_secrets("host db:5432 database agents") == "host db:5432 database agents"
