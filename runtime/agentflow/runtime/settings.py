"""One frozen `Settings`, built in layers (lowest first): defaults → agentflow.json → the
dotenv file it names → environment variables → CLI flags actually passed. Every setting is
declared in `agentflow.utils.config`; every error is a `ConfigError` naming the file and key
path (or the variable) and the fix, an undeclared key at any depth included."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentflow.runtime import env
from agentflow.utils import config as declared
from agentflow.utils.config import DEFAULT_SQLITE_PATH, MESSAGE_ROLES, MODES, ConfigError, Source
from agentflow.utils.secrets import register_secret

__all__ = ["MODES", "ConfigError", "Secret", "Settings", "load_settings"]
CONFIG_FILE = "agentflow.json"
MIN_JWT_SECRET_BYTES = 32
# Runs one worker process holds at once (each waits on its model); beyond it new runs are
# refused at once with 503 + Retry-After instead of slowing every run down.
DEFAULT_MAX_ACTIVE_RUNS: int = declared.setting("MAX_ACTIVE_RUNS").default
KNOWN_KEYS = frozenset(declared.children())
# The name `graph` is served under (the LangGraph API's graph id) when `graphs` does not name it.
DEFAULT_GRAPH_NAME = "agent"
GRAPH_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
    path: Path = Path(DEFAULT_SQLITE_PATH)
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


def parse_rate(value: Any, where: str) -> Rate:
    """'N/second|minute|hour' -> Rate; a ConfigError naming `where` otherwise."""
    try:
        number, unit = (part.strip().lower() for part in declared.RATE.check(value).split("/"))
    except declared.Invalid as exc:
        raise ConfigError(exc.problem, where=where, fix='e.g. "60/minute"') from None
    unit = unit.rstrip("s")
    return Rate(int(number), RATE_UNITS[unit], f"{int(number)}/{unit}")


@dataclass(frozen=True, slots=True)
class Settings:
    project_dir: Path
    config_path: Path | None
    graph: str
    # Every served graph as (name, module:attr), the default (`graph`) among them.
    graphs: tuple[tuple[str, str], ...] = ()
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
    run_stream_retention: float = 600.0
    required_env: tuple[str, ...] = ()
    playground: bool = False
    rate_limits: RateLimitSettings | None = None
    client_roles: tuple[str, ...] = ("user",)  # a request with another role is a 422
    warnings: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        return self.mode == "production"


def find_config(config: str | Path | None, environ: Mapping[str, str]) -> Path:
    """The agentflow.json to use: `config` (a file or its directory), else the one the
    parent process handed over, else the nearest one in the working directory or above it
    (as git finds its repository), so every command works from a project's subdirectory."""
    if config is None:
        nearest = (d / CONFIG_FILE for d in (Path.cwd(), *Path.cwd().parents))
        found = next((p for p in nearest if p.is_file()), CONFIG_FILE)
        config = environ.get(env.CONFIG_PATH) or found
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


# Settings attributes that are a declared setting as it is.
_DECLARED = {
    "mode": "MODE", "log_level": "LOG_LEVEL", "log_format": "LOG_FORMAT", "host": "HOST",
    "port": "PORT", "workers": "WEB_CONCURRENCY", "heartbeat_interval": "HEARTBEAT_INTERVAL",
    "shutdown_grace": "SHUTDOWN_GRACE", "idempotency_ttl": "IDEMPOTENCY_TTL",
    "run_lease_ttl": "RUN_LEASE_TTL", "run_stream_retention": "RUN_STREAM_RETENTION",
    "required_env": "required_env", "playground": "PLAYGROUND",
    **{key: f"limits.{key}" for key in ("max_body_bytes", "run_timeout", "recursion_limit",
                                         "max_active_runs")},
}  # fmt: skip


def load_settings(
    config: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    unknown_keys: Literal["error", "ignore"] = "error",
    **overrides: Any,
) -> Settings:
    """Resolve the settings. `overrides` are CLI flags that were actually passed (host,
    port, workers, log_level, mode, playground, graph). `unknown_keys="ignore"` loads a
    file with undeclared keys as if they were absent (doctor reports them on its own)."""
    real_env = dict(os.environ if environ is None else environ)
    if overrides.get("graph") and config is None and not Path(CONFIG_FILE).is_file():
        path: Path | None = None
        data: dict[str, Any] = {}
    else:
        path = find_config(config, real_env)
        data = read_config_file(path)
    where = str(path) if path else "settings"
    project_dir = path.parent if path else Path.cwd().resolve()
    if unknown_keys == "error" and (found := declared.unknown_keys(data)):
        raise declared.unknown_key_error(*found[0], where)
    warnings: list[str] = []
    env_value = Source(data, where, real_env).file("env")
    env_file = (project_dir / env_value).resolve() if env_value else None
    dotenv = read_dotenv(env_file) if env_file is not None and env_file.is_file() else {}
    if env_file is not None and not env_file.is_file():
        if Source(data, where, real_env, overrides).get("MODE") == "production":
            raise ConfigError(
                f"the dotenv file {env_value!r} does not exist ({env_file})",
                where=f"{where}: env",
                fix="create it (copy .env.example) or remove the 'env' key",
            )
        warnings.append(  # development runs without it: the defaults (the offline model) work
            f"{where}: env: the dotenv file {env_value!r} does not exist yet, so only "
            f"the real environment is read; copy .env.example to {env_value} to set "
            "variables such as API keys"
        )
    source = Source(data, where, {**dotenv, **real_env}, overrides)
    for item in declared.SETTINGS:  # every value, used here or not (models, tracing)
        if item.key:
            source.file(item.key)
        if item.variable:
            source.env(item.variable)
    get = source.get
    production = get("MODE") == "production"
    origins, checkpointer = get("origins"), _checkpointer(source, project_dir)
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
    docs, redocs = get("DOCS_PATH") or None, get("REDOCS_PATH") or None
    graphs = _graphs(source, where)
    graph = get("graph") or (graphs[0][1] if graphs else None)
    if not graph:
        raise ConfigError(
            "missing required key 'graph' (the module:attribute of your compiled graph)",
            where=where,
            fix='add "graph": "graph.react:app"',
        )
    if all(spec != graph for _, spec in graphs):
        graphs = ((DEFAULT_GRAPH_NAME, graph), *graphs)
    return Settings(
        project_dir=project_dir,
        config_path=path,
        graph=graph,
        graphs=graphs,
        env_file=env_file,
        **{attr: get(name) for attr, name in _DECLARED.items()},
        origins=origins,
        checkpointer=checkpointer,
        auth=_auth(source, where, production),
        docs_path=docs,
        redocs_path=redocs,
        openapi_path="/openapi.json" if not production or docs or redocs else None,
        rate_limits=_rate_limits(source, where),
        client_roles=tuple(r for r in MESSAGE_ROLES if r == "user" or r in get("client_roles")),
        warnings=tuple(warnings),
    )


