"""The public surface: every package of `agentflow` declares it in `__all__` (each name there
exists, nothing public in its `__init__` is left out), and the CLI imports only those names,
from a package, never from a module inside one (`agentflow.runtime.settings`)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import agentflow
import agentflow_cli

CLI_ROOT = Path(agentflow_cli.__file__).parent
# Modules (not packages) the CLI may import from: the error tree, once it exists.
PUBLIC_MODULES = ("agentflow.errors",)
# Packages whose `__init__` is not clean yet (files of other work), with exactly what is wrong:
# a fix makes the test fail until its entry here goes too.
KNOWN: dict[str, list[str]] = {}  # packages allowed to break the rule, with their problems


def packages() -> list[str]:
    found = ["agentflow"]
    for info in pkgutil.walk_packages(agentflow.__path__, "agentflow."):
        if info.ispkg:
            found.append(info.name)
    return sorted(found)


def public_bindings(source: str) -> set[str]:
    """The names an `__init__` binds and means to offer: what it defines (functions, classes,
    assignments) and what it imports from agentflow (also under `if TYPE_CHECKING:`); names
    from the standard library or other distributions (`Path`, `Any`) are its own tools."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.ImportFrom):
                if node.level or (node.module or "").split(".")[0] == "agentflow":
                    for alias in node.names:  # `*`: the names the module's __all__ lists
                        star = alias.name == "*" and node.module
                        module = importlib.import_module(node.module) if star else None
                        names.update(module.__all__ if module else [alias.asname or alias.name])
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)

    visit(ast.parse(source).body)
    return {name for name in names if not name.startswith("_") or name == "__version__"}


def surface_problems(module: ModuleType, source: str) -> list[str]:
    exported = getattr(module, "__all__", None)
    if exported is None:
        return [f"{module.__name__}: no __all__"]
    problems = [f"{module.__name__}: __all__ repeats {n!r}" for n in set(exported)
                if exported.count(n) > 1]  # fmt: skip
    problems += [f"{module.__name__}.{n} is in __all__ but does not exist" for n in exported
                 if not hasattr(module, n)]  # fmt: skip
    missing = sorted(public_bindings(source) - set(exported) - {"__all__"})
    problems += [f"{module.__name__}.{n} is public but not in __all__" for n in missing]
    return problems


def exports(name: str) -> set[str] | None:
    """`__all__` of the agentflow package (or public module) `name`; None if `name` is a
    module inside a package, or does not exist."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    if spec is None or (spec.submodule_search_locations is None and name not in PUBLIC_MODULES):
        return None
    return set(getattr(importlib.import_module(name), "__all__", ()))


def cli_import_problems(source: str, filename: str) -> list[str]:
    """Every import of agentflow in `source` that is not a public name of a package."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "agentflow" and exports(alias.name) is None:
                    problems.append(f"{where}: import {alias.name} (not a package)")
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] != "agentflow":
                continue
            public = exports(node.module)
            if public is None:
                problems.append(f"{where}: from {node.module} import (a module, not a package)")
                continue
            problems += [
                f"{where}: {alias.name} is not in {node.module}.__all__"
                for alias in node.names
                if alias.name not in public
            ]
    return problems


@pytest.mark.parametrize("name", packages())
def test_package_declares_its_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None and module.__file__.endswith("__init__.py")
    assert surface_problems(module, Path(module.__file__).read_text()) == KNOWN.get(name, [])


def test_the_packages_of_the_design_are_all_checked() -> None:
    expected = {"graph", "models", "tools", "checkpointer", "runtime", "utils", "tracing"}
    assert {f"agentflow.{n}" for n in expected} | {"agentflow"} <= set(packages())


def test_cli_imports_only_public_names_of_packages() -> None:
    files = sorted(CLI_ROOT.rglob("*.py"))
    assert CLI_ROOT / "checks" / "persistence.py" in files
    problems = [p for f in files for p in cli_import_problems(f.read_text(), str(f))]
    assert problems == []


def test_the_import_check_refuses_deep_modules_and_unlisted_names() -> None:
    source = (
        "from agentflow.runtime.settings import Settings\n"
        "def f():\n"
        "    from agentflow.runtime import env, load_settings\n"
        "    import agentflow.checkpointer.pg_schema\n"
        "    from agentflow.runtime import Settings\n"
        "    from agentflow_cli.output import CliError\n"
    )
    assert cli_import_problems(source, "x.py") == [
        "x.py:1: from agentflow.runtime.settings import (a module, not a package)",
        "x.py:3: env is not in agentflow.runtime.__all__",
        "x.py:4: import agentflow.checkpointer.pg_schema (not a package)",
    ]


def test_the_surface_check_finds_a_name_left_out_and_one_that_is_not_there() -> None:
    module = ModuleType("agentflow.fake")
    module.__all__ = ["kept", "ghost"]  # type: ignore[attr-defined]
    module.kept = module.forgotten = 1  # type: ignore[attr-defined]
    source = (
        "from pathlib import Path\n"
        "from typing import TYPE_CHECKING\n"
        "from agentflow.graph import END as kept\n"
        "from agentflow.graph.errors import GraphError as _hidden\n"
        "if TYPE_CHECKING:\n"
        "    from agentflow.graph import START as forgotten\n"
        "__all__ = ['kept', 'ghost']\n"
    )
    assert surface_problems(module, source) == [
        "agentflow.fake.ghost is in __all__ but does not exist",
        "agentflow.fake.forgotten is public but not in __all__",
    ]
