"""JSON Schema from Python type hints and docstrings, and validation of model arguments
against it. Covers the types tools actually take: str, int, float, bool, None, list, tuple,
dict, Literal, Enum, Optional/Union."""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from agentflow.errors import ArgumentError as ArgumentError

_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    Any: {},
}


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation."""
    if hint in _SIMPLE:
        return dict(_SIMPLE[hint])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    schema: dict[str, Any]
    if origin is typing.Annotated:
        schema = type_schema(args[0])
        text = next((a for a in args[1:] if isinstance(a, str)), None)
        if text:
            schema["description"] = text
        return schema
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        nullable = len(options) < len(args)
        schemas = [type_schema(a) for a in options]
        if nullable:  # models send null for optional parameters they skip
            schemas.append({"type": "null"})
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    if origin in (list, set, frozenset, tuple) or hint in (list, set, frozenset, tuple):
        schema = {"type": "array"}
        if args and not (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
            if origin is tuple:
                schema["prefixItems"] = [type_schema(a) for a in args]
            else:
                schema["items"] = type_schema(args[0])
        elif args:
            schema["items"] = type_schema(args[0])
        return schema
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = type_schema(args[1])
        return schema
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    raise TypeError(
        f"unsupported parameter type {hint!r}; tools take str, int, float, bool, list, dict, "
        "Literal, Enum or Optional of those"
    )


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, parameter descriptions) from a Google- or Sphinx-style docstring."""
    if not doc:
        return "", {}
    text = inspect.cleandoc(doc)
    params: dict[str, str] = {}
    for match in re.finditer(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+)$", text, re.MULTILINE):
        params[match.group(1)] = match.group(2).strip()
    section = re.search(
        r"^(?:Args|Arguments|Parameters):\s*\n(.*?)(?:\n\s*\n|\n\S|\Z)", text, re.DOTALL | re.M
    )
    if section:
        current = None
        for line in section.group(1).splitlines():
            item = re.match(r"^\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
            if item:
                current = item.group(1)
                params[current] = item.group(2).strip()
            elif current and line.strip():
                params[current] += " " + line.strip()
    description = re.split(
        r"\n\s*\n|^(?:Args|Arguments|Parameters|Returns|Raises):", text, maxsplit=1, flags=re.M
    )[0]
    description = re.sub(r"^\s*:param.*$", "", description, flags=re.M)
    return " ".join(description.split()), params


def function_schema(
    fn: Callable[..., Any], *, skip: Callable[[str, Any], bool]
) -> tuple[str, dict[str, Any]]:
    """(description, parameters schema) of `fn`; parameters for which `skip(name, hint)` is
    true are injected by the runtime and left out."""
    description, param_docs = parse_docstring(fn.__doc__)
    hints = typing.get_type_hints(fn, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(param.name, Any)
        if skip(param.name, hint):
            continue
        try:
            schema = type_schema(hint)
        except TypeError as exc:
            raise TypeError(f"parameter {param.name!r} of {fn.__name__}: {exc}") from None
        if param.name in param_docs:
            schema.setdefault("description", param_docs[param.name])
        if param.default is param.empty:
            required.append(param.name)
        elif isinstance(param.default, str | int | float | bool | type(None)):
            schema["default"] = param.default
        properties[param.name] = schema
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        parameters["required"] = required
    return description, parameters


def validate(value: Any, schema: Mapping[str, Any], path: str = "arguments") -> None:
    """Check `value` against the subset of JSON Schema that `type_schema` produces."""
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        if value is not None and len(options) == 1:  # Optional[X]: X's precise errors
            validate(value, options[0], path)
            return
        for option in schema["anyOf"]:
            try:
                validate(value, option, path)
                return
            except ArgumentError:
                continue
        raise ArgumentError(f"{path}: {value!r} matches none of the allowed types")
    if "enum" in schema and value not in schema["enum"]:
        raise ArgumentError(f"{path}: must be one of {schema['enum']}, got {value!r}")
    kind = schema.get("type")
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind is not None and not checks[kind](value):
        raise ArgumentError(f"{path}: expected {kind}, got {type(value).__name__} {value!r}")
    if kind == "array":
        items = schema.get("items")
        for i, item in enumerate(value):
            if items is not None:
                validate(item, items, f"{path}[{i}]")
    elif kind == "object":
        props = schema.get("properties", {})
        missing = [name for name in schema.get("required", []) if name not in value]
        if missing:
            raise ArgumentError(f"{path}: missing required {', '.join(map(repr, missing))}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                validate(item, props[key], f"{path}.{key}")
            elif extra is False:
                raise ArgumentError(
                    f"{path}: unexpected argument {key!r}; expected {sorted(props)}"
                )
            elif isinstance(extra, Mapping):
                validate(item, extra, f"{path}.{key}")
