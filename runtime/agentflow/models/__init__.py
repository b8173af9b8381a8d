"""Chat models: the ChatModel protocol, OpenAI-compatible HTTP models, fallbacks, retries,
and offline models for tests and demos."""

from __future__ import annotations

from agentflow.models.base import ChatModel, ToolSchema, call_model
from agentflow.models.demo import DemoChat
from agentflow.models.errors import (
    ModelConfigError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
    ScriptExhaustedError,
)
from agentflow.models.fallback import FallbackChat, should_fall_back
from agentflow.models.http import aclose_shared_clients
from agentflow.models.inventory import ModelInfo, models_in_graph
from agentflow.models.offline import EchoChat, RecordedCall, ScriptedChat
from agentflow.models.openai import OpenAIChat
from agentflow.models.retry import (
    RETRYABLE_STATUS_CODES,
    RetryPolicy,
    is_retryable,
    retry_async,
)

__all__ = [
    "RETRYABLE_STATUS_CODES",
    "ChatModel",
    "DemoChat",
    "EchoChat",
    "FallbackChat",
    "ModelConfigError",
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelInfo",
    "ModelResponseError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "OpenAIChat",
    "RecordedCall",
    "RetryPolicy",
    "ScriptExhaustedError",
    "ScriptedChat",
    "ToolSchema",
    "aclose_shared_clients",
    "call_model",
    "is_retryable",
    "models_in_graph",
    "retry_async",
    "should_fall_back",
]
