"""`agentflow init --template langgraph`: a LangGraph ReAct agent project that runs offline.
Its graph is checked the way its users run it: the project's own tests, and the served
`graph` answering an arithmetic question with a tool call, streamed token by token."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
from typer.testing import CliRunner

from agentflow import __version__
from agentflow.utils import mask_secrets
from agentflow_cli.init import agentflow_requirement, load_template
from agentflow_cli.main import app

runner = CliRunner()
MAJOR, MINOR = (int(part) for part in __version__.split(".")[:2])
REQUIREMENT = f"agentflow-runner[langgraph]>={MAJOR}.{MINOR},<{MAJOR}.{MINOR + 1}"
WHEEL = f"wheels/agentflow_runner-{__version__}-py3-none-any.whl"
FILES = [
    ".env.example", ".gitignore", "README.md", "agentflow.json", "agentflow.schema.json",
    "graph/__init__.py", "graph/agent.py", "graph/offline.py", "graph/tools.py",
    "pyproject.toml", "tests/conftest.py", "tests/test_graph.py", WHEEL,
]  # fmt: skip
# This environment without what would change the project's model.
QUESTION = {"messages": [{"role": "user", "content": "what is 12 + 30?"}]}
ENV = {k: v for k, v in os.environ.items() if k not in {"MODEL", "OPENAI_API_KEY"}}

STREAM = """
import asyncio, json
from graph.agent import graph

async def main():
    chunks = []
    async for chunk, metadata in graph.astream(
        {"messages": [{"role": "user", "content": "what is 12 + 30?"}]},
        stream_mode="messages",
    ):
        chunks.append({
            "node": metadata["langgraph_node"],
            "type": chunk.type,
            "content": chunk.content,
            "tool_calls": getattr(chunk, "tool_calls", []),
            "usage": getattr(chunk, "usage_metadata", None),
        })
    print(json.dumps(chunks))

