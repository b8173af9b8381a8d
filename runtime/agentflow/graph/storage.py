"""The storage contract every checkpointer backend implements (`agentflow.checkpointer` has
the backends). It sits with the graph core, which uses it, so `graph` never imports
`checkpointer`.

Storage model (the same for every backend): a thread row (owner, title, metadata, status,
timestamps), its messages as rows appended once with a per-thread sequence number, and one
small checkpoint per step that records the non-conversation state fields and how many
messages belonged to the conversation at that step. Storage therefore grows linearly with the
conversation, never with steps x messages.
"""

from __future__ import annotations

import abc
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from agentflow.errors import CheckpointerError
from agentflow.errors import ConflictError as ConflictError
from agentflow.errors import InvalidCursorError as InvalidCursorError
from agentflow.errors import InvalidLimitError as InvalidLimitError
from agentflow.graph.command import Interrupt
from agentflow.graph.messages import Message, new_id

T = TypeVar("T")
TITLE_LENGTH = 80
# What a thread's `status` can be: `idle` until its first step, then its latest checkpoint's.
THREAD_STATUSES = ("idle", "running", "interrupted", "done", "error", "cancelled")
ThreadStatus = Literal["idle", "running", "interrupted", "done", "error", "cancelled"]
SortField = Literal["created_at", "updated_at"]
SortOrder = Literal["asc", "desc"]


