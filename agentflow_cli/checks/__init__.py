"""What `agentflow doctor` checks (and `agentflow api` reuses before binding).

Every check has a stable code; its finding says what was found (severity `ok`, `warning` or
`error`), why it matters and how to fix it. Codes never change meaning; new checks get new
numbers.

config
    AF-CONFIG-001  agentflow.json is found
    AF-CONFIG-002  agentflow.json is a valid JSON object
    AF-CONFIG-003  no unknown keys (a close known key is suggested)
    AF-CONFIG-004  the settings load (types, values, checkpointer, auth, limits)
graph
    AF-GRAPH-001   the graph import path resolves to a compiled graph (in a subprocess)
    AF-GRAPH-002   no offline model (DemoChat, EchoChat, ScriptedChat) answers in production
environment
    AF-ENV-001     the dotenv file named by "env" exists (and a .env file is not ignored)
    AF-ENV-002     every `required_env` variable is set
    AF-ENV-003     every ${VAR} the configuration refers to is set
    AF-ENV-004     MODE is development or production
    AF-ENV-005     the Python version is supported
    AF-ENV-006     the project's dependencies (pyproject.toml / requirements.txt) are installed
security
    AF-SEC-001     no ORIGINS=* in production
    AF-SEC-002     API docs are not exposed in production
    AF-SEC-003     authentication is configured in production
    AF-SEC-004     JWT settings: secret present and long enough, algorithm supported
    AF-SEC-005     no .env file committed to git
persistence
    AF-PERSIST-001 the checkpointer keeps threads across restarts in production
    AF-PERSIST-002 several workers only with a checkpointer they can share
    AF-PERSIST-003 the SQLite database file can be created and written
    AF-PERSIST-004 the Postgres schema version is one this agentflow knows
    AF-PERSIST-005 pool size x workers fits Postgres' max_connections
network
    AF-NET-001     Postgres is reachable
    AF-NET-002     Redis is reachable
runtime
    AF-RUNTIME-001 no DEBUG log level in production
    AF-RUNTIME-002 no reload/debug flags in production
    AF-RUNTIME-003 the port is free

Values of environment variables are never part of a finding: only their names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from agentflow.runtime import Settings, StartupProblem
    from agentflow_cli.checks.context import Context

Severity = Literal["error", "warning", "ok"]
CATEGORIES = ("config", "graph", "environment", "security", "persistence", "network", "runtime")
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "ok")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one check found, before it is labelled with the check's code and title."""

    severity: Severity
    detail: str
    fix: str = ""


def problem_outcome(problem: StartupProblem) -> Outcome:
    """The error outcome of a check the runtime itself makes before serving."""
    return Outcome("error", problem.problem, problem.fix)


@dataclass(frozen=True, slots=True)
class Skipped:
    """The check did not run, and why (offline, production only, nothing to check...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    category: str
    severity: Severity
    title: str
    detail: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "category": self.category,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Check:
    code: str
    category: str
    title: str
    run: Callable[[Context], Outcome | Skipped | None]
    needs_config: bool = True  # a parsed agentflow.json
    needs_settings: bool = False  # settings that loaded without error
    production_only: bool = False
    network: bool = False  # connects to a service: skipped by --offline

    def finding(self, outcome: Outcome) -> Finding:
        return Finding(
            self.code, self.category, outcome.severity, self.title, outcome.detail, outcome.fix
        )


def registry() -> list[Check]:
    """Every check, in the order they are reported."""
    from agentflow_cli.checks import (
        config,
        environment,
        graph,
        network,
        persistence,
        runtime,
        security,
    )

    modules = (config, graph, environment, security, persistence, network, runtime)
    return [check for module in modules for check in module.CHECKS]


def error_finding(code: str, detail: str, fix: str) -> Finding:
    """An error finding of the check with this code (its category and title), for a problem
    found outside `agentflow doctor`: by the runtime's startup checks or the preflight."""
    check = next(c for c in registry() if c.code == code)
    return check.finding(Outcome("error", detail, fix))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every known secret value and anything that looks like a credential
    replaced by [REDACTED]."""
    from agentflow.utils import mask_secrets

    for value in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(value, "[REDACTED]")
    return mask_secrets(text)


SECRET_VARIABLES = frozenset({"DATABASE_URL", "REDIS_URL", "JWT_PUBLIC_KEY", "JWT_JWKS_URL"})
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words


def secret_values(environ: Mapping[str, str], names: Iterable[str] = ()) -> list[str]:
    """The values of the variables that hold (or may hold) secrets: names that look secret,
    connection URLs, and the extra `names` (required_env, ${VAR} references)."""
    from agentflow.utils import is_secret_key

    wanted = SECRET_VARIABLES | set(names)
    return [
        value
        for name, value in environ.items()
        if (name in wanted or is_secret_key(name)) and len(value) >= MIN_SECRET_LENGTH
    ]


def settings_secrets(settings: Settings) -> list[str]:
    """The secrets the settings hold (they may come from agentflow.json itself)."""
    auth = settings.auth
    held = (
        settings.checkpointer.dsn,
        settings.checkpointer.redis_url,
        auth.secret if auth else None,
    )
    return [s.get() for s in held if s and len(s.get()) >= MIN_SECRET_LENGTH]


def scrubbed(finding: Finding, secrets: Iterable[str]) -> Finding:
    values = list(secrets)
    return Finding(
        finding.code,
        finding.category,
        finding.severity,
        scrub(finding.title, values),
        scrub(finding.detail, values),
        scrub(finding.fix, values),
    )
