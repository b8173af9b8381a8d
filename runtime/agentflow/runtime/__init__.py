"""The production runtime: settings, the Starlette app, and the uvicorn server entry."""

from agentflow.runtime.app import create_app
from agentflow.runtime.errors import ApiError
from agentflow.runtime.loader import ImportFromStringError, load_graph
from agentflow.runtime.server import StartupError, preflight, serve
from agentflow.runtime.settings import ConfigError, Secret, Settings, load_settings

__all__ = [
    "ApiError",
    "ConfigError",
    "ImportFromStringError",
    "Secret",
    "Settings",
    "StartupError",
    "create_app",
    "load_graph",
    "load_settings",
    "preflight",
    "serve",
]
