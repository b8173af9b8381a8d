"""The `agentflow` developer tool: init, doctor, play, api, build."""

from agentflow import __version__

__all__ = ["__version__"]
