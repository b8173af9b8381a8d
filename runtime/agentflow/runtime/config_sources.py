"""Where configuration values come from: the agentflow.json reader and the environment
reader, both raising `ConfigError` that names the key and the fix, and `${VAR}` expansion."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agentflow.graph.errors import AgentflowError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(AgentflowError):
    """The configuration is wrong: what, where, and how to fix it."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where = where
        self.fix = fix
        self.problem = message
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


def expand_vars(value: Any, envr: EnvReader, where: str) -> Any:
    """Replace ${VAR} in strings (recursively in objects) from the environment."""
    if isinstance(value, dict):
        return {k: expand_vars(v, envr, f"{where}.{k}") for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        found = envr.get(name)
        if found is None:
            raise ConfigError(
                f"refers to ${{{name}}}, which is not set",
                where=where,
                fix=f"set {name} in the environment or in the dotenv file",
            )
        return found

    return _VAR.sub(substitute, value)


class FileReader:
    """Typed access to agentflow.json keys, with errors that name the key."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def value(self, key: str) -> Any:
        return self.data.get(key)

    def optional_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(
                f"must be a string, got {type(value).__name__}", where=f"{self.where}: {key}"
            )
        return value

    def required_str(self, key: str, *, example: str, fix_hint: str) -> str:
        value = self.optional_str(key)
        if not value:
            raise ConfigError(
                f"missing required key {key!r} ({fix_hint})",
                where=self.where,
                fix=f'add "{key}": "{example}"',
            )
        return value

    def str_list(self, key: str) -> list[str]:
        value = self.data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("must be a list of strings", where=f"{self.where}: {key}")
        return value

    def section(self, key: str) -> dict[str, Any]:
        value = self.data.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError("must be an object", where=f"{self.where}: {key}")
        return value


class EnvReader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def get(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value if value is None else value.strip()

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        return int(self._number(name, default, minimum, int, "an integer"))

    def number(self, name: str, default: float, *, minimum: float) -> float:
        return self._number(name, default, minimum, float, "a number")

    def _number(
        self, name: str, default: float, minimum: float, cast: type[float], kind: str
    ) -> float:
        raw = self.get(name)
        if not raw:
            return default
        try:
            value = cast(raw)
        except ValueError:
            raise ConfigError(f"{name} must be {kind}, got {raw!r}", where="environment") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}", where="environment")
        return value
