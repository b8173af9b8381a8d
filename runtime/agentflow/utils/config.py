"""Every setting agentflow reads, declared once: its key in agentflow.json and/or its
environment variable, its type, default, CLI flag and a one-line doc.

Parsing (`Source`, `read`), the unknown-key check, `agentflow doctor`, the README reference
and the JSON Schema for agentflow.json all derive from `SETTINGS`. Values come in layers
(lowest first): defaults → agentflow.json → the dotenv file → the environment → CLI flags; a
`file_first` setting takes agentflow.json over its variable (the file usually names it:
`"dsn": "${DATABASE_URL}"`). `${VAR}` is replaced in the strings of the `EXPANDED` sections.
Standard library only: `agentflow.models` and `agentflow.tracing` read their settings here.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agentflow.graph.errors import AgentflowError

EXPANDED = ("checkpointer", "auth")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class ConfigError(AgentflowError):
    """The configuration is wrong: what (`problem`), where (file and key, or variable) and
    how to fix it."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where, self.fix, self.problem = where, fix, message
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


class Invalid(ValueError):
    """A value a kind refuses; `problem` follows the key or variable ("must be ...")."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def did_you_mean(word: str, known: tuple[str, ...] | list[str]) -> str | None:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _choices_fix(value: str, choices: tuple[str, ...]) -> str:
    close = did_you_mean(value, choices)
    return (f"did you mean {close!r}? " if close else "") + f"use one of {', '.join(choices)}"


def _either(texts: list[str]) -> str:
    return " or ".join(texts) if len(texts) < 3 else f"{', '.join(texts[:-1])} or {texts[-1]}"


# -- kinds: what a value must be --------------------------------------------------------------


class Kind:
    """`text` reads after "must be"; `blank` is the value of a variable set to "" (None: as if
    unset); `schema` is the JSON Schema (`obj`: the object schema of the key's sub-keys)."""

    text: str = "a value"
    blank: Any = None

    def accepts(self, value: Any) -> bool:  # of the right JSON type (and range)
        return True

    def check(self, value: Any) -> Any:  # a JSON value or flag -> the typed value, or Invalid
        if not self.accepts(value):
            raise Invalid(f"must be {self.text}, got {value!r}")
        return value

    def from_env(self, raw: str) -> Any:  # `raw` is stripped and not empty
        return self.check(raw)

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        return obj or {"type": "object"}  # the kind of a key that holds sub-keys


@dataclass
class Text(Kind):
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    shape: str = "a string"  # how a value matching `pattern` looks
    fold: Callable[[str], str] | None = None  # str.lower / str.upper before checking
    bad: str | None = None  # the problem for a value not among `choices`: "unknown role"

    def __post_init__(self) -> None:
        quoted = [repr(c) for c in self.choices]
        many = len(quoted) > 2
        self.text = "one of " + ", ".join(quoted) if many else _either(quoted) or self.shape

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise Invalid(f"must be {self.text if self.choices else 'a string'}, got {value!r}")
        value = self.fold(value) if self.fold else value
        if self.choices and value not in self.choices:
            wrong = f"{self.bad} {value!r}" if self.bad else f"must be {self.text}, got {value!r}"
            raise Invalid(wrong, _choices_fix(value, self.choices))
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise Invalid(f"must look like {self.shape}, got {value!r}")
        return value

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        enum = {"enum": list(self.choices)} if self.choices else {}
        return {
            "type": "string",
            **enum,
            **({"pattern": f"^(?:{self.pattern})$"} if self.pattern else {}),
        }


@dataclass
class Number(Kind):
    minimum: float = 0
    integer: bool = False
    above: bool = False  # > minimum, not >=
    unit: str = ""

    def __post_init__(self) -> None:
        what = (
            "an integer" if self.integer else "a number" + (f" of {self.unit}" if self.unit else "")
        )
        self.text = f"{what} {'>' if self.above else '>='} {self.minimum:g}"

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        in_range = value > self.minimum if self.above else value >= self.minimum
        return in_range and (not self.integer or float(value).is_integer())

    def check(self, value: Any) -> Any:
        return int(super().check(value)) if self.integer else float(super().check(value))

    def from_env(self, raw: str) -> Any:
        try:
            return self.check(int(raw) if self.integer else float(raw))
        except ValueError:  # Invalid too: name the value as written
            raise Invalid(f"must be {self.text}, got {raw!r}") from None

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        bound = "exclusiveMinimum" if self.above else "minimum"
        return {"type": "integer" if self.integer else "number", bound: self.minimum}


class Flag(Kind):
    text = "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def from_env(self, raw: str) -> bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise Invalid(f"must be one of {', '.join(_TRUE + _FALSE)}, got {raw!r}")
        return raw.lower() in _TRUE

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass
class TextList(Kind):
    item: Text = field(default_factory=Text)

    def __post_init__(self) -> None:
        self.text = "a list of " + (
            self.item.text.removeprefix("one of ") if self.item.choices else "strings"
        )

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def check(self, value: Any) -> tuple[str, ...]:
        return tuple(self.item.check(v) for v in super().check(value))

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema()}