asyncio.run(main())
"""


def init(*args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["init", *args], input=input, env={"NO_COLOR": "1"})
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    target = tmp_path_factory.mktemp("langgraph") / "lg"
    code, output = init(str(target), "--template", "langgraph", "--name", "lg-agent")
    assert code == 0, output
    return target, output


def run_python(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The project's interpreter (this venv's, which has LangGraph) run in the project."""
    return subprocess.run(
        [sys.executable, *args], cwd=project, env={**ENV, "PYTHONPATH": "", "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_langgraph_template_renders_a_langgraph_project(
    project: tuple[Path, str],
) -> None:
    root, output = project
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == sorted(FILES)
    config = json.loads((root / "agentflow.json").read_text())
    assert config == {
        "$schema": "./agentflow.schema.json",
        "name": "lg-agent",
        "graph": "graph.agent:graph",
        "env": ".env",
        "checkpointer": "sqlite",
    }
    schema = json.loads((root / "agentflow.schema.json").read_text())
    validator = jsonschema_rs.Draft202012Validator(schema)
    assert [error.message for error in validator.iter_errors(config)] == []
    pyproject = (root / "pyproject.toml").read_text()
    assert f'dependencies = ["{REQUIREMENT}", "langchain-core>=1.0"]' in pyproject
    assert 'openai = ["langchain>=1.0", "langchain-openai>=1.0"]' in pyproject
    agent = (root / "graph" / "agent.py").read_text()
    assert "from langgraph.prebuilt import ToolNode, tools_condition" in agent
    assert "import agentflow" not in agent and "from agentflow" not in agent
    readme = (root / "README.md").read_text()
    assert readme.startswith("# lg-agent\n")
    for expected in (f"pip install {WHEEL}", "MODEL=openai:", 'pip install -e ".[openai]"',
                     "client.runs.wait(", "agentflow api"):  # fmt: skip
        assert expected in readme
    assert not re.search(r"\{\{|\{%|\{#", readme + pyproject)
    assert "set MODEL (e.g. openai:gpt-4o-mini-2024-07-18)" in output
    assert "set OPENAI_API_KEY in .env" not in output


def test_env_example_names_the_model_variable_without_secrets(
    project: tuple[Path, str],
) -> None:
    text = (project[0] / ".env.example").read_text()
    assert mask_secrets(text) == text
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert values["MODEL"] == "" and values["OPENAI_API_KEY"] == ""


def test_the_generated_project_passes_its_own_tests_and_lint(
    project: tuple[Path, str],
) -> None:
    root = project[0]
    tests = run_python(root, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"\b1\d passed", tests.stdout), tests.stdout
    assert "warning" not in tests.stdout.lower()
    lint = run_python(root, "-m", "ruff", "check", "--no-cache", "--select",
                      "E,F,W,I,B,UP,SIM,RUF,ASYNC", ".")  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatting = run_python(root, "-m", "ruff", "format", "--no-cache", "--check", ".")
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr


def test_the_served_graph_answers_offline_with_a_tool_call_streamed_in_chunks(
    project: tuple[Path, str],
) -> None:
    result = run_python(project[0], "-W", "error", "-c", STREAM)
    assert result.returncode == 0, result.stdout + result.stderr
    chunks = json.loads(result.stdout)
    calls = [c for chunk in chunks for c in chunk["tool_calls"]]
    assert [(c["name"], c["args"]) for c in calls] == [("add", {"a": 12, "b": 30})]
    tools = [chunk for chunk in chunks if chunk["node"] == "tools"]
    assert [(t["type"], t["content"]) for t in tools] == [("tool", "42")]
    after = chunks[chunks.index(tools[0]) + 1 :]
    tokens = [c["content"] for c in after if c["type"] == "AIMessageChunk" and c["content"]]
    assert len(tokens) >= 3  # the answer arrives in several chunks
    assert "".join(tokens) == "12 + 30 = 42"
    usage = [c["usage"] for c in after if c["usage"]]
    assert usage and usage[0]["output_tokens"] > 0


def test_the_langgraph_template_is_offered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agentflow_cli.init._stdin_is_tty", lambda: True)
    target = tmp_path / "proj"
    code, output = init(str(target), input="lg-bot\nlanggraph\n")
    assert code == 0, output
    assert f"langgraph {load_template('langgraph').description}" in output
    assert "LangGraph ReAct agent" in output
    config = json.loads((target / "agentflow.json").read_text())
    assert (config["name"], config["graph"]) == ("lg-bot", "graph.agent:graph")


def test_the_requirement_carries_the_templates_extras() -> None:
    assert agentflow_requirement("1.4.2", extras=["langgraph"]) == (
        "agentflow-runner[langgraph]>=1.4,<1.5"
    )
    assert agentflow_requirement("1.4.2", extras=["langgraph", "otel"]) == (
        "agentflow-runner[langgraph,otel]>=1.4,<1.5"
    )
    assert agentflow_requirement(extras=["langgraph"]) == REQUIREMENT


def test_doctor_passes_and_api_serves_the_project_to_both_apis(
    project: tuple[Path, str],
) -> None:
    """What init's next steps promise: doctor is green; `agentflow api` answers a LangGraph
    client (langgraph-sdk's runs.wait) and agentflow's own API (what the playground calls)."""
    from langgraph_sdk import get_sync_client

    from tests.cli.test_init import serve, server_env, stop

    target, _ = project
    doctor = subprocess.run(
        [sys.executable, "-m", "agentflow_cli", "doctor"], cwd=target, env=server_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "LangGraph compiled graph" in doctor.stdout
    proc, base = serve(target, server_env())
    try:
        with get_sync_client(url=base) as client:
            thread = client.threads.create()
            values = client.runs.wait(thread["thread_id"], "agent", input=QUESTION)
            assert "42" in values["messages"][-1]["content"]
            assert any(m.get("tool_calls") for m in values["messages"])
        streamed = httpx.post(f"{base}/v1/graph/stream", json=QUESTION, timeout=30)
        events = re.findall(r"^event: (\w+)", streamed.text, re.MULTILINE)
        assert events[0] == "metadata" and events[-1] == "end" and "delta" in events
        thread_id = re.search(r'"thread_id":"([^"]+)"', streamed.text)
        assert thread_id is not None
        page = httpx.get(f"{base}/v1/threads/{thread_id[1]}/messages", timeout=10).json()
        assert page["total"] >= 3 and "42" in page["messages"][-1]["content"]
    finally:
        stop(proc)
