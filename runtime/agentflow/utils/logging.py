"""Log formatters (JSON lines for production, a compact coloured one for development).

`configure_logging` wires one of them to the root logger together with a
SecretRedactionFilter, so every record that reaches a handler is redacted, whoever logged it
(agentflow, the graph's own loggers, uvicorn, httpx, asyncpg, redis). Both formatters also
mask their own output, so secrets stay out of the log even when the filter is not installed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Literal, TextIO

from agentflow.utils.secrets import (
    REDACTED,
    STANDARD_RECORD_ATTRS,
    SecretRedactionFilter,
    is_secret_key,
    mask_secrets,
    record_message,
    safe_str,
)

LOGGER_NAME = "agentflow"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ROOT_HANDLER_NAME = "agentflow.utils.logging:configure_logging"
# Libraries the server drives: only their warnings, each as one line (no traceback).
LIBRARY_LOGGERS = ("asyncpg", "redis")

_LEVEL_NUMBERS: dict[str, int] = {name: getattr(logging, name) for name in LEVELS}
# uvicorn's copy of its message with terminal colours: noise in a log line.
_IGNORED_EXTRAS = frozenset({"color_message"})
_JSON_CORE_FIELDS = frozenset({"ts", "level", "logger", "message", "exc_type", "exc", "stack"})
_MAX_DEPTH = 8
_RESET = "\x1b[0m"
_LEVEL_COLORS = {
    "DEBUG": "\x1b[36m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}


def _extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """Attributes the record got from ``extra=`` (everything a plain LogRecord lacks)."""
    return {
        k: v
        for k, v in vars(record).items()
        if k not in STANDARD_RECORD_ATTRS and k not in _IGNORED_EXTRAS
    }


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback text: the cached (possibly masked) exc_text, else rendered."""
    if record.exc_text:
        return record.exc_text
    if isinstance(record.exc_info, tuple) and record.exc_info[0] is not None:
        return formatter.formatException(record.exc_info)
    return None


def _jsonable(value: object, depth: int = 0) -> object:
    """`value` as JSON-ready data with every string masked and secret-named keys redacted."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return mask_secrets(value)
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {
                mask_secrets(safe_str(key)): _field_value(safe_str(key), item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [_jsonable(item, depth + 1) for item in value]
    return mask_secrets(safe_str(value))


def _field_value(key: str, value: object, depth: int = 0) -> object:
    """A field's JSON value: [REDACTED] if `key` names a secret, else `_jsonable(value)`."""
    if value is not None and is_secret_key(key):
        return REDACTED
    return _jsonable(value, depth)


def _utc_timestamp(created: float) -> str:
    stamp = datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extra fields, exc_type/exc.

    Every string in the output goes through `mask_secrets` (values are masked before
    encoding, so the line is always valid JSON). Extra fields named like a secret
    (password, api_key, ...) are redacted; values JSON cannot encode are rendered with str().
    An extra field that collides with a core field is emitted as ``extra_<name>``.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record_message(record)),
        }
        for key, value in _extra_fields(record).items():
            name = f"extra_{key}" if key in _JSON_CORE_FIELDS else key
            payload[name] = _field_value(key, value)
        if isinstance(record.exc_info, tuple) and record.exc_info[0] is not None:
            payload["exc_type"] = record.exc_info[0].__name__
        exc_text = _exception_text(self, record)
        if exc_text:
            payload["exc"] = mask_secrets(exc_text)
        if record.stack_info:
            payload["stack"] = mask_secrets(self.formatStack(record.stack_info))
        return json.dumps(payload, ensure_ascii=False)


