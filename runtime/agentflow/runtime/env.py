"""How `agentflow api` hands its resolved options to worker processes (internal variables).
Every variable a user sets is declared in `agentflow.utils.config`."""

from __future__ import annotations

CONFIG_PATH = "AGENTFLOW_CONFIG"
OVERRIDES = "AGENTFLOW_OVERRIDES"
SHOWN_WARNINGS = "AGENTFLOW_SHOWN_WARNINGS"  # settings warnings the CLI already printed (JSON)