@dataclass(slots=True)
class Checkpoint:
    """State of a thread after one step of a run."""

    thread_id: str
    run_id: str
    step: int
    values: dict[str, Any] = field(default_factory=dict)
    message_count: int = 0
    next: list[str] = field(default_factory=list)
    status: str = "running"  # running | interrupted | done | error
    interrupt: Interrupt | None = None
    source: str = "input"  # input | node | interrupt | update
    node: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    checkpoint_id: str = field(default_factory=new_id)
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "checkpoint_id": self.checkpoint_id,
            "run_id": self.run_id,
            "step": self.step,
            "values": self.values,
            "message_count": self.message_count,
            "next": self.next,
            "status": self.status,
            "interrupt": self.interrupt.to_dict() if self.interrupt else None,
            "source": self.source,
            "node": self.node,
            "metadata": self.metadata,
            "created_at": self.created_at,
        }

    def to_record(self) -> dict[str, Any]:
        """The compact stored form: fields at their defaults are left out."""
        full = self.to_dict()
        defaults: dict[str, Any] = {
            "values": {}, "next": [], "interrupt": None, "node": None, "metadata": {},
        }  # fmt: skip
        return {k: v for k, v in full.items() if k not in defaults or v != defaults[k]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        interrupt = data.get("interrupt")
        return cls(
            thread_id=data["thread_id"],
            checkpoint_id=data["checkpoint_id"],
            run_id=data["run_id"],
            step=int(data["step"]),
            values=data.get("values") or {},
            message_count=int(data.get("message_count") or 0),
            next=list(data.get("next") or []),
            status=data.get("status", "running"),
            interrupt=Interrupt.from_dict(interrupt) if interrupt else None,
            source=data.get("source", "input"),
            node=data.get("node"),
            metadata=data.get("metadata") or {},
            created_at=float(data.get("created_at") or 0.0),
        )


@dataclass(slots=True)
class ThreadInfo:
    thread_id: str
    user_id: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = "idle"
    message_count: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "user_id": self.user_id,
            "title": self.title,
            "metadata": self.metadata,
            "status": self.status,
            "message_count": self.message_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ThreadQuery:
    """What `Checkpointer.search_threads` looks for among one user's threads.

    `metadata` matches threads whose metadata contains it (JSON containment, as Postgres's
    `@>`: each given key present with an equal value; nested objects and arrays are contained
    in the stored ones). The time bounds are epoch seconds, half-open: `created_after <=
    created_at < created_before` (the same for `updated_*`). `cursor` is the `next_cursor` of
    the previous page of the same search."""

    metadata: dict[str, Any] = field(default_factory=dict)
    status: ThreadStatus | None = None
    created_after: float | None = None
    created_before: float | None = None
    updated_after: float | None = None
    updated_before: float | None = None
    sort_by: SortField = "updated_at"
    sort_order: SortOrder = "desc"
    limit: int = 20
    cursor: str | None = None

    def __post_init__(self) -> None:
        # Checked here, not only by type: backends put sort_by into their SQL.
        if self.sort_by not in ("created_at", "updated_at"):
            raise ValueError(f"sort_by must be 'created_at' or 'updated_at', not {self.sort_by!r}")
        if self.sort_order not in ("asc", "desc"):
            raise ValueError(f"sort_order must be 'asc' or 'desc', not {self.sort_order!r}")
        if self.status is not None and self.status not in THREAD_STATUSES:
            raise ValueError(f"status must be one of {', '.join(THREAD_STATUSES)}")

    def bounds(self) -> list[tuple[str, str, float]]:
        """The time bounds given, as (column, operator, value)."""
        given = [
            ("created_at", ">=", self.created_after),
            ("created_at", "<", self.created_before),
            ("updated_at", ">=", self.updated_after),
            ("updated_at", "<", self.updated_before),
        ]
        return [(column, op, value) for column, op, value in given if value is not None]

    def matches(self, info: ThreadInfo) -> bool:
        """Whether `info` is found by this query (the cursor aside): the one definition the
        in-process backends filter by."""
        if self.status is not None and info.status != self.status:
            return False
        for column, op, value in self.bounds():
            stored: float = getattr(info, column)
            inside = stored >= value if op == ">=" else stored < value
            if not inside:
                return False
        return json_contains(info.metadata, self.metadata)

    def position(self, info: ThreadInfo) -> tuple[float, str]:
        """Where `info` sorts: its sort value, then its thread id."""
        return getattr(info, self.sort_by), info.thread_id

    def after(self) -> tuple[float, str] | None:
        """The position the cursor names (InvalidCursorError for any other string), or None
        for the first page; the limit is checked too (InvalidLimitError)."""
        check_limit(self.limit)
        return decode_cursor(self.cursor) if self.cursor else None

    def page(self, found: list[ThreadInfo]) -> Page[ThreadInfo]:
        """The page of up to `limit + 1` matches in order: the extra one says that there is
        a next page, which starts after the last one shown."""
        items = found[: self.limit]
        more = len(found) > self.limit
        return Page(items, encode_cursor(*self.position(items[-1])) if more else None)


def json_contains(stored: Any, wanted: Any) -> bool:
    """JSON containment as Postgres's `jsonb @> jsonb` decides it (below the top level):
    objects contain each wanted key with a contained value, arrays contain each wanted
    element somewhere, scalars are equal (numbers by value; true is not 1)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            key in stored and json_contains(stored[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return isinstance(stored, list) and all(
            any(json_contains(item, element) for item in stored) for element in wanted
        )
    if isinstance(stored, dict | list) or _json_kind(stored) != _json_kind(wanted):
        return False
    return bool(stored == wanted)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def merge_metadata(metadata: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`metadata` with `patch`'s keys set, and those it sets to None removed (shallow)."""
    merged = dict(metadata)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@dataclass(slots=True)
class ThreadSnapshot:
    """A checkpoint together with the conversation as it was at that checkpoint."""

    checkpoint: Checkpoint
    messages: list[Message]


@dataclass(frozen=True, slots=True)
class ThreadClaim:
    """What taking a thread for a run found. `owner`: the user the thread belongs to (None:
    it does not exist yet); `taken`: the run holds the thread now (False: another user's
    thread, or `holder` = (run id, owner) holds it). `loaded`: the thread's latest state was
    read in the same call, and is `snapshot` (None: the thread has no state yet)."""

    owner: str | None
    taken: bool
    holder: tuple[str, str] | None = None
    loaded: bool = False
    snapshot: ThreadSnapshot | None = None


@dataclass(slots=True)
class IdempotencyRecord:
    """What the store knows about one user's `Idempotency-Key`.

    A request claims its key first (`state="pending"`, naming the thread and the run): the
    claim lives in the shared store, so it holds across workers and replicas. A finished run
    turns it into `"done"` with the response to replay; a run that failed or was refused
    marks it `"failed"`, so a retry may take it over. `claim` names the attempt that owns the
    record (its run id): only that attempt may change it.
    """

    key: str
    user_id: str
    request_hash: str
    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    expires_at: float = 0.0
    state: str = "done"  # pending | failed | done
    thread_id: str | None = None
    run_ids: list[str] = field(default_factory=list)  # every attempt's run, oldest first
    claimed_at: float = 0.0

    @property
    def claim(self) -> str:
        return self.run_ids[-1] if self.run_ids else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "user_id": self.user_id,
            "request_hash": self.request_hash,
            "status": self.status,
            "body": self.body,
            "expires_at": self.expires_at,
            "state": self.state,
            "thread_id": self.thread_id,
            "run_ids": self.run_ids,
            "claimed_at": self.claimed_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdempotencyRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# A run's statuses; the first two are live, the others final.
RUN_STATUSES = ("pending", "running", "interrupted", "success", "error", "cancelled", "timeout")
FINAL_RUN_STATUSES = frozenset(RUN_STATUSES[2:])


@dataclass(slots=True)
class RunRecord:
    """One streamed or background run of a thread, as a resource: what it was asked
    (`request`, JSON), where it stands, and how it ended (an invoke's answer is its record).
    `owner` names the worker running it, so another can take over a run whose worker died."""

    run_id: str
    thread_id: str
    user_id: str
    status: str = "pending"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    request: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str = "reject"
    background: bool = False  # started by POST .../runs: another worker takes it over
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    interrupt: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    owner: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def dumps(value: Any, *, what: str) -> str:
    """JSON-encode for storage; a value that is not JSON-serialisable names itself."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        text.encode()
        return text
    except UnicodeEncodeError:  # a lone surrogate: JSON escapes keep it, UTF-8 cannot
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise CheckpointerError(
            f"cannot store {what}: {exc}. State fields must be JSON-serialisable "
            "(str, int, float, bool, None, lists and dicts of those)."
        ) from None


# A page position: the last item's update time (repr: it round-trips exactly) and thread id.
# Every string of this shape is a position (perhaps past the end), so any can be passed.
CURSOR_PATTERN = r"^-?[0-9]{1,24}(\.[0-9]{1,17})?~[^\x00]*$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(updated_at: float, thread_id: str) -> str:
    position = repr(float(updated_at))
    if "e" in position:  # outside 1e-4..1e16: not a clock reading, exactness matters less
        position = f"{updated_at:.6f}"
    return f"{position}~{thread_id}"


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position `encode_cursor` wrote; InvalidCursorError for any other shape, and for a
    thread id no storage can compare (a lone surrogate)."""
    if _CURSOR.fullmatch(cursor) is None:
        raise InvalidCursorError(
            "invalid pagination cursor; pass the next_cursor value from the previous page"
        )
    position, thread_id = cursor.split("~", 1)
    try:
        thread_id.encode()
    except UnicodeEncodeError:
        raise InvalidCursorError(
            "invalid pagination cursor; pass the next_cursor value from the previous page"
        ) from None
    return float(position), thread_id


def title_from(messages: Sequence[Message]) -> str | None:
    for message in messages:
        if message.role == "user" and message.text.strip():
            text = " ".join(message.text.split())
            return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1] + "…"
    return None


