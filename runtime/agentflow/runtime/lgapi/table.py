"""The LangGraph API's routes (the rows of the route table; see routes/table.py)."""

from __future__ import annotations

from typing import Any

from agentflow.runtime.endpoints import Endpoint, Handler
from agentflow.runtime.lgapi import assistants, runs, system, threads
from agentflow.runtime.lgapi import types as lg
from agentflow.runtime.lgapi.store import STORE_ENDPOINTS

__all__ = ["LANGGRAPH_ENDPOINTS"]

ASSISTANT = "/assistants/{assistant_id}"
THREAD = "/threads/{thread_id}"
RUNS = THREAD + "/runs"
RUN = RUNS + "/{run_id}"
TAG = "langgraph"


def row(method: str, path: str, handler: Handler, summary: str, **options: Any) -> Endpoint:
    return Endpoint(method, path, handler, summary, TAG, **options)


LANGGRAPH_ENDPOINTS: list[Endpoint] = [
    row("GET", "/ok", system.ok, "LangGraph API: liveness", auth=False),
    row("GET", "/info", system.info, "LangGraph API: server info", auth=False),
    row("POST", "/assistants/search", assistants.search, "Assistants (one per graph)",
             body=lg.AssistantSearch),
    row("POST", "/assistants/count", assistants.count, "How many assistants match",
             body=lg.AssistantSearch),
    row("GET", ASSISTANT, assistants.get, "One assistant (by id or graph id)",
             errors=["404"]),
    row("GET", ASSISTANT + "/graph", assistants.drawing, "The assistant's graph",
             query=lg.GraphQuery, errors=["404"]),
    row("GET", ASSISTANT + "/schemas", assistants.schemas, "Input, output, state and "
             "config schemas", errors=["404"]),
    row("POST", "/threads", threads.create, "Create a thread", body=lg.ThreadCreate,
             errors=["404", "409"]),
    row("POST", "/threads/search", threads.search, "The caller's threads",
             body=lg.LangGraphThreadSearch),
    row("POST", "/threads/count", threads.count, "How many threads match",
             body=lg.LangGraphThreadSearch),
    row("GET", THREAD, threads.get, "One thread", errors=["404"]),
    row("PATCH", THREAD, threads.patch, "Merge metadata", body=lg.LangGraphThreadPatch,
             errors=["404"]),
    row("DELETE", THREAD, threads.delete, "Delete a thread", status=204,
             errors=["404", "409"]),
    row("GET", THREAD + "/state", threads.get_state, "The thread's state",
             query=lg.StateQuery, errors=["404"]),
    row("POST", THREAD + "/state", threads.post_state, "Write the thread's state",
             body=lg.StateUpdate, errors=["404", "409"]),
    row("GET", THREAD + "/state/{checkpoint_id}", threads.get_state,
             "The state at a checkpoint", query=lg.StateQuery, errors=["404"]),
    row("POST", THREAD + "/history", threads.post_history, "The thread's states",
             body=lg.HistoryBody, errors=["404"]),
    row("GET", THREAD + "/history", threads.get_history, "The thread's states",
             query=lg.LangGraphHistoryQuery, errors=["404"]),
    row("POST", RUNS + "/stream", runs.stream, "Run, streaming its events",
             graph=True, body=lg.RunBody, media_type="text/event-stream",
             errors=["404", "409"]),
    row("POST", RUNS + "/wait", runs.wait, "Run and wait for its values", graph=True,
             body=lg.RunBody, errors=["404", "409"]),
    row("POST", RUNS, runs.create, "Start a background run", graph=True,
             body=lg.RunBody, errors=["404", "409"]),
    row("GET", RUNS, runs.list_runs, "The thread's runs", query=lg.LangGraphRunListQuery,
             errors=["404"]),
    row("GET", RUN, runs.get_run, "One run", errors=["404"]),
    row("GET", RUN + "/join", runs.join, "Wait for the run's values", errors=["404"]),
    row("GET", RUN + "/stream", runs.join_stream, "The run's events (Last-Event-ID "
             "resumes)", query=lg.JoinStreamQuery, media_type="text/event-stream",
             errors=["404"]),
    row("POST", RUN + "/cancel", runs.cancel, "Cancel the run", query=lg.CancelQuery,
             status=202, errors=["404"]),
    row("POST", "/runs/stream", runs.stream_stateless, "Run on a new thread, streaming",
             graph=True, body=lg.RunBody, media_type="text/event-stream", errors=["404", "409"]),
    row("POST", "/runs/wait", runs.wait_stateless, "Run on a new thread and wait",
             graph=True, body=lg.RunBody, errors=["404", "409"]),
    row("POST", "/runs", runs.create_stateless, "Start a run on a new thread",
             graph=True, body=lg.RunBody, errors=["404", "409"]),
    *STORE_ENDPOINTS,
]  # fmt: skip
