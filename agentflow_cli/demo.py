"""`make demo`: serve the bundled demo project (a ReAct agent on the offline demo model,
state in SQLite) with `agentflow api`. The project is created in `.agentflow/demo` once, as
`agentflow init .agentflow/demo --template react --yes` would, plus its `.env`; its threads
survive restarts of the demo."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from agentflow_cli.checks.runtime import port_outcome
from agentflow_cli.init import create_project
from agentflow_cli.output import EXIT_SERVER_FAILED, CliError, print_error

DEMO_DIR = Path(".agentflow") / "demo"


def ensure_demo_project(directory: Path = DEMO_DIR) -> None:
    """Create the demo project unless it exists; a half-made one is completed (its own
    files are rewritten, nothing else is touched)."""
    if not (directory / "agentflow.json").exists():
        create_project(directory, template="react", name="demo", force=True, with_wheel=False)
    env_file, example = directory / ".env", directory / ".env.example"
    if not env_file.exists() and example.exists():  # its first next step: cp .env.example .env
        shutil.copyfile(example, env_file)


def main() -> None:
    try:
        ensure_demo_project()
    except CliError as exc:
        print_error(exc.message, exc.hint)
        sys.exit(exc.code)
    port = os.environ.get("PORT", "8000")
    taken = port_outcome("127.0.0.1", int(port)) if port.isdigit() else None
    if taken is not None and taken.severity != "ok":  # before any URL that is not ours
        hint = f"stop the other process (see `lsof -i :{port}`) or pick another port: PORT=8001"
        print_error(f"cannot start the demo: {taken.detail}", hint + " make demo")
        sys.exit(EXIT_SERVER_FAILED)
    print(
        f"demo project in {DEMO_DIR}; try:\n"
        f"  curl -s localhost:{port}/v1/graph/invoke -H 'content-type: application/json' "
        '-d \'{"messages": [{"role": "user", "content": "what is 12 + 30"}]}\'\n'
        f"  curl -sN localhost:{port}/v1/graph/stream -H 'content-type: application/json' "
        '-d \'{"messages": [{"role": "user", "content": "what time is it"}]}\'\n'
        f"  open http://127.0.0.1:{port}/docs\n",
        flush=True,
    )
    from agentflow_cli.main import run

    sys.argv = ["agentflow", "api", "--config", str(DEMO_DIR / "agentflow.json"), "--port", port]
    run()


if __name__ == "__main__":
    main()
