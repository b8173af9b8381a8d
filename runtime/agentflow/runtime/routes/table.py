"""The route table: every route of the HTTP API, once. The app serves these rows
(endpoints.Endpoint.route) and the OpenAPI document describes them (openapi.py).

Errors every route of a kind shares (bad bodies, credentials, the state store, rate limits)
are added by the document from the row; `errors` lists the ones particular to the route."""

from __future__ import annotations

from agentflow.runtime import api_types as api
from agentflow.runtime import idempotency
from agentflow.runtime.endpoints import Endpoint, Header
from agentflow.runtime.lgapi.table import LANGGRAPH_ENDPOINTS
from agentflow.runtime.routes import graph, runs, system, threads

__all__ = ["ENDPOINTS", "IDEMPOTENCY_KEY", "THREAD"]

THREAD = "/v1/threads/{thread_id}"
RUNS = THREAD + "/runs"
RUN = RUNS + "/{run_id}"
IDEMPOTENCY_KEY: Header = (
    "Idempotency-Key", "replays the stored response for a repeated key",
    {"type": "string", "pattern": idempotency.KEY_PATTERN.pattern},
)  # fmt: skip

LAST_EVENT_ID: Header = (
    "Last-Event-ID", "the id of the last event received: the stream resumes after it",
    {"type": "string", "pattern": "^[0-9]{0,10}$"},
)  # fmt: skip

ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/ping", system.ping, "Liveness: no dependencies", "system", auth=False,
             response=api.Ping),
    Endpoint("GET", "/health", system.health, "Readiness: graph, checkpointer, redis", "system",
             auth=False, response=api.Health, errors=["503"]),
    Endpoint("GET", "/metrics", system.metrics, "Prometheus metrics", "system", auth=False,
             response=str, media_type="text/plain"),
    Endpoint("GET", "/v1/graph", graph.graph_info, "Nodes, edges and a Mermaid drawing",
             "graph", graph=True, response=api.GraphInfo),
    Endpoint("POST", "/v1/graph/invoke", graph.invoke, "Run the graph to completion",
             "graph", graph=True, body=api.RunRequestBody, response=api.RunResponse,
             errors=["404", "409", "500", "502", "504"], headers=[IDEMPOTENCY_KEY]),
    Endpoint("POST", "/v1/graph/stream", graph.stream, "Run the graph, streaming SSE "
             "events: metadata, node, delta, message, interrupt, error, end", "graph",
             graph=True, body=api.RunRequestBody, events=api.STREAM_EVENTS,
             media_type="text/event-stream", errors=["404", "409"], headers=[IDEMPOTENCY_KEY]),
    Endpoint("POST", "/v1/graph/stop", graph.stop, "Cancel the run on a thread",
             "graph", body=api.StopRequest, response=api.StopResponse, errors=["404"]),
    Endpoint("GET", "/v1/threads", threads.list_threads, "The caller's threads, newest first",
             "threads", query=api.ThreadListQuery, response=api.ThreadList),
    Endpoint("POST", "/v1/threads/search", threads.search_threads, "The caller's threads "
             "matching metadata, status and time filters, in the order asked", "threads",
             body=api.ThreadSearch, response=api.ThreadList),
    Endpoint("GET", THREAD, threads.get_thread, "One thread", "threads",
             response=api.Thread, errors=["404"]),
    Endpoint("PATCH", THREAD, threads.update_thread, "Set or remove keys of a thread's "
             "metadata", "threads", body=api.ThreadPatch, response=api.Thread, errors=["404"]),
    Endpoint("DELETE", THREAD, threads.delete_thread, "Delete a thread and its history",
             "threads", response=api.DeleteResponse, errors=["404", "409"]),
    Endpoint("GET", THREAD + "/state", threads.thread_state,
             "Latest state, pending interrupt and next nodes", "threads",
             response=api.ThreadState, errors=["404"]),
    Endpoint("GET", THREAD + "/messages", threads.thread_messages, "Messages, paginated",
             "threads", query=api.MessageQuery, response=api.MessagePage, errors=["404"]),
    Endpoint("GET", THREAD + "/history", threads.thread_history, "Checkpoints, newest first",
             "threads", query=api.HistoryQuery, response=api.History, errors=["404"]),
    Endpoint("POST", RUNS, runs.create_run, "Start a background run and leave (202; "
             "Location names it)", "runs", graph=True, body=api.RunCreate, response=api.Run,
             status=202, errors=["404", "409"]),
    Endpoint("GET", RUNS, runs.list_runs, "The thread's runs, newest first", "runs",
             query=api.RunListQuery, response=api.RunList, errors=["404"]),
    Endpoint("GET", RUN, runs.get_run, "One run: status, timings, usage, error, result",
             "runs", response=api.Run, errors=["404"]),
    Endpoint("GET", RUN + "/join", runs.join_run, "Wait for the run; what invoke answers",
             "runs", response=api.RunResponse, errors=["404", "409", "500", "502", "504"]),
    Endpoint("GET", RUN + "/stream", runs.stream_run, "The run's SSE events from the start, "
             "or after Last-Event-ID, from any worker", "runs", events=api.STREAM_EVENTS,
             media_type="text/event-stream", errors=["404"], headers=[LAST_EVENT_ID]),
    Endpoint("POST", RUN + "/cancel", runs.cancel_run, "Cancel the run, on whichever worker "
             "runs it", "runs", response=api.Run, status=202, errors=["404"]),
    *LANGGRAPH_ENDPOINTS,
]  # fmt: skip
