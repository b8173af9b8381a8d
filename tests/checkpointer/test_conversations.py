"""The per-worker conversation cache: bounded in bytes, least recently used first out, and
an entry follows only the writes that continue it."""

from __future__ import annotations

from agentflow.checkpointer.conversations import ENTRY_OVERHEAD, ConversationCache


def test_entries_follow_writes_that_continue_them_and_drop_the_rest() -> None:
    cache = ConversationCache()
    cache.remember("t", 2, "c2", [b"a", b"b"])
    cache.extend("t", 3, "c3", 3, [b"c"])
    known = cache.get("t")
    assert known is not None and (known.step, known.checkpoint_id, known.texts) == (
        3, "c3", [b"a", b"b", b"c"],
    )  # fmt: skip
    cache.extend("t", 5, "c5", 7, [b"x"])  # not what came next: forgotten
    assert cache.get("t") is None and cache.size == 0
    cache.extend("unknown", 1, "c1", 1, [b"x"])  # nothing to extend
    assert len(cache) == 0


def test_the_least_recently_used_go_first_past_the_byte_limit() -> None:
    per_entry = ENTRY_OVERHEAD + 2 * (100 + ENTRY_OVERHEAD)
    cache = ConversationCache(max_bytes=2 * per_entry)
    for thread in ("a", "b"):
        cache.remember(thread, 1, "c", [b"x" * 100, b"y" * 100])
    assert cache.get("a") is not None  # now the most recently used
    cache.remember("c", 1, "c", [b"x" * 100, b"y" * 100])
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.size == 2 * per_entry
    cache.remember("huge", 1, "c", [b"z" * (3 * per_entry)])  # larger than the whole cache
    assert cache.get("huge") is None and cache.size == 2 * per_entry
    cache.forget("a")
    cache.forget("c")
    assert cache.size == 0 and len(cache) == 0
