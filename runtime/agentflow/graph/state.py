"""Graph state: `AgentState` and how node updates merge into it.

A state class is a dataclass (subclasses of `AgentState` become dataclasses automatically,
keyword-only, so extra fields just need defaults). `context` holds the conversation and only
ever grows: messages returned by nodes are appended. Any other field is replaced by an update,
unless it is declared with a reducer, e.g. ``notes: Annotated[list[str], operator.add] = ...``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from agentflow.graph.errors import InvalidInputError
from agentflow.graph.messages import Message, coerce_messages

Reducer = Callable[[Any, Any], Any]
MESSAGE_KEYS = ("context", "messages")


@typing.dataclass_transform(kw_only_default=True, field_specifiers=(dataclasses.field,))
class _StateBase:
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__dataclass_fields__" not in cls.__dict__:
            _copy_mutable_defaults(cls)
            dataclasses.dataclass(kw_only=True)(cls)


def _copy_mutable_defaults(cls: type) -> None:
    """Let users write ``items: list[str] = []``: each instance gets its own copy."""
    for name in inspect.get_annotations(cls):
        default = cls.__dict__.get(name)
        if isinstance(default, list | dict | set):
            setattr(
                cls, name, dataclasses.field(default_factory=functools.partial(copy.copy, default))
            )


class AgentState(_StateBase):
    """The conversation (`context`) plus whatever fields a subclass declares."""

    context: list[Message] = dataclasses.field(default_factory=list)


_reducers: dict[type, dict[str, Reducer]] = {}


def reducers_of(cls: type) -> dict[str, Reducer]:
    """Fields declared as ``Annotated[T, reducer]``; resolved on first use, then cached."""
    cached = _reducers.get(cls)
    if cached is not None:
        return cached
    reducers: dict[str, Reducer] = {}
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise InvalidInputError(
            f"cannot resolve the type hints of {cls.__name__}: {exc}. Define the names its "
            "annotations use at module level."
        ) from None
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.Annotated:
            for extra in hint.__metadata__:
                if callable(extra):
                    reducers[name] = extra
                    break
    _reducers[cls] = reducers
    return reducers


def field_names(state_cls: type[AgentState]) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(state_cls))


def state_values(state: AgentState) -> dict[str, Any]:
    """Every field except the conversation, for storing in a checkpoint."""
    return {
        f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name != "context"
    }


def build_state(
    state_cls: type[AgentState], values: Mapping[str, Any], context: list[Message]
) -> AgentState:
    """Rebuild a state from stored values; fields the class no longer has are dropped."""
    known = field_names(state_cls)
    kwargs = {k: v for k, v in values.items() if k in known and k != "context"}
    return state_cls(context=context, **kwargs)


def check_input_fields(state_cls: type[AgentState], fields: Mapping[str, Any]) -> None:
    """Input `state` may set declared fields; the conversation only grows via messages."""
    for key in fields:
        if key in MESSAGE_KEYS:
            raise InvalidInputError(
                f"input 'state' cannot set {key!r}; send new messages under 'messages'"
            )
        if key not in field_names(state_cls):
            raise InvalidInputError(
                f"input 'state' has unknown field {key!r}; {state_cls.__name__} has "
                f"{sorted(field_names(state_cls) - {'context'})}"
            )


def split_update(
    state_cls: type[AgentState], update: Any, *, node: str
) -> tuple[list[Message], dict[str, Any]]:
    """Normalise what a node returned into (new messages, other field updates)."""
    if update is None:
        return [], {}
    if isinstance(update, Message):
        return [update], {}
    if isinstance(update, list):
        return _messages(update, node), {}
    if isinstance(update, AgentState):
        raise InvalidInputError(
            f"node {node!r} returned a whole state object; return a dict with only the "
            "fields that changed (and new messages under 'messages')"
        )
    if not isinstance(update, Mapping):
        raise InvalidInputError(
            f"node {node!r} returned {type(update).__name__}; a node returns a dict of "
            "changed fields, a Message, a list of messages, a Command, or None"
        )
    messages: list[Message] = []
    fields: dict[str, Any] = {}
    known = field_names(state_cls)
    for key, value in update.items():
        if key in MESSAGE_KEYS:
            messages.extend(_messages(value, node))
        elif key in known:
            fields[key] = value
        else:
            raise InvalidInputError(
                f"node {node!r} returned unknown state field {key!r}; "
                f"{state_cls.__name__} has {sorted(known)}. Declare it on your state class."
            )
    return messages, fields


def _messages(value: Any, node: str) -> list[Message]:
    try:
        return coerce_messages(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"node {node!r} returned a bad message: {exc}") from None
    except TypeError:
        raise InvalidInputError(
            f"node {node!r} returned messages of type {type(value).__name__}; use a list"
        ) from None


def apply_update(
    state: AgentState, messages: list[Message], fields: Mapping[str, Any]
) -> AgentState:
    """Return a new state with messages appended and fields replaced or reduced."""
    changes: dict[str, Any] = {}
    reducers = reducers_of(type(state))
    for key, value in fields.items():
        reducer = reducers.get(key)
        changes[key] = reducer(getattr(state, key), value) if reducer else value
    if messages:
        changes["context"] = [*state.context, *messages]
    if not changes:
        return state
    return dataclasses.replace(state, **changes)
