"""The project's environment for its tests, loaded before they import the graph:
the dotenv file that agentflow.json names, read as `agentflow play` and `agentflow
api` read it (variables already set in the environment win). A graph that reads a
variable at import finds it here too."""

from __future__ import annotations

import json
from pathlib import Path

from dotenv import load_dotenv

PROJECT = Path(__file__).resolve().parents[1]
CONFIG = json.loads((PROJECT / "agentflow.json").read_text(encoding="utf-8"))

if CONFIG.get("env"):
    load_dotenv(PROJECT / CONFIG["env"], override=False)
