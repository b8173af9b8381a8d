"""The facts every doctor check reads, gathered once: where agentflow.json is, what it says,
the environment (with the dotenv file's values under it) and the settings the server would
load. Nothing here changes os.environ or imports the user's code."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow.runtime import (
    ConfigError,
    Settings,
    find_config,
    load_settings,
    read_config_file,
    read_dotenv,
)
from agentflow.utils import VARIABLE_REFERENCE
from agentflow_cli.checks import secret_values, settings_secrets

if TYPE_CHECKING:
    from agentflow_cli.checks import Skipped
    from agentflow_cli.checks.graph import GraphProbe
    from agentflow_cli.checks.network import PgProbe, ServiceProbe


@dataclass
class Context:
    environ: dict[str, str]  # the real environment
    production_flag: bool = False
    offline: bool = False
    config_path: Path | None = None
    locate_error: ConfigError | None = None  # no agentflow.json
    parse_error: ConfigError | None = None  # unreadable or not a JSON object
    data: dict[str, Any] | None = None
    dotenv: dict[str, str] = field(default_factory=dict)
    settings: Settings | None = None
    settings_error: Exception | None = None

    @property
    def project_dir(self) -> Path | None:
        return self.config_path.parent if self.config_path else None

    @property
    def environ_all(self) -> dict[str, str]:
        """What the server sees: the dotenv file's values, real variables winning."""
        return {**self.dotenv, **self.environ}

    @property
    def env_file(self) -> Path | None:
        value = (self.data or {}).get("env")
        if not isinstance(value, str) or not value or self.project_dir is None:
            return None
        return (self.project_dir / value).resolve()

    @property
    def mode_value(self) -> str | None:
        value = self.environ_all.get("MODE")
        return value.strip().lower() if value and value.strip() else None

    @property
    def mode(self) -> str:
        if self.production_flag or self.mode_value == "production":
            return "production"
        return "development"

    @property
    def production(self) -> bool:
        return self.mode == "production"

    def references(self) -> Iterator[tuple[str, str]]:
        """(key path, variable name) for every ${VAR} in agentflow.json."""
        yield from _references(self.data or {}, "")

    def secrets(self) -> list[str]:
        """Values that must never be printed."""
        names = [name for _, name in self.references()]
        required = (self.data or {}).get("required_env")
        if isinstance(required, list):
            names += [n for n in required if isinstance(n, str)]
        values = secret_values(self.environ_all, names)
        return values + (settings_secrets(self.settings) if self.settings else [])

    @functools.cached_property
    def graph_probe(self) -> GraphProbe | Skipped:
        from agentflow_cli.checks.graph import probe_project_graph

        return probe_project_graph(self)

    @functools.cached_property
    def postgres(self) -> PgProbe:
        from agentflow_cli.checks.network import probe_postgres

        assert self.settings is not None
        return probe_postgres(self.settings.checkpointer)

    @functools.cached_property
    def redis(self) -> ServiceProbe:
        from agentflow_cli.checks.network import probe_redis

        assert self.settings is not None and self.settings.checkpointer.redis_url is not None
        return probe_redis(self.settings.checkpointer.redis_url.get())


def _references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _references(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{path}[{index}]")
    elif isinstance(value, str):
        for match in VARIABLE_REFERENCE.finditer(value):
            yield path, match.group(1)


def build_context(
    config: Path | None, *, production: bool, offline: bool, environ: dict[str, str]
) -> Context:
    ctx = Context(environ=environ, production_flag=production, offline=offline)
    try:
        ctx.config_path = find_config(config, environ)
    except ConfigError as exc:
        ctx.locate_error = exc
        return ctx
    try:
        ctx.data = read_config_file(ctx.config_path)
    except ConfigError as exc:
        ctx.parse_error = exc
        return ctx
    if ctx.env_file is not None and ctx.env_file.is_file():
        ctx.dotenv = read_dotenv(ctx.env_file)
    try:
        # Unknown keys are AF-CONFIG-003's finding; the other checks still run.
        ctx.settings = load_settings(
            ctx.config_path, environ=environ, mode=ctx.mode, unknown_keys="ignore"
        )
    except (ConfigError, TypeError, ValueError) as exc:  # the latter: a value of a wrong type
        ctx.settings_error = exc
    return ctx
