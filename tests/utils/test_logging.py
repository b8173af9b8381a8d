"""JsonFormatter, PrettyFormatter and configure_logging."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agentflow.utils import (
    JsonFormatter,
    PrettyFormatter,
    SecretRedactionFilter,
    configure_logging,
)

R = "[REDACTED]"
OPENAI_KEY = "sk-u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzdocJ2isAj"
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PRETTY_RE = re.compile(r"^\d{2}:\d{2}:\d{2} (?P<level>\S+) (?P<rest>.*)$", re.DOTALL)
ANSI = "\x1b["


class TtyStream(io.StringIO):
    """A StringIO that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


class Opaque:
    """Not JSON-serialisable; str() mentions a secret."""

    def __str__(self) -> str:
        return "Opaque(password=hunter2)"


def make_logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    """A fresh (propagating) logger writing through `formatter` to a StringIO."""
    logger = logging.getLogger(f"agentflow_test.logging.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    return logger, stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    return [json.loads(line) for line in lines]


def record(msg: object = "hello", **attrs: object) -> logging.LogRecord:
    fields: dict[str, object] = {
        "name": "agentflow.test",
        "levelno": logging.INFO,
        "levelname": "INFO",
        "msg": msg,
        "args": None,
    }
    fields.update(attrs)
    return logging.makeLogRecord(fields)


# ---------------------------------------------------------------------------- JsonFormatter


def test_json_core_fields_and_extras() -> None:
    logger, stream = make_logger(JsonFormatter())
    logger.info(
        "node %s finished",
        "agent",
        extra={
            "thread_id": "t-1",
            "run_id": "r-1",
            "user_id": "u-1",
            "node": "agent",
            "duration_ms": 12.5,
            "outcome": "ok",
            "error_class": None,
            "prompt_tokens": 12,
            "cached": False,
            "tags": ["a", "b"],
        },
    )
    (line,) = json_lines(stream)
    assert TS_RE.match(line["ts"])
    assert line["level"] == "INFO"
    assert line["logger"] == logger.name
    assert line["message"] == "node agent finished"
    assert line["thread_id"] == "t-1"
    assert line["run_id"] == "r-1"
    assert line["user_id"] == "u-1"
    assert line["node"] == "agent"
    assert line["duration_ms"] == 12.5
    assert line["outcome"] == "ok"
    assert line["error_class"] is None
    assert line["prompt_tokens"] == 12
    assert line["cached"] is False
    assert line["tags"] == ["a", "b"]
    assert "exc" not in line
    assert "exc_type" not in line


def test_json_has_no_standard_record_attributes() -> None:
    out = JsonFormatter().format(record())
    assert set(json.loads(out)) == {"ts", "level", "logger", "message"}


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.1234, "2023-11-14T22:13:20.123Z"),
        (1_704_067_199.9999, "2023-12-31T23:59:59.999Z"),
    ],
)
def test_json_timestamp_is_utc_with_milliseconds(created: float, expected: str) -> None:
    out = json.loads(JsonFormatter().format(record(created=created)))
    assert out["ts"] == expected


def test_json_renders_unserialisable_extras_with_str() -> None:
    when = dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.timezone.utc)
    out = JsonFormatter().format(
        record(when=when, ids={3}, blob=b"xy", obj=Opaque(), ratio=float("nan"), pair=(1, "b"))
    )
    line = json.loads(out)
    assert line["when"] == str(when)
    assert line["ids"] == "{3}"
    assert line["blob"] == "b'xy'"
    assert line["obj"] == f"Opaque(password={R})"
    assert line["ratio"] == "nan"
    assert line["pair"] == [1, "b"]


