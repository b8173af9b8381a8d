"""Package boundaries: public names, and what the runtime may import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = {
    "agentflow": ["__version__"],
    "agentflow.graph": [
        "END", "START", "AgentState", "AgentflowError", "CheckpointerError", "Command",
        "CompiledGraph", "GraphError", "GraphRecursionError", "Interrupt", "InvalidInputError",
        "Message", "NodeError", "RunResult", "StateGraph", "StateSnapshot", "StreamChunk",
        "StreamEvent", "ToolCall", "Usage", "emit_delta", "interrupt", "streaming_requested",
    ],
    "agentflow.checkpointer": [
        "Checkpoint", "Checkpointer", "CheckpointerError", "ConflictError", "IdempotencyRecord",
        "InMemoryCheckpointer", "InvalidCursorError", "Page", "PgCheckpointer",
        "SqliteCheckpointer",
        "ThreadInfo", "ThreadSnapshot", "open_checkpointer",
    ],
    "agentflow.utils": [
        "JsonFormatter", "PrettyFormatter", "SecretRedactionFilter", "configure_logging",
        "install_secret_redaction", "mask_secrets",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_are_exactly_all(module: str) -> None:
    mod = __import__(module, fromlist=["__all__"])
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but missing"


def imported_modules(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_runtime_never_imports_the_cli_stack() -> None:
    modules = imported_modules(
        "import agentflow, agentflow.graph, agentflow.checkpointer, agentflow.utils"
    )
    forbidden = {"agentflow_cli", "typer", "rich", "jinja2", "click"}
    assert not forbidden & {m.split(".")[0] for m in modules}


def test_runtime_sources_do_not_mention_the_cli_stack() -> None:
    offenders = []
    for path in (ROOT / "runtime" / "agentflow").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                top = stripped.split()[1].split(".")[0]
                if top in {"agentflow_cli", "typer", "rich", "jinja2", "click"}:
                    offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []


def test_help_does_not_import_the_server_stack() -> None:
    modules = imported_modules(
        "sys.argv = ['agentflow', '--help']\n"
        "from agentflow_cli.main import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    heavy = {"starlette", "uvicorn", "asyncpg", "redis", "httpx", "agentflow.graph"}
    assert not heavy & (modules | {m.split(".")[0] for m in modules})
