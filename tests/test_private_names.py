"""No private name (``_x``) of a dependency anywhere in the project's code.

Every ``.py`` file under runtime/agentflow, agentflow_cli and bench is parsed, and every use of
a leading-underscore name on something other than ``self``/``cls`` is found: ``x._y``,
``getattr(x, "_y")`` (also hasattr/setattr/delattr), ``from pkg import _y`` and
``import pkg._y``. Each use is named by its owner: the module or class it is reached through,
as that file imports or defines it (``sys._current_frames``,
``agentflow.graph.CompiledGraph._run_node``); a local variable is named by the function that
uses it (``agentflow.runtime.settings.Secret.__eq__: other._value``). A use is allowed only
when its owner is listed in ``ALLOWED``, with the reason, so any new private use -- of a
dependency, or of one of our own modules from outside it -- fails here. The namedtuple
methods (``_replace``, ``_asdict``, ...) are documented API and allowed on anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("runtime/agentflow", "agentflow_cli", "bench")

ALLOWED: dict[str, str] = {
    "sys._current_frames": "stdlib, documented in the sys module (the watchdog's stack dump)",
    "os._exit": "stdlib, documented in the os module (a probe child leaves without cleanup)",
    "agentflow.graph.compiled.CompiledGraph._run_node": "ours: the watchdog finds its frames",
    "agentflow.runtime.settings.Secret.__eq__: other._value": "ours: a Secret compares another",
}
# documented public methods and attributes of collections.namedtuple instances
NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "hasattr", "setattr", "delattr"})


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path: Path) -> str:
    """The import name of a scanned file (runtime/ is not part of it)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "runtime":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


class Scan(ast.NodeVisitor):
    """Collects ``owner.name -> [file:line]`` for every private name used in one module."""

    def __init__(self, module: str, is_package: bool, where: str) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.where = where
        self.bound: dict[str, str] = {}  # a module-level name -> what it stands for
        self.scope: list[str] = []
        self.found: dict[str, list[str]] = {}

    def add(self, key: str, node: ast.AST) -> None:
        self.found.setdefault(key, []).append(f"{self.where}:{getattr(node, 'lineno', 0)}")

    # -- what names stand for ----------------------------------------------------------------

    def absolute(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        base = self.package.split(".")
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, module] if module else base)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if any(is_private(part) for part in alias.name.split(".")):
                self.add(alias.name, node)
            if alias.asname:
                self.bound[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.bound[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = self.absolute(node.module, node.level)
        if any(is_private(part) for part in source.split(".")):
            self.add(source, node)
        for alias in node.names:
            if is_private(alias.name):
                self.add(f"{source}.{alias.name}", node)
            self.bound[alias.asname or alias.name] = f"{source}.{alias.name}"

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if not self.scope:
            self.bound.setdefault(node.name, f"{self.module}.{node.name}")
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def owner(self, base: ast.expr) -> str | None:
        """Who ``base`` is: a module or class named by its import or definition; None for
        ``self``/``cls``; otherwise the expression where it is used."""
        if isinstance(base, ast.Name):
            if base.id in ("self", "cls"):
                return None
            if base.id in self.bound:
                return self.bound[base.id]
        elif isinstance(base, ast.Attribute):
            above = self.owner(base.value)
            if above is not None and ":" not in above:
                return f"{above}.{base.attr}"
        place = ".".join([self.module, *self.scope])
        return f"{place}: {ast.unparse(base)}"

    def use(self, base: ast.expr, name: str, node: ast.AST) -> None:
        if not is_private(name) or name in NAMEDTUPLE_API:
            return
        owner = self.owner(base)
        if owner is not None:
            self.add(f"{owner}.{name}", node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.use(node.value, node.attr, node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func, args = node.func, node.args
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_FUNCTIONS and len(args) >= 2:
            name = args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                self.use(args[0], name.value, node)
        self.generic_visit(node)


def scan_module(source: str, module: str, is_package: bool, where: str) -> dict[str, list[str]]:
    scan = Scan(module, is_package, where)
    tree = ast.parse(source, filename=where)
    for statement in tree.body:  # module-level imports first: a function may use a later one
        if isinstance(statement, ast.Import | ast.ImportFrom):
            scan.visit(statement)
    scan.found.clear()
    scan.visit(tree)
    return scan.found


def scanned_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).parts
            if not any(part.startswith(".") or part == "__pycache__" for part in relative):
                yield path


def scan_project() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in scanned_files():
        source = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        uses = scan_module(source, module_name(path), path.name == "__init__.py", where)
        for key, places in uses.items():
            found.setdefault(key, []).extend(places)
    return found


def test_no_private_name_of_a_dependency() -> None:
    found = scan_project()
    unexpected = {key: places for key, places in found.items() if key not in ALLOWED}
    assert not unexpected, "private names used (owner.name: where):\n" + "\n".join(
        f"  {key}: {', '.join(places)}" for key, places in sorted(unexpected.items())
    )
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"ALLOWED lists names nothing uses any more: {stale}"


SAMPLE = """
import sys
import opentelemetry.sdk._configuration
from opentelemetry.context import _RUNTIME_CONTEXT
from opentelemetry import trace as trace_api
from .sibling import _helper
from agentflow.graph import CompiledGraph


class Mine:
    def __init__(self, tracer):
        self._own = tracer._span_limits
        cls = type(self)
        cls._counter = 1

    def same(self, other):
        return other._value, self._own


def helper(parts):
    key = getattr(trace_api, "_SPAN_KEY", "current-span")
    hasattr(parts, "_ok")
    frames = sys._current_frames()
    code = CompiledGraph._run_node.__code__
    return parts._replace(path="/"), parts._asdict(), parts.__dict__, trace_api.Span
"""


def test_the_scan_finds_every_form_of_private_use() -> None:
    found = scan_module(SAMPLE, "agentflow.tracing.sample", False, "sample.py")
    assert sorted(found) == sorted(
        [
            "opentelemetry.sdk._configuration",
            "opentelemetry.context._RUNTIME_CONTEXT",
            "agentflow.tracing.sibling._helper",
            "agentflow.tracing.sample.Mine.__init__: tracer._span_limits",
            "agentflow.tracing.sample.Mine.same: other._value",
            "opentelemetry.trace._SPAN_KEY",
            "agentflow.tracing.sample.helper: parts._ok",
            "sys._current_frames",
            "agentflow.graph.CompiledGraph._run_node",
        ]
    )
