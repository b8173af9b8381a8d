"""Input at the HTTP boundary: the body read within its limits and decoded into its declared
type (api_types) with errors naming the JSON path, path and query values checked the same
way, one validator for client text, and what a run request's type cannot say (`RunRules`).

Errors never echo a body: a 422 names the field (`loc`) and what is wrong with it."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from starlette.requests import Request

from agentflow.graph.errors import InvalidInputError
from agentflow.graph.messages import ROLES, Message
from agentflow.graph.state import MESSAGE_KEYS, field_names
from agentflow.runtime.api_types import (
    MAX_JSON_DEPTH,
    MAX_RECURSION_LIMIT,
    THREAD_ID,
    ClientMessage,
    RunInput,
    RunRequestBody,
)
from agentflow.runtime.errors import ApiError, validation_error

if TYPE_CHECKING:
    from agentflow.graph.compiled import CompiledGraph
    from agentflow.runtime.settings import Settings

__all__ = [
    "DEFAULT_RULES",
    "RunRequest",
    "RunRules",
    "check_json",
    "check_text",
    "decode_body",
    "decode_query",
    "parse_run_request",
    "path_value",
    "read_body",
    "text_problem",
]

T = TypeVar("T")
Loc = list[str | int]
DEFAULT_CLIENT_ROLES: tuple[str, ...] = ("user",)
ID_RULE = "expected 1-128 characters of letters, digits, '.', '_', ':' or '-'"

# NUL, and UTF-16 surrogates: the JSON decoder joins valid pairs, so any left are lone.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# How either can reach a decoded body: only as a \u escape (raw bytes are invalid JSON/UTF-8).
_BAD_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


# -- one validator for client text: bodies, paths and queries ---------------------------------


def text_problem(text: str) -> str | None:
    """Why `text` cannot be accepted from a client, or None. NUL cannot be stored by
    Postgres and lone surrogates are not Unicode (no UTF-8 encoding exists for them)."""
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000); remove it"
    return (
        "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode; "
        "send UTF-8 text"
    )


def check_text(text: str, loc: Loc) -> str:
    """`text` unchanged, or a 422 naming `loc` (e.g. ["path", "thread_id"])."""
    problem = text_problem(text)
    if problem is not None:
        raise validation_error([{"loc": loc, "msg": problem}])
    return text


def check_json(value: Any, loc: Loc) -> None:
    """Refuse a decoded JSON value nested deeper than MAX_JSON_DEPTH or holding bad text
    (in any string or key); walked without recursion, so no input can exhaust the stack."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, tuple(loc), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, list(path))
            continue
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            raise validation_error(
                [{"loc": list(path), "msg": f"nested more than {MAX_JSON_DEPTH} levels deep"}]
            )
        for key, child in children:
            if isinstance(key, str):
                problem = text_problem(key)
                if problem is not None:
                    raise validation_error([{"loc": [*path, shown(key)], "msg": "key " + problem}])
            if isinstance(child, str | dict | list):
                stack.append((child, (*path, key), depth + 1))


def shown(text: str, limit: int = 64) -> str:
    """A client's key as it may appear in an error: printable, UTF-8-safe and short."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


# -- JSON bodies --------------------------------------------------------------------------------


class _NumberOutOfRange(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberOutOfRange(text)
    return value


def _no_constant(name: str) -> Any:
    raise _NumberOutOfRange(name)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request's raw body, refusing bodies over `max_bytes` (413), a multipart media
    type (415) and an empty body (400)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/"):
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    return raw


def decode_body(raw: bytes, kind: type[T]) -> T:
    """`raw` decoded as `kind`: 400 for what is not JSON; 422 naming the field for a value
    of the wrong type, bad text (NUL, lone surrogates), nesting deeper than MAX_JSON_DEPTH
    and numbers beyond a double.

    msgspec decodes and validates in one pass. A body that could hold bad text or deep
    nesting, or that msgspec refuses as JSON, goes through the standard decoder instead,
    which says precisely what is wrong (line and column, which number) or accepts it (an
    integer beyond 64 bits in free-form data)."""
    if _BAD_ESCAPE.search(raw) is None and raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        try:
            decoded: T = _decoder(kind).decode(raw)
            return decoded
        except msgspec.ValidationError as exc:
            if "out of range" not in str(exc):
                raise _invalid(exc, "body", kind) from None
        except msgspec.DecodeError:
            pass
    body = _decode(raw)
    check_json(body, ["body"])
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        raise _invalid(exc, "body", kind) from None


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return decoder


def decode_query(request: Request, kind: type[T]) -> T:
    """The query parameters as `kind` (absent ones take their defaults; an empty number or
    one given twice is a 422, not a guess at what was meant)."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    for name, raw in request.query_params.multi_items():
        if name in seen:
            raise validation_error([{"loc": ["query", name], "msg": "given more than once"}])
        seen.add(name)
        values[name] = check_text(raw, ["query", name])
    try:
        return msgspec.convert(values, kind, strict=False)  # "20" is the integer 20
    except msgspec.ValidationError as exc:
        raise _invalid(exc, "query", kind) from None


