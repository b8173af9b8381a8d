"""OpenAIChat: any OpenAI-compatible chat-completions endpoint, over aiohttp.

Configuration, highest precedence first:

* base URL: ``base_url=`` > ``OPENAI_BASE_URL`` > ``https://api.openai.com/v1``
* API key: ``api_key=`` > ``OPENAI_API_KEY``. A missing key fails at construction, except
  for servers on localhost (Ollama, vLLM, llama.cpp ...) which usually need none. A base URL
  with credentials (``https://user:pass@host/v1``) is refused: they would be sent as Basic
  auth instead of the key, and logged.
* secrets: the key (and secret-named ``headers=``) are registered with ``register_secret``;
  a reply that echoes one (in its text or in tool-call arguments) has it masked before it
  becomes a Message, so it is never stored, returned, streamed or logged.
* timeout: per-call ``timeout=`` > ``timeout=`` of the constructor > ``AGENTFLOW_MODEL_TIMEOUT``
  > 60 seconds. 60s bounds a stuck provider (a worker must never hang forever) yet leaves room
  for long non-streamed answers. For ``ainvoke`` it bounds the whole call; for ``astream`` it
  bounds connecting, waiting for the first byte and each gap between chunks, so a long answer
  that keeps flowing is not cut off. Connecting alone is capped at 10s.
* retries: ``retry=`` / ``max_retries=`` > ``AGENTFLOW_MODEL_MAX_RETRIES`` > ``RetryPolicy()``
  (see ``agentflow.models.retry``).
* outbound limits: ``max_concurrency=`` > ``AGENTFLOW_MODEL_MAX_CONCURRENCY`` and
  ``requests_per_minute=`` > ``AGENTFLOW_MODEL_RPM`` (default: none), shared per (base URL,
  model) in the process; each attempt waits for a slot up to its timeout, then fails with
  ``ModelLimitError`` (see ``agentflow.models.limits``).

All instances share one aiohttp session per event loop, with no cap on connections (see
``agentflow.models.http``), unless given ``client=``; ``aclose_shared_clients()`` closes the
current loop's one (the server calls it on shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from agentflow.graph.messages import Message, ToolCall, Usage
from agentflow.models.base import ToolSchema, aclose_iterator
from agentflow.models.errors import (
    ModelConfigError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelResponseError,
    ModelTimeoutError,
    scrub,
)
from agentflow.models.http import call_timeout, iter_lines, proxy_for, shared_session
from agentflow.models.limits import (
    MAX_CONCURRENCY_ENV,
    RPM_ENV,
    limit_option,
    shared_limiter,
)
from agentflow.models.retry import (
    RetryLoop,
    RetryPolicy,
    is_retryable_status,
    parse_retry_after,
    retry_async,
)
from agentflow.utils.config import read, setting
from agentflow.utils.secrets import (
    KnownSecretStream,
    is_secret_key,
    mask_known_secrets,
    mask_known_secrets_in,
    register_secret,
)

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
TIMEOUT_ENV = "AGENTFLOW_MODEL_TIMEOUT"
DEFAULT_BASE_URL: str = setting(BASE_URL_ENV).default
DEFAULT_TIMEOUT: float = setting(TIMEOUT_ENV).default
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_HINTS = {
    401: f"check the API key ({API_KEY_ENV})",
    403: "the API key has no access to this model or endpoint",
    404: "check the model name and the base URL",
}

# ---------------------------------------------------------------------------------------------
# configuration helpers


def validate_model_name(model: str) -> str:
    """Return the stripped model name; refuse empty names and moving ``latest`` aliases."""
    if not isinstance(model, str) or not model.strip():
        raise ModelConfigError(
            "a model name is required, e.g. OpenAIChat('gpt-4o-mini-2024-07-18'); "
            "pin an exact version"
        )
    name = model.strip()
    if name.lower().endswith("latest"):
        raise ModelConfigError(
            f"model name {name!r} is a moving 'latest' alias: the model behind it changes "
            "without notice and can break your agent. Pin a dated version instead "
            "(e.g. 'gpt-4o-2024-08-06', or an explicit tag like 'llama3.1:8b' for Ollama)"
        )
    return name


def _check_timeout(value: float, what: str) -> float:
    if not isinstance(value, int | float) or not value > 0:
        raise ModelConfigError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def _display_url(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _refuse_credentials(url: str, source: str) -> None:
    """A base URL with user:password@ would make aiohttp send Basic auth instead of the
    bearer key, and put the credentials in every log line that names the URL."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return
    raise ModelConfigError(
        f"{source} contains credentials (user:password@ before the host): they would be sent "
        "as HTTP Basic auth instead of the API key, and show up in logs. Remove them from the "
        f"URL ({_display_url(url)}) and put the key in {API_KEY_ENV} (or pass api_key=)"
    )