def _color_supported(stream: TextIO) -> bool:
    """True if `stream` is a terminal and NO_COLOR is unset or empty."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _pretty_value(key: str, value: object) -> str:
    if value is not None and is_secret_key(key):
        return REDACTED
    if not isinstance(value, str):
        return safe_str(value)
    if not value or any(c.isspace() or c in '"=' for c in value):
        return json.dumps(value, ensure_ascii=False)
    return value


class PrettyFormatter(logging.Formatter):
    """Development format: ``HH:MM:SS LEVEL logger: message key=value ...``.

    The level is coloured when `use_color` is True; None means colour only if `stream`
    (default sys.stderr) is a TTY and NO_COLOR is not set. Output is masked.
    """

    def __init__(self, use_color: bool | None = None, stream: TextIO | None = None) -> None:
        super().__init__()
        if use_color is None:
            use_color = _color_supported(stream if stream is not None else sys.stderr)
        self.use_color = use_color

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", self.converter(record.created))
        level = record.levelname
        if self.use_color and level in _LEVEL_COLORS:
            level = f"{_LEVEL_COLORS[level]}{level}{_RESET}"
        parts = [f"{record.name}: {record_message(record)}"]
        parts.extend(f"{k}={_pretty_value(k, v)}" for k, v in _extra_fields(record).items())
        body = " ".join(parts)
        exc_text = _exception_text(self, record)
        if exc_text:
            body = f"{body}\n{exc_text}"
        if record.stack_info:
            body = f"{body}\n{self.formatStack(record.stack_info)}"
        return f"{clock} {level} {mask_secrets(body)}"


class OneLineLibraryErrors(logging.Filter):
    """Records of the libraries we drive (asyncpg's pool reconnecting, redis) as one line:
    the exception's class and message instead of a traceback. Other records pass as they are."""

    def __init__(self, names: tuple[str, ...] = LIBRARY_LOGGERS) -> None:
        super().__init__()
        self.names = names

    def _is_library(self, name: str) -> bool:
        return any(name == lib or name.startswith(lib + ".") for lib in self.names)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        if exc is not None and self._is_library(record.name):
            record.msg = f"{record_message(record)} ({type(exc).__name__}: {safe_str(exc)})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(
    level: str = "INFO",
    fmt: Literal["json", "pretty"] = "pretty",
    stream: TextIO | None = None,
) -> None:
    """Send every logger's records to one redacting stream handler on the root logger
    (default: sys.stderr), in the JSON or pretty format.

    The "agentflow" logger gets `level` and propagates to it (one line per record); the root
    logger gets `level` but not below INFO, so LOG_LEVEL=DEBUG shows agentflow's debug lines
    without every library's; asyncpg and redis show warnings only, one line each. Handlers
    already on the root logger (logging.basicConfig in graph code) get the redaction too.
    Calling it again replaces the handler an earlier call added, so handlers never pile up.
    Raises ValueError for an unknown level or format.
    """
    level_name = level.upper()
    if level_name not in LEVELS:
        raise ValueError(f"invalid log level {level!r}; expected one of {', '.join(LEVELS)}")
    target = stream if stream is not None else sys.stderr
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "pretty":
        formatter = PrettyFormatter(stream=target)
    else:
        raise ValueError(f"invalid log format {fmt!r}; expected 'json' or 'pretty'")

    root, agentflow = logging.getLogger(), logging.getLogger(LOGGER_NAME)
    for logger in (root, agentflow):
        for old in list(logger.handlers):
            if old.get_name() == ROOT_HANDLER_NAME:
                logger.removeHandler(old)
                old.close()
    redaction = SecretRedactionFilter()
    for other in root.handlers:
        if not any(isinstance(f, SecretRedactionFilter) for f in other.filters):
            other.addFilter(redaction)
    handler = logging.StreamHandler(target)
    handler.set_name(ROOT_HANDLER_NAME)
    handler.setFormatter(formatter)
    handler.addFilter(OneLineLibraryErrors())  # first: the redaction then masks its line
    handler.addFilter(redaction)  # on the handler: it sees every logger's records
    root.addHandler(handler)
    root.setLevel(max(_LEVEL_NUMBERS[level_name], logging.INFO))
    agentflow.setLevel(level_name)
    agentflow.propagate = True
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SERVER_LOGGERS:  # uvicorn's own config gives them handlers that skip ours
        server = logging.getLogger(name)
        for old in list(server.handlers):
            server.removeHandler(old)
        server.propagate = True
        server.setLevel(logging.NOTSET)  # uvicorn's `log_level` would hide its startup lines
        server.disabled = False
