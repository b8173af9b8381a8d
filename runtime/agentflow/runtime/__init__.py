"""The production runtime: settings, the Starlette app, and the uvicorn server entry."""

from agentflow.runtime.app import create_app
from agentflow.runtime.errors import ApiError
from agentflow.runtime.loader import ImportFromStringError, load_graph
from agentflow.runtime.server import serve
from agentflow.runtime.settings import ConfigError, Secret, Settings, load_settings
from agentflow.runtime.startup import (
    Components,
    StartupError,
    StartupProblem,
    build_components,
    startup_problems,
)

__all__ = [
    "ApiError",
    "Components",
    "ConfigError",
    "ImportFromStringError",
    "Secret",
    "Settings",
    "StartupError",
    "StartupProblem",
    "build_components",
    "create_app",
    "load_graph",
    "load_settings",
    "serve",
    "startup_problems",
]
