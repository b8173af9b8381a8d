"""Every setting agentflow reads, declared once (`SETTINGS`): key in agentflow.json and/or
environment variable, kind, default, CLI flag, doc. Parsing (`Source`, `read`), the unknown-key
check, doctor, the README reference and agentflow.json's JSON Schema derive from it. Layers,
lowest first: default → agentflow.json → dotenv → environment → flag, except that in the
`EXPANDED` sections (whose strings may name variables: "${DATABASE_URL}") the key wins over its
variable. Standard library only: the models and tracing read their settings here too."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agentflow.errors import ConfigError as ConfigError

EXPANDED = ("checkpointer", "auth")
# "${NAME}" in a string of agentflow.json: the variable NAME (group 1) is read there.
VARIABLE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DEFAULT_SQLITE_PATH = ".agentflow/state.db"  # the SQLite checkpointer's file, in the project
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class Invalid(ValueError):
    """A value a kind refuses; `problem` follows the key or variable ("must be ...")."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def did_you_mean(word: str, known: tuple[str, ...] | list[str]) -> str | None:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _either(texts: list[str]) -> str:
    return " or ".join(texts) if len(texts) < 3 else f"{', '.join(texts[:-1])} or {texts[-1]}"


# -- kinds: what a value must be --------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A small JSON Schema: a JSON `type` (or `any_of` kinds) and its limits. `check` turns a
    JSON value (or CLI flag) into the typed value, `from_env` a variable's stripped text;
    both raise `Invalid`. `blank` is the value of a variable set to "" (None: as if unset)."""

    type: str  # string, integer, number, boolean, array, object, null, false
    choices: tuple[str, ...] = ()
    pattern: str = ""
    shape: str = ""  # how a string matching `pattern` looks, for messages
    fold: Callable[[str], str] | None = None  # str.lower / str.upper, before the checks
    bad: str = ""  # the problem for a string not among `choices`: "unknown role"
    minimum: float = 0
    above: bool = False  # > minimum, not >=
    unit: str = ""
    item: Kind | None = None
    any_of: tuple[Kind, ...] = ()
    blank: Any = None

    @property
    def text(self) -> str:  # what a value must be, after "must be"
        quoted = [repr(c) for c in self.choices]
        if len(quoted) > 2:
            return "one of " + ", ".join(quoted)
        if self.any_of or quoted:
            return _either(quoted or [k.text for k in self.any_of])
        if self.type in ("integer", "number"):
            of = f" of {self.unit}" if self.unit else ""
            what = "an integer" if self.type == "integer" else f"a number{of}"
            return f"{what} {'>' if self.above else '>='} {self.minimum:g}"
        if self.type == "array" and self.item:
            return "a list of " + (
                self.item.text.removeprefix("one of ") if self.item.choices else "strings"
            )
        words = {"string": "a string", "boolean": "true or false", "object": "an object"}
        return self.shape or words.get(self.type, self.type)

    def accepts(self, value: Any) -> bool:  # of the right JSON type (numbers: in range)
        if self.any_of:
            return any(k.accepts(value) for k in self.any_of)
        if self.type in ("integer", "number"):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            whole = self.type == "number" or float(value).is_integer()
            return whole and (value > self.minimum if self.above else value >= self.minimum)
        if self.type == "array" and self.item:
            return isinstance(value, list) and all(self.item.accepts(v) for v in value)
        types = {"string": str, "boolean": bool, "object": dict}
        if self.type in types:
            return isinstance(value, types[self.type])
        return value is {"null": None, "false": False}[self.type]

    def check(self, value: Any) -> Any:
        fitting = [k for k in self.any_of if k.accepts(value)]
        if fitting:  # the message of the kind of the value's type
            return fitting[0].check(value)
        if not self.accepts(value):
            text = "a string" if self.type == "string" and not self.choices else self.text
            raise Invalid(f"must be {text}, got {value!r}")
        if self.type == "integer" or self.type == "number":
            return int(value) if self.type == "integer" else float(value)
        if self.type == "array" and self.item:
            return tuple(self.item.check(v) for v in value)
        value = self.fold(value) if self.fold and isinstance(value, str) else value
        if self.choices and value not in self.choices:
            wrong = f"{self.bad} {value!r}" if self.bad else f"must be {self.text}, got {value!r}"
            close = did_you_mean(value, self.choices)
            hint = f"did you mean {close!r}? " if close else ""
            raise Invalid(wrong, f"{hint}use one of {', '.join(self.choices)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise Invalid(f"must look like {self.shape}, got {value!r}")
        return value

    def from_env(self, raw: str) -> Any:
        if self.type not in ("boolean", "integer", "number"):
            return self.check(raw)
        try:
            if self.type == "boolean":
                return {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}[raw.lower()]
            return self.check(int(raw) if self.type == "integer" else float(raw))
        except (KeyError, ValueError):  # Invalid too: show the value as written
            words = f"one of {', '.join(_TRUE + _FALSE)}" if self.type == "boolean" else self.text
            raise Invalid(f"must be {words}, got {raw!r}") from None


def Text(choices: tuple[str, ...] = (), **limits: Any) -> Kind:
    return Kind("string", choices, **limits)


def Number(minimum: float = 0, **limits: Any) -> Kind:
    return Kind("number", minimum=minimum, **limits)


def List(item: Kind | None = None) -> Kind:
    return Kind("array", item=item or Text())


def OneOf(*kinds: Kind) -> Kind:
    return Kind("any", any_of=kinds)


class Origins(Kind):
    """Exact browser origins (scheme://host[:port]) or "*", as a list or comma-separated."""

    def __init__(self) -> None:
        super().__init__("any", any_of=(Kind("string"), List()), blank=())

    def check(self, value: Any) -> tuple[str, ...]:
        items = super().check(value)
        items = items.split(",") if isinstance(items, str) else items
        origins = tuple(i.strip().rstrip("/") for i in items if i.strip())
        for origin in origins:
            url = urlsplit(origin)
            wrong = url.scheme not in ("http", "https") or not url.netloc or url.path
            if origin != "*" and wrong:
                fix = "use scheme://host[:port] with no path, e.g. https://app.example.com"
                raise Invalid(f"{origin!r} is not an origin", fix)
        return origins


class DocsPath(Kind):
    """A URL path for an API docs page, or off ("off", "none", "false", "0", "": "")."""

    def __init__(self) -> None:
        super().__init__("string", shape="a path starting with '/' or off", blank="")

    def from_env(self, raw: str) -> str:
        if raw.lower() in ("off", "none", *_FALSE):
            return ""
        if not raw.startswith("/"):
            raise Invalid(f"must start with '/', got {raw!r}")
        return raw.rstrip("/") or "/"


OBJECT, NULL, TEXT = Kind("object"), Kind("null"), Text()
FLAG, INT0, INT1 = Kind("boolean"), Kind("integer"), Kind("integer", minimum=1)
MODES = ("development", "production")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
CHECKPOINTERS = ("sqlite", "memory", "postgres")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
MESSAGE_ROLES = ("user", "system", "assistant", "tool")
UNITS = "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in r"(second|minute|hour)s?")
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
    only the environment sets, the variable (upper case). `flag` is the CLI option (a
    `load_settings` override) that wins over both; `fix` is added to a wrong value's fix."""

    name: str
    kind: Kind
    default: Any
    doc: str
    env: str | None = None
    flag: str | None = None
    fix: str | None = None

    @property
    def key(self) -> str | None:
        return None if self.name.isupper() else self.name

    @property
    def variable(self) -> str | None:
        return self.name if self.name.isupper() else self.env

    @property
    def file_first(self) -> bool:  # the key (which may name it: "${VAR}") wins over `env`
        return self.name.split(".")[0] in EXPANDED


S, SECS = Setting, "seconds"
CKPT = Text(CHECKPOINTERS, bad="unknown checkpointer")
AUTH = Text(("jwt", "custom"), bad="unknown auth type")
RATE = Text(pattern=rf"\s*[1-9][0-9]*\s*/\s*{UNITS}\s*",
            shape="'N/second', 'N/minute' or 'N/hour' with N >= 1")  # fmt: skip
RATE_N = OneOf(NULL, RATE)
SETTINGS: tuple[Setting, ...] = (
    S("$schema", TEXT, None, "the JSON Schema editors check this file with"),
    S("name", TEXT, None, "the project's name (`agentflow build` names the image after it)"),
    S("description", TEXT, None, "what the project does, for people"),
    S("graph", Text(pattern=IMPORT_PATH, shape="'module.path:attribute'"), None, "the compiled "
      "graph, agentflow or LangGraph (required unless `graphs` names some)", flag="graph",
      fix='e.g. "graph.react:app" (`app` in graph/react.py)'),
    S("graphs", OBJECT, None, 'several graphs, agentflow or LangGraph, by name: {"name": '
      '"module:attr"} (the LangGraph API serves each as an assistant)'),
    S("env", TEXT, None, "a dotenv file read under the environment (production: must exist)"),
    S("checkpointer", OneOf(NULL, CKPT, OBJECT), "sqlite", "where threads live: sqlite (one "
      "machine), memory (tests), postgres (DATABASE_URL, REDIS_URL), or an object:"),
    S("checkpointer.kind", CKPT, "sqlite", "sqlite, memory or postgres"),
    S("checkpointer.type", CKPT, None, "alias of checkpointer.kind"),
    S("checkpointer.path", TEXT, DEFAULT_SQLITE_PATH, "the SQLite file (from agentflow.json)"),
    S("checkpointer.dsn", TEXT, None, "the Postgres URL", env="DATABASE_URL"),
    S("checkpointer.redis", TEXT, None, "Redis: cache, stop signals, locks", env="REDIS_URL"),
    S("checkpointer.redis_url", TEXT, None, "alias of checkpointer.redis"),
    S("checkpointer.pool", OBJECT, None, "the asyncpg pool of each worker"),
    S("checkpointer.pool.min", INT0, 2, "connections kept open"),
    S("checkpointer.pool.max", INT1, 10, "connections at most (x workers <= max_connections)"),
    S("checkpointer.schema", Text(pattern=r"[A-Za-z_][A-Za-z0-9_]{0,62}", shape="a Postgres "
      "identifier"), "agentflow", "the Postgres schema of agentflow's tables"),
    S("checkpointer.pgbouncer", FLAG, False, "no prepared statements (PgBouncer)"),
    S("auth", OneOf(NULL, Kind("false"), Text(pattern=rf"jwt|{IMPORT_PATH}", shape='"jwt"/'
      '"module:attr"'), OBJECT), None, 'null (anyone), "jwt", your "module:attr", or:'),
    S("auth.type", AUTH, "jwt", "jwt or custom"),
    S("auth.kind", AUTH, None, "alias of auth.type"),
    S("auth.path", Text(pattern=IMPORT_PATH, shape="'module:attr'"), None, "custom: the callable"),
    S("auth.algorithm", Text(JWT_ALGORITHMS, fold=str.upper, bad="unsupported JWT algorithm"),
      "HS256", "the JWT signature algorithm", env="JWT_ALGORITHM", fix="'none' is never accepted"),
    S("auth.secret", TEXT, None, "HS*: the secret (production: 32+ bytes)", env="JWT_SECRET_KEY"),
    S("auth.public_key", TEXT, None, "RS*/ES*: the issuer's PEM public key", env="JWT_PUBLIC_KEY"),
    S("auth.jwks_url", TEXT, None, "RS*/ES*: the issuer's JWKS URL", env="JWT_JWKS_URL"),
    S("auth.audience", TEXT, None, "the required `aud` claim", env="JWT_AUDIENCE"),
    S("auth.issuer", TEXT, None, "the required `iss` claim", env="JWT_ISSUER"),
    S("auth.leeway", Number(unit=SECS), 0.0, "clock skew allowed on exp/nbf"),
    S("required_env", List(), (), "variables that must be set (not empty) to serve"),
    S("origins", Origins(), ByMode(("*",), ()), "browser origins CORS allows", env="ORIGINS"),
    S("limits", OBJECT, None, "request and run limits:"),
    S("limits.max_body_bytes", INT1, 1024 * 1024, "largest request body", env="MAX_BODY_BYTES"),
    S("limits.run_timeout", Number(0, above=True, unit=SECS), 300.0, "a run's time limit",
      env="RUN_TIMEOUT"),
    S("limits.recursion_limit", INT1, 25, "graph steps per run", env="RECURSION_LIMIT"),
    S("limits.max_active_runs", INT1, 2000, "runs a worker holds (more: 503)",
      env="MAX_ACTIVE_RUNS"),
    S("rate_limits", OneOf(NULL, OBJECT), None, "requests per user and overall, shared by "
      "every worker through Redis (null: off):"),
    S("rate_limits.per_user", RATE_N, None, 'e.g. "60/minute"', fix='e.g. "60/minute"'),
    S("rate_limits.global", RATE_N, None, 'e.g. "1000/minute"', fix='e.g. "1000/minute"'),
    S("client_roles", List(Text(MESSAGE_ROLES, bad="unknown role")), ("user",), "message roles "
      "a client may send (others come from the graph)", fix='e.g. ["user", "assistant"]'),
    S("MODE", Text(MODES, fold=str.lower), "development", "production: docs off, JSON logs, "
      "generic errors", flag="mode"),
    S("LOG_LEVEL", Text(LOG_LEVELS, fold=str.upper), "INFO", "root log level", flag="log_level"),
    S("LOG_FORMAT", Text(("json", "pretty"), fold=str.lower), ByMode("pretty", "json"), "logs"),
    S("HOST", TEXT, "127.0.0.1", "the interface to listen on", flag="host"),
    S("PORT", INT0, 8000, "the port to listen on", flag="port"),
    S("WEB_CONCURRENCY", INT1, 1, "worker processes (several need postgres)", flag="workers"),
    S("DOCS_PATH", DocsPath(), ByMode("/docs", ""), "the Swagger UI"),
    S("REDOCS_PATH", DocsPath(), ByMode("/redoc", ""), "the ReDoc UI"),
    S("HEARTBEAT_INTERVAL", Number(0.01, unit=SECS), 15.0, "SSE heartbeat period"),
    S("SHUTDOWN_GRACE", Number(0, unit=SECS), 30.0, "time runs in flight get at SIGTERM"),
    S("IDEMPOTENCY_TTL", Number(1, unit=SECS), 24 * 3600.0, "Idempotency-Key answers kept"),
    S("RUN_LEASE_TTL", Number(0.5, unit=SECS), 10.0, "a dead worker's threads stay locked"),
    S("RUN_STREAM_RETENTION", Number(0, unit=SECS), 600.0, "a finished run's events stay "
      "readable at .../runs/{run_id}/stream (one process: the last 1,000 runs at most)"),
    S("PLAYGROUND", FLAG, False, "/playground under `agentflow api` too", flag="playground"),
    S("AGENTFLOW_CONFIG", TEXT, None, "the agentflow.json to use without --config"),
    S("OPENAI_API_KEY", TEXT, None, "the key OpenAIChat sends (none needed on localhost)"),
    S("OPENAI_BASE_URL", TEXT, "https://api.openai.com/v1", "any OpenAI-compatible server"),
    S("OPENAI_MODEL", TEXT, "gpt-4o-mini-2024-07-18", "the model the templates' graphs ask for"),
    S("AGENTFLOW_MODEL_TIMEOUT", Number(0, above=True, unit=SECS), 60.0, "a model call's time "
      "limit (streamed: each gap)"),
    S("AGENTFLOW_MODEL_MAX_RETRIES", INT0, None, "retries after the first attempt (default 2)"),
    S("AGENTFLOW_MODEL_MAX_CONCURRENCY", INT1, None, "requests in flight per model and process"),
    S("AGENTFLOW_MODEL_RPM", INT1, None, "requests per minute per model and process"),
    S("AGENTFLOW_TRACING", FLAG, None, "spans on/off; unset: on when OTEL_* names an exporter"),
    S("AGENTFLOW_TRACE_NODES", FLAG, False, "a span per graph node step too"),
)  # fmt: skip
BY_NAME = {name: s for s in SETTINGS for name in {s.name, s.variable} if name}


def setting(name: str) -> Setting:
    """The setting with this key path or environment variable."""
    return BY_NAME[name]


KEYS = [s.key for s in SETTINGS if s.key]


def children(path: str = "") -> list[str]:
    """The keys declared right under a key path ("": the top level of agentflow.json)."""
    prefix = f"{path}." if path else ""
    names = {k[len(prefix) :] for k in KEYS if k.startswith(prefix)}
    return sorted(n for n in names if "." not in n)


Unknown = tuple[str, str | None, list[str]]  # key path, the key meant, the keys known there


def unknown_keys(data: Any, path: str = "") -> list[Unknown]:
    """Every key of agentflow.json that no setting declares, at any depth."""
    found: list[Unknown] = []
    known = children(path)
    for key, value in data.items() if isinstance(data, dict) and known else ():
        full = f"{path}.{key}" if path else key
        if key in known:
            found += unknown_keys(value, full)
        else:
            elsewhere = (k for k in KEYS if k.rsplit(".", 1)[-1] == key)
            found.append((full, did_you_mean(key, known) or next(elsewhere, None), known))
    return found


def unknown_key_error(path: str, meant: str | None, known: list[str], where: str) -> ConfigError:
    hint = f" (did you mean {meant!r}?)" if meant else ""
    fix = f"rename it to {meant!r}" if meant else f"remove it; known keys here: {', '.join(known)}"
    key = path.rpartition(".")[2]
    return ConfigError(f"unknown key {key!r}{hint}", where=f"{where}: {path}", fix=fix)


@dataclass
class Source:
    """The value of each setting, from its layers: agentflow.json `data` (read from `where`),
    the environment (the dotenv file's values under it) and the CLI `flags`. Errors name the
    file and key path, or the variable."""

    data: Mapping[str, Any]
    where: str
    environ: Mapping[str, str]
    flags: Mapping[str, Any] = field(default_factory=dict)

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
        raw = self.environ.get(s.variable) if s.variable else None
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

        return VARIABLE_REFERENCE.sub(substitute, value)

    def _checked(self, s: Setting, value: Any, where: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(value)
        except Invalid as exc:
            problem, fix = exc.problem, "; ".join(f for f in (exc.fix, s.fix) if f) or None
            if where == "environment":
                space = " " if problem.startswith("must") else ": "
                problem, fix = f"{s.variable}{space}{problem}", fix or f"fix or unset {s.variable}"
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
