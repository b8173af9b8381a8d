"""agentflow: build, run and serve AI agent graphs.

The error tree (`agentflow.errors`) is importable from here: `from agentflow import ConfigError`.
"""

from agentflow.errors import *  # noqa: F403 - the whole error tree, as its __all__ lists it
from agentflow.errors import __all__ as _error_names

__version__ = "0.1.0"

__all__ = [*_error_names, "__version__"]