class Origins(Kind):
    """Exact browser origins (scheme://host[:port]) or "*", as a list or comma-separated."""

    text, blank = "a list of origins or a comma-separated string of them", ()

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) or TextList().accepts(value)

    def check(self, value: Any) -> tuple[str, ...]:
        items = super().check(value)
        items = items.split(",") if isinstance(items, str) else items
        origins = tuple(i.strip().rstrip("/") for i in items if i.strip())
        for origin in origins:
            url = urlsplit(origin)
            if origin != "*" and (
                url.scheme not in ("http", "https") or not url.netloc or url.path
            ):
                fix = "use scheme://host[:port] with no path, e.g. https://app.example.com"
                raise Invalid(f"{origin!r} is not an origin", fix)
        return origins

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        item = {"type": "string", "pattern": r"^\s*(?:\*|https?://[^/\s]+)/?\s*$"}
        return {"anyOf": [{"type": "string"}, {"type": "array", "items": item}]}


class DocsPath(Kind):
    text, blank = "a path starting with '/' or off", ""  # "" = off

    def from_env(self, raw: str) -> str:
        if raw.lower() in ("off", "none", *_FALSE):
            return ""
        if not raw.startswith("/"):
            raise Invalid(f"must start with '/', got {raw!r}")
        return raw.rstrip("/") or "/"


@dataclass
class Literal(Kind):
    value: Any = None

    def __post_init__(self) -> None:
        self.text = "null" if self.value is None else str(self.value).lower()

    def accepts(self, value: Any) -> bool:
        return type(value) is type(self.value) and value == self.value

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"const": self.value}


class OneOf(Kind):
    def __init__(self, *kinds: Kind) -> None:
        self.kinds, self.text = kinds, _either([k.text for k in kinds])

    def accepts(self, value: Any) -> bool:
        return any(k.accepts(value) for k in self.kinds)

    def check(self, value: Any) -> Any:  # the message of the kind of the value's type
        fitting = [k for k in self.kinds if k.accepts(value)]
        return fitting[0].check(value) if fitting else super().check(value)

    def schema(self, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"anyOf": [k.schema(obj) for k in self.kinds]}


class Obj(Kind):
    """A key whose value is an object of keys declared on their own."""

    text = "an object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)


OBJECT, NULL, INT0, INT1 = Obj(), Literal(None), Number(integer=True), Number(1, integer=True)
MODES = ("development", "production")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
CHECKPOINTERS = ("sqlite", "memory", "postgres")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
MESSAGE_ROLES = ("user", "system", "assistant", "tool")
RATE = "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in r"(second|minute|hour)s?")
IMPORT_PATH = r"[^:\s]+:[^:\s]+"  # module.path:attribute


# -- the declaration --------------------------------------------------------------------------


@dataclass(frozen=True)
class ByMode:
    """A default that depends on MODE."""

    development: Any
    production: Any


@dataclass(frozen=True)
class Setting:
    """`name` is the key path in agentflow.json ("limits.run_timeout") or, for a setting
    only the environment sets, the variable (upper case)."""

    name: str
    kind: Kind
    default: Any
    doc: str
    env: str | None = None
    flag: str | None = None  # the CLI option that overrides both
    file_first: bool = False  # agentflow.json wins over `env` (which is then a fallback)
    fix: str | None = None  # appended to the fix of a wrong value
    group: str = "server"

    def __post_init__(self) -> None:
        if self.name.isupper():
            object.__setattr__(self, "env", self.name)

    @property
    def key(self) -> str | None:
        return None if self.name.isupper() else self.name