class Checkpointer(abc.ABC):
    """Async storage for threads, their messages and per-step checkpoints."""

    durable: bool = False
    """True when state survives a process restart."""

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Open connections and create the schema; idempotent."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def __aenter__(self) -> Checkpointer:
        await self.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def create_thread(
        self,
        thread_id: str,
        user_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> ThreadInfo:
        """Create the thread for `user_id`, or return it unchanged if it exists."""

    @abc.abstractmethod
    async def get_thread(self, thread_id: str) -> ThreadInfo | None: ...

    @abc.abstractmethod
    async def put(
        self, checkpoint: Checkpoint, messages: Sequence[Message] = (), *, user_id: str
    ) -> None:
        """Atomically append `messages` and store `checkpoint`.

        `checkpoint.message_count` must equal the thread's stored message count plus
        `len(messages)`; otherwise another writer got there first and ConflictError is raised
        with nothing written. The thread is created for `user_id` if it does not exist.
        """

    @abc.abstractmethod
    async def get_checkpoint(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> Checkpoint | None:
        """The latest checkpoint, or the one with `checkpoint_id`."""

    @abc.abstractmethod
    async def get_messages(
        self, thread_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[Message]:
        """Messages in conversation order, from position `offset`."""

    @abc.abstractmethod
    async def list_history(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[Checkpoint]:
        """Checkpoints newest first; `before` is a checkpoint id to page from."""

    @abc.abstractmethod
    async def list_threads(
        self, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[ThreadInfo]:
        """The user's threads, most recently updated first."""

    @abc.abstractmethod
    async def search_threads(self, user_id: str, query: ThreadQuery) -> Page[ThreadInfo]:
        """The user's threads that `query` matches, in its order, a page at a time (keyset:
        the cursor is the last item's sort value and thread id). InvalidCursorError for a
        cursor of another shape."""

    @abc.abstractmethod
    async def update_thread_metadata(
        self, thread_id: str, patch: dict[str, Any]
    ) -> ThreadInfo | None:
        """Set `patch`'s keys in the thread's metadata (a key set to None is removed; other
        keys are kept) and move its `updated_at`; the updated thread, or None if it does not
        exist."""

    @abc.abstractmethod
    async def delete_thread(self, thread_id: str) -> bool:
        """Delete the thread with its messages, checkpoints and recorded tool results;
        False if it did not exist."""

    @abc.abstractmethod
    async def get_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        """The unexpired record stored for this user's key, if any."""

    @abc.abstractmethod
    async def put_idempotent(self, record: IdempotencyRecord) -> None:
        """Store (or replace) a record; expired records may be purged at any time."""

    @abc.abstractmethod
    async def claim_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Store `record` unless an unexpired record exists for its user and key, atomically
        for every worker sharing the store: None when stored (the caller owns the key),
        else the existing record."""

    @abc.abstractmethod
    async def replace_idempotent(self, record: IdempotencyRecord, claim: str) -> bool:
        """Replace the record only if its stored `claim` is still `claim` (compare and set);
        False when another attempt took it over or it expired."""

    @abc.abstractmethod
    async def put_tool_result(self, thread_id: str, key: str, message: Message) -> None:
        """Record the result of a completed tool call under its idempotency key, so a
        resumed or retried step reuses it instead of running the tool again."""

    @abc.abstractmethod
    async def get_tool_results(self, thread_id: str, keys: Sequence[str]) -> dict[str, Message]:
        """The recorded tool results among `keys`, by key (missing keys are left out)."""

    async def put_run(self, record: RunRecord) -> None:
        """Store (or replace) a run's record."""
        raise CheckpointerError(f"{type(self).__name__} does not store runs")

    async def get_run(self, run_id: str) -> RunRecord | None:
        raise CheckpointerError(f"{type(self).__name__} does not store runs")

    async def delete_run(self, run_id: str) -> None:
        """Forget a run: its record and its stored events (a rolled-back run)."""
        raise CheckpointerError(f"{type(self).__name__} does not store runs")

    async def list_runs(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[RunRecord]:
        """The thread's runs, newest first; `before`: the run id the previous page ended at."""
        raise CheckpointerError(f"{type(self).__name__} does not store runs")

    async def live_runs(self, limit: int = 100) -> list[RunRecord]:
        """Background runs still pending or running, oldest first (for taking them over)."""
        return []

    async def truncate_thread(self, thread_id: str, *, step: int) -> None:
        """Discard the thread's checkpoints from `step` on and the messages they added: the
        thread is as it was at the checkpoint before `step` (a rolled-back run)."""
        raise CheckpointerError(f"{type(self).__name__} cannot roll a thread back")

    async def ping(self) -> None:
        """Raise CheckpointerError when the storage is unreachable (used by /health)."""
        await self.get_thread("__agentflow_health__")

    async def get_snapshot(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> ThreadSnapshot | None:
        """A checkpoint and the conversation as of that checkpoint."""
        checkpoint = await self.get_checkpoint(thread_id, checkpoint_id)
        if checkpoint is None:
            return None
        messages = await self.get_messages(thread_id, limit=checkpoint.message_count)
        return ThreadSnapshot(checkpoint, messages)

    async def append_messages(
        self, thread_id: str, messages: Sequence[Message], *, user_id: str
    ) -> Checkpoint:
        """Add messages to a thread outside of a run (e.g. an imported conversation)."""
        latest = await self.get_checkpoint(thread_id)
        base = latest or Checkpoint(thread_id=thread_id, run_id="", step=0)
        checkpoint = Checkpoint(
            thread_id=thread_id,
            run_id=base.run_id,
            step=base.step + 1,
            values=base.values,
            message_count=base.message_count + len(messages),
            status="done" if latest is None else latest.status,
            next=[] if latest is None else latest.next,
            interrupt=None if latest is None else latest.interrupt,
            source="update",
        )
        await self.put(checkpoint, messages, user_id=user_id)
        return checkpoint


def check_limit(limit: int) -> int:
    if limit < 1 or limit > 1000:
        raise InvalidLimitError(f"limit must be between 1 and 1000, got {limit}")
    return limit