def _graphs(source: Source, where: str) -> tuple[tuple[str, str], ...]:
    """agentflow.json `graphs`: {"name": "module:attr"}, checked, in the file's order."""
    raw = source.file("graphs") or {}
    found: list[tuple[str, str]] = []
    for name, spec in raw.items():
        key = f"{where}: graphs.{name}"
        if not GRAPH_NAME.fullmatch(name):
            raise ConfigError(
                f"the graph name {name!r} is not usable in a URL",
                where=key,
                fix="use letters, digits, '-' and '_' only (e.g. \"agent\")",
            )
        if not isinstance(spec, str) or not re.fullmatch(declared.IMPORT_PATH, spec):
            raise ConfigError(
                f"must be 'module.path:attribute', got {json.dumps(spec)[:80]}",
                where=key,
                fix=f'e.g. "{name}": "graph.{name}:graph"',
            )
        found.append((name, spec))
    return tuple(found)


def _rate_limits(source: Source, where: str) -> RateLimitSettings | None:
    """{"per_user": "60/minute", "global": "1000/minute"}; null or no rate = off."""
    rates = [source.get(f"rate_limits.{name}") for name in ("per_user", "global")]
    per_user, global_ = (parse_rate(r, f"{where}: rate_limits") if r else None for r in rates)
    return RateLimitSettings(per_user, global_) if per_user or global_ else None


def _checkpointer(source: Source, project_dir: Path) -> CheckpointerSettings:
    get, file, raw = source.get, source.file, source.get("checkpointer")
    kind = raw if isinstance(raw, str) else file("checkpointer.kind") or file("checkpointer.type")
    kind, dsn = kind or "sqlite", get("checkpointer.dsn")
    redis_url = file("checkpointer.redis") or file("checkpointer.redis_url")
    redis_url = redis_url or source.env("checkpointer.redis")
    if kind == "postgres" and not dsn:
        raise ConfigError(
            "the postgres checkpointer needs a database URL",
            where=f"{source.where}: checkpointer",
            fix='set DATABASE_URL or "dsn": "${DATABASE_URL}"',
        )
    pool_min, pool_max = get("checkpointer.pool.min"), get("checkpointer.pool.max")
    if pool_min > pool_max:
        where = f"{source.where}: checkpointer.pool"
        raise ConfigError(f"min {pool_min} is larger than max {pool_max}", where=where)
    path = Path(get("checkpointer.path"))
    return CheckpointerSettings(
        kind=kind,
        path=path if path.is_absolute() else project_dir / path,
        dsn=Secret(dsn) if dsn else None,
        redis_url=Secret(redis_url) if redis_url else None,
        pool_min=pool_min,
        pool_max=pool_max,
        schema=get("checkpointer.schema"),
        pgbouncer=get("checkpointer.pgbouncer"),
    )


def _auth(source: Source, where: str, production: bool) -> AuthSettings | None:
    get, raw, key = source.get, source.get("auth"), f"{where}: auth"
    if raw is None or raw is False:  # an empty object is JWT auth with every default
        return None
    if isinstance(raw, str):
        kind, path = ("jwt", None) if raw == "jwt" else ("custom", raw)
    else:
        kind = source.file("auth.type") or source.file("auth.kind") or "jwt"
        path = get("auth.path")
    if kind == "custom":
        if not path:
            raise ConfigError(
                "custom auth needs 'module:attr', got None",
                where=key,
                fix='e.g. "auth": "auth.backend:verify"',
            )
        return AuthSettings(kind="custom", callable_path=path)
    algorithm, secret = get("auth.algorithm"), get("auth.secret")
    public_key, jwks_url = get("auth.public_key"), get("auth.jwks_url")
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
    return AuthSettings(
        kind="jwt",
        secret=Secret(secret) if secret else None,
        algorithm=algorithm,
        public_key=public_key,
        jwks_url=jwks_url,
        audience=get("auth.audience"),
        issuer=get("auth.issuer"),
        leeway=get("auth.leeway"),
    )
