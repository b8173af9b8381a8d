"""`make demo`: serve the bundled demo project (a ReAct agent on the offline demo model,
state in SQLite) with `agentflow api`. The project is copied to `.agentflow/demo` once, so
its threads survive restarts of the demo."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from agentflow_cli.templates import template_dir

DEMO_DIR = Path(".agentflow") / "demo"


def main() -> None:
    if not (DEMO_DIR / "agentflow.json").exists():
        shutil.copytree(template_dir("project/react"), DEMO_DIR, dirs_exist_ok=True)
    port = os.environ.get("PORT", "8000")
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