S = Setting
SECS = "seconds"
SETTINGS: tuple[Setting, ...] = (
    S("$schema", Text(), None, "the JSON Schema editors check this file with"),
    S("name", Text(), None, "the project's name (`agentflow build` names the image after it)"),
    S("description", Text(), None, "what the project does, for people"),
    S("graph", Text(pattern=IMPORT_PATH, shape="'module.path:attribute'"), None,
      "required: the compiled graph to serve, as module.path:attribute", flag="graph",
      fix='e.g. "graph.react:app" for the object `app` in graph/react.py'),
    S("env", Text(), None, "a dotenv file (relative to agentflow.json) read under the real "
      "environment; missing: a warning in development, an error in production"),
    S("checkpointer", OneOf(NULL, Text(CHECKPOINTERS, bad="unknown checkpointer"), OBJECT),
      "sqlite", "where threads live: sqlite (one machine), memory (tests), postgres "
      "(DATABASE_URL, REDIS_URL), or an object with the keys below"),
    S("checkpointer.kind", Text(CHECKPOINTERS, bad="unknown checkpointer"), "sqlite",
      "sqlite, memory or postgres (`type` is an alias)"),
    S("checkpointer.type", Text(CHECKPOINTERS, bad="unknown checkpointer"), None,
      "alias of checkpointer.kind"),
    S("checkpointer.path", Text(), ".agentflow/state.db", "the SQLite file, relative to "
      "agentflow.json"),
    S("checkpointer.dsn", Text(), None, "the Postgres URL (needed by postgres)",
      env="DATABASE_URL", file_first=True),
    S("checkpointer.redis", Text(), None, "a Redis URL: cache, stop signals, cross-worker "
      "locks (optional; `redis_url` is an alias)", env="REDIS_URL", file_first=True),
    S("checkpointer.redis_url", Text(), None, "alias of checkpointer.redis"),
    S("checkpointer.pool", OBJECT, None, "the asyncpg pool of each worker"),
    S("checkpointer.pool.min", INT0, 2, "connections kept open"),
    S("checkpointer.pool.max", INT1, 10, "connections at most (x workers <= "
      "Postgres max_connections)"),
    S("checkpointer.schema", Text(pattern=r"[A-Za-z_][A-Za-z0-9_]{0,62}", shape="a Postgres "
      "identifier"), "agentflow", "the Postgres schema of agentflow's tables"),
    S("checkpointer.pgbouncer", Flag(), False, "no prepared statements (PgBouncer in "
      "transaction mode)"),
    S("auth", OneOf(NULL, Literal(False), Text(pattern=rf"jwt|{IMPORT_PATH}",
      shape='"jwt"/"module:attr"'), OBJECT), None, "who may call the API: null (anyone), "
      '"jwt", "module:attr" of your own callable, or an object with the keys below'),
    S("auth.type", Text(("jwt", "custom"), bad="unknown auth type"), "jwt", "jwt or custom "
      "(`kind` is an alias)"),
    S("auth.kind", Text(("jwt", "custom"), bad="unknown auth type"), None, "alias of auth.type"),
    S("auth.path", Text(pattern=IMPORT_PATH, shape="'module:attr'"), None, "custom auth: the "
      "callable that verifies a request"),
    S("auth.algorithm", Text(JWT_ALGORITHMS, fold=str.upper, bad="unsupported JWT algorithm"),
      "HS256", "the JWT signature algorithm", env="JWT_ALGORITHM", file_first=True,
      fix="'none' is never accepted"),
    S("auth.secret", Text(), None, "the HS* shared secret (32+ bytes in production)",
      env="JWT_SECRET_KEY", file_first=True),
    S("auth.public_key", Text(), None, "the issuer's PEM public key (RS*/ES*)",
      env="JWT_PUBLIC_KEY", file_first=True),
    S("auth.jwks_url", Text(), None, "the issuer's JWKS URL (RS*/ES*)", env="JWT_JWKS_URL",
      file_first=True),
    S("auth.audience", Text(), None, "the required `aud` claim", env="JWT_AUDIENCE",
      file_first=True),
    S("auth.issuer", Text(), None, "the required `iss` claim", env="JWT_ISSUER",
      file_first=True),
    S("auth.leeway", Number(unit=SECS), 0.0, "clock skew allowed on exp/nbf"),
    S("required_env", TextList(), (), "variables that must be set (non-empty) to serve"),
    S("origins", Origins(), ByMode(("*",), ()), "browser origins CORS allows (exact "
      "scheme://host[:port], or *)", env="ORIGINS"),
    S("limits", OBJECT, None, "request and run limits"),
    S("limits.max_body_bytes", INT1, 1024 * 1024, "largest request body",
      env="MAX_BODY_BYTES"),
    S("limits.run_timeout", Number(0, above=True, unit=SECS), 300.0, "a run's time limit",
      env="RUN_TIMEOUT"),
    S("limits.recursion_limit", INT1, 25, "graph steps per run (a request may ask for "
      "fewer)", env="RECURSION_LIMIT"),
    S("limits.max_active_runs", INT1, 2000, "runs one worker holds at once; more get "
      "503 + Retry-After", env="MAX_ACTIVE_RUNS"),
    S("rate_limits", OneOf(NULL, OBJECT), None, "requests per user and overall (null: off); "
      "shared through Redis by every worker"),
    S("rate_limits.per_user", OneOf(NULL, Text(pattern=rf"\s*[1-9][0-9]*\s*/\s*{RATE}\s*",
      shape="'N/second', 'N/minute' or 'N/hour' with N >= 1")), None, 'e.g. "60/minute"',
      fix='e.g. "60/minute"'),
    S("rate_limits.global", OneOf(NULL, Text(pattern=rf"\s*[1-9][0-9]*\s*/\s*{RATE}\s*",
      shape="'N/second', 'N/minute' or 'N/hour' with N >= 1")), None, 'e.g. "1000/minute"',
      fix='e.g. "1000/minute"'),
    S("client_roles", TextList(Text(MESSAGE_ROLES, bad="unknown role")), ("user",), "message "
      "roles a client may send (user always; others come from the graph)",
      fix='e.g. "client_roles": ["user", "assistant"]'),
    S("MODE", Text(MODES, fold=str.lower), "development", "production: docs off, JSON logs, "
      "generic errors, strict checks", flag="mode"),
    S("LOG_LEVEL", Text(LOG_LEVELS, fold=str.upper), "INFO", "the root log level",
      flag="log_level"),
    S("LOG_FORMAT", Text(("json", "pretty"), fold=str.lower), ByMode("pretty", "json"),
      "one JSON object per line, or text for people"),
    S("HOST", Text(), "127.0.0.1", "the interface to listen on", flag="host"),
    S("PORT", INT0, 8000, "the port to listen on", flag="port"),
    S("WEB_CONCURRENCY", INT1, 1, "worker processes (several need postgres)",
      flag="workers"),
    S("DOCS_PATH", DocsPath(), ByMode("/docs", ""), "the Swagger UI (off: none)"),
    S("REDOCS_PATH", DocsPath(), ByMode("/redoc", ""), "the ReDoc UI (off: none)"),
    S("HEARTBEAT_INTERVAL", Number(0.01, unit=SECS), 15.0, "SSE heartbeat period"),
    S("SHUTDOWN_GRACE", Number(0, unit=SECS), 30.0, "time runs in flight get at SIGTERM"),
    S("IDEMPOTENCY_TTL", Number(1, unit=SECS), 24 * 3600.0, "how long an Idempotency-Key "
      "answer is kept"),
    S("RUN_LEASE_TTL", Number(0.5, unit=SECS), 10.0, "how long a dead worker's thread stays "
      "locked"),
    S("PLAYGROUND", Flag(), False, "serve /playground under `agentflow api` too",
      flag="playground"),
    S("AGENTFLOW_CONFIG", Text(), None, "the agentflow.json to use without --config"),
    S("OPENAI_API_KEY", Text(), None, "the key OpenAIChat sends (not needed on localhost)",
      group="model"),
    S("OPENAI_BASE_URL", Text(), "https://api.openai.com/v1", "any OpenAI-compatible server",
      group="model"),
    S("OPENAI_MODEL", Text(), "gpt-4o-mini-2024-07-18", "the model the project templates ask "
      "for (read by their graph code)", group="model"),
    S("AGENTFLOW_MODEL_TIMEOUT", Number(0, above=True, unit=SECS), 60.0, "a model call's time "
      "limit (streams: each gap)", group="model"),
    S("AGENTFLOW_MODEL_MAX_RETRIES", INT0, None, "retries after the first attempt "
      "(RetryPolicy's default: 2)", group="model"),
    S("AGENTFLOW_MODEL_MAX_CONCURRENCY", INT1, None, "requests in flight per model and "
      "process (none: no limit)", group="model"),
    S("AGENTFLOW_MODEL_RPM", INT1, None, "requests per minute per model and process "
      "(none: no limit)", group="model"),
    S("AGENTFLOW_TRACING", Flag(), None, "OpenTelemetry spans on/off; unset: on when OTEL_* "
      "variables name an exporter or endpoint", group="tracing"),
    S("AGENTFLOW_TRACE_NODES", Flag(), False, "a span per graph node step too", group="tracing"),
)  # fmt: skip
BY_NAME = {name: s for s in SETTINGS for name in {s.name, s.env} if name}


