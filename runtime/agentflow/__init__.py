"""agentflow: build, run and serve AI agent graphs.

The error tree (`agentflow.errors`) is importable from here: `from agentflow import ConfigError`.
"""

from agentflow.errors import (
    AgentflowError,
    ArgumentError,
    CheckpointerError,
    ConfigError,
    ConflictError,
    GraphError,
    GraphRecursionError,
    ImportFromStringError,
    InvalidCursorError,
    InvalidInputError,
    InvalidLimitError,
    MissingVariableError,
    ModelConfigError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelLimitError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
    NodeError,
    NothingToResumeError,
    RunTimeoutError,
    ScriptExhaustedError,
    StartupError,
)

__version__ = "0.1.0"

__all__ = [
    "AgentflowError",
    "ArgumentError",
    "CheckpointerError",
    "ConfigError",
    "ConflictError",
    "GraphError",
    "GraphRecursionError",
    "ImportFromStringError",
    "InvalidCursorError",
    "InvalidInputError",
    "InvalidLimitError",
    "MissingVariableError",
    "ModelConfigError",
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelLimitError",
    "ModelResponseError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "NodeError",
    "NothingToResumeError",
    "RunTimeoutError",
    "ScriptExhaustedError",
    "StartupError",
    "__version__",
]