def is_local_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOCAL_HOSTS


# ---------------------------------------------------------------------------------------------
# request conversion


def to_openai_tools(tools: Sequence[ToolSchema]) -> list[dict[str, Any]]:
    """``{"name", "description", "parameters"}`` dicts to ``{"type": "function", ...}``.

    Dicts already in the OpenAI shape are passed through.
    """
    out: list[dict[str, Any]] = []
    for tool in tools:
        if tool.get("type") == "function" and isinstance(tool.get("function"), Mapping):
            out.append(dict(tool))
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise ModelConfigError(f"a tool schema needs a string 'name', got {dict(tool)!r}")
        function: dict[str, Any] = {
            "name": name,
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def to_openai_message(message: Message) -> dict[str, Any]:
    role = message.role
    data: dict[str, Any] = {"role": role}
    if role == "assistant" and message.tool_calls:
        data["content"] = message.content or None
        data["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    else:
        data["content"] = message.content
    if role == "tool":
        data["tool_call_id"] = message.tool_call_id
    elif message.name:
        data["name"] = message.name
    return data


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [to_openai_message(m) for m in messages]


# ---------------------------------------------------------------------------------------------
# response parsing


def decode_arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments as a dict; undecodable input is kept as ``{"_raw": "..."}``."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    text = raw if isinstance(raw, str) else str(raw)
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def _tool_call(call_id: Any, name: Any, arguments: Any) -> ToolCall:
    """A ToolCall with any registered secret value the model echoed masked."""
    call = ToolCall(
        name=mask_known_secrets(str(name or "")),
        arguments=mask_known_secrets_in(decode_arguments(arguments)),
    )
    if call_id:
        call.id = str(call_id)
    return call


def _provider_message(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "detail"):
            if data.get(key):
                return str(data[key])
    return text


@dataclass(slots=True)
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: str = ""


# ---------------------------------------------------------------------------------------------


class OpenAIChat:
    """A chat model behind any OpenAI-compatible ``/chat/completions`` endpoint.

    >>> model = OpenAIChat("gpt-4o-mini-2024-07-18")  # key from OPENAI_API_KEY
    >>> local = OpenAIChat("llama3.1:8b", base_url="http://localhost:11434/v1")
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        temperature: float | None = None,
        extra_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        client: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        requests_per_minute: int | None = None,
    ) -> None:
        self.model = validate_model_name(model)
        self.name = self.model
        url = (base_url or read(BASE_URL_ENV)).strip()
        source = "base_url" if base_url else BASE_URL_ENV
        _refuse_credentials(url, source)
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ModelConfigError(
                f"{source} must be an http(s) URL like https://api.openai.com/v1, "
                f"got {_display_url(url)!r}"
            )
        self.base_url = url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self._display = _display_url(self.url)
        self._proxy = proxy_for(self.url)
        key = (api_key if api_key is not None else read(API_KEY_ENV) or "").strip()
        if not key and not is_local_url(self.base_url):
            raise ModelConfigError(
                f"{API_KEY_ENV} is not set: set the environment variable {API_KEY_ENV} "
                f"(or pass api_key=) to call {self.model!r} at {_display_url(self.base_url)}",
                model=self.model,
            )
        self._api_key = key or None
        register_secret(self._api_key)
        if timeout is not None:
            self.timeout = _check_timeout(timeout, "timeout")
        else:
            self.timeout = read(TIMEOUT_ENV, error=ModelConfigError)
        policy = retry if retry is not None else RetryPolicy.from_env()
        if max_retries is not None:
            policy = policy.with_max_retries(max_retries)
        self.retry = policy
        self.temperature = temperature
        self.extra_body = dict(extra_body or {})
        self._extra_headers = dict(headers or {})
        for header, value in self._extra_headers.items():
            if header.lower() in ("authorization", "proxy-authorization") or is_secret_key(header):
                register_secret(value.split(" ", 1)[-1])  # "Bearer <token>": the token
        self._client = client
        self.max_concurrency = limit_option(max_concurrency, MAX_CONCURRENCY_ENV, "max_concurrency")
        self.requests_per_minute = limit_option(requests_per_minute, RPM_ENV, "requests_per_minute")

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, base_url={_display_url(self.base_url)!r})"

    # -- request building ---------------------------------------------------------------------

    def _headers(self, *, stream: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        headers.update(self._extra_headers)
        return headers

    def _body(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, *, stream: bool
    ) -> bytes:
        body: dict[str, Any] = {"model": self.model, "messages": to_openai_messages(messages)}
        if tools:
            body["tools"] = to_openai_tools(tools)
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(self.extra_body)
        return json.dumps(body).encode("utf-8")

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else _check_timeout(timeout, "timeout")

    def _post(
        self, client: aiohttp.ClientSession, body: bytes, seconds: float, *, stream: bool
    ) -> Any:
        """The request of one attempt (an async context manager giving the response)."""
        return client.post(
            self.url,
            data=body,
            headers=self._headers(stream=stream),
            timeout=call_timeout(seconds, stream=stream),
            allow_redirects=False,
            proxy=self._proxy,
        )

    def _client_for_call(self) -> aiohttp.ClientSession:
        return self._client if self._client is not None else shared_session()

    def _slot(self, seconds: float) -> contextlib.AbstractAsyncContextManager[None]:
        """A request slot under the model's outbound limits (waits up to `seconds`)."""
        limiter = shared_limiter(
            self.base_url, self.model, self.max_concurrency, self.requests_per_minute
        )
        return limiter.slot(seconds, self.name) if limiter else contextlib.nullcontext()

    # -- errors -------------------------------------------------------------------------------

    def _http_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ModelHTTPError:
        return ModelHTTPError(
            status,
            scrub(_provider_message(body), self._api_key),
            model=self.name,
            url=self._display,
            retryable=is_retryable_status(status),
            retry_after=parse_retry_after(headers),
            hint=_HINTS.get(status),
        )

    def _transport_error(self, exc: Exception, seconds: float) -> ModelError:
        if isinstance(exc, asyncio.TimeoutError):
            return ModelTimeoutError(
                f"no response from {self._display} within the {seconds:g}s timeout "
                f"({type(exc).__name__}); raise it with timeout= or {TIMEOUT_ENV}",
                model=self.name,
            )
        if isinstance(exc, aiohttp.InvalidURL):
            return ModelConfigError(f"invalid model URL {self._display}", model=self.name)
        detail = scrub(str(exc), self._api_key)
        return ModelConnectionError(
            f"could not talk to {self._display} ({type(exc).__name__}"
            + (f": {detail})" if detail else ")"),
            model=self.name,
        )

    # -- parsing ------------------------------------------------------------------------------

    def _metadata(self, data: Mapping[str, Any], finish_reason: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"model": self.name}
        provider_model = data.get("model")
        if isinstance(provider_model, str) and provider_model and provider_model != self.name:
            meta["provider_model"] = provider_model
        if finish_reason:
            meta["finish_reason"] = finish_reason
        if data.get("id"):
            meta["response_id"] = str(data["id"])
        return meta

    def _parse_completion(self, body: bytes) -> Message:
        try:
            data = json.loads(body)
        except ValueError:
            raise ModelResponseError(
                f"{self._display} returned a body that is not JSON: "
                f"{scrub(body[:200].decode('utf-8', errors='replace'), self._api_key)!r}",
                model=self.name,
            ) from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ModelResponseError(
                f"{self._display} returned no 'choices'; is it a chat-completions endpoint?",
                model=self.name,
            )
        choice = choices[0]
        raw = choice.get("message") or {}
        content = raw.get("content")
        if content is None:
            content = ""
        elif not isinstance(content, str | list):
            content = str(content)
        content = mask_known_secrets_in(content)
        calls = [
            _tool_call(
                tc.get("id"),
                (tc.get("function") or {}).get("name"),
                (tc.get("function") or {}).get("arguments"),
            )
            for tc in raw.get("tool_calls") or []
            if isinstance(tc, dict)
        ]
        usage = data.get("usage")
        return Message(
            role="assistant",
            content=content,
            tool_calls=calls,
            usage=Usage.from_dict(usage) if isinstance(usage, dict) else None,
            metadata=self._metadata(data, choice.get("finish_reason")),
        )

    # -- ChatModel ----------------------------------------------------------------------------

    async def ainvoke(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> Message:
        seconds = self._timeout(timeout)
        body = self._body(messages, tools, stream=False)
        return await retry_async(
            lambda: self._invoke_once(body, seconds), self.retry, model=self.name
        )

    async def _invoke_once(self, body: bytes, seconds: float) -> Message:
        client = self._client_for_call()
        async with self._slot(seconds):
            try:
                async with self._post(client, body, seconds, stream=False) as response:
                    status, headers, content = (
                        response.status,
                        response.headers,
                        await response.read(),
                    )
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                raise self._transport_error(exc, seconds) from None
        if status >= 400:
            raise self._http_error(status, headers, content)
        return self._parse_completion(content)

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str | Message]:
        """Yield text deltas, then the final Message. A failure is retried only while nothing
        has been yielded yet (a consumer cannot take back deltas it already showed)."""
        seconds = self._timeout(timeout)
        body = self._body(messages, tools, stream=True)
        retry = RetryLoop(self.retry, model=self.name)
        while True:
            started = False
            stream = self._stream_once(body, seconds)
            try:
                async for item in stream:
                    started = True
                    yield item
                return
            except ModelError as exc:
                if started:
                    raise
                delay = retry.next_delay(exc)
            finally:
                await aclose_iterator(stream)
            await asyncio.sleep(delay)

    async def _stream_once(self, body: bytes, seconds: float) -> AsyncIterator[str | Message]:
        client = self._client_for_call()
        async with self._slot(seconds):  # held until the stream is read or closed
            inner = self._stream_request(client, body, seconds)
            try:
                async for item in inner:
                    yield item
            finally:
                await aclose_iterator(inner)

    async def _stream_request(
        self, client: aiohttp.ClientSession, body: bytes, seconds: float
    ) -> AsyncIterator[str | Message]:
        try:
            async with self._post(client, body, seconds, stream=True) as response:
                if response.status >= 400:
                    raise self._http_error(response.status, response.headers, await response.read())
                ctype = response.headers.get("content-type", "")
                if "text/event-stream" not in ctype and "json" in ctype:
                    # the server ignored stream=true and answered in one piece
                    message = self._parse_completion(await response.read())
                    if message.text:
                        yield message.text
                    yield message
                    return
                async for item in self._read_events(response):
                    yield item
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc, seconds) from None
        except ValueError as exc:  # a line over the bound
            raise ModelResponseError(f"{self._display}: {exc}", model=self.name) from None

    async def _read_events(self, response: aiohttp.ClientResponse) -> AsyncIterator[str | Message]:
        parts: list[str] = []
        calls: dict[int, _PartialCall] = {}
        usage: Usage | None = None
        finish_reason: Any = None
        envelope: dict[str, Any] = {}
        masked = KnownSecretStream()  # a secret split across deltas is still masked
        done = False
        async for line in iter_lines(response):
            if not line.startswith("data:"):
                continue  # blank separators, comments, event:/id:/retry: fields
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(payload)
            except ValueError:
                raise ModelResponseError(
                    f"{self._display} sent a stream event that is not JSON", model=self.name
                ) from None
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):
                raise ModelResponseError(
                    "the provider reported an error mid-stream: "
                    + scrub(_provider_message(json.dumps(chunk).encode()), self._api_key),
                    model=self.name,
                )
            for key in ("id", "model"):
                if chunk.get(key) and key not in envelope:
                    envelope[key] = chunk[key]
            if isinstance(chunk.get("usage"), dict):
                usage = Usage.from_dict(chunk["usage"])
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
                delta = choice.get("delta") or {}
                text = delta.get("content")
                if isinstance(text, str) and text:
                    parts.append(text)
                    shown = masked.feed(text)
                    if shown:
                        yield shown
                for tc in delta.get("tool_calls") or []:
                    if not isinstance(tc, dict):
                        continue
                    index = tc.get("index")
                    if not isinstance(index, int):
                        index = len(calls)
                    partial = calls.setdefault(index, _PartialCall())
                    if tc.get("id"):
                        partial.id = str(tc["id"])
                    function = tc.get("function") or {}
                    if isinstance(function.get("name"), str):
                        partial.name += function["name"]
                    arguments = function.get("arguments")
                    if isinstance(arguments, str):
                        partial.arguments += arguments
                    elif isinstance(arguments, dict):
                        partial.arguments = json.dumps(arguments)
        if not done and finish_reason is None:
            raise ModelConnectionError(
                f"the stream from {self._display} ended before it was complete", model=self.name
            )
        rest = masked.flush()
        if rest:
            yield rest
        yield Message(
            role="assistant",
            content=mask_known_secrets("".join(parts)),
            tool_calls=[_tool_call(p.id, p.name, p.arguments) for _, p in sorted(calls.items())],
            usage=usage,
            metadata=self._metadata(envelope, finish_reason),
        )