def test_json_masks_message_and_extras_without_filter() -> None:
    logger, stream = make_logger(JsonFormatter())
    logger.warning(
        "retrying with %s",
        f"key {OPENAI_KEY}",
        extra={
            "dsn": "postgres://app:pgpass@db/app",
            "password": "hunter2",
            "api_key": 12345,
            "request": {"headers": {"Authorization": "Bearer abc123def456"}, "token": "t0k"},
            "history": ["fine", "password=hunter3"],
        },
    )
    raw = stream.getvalue()
    for secret in (OPENAI_KEY, "pgpass", "hunter2", "12345", "abc123def456", "t0k", "hunter3"):
        assert secret not in raw
    (line,) = json_lines(stream)
    assert line["message"] == f"retrying with key {R}"
    assert line["dsn"] == f"postgres://app:{R}@db/app"
    assert line["password"] == R
    assert line["api_key"] == R
    assert line["request"] == {"headers": {"Authorization": f"Bearer {R}"}, "token": R}
    assert line["history"] == ["fine", f"password={R}"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('url="https://x.example/?token=abc"', f'url="https://x.example/?token={R}"'),
        ('config {"password": "p\\"w"}', f'config {{"password": "{R}"}}'),
        ("rotating token:", "rotating token:"),
        ("one password=a\ntwo\ttoken=b\\c", f"one password={R}\ntwo\ttoken={R}\\c"),
        ("quote \" backslash \\ token='x'", f"quote \" backslash \\ token='{R}'"),
        ("caf\u00e9 \u2028 password=\u00fcber", f"caf\u00e9 \u2028 password={R}"),
    ],
)
def test_json_line_is_always_valid_single_line(message: str, expected: str) -> None:
    out = JsonFormatter().format(record(message))
    assert "\n" not in out
    assert json.loads(out)["message"] == expected


def test_json_exception_fields_are_masked() -> None:
    logger, stream = make_logger(JsonFormatter())
    try:
        raise ConnectionError("login failed password=hunter2 for postgres://u:p@h/db")
    except ConnectionError:
        logger.exception("db unreachable", extra={"run_id": "r-9"})
    raw = stream.getvalue()
    assert raw.count("\n") == 1
    assert "hunter2" not in raw
    assert "postgres://u:p@h/db" not in raw
    (line,) = json_lines(stream)
    assert line["level"] == "ERROR"
    assert line["message"] == "db unreachable"
    assert line["run_id"] == "r-9"
    assert line["exc_type"] == "ConnectionError"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert f"ConnectionError: login failed password={R} for postgres://u:{R}@h/db" in line["exc"]


def test_json_uses_exc_text_masked_by_filter() -> None:
    logger, stream = make_logger(JsonFormatter())
    logger.addFilter(SecretRedactionFilter())
    try:
        raise KeyError(f"api_key={OPENAI_KEY}")
    except KeyError:
        logger.error("lookup failed", exc_info=True)
    (line,) = json_lines(stream)
    assert line["exc_type"] == "KeyError"
    assert OPENAI_KEY not in line["exc"]
    assert f"api_key={R}" in line["exc"]


def test_json_stack_info() -> None:
    logger, stream = make_logger(JsonFormatter())
    logger.info("here", stack_info=True)
    (line,) = json_lines(stream)
    assert line["stack"].startswith("Stack (most recent call last):")


def test_json_extra_colliding_with_core_field_is_kept_under_prefix() -> None:
    logger, stream = make_logger(JsonFormatter())
    logger.info("hi", extra={"ts": "not-a-time", "level": 3, "logger": "other"})
    (line,) = json_lines(stream)
    assert line["level"] == "INFO"
    assert line["logger"] == logger.name
    assert TS_RE.match(line["ts"])
    assert line["extra_ts"] == "not-a-time"
    assert line["extra_level"] == 3
    assert line["extra_logger"] == "other"


def test_json_survives_bad_args_and_deep_nesting() -> None:
    nested: dict[str, object] = {"password": "deep"}
    for _ in range(20):
        nested = {"child": nested}
    rec = record("%d items", args=("many",), nested=nested)
    line = json.loads(JsonFormatter().format(rec))
    assert line["message"] == "%d items ('many',)"
    assert "deep" not in json.dumps(line)


# ---------------------------------------------------------------------------- PrettyFormatter


def test_pretty_layout_without_colour() -> None:
    logger, stream = make_logger(PrettyFormatter(use_color=False))
    logger.info(
        "run %s done",
        "r-1",
        extra={"thread_id": "t-1", "duration_ms": 12.5, "outcome": "ok", "note": "two words"},
    )
    out = stream.getvalue().rstrip("\n")
    match = PRETTY_RE.match(out)
    assert match is not None, out
    assert match["level"] == "INFO"
    assert match["rest"] == (
        f'{logger.name}: run r-1 done thread_id=t-1 duration_ms=12.5 outcome=ok note="two words"'
    )
    assert ANSI not in out


