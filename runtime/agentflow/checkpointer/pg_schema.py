"""The Postgres schema (versioned migrations) and how payloads are stored in it."""

from __future__ import annotations

import json
import zlib
from typing import Any

import msgspec


def migrations(s: str) -> list[str]:
    """Schema versions, in order; `s` is the quoted schema name. Never edit a released one."""
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {s}.threads (
            thread_id     text PRIMARY KEY,
            user_id       text NOT NULL,
            title         text,
            metadata      jsonb NOT NULL DEFAULT '{{}}',
            status        text NOT NULL DEFAULT 'idle',
            message_count integer NOT NULL DEFAULT 0,
            created_at    double precision NOT NULL,
            updated_at    double precision NOT NULL
        );
        CREATE INDEX IF NOT EXISTS threads_by_user
            ON {s}.threads (user_id, updated_at DESC, thread_id DESC);
        -- data: JSON, zlib-compressed when that makes it smaller (see pack/unpack).
        CREATE TABLE IF NOT EXISTS {s}.messages (
            thread_id text NOT NULL,
            seq       integer NOT NULL,
            data      bytea NOT NULL,
            PRIMARY KEY (thread_id, seq)
        );
        CREATE TABLE IF NOT EXISTS {s}.checkpoints (
            thread_id     text NOT NULL,
            step          integer NOT NULL,
            checkpoint_id text NOT NULL,
            data          bytea NOT NULL,
            PRIMARY KEY (thread_id, step)
        );
        -- One step of a run, atomically: create the thread, check that nobody else appended
        -- messages meanwhile (else raise 40001 and roll back everything), append the
        -- messages, store the checkpoint, update the thread row.
        CREATE OR REPLACE FUNCTION {s}.put_step(
            p_thread text, p_user text, p_step integer, p_checkpoint text, p_data bytea,
            p_messages bytea[], p_count integer, p_status text, p_title text,
            p_now double precision
        ) RETURNS void LANGUAGE plpgsql AS $fn$
        DECLARE
            stored integer;
        BEGIN
            INSERT INTO {s}.threads (thread_id, user_id, created_at, updated_at)
                VALUES (p_thread, p_user, p_now, p_now) ON CONFLICT (thread_id) DO NOTHING;
            SELECT message_count INTO stored FROM {s}.threads
                WHERE thread_id = p_thread FOR UPDATE;
            IF p_count <> stored + coalesce(cardinality(p_messages), 0) THEN
                RAISE EXCEPTION 'thread % has % messages, expected %', p_thread, stored,
                    p_count - coalesce(cardinality(p_messages), 0)
                    USING ERRCODE = 'serialization_failure';
            END IF;
            INSERT INTO {s}.messages (thread_id, seq, data)
                SELECT p_thread, stored + m.i - 1, m.d
                FROM unnest(p_messages) WITH ORDINALITY AS m(d, i);
            INSERT INTO {s}.checkpoints (thread_id, step, checkpoint_id, data)
                VALUES (p_thread, p_step, p_checkpoint, p_data);
            UPDATE {s}.threads SET status = p_status, message_count = p_count,
                title = coalesce(title, p_title), updated_at = greatest(updated_at, p_now)
                WHERE thread_id = p_thread;
        END
        $fn$;
        CREATE TABLE IF NOT EXISTS {s}.idempotency (
            user_id    text NOT NULL,
            key        text NOT NULL,
            data       jsonb NOT NULL,
            expires_at double precision NOT NULL,
            PRIMARY KEY (user_id, key)
        );
        CREATE INDEX IF NOT EXISTS idempotency_expiry ON {s}.idempotency (expires_at);
        CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL);
        -- A new id whenever the schema is (re)created: Redis keys include it, so a cache
        -- can never outlive the database it mirrors.
        INSERT INTO {s}.meta (key, value)
            VALUES ('epoch', md5(random()::text || clock_timestamp()::text))
            ON CONFLICT (key) DO NOTHING;
        CREATE TABLE IF NOT EXISTS {s}.run_leases (
            thread_id      text PRIMARY KEY,
            run_id         text NOT NULL,
            owner          text NOT NULL,
            expires_at     double precision NOT NULL,
            stop_requested boolean NOT NULL DEFAULT false
        );
        """,
        # 2: results of completed tool calls by idempotency key (replay-safe tools).
        f"""
        CREATE TABLE IF NOT EXISTS {s}.tool_results (
            thread_id text NOT NULL,
            key       text NOT NULL,
            data      bytea NOT NULL,
            PRIMARY KEY (thread_id, key)
        );
        """,
        # 3: idempotency claims shared by every worker: the owning attempt in a column of
        # its own (compare and set), the record as JSON text (jsonb refuses NUL and lone
        # surrogates, which a model reply may contain).
        f"""
        ALTER TABLE {s}.idempotency ALTER COLUMN data TYPE text USING data::text;
        ALTER TABLE {s}.idempotency ADD COLUMN IF NOT EXISTS claim text NOT NULL DEFAULT '';
        """,
        # 4: runs as resources (the record as JSON text, its live state in columns), and
        # the SSE frames of runs, for clients that reconnect on any worker.
        f"""
        CREATE TABLE IF NOT EXISTS {s}.runs (
            run_id     text PRIMARY KEY,
            thread_id  text NOT NULL,
            status     text NOT NULL,
            owner      text,
            background boolean NOT NULL DEFAULT false,
            created_at double precision NOT NULL,
            ended_at   double precision,
            data       text NOT NULL
        );
        CREATE INDEX IF NOT EXISTS runs_by_thread
            ON {s}.runs (thread_id, created_at DESC, run_id DESC);
        -- what workers sweep for: background runs nobody may be running
        CREATE INDEX IF NOT EXISTS runs_live
            ON {s}.runs (created_at) WHERE background AND status IN ('pending', 'running');
        CREATE TABLE IF NOT EXISTS {s}.run_events (
            run_id     text NOT NULL,
            seq        integer NOT NULL,
            frame      bytea NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        CREATE INDEX IF NOT EXISTS runs_ended ON {s}.runs (ended_at) WHERE ended_at IS NOT NULL;
        """,
        # 5: thread search (search_threads): metadata containment (`metadata @> $1`) and a
        # user's threads by creation time (by update time is threads_by_user). No GIN
        # pending list (fastupdate): every search would scan it (~1.5 ms at 100,000 new
        # threads) and the insert that flushes it would stall a run's step.
        f"""
        CREATE INDEX IF NOT EXISTS threads_metadata
            ON {s}.threads USING gin (metadata jsonb_path_ops) WITH (fastupdate = off);
        CREATE INDEX IF NOT EXISTS threads_by_user_created
            ON {s}.threads (user_id, created_at DESC, thread_id DESC);
        """,
        # 6: LangGraph checkpoints (agentflow.checkpointer.langgraph.LangGraphSaver): a
        # checkpoint without its channel values, each value once per (channel, version),
        # the pending writes of a step by (task, index). Payloads are LangGraph serde bytes.
        f"""
        CREATE TABLE IF NOT EXISTS {s}.lg_checkpoints (
            thread_id            text NOT NULL,
            checkpoint_ns        text NOT NULL DEFAULT '',
            checkpoint_id        text NOT NULL,
            parent_checkpoint_id text,
            type                 text NOT NULL,
            checkpoint           bytea NOT NULL,
            versions             jsonb NOT NULL,
            metadata             jsonb NOT NULL DEFAULT '{{}}',
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
        );
        CREATE TABLE IF NOT EXISTS {s}.lg_blobs (
            thread_id     text NOT NULL,
            checkpoint_ns text NOT NULL DEFAULT '',
            channel       text NOT NULL,
            version       text NOT NULL,
            type          text NOT NULL,
            blob          bytea,
            PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
        );
        CREATE TABLE IF NOT EXISTS {s}.lg_writes (
            thread_id     text NOT NULL,
            checkpoint_ns text NOT NULL DEFAULT '',
            checkpoint_id text NOT NULL,
            task_id       text NOT NULL,
            idx           integer NOT NULL,
            channel       text NOT NULL,
            type          text NOT NULL,
            blob          bytea NOT NULL,
            task_path     text NOT NULL DEFAULT '',
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
        );
        """,
        # 7: store items (agentflow.checkpointer.items): a user's JSON values by namespace
        # (labels joined by "."; bytewise order, so a namespace prefix is a key range) and
        # key. `value @> filter` is served by the GIN index (no pending list: see 5); ttl in
        # minutes, expires_at in epoch seconds.
        f"""
        CREATE TABLE IF NOT EXISTS {s}.store_items (
            user_id    text NOT NULL,
            namespace  text COLLATE "C" NOT NULL,
            key        text NOT NULL,
            value      jsonb NOT NULL,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL,
            ttl        double precision,
            expires_at double precision,
            PRIMARY KEY (user_id, namespace, key)
        );
        CREATE INDEX IF NOT EXISTS store_items_by_update
            ON {s}.store_items (user_id, updated_at DESC);
        CREATE INDEX IF NOT EXISTS store_items_value
            ON {s}.store_items USING gin (value jsonb_path_ops) WITH (fastupdate = off);
        CREATE INDEX IF NOT EXISTS store_items_expiry
            ON {s}.store_items (expires_at) WHERE expires_at IS NOT NULL;
        """,
        # 8: a conversation turn in few round trips. claim_thread takes the thread's lease
        # for a run and, when asked, reads its latest checkpoint and the messages the caller
        # does not know yet, in one call; it takes nothing on another user's thread (it
        # answers that user) or under a live lease (it answers the holder). put_step_release
        # is put_step that also lets the run's lease go: a run's last write.
        f"""
        CREATE OR REPLACE FUNCTION {s}.claim_thread(
            p_thread text, p_user text, p_run text, p_owner text, p_expires double precision,
            p_now double precision, p_load boolean, p_known_step integer,
            p_known_checkpoint text, p_known_count integer
        ) RETURNS TABLE (
            thread_user text, taken boolean, holder_run text, holder_owner text,
            checkpoint_id text, data bytea, first_seq integer, messages bytea[]
        ) LANGUAGE plpgsql AS $fn$
        BEGIN
            SELECT t.user_id INTO thread_user FROM {s}.threads t WHERE t.thread_id = p_thread;
            taken := false;
            IF thread_user IS NOT NULL AND thread_user <> p_user THEN
                RETURN NEXT;
                RETURN;
            END IF;
            INSERT INTO {s}.run_leases AS l (thread_id, run_id, owner, expires_at)
                VALUES (p_thread, p_run, p_owner, p_expires)
                ON CONFLICT (thread_id) DO UPDATE SET run_id = excluded.run_id,
                    owner = excluded.owner, expires_at = excluded.expires_at,
                    stop_requested = false
                WHERE l.expires_at < p_now
                RETURNING true INTO taken;
            IF taken IS NULL THEN
                taken := false;
                SELECT l.run_id, l.owner INTO holder_run, holder_owner
                    FROM {s}.run_leases l WHERE l.thread_id = p_thread;
            ELSIF p_load THEN
                SELECT c.checkpoint_id, c.data INTO checkpoint_id, data FROM {s}.checkpoints c
                    WHERE c.thread_id = p_thread ORDER BY c.step DESC LIMIT 1;
                IF checkpoint_id IS NOT NULL THEN
                    -- The caller knows the messages up to a checkpoint it names: while that
                    -- checkpoint exists they are unchanged (messages are only appended, or
                    -- cut back together with the checkpoints after them).
                    first_seq := 0;
                    IF EXISTS (SELECT 1 FROM {s}.checkpoints c WHERE c.thread_id = p_thread
                               AND c.step = p_known_step
                               AND c.checkpoint_id = p_known_checkpoint) THEN
                        first_seq := p_known_count;
                    END IF;
                    messages := ARRAY(SELECT m.data FROM {s}.messages m
                        WHERE m.thread_id = p_thread AND m.seq >= first_seq ORDER BY m.seq);
                END IF;
            END IF;
            RETURN NEXT;
        END
        $fn$;
        CREATE OR REPLACE FUNCTION {s}.put_step_release(
            p_thread text, p_user text, p_step integer, p_checkpoint text, p_data bytea,
            p_messages bytea[], p_count integer, p_status text, p_title text,
            p_now double precision, p_run text
        ) RETURNS void LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM {s}.put_step(p_thread, p_user, p_step, p_checkpoint, p_data, p_messages,
                                 p_count, p_status, p_title, p_now);
            DELETE FROM {s}.run_leases WHERE thread_id = p_thread AND run_id = p_run;
        END
        $fn$;
        """,
    ]


ZLIB = b"z"
PLAIN = b"j"
COMPRESS_FROM = 96


def pack(text: str) -> bytes:
    """JSON text as stored: zlib-compressed (tag b"z") when that saves space, else as is
    (tag b"j"). Conversation text roughly halves; per-row overhead stays small."""
    raw = text.encode()
    if len(raw) >= COMPRESS_FROM:
        packed = zlib.compress(raw, 6)
        if len(packed) < len(raw):
            return ZLIB + packed
    return PLAIN + raw


def unpack_json(data: bytes) -> bytes:
    """The JSON text of a stored value (decompressed)."""
    tag, body = data[:1], data[1:]
    return zlib.decompress(body) if tag == ZLIB else body


def load_json(raw: bytes) -> Any:
    """Decode JSON text: msgspec (several times faster), or the json module for what msgspec
    refuses and json.dumps writes (a lone surrogate's escape, Infinity)."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.MsgspecError:
        return json.loads(raw)


def unpack(data: bytes) -> Any:
    return load_json(unpack_json(data))
