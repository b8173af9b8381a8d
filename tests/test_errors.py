"""The one error tree: `agentflow.errors` draws it in its docstring exactly as the classes are,
holds every error class of the library, imports nothing from agentflow, and is exported at
the top level; the old import paths still name the same classes."""

from __future__ import annotations

import ast
import gc
import importlib
import pkgutil
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import agentflow
from agentflow import errors

ROOT = Path(__file__).resolve().parents[1]
ERRORS_FILE = ROOT / "runtime" / "agentflow" / "errors.py"

# Exception classes of the library that are not in the tree, each with the reason.
OUTSIDE_THE_TREE = {
    "agentflow.runtime.errors.ApiError": "an HTTP error response the server renders",
    "agentflow.graph.command.GraphInterrupt": "a BaseException that pauses a run: control flow",
    "agentflow.utils.config.Invalid": "a kind's refusal, always turned into a ConfigError",
}

# One line of the drawing: the connector prefix, the class, "(+ Base, ...)", a description.
LINE = re.compile(r"^(?P<prefix>[ │├└─]*)(?P<name>[A-Z]\w*)(?: \(\+ (?P<extra>[\w, ]+)\))?(?:\s|$)")


@dataclass(frozen=True)
class Drawn:
    parent: str | None
    extra_bases: tuple[str, ...]