def setting(name: str) -> Setting:
    """The setting with this key path or environment variable."""
    return BY_NAME[name]


@dataclass
class Node:
    """agentflow.json as a tree: a key's own setting and its sub-keys."""

    setting: Setting | None = None
    children: dict[str, Node] = field(default_factory=dict)


TREE = Node()
for _s in SETTINGS:
    if _s.key:
        _node = TREE
        for _part in _s.key.split("."):
            _node = _node.children.setdefault(_part, Node())
        _node.setting = _s


Unknown = tuple[str, str | None, list[str]]  # key path, the key meant, the keys known there


def unknown_keys(data: Any, node: Node = TREE, prefix: str = "") -> list[Unknown]:
    """Every key of agentflow.json that no setting declares, at any depth."""
    found: list[Unknown] = []
    for key, value in data.items() if isinstance(data, dict) and node.children else ():
        if (child := node.children.get(key)) is not None:
            found += unknown_keys(value, child, f"{prefix}{key}.")
            continue
        elsewhere = (s.key for s in SETTINGS if s.key and s.key.rsplit(".", 1)[-1] == key)
        meant = did_you_mean(key, sorted(node.children)) or next(elsewhere, None)
        found.append((prefix + key, meant, sorted(node.children)))
    return found


def unknown_key_error(path: str, meant: str | None, known: list[str], where: str) -> ConfigError:
    return ConfigError(
        f"unknown key {path.rpartition('.')[2]!r}"
        + (f" (did you mean {meant!r}?)" if meant else ""),
        where=f"{where}: {path}",
        fix=f"rename it to {meant!r}"
        if meant
        else f"remove it; known keys here: {', '.join(known)}",
    )


