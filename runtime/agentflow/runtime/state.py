"""What the lifespan loads once and every handler uses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.requests import Request

from agentflow.graph.storage import Checkpointer, ThreadInfo
from agentflow.runtime.auth import Authenticator
from agentflow.runtime.background import BackgroundRuns
from agentflow.runtime.errors import ApiError, require_owner
from agentflow.runtime.loader import ServedGraph
from agentflow.runtime.metrics import Metrics
from agentflow.runtime.ratelimit import RateLimiter
from agentflow.runtime.runs import RunService
from agentflow.runtime.schemas import DEFAULT_RULES, RunRules
from agentflow.runtime.settings import Settings


@dataclass(slots=True)
class AppRuntime:
    settings: Settings
    graph: ServedGraph  # the default graph: what /v1 serves
    checkpointer: Checkpointer
    runs: RunService
    metrics: Metrics
    authenticate: Authenticator
    started_at: float = field(default_factory=time.time)
    graph_error: str | None = None
    config_invalid: bool = False  # graph_error is agentflow.json's (under play)
    limiter: RateLimiter | None = None
    run_rules: RunRules = DEFAULT_RULES  # what a run request may carry (roles, state fields)
    background: BackgroundRuns = field(init=False)
    graphs: dict[str, ServedGraph] = field(default_factory=dict)  # every served graph by name

    def __post_init__(self) -> None:
        self.background = BackgroundRuns(self.runs)


def runtime(request: Request) -> AppRuntime:
    rt: AppRuntime = request.app.state.runtime
    return rt


def require_graph(rt: AppRuntime) -> None:
    """503 while the project cannot be loaded (under `play`, until the file is fixed)."""
    if rt.graph_error is not None:
        code = "config_invalid" if rt.config_invalid else "graph_load_failed"
        raise ApiError(503, code, rt.graph_error)


def request_id(request: Request) -> str:
    return str(request.scope["state"]["request_id"])


async def current_user(request: Request) -> tuple[AppRuntime, str]:
    """The app runtime and the authenticated user id (401 when auth fails, 429 over a
    rate limit)."""
    rt = runtime(request)
    user_id = await rt.authenticate(request)
    request.scope["state"]["log"]["user_id"] = user_id
    if rt.limiter is not None:
        await rt.limiter.check(request, user_id)  # 429 over a rate limit
    return rt, user_id


async def owned_thread(rt: AppRuntime, thread_id: str, user_id: str) -> ThreadInfo:
    """The thread if it exists and belongs to `user_id`; 404 otherwise (never 403, so
    thread ids of other users cannot be probed)."""
    info = await rt.checkpointer.get_thread(thread_id)
    require_owner(info.user_id if info is not None else None, user_id)
    assert info is not None
    return info
