"""The production runtime: settings, the Starlette app, and the uvicorn server entry."""

from agentflow.runtime.app import create_app
from agentflow.runtime.env import SHOWN_WARNINGS
from agentflow.runtime.errors import ApiError
from agentflow.runtime.loader import ImportFromStringError, load_graph, load_served_graph
from agentflow.runtime.server import serve
from agentflow.runtime.settings import (
    CONFIG_FILE,
    MIN_JWT_SECRET_BYTES,
    MODES,
    CheckpointerSettings,
    ConfigError,
    Secret,
    Settings,
    export_dotenv,
    find_config,
    load_settings,
    read_config_file,
    read_dotenv,
)
from agentflow.runtime.startup import (
    Components,
    StartupError,
    StartupProblem,
    build_components,
    checkpointer_for,
    missing_variables,
    required_env_problem,
    sqlite_problem,
    startup_problems,
    workers_problem,
)

__all__ = [
    "CONFIG_FILE",
    "MIN_JWT_SECRET_BYTES",
    "MODES",
    "SHOWN_WARNINGS",
    "ApiError",
    "CheckpointerSettings",
    "Components",
    "ConfigError",
    "ImportFromStringError",
    "Secret",
    "Settings",
    "StartupError",
    "StartupProblem",
    "build_components",
    "checkpointer_for",
    "create_app",
    "export_dotenv",
    "find_config",
    "load_graph",
    "load_served_graph",
    "load_settings",
    "missing_variables",
    "read_config_file",
    "read_dotenv",
    "required_env_problem",
    "serve",
    "sqlite_problem",
    "startup_problems",
    "workers_problem",
]