def test_pretty_quotes_awkward_values() -> None:
    out = PrettyFormatter(use_color=False).format(
        record("m", empty="", eq="a=b", quote='say "hi"', num=3, nothing=None)
    )
    assert out.endswith(' m empty="" eq="a=b" quote="say \\"hi\\"" num=3 nothing=None')


@pytest.mark.parametrize(
    ("level", "code"),
    [
        (logging.DEBUG, "\x1b[36m"),
        (logging.INFO, "\x1b[32m"),
        (logging.WARNING, "\x1b[33m"),
        (logging.ERROR, "\x1b[31m"),
        (logging.CRITICAL, "\x1b[1;31m"),
    ],
)
def test_pretty_colours_only_the_level(level: int, code: str) -> None:
    name = logging.getLevelName(level)
    out = PrettyFormatter(use_color=True).format(
        record("plain text", levelno=level, levelname=name, k="v")
    )
    assert f" {code}{name}\x1b[0m agentflow.test: plain text k=v" in out
    assert out.count(ANSI) == 2


def test_pretty_auto_colour_on_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert PrettyFormatter(stream=TtyStream()).use_color is True
    assert ANSI in PrettyFormatter(stream=TtyStream()).format(record())


def test_pretty_auto_no_colour_when_not_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    formatter = PrettyFormatter(stream=io.StringIO())
    assert formatter.use_color is False
    assert ANSI not in formatter.format(record())


def test_pretty_auto_respects_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    formatter = PrettyFormatter(stream=TtyStream())
    assert formatter.use_color is False
    assert ANSI not in formatter.format(record())


def test_pretty_empty_no_color_does_not_disable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "")
    assert PrettyFormatter(stream=TtyStream()).use_color is True


def test_pretty_auto_defaults_to_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stderr", TtyStream())
    assert PrettyFormatter().use_color is True
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert PrettyFormatter().use_color is False


def test_pretty_closed_stream_means_no_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()
    stream.close()
    assert PrettyFormatter(stream=stream).use_color is False


def test_pretty_explicit_choice_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert PrettyFormatter(use_color=True, stream=io.StringIO()).use_color is True
    monkeypatch.delenv("NO_COLOR")
    assert PrettyFormatter(use_color=False, stream=TtyStream()).use_color is False


def test_pretty_masks_message_extras_and_exception() -> None:
    logger, stream = make_logger(PrettyFormatter(use_color=False))
    try:
        raise RuntimeError("boom password=hunter2 dsn=postgres://u:p@h/db")
    except RuntimeError:
        logger.exception(
            "failed with %s",
            f"Bearer {OPENAI_KEY}",
            extra={"client_secret": "cs_live", "dsn": "redis://:rpw@cache", "obj": Opaque()},
        )
    out = stream.getvalue()
    for secret in (OPENAI_KEY, "hunter2", "postgres://u:p@h/db", "cs_live", "rpw"):
        assert secret not in out
    first, *rest = out.splitlines()
    assert first.endswith(
        f"ERROR {logger.name}: failed with Bearer {R} client_secret={R} "
        f"dsn=redis://:{R}@cache obj=Opaque(password={R})"
    )
    assert rest[0] == "Traceback (most recent call last):"
    assert f"RuntimeError: boom password={R} dsn=postgres://u:{R}@h/db" in out


def test_pretty_stack_info() -> None:
    logger, stream = make_logger(PrettyFormatter(use_color=False))
    logger.warning("look", stack_info=True)
    assert "\nStack (most recent call last):\n" in stream.getvalue()


# ---------------------------------------------------------------------------- configure_logging