ID_PARAMS = ("thread_id", "run_id")  # path parameters that are ids (THREAD_ID's pattern)


def path_value(request: Request, name: str) -> str:
    """A path parameter, checked by the one text validator; an id by its pattern."""
    value = check_text(str(request.path_params[name]), ["path", name])
    if name in ID_PARAMS and not THREAD_ID.match(value):
        raise validation_error([{"loc": ["path", name], "msg": ID_RULE}])
    return value


# msgspec's errors: "Expected `int`, got `str` - at `$.config.recursion_limit`"
_ERROR = re.compile(r"(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")
_FIELD = re.compile(r"^Object (contains unknown|missing required) field `(.*)`$", re.DOTALL)


def _invalid(exc: msgspec.ValidationError, where: str, kind: type[Any]) -> ApiError:
    """A 422 naming the field msgspec refused, e.g. ["body", "messages", 0, "role"]."""
    found = _ERROR.fullmatch(str(exc))
    assert found is not None
    msg, path = found["msg"], found["path"] or ""
    loc: Loc = [where]
    for name, index in _STEP.findall(path.split("[...]")[0]):  # a key's name is not given
        loc.append(name or int(index))
    named = _FIELD.match(msg)
    if named is not None:
        loc.append(shown(named[2]))
        msg = "field required" if named[1] == "missing required" else "unknown field"
        if len(loc) == 2 and msg == "unknown field" and where == "body":
            msg += "; allowed fields are " + ", ".join(kind.__struct_fields__)
    if loc[-1] in ID_PARAMS and "matching regex" in msg:
        msg = ID_RULE
    elif msg.startswith("Invalid enum value"):  # never echo what the client sent
        msg = "not one of the allowed values"
        if loc[-1] == "role":
            msg = f"expected one of {', '.join(sorted(ROLES))}"
    if "multiple of 1" in msg:  # whole numbers are floats that are a multiple of 1 (api_types)
        msg = "expected an integer"
    msg = msg.replace("`float", "`number")
    return validation_error([{"loc": loc, "msg": shown(msg, 200)}])


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"the request body is not valid JSON (line {exc.lineno} column {exc.colno})",
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not UTF-8 JSON") from None
    except _NumberOutOfRange:
        raise validation_error(
            [{"loc": ["body"], "msg": "a number is out of range: NaN, Infinity and numbers "
              "beyond ±1.8e308 are not accepted"}]
        ) from None  # fmt: skip
    except RecursionError:
        raise validation_error(
            [{"loc": ["body"], "msg": f"nested more than {MAX_JSON_DEPTH} levels deep"}]
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise validation_error(
            [{"loc": ["body"], "msg": "an integer has too many digits"}]
        ) from None


def too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413, "body_too_large", f"the request body is larger than the limit of {max_bytes} bytes"
    )


# -- run requests: what their type cannot say --------------------------------------------------


@dataclass(slots=True)
class RunRequest:
    """A run request as the run service takes it (decoded, checked, messages built)."""

    messages: list[Message] = field(default_factory=list)
    thread_id: str | None = None
    recursion_limit: int | None = None
    resume: Any = None
    has_resume: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    stream_mode: tuple[str, ...] = ("events",)
    graph: str | None = None  # the served graph's name (None: the default graph)
    protocol: str = "agentflow"  # the stream's event format: agentflow | langgraph
    # A LangGraph graph's run as a LangGraph client asked for it (input, command, config).
    langgraph: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        """As JSON, for a run's record (a queued or taken-over run starts from it)."""
        record: dict[str, Any] = {
            "messages": [m.to_dict() for m in self.messages],
            "thread_id": self.thread_id,
            "recursion_limit": self.recursion_limit,
            "metadata": self.metadata,
            "state": self.state,
            "stream_mode": list(self.stream_mode),
        }
        if self.has_resume:
            record["resume"] = self.resume
        if self.graph is not None:
            record["graph"] = self.graph
        if self.protocol != "agentflow":
            record["protocol"] = self.protocol
        if self.langgraph is not None:
            record["langgraph"] = self.langgraph
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunRequest:
        return cls(
            messages=[Message.from_dict(m) for m in record.get("messages", [])],
            thread_id=record.get("thread_id"),
            recursion_limit=record.get("recursion_limit"),
            resume=record.get("resume"),
            has_resume="resume" in record,
            metadata=record.get("metadata") or {},
            state=record.get("state") or {},
            stream_mode=tuple(record.get("stream_mode") or ("events",)),
            graph=record.get("graph"),
            protocol=record.get("protocol") or "agentflow",
            langgraph=record.get("langgraph"),
        )

    def graph_input(self) -> Any:
        if self.langgraph is not None:
            from agentflow.runtime.lgapi.adapter import LangGraphInput

            return LangGraphInput(**self.langgraph)
        data: dict[str, Any] = {}
        if self.messages:
            data["messages"] = self.messages
        if self.state:
            data["state"] = self.state
        if self.has_resume:
            data["resume"] = self.resume
        return data or None


