"""Prometheus metrics of one app. With several workers (PROMETHEUS_MULTIPROC_DIR set by
`agentflow api --workers N`) every worker writes its own files and /metrics sums them."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
NODE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "agentflow_http_requests", "HTTP requests by route and status",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "agentflow_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.runs = Counter("agentflow_runs", "Graph runs by outcome", ["outcome"], registry=r)
        self.active_runs = Gauge(
            "agentflow_active_runs", "Runs in progress", registry=r, multiprocess_mode="livesum"
        )
        self.node_duration = Histogram(
            "agentflow_node_duration_seconds", "Node step duration",
            ["node"], buckets=NODE_BUCKETS, registry=r,
        )  # fmt: skip
        self.tool_errors = Counter(
            "agentflow_tool_errors", "Tool calls that failed", ["tool"], registry=r
        )
        self.tokens = Counter(
            "agentflow_tokens", "Model tokens by kind and model", ["kind", "model"], registry=r
        )

        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._node_children: dict[str, Any] = {}
        self._run_children: dict[str, Any] = {}

    # Label lookups are cached: prometheus_client's labels() validates and locks each call.
    def observe_request(self, method: str, route: str, status: str, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(method, route, status),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_node(self, node: str, seconds: float) -> None:
        child = self._node_children.get(node)
        if child is None:
            child = self._node_children[node] = self.node_duration.labels(node)
        child.observe(seconds)

    def count_run(self, outcome: str) -> None:
        child = self._run_children.get(outcome)
        if child is None:
            child = self._run_children[outcome] = self.runs.labels(outcome)
        child.inc()

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
