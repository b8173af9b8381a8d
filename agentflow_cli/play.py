"""`agentflow play`: the local dev loop — the runtime in development mode with hot reload and
the web playground, or the same session in the terminal."""

from __future__ import annotations

import os
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any

from agentflow_cli.api import refuse_blocking_problems, show_warnings
from agentflow_cli.output import EXIT_SERVER_FAILED, CliError, config_hint, console


def run_play(
    *,
    config: Path | None,
    host: str,
    port: int,
    no_browser: bool,
    no_reload: bool,
    terminal: bool,
) -> None:
    from agentflow.graph import AgentflowError
    from agentflow.runtime import load_settings, serve

    overrides: dict[str, Any] = {
        "host": host, "port": port, "mode": "development", "playground": True,
    }  # fmt: skip
    try:
        settings = load_settings(config, **overrides)
    except AgentflowError as exc:
        raise CliError(
            f"cannot start the playground: {getattr(exc, 'problem', None) or exc}",
            hint=config_hint(exc),
            code=EXIT_SERVER_FAILED,
        ) from exc
    show_warnings(settings)
    if terminal:
        from agentflow_cli.terminal import run_terminal

        run_terminal(settings)
        return
    refuse_blocking_problems(settings, what="the playground")
    base = f"http://{_display_host(host)}:{port}"
    console.print(
        f"\n[bold]agentflow play[/] — {settings.graph} "
        f"({'hot reload on' if not no_reload else 'no reload'}, "
        f"{settings.checkpointer.kind} checkpointer)\n"
        f"  playground  {base}/playground\n"
        f"  API         {base}/v1/graph/invoke, {base}/v1/graph/stream\n"
        f"  docs        {base}{settings.docs_path or '/docs'}\n"
        "  This is a local dev loop; deploy with `agentflow api` behind HTTPS.\n",
        soft_wrap=True,
        highlight=False,
    )
    if not no_browser and display_available():
        open_when_ready(f"{base}/playground", f"{base}/ping")
    serve(settings, overrides=overrides, reload=not no_reload)


def display_available() -> bool:
    """Whether a browser window can be shown (never true over plain SSH or in CI)."""
    if os.environ.get("CI") or os.environ.get("AGENTFLOW_NO_BROWSER"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_when_ready(url: str, ping: str, timeout: float = 15.0) -> None:
    """Open `url` in a browser once the server answers; failures are ignored."""

    def wait_and_open() -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(ping, timeout=1) as reply:
                    if reply.status == 200:
                        webbrowser.open(url)
                        return
            except OSError:  # URLError, refused, reset: not up yet
                pass
            time.sleep(0.2)

    threading.Thread(target=wait_and_open, daemon=True, name="open-browser").start()


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