@pytest.fixture
def agentflow_logger() -> Iterator[logging.Logger]:
    """The "agentflow" logger; it and the root logger are restored afterwards."""
    logger, root = logging.getLogger("agentflow"), logging.getLogger()
    saved = [(lg, list(lg.handlers), list(lg.filters), lg.level, lg.propagate)
             for lg in (logger, root)]  # fmt: skip
    root_filters = {h: list(h.filters) for h in root.handlers}
    yield logger
    for lg, handlers, filters, level, propagate in saved:
        for handler in lg.handlers:
            if handler not in handlers:
                handler.close()
        lg.handlers[:] = handlers
        lg.filters[:] = filters
        lg.setLevel(level)
        lg.propagate = propagate
    for handler, filters in root_filters.items():
        handler.filters[:] = filters


def added_handlers(logger: logging.Logger, before: list[logging.Handler]) -> list[logging.Handler]:
    return [h for h in logger.handlers if h not in before]


def test_configure_json(agentflow_logger: logging.Logger) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    (handler,) = added_handlers(root, before)
    assert isinstance(handler, logging.StreamHandler)
    assert isinstance(handler.formatter, JsonFormatter)
    assert any(isinstance(f, SecretRedactionFilter) for f in handler.filters)
    assert agentflow_logger.level == logging.DEBUG
    assert agentflow_logger.propagate is True
    assert not agentflow_logger.handlers  # its records reach the root handler: one line each

    logging.getLogger("agentflow.graph.run").debug(
        "step %d token=%s", 3, "tok_secret", extra={"node": "agent", "password": "hunter2"}
    )
    (line,) = json_lines(stream)
    assert line["logger"] == "agentflow.graph.run"
    assert line["level"] == "DEBUG"
    assert line["message"] == f"step 3 token={R}"
    assert line["node"] == "agent"
    assert line["password"] == R


def test_configure_pretty_and_level_filtering(
    agentflow_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = TtyStream()
    configure_logging(level="warning", fmt="pretty", stream=stream)
    assert agentflow_logger.level == logging.WARNING
    child = logging.getLogger("agentflow.models")
    child.info("not shown")
    logging.getLogger("myapp").info("not shown either")
    child.warning("slow model api_key=%s", "abc123", extra={"duration_ms": 950})
    out = stream.getvalue()
    assert "not shown" not in out
    assert "abc123" not in out
    assert f"agentflow.models: slow model api_key={R} duration_ms=950" in out
    assert "\x1b[33mWARNING\x1b[0m" in out


def test_configure_defaults(agentflow_logger: logging.Logger) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    configure_logging()
    (handler,) = added_handlers(root, before)
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stderr
    assert isinstance(handler.formatter, PrettyFormatter)
    assert agentflow_logger.level == logging.INFO
    assert root.level == logging.INFO


def test_configure_writes_to_current_stderr(
    agentflow_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt="json")
    logging.getLogger("agentflow.cli").info("hello password=%s", "pw")
    err = capsys.readouterr().err
    assert json.loads(err.strip().splitlines()[-1])["message"] == f"hello password={R}"


def test_configure_twice_replaces_handler(agentflow_logger: logging.Logger) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(fmt="json", stream=first)
    configure_logging(level="ERROR", fmt="pretty", stream=second)
    configure_logging(level="ERROR", fmt="pretty", stream=second)
    added = added_handlers(root, before)
    assert foreign in added
    ours = [h for h in added if h is not foreign]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, PrettyFormatter)
    agentflow_logger.error("only once")
    assert first.getvalue() == ""
    assert second.getvalue().count("only once") == 1


def test_debug_is_for_agentflow_not_every_library(agentflow_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    assert logging.getLogger().level == logging.INFO
    logging.getLogger("agentflow.graph").debug("ours")
    logging.getLogger("somelib").debug("theirs")
    logging.getLogger("somelib").info("their info")
    logging.getLogger("asyncpg.pool").info("pool chatter")
    assert [line["message"] for line in json_lines(stream)] == ["ours", "their info"]


@pytest.mark.parametrize("level", ["verbose", "", "warn ", "10"])
def test_configure_rejects_unknown_level(agentflow_logger: logging.Logger, level: str) -> None:
    before = list(agentflow_logger.handlers)
    with pytest.raises(ValueError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL") as info:
        configure_logging(level=level)
    assert repr(level) in str(info.value)
    assert agentflow_logger.handlers == before


def test_configure_rejects_unknown_format(agentflow_logger: logging.Logger) -> None:
    with pytest.raises(ValueError, match="'json' or 'pretty'"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]
