"""Control flow from inside nodes: `Command` (go to a node, with an update) and `interrupt`."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Command:
    """Returned by a node: apply `update`, then continue at `goto` (a node name or END).

    Passed as the *input* of a run, `Command(resume=value)` answers a pending interrupt.
    """

    goto: str | None = None
    update: Any = None
    resume: Any = None


@dataclass(slots=True)
class Interrupt:
    """A paused run: the node it paused in, what it asked, and answers given so far."""

    node: str
    value: Any = None
    when: str = "during"  # "before" | "during" | "after"
    resume_values: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "value": self.value,
            "when": self.when,
            "resume_values": self.resume_values,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interrupt:
        return cls(
            node=data["node"],
            value=data.get("value"),
            when=data.get("when", "during"),
            resume_values=list(data.get("resume_values") or []),
        )


class GraphInterrupt(BaseException):
    """Raised by `interrupt()` to pause the run. A BaseException so that a node's own
    `except Exception` cannot swallow it by accident."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


@dataclass(slots=True)
class _ResumeCursor:
    values: list[Any]
    index: int = 0


_resume: contextvars.ContextVar[_ResumeCursor | None] = contextvars.ContextVar(
    "agentflow_resume", default=None
)


def interrupt(value: Any = None) -> Any:
    """Pause the run and ask for input. When the run is resumed with `resume=answer`, the
    node runs again from its start and this call returns the answer instead of pausing.
    A node may call `interrupt` several times; each call gets its own answer in order."""
    cursor = _resume.get()
    if cursor is not None and cursor.index < len(cursor.values):
        answer = cursor.values[cursor.index]
        cursor.index += 1
        return answer
    raise GraphInterrupt(value)


def set_resume_values(values: list[Any]) -> contextvars.Token[_ResumeCursor | None]:
    return _resume.set(_ResumeCursor(values))


def reset_resume_values(token: contextvars.Token[_ResumeCursor | None]) -> None:
    _resume.reset(token)
