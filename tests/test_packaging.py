"""Package boundaries: public names, and what the runtime may import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentflow import __version__

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = {
    "agentflow": [
        "AgentflowError", "ArgumentError", "CheckpointerError", "ConfigError", "ConflictError",
        "GraphError", "GraphRecursionError", "ImportFromStringError", "InvalidCursorError",
        "InvalidInputError", "InvalidItemError", "InvalidLimitError", "MissingVariableError",
        "ModelConfigError", "ModelConnectionError", "ModelError", "ModelHTTPError",
        "ModelLimitError", "ModelResponseError", "ModelTimeoutError", "ModelUnavailableError",
        "NodeError",
        "NothingToResumeError", "RunTimeoutError", "ScriptExhaustedError", "StartupError",
        "__version__",
    ],
    "agentflow.graph": [
        "ANONYMOUS", "END", "START", "AgentState", "AgentflowError", "CheckpointerError", "Command",
        "CompiledGraph", "GraphError", "GraphRecursionError", "Interrupt", "InvalidInputError",
        "Message", "NodeError", "NothingToResumeError", "RunResult", "StateGraph",
        "StateSnapshot", "StreamChunk", "StreamEvent", "ToolCall", "Usage", "emit_delta",
        "interrupt", "new_id", "streaming_requested",
    ],
    "agentflow.checkpointer": [
        "Checkpoint", "Checkpointer", "CheckpointerError", "ConflictError", "IdempotencyRecord",
        "InMemoryCheckpointer", "InvalidCursorError", "InvalidItemError", "Item", "ItemStore",
        "LangGraphSaver", "LangGraphStore", "MemoryItemStore", "Page", "PgCheckpointer",
        "PgItemStore", "SqliteCheckpointer", "SqliteItemStore", "item_store",
        "ThreadInfo", "ThreadSnapshot", "migrations", "open_checkpointer",
    ],
    "agentflow.utils": [
        "JsonFormatter", "PrettyFormatter", "SecretRedactionFilter", "configure_logging",
        "install_secret_redaction", "mask_secrets", "SETTINGS", "VARIABLE_REFERENCE", "ByMode",
        "Kind", "Setting", "children", "is_secret_key", "setting", "unknown_keys",
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


def test_the_graph_core_never_reaches_up_into_the_backends() -> None:
    """The storage contract lives in agentflow.graph.storage; graph, tools and models never
    import agentflow.checkpointer (its backends) or the runtime."""
    offenders = []
    for package in ("graph", "tools", "models"):
        for path in (ROOT / "runtime" / "agentflow" / package).rglob("*.py"):
            for line in path.read_text().splitlines():
                words = line.strip().split()
                upward = ("agentflow.checkpointer", "agentflow.runtime")
                if (
                    words[:1] in (["import"], ["from"])
                    and words[1:2]
                    and words[1].startswith(upward)
                ):
                    offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert offenders == []


def test_help_does_not_import_the_server_stack() -> None:
    modules = imported_modules(
        "sys.argv = ['agentflow', '--help']\n"
        "from agentflow_cli.main import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    heavy = {"starlette", "uvicorn", "asyncpg", "redis", "httpx", "aiohttp", "agentflow.graph"}
    assert not heavy & (modules | {m.split(".")[0] for m in modules})


# -- the wheel ---------------------------------------------------------------------------------

WHEEL = f"agentflow_runner-{__version__}-py3-none-any.whl"
DIST_INFO = f"agentflow_runner-{__version__}.dist-info"
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "agentflow_cli", "runtime/agentflow",
           "templates"]  # fmt: skip
# agentflow_cli imported from the checkout copy in argv[1]; hatchling hidden when argv[3] says
# so (find_spec answers None for a module set to None in sys.modules).
WRITE = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/runtime"]
if sys.argv[3] == "no-hatchling":
    sys.modules["hatchling"] = None
from pathlib import Path
from agentflow_cli.output import CliError
from agentflow_cli.wheel import write_wheel
try:
    print(write_wheel(Path(sys.argv[2])))
except CliError as exc:
    sys.exit(f"error: {exc.message}; hint: {exc.hint}")
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what goes into the wheel, so a test can change it."""
    copy = tmp_path / "checkout"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, copy / name, ignore=ignore)
        else:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, copy / name)
    return copy


def write_wheel_of(
    checkout: Path, out: Path, cache: Path, how: str = "hatchling", **env: str
) -> Path:
    done = subprocess.run(
        [sys.executable, "-c", WRITE, str(checkout), str(out), how], cwd=out.parent,
        env={**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": "", **env},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(done.stderr)
    return Path(done.stdout.strip())


def test_the_wheel_carries_the_licence_and_the_templates(checkout: Path, tmp_path: Path) -> None:
    wheel = write_wheel_of(checkout, tmp_path / "out", tmp_path / "cache")
    assert wheel == tmp_path / "out" / WHEEL
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licence = archive.read(f"{DIST_INFO}/licenses/LICENSE").decode()
        metadata = archive.read(f"{DIST_INFO}/METADATA").decode()
        entry_points = archive.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert licence == (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "agentflow contributors" in licence
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    assert "Name: agentflow-runner" in metadata
    assert "agentflow = agentflow_cli.main:run" in entry_points
    assert "agentflow_cli/templates/build/Dockerfile.jinja" in names
    assert "agentflow/__init__.py" in names and "agentflow_cli/wheel.py" in names
    assert not [n for n in names if n.endswith(".pyc") or n.startswith(("tests/", "bench/"))]


def test_a_checkouts_wheel_is_cached_until_the_checkout_changes(
    checkout: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    write_wheel_of(checkout, tmp_path / "one", cache)
    (cached,) = (cache / "agentflow" / "wheels").glob(f"*/{WHEEL}")
    cached.write_bytes(b"from the cache")  # what the next call copies, if it uses the cache
    assert write_wheel_of(checkout, tmp_path / "two", cache).read_bytes() == b"from the cache"
    readme = checkout / "templates" / "project" / "_base" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nChanged.\n")
    changed = write_wheel_of(checkout, tmp_path / "three", cache)
    with zipfile.ZipFile(changed) as archive:
        text = archive.read("agentflow_cli/templates/project/_base/README.md.jinja").decode()
    assert text.endswith("\nChanged.\n")
    assert len(list((cache / "agentflow" / "wheels").iterdir())) == 2


@pytest.mark.slow
def test_without_hatchling_pip_builds_the_same_wheel(checkout: Path, tmp_path: Path) -> None:
    hatchling = write_wheel_of(checkout, tmp_path / "one", tmp_path / "cache-one")
    pip = write_wheel_of(checkout, tmp_path / "two", tmp_path / "cache-two", how="no-hatchling")
    with zipfile.ZipFile(hatchling) as a, zipfile.ZipFile(pip) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        assert a.read(f"{DIST_INFO}/METADATA") == b.read(f"{DIST_INFO}/METADATA")
    # pip it is: with no package index, pip cannot get hatchling for its build and says so.
    with pytest.raises(AssertionError) as failed:
        write_wheel_of(checkout, tmp_path / "three", tmp_path / "cache-three", how="no-hatchling",
                       PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="")  # fmt: skip
    message = " ".join(str(failed.value).split())
    problem = f"cannot build the wheel of agentflow from the checkout {checkout} (pip wheel)"
    assert f"error: {problem}" in message
    assert "hint: install hatchling in this environment (pip install hatchling)" in message
