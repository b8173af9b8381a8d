"""Import `module:attr` from the user's project, with errors that say how to fix them."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow.errors import ImportFromStringError as ImportFromStringError
from agentflow.errors import MissingVariableError as MissingVariableError
from agentflow.graph.builder import StateGraph
from agentflow.graph.compiled import CompiledGraph

if TYPE_CHECKING:
    from agentflow.runtime.lgapi.adapter import LangGraphAdapter

    # What the server runs: an agentflow compiled graph or a LangGraph one (adapted).
    ServedGraph = CompiledGraph | LangGraphAdapter
else:
    ServedGraph = Any


def import_object(spec: str, project_dir: Path, *, what: str, key: str) -> Any:
    """Import `spec` ("module.path:attr.path", or LangGraph's "./path/to/file.py:attr")
    with `project_dir` first on sys.path."""
    module_name, _, attr_path = spec.partition(":")
    if module_name.endswith(".py"):  # a file of the project, as langgraph.json names graphs
        module_name = module_name.removeprefix("./").removesuffix(".py").replace("/", ".")
    if not module_name or not attr_path:
        raise ImportFromStringError(
            f"{what} must look like 'module.path:attribute', got {spec!r}", where=key
        )
    root = str(project_dir)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            file_hint = module_name.replace(".", "/") + ".py"
            raise ImportFromStringError(
                f"cannot import module {module_name!r} for the {what}: no such module in "
                f"{project_dir}",
                where=key,
                fix=f"check the path in {key}; it should name {file_hint} (or a package) "
                "relative to the directory of agentflow.json",
            ) from None
        raise ImportFromStringError(
            f"importing {module_name!r} failed: it imports {exc.name!r}, which is not installed",
            where=key,
            fix=f"install it in this environment (e.g. `pip install {exc.name}`) and add it "
            "to your project's dependencies",
        ) from None
    except Exception as exc:
        _refuse_missing_variable(exc, f"importing {module_name!r}", project_dir, key)
        raise ImportFromStringError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc} "
            f"({_user_frame(exc, project_dir)})",
            where=key,
            fix="fix the error in that file; run `agentflow doctor` to check the project",
        ) from None
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            names = sorted(n for n in vars(module) if not n.startswith("_"))
            raise ImportFromStringError(
                f"module {module_name!r} has no attribute {attr_path!r}",
                where=key,
                fix=f"point {key} at one of its names: {', '.join(names[:20]) or '(none)'}",
            ) from None
    return target


def missing_variable(exc: BaseException) -> str | None:
    """The variable's name when `exc` is the KeyError of reading an unset one from
    `os.environ` (raised inside the mapping's own `__getitem__`)."""
    if not isinstance(exc, KeyError) or len(exc.args) != 1 or not isinstance(exc.args[0], str):
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    last = frames[-1]
    inside_environ = last.name == "__getitem__" and (
        last.filename == "<frozen os>" or Path(last.filename).name == "os.py"
    )
    return exc.args[0] if inside_environ else None


def _refuse_missing_variable(exc: Exception, doing: str, project_dir: Path, key: str) -> None:
    """Raise MissingVariableError when `exc` is an unset variable read by the user's code."""
    name = missing_variable(exc)
    if name is None:
        return
    raise MissingVariableError(
        f"{doing} needs the environment variable {name}, which is not set "
        f"({_user_frame(exc, project_dir)})",
        where=key,
        fix=f"set {name} in the project's dotenv file (the one agentflow.json names with "
        f'"env", e.g. .env) or export it, and list it in agentflow.json\'s "required_env" '
        "so a missing value is reported before the server starts",
    ) from None


def load_graph(
    spec: str, project_dir: Path, *, key: str = "agentflow.json: graph"
) -> CompiledGraph:
    """Import the agentflow compiled graph named by `spec`. A zero-argument factory is
    called. A LangGraph graph is refused with what serves it (`load_served_graph`)."""
    target = load_served_graph(spec, project_dir, key=key)
    if not isinstance(target, CompiledGraph):
        raise ImportFromStringError(
            f"{spec} is a LangGraph graph; this command runs agentflow graphs only",
            where=key,
            fix="serve it with `agentflow api` or `agentflow play` and talk to it with the "
            "langgraph-sdk client",
        )
    return target


def load_served_graph(
    spec: str, project_dir: Path, *, key: str = "agentflow.json: graph"
) -> CompiledGraph | LangGraphAdapter:
    """Import the graph named by `spec`: an agentflow compiled graph, or a LangGraph one
    (wrapped so the run service can run it). A zero-argument factory is called."""
    target = import_object(spec, project_dir, what="graph", key=key)
    if isinstance(target, StateGraph) or _langgraph_kind(target) == "builder":
        raise ImportFromStringError(
            f"{spec} is a StateGraph that was never compiled",
            where=key,
            fix="export the compiled graph: app = graph.compile()",
        )
    if not isinstance(target, CompiledGraph) and not _langgraph_kind(target) and callable(target):
        try:
            target = target()
        except Exception as exc:
            _refuse_missing_variable(exc, f"the graph factory {spec}", project_dir, key)
            raise ImportFromStringError(
                f"calling the graph factory {spec} raised {type(exc).__name__}: {exc}",
                where=key,
            ) from None
    if isinstance(target, CompiledGraph):
        return target
    if _langgraph_kind(target) == "compiled":
        from agentflow.runtime.lgapi.adapter import LangGraphAdapter

        return LangGraphAdapter(target)
    raise ImportFromStringError(
        f"{spec} is a {type(target).__name__}, not a compiled graph",
        where=key,
        fix="point it at the result of StateGraph(...).compile() (agentflow or LangGraph)",
    )


def _langgraph_kind(target: Any) -> str | None:
    """ "compiled" for a LangGraph compiled graph (a Pregel), "builder" for its uncompiled
    StateGraph, None otherwise. LangGraph is imported only when the object comes from it."""
    module = type(target).__module__
    if not module.startswith("langgraph.") or "langgraph" not in sys.modules:
        return None
    from langgraph.graph import StateGraph as LangGraphStateGraph
    from langgraph.pregel import Pregel

    if isinstance(target, Pregel):
        return "compiled"
    return "builder" if isinstance(target, LangGraphStateGraph) else None


def _user_frame(exc: BaseException, project_dir: Path) -> str:
    """The innermost traceback frame inside the project, as 'file:line'."""
    location = "location unknown"
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        try:
            return f"{Path(exc.filename).resolve().relative_to(project_dir)}:{exc.lineno}"
        except ValueError:
            return f"{exc.filename}:{exc.lineno}"
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<"):  # <frozen os>, <string>: not a file of the project
            continue
        try:
            relative = Path(frame.filename).resolve().relative_to(project_dir)
        except ValueError:
            continue
        location = f"{relative}:{frame.lineno}"
    return location
