"""Serving under uvicorn: preflight checks, one or many workers, graceful drain.

What uvicorn is given beyond its defaults: the guarded HTTP protocol (header limits and
timeouts, `protocol.py`), a supervisor that logs what it does to workers (`supervisor.py`),
and a short `timeout_graceful_shutdown`: the drain of the runs happens before uvicorn's
shutdown starts (`shutdown.py`), so only the last responses are left to send by then."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette

from agentflow.runtime import env
from agentflow.runtime.app import create_app
from agentflow.runtime.settings import CheckpointerSettings, ConfigError, Settings, load_settings
from agentflow.runtime.startup import StartupError, build_components, open_storage

if TYPE_CHECKING:
    import uvicorn

    from agentflow.runtime.startup import Components


def app_from_env() -> Starlette:
    """Factory for worker processes: the parent passes its resolved options in env vars.
    Under `play`, an agentflow.json that stopped loading keeps the server up: the app shows
    the error until the file is fixed (the reloader restarts it then)."""
    overrides: dict[str, Any] = json.loads(os.environ.get(env.OVERRIDES) or "{}")
    config = os.environ.get(env.CONFIG_PATH) or None
    try:
        app = create_app(load_settings(config, **overrides))
    except ConfigError as exc:
        if not overrides.get("playground"):
            raise
        app = create_app(stand_in_settings(config, overrides), config_error=exc)
    tune_gc()
    return app


def stand_in_settings(config: str | None, overrides: dict[str, Any]) -> Settings:
    """Development settings for a project whose agentflow.json does not load: enough to
    serve /ping, /health and the playground with the error (state in memory meanwhile)."""
    path = Path(config).resolve() if config else None
    return Settings(
        project_dir=path.parent if path else Path.cwd().resolve(),
        config_path=path,
        graph="unavailable:app",
        host=overrides.get("host") or "127.0.0.1",
        port=overrides.get("port") or 8000,
        checkpointer=CheckpointerSettings(kind="memory"),
        playground=True,
        origins=("*",),
    )


def _hand_over(settings: Settings, overrides: dict[str, Any] | None) -> None:
    """Pass the resolved options to the processes uvicorn starts (workers, reloads)."""
    os.environ[env.CONFIG_PATH] = str(settings.config_path or "")
    os.environ[env.OVERRIDES] = json.dumps(overrides or {})


def tune_gc() -> None:
    """Move what startup allocated out of the collector's way and collect the young
    generation less often: a request allocates many short-lived objects, and the default
    threshold (700) made full collections stall requests for tens of milliseconds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


LISTEN_BACKLOG = 8192
# Seconds uvicorn waits for open requests once the drain (SHUTDOWN_GRACE) has ended every
# run: the last responses and stream frames go out, then the connections are closed.
SHUTDOWN_TAIL = 1

# What `play` never reloads for: environments, VCS, caches, our own state and logs, and the
# SQLite journal files that every request touches.
RELOAD_EXCLUDES = [
    ".venv", "venv", ".git", "__pycache__", ".agentflow", "node_modules", "*.log",
    "*.db", "*.db-wal", "*.db-shm", "*.db-journal", "*.sqlite", "*.sqlite3", ".pytest_cache",
]  # fmt: skip
RELOAD_INCLUDES = ["*.py", "*.json", ".env", "*.yaml", "*.yml", "*.toml"]


def serve(
    settings: Settings,
    *,
    overrides: dict[str, Any] | None = None,
    reload: bool = False,
    components: Components | None = None,
) -> None:
    """Run the API until SIGTERM/SIGINT; in-flight requests get SHUTDOWN_GRACE seconds.
    `reload=True` (agentflow play) restarts the app when a project file changes. One worker
    serves the `components` the preflight built; several workers (and reloads) build their
    own, each once, and the state store is migrated here, once, before they start."""
    import uvicorn

    from agentflow.runtime.protocol import GuardedHttpProtocol
    from agentflow.utils import configure_logging

    # The parent's own records (the supervisor's kills and restarts) in the workers' format.
    configure_logging(settings.log_level, "json" if settings.log_format == "json" else "pretty")
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": True,
        "forwarded_allow_ips": os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "http": GuardedHttpProtocol,
        "timeout_graceful_shutdown": SHUTDOWN_TAIL,
        "timeout_keep_alive": 5,
        # uvicorn's 2,048 pending connections reset clients when thousands connect at once
        # (a burst of new chats); the kernel caps it at net.core.somaxconn.
        "backlog": LISTEN_BACKLOG,
        "lifespan": "on",
    }
    # uvicorn re-raises SIGTERM after its graceful shutdown; a drained stop is a clean exit.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if reload:
        _hand_over(settings, overrides)
        os.chdir(settings.project_dir)  # uvicorn resolves the excluded directories from here
        uvicorn.run(
            "agentflow.runtime.server:app_from_env",
            factory=True,
            reload=True,
            reload_dirs=[str(settings.project_dir)],
            reload_includes=RELOAD_INCLUDES,
            reload_excludes=RELOAD_EXCLUDES,
            **common,
        )
        return
    if settings.workers == 1:
        serve_one(settings, components, common)
        return
    asyncio.run(_migrate(settings.checkpointer))  # before the workers: they only connect
    _hand_over(settings, overrides)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="agentflow-prom-"))
    supervise(
        uvicorn.Config(
            "agentflow.runtime.server:app_from_env",
            factory=True,
            workers=settings.workers,
            **common,
        )
    )


def serve_one(settings: Settings, components: Components | None, options: dict[str, Any]) -> None:
    """One process: the components are built (unless given) and the state store opened in
    the server's own event loop before the port is bound, so a `StartupError` stops the
    start with its message, and the app serves them."""
    import uvicorn

    # Under `play` the lifespan builds them: a broken project keeps the server up there.
    parts = components or (None if settings.playground else build_components(settings))
    config = uvicorn.Config(create_app(settings, components=parts), **options)

    async def main() -> None:
        if parts is not None and parts.checkpointer is None:
            parts.checkpointer = await open_storage(settings.checkpointer)
        tune_gc()
        server = uvicorn.Server(config)
        await server.serve()
        if not server.started:
            raise StartupError(
                f"the server did not start on {settings.host}:{settings.port}",
                code="AF-RUNTIME-003",
                fix="see the log lines above",
            )

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(main())


async def _migrate(settings: CheckpointerSettings) -> None:
    checkpointer = await open_storage(settings)
    await checkpointer.close()


def supervise(config: uvicorn.Config) -> None:
    """What uvicorn.run does for workers > 1, with the logging supervisor: bind the socket
    once, start the workers on it, restart the ones that die or hang, until SIGTERM."""
    from agentflow.runtime.supervisor import WorkerSupervisor

    sock = config.bind_socket()
    try:
        WorkerSupervisor(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
