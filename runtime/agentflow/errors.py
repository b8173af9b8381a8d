"""The one error tree of agentflow: every error the library raises on purpose.

AgentflowError                       anything agentflow raises on purpose
 ├── ConfigError                     wrong configuration: `problem`, `where` (file: key), `fix`
 │    ├── ImportFromStringError      a `module:attr` of the project could not be imported
 │    │    └── MissingVariableError  the project's code read an unset environment variable
 │    └── StartupError               a check before serving failed; `code` is doctor's code
 ├── GraphError                      the graph is defined or used wrongly
 │    ├── InvalidInputError          input or a node's return value has the wrong shape
 │    │    └── NothingToResumeError  a resume on a thread with no pending interrupt
 │    ├── GraphRecursionError        a run took more steps than its recursion_limit
 │    └── NodeError                  a node raised; `node`, `error` (also the __cause__)
 ├── CheckpointerError               storage failed or is misconfigured
 │    ├── InvalidCursorError (+ ValueError)  a page cursor this store did not issue
 │    ├── ConflictError                      another writer changed the thread meanwhile
 │    ├── InvalidLimitError (+ ValueError)   a page size out of range
 │    └── InvalidItemError (+ ValueError)    a store item's namespace, key, value or query is wrong
 ├── ModelError                      a chat model call failed; `reason`, `model`, `retryable`
 │    ├── ModelConfigError           wrong setup: missing key, unpinned model, bad env value
 │    ├── ModelResponseError         a 2xx answer we cannot parse
 │    ├── ScriptExhaustedError       a ScriptedChat called more often than it has answers
 │    ├── ModelHTTPError             an HTTP error status; `status_code`, `retry_after`
 │    └── ModelUnavailableError      no answer for transient reasons; `errors` (oldest first)
 │         ├── ModelTimeoutError     a call (or every retry) exceeded its timeout
 │         ├── ModelConnectionError  the provider could not be reached or the stream broke
 │         └── ModelLimitError       no slot under the model's concurrency / rate limit
 ├── RunTimeoutError                 a served run exceeded RUN_TIMEOUT
 └── ArgumentError (+ ValueError)    a model's tool arguments do not match the tool's schema

"(+ X)" names a base outside the tree: `except ValueError` catches those classes too.
Not in the tree, on purpose: `agentflow.runtime.ApiError` (an HTTP error response the server
renders, not a library failure) and `agentflow.graph.command.GraphInterrupt` (a
BaseException that pauses a run; control flow, not an error).

Import any of them from here or from `agentflow`; the modules that raise them re-export them
(`agentflow.graph`, `agentflow.models`, `agentflow.checkpointer`, `agentflow.tools`,
`agentflow.runtime`). This module imports nothing from agentflow: it is the bottom layer.
Error messages never contain secrets: model errors store provider text scrubbed of the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
    "InvalidItemError",
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
]


class AgentflowError(Exception):
    """Base class of every error agentflow raises on purpose."""


# -- configuration -----------------------------------------------------------------------------


class ConfigError(AgentflowError):
    """The configuration is wrong: what (`problem`), `where` (file: key, or variable), `fix`."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where, self.fix, self.problem = where, fix, message
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


class ImportFromStringError(ConfigError):
    """`module:attr` could not be imported."""


class MissingVariableError(ImportFromStringError):
    """The user's code read an environment variable (`os.environ["X"]`) that is not set."""


class _Problem(Protocol):
    """What `StartupError.of` reads (`agentflow.runtime.startup.StartupProblem`)."""

    @property
    def code(self) -> str: ...

    @property
    def problem(self) -> str: ...

    @property
    def fix(self) -> str: ...


class StartupError(ConfigError):
    """A problem found before serving: what, why and the fix, with its doctor code."""

    def __init__(self, problem: str, *, code: str, fix: str | None = None) -> None:
        self.code = code
        super().__init__(problem, fix=fix)

    @classmethod
    def of(cls, problem: _Problem) -> StartupError:
        return cls(problem.problem, code=problem.code, fix=problem.fix)


# -- the graph ---------------------------------------------------------------------------------


class GraphError(AgentflowError):
    """The graph is defined or used wrongly; the message names the node and the fix."""


class InvalidInputError(GraphError):
    """Input (or a node's return value) has the wrong shape."""


class NothingToResumeError(InvalidInputError):
    """A resume (or `Command(resume=...)`) on a thread with no pending interrupt."""


class GraphRecursionError(GraphError):
    """A run exceeded its recursion_limit."""


class NodeError(GraphError):
    """A node raised an exception; the original is chained as __cause__."""

    def __init__(self, node: str, error: BaseException) -> None:
        super().__init__(f"node {node!r} failed: {type(error).__name__}: {error}")
        self.node = node
        self.error = error


# -- storage -----------------------------------------------------------------------------------


class CheckpointerError(AgentflowError):
    """The checkpointer could not read or write state."""


class InvalidCursorError(CheckpointerError, ValueError):
    """A pagination cursor that this checkpointer did not issue."""


class ConflictError(CheckpointerError):
    """Another writer changed the thread since this run read it."""


class InvalidLimitError(CheckpointerError, ValueError):
    """A page size out of range: the caller's mistake, not the storage's."""


class InvalidItemError(CheckpointerError, ValueError):
    """A store item (agentflow.checkpointer.ItemStore) asked for with a wrong namespace,
    key, value, filter or page: the caller's mistake, not the storage's."""


# -- models ------------------------------------------------------------------------------------


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


class ModelLimitError(ModelUnavailableError):
    """No slot under the model's concurrency / rate limit within the allowed wait."""

    retryable = False


# -- serving and tools -------------------------------------------------------------------------


class RunTimeoutError(AgentflowError):
    """The run exceeded RUN_TIMEOUT."""


class ArgumentError(AgentflowError, ValueError):
    """The model's arguments do not match the tool's schema."""