class Source:
    """The value of each setting, from its layers. Errors name the file and key path, or the
    variable; `where` names agentflow.json."""

    def __init__(
        self,
        data: Mapping[str, Any],
        where: str,
        environ: Mapping[str, str],
        flags: Mapping[str, Any] | None = None,
    ) -> None:
        self.data, self.where, self.environ, self.flags = data, where, environ, flags or {}

    def file(self, name: str) -> Any:
        """The checked agentflow.json value (None when absent or null)."""
        s = setting(name)
        value: Any = self.data
        for part in (s.key or "").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or s.key is None:
            return None
        where = f"{self.where}: {s.key}"
        if isinstance(value, str) and s.key.split(".")[0] in EXPANDED:
            value = self.expand(value, where)
        return self._checked(s, value, where, s.kind.check)

    def env(self, name: str) -> Any:
        """The parsed environment value (None when unset; a blank value is the kind's)."""
        s = setting(name)
        raw = self.environ.get(s.env) if s.env else None
        if raw is None or not raw.strip():
            return None if raw is None else s.kind.blank
        return self._checked(s, raw.strip(), "environment", s.kind.from_env)

    def get(self, name: str) -> Any:
        """Flag, else environment and agentflow.json (in the setting's order), else default."""
        s = setting(name)
        if s.flag and self.flags.get(s.flag):
            return self._checked(s, self.flags[s.flag], f"--{s.flag}", s.kind.check)
        for layer in (self.file, self.env) if s.file_first else (self.env, self.file):
            value = layer(name)
            if value is not None:
                return value
        if isinstance(s.default, ByMode):
            production = self.get("MODE") == "production"
            return s.default.production if production else s.default.development
        return s.default

    def expand(self, value: str, where: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            found = self.environ.get(match.group(1))
            if found is None:
                raise ConfigError(
                    f"refers to ${{{match.group(1)}}}, which is not set",
                    where=where,
                    fix=f"set {match.group(1)} in the environment or in the dotenv file",
                )
            return found.strip()

        return _VAR.sub(substitute, value)

    def _checked(self, s: Setting, value: Any, where: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(value)
        except Invalid as exc:
            problem, fix = exc.problem, "; ".join(f for f in (exc.fix, s.fix) if f) or None
            if where == "environment":
                space = " " if problem.startswith("must") else ": "
                problem, fix = f"{s.env}{space}{problem}", fix or f"fix or unset {s.env}"
            raise ConfigError(problem, where=where, fix=fix) from None


def read(
    name: str,
    environ: Mapping[str, str] | None = None,
    *,
    error: Callable[[str], Exception] | None = None,
) -> Any:
    """The typed value of an environment setting (`os.environ` unless `environ` is given),
    its default when unset. An invalid value raises ConfigError naming the variable, or
    `error("<problem>; <fix>")` when given (e.g. ModelConfigError)."""
    try:
        return Source({}, "", os.environ if environ is None else environ).get(name)
    except ConfigError as exc:
        if error is None:
            raise
        raise error(f"{exc.problem}; {exc.fix}") from None
