"""`python -m agentflow_cli.graph_probe PROJECT_DIR module:attr`: import the graph as the server
would and print the outcome, with the models the graph uses, as one JSON line, so
`agentflow doctor` never runs user code in its own process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from agentflow_cli.checks.graph import RESULT_PREFIX, inspect_graph


def main(argv: list[str]) -> None:
    project_dir, spec = argv
    probe = inspect_graph(spec, Path(project_dir).resolve())
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(probe.to_json()) + "\n")
    sys.stdout.flush()
    # The user's module may have started threads or services that would keep a normal exit
    # waiting; the answer is out, so leave at once.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
