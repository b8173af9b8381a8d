"""In-process checkpointer: for tests and throwaway runs; state dies with the process."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentflow.graph.messages import Message
from agentflow.graph.storage import (
    Checkpoint,
    Checkpointer,
    ConflictError,
    IdempotencyRecord,
    Page,
    RunRecord,
    ThreadInfo,
    ThreadQuery,
    check_limit,
    decode_cursor,
    dumps,
    encode_cursor,
    merge_metadata,
    title_from,
)


@dataclass(slots=True)
class _Thread:
    info: ThreadInfo
    messages: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)


class InMemoryCheckpointer(Checkpointer):
    """Keeps everything in a dict. Values are stored as JSON so a stored checkpoint never
    aliases live state, and what fails to serialise here fails the same way in SQLite."""

    durable = False

    def __init__(self) -> None:
        self._threads: dict[str, _Thread] = {}
        # (user, key) -> (expires_at, record JSON): expiry readable without decoding
        self._idempotency: dict[tuple[str, str], tuple[float, str]] = {}
        self._tool_results: dict[str, dict[str, str]] = {}
        self._runs: dict[str, str] = {}  # run id -> record JSON, in creation order

    async def create_thread(
        self,
        thread_id: str,
        user_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> ThreadInfo:
        thread = self._threads.get(thread_id)
        if thread is None:
            info = ThreadInfo(thread_id, user_id, title=title, metadata=dict(metadata or {}))
            thread = self._threads[thread_id] = _Thread(info)
        return _copy_info(thread.info)

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        thread = self._threads.get(thread_id)
        return _copy_info(thread.info) if thread else None

    async def put(
        self, checkpoint: Checkpoint, messages: Sequence[Message] = (), *, user_id: str
    ) -> None:
        encoded_messages = [dumps(m.to_dict(), what="a message") for m in messages]
        encoded = dumps(checkpoint.to_record(), what="the state")
        thread = self._threads.get(checkpoint.thread_id)
        stored = len(thread.messages) if thread else 0
        if checkpoint.message_count != stored + len(messages):
            raise ConflictError(
                f"thread {checkpoint.thread_id!r} has {stored} messages, expected "
                f"{checkpoint.message_count - len(messages)}: it was changed by another run"
            )
        if thread is None:
            thread = self._threads[checkpoint.thread_id] = _Thread(
                ThreadInfo(checkpoint.thread_id, user_id)
            )
        thread.messages.extend(encoded_messages)
        thread.checkpoints.append(encoded)
        info = thread.info
        info.title = info.title or title_from(messages)
        info.status = checkpoint.status
        info.message_count = len(thread.messages)
        info.updated_at = max(time.time(), info.updated_at)

    async def get_checkpoint(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> Checkpoint | None:
        thread = self._threads.get(thread_id)
        if thread is None or not thread.checkpoints:
            return None
        if checkpoint_id is None:
            return Checkpoint.from_dict(json.loads(thread.checkpoints[-1]))
        for raw in reversed(thread.checkpoints):
            checkpoint = Checkpoint.from_dict(json.loads(raw))
            if checkpoint.checkpoint_id == checkpoint_id:
                return checkpoint
        return None

    async def get_messages(
        self, thread_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[Message]:
        thread = self._threads.get(thread_id)
        if thread is None:
            return []
        end = None if limit is None else offset + limit
        return [Message.from_dict(json.loads(raw)) for raw in thread.messages[offset:end]]

    async def list_history(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[Checkpoint]:
        check_limit(limit)
        thread = self._threads.get(thread_id)
        if thread is None:
            return []
        out: list[Checkpoint] = []
        seen_before = before is None
        for raw in reversed(thread.checkpoints):
            checkpoint = Checkpoint.from_dict(json.loads(raw))
            if not seen_before:
                seen_before = checkpoint.checkpoint_id == before
                continue
            out.append(checkpoint)
            if len(out) == limit:
                break
        return out

    async def list_threads(
        self, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[ThreadInfo]:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor else None
        mine = sorted(
            (t.info for t in self._threads.values() if t.info.user_id == user_id),
            key=lambda i: (i.updated_at, i.thread_id),
            reverse=True,
        )
        if after is not None:
            mine = [i for i in mine if (i.updated_at, i.thread_id) < after]
        items = [_copy_info(i) for i in mine[:limit]]
        more = len(mine) > limit
        next_cursor = encode_cursor(items[-1].updated_at, items[-1].thread_id) if more else None
        return Page(items, next_cursor)

    async def search_threads(self, user_id: str, query: ThreadQuery) -> Page[ThreadInfo]:
        after = query.after()
        found = sorted(
            (t.info for t in self._threads.values()
             if t.info.user_id == user_id and query.matches(t.info)),
            key=query.position,
            reverse=query.sort_order == "desc",
        )  # fmt: skip
        if after is not None:
            if query.sort_order == "desc":
                found = [i for i in found if query.position(i) < after]
            else:
                found = [i for i in found if query.position(i) > after]
        return query.page([_copy_info(i) for i in found[: query.limit + 1]])

    async def update_thread_metadata(
        self, thread_id: str, patch: dict[str, Any]
    ) -> ThreadInfo | None:
        thread = self._threads.get(thread_id)
        if thread is None:
            return None
        merged = dumps(merge_metadata(thread.info.metadata, patch), what="thread metadata")
        thread.info.metadata = json.loads(merged)  # stored as a copy, as the others do
        thread.info.updated_at = max(time.time(), thread.info.updated_at)
        return _copy_info(thread.info)

    async def delete_thread(self, thread_id: str) -> bool:
        self._tool_results.pop(thread_id, None)
        for record in await self.list_runs(thread_id, limit=1000):
            self._runs.pop(record.run_id, None)
        return self._threads.pop(thread_id, None) is not None

    async def put_run(self, record: RunRecord) -> None:
        self._runs[record.run_id] = dumps(record.to_dict(), what="a run")

    async def delete_run(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    async def get_run(self, run_id: str) -> RunRecord | None:
        raw = self._runs.get(run_id)
        return RunRecord.from_dict(json.loads(raw)) if raw is not None else None

    async def list_runs(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[RunRecord]:
        check_limit(limit)
        runs = [RunRecord.from_dict(json.loads(raw)) for raw in self._runs.values()]
        runs = sorted(
            (r for r in runs if r.thread_id == thread_id),
            key=lambda r: (r.created_at, r.run_id),
            reverse=True,
        )
        if before is not None:
            last = next((r for r in runs if r.run_id == before), None)
            after = (last.created_at, before) if last else None
            runs = [r for r in runs if after and (r.created_at, r.run_id) < after]
        return runs[:limit]

    async def truncate_thread(self, thread_id: str, *, step: int) -> None:
        thread = self._threads.get(thread_id)
        if thread is None:
            return
        kept = [raw for raw in thread.checkpoints if json.loads(raw)["step"] < step]
        last = Checkpoint.from_dict(json.loads(kept[-1])) if kept else None
        thread.checkpoints = kept
        del thread.messages[last.message_count if last else 0 :]
        thread.info.message_count = len(thread.messages)
        thread.info.status = last.status if last else "idle"
        thread.info.updated_at = max(time.time(), thread.info.updated_at)

    async def put_tool_result(self, thread_id: str, key: str, message: Message) -> None:
        encoded = dumps(message.to_dict(), what="a tool result")
        self._tool_results.setdefault(thread_id, {})[key] = encoded

    async def get_tool_results(self, thread_id: str, keys: Sequence[str]) -> dict[str, Message]:
        stored = self._tool_results.get(thread_id, {})
        return {k: Message.from_dict(json.loads(stored[k])) for k in keys if k in stored}

    async def get_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        stored = self._idempotency.get((user_id, key))
        if stored is None:
            return None
        expires_at, raw = stored
        if expires_at <= time.time():
            self._idempotency.pop((user_id, key), None)
            return None
        return IdempotencyRecord.from_dict(json.loads(raw))

    async def put_idempotent(self, record: IdempotencyRecord) -> None:
        now = time.time()
        expired = [k for k, (expires_at, _) in self._idempotency.items() if expires_at <= now]
        for k in expired[:100]:
            del self._idempotency[k]
        raw = dumps(record.to_dict(), what="an idempotent response")
        self._idempotency[(record.user_id, record.key)] = (record.expires_at, raw)

    async def claim_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        existing = await self.get_idempotent(record.user_id, record.key)
        if existing is None:  # no await between the check and the store: atomic here
            await self.put_idempotent(record)
        return existing

    async def replace_idempotent(self, record: IdempotencyRecord, claim: str) -> bool:
        existing = await self.get_idempotent(record.user_id, record.key)
        if existing is None or existing.claim != claim:
            return False
        await self.put_idempotent(record)
        return True


def _copy_info(info: ThreadInfo) -> ThreadInfo:
    return ThreadInfo(**{**info.to_dict(), "metadata": dict(info.metadata)})
