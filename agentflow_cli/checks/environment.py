"""Environment checks: the dotenv file, required and referenced variables, MODE, Python and
the project's dependencies. Variable values are never shown, only names."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from agentflow.runtime import MODES, missing_variables, required_env_problem
from agentflow_cli.checks import Check, Outcome, Skipped, problem_outcome
from agentflow_cli.checks.context import Context

MIN_PYTHON = (3, 10)
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _dotenv(ctx: Context) -> Outcome:
    value = (ctx.data or {}).get("env")
    if ctx.env_file is None:
        assert ctx.project_dir is not None
        if (ctx.project_dir / ".env").is_file():
            return Outcome(
                "warning",
                'there is a .env file, but agentflow.json has no "env" key, so agentflow '
                "does not load it",
                'add "env": ".env" to agentflow.json, or delete the file if it is stale',
            )
        return Outcome("ok", 'no dotenv file configured ("env" key absent)')
    if not ctx.env_file.is_file():
        consequence = (
            "the server refuses to start in production"
            if ctx.production
            else "development runs without it, reading only the real environment"
        )
        return Outcome(
            "error" if ctx.production else "warning",
            f"the dotenv file {value!r} named by agentflow.json does not exist "
            f"({ctx.env_file}); {consequence}",
            "create it (e.g. copy .env.example) or remove the 'env' key",
        )
    return Outcome("ok", f"{value!r} exists and defines {len(ctx.dotenv)} variables")


def required_env_outcome(names: Iterable[str], environ: Mapping[str, str]) -> Outcome:
    """Every name in `required_env` is set (to something) in `environ`."""
    names = list(names)
    problem = required_env_problem(names, environ)
    if problem is not None:
        return problem_outcome(problem)
    if not names:
        return Outcome("ok", "no required_env listed")
    return Outcome("ok", f"all {len(names)} set: {', '.join(names)}")


def _required_env(ctx: Context) -> Outcome | Skipped:
    names = (ctx.data or {}).get("required_env") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return Skipped("required_env is not a list of names: see AF-CONFIG-004")
    return required_env_outcome(names, ctx.environ_all)


def _references(ctx: Context) -> Outcome:
    references = list(ctx.references())
    unset = [(key, name) for key, name in references if missing_variables([name], ctx.environ_all)]
    if unset:
        names = sorted({name for _, name in unset})
        where = ", ".join(f"{key} -> ${{{name}}}" for key, name in unset)
        return Outcome(
            "error",
            f"agentflow.json refers to variables that are not set: {', '.join(names)} "
            f"({where}); the server refuses to start",
            "set them in the environment or in the dotenv file named by 'env'",
        )
    if not references:
        return Outcome("ok", "agentflow.json refers to no ${VAR}")
    names = sorted({name for _, name in references})
    return Outcome("ok", f"set: {', '.join(names)}")


def _mode(ctx: Context) -> Outcome:
    if ctx.mode_value is not None and ctx.mode_value not in MODES:
        return Outcome(
            "error",
            "MODE is set to something other than 'development' or 'production'; the server "
            "refuses to start",
            "set MODE=production for deployments, or unset it for development",
        )
    source = "--production" if ctx.production_flag else ("MODE" if ctx.mode_value else "default")
    return Outcome("ok", f"{ctx.mode} (from {source})")


def python_outcome(version: tuple[int, int]) -> Outcome:
    found = ".".join(map(str, version))
    wanted = ".".join(map(str, MIN_PYTHON))
    if version < MIN_PYTHON:
        return Outcome(
            "error",
            f"Python {found} is too old: agentflow needs {wanted} or newer",
            f"use Python {wanted}+ (e.g. a python:3.12-slim base image) and reinstall",
        )
    return Outcome("ok", f"Python {found} ({sys.executable})")


def declared_dependencies(project_dir: Path) -> tuple[str, list[str]] | None:
    """(file name, distribution names) from pyproject.toml's [project].dependencies, else
    requirements.txt. Requirements with environment markers are left out: judging them
    needs the `packaging` library."""
    pyproject = project_dir / "pyproject.toml"
    if pyproject.is_file() and sys.version_info >= (3, 11):  # tomllib: 3.11+
        import tomllib

        with pyproject.open("rb") as file:
            project = tomllib.load(file).get("project", {})
        if "dependencies" in project:
            return pyproject.name, _names(project["dependencies"])
    requirements = project_dir / "requirements.txt"
    if requirements.is_file():
        return requirements.name, _names(requirements.read_text().splitlines())
    return None


def _names(lines: Iterable[str]) -> list[str]:
    names = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")) or ";" in line:
            continue
        if "://" in line and "@" not in line.split("://")[0]:
            continue  # a bare URL or VCS link: no distribution name to look up
        match = _NAME.match(line)
        if match:
            names.append(match.group())
    return names


def _dependencies(ctx: Context) -> Outcome:
    assert ctx.project_dir is not None
    try:
        declared = declared_dependencies(ctx.project_dir)
    except ValueError as exc:  # tomllib.TOMLDecodeError
        return Outcome(
            "warning",
            f"pyproject.toml is not valid TOML ({exc}), so its dependencies were not checked",
            "fix the file; `pip install .` fails on it too",
        )
    if declared is None:
        return Outcome("ok", "no pyproject.toml dependencies or requirements.txt to check")
    source, names = declared
    missing = []
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return Outcome(
            "error",
            f"not installed in this environment ({sys.executable}): {', '.join(missing)} "
            f"(declared in {source}); importing the graph will fail",
            f"pip install {' '.join(missing)}; make sure your image installs {source}",
        )
    return Outcome("ok", f"all {len(names)} dependencies in {source} are installed")


def _python(ctx: Context) -> Outcome:
    return python_outcome((sys.version_info.major, sys.version_info.minor))


REQUIRED_ENV = Check("AF-ENV-002", "environment", "required variables", _required_env)
CHECKS = (
    Check("AF-ENV-001", "environment", "dotenv file", _dotenv),
    REQUIRED_ENV,
    Check("AF-ENV-003", "environment", "${VAR} references", _references),
    Check("AF-ENV-004", "environment", "MODE", _mode, needs_config=False),
    Check("AF-ENV-005", "environment", "Python version", _python, needs_config=False),
    Check("AF-ENV-006", "environment", "dependencies installed", _dependencies),
)
