"""Runtime checks: debug logging and reload/debug flags in production, and a free port."""

from __future__ import annotations

import errno
import socket

from agentflow_cli.checks import Check, Outcome
from agentflow_cli.checks.context import Context

# Variables that switch on auto-reload or debug behaviour in uvicorn, Python or common setups.
DEBUG_FLAGS = ("UVICORN_RELOAD", "RELOAD", "DEBUG", "PYTHONDEVMODE", "PYTHONASYNCIODEBUG")
FALSE_VALUES = ("", "0", "false", "no", "off")


def _log_level(ctx: Context) -> Outcome:
    assert ctx.settings is not None
    if ctx.settings.log_level == "DEBUG":
        return Outcome(
            "warning",
            "LOG_LEVEL=DEBUG in production: a log line per internal step, with request "
            "details that may include user data, and a large log bill",
            "set LOG_LEVEL=INFO (the default) or WARNING",
        )
    return Outcome("ok", f"log level {ctx.settings.log_level}")


def _debug_flags(ctx: Context) -> Outcome:
    environ = ctx.environ_all
    names = [n for n in DEBUG_FLAGS if environ.get(n, "").strip().lower() not in FALSE_VALUES]
    if names:
        return Outcome(
            "warning",
            f"{', '.join(names)} set in production: reload restarts workers when files change "
            "(cutting off runs in flight) and debug modes slow every request",
            f"unset {', '.join(names)} in the production environment",
        )
    return Outcome("ok", f"none of {', '.join(DEBUG_FLAGS)} is set")


def port_outcome(host: str, port: int) -> Outcome:
    """Whether the server could bind host:port right now."""
    if port == 0:
        return Outcome("ok", "port 0: the system picks a free port")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        return Outcome(
            "warning",
            f"cannot resolve the host {host!r} to bind to ({exc.strerror})",
            "set HOST (or --host) to an address of this machine, e.g. 0.0.0.0",
        )
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Outcome(
                    "warning",
                    f"port {port} is already in use on {host}: the server cannot bind it",
                    f"stop the other process (see `lsof -i :{port}`) or pick a free port with "
                    "--port (or PORT)",
                )
            return Outcome(
                "warning",
                f"cannot bind {host}:{port}: {exc.strerror}",
                "set HOST and PORT (or --host/--port) to an address and port this user may use",
            )
    return Outcome("ok", f"{host}:{port} is free")


def _port(ctx: Context) -> Outcome:
    assert ctx.settings is not None
    return port_outcome(ctx.settings.host, ctx.settings.port)


PORT = Check("AF-RUNTIME-003", "runtime", "port free", _port, needs_settings=True)
CHECKS = (
    Check("AF-RUNTIME-001", "runtime", "log level", _log_level, needs_settings=True,
          production_only=True),
    Check("AF-RUNTIME-002", "runtime", "reload and debug flags", _debug_flags,
          needs_config=False, production_only=True),
    PORT,
)  # fmt: skip
