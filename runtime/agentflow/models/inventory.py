"""Which chat models a compiled graph answers with, for `/health`, the server's startup log and
`agentflow doctor`.

A node that calls a model holds it: in its closure (``create_react_agent``, a node defined
inside a builder function), in a module global it names, as the object of a bound method,
in a ``functools.partial``, or as an attribute of a callable object. ``models_in_graph``
looks there, a few references deep, without calling anything or triggering attribute hooks.
A wrapper that has a ``models`` list (``FallbackChat``) is reported as the models of its
chain. A model built inside a node on every call cannot be seen this way.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 4
MAX_OBJECTS = 5_000  # a bound on the walk whatever the graph's nodes hold
_MISSING = object()
_BUILTIN_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model in use, named without anything secret: its ``name`` (the model id for an
    OpenAI-compatible model), its class, and whether it is ``offline`` (canned answers)."""

    name: str
    kind: str
    offline: bool

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "class": self.kind, "offline": self.offline}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(str(data["name"]), str(data["class"]), bool(data["offline"]))


def _static(obj: object, name: str) -> Any:
    """``obj.name`` without running the object's code (no ``__getattr__``, no properties);
    slots and ``__dict__`` are read through their built-in descriptors."""
    try:
        value = inspect.getattr_static(obj, name, _MISSING)
        if isinstance(value, _BUILTIN_DESCRIPTORS) and not isinstance(obj, type):
            return value.__get__(obj, type(obj))
    except Exception:  # an unset slot, or an object that refuses introspection
        return _MISSING
    return value


def _is_model(obj: object) -> bool:
    """Has the ChatModel methods and a string name (checked without running any code of
    the object: no ``__getattr__``, no properties)."""
    if isinstance(obj, type | types.ModuleType | types.FunctionType):
        return False
    kind = type(obj)
    methods = (getattr(kind, "ainvoke", None), getattr(kind, "astream", None))
    return all(callable(m) for m in methods) and isinstance(_static(obj, "name"), str)


def _chain(model: object) -> list[object] | None:
    """The models a wrapper delegates to (``FallbackChat.models``), else None."""
    models = _static(model, "models")
    if isinstance(models, list | tuple) and models and all(_is_model(m) for m in models):
        return list(models)
    return None


def _function_refs(fn: types.FunctionType) -> Iterator[object]:
    for cell in fn.__closure__ or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue
    yield from fn.__defaults__ or ()
    yield from (fn.__kwdefaults__ or {}).values()
    codes = [fn.__code__]
    while codes:
        code = codes.pop()
        for name in code.co_names:
            value = fn.__globals__.get(name, _MISSING)
            if value is not _MISSING:
                yield value
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


def _refs(obj: object) -> Iterator[object]:
    """What ``obj`` holds that a model call could go through."""
    if isinstance(obj, types.ModuleType | type | str | bytes | int | float | bool):
        return
    if isinstance(obj, functools.partial):
        yield obj.func
        yield from obj.args
        yield from obj.keywords.values()
    elif isinstance(obj, types.MethodType):
        yield obj.__self__
        yield obj.__func__
    elif isinstance(obj, types.FunctionType):
        yield from _function_refs(obj)
    elif isinstance(obj, list | tuple | set | frozenset):
        yield from obj
    elif isinstance(obj, dict):
        yield from obj.values()
    else:
        attributes = _static(obj, "__dict__")
        if isinstance(attributes, dict):
            yield from attributes.values()
        for kind in type(obj).__mro__:
            slots = vars(kind).get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                value = _static(obj, slot)
                if value is not _MISSING:
                    yield value


def models_held_by(roots: list[object]) -> list[object]:
    """The chat models reachable from ``roots`` (wrappers replaced by their chain), each
    once, in the order found."""
    found: dict[int, object] = {}
    seen: set[int] = set()
    frontier = deque((root, 0) for root in roots)
    while frontier and len(seen) < MAX_OBJECTS:
        obj, depth = frontier.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if _is_model(obj):
            chain = _chain(obj)
            if chain is None:
                found.setdefault(id(obj), obj)
            else:  # the chain in its order, before anything else
                frontier.extendleft((m, depth) for m in reversed(chain))
            continue
        if depth < MAX_DEPTH:
            frontier.extend((ref, depth + 1) for ref in _refs(obj))
    return list(found.values())


def models_in_graph(graph: object) -> list[ModelInfo]:
    """The models a compiled graph's nodes use (see the module docstring)."""
    spec = _static(graph, "spec")
    nodes = _static(spec, "nodes") if spec is not _MISSING else _MISSING
    if not isinstance(nodes, dict):
        return []
    roots: list[object] = [_static(step, "fn") for step in nodes.values()]
    return [describe_model(m) for m in models_held_by([r for r in roots if r is not _MISSING])]


def describe_model(model: object) -> ModelInfo:
    name = _static(model, "name")
    return ModelInfo(
        name=name if isinstance(name, str) else "",
        kind=type(model).__name__,
        offline=_static(model, "offline") is True,
    )
