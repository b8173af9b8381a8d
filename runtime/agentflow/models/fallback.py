"""FallbackChat: try several models in order when one is down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from agentflow.graph.messages import Message
from agentflow.models.base import ChatModel, ToolSchema, aclose_iterator
from agentflow.models.errors import (
    ModelConfigError,
    ModelError,
    ModelHTTPError,
    ModelResponseError,
    ModelUnavailableError,
)

logger = logging.getLogger("agentflow.models")


def should_fall_back(error: BaseException) -> bool:
    """True for outages the next model can cover: retries exhausted, timeouts, connection
    failures, transient HTTP statuses, and unparseable provider answers.

    False for everything caused by the request or the setup (400, 401, 403, 404, 422, a
    missing key, a bug): switching models would hide a bug that will hit every request.
    """
    if isinstance(error, ModelUnavailableError | ModelResponseError):
        return True
    return isinstance(error, ModelHTTPError) and error.retryable


class FallbackChat:
    """Answer with the first of ``models`` that is available.

    Each model applies its own retries and timeout first; on an outage (see
    :func:`should_fall_back`) the next model is tried. Errors that a different model would not
    fix are raised at once. When every model failed, ``ModelUnavailableError`` lists all the
    errors. The answering model is logged at INFO and put in ``message.metadata["model"]``.
    """

    def __init__(self, models: Sequence[ChatModel]) -> None:
        if not models:
            raise ModelConfigError("FallbackChat needs at least one model")
        self.models: list[ChatModel] = list(models)
        self.name = "fallback(" + ",".join(m.name for m in self.models) + ")"

    def __repr__(self) -> str:
        return f"FallbackChat({self.models!r})"

    def _failed(self, index: int, error: ModelError, errors: list[ModelError]) -> None:
        errors.append(error)
        model = self.models[index]
        if index + 1 < len(self.models):
            logger.warning(
                "model %s failed (%s); falling back to %s",
                model.name,
                type(error).__name__,
                self.models[index + 1].name,
                extra={"model": model.name, "error_class": type(error).__name__},
            )

    def _answered(self, index: int, message: Message) -> Message:
        model = self.models[index]
        message.metadata["model"] = model.name
        logger.info(
            "model %s answered (%d of %d in %s)",
            model.name,
            index + 1,
            len(self.models),
            self.name,
            extra={"model": model.name},
        )
        return message

    def _all_failed(self, errors: list[ModelError]) -> ModelUnavailableError:
        summary = "; ".join(
            f"{m.name}: {e.reason}" for m, e in zip(self.models, errors, strict=True)
        )
        return ModelUnavailableError(
            f"all {len(self.models)} models failed ({summary})", model=self.name, errors=errors
        )

    async def ainvoke(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> Message:
        errors: list[ModelError] = []
        for index, model in enumerate(self.models):
            try:
                message = await model.ainvoke(messages, tools=tools, timeout=timeout)
            except ModelError as exc:
                if not should_fall_back(exc):
                    raise
                self._failed(index, exc, errors)
                continue
            return self._answered(index, message)
        raise self._all_failed(errors) from errors[-1]

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str | Message]:
        """Stream from the first available model. A model that fails after it has yielded
        deltas is not replaced (the consumer already showed them); its error is raised."""
        errors: list[ModelError] = []
        for index, model in enumerate(self.models):
            started = False
            stream = model.astream(messages, tools=tools, timeout=timeout)
            try:
                async for item in stream:
                    started = True
                    if isinstance(item, Message):
                        item = self._answered(index, item)
                    yield item
                return
            except ModelError as exc:
                if started or not should_fall_back(exc):
                    raise
                self._failed(index, exc, errors)
            finally:
                await aclose_iterator(stream)
        raise self._all_failed(errors) from errors[-1]
