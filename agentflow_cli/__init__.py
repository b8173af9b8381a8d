"""The `agentflow` developer tool: init, doctor, play, api, build."""

from agentflow import __version__

# The name on the package index (`pip install agentflow-runner`); the import packages stay
# `agentflow` and `agentflow_cli`, the command `agentflow`.
DISTRIBUTION = "agentflow-runner"

__all__ = ["DISTRIBUTION", "__version__"]
