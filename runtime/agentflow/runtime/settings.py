"""One frozen `Settings`, built in layers (lowest first): defaults → agentflow.json → the
dotenv file it names → environment variables → CLI flags actually passed.

Every error is a `ConfigError` that names the file or variable, the key, and the fix.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agentflow.runtime import env
from agentflow.runtime.config_sources import ConfigError as ConfigError  # re-exported
from agentflow.runtime.config_sources import EnvReader, FileReader, expand_vars
from agentflow.utils.secrets import register_secret

CONFIG_FILE = "agentflow.json"
MODES = ("development", "production")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
CHECKPOINTERS = ("sqlite", "memory", "postgres")
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
MIN_JWT_SECRET_BYTES = 32
# Runs one worker process holds at once (each waits on its model); beyond it new runs are
# refused at once with 503 + Retry-After instead of slowing every run down.
DEFAULT_MAX_ACTIVE_RUNS = 2000
KNOWN_KEYS = frozenset(
    {"graph", "env", "checkpointer", "auth", "required_env", "origins", "limits", "name",
     "description", "$schema", "rate_limits", "client_roles"}
)  # fmt: skip
# Message roles a run request may carry. `user` always; the others come from the graph unless
# agentflow.json `client_roles` allows them (e.g. a client that seeds a conversation).
MESSAGE_ROLES = ("user", "system", "assistant", "tool")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Secret:
    """A string that never shows itself in repr, str or logs; `.get()` reveals it. Its value
    is registered with `register_secret`, so the log and model output mask it too."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)  # masked wherever it shows up: logs, errors, model output

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._value.encode())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class CheckpointerSettings:
    kind: str = "sqlite"
    path: Path = Path(".agentflow/state.db")
    dsn: Secret | None = None
    redis_url: Secret | None = None
    pool_min: int = 2
    pool_max: int = 10
    schema: str = "agentflow"
    pgbouncer: bool = False

    @property
    def shareable(self) -> bool:
        """Whether several worker processes can use it at once."""
        return self.kind == "postgres"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    kind: str  # jwt | custom
    secret: Secret | None = None
    algorithm: str = "HS256"
    public_key: str | None = None
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None
    leeway: float = 0.0
    callable_path: str | None = None


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` requests per `window` seconds; `text` is how it was written."""

    limit: int
    window: float
    text: str


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    per_user: Rate | None = None
    global_: Rate | None = None


RATE_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)s?\s*$", re.IGNORECASE)


def parse_rate(value: Any, where: str) -> Rate:
    """'N/second|minute|hour' -> Rate; a ConfigError naming `where` otherwise."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ConfigError(
            f"must look like 'N/second', 'N/minute' or 'N/hour' with N >= 1, got {value!r}",
            where=where,
            fix='e.g. "60/minute"',
        )
    unit = match.group(2).lower()
    return Rate(int(match.group(1)), RATE_UNITS[unit], f"{int(match.group(1))}/{unit}")


@dataclass(frozen=True, slots=True)
class Settings:
    project_dir: Path
    config_path: Path | None
    graph: str
    env_file: Path | None = None
    mode: str = "development"
    log_level: str = "INFO"
    log_format: str = "pretty"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    origins: tuple[str, ...] = ()
    checkpointer: CheckpointerSettings = field(default_factory=CheckpointerSettings)
    auth: AuthSettings | None = None
    docs_path: str | None = "/docs"
    redocs_path: str | None = "/redoc"
    openapi_path: str | None = "/openapi.json"
    max_body_bytes: int = 1024 * 1024
    run_timeout: float = 300.0
    recursion_limit: int = 25
    max_active_runs: int = DEFAULT_MAX_ACTIVE_RUNS
    heartbeat_interval: float = 15.0
    shutdown_grace: float = 30.0
    idempotency_ttl: float = 24 * 3600.0
    run_lease_ttl: float = 10.0
    required_env: tuple[str, ...] = ()
    playground: bool = False
    rate_limits: RateLimitSettings | None = None
    client_roles: tuple[str, ...] = ("user",)
    """Roles a client may send in a run request's messages (agentflow.json `client_roles`).
    By default only `user`: `system`, `assistant` and `tool` messages come from the graph,
    and a request carrying one is refused with 422. List a role to accept it from clients,
    e.g. ["user", "assistant"] to seed a conversation, or ["user", "tool"] for a graph whose
    tool calls a client answers (a tool message must then carry its `tool_call_id`)."""
    warnings: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        return self.mode == "production"


def find_config(config: str | Path | None, environ: Mapping[str, str]) -> Path:
    """The agentflow.json to use: `config` (a file or its directory), else the one the
    parent process handed over, else the nearest one in the working directory or above it
    (as git finds its repository), so every command works from a project's subdirectory."""
    if config is None:
        config = environ.get(env.CONFIG_PATH) or _nearest_config(Path.cwd()) or CONFIG_FILE
    path = Path(config)
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"no configuration file at {path}",
            fix=f"run from your project directory, pass --config PATH/{CONFIG_FILE}, "
            "or create one with `agentflow init`",
        )
    return path.resolve()


def _nearest_config(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror}", where=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            where=str(path),
            fix='it must be a JSON object such as {"graph": "graph.react:app"}',
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"must be a JSON object, not {type(data).__name__}",
            where=str(path),
            fix='write an object such as {"graph": "graph.react:app"}',
        )
    return data


def read_dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def export_dotenv(settings: Settings) -> None:
    """Put the dotenv values into os.environ (real environment variables win), so the
    user's graph code sees them too."""
    if settings.env_file is None or not settings.env_file.is_file():
        return
    for key, value in read_dotenv(settings.env_file).items():
        os.environ.setdefault(key, value)


def check_required_env(settings: Settings, environ: Mapping[str, str]) -> None:
    """Refuse to run while a variable named in `required_env` is unset or empty."""
    missing = [name for name in settings.required_env if not (environ.get(name) or "").strip()]
    if missing:
        raise ConfigError(
            f"required environment variables are not set: {', '.join(missing)}",
            where=f"{settings.config_path or CONFIG_FILE}: required_env",
            fix="set them in the environment or in the dotenv file named by 'env'",
        )


def load_settings(
    config: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve the settings. `overrides` are CLI flags that were actually passed (host,
    port, workers, log_level, mode, playground, graph)."""
    real_env = dict(os.environ if environ is None else environ)
    if overrides.get("graph") and config is None and not Path(CONFIG_FILE).is_file():
        path: Path | None = None
        data: dict[str, Any] = {}
    else:
        path = find_config(config, real_env)
        data = read_config_file(path)
    where = str(path) if path else "settings"
    project_dir = path.parent if path else Path.cwd().resolve()
    reader = FileReader(data, where)
    warnings = [
        f"{where}: unknown key {key!r} is ignored (known keys: {', '.join(sorted(KNOWN_KEYS))})"
        for key in data
        if key not in KNOWN_KEYS
    ]

    env_file = None
    env_value = reader.optional_str("env")
    environ_all = dict(real_env)
    if env_value:
        env_file = (project_dir / env_value).resolve()
        if env_file.is_file():
            environ_all = {**read_dotenv(env_file), **real_env}
        elif (overrides.get("mode") or real_env.get(env.MODE) or "").lower() == "production":
            raise ConfigError(
                f"the dotenv file {env_value!r} does not exist ({env_file})",
                where=f"{where}: env",
                fix="create it (copy .env.example) or remove the 'env' key",
            )
        else:  # development runs without it: the defaults (e.g. the offline model) work
            warnings.append(
                f"{where}: env: the dotenv file {env_value!r} does not exist yet, so only "
                f"the real environment is read; copy .env.example to {env_value} to set "
                "variables such as API keys"
            )
    envr = EnvReader(environ_all)

    graph = overrides.get("graph") or reader.required_str(
        "graph", example="graph.react:app", fix_hint="the module:attribute of your compiled graph"
    )
    if ":" not in graph or graph.startswith(":") or graph.endswith(":"):
        raise ConfigError(
            f"graph must look like 'module.path:attribute', got {graph!r}",
            where=f"{where}: graph",
            fix='e.g. "graph.react:app" for the object `app` in graph/react.py',
        )

    mode = (overrides.get("mode") or envr.get(env.MODE) or "development").lower()
    if mode not in MODES:
        raise ConfigError(
            f"MODE must be 'development' or 'production', got {mode!r}",
            where="environment",
            fix="set MODE=production for deployments, or unset it",
        )
    production = mode == "production"
    log_level = (overrides.get("log_level") or envr.get(env.LOG_LEVEL) or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(
            f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}",
            where="environment",
        )
    log_format = (envr.get(env.LOG_FORMAT) or ("json" if production else "pretty")).lower()
    if log_format not in ("json", "pretty"):
        raise ConfigError("LOG_FORMAT must be 'json' or 'pretty'", where="environment")

    origins_raw = envr.get(env.ORIGINS)
    if origins_raw is None:
        origins_value = reader.value("origins")
        if origins_value is None:
            origins: tuple[str, ...] = () if production else ("*",)
        else:
            origins = _parse_origins(origins_value, f"{where}: origins")
    else:
        origins = _parse_origins(origins_raw, env.ORIGINS)

    limits = reader.section("limits")
    checkpointer = _checkpointer(reader, envr, project_dir, where)
    auth = _auth(reader, envr, where, production)
    required_env = tuple(reader.str_list("required_env"))
    workers = overrides.get("workers") or envr.integer(env.WORKERS, 1, minimum=1)

    if production and "*" in origins:
        warnings.append(
            "ORIGINS=* in production lets any website call this API from a browser; "
            "list your frontend origins instead"
        )
    if production and checkpointer.kind == "memory":
        warnings.append(
            "the in-memory checkpointer loses every thread on restart and is not shared "
            'between workers; use "checkpointer": "postgres" in production'
        )

    return Settings(
        project_dir=project_dir,
        config_path=path,
        graph=graph,
        env_file=env_file,
        mode=mode,
        log_level=log_level,
        log_format=log_format,
        host=overrides.get("host") or envr.get(env.HOST) or "127.0.0.1",
        port=overrides.get("port") or envr.integer(env.PORT, 8000, minimum=0),
        workers=workers,
        origins=origins,
        checkpointer=checkpointer,
        auth=auth,
        docs_path=_docs_path(envr, env.DOCS_PATH, "/docs", production),
        redocs_path=_docs_path(envr, env.REDOCS_PATH, "/redoc", production),
        openapi_path=(
            "/openapi.json"
            if not production or envr.get(env.DOCS_PATH) or envr.get(env.REDOCS_PATH)
            else None
        ),
        max_body_bytes=envr.integer(
            env.MAX_BODY_BYTES, _limit(limits, "max_body_bytes", 1024 * 1024, where), minimum=1
        ),
        run_timeout=envr.number(
            env.RUN_TIMEOUT, float(_limit(limits, "run_timeout", 300, where)), minimum=0.001
        ),
        recursion_limit=envr.integer(
            env.RECURSION_LIMIT, _limit(limits, "recursion_limit", 25, where), minimum=1
        ),
        max_active_runs=envr.integer(
            env.MAX_ACTIVE_RUNS,
            _limit(limits, "max_active_runs", DEFAULT_MAX_ACTIVE_RUNS, where),
            minimum=1,
        ),
        heartbeat_interval=envr.number(env.HEARTBEAT_INTERVAL, 15.0, minimum=0.01),
        shutdown_grace=envr.number(env.SHUTDOWN_GRACE, 30.0, minimum=0),
        idempotency_ttl=envr.number(env.IDEMPOTENCY_TTL, 24 * 3600.0, minimum=1),
        run_lease_ttl=envr.number(env.RUN_LEASE_TTL, 10.0, minimum=0.5),
        required_env=required_env,
        playground=bool(overrides.get("playground"))
        or (envr.get(env.PLAYGROUND) or "").lower() in ("1", "true", "yes", "on"),
        rate_limits=_rate_limits(reader, where),
        client_roles=_client_roles(reader, where),
        warnings=tuple(warnings),
    )


def _client_roles(reader: FileReader, where: str) -> tuple[str, ...]:
    """The `client_roles` key: a list of message roles; `user` is always included."""
    raw = reader.value("client_roles")
    key = f"{where}: client_roles"
    if raw is None:
        return ("user",)
    if not isinstance(raw, list) or not all(isinstance(role, str) for role in raw):
        raise ConfigError(
            f"must be a list of role names, got {raw!r}",
            where=key,
            fix='e.g. "client_roles": ["user", "assistant"]',
        )
    for role in raw:
        if role not in MESSAGE_ROLES:
            close = difflib.get_close_matches(role, MESSAGE_ROLES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"unknown role {role!r}",
                where=key,
                fix=f"{hint}roles are {', '.join(MESSAGE_ROLES)}",
            )
    return tuple(role for role in MESSAGE_ROLES if role == "user" or role in raw)


def _rate_limits(reader: FileReader, where: str) -> RateLimitSettings | None:
    """The `rate_limits` key: {"per_user": "60/minute", "global": "1000/minute"}; null = off."""
    raw = reader.value("rate_limits")
    key = f"{where}: rate_limits"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(
            "must be an object or null", where=key, fix='e.g. {"per_user": "60/minute"}'
        )
    unknown = sorted(set(raw) - {"per_user", "global"})
    if unknown:
        raise ConfigError(
            f"unknown options {unknown}", where=key, fix="known options: per_user, global"
        )
    rates = {
        name: parse_rate(raw[name], f"{key}.{name}")
        for name in ("per_user", "global")
        if raw.get(name) is not None
    }
    if not rates:
        return None
    return RateLimitSettings(per_user=rates.get("per_user"), global_=rates.get("global"))


def _limit(limits: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = limits.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(
            f"must be a positive number, got {value!r}", where=f"{where}: limits.{key}"
        )
    return int(value)


def _docs_path(envr: EnvReader, name: str, default: str, production: bool) -> str | None:
    value = envr.get(name)
    if value is None:
        return None if production else default
    if value.strip().lower() in ("", "off", "none", "false", "0"):
        return None
    if not value.startswith("/"):
        raise ConfigError(f"{name} must start with '/', got {value!r}", where="environment")
    return value.rstrip("/") or "/"


def _parse_origins(value: Any, where: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError("must be a comma-separated string or a list of strings", where=where)
    origins = tuple(i.strip().rstrip("/") for i in items if i.strip())
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ConfigError(
                f"{origin!r} is not an origin",
                where=where,
                fix="use scheme://host[:port] with no path, e.g. https://app.example.com",
            )
    return origins


def _checkpointer(
    reader: FileReader, envr: EnvReader, project_dir: Path, where: str
) -> CheckpointerSettings:
    raw = reader.value("checkpointer")
    key = f"{where}: checkpointer"
    if raw is None or isinstance(raw, str):
        options: dict[str, Any] = {"kind": raw or "sqlite"}
    elif isinstance(raw, dict):
        options = dict(raw)
        options["kind"] = options.pop("kind", None) or options.pop("type", None) or "sqlite"
    else:
        raise ConfigError(
            "must be a string or an object", where=key, fix='e.g. "sqlite" or "postgres"'
        )
    options = {k: expand_vars(v, envr, f"{key}.{k}") for k, v in options.items()}
    kind = options.pop("kind")
    if kind not in CHECKPOINTERS:
        raise ConfigError(
            f"unknown checkpointer {kind!r}", where=key, fix=f"use one of {list(CHECKPOINTERS)}"
        )
    path = Path(options.pop("path", ".agentflow/state.db"))
    dsn = options.pop("dsn", None) or envr.get(env.DATABASE_URL)
    redis_url = options.pop("redis", None) or options.pop("redis_url", None)
    redis_url = redis_url or envr.get(env.REDIS_URL)
    pool = options.pop("pool", {}) or {}
    if not isinstance(pool, dict):
        raise ConfigError('must be an object like {"min": 2, "max": 10}', where=f"{key}.pool")
    schema = options.pop("schema", "agentflow")
    pgbouncer = options.pop("pgbouncer", False)
    if options:
        raise ConfigError(
            f"unknown options {sorted(options)}",
            where=key,
            fix="known options: kind, path, dsn, redis, pool, schema, pgbouncer",
        )
    if kind == "postgres" and not dsn:
        raise ConfigError(
            "the postgres checkpointer needs a database URL",
            where=key,
            fix='set DATABASE_URL or "dsn": "${DATABASE_URL}"',
        )
    if not isinstance(schema, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        raise ConfigError(f"invalid schema name {schema!r}", where=f"{key}.schema")
    pool_min, pool_max = pool.get("min", 2), pool.get("max", 10)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (pool_min, pool_max)) or (
        pool_min < 0 or pool_max < 1 or pool_min > pool_max
    ):
        raise ConfigError(
            f"pool sizes must be integers with 0 <= min <= max, max >= 1; got {pool}",
            where=f"{key}.pool",
        )
    return CheckpointerSettings(
        kind=kind,
        path=path if path.is_absolute() else project_dir / path,
        dsn=Secret(dsn) if dsn else None,
        redis_url=Secret(redis_url) if redis_url else None,
        pool_min=pool_min,
        pool_max=pool_max,
        schema=schema,
        pgbouncer=bool(pgbouncer),
    )


def _auth(reader: FileReader, envr: EnvReader, where: str, production: bool) -> AuthSettings | None:
    raw = reader.value("auth")
    key = f"{where}: auth"
    if raw is None or raw is False:
        return None
    if isinstance(raw, str):
        options: dict[str, Any] = (
            {"type": "jwt"} if raw == "jwt" else {"type": "custom", "path": raw}
        )
    elif isinstance(raw, dict):
        options = {k: expand_vars(v, envr, f"{key}.{k}") for k, v in raw.items()}
    else:
        raise ConfigError(
            "must be null, \"jwt\", \"module:attr\" or an object", where=key,
            fix='e.g. "auth": "jwt" with JWT_SECRET_KEY set',
        )  # fmt: skip
    kind = options.get("type") or options.get("kind") or "jwt"
    if kind == "custom":
        path = options.get("path")
        if not isinstance(path, str) or ":" not in path:
            raise ConfigError(
                f"custom auth needs 'module:attr', got {path!r}",
                where=key,
                fix='e.g. "auth": "auth.backend:verify"',
            )
        return AuthSettings(kind="custom", callable_path=path)
    if kind != "jwt":
        raise ConfigError(f"unknown auth type {kind!r}", where=key, fix='use "jwt" or "custom"')
    algorithm = str(options.get("algorithm") or envr.get(env.JWT_ALGORITHM) or "HS256").upper()
    if algorithm not in JWT_ALGORITHMS:
        raise ConfigError(
            f"unsupported JWT algorithm {algorithm!r}",
            where=key,
            fix=f"use one of {', '.join(JWT_ALGORITHMS)} ('none' is never accepted)",
        )
    secret = options.get("secret") or envr.get(env.JWT_SECRET_KEY)
    public_key = options.get("public_key") or envr.get(env.JWT_PUBLIC_KEY)
    jwks_url = options.get("jwks_url") or envr.get(env.JWT_JWKS_URL)
    if algorithm.startswith("HS"):
        if not secret:
            raise ConfigError(
                f"JWT auth with {algorithm} needs a shared secret",
                where=key,
                fix="set JWT_SECRET_KEY (32+ random bytes, e.g. `openssl rand -hex 32`)",
            )
        if production and len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(
                f"JWT_SECRET_KEY is {len(secret.encode())} bytes; production needs at least "
                f"{MIN_JWT_SECRET_BYTES}",
                where="environment",
                fix="generate one with `openssl rand -hex 32`",
            )
    elif not public_key and not jwks_url:
        raise ConfigError(
            f"JWT auth with {algorithm} needs the issuer's public key",
            where=key,
            fix="set JWT_PUBLIC_KEY (PEM) or JWT_JWKS_URL",
        )
    leeway = options.get("leeway", 0)
    if isinstance(leeway, bool) or not isinstance(leeway, int | float) or leeway < 0:
        raise ConfigError("leeway must be a number of seconds >= 0", where=f"{key}.leeway")
    return AuthSettings(
        kind="jwt",
        secret=Secret(secret) if secret else None,
        algorithm=algorithm,
        public_key=public_key,
        jwks_url=jwks_url,
        audience=options.get("audience") or envr.get(env.JWT_AUDIENCE),
        issuer=options.get("issuer") or envr.get(env.JWT_ISSUER),
        leeway=float(leeway),
    )