@dataclass(frozen=True, slots=True)
class RunRules:
    """What this server accepts in a run request beyond its type.

    `client_roles`: the message roles a client may send (agentflow.json `client_roles`;
    `user` only by default). `state_fields`: the graph's settable state fields, checked
    before the run starts (None leaves the check to the graph, when the run starts)."""

    client_roles: tuple[str, ...] = DEFAULT_CLIENT_ROLES
    state_fields: frozenset[str] | None = None
    max_recursion_limit: int = MAX_RECURSION_LIMIT

    @classmethod
    def of(cls, settings: Settings, graph: CompiledGraph | None = None) -> RunRules:
        fields = None
        if graph is not None:
            fields = field_names(graph.state_cls) - set(MESSAGE_KEYS)
        return cls(client_roles=settings.client_roles, state_fields=fields)


DEFAULT_RULES = RunRules()


def parse_run_request(
    body: RunInput, rules: RunRules = DEFAULT_RULES, *, thread_id: str | None = None
) -> RunRequest:
    """The run request of a decoded body (on the thread `thread_id` names, or the body's);
    every problem its type could not state is reported with its field path (422)."""
    if thread_id is None and isinstance(body, RunRequestBody):
        thread_id = body.thread_id
    details: list[dict[str, Any]] = []
    request = RunRequest(thread_id=thread_id, metadata=body.metadata or {})
    for i, item in enumerate(body.messages):
        problems = _message_problems(item, rules)
        details += [{"loc": ["body", "messages", i, *loc], "msg": msg} for loc, msg in problems]
        if not problems:
            request.messages.append(_message(item, ["body", "messages", i]))
    mode = body.stream_mode
    if mode:
        request.stream_mode = (mode,) if isinstance(mode, str) else tuple(dict.fromkeys(mode))
    limit = body.config.recursion_limit if body.config is not None else None
    request.recursion_limit = int(limit) if limit is not None else None
    request.state = body.state or {}
    if rules.state_fields is not None:
        known = ", ".join(sorted(rules.state_fields)) or "none"
        details += [
            {"loc": ["body", "state", shown(key)],
             "msg": f"not a field of the graph's state (fields: {known})"}
            for key in request.state if key not in rules.state_fields
        ]  # fmt: skip
    if body.resume is not msgspec.UNSET:
        if thread_id is None:
            details.append(
                {"loc": ["body", "resume"],
                 "msg": "resume answers a thread's pending interrupt: send its thread_id"}
            )  # fmt: skip
        request.has_resume = True
        request.resume = body.resume
    if details:
        raise validation_error(details)
    return request


def _message_problems(item: ClientMessage, rules: RunRules) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    if item.role not in rules.client_roles:
        found.append((
            ["role"],
            f"clients may send {' and '.join(rules.client_roles)} messages; {item.role!r} "
            'messages come from the graph (agentflow.json "client_roles" can allow them)',
        ))  # fmt: skip
    elif item.role == "tool" and item.tool_call_id is None:
        found.append((["tool_call_id"], "a tool message needs the id of the call it answers"))
    if isinstance(item.content, list):
        found += [
            (["content", j, "type"], "a content block needs a string 'type', e.g. \"text\"")
            for j, block in enumerate(item.content)
            if not isinstance(block.get("type"), str)
        ]
    return found


def _message(item: ClientMessage, loc: Loc) -> Message:
    """The message a client sent; the `usage` it sent is dropped: token usage (and so
    cost) is counted from the model's replies only."""
    data = msgspec.structs.asdict(item)
    data["tool_calls"] = [msgspec.structs.asdict(call) for call in item.tool_calls or ()]
    data.pop("usage")
    try:
        return Message.from_dict(data)
    except InvalidInputError as exc:  # anything the type did not say
        raise validation_error([{"loc": loc, "msg": str(exc)}]) from None
