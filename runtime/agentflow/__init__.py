"""agentflow: build, run and serve AI agent graphs."""

__version__ = "0.1.0"

__all__ = ["__version__"]
