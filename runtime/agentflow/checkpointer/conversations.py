"""The conversations a worker has read or written lately, so the next turn reads from
Postgres only the messages it does not know yet.

An entry is the JSON text of a thread's messages up to one of its checkpoints. It is never
trusted on its own: Postgres sends what came after only while that checkpoint still exists
(messages are only appended, or cut back together with the checkpoints after them), and
everything otherwise. Entries are text, not messages: each read builds new `Message`
objects, so a node that changes one in place changes nothing here. Least recently used
entries go first once the texts pass `max_bytes`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
ENTRY_OVERHEAD = 64  # bytes counted per entry and per message beyond its text


@dataclass(slots=True)
class Known:
    step: int
    checkpoint_id: str
    texts: list[bytes]
    size: int


class ConversationCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, Known] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, thread_id: str) -> Known | None:
        known = self._entries.get(thread_id)
        if known is not None:
            self._entries.move_to_end(thread_id)
        return known

    def remember(self, thread_id: str, step: int, checkpoint_id: str, texts: list[bytes]) -> None:
        """The thread's messages up to checkpoint `checkpoint_id` (its step `step`)."""
        self.forget(thread_id)
        size = ENTRY_OVERHEAD + sum(len(t) + ENTRY_OVERHEAD for t in texts)
        if size > self.max_bytes:
            return
        self._entries[thread_id] = Known(step, checkpoint_id, texts, size)
        self.size += size
        self._shrink()

    def extend(
        self, thread_id: str, step: int, checkpoint_id: str, count: int, texts: Sequence[bytes]
    ) -> None:
        """A checkpoint was written after `count - len(texts)` messages with `texts` added:
        the entry follows it when it held exactly those that came before."""
        known = self._entries.get(thread_id)
        if known is None:
            return
        if len(known.texts) != count - len(texts):
            self.forget(thread_id)
            return
        added = sum(len(t) + ENTRY_OVERHEAD for t in texts)
        known.texts.extend(texts)
        known.step, known.checkpoint_id = step, checkpoint_id
        known.size += added
        self.size += added
        self._shrink()

    def forget(self, thread_id: str) -> None:
        known = self._entries.pop(thread_id, None)
        if known is not None:
            self.size -= known.size

    def _shrink(self) -> None:
        while self.size > self.max_bytes and self._entries:
            _, oldest = self._entries.popitem(last=False)
            self.size -= oldest.size