def drawing(doc: str) -> dict[str, Drawn]:
    """The tree in the docstring: from the line `AgentflowError` to the first blank line.
    A class's parent is the nearest line above it whose name starts further left."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("AgentflowError"))
    tree: dict[str, Drawn] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name)
    for line in lines[start:]:
        if not line.strip():
            break
        match = LINE.match(line)
        assert match, f"not a line of the tree: {line!r}"
        column, name = len(match["prefix"]), match["name"]
        while stack and stack[-1][0] >= column:
            stack.pop()
        assert name not in tree, f"{name} is drawn twice"
        extra = tuple(b.strip() for b in (match["extra"] or "").split(",") if b.strip())
        tree[name] = Drawn(stack[-1][1] if stack else None, extra)
        stack.append((column, name))
    return tree


def import_every_module() -> None:
    """Import every module of the library, so every class defined anywhere in it exists."""
    for info in pkgutil.walk_packages(agentflow.__path__, "agentflow."):
        importlib.import_module(info.name)


def library_classes(root: type[BaseException]) -> list[type[BaseException]]:
    """`root` and its subclasses defined in the library (tests may subclass them too)."""
    found, todo = [], [root]
    while todo:
        cls = todo.pop()
        if cls.__module__.split(".")[0] == "agentflow" and cls not in found:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def code_tree() -> dict[str, Drawn]:
    tree: dict[str, Drawn] = {}
    for cls in library_classes(errors.AgentflowError):
        ours = [b for b in cls.__bases__ if issubclass(b, errors.AgentflowError)]
        others = tuple(b.__name__ for b in cls.__bases__ if b not in ours)
        if cls is errors.AgentflowError:
            tree[cls.__name__] = Drawn(None, ())
            continue
        assert len(ours) == 1, f"{cls.__name__} has several parents in the tree: {ours}"
        tree[cls.__name__] = Drawn(ours[0].__name__, others)
    return tree


def test_the_docstring_draws_the_tree_the_code_has() -> None:
    import_every_module()
    assert errors.__doc__ is not None
    assert drawing(errors.__doc__) == code_tree()


def test_the_drawing_parser_sees_a_wrong_parent_a_missing_class_and_a_missing_base() -> None:
    """The comparison above fails when the drawing and the code differ."""
    assert errors.__doc__ is not None
    drawn = drawing(errors.__doc__)
    assert drawn["MissingVariableError"] == Drawn("ImportFromStringError", ())
    assert drawn["ModelLimitError"] == Drawn("ModelUnavailableError", ())
    assert drawn["InvalidCursorError"] == Drawn("CheckpointerError", ("ValueError",))
    assert drawn["RunTimeoutError"] == Drawn("AgentflowError", ())
    moved = errors.__doc__.replace(" │    └── StartupError", " │         └── StartupError")
    assert drawing(moved)["StartupError"] == Drawn("ImportFromStringError", ())
    dropped = errors.__doc__.replace(" (+ ValueError)    a model's", "    a model's")
    assert drawing(dropped)["ArgumentError"] == Drawn("AgentflowError", ())
    missing = "\n".join(line for line in errors.__doc__.splitlines() if "ModelLimit" not in line)
    assert "ModelLimitError" not in drawing(missing)


def test_a_new_class_that_is_not_drawn_fails_the_comparison() -> None:
    extra = type("UndrawnError", (errors.GraphError,), {"__module__": "agentflow.errors"})
    try:
        assert "UndrawnError" in code_tree()
        assert errors.__doc__ is not None
        assert drawing(errors.__doc__) != code_tree()
    finally:
        del extra
        gc.collect()  # the class registry holds subclasses weakly
    assert "UndrawnError" not in code_tree()


def test_every_error_class_of_the_library_lives_in_agentflow_errors() -> None:
    import_every_module()
    elsewhere = []
    for cls in library_classes(BaseException):
        name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__ == "agentflow.errors" or cls.__name__.startswith("_"):
            continue
        if name not in OUTSIDE_THE_TREE:
            elsewhere.append(name)
    assert elsewhere == []
    for name in OUTSIDE_THE_TREE:
        module, _, attr = name.rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
        assert not issubclass(cls, errors.AgentflowError), name


def test_the_http_error_is_not_a_library_error() -> None:
    from agentflow.runtime import ApiError

    assert not issubclass(ApiError, errors.AgentflowError)
    assert "ApiError" not in errors.__all__


def test_errors_imports_nothing_from_agentflow() -> None:
    tree = ast.parse(ERRORS_FILE.read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert imported and not [m for m in imported if m and m.split(".")[0] == "agentflow"]
    probe = "import sys, agentflow.errors; print(sorted(m for m in sys.modules if 'agentf' in m))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "['agentflow', 'agentflow.errors']"


def test_every_class_of_the_tree_is_exported_here_and_at_the_top_level() -> None:
    classes = {c.__name__ for c in library_classes(errors.AgentflowError)}
    assert set(errors.__all__) == classes
    assert set(agentflow.__all__) == classes | {"__version__"}
    for name in errors.__all__:
        assert getattr(agentflow, name) is getattr(errors, name)


OLD_PATHS = {
    "agentflow.graph": ["AgentflowError", "CheckpointerError", "GraphError",
                        "GraphRecursionError", "InvalidInputError", "NodeError",
                        "NothingToResumeError"],
    "agentflow.graph.errors": ["AgentflowError", "CheckpointerError", "GraphError",
                               "GraphRecursionError", "InvalidInputError", "NodeError",
                               "NothingToResumeError"],
    "agentflow.models": ["ModelConfigError", "ModelError", "ModelHTTPError",
                         "ModelUnavailableError"],
    "agentflow.models.errors": ["ModelConfigError", "ModelConnectionError", "ModelError",
                                "ModelHTTPError", "ModelLimitError", "ModelResponseError",
                                "ModelTimeoutError", "ModelUnavailableError",
                                "ScriptExhaustedError"],
    "agentflow.models.limits": ["ModelLimitError"],
    "agentflow.checkpointer": ["CheckpointerError", "ConflictError", "InvalidCursorError"],
    "agentflow.graph.storage": ["ConflictError", "InvalidCursorError", "InvalidLimitError"],
    "agentflow.utils.config": ["ConfigError"],
    "agentflow.runtime": ["ConfigError", "ImportFromStringError", "StartupError"],
    "agentflow.runtime.settings": ["ConfigError"],
    "agentflow.runtime.loader": ["ImportFromStringError", "MissingVariableError"],
    "agentflow.runtime.startup": ["StartupError"],
    "agentflow.runtime.runs": ["RunTimeoutError"],
    "agentflow.tools": ["ArgumentError"],
    "agentflow.tools.schema": ["ArgumentError"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(OLD_PATHS))
def test_old_import_paths_name_the_same_classes(module: str) -> None:
    mod = importlib.import_module(module)
    for name in OLD_PATHS[module]:
        assert getattr(mod, name) is getattr(errors, name), f"{module}.{name}"
        if hasattr(mod, "__all__"):
            assert name in mod.__all__, f"{module}.__all__ lacks {name}"


def test_behaviour_kept() -> None:
    config = errors.ConfigError("must be a string", where="agentflow.json: graph", fix="quote it")
    assert str(config) == "agentflow.json: graph: must be a string. Fix: quote it"
    assert (config.problem, config.where, config.fix) == (
        "must be a string", "agentflow.json: graph", "quote it",
    )  # fmt: skip

    @dataclass(frozen=True)
    class Problem:
        code: str
        problem: str
        fix: str

    startup = errors.StartupError.of(Problem("AF-X-001", "no port", "free it"))
    assert (startup.code, str(startup)) == ("AF-X-001", "no port. Fix: free it")

    cause = KeyError("k")
    node = errors.NodeError("agent", cause)
    assert (node.node, node.error) == ("agent", cause)
    assert str(node) == "node 'agent' failed: KeyError: 'k'"

    http = errors.ModelHTTPError(429, "slow down", model="m", url="u", retryable=True,
                                 retry_after=2.0, hint="wait")  # fmt: skip
    assert str(http) == "model 'm': HTTP 429 from u: slow down (wait)"
    assert (http.retryable, http.retry_after, http.status_code) == (True, 2.0, 429)
    assert http.reason == "HTTP 429 from u: slow down (wait)"
    assert errors.ModelError("x").retryable is False

    timeout = errors.ModelTimeoutError("late", errors=[cause])
    assert (timeout.retryable, timeout.last_error, timeout.errors) == (True, cause, [cause])
    assert errors.ModelConnectionError("down").retryable is True
    assert errors.ModelLimitError("busy").retryable is False
    assert errors.ModelUnavailableError("gone").last_error is None

    for cls in (errors.ArgumentError, errors.InvalidCursorError, errors.InvalidLimitError):
        assert issubclass(cls, ValueError) and issubclass(cls, errors.AgentflowError)
    with pytest.raises(errors.AgentflowError):
        raise errors.RunTimeoutError
