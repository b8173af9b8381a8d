"""`python -m agentflow_cli.graph_probe PROJECT_DIR module:attr`: import the graph as the server
would and print the outcome as one JSON line, so `agentflow doctor` never runs user code in
its own process."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from agentflow_cli.checks.graph import RESULT_PREFIX, import_outcome


def main(argv: list[str]) -> None:
    project_dir, spec = argv
    outcome = import_outcome(spec, Path(project_dir).resolve())
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(dataclasses.asdict(outcome)) + "\n")
    sys.stdout.flush()
    # The user's module may have started threads or services that would keep a normal exit
    # waiting; the answer is out, so leave at once.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
