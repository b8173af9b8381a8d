"""Errors raised by chat models. They are defined in `agentflow.errors` (the one error tree,
drawn there: ModelError and its subclasses) and re-exported here.

Error messages never contain the API key or request headers: provider messages are scrubbed
of the key (and of anything shaped like an ``sk-...`` key) before they are stored.
"""

from __future__ import annotations

import re

from agentflow.errors import (
    ModelConfigError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelLimitError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
    ScriptExhaustedError,
)

__all__ = [
    "ModelConfigError",
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelLimitError",
    "ModelResponseError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "ScriptExhaustedError",
    "scrub",
]

_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*.]{2})[A-Za-z0-9_\-*.]{6,}")
_MAX_PROVIDER_MESSAGE = 500


def scrub(text: str, *secrets: str | None) -> str:
    """Remove the given secrets and anything that looks like an ``sk-`` API key from text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _KEY_LIKE.sub(r"\1***", text)
    if len(text) > _MAX_PROVIDER_MESSAGE:
        text = text[:_MAX_PROVIDER_MESSAGE] + "..."
    return text
