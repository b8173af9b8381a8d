"""Security checks: CORS, exposed docs and missing auth in production, the auth settings, and
a committed .env file."""

from __future__ import annotations

import shutil
import subprocess

from agentflow.runtime import MIN_JWT_SECRET_BYTES, ConfigError, Settings
from agentflow_cli.checks import Check, Outcome, Skipped
from agentflow_cli.checks.config import settings_error_owner
from agentflow_cli.checks.context import Context

EXAMPLE_SUFFIXES = (".example", ".sample", ".template", ".dist")


def _origins(ctx: Context) -> Outcome:
    assert ctx.settings is not None
    origins = ctx.settings.origins
    if "*" in origins:
        source = "ORIGINS=*" if "ORIGINS" in ctx.environ_all else 'agentflow.json "origins": "*"'
        return Outcome(
            "error",
            f"{source} lets any website call this API from its visitors' browsers",
            "list your frontend origins instead, e.g. ORIGINS=https://app.example.com",
        )
    if not origins:
        return Outcome("ok", "no cross-origin browser access (ORIGINS not set)")
    return Outcome("ok", f"{len(origins)} allowed origin{'s' * (len(origins) != 1)}")


def _docs(ctx: Context) -> Outcome:
    assert ctx.settings is not None
    s = ctx.settings
    paths = (("DOCS_PATH", s.docs_path), ("REDOCS_PATH", s.redocs_path))
    names = [name for name, path in paths if path]
    if names:
        return Outcome(
            "warning",
            f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} set, so the API docs "
            "are public in production: a map of every route for anyone probing the server",
            "unset DOCS_PATH and REDOCS_PATH (docs are off in production by default) unless "
            "the docs are meant to be public",
        )
    return Outcome("ok", "API docs are off")


def _auth_required(ctx: Context) -> Outcome:
    assert ctx.settings is not None
    if ctx.settings.auth is None:
        return Outcome(
            "error",
            "no authentication: anyone who reaches the server can run the graph (and spend "
            "your model budget) and all callers share one user's threads",
            'set "auth": "jwt" in agentflow.json with JWT_SECRET_KEY, or "auth": '
            '"module:attr" for your own check',
        )
    return Outcome("ok", f"{ctx.settings.auth.kind} auth")


def auth_outcome(settings: Settings) -> Outcome | None:
    """The loaded auth settings are usable (the loader has already refused what would stop
    the server); None when there is no auth."""
    auth = settings.auth
    if auth is None:
        return None
    if auth.kind == "custom":
        return Outcome("ok", f"custom auth {auth.callable_path}")
    if not auth.algorithm.startswith("HS"):
        source = "JWKS URL" if auth.jwks_url else "public key"
        return Outcome("ok", f"JWT {auth.algorithm} verified with a {source}")
    size = len(auth.secret) if auth.secret else 0
    if size < MIN_JWT_SECRET_BYTES:
        return Outcome(
            "warning",
            f"JWT_SECRET_KEY is {size} bytes: fine for development, but production refuses "
            f"to start with less than {MIN_JWT_SECRET_BYTES} (short secrets can be brute-forced)",
            "generate one with `openssl rand -hex 32`",
        )
    return Outcome("ok", f"JWT {auth.algorithm} with a {size}-byte secret")


def _auth_settings(ctx: Context) -> Outcome | Skipped | None:
    exc = ctx.settings_error
    if exc is not None:
        if isinstance(exc, ConfigError) and settings_error_owner(exc) == AUTH.code:
            return Outcome("error", exc.problem, exc.fix or "correct the auth settings")
        return Skipped("the settings do not load: see AF-CONFIG-004")
    assert ctx.settings is not None
    return auth_outcome(ctx.settings)


def _committed_env(ctx: Context) -> Outcome | Skipped:
    assert ctx.project_dir is not None
    git = shutil.which("git")
    if git is None:
        return Skipped("git is not installed")
    patterns = [".env", ".env.*"]
    if ctx.env_file is not None and ctx.env_file.is_relative_to(ctx.project_dir):
        patterns.append(str(ctx.env_file.relative_to(ctx.project_dir)))
    environ = {k: v for k, v in ctx.environ.items() if not k.startswith("GIT_")}
    try:
        done = subprocess.run(
            [git, "-C", str(ctx.project_dir), "ls-files", "-z", "--", *patterns],
            capture_output=True, text=True, timeout=10, env=environ, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Skipped("git ls-files did not answer within 10 s")
    if done.returncode != 0:
        if "not a git repository" in done.stderr.lower():
            return Outcome("ok", "the project is not in a git repository")
        message = (done.stderr.strip().splitlines() or ["no message"])[0]
        return Skipped(f"git ls-files failed: {message}")
    tracked = sorted({f for f in done.stdout.split("\0") if f and not f.endswith(EXAMPLE_SUFFIXES)})
    if tracked:
        return Outcome(
            "error",
            f"secrets committed: {', '.join(tracked)} {'is' if len(tracked) == 1 else 'are'} "
            "tracked by git, so every secret in it is in the repository's history",
            f"git rm --cached {' '.join(tracked)}, add it to .gitignore, commit, and rotate "
            "every secret it held (the history keeps them)",
        )
    return Outcome("ok", "no .env file is tracked by git")


AUTH = Check("AF-SEC-004", "security", "auth settings", _auth_settings)
CHECKS = (
    Check("AF-SEC-001", "security", "CORS origins", _origins, needs_settings=True,
          production_only=True),
    Check("AF-SEC-002", "security", "API docs", _docs, needs_settings=True, production_only=True),
    Check("AF-SEC-003", "security", "authentication", _auth_required, needs_settings=True,
          production_only=True),
    AUTH,
    Check("AF-SEC-005", "security", ".env not committed", _committed_env),
)  # fmt: skip
