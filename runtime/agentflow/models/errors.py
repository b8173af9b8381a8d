"""Errors raised by chat models.

AgentflowError
 └── ModelError                  any model failure; ``model`` names the model
      ├── ModelConfigError       wrong setup: missing key, unpinned model name, bad env value
      ├── ModelHTTPError         the provider answered with an HTTP error status
      ├── ModelResponseError     the provider answered 2xx with something we cannot parse
      ├── ScriptExhaustedError   a ScriptedChat was called more often than it has responses
      └── ModelUnavailableError  no answer for transient reasons; ``errors`` lists the causes
           ├── ModelTimeoutError      the call took longer than its timeout
           └── ModelConnectionError   connecting / reading from the provider failed

Error messages never contain the API key or request headers: provider messages are scrubbed
of the key (and of anything shaped like an ``sk-...`` key) before they are stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agentflow.graph.errors import AgentflowError

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


class ModelError(AgentflowError):
    """A chat model call failed. ``reason`` is the message without the model prefix."""

    retryable: bool = False

    def __init__(self, reason: str, *, model: str | None = None) -> None:
        self.reason = reason
        self.model = model
        super().__init__(f"model {model!r}: {reason}" if model else reason)


class ModelConfigError(ModelError):
    """The model is set up wrongly (missing API key, unpinned name, invalid env value)."""


class ModelResponseError(ModelError):
    """The provider returned a success status with a body we could not understand."""


class ScriptExhaustedError(ModelError):
    """A ScriptedChat received more calls than it has scripted responses."""


class ModelHTTPError(ModelError):
    """The provider answered with an HTTP error status.

    ``retryable`` is True for transient statuses (see ``agentflow.models.retry``);
    ``retry_after`` is the server's requested wait in seconds, when it sent one.
    """

    def __init__(
        self,
        status_code: int,
        provider_message: str,
        *,
        model: str | None = None,
        url: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.provider_message = provider_message
        self.url = url
        self.retryable = retryable
        self.retry_after = retry_after
        where = f" from {url}" if url else ""
        reason = f"HTTP {status_code}{where}"
        if provider_message:
            reason += f": {provider_message}"
        if hint:
            reason += f" ({hint})"
        super().__init__(reason, model=model)


class ModelUnavailableError(ModelError):
    """The model gave no answer for transient reasons: retries exhausted, all fallbacks failed,
    a timeout or a connection failure. ``errors`` holds the underlying errors, oldest first."""

    def __init__(
        self,
        reason: str,
        *,
        model: str | None = None,
        errors: Sequence[BaseException] = (),
    ) -> None:
        self.errors: list[BaseException] = list(errors)
        super().__init__(reason, model=model)

    @property
    def last_error(self) -> BaseException | None:
        return self.errors[-1] if self.errors else None


class ModelTimeoutError(ModelUnavailableError):
    """A model call (or every retry of it) exceeded its timeout."""

    retryable = True


class ModelConnectionError(ModelUnavailableError):
    """The provider could not be reached, or the connection broke mid-response."""

    retryable = True
