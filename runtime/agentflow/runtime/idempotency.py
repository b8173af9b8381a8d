"""`Idempotency-Key` on invoke and stream: one run per key, whichever worker gets the retry.

The key is claimed in the shared store (the checkpointer) before the run starts, naming the
thread and the run, so every worker and replica sees the claim. A retry with the same key and
body then gets, depending on the first attempt's outcome:

- finished: its stored response (JSON, or replayed as SSE events);
- still running on some worker: 409 `idempotency_in_progress`;
- failed, refused, crashed or cut off (its claim is no longer held by a live run): the retry
  takes the claim over. If the first attempt had stored its input, the retry continues that
  run from its last checkpoint (or, if it had finished, answers from the stored thread); it
  never appends the input a second time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from agentflow.graph.compiled import RunResult
from agentflow.graph.messages import Message, Usage, new_id
from agentflow.graph.storage import Checkpoint, IdempotencyRecord
from agentflow.runtime.errors import ApiError
from agentflow.runtime.publisher import run_body
from agentflow.runtime.schemas import RunRequest

if TYPE_CHECKING:
    from agentflow.runtime.runs import RunService

logger = logging.getLogger("agentflow.runtime.idempotency")
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
# A claim younger than this counts as running even before its run holds the thread's lease
# (claiming and leasing are two steps, milliseconds apart).
CLAIM_GRACE = 5.0
HISTORY_SCAN = 200  # checkpoints read to find an earlier attempt's steps (takeover only)
FINISHED = frozenset({"done", "interrupted"})


@dataclass(slots=True)
class Claim:
    """This request owns the key: run `request` as run `run_id` on `record.thread_id`."""

    record: IdempotencyRecord
    request: RunRequest
    run_id: str
    earlier: list[Message]  # what earlier attempts produced after the input (a resume)
    input_count: int  # how many of the run's messages are input, not output


def request_key(request_headers: Any) -> str | None:
    key: str | None = request_headers.get("idempotency-key")
    if key is not None and not KEY_PATTERN.match(key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 visible ASCII characters (no spaces); "
            "use a UUID per logical request",
        )
    return key


def body_hash(body: Any) -> str:
    """The fingerprint of a decoded request body: the same for the same fields and values,
    whatever their order and spacing in the JSON sent."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


async def claim(
    runs: RunService, user_id: str, key: str, request_hash: str, request: RunRequest
) -> Claim | IdempotencyRecord:
    """Claim `key` for this request; a finished record to replay instead; or 409/422."""
    now = time.time()
    run_id = new_id()
    pending = IdempotencyRecord(
        key=key,
        user_id=user_id,
        request_hash=request_hash,
        expires_at=now + runs.settings.idempotency_ttl,
        state="pending",
        thread_id=request.thread_id or new_id(),
        run_ids=[run_id],
        claimed_at=now,
    )
    existing = await runs.checkpointer.claim_idempotent(pending)
    if existing is None:
        return _fresh(pending, request, run_id)
    if existing.request_hash != pending.request_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body; "
            "use a new key for a new request",
        )
    if existing.state == "done":
        return existing
    if await _in_progress(runs, existing, now):
        raise in_progress()
    return await _take_over(runs, existing, request, run_id)


def _fresh(record: IdempotencyRecord, request: RunRequest, run_id: str) -> Claim:
    pinned = dataclasses.replace(request, thread_id=record.thread_id)
    return Claim(record, pinned, run_id, [], len(request.messages))


async def _in_progress(runs: RunService, record: IdempotencyRecord, now: float) -> bool:
    if record.state != "pending":
        return False
    if now - record.claimed_at < CLAIM_GRACE:
        return True
    assert record.thread_id is not None
    return bool(await runs.running([record.thread_id]))


def in_progress() -> ApiError:
    return ApiError(
        409,
        "idempotency_in_progress",
        "a request with this Idempotency-Key is running; retry shortly to get its response",
        headers={"Retry-After": "1"},
    )


async def _take_over(
    runs: RunService, existing: IdempotencyRecord, request: RunRequest, run_id: str
) -> Claim | IdempotencyRecord:
    """Own the record of a failed or abandoned attempt, then decide: run the request afresh
    (its input was never stored), continue the stored run, or answer from storage."""
    thread_id = existing.thread_id
    assert thread_id is not None
    now = time.time()
    record = dataclasses.replace(
        existing,
        state="pending",
        run_ids=[*existing.run_ids, run_id],
        claimed_at=now,
        expires_at=now + runs.settings.idempotency_ttl,
    )
    if not await runs.checkpointer.replace_idempotent(record, existing.claim):
        raise in_progress()  # another retry took it over first
    attempts = set(existing.run_ids)
    history = await runs.checkpointer.list_history(thread_id, limit=HISTORY_SCAN)
    ours = [c for c in history if c.run_id in attempts]
    if not ours:  # nothing stored: the input never reached the thread
        return _fresh(record, request, run_id)
    started = next((c for c in reversed(ours) if c.source == "input"), ours[-1])
    output_from = started.message_count
    last = ours[0]
    count = last.message_count - output_from
    earlier = await runs.checkpointer.get_messages(thread_id, offset=output_from, limit=count)
    if last is not history[0] or last.status in FINISHED:
        return await _answer_from_storage(runs, record, last, earlier)
    resume = RunRequest(thread_id=thread_id, recursion_limit=request.recursion_limit)
    return Claim(record, resume, run_id, earlier, 0)


async def _answer_from_storage(
    runs: RunService, record: IdempotencyRecord, last: Checkpoint, messages: list[Message]
) -> IdempotencyRecord:
    """The earlier attempt finished but its response was never recorded: rebuild it."""
    body = {
        "thread_id": last.thread_id,
        "run_id": last.run_id,
        "status": "interrupted" if last.status == "interrupted" else "done",
        "messages": [m.to_dict() for m in messages],
        "state": last.values,
        "usage": {**Usage().to_dict(), "by_model": {}},
        "interrupt": last.interrupt.to_dict() if last.interrupt else None,
        "next": last.next,
    }
    done = dataclasses.replace(record, state="done", status=200, body=body)
    await runs.checkpointer.replace_idempotent(done, record.claim)
    return done


async def settle(
    runs: RunService, claimed: Claim, result: RunResult | None
) -> dict[str, Any] | None:
    """Record the attempt's outcome while its run still holds the thread: the response of
    a finished run (returned), or `failed` so that a retry may take over."""
    record = claimed.record
    body = None
    if result is not None:
        body = run_body(result, claimed.input_count)
        if claimed.earlier:
            body["messages"] = [m.to_dict() for m in claimed.earlier] + body["messages"]
        outcome = dataclasses.replace(record, state="done", status=200, body=body)
    else:
        outcome = dataclasses.replace(record, state="failed")
    try:
        if not await runs.checkpointer.replace_idempotent(outcome, record.claim):
            logger.warning("the Idempotency-Key record of run %s was taken over", claimed.run_id)
    except Exception as exc:  # a retry finds the run in storage; never fail the run for it
        logger.warning(
            "could not record the outcome of Idempotency-Key run %s: %s: %s",
            claimed.run_id, type(exc).__name__, exc,
        )  # fmt: skip
    return body


async def release(runs: RunService, claimed: Claim) -> None:
    """The run never started (refused before it ran): a retry may take the key over."""
    failed = dataclasses.replace(claimed.record, state="failed")
    try:
        await runs.checkpointer.replace_idempotent(failed, claimed.record.claim)
    except Exception as exc:
        logger.warning("could not release an Idempotency-Key claim: %s", exc)
