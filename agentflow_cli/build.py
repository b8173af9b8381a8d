"""`agentflow build`: write the files that deploy a project, without a Docker daemon.

Always a multi-stage `Dockerfile`, `.dockerignore`, `.env.production.example` (what the
container reads, no values) and `wheels/` with the wheel of the running agentflow (our
distribution is not on the package index: the image installs it by its path);
`--docker-compose` adds api + Postgres + Redis, `--k8s` the manifests in `k8s/`. Templates:
`templates/build/` (`_*` files are messages, not outputs). The build context is always the
project; `--output DIR` writes every file into DIR, its wheel too, which the image then takes
from a named build context (`--build-context wheels=DIR/wheels`, compose's
`additional_contexts`). The settings load in production mode with placeholders for every
variable: the build machine holds no secrets, and the developer's environment and dotenv file
never leak in.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from agentflow import __version__
from agentflow_cli import DISTRIBUTION
from agentflow_cli.init import display_path
from agentflow_cli.output import EXIT_USAGE, CliError, config_hint, console, err_console
from agentflow_cli.render import (
    blocked_paths,
    changed_paths,
    existing_paths,
    list_files,
    render_files,
    write_files,
)
from agentflow_cli.templates import template_dir
from agentflow_cli.wheel import WHEELS, wheel_file

if TYPE_CHECKING:
    from agentflow.runtime import Settings

DEFAULT_PYTHON = "3.11"
MIN_PYTHON = (3, 10)
UID = 10001
PORT = 8000
PRESTOP_SECONDS = 5  # the pod leaves the Service endpoints before the drain starts
GRACE_MARGIN = 10  # seconds on top of SHUTDOWN_GRACE before a container is killed
PLACEHOLDER = "agentflow-build-placeholder-" + "x" * 36  # long enough for a JWT secret
DEFAULT_ORIGIN = "https://app.example.com"
ENV_EXAMPLE = ".env.production.example"
# What the generated files set themselves.
HANDLED = frozenset(
    {"MODE", "PORT", "HOST", "WEB_CONCURRENCY", "LOG_LEVEL", "LOG_FORMAT", "ORIGINS",
     "SHUTDOWN_GRACE", "POSTGRES_PASSWORD"}
)  # fmt: skip
PING = (
    "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % "
    "os.environ.get('PORT', '8000'), timeout=3)"
)


def python_version(value: str | None) -> str:
    """`X.Y` of the base image; anything else, or older than 3.10, is a usage error."""
    value = DEFAULT_PYTHON if value is None else value.strip()
    match = re.fullmatch(r"(\d+)\.(\d+)", value)
    if match is None or (int(match[1]), int(match[2])) < MIN_PYTHON:
        raise CliError(
            f"--python {value!r} is not a supported Python version",
            hint="give major.minor, 3.10 or newer, e.g. --python 3.12 (python:3.12-slim)",
            code=EXIT_USAGE,
        )
    return f"{int(match[1])}.{int(match[2])}"


@dataclass(frozen=True, slots=True)
class Project:
    directory: Path
    name: str  # a DNS label: image, compose project and Kubernetes names
    data: dict[str, Any]  # agentflow.json
    settings: Settings  # production mode, placeholders for the variables
    state_dir: PurePosixPath | None  # SQLite's directory, relative to the project if inside


def load_project(config: Path | None) -> Project:
    from agentflow.runtime import ConfigError, find_config, load_settings, read_config_file

    try:
        path = find_config(config, os.environ)
        data = read_config_file(path)
    except ConfigError as exc:
        raise CliError(f"cannot build: {exc.problem}", hint=config_hint(exc)) from None
    raw = data.get("name") if isinstance(data.get("name"), str) else path.parent.name
    name = re.sub(r"^[^a-z]+", "", re.sub(r"[^a-z0-9-]+", "-", str(raw).lower()))
    required = data.get("required_env")
    names = _references(data) | {"DATABASE_URL", "REDIS_URL", "JWT_SECRET_KEY", "JWT_PUBLIC_KEY"}
    names |= {n for n in required if isinstance(n, str)} if isinstance(required, list) else set()
    # A copy without "env": the image never holds the dotenv file.
    with tempfile.TemporaryDirectory(prefix="agentflow-build-") as tmp:
        copy = Path(tmp).resolve() / path.name
        copy.write_text(json.dumps({k: v for k, v in data.items() if k != "env"}))
        try:
            settings = load_settings(
                copy, environ=dict.fromkeys(names, PLACEHOLDER), mode="production"
            )
        except (ConfigError, TypeError, ValueError) as exc:
            problem = str(getattr(exc, "problem", None) or exc).replace(str(copy), str(path))
            hint = config_hint(exc).replace(str(copy), str(path))
            raise CliError(f"cannot build: {problem}", hint=hint) from None
    state = settings.checkpointer.path.parent
    state_dir = None
    if settings.checkpointer.kind == "sqlite":
        inside = state.is_relative_to(copy.parent)
        state_dir = PurePosixPath((state.relative_to(copy.parent) if inside else state).as_posix())
    name = name[:63].rstrip("-") or "agentflow-app"
    return Project(path.parent, name, data, settings, state_dir)


def _references(data: dict[str, Any]) -> set[str]:
    """The ${VAR} names agentflow.json refers to."""
    from agentflow.utils import VARIABLE_REFERENCE

    return set(VARIABLE_REFERENCE.findall(json.dumps(data)))


def variables(project: Project) -> dict[str, Any]:
    """What the container reads besides what the files set: `required` (required_env,
    ${VAR} references, what auth and the checkpointer take from the environment),
    `optional_secrets` and `settings_extra` (the other names of the project's .env.example;
    secret-looking ones without their values)."""
    from agentflow.runtime import read_dotenv
    from agentflow_cli.checks import secret_values  # doctor's idea of a secret name

    settings, auth, store = project.settings, project.settings.auth, project.settings.checkpointer
    needed = set(settings.required_env) | _references(project.data)
    if auth is not None and auth.kind == "jwt":
        if auth.algorithm.startswith("HS") and auth.secret and auth.secret.get() == PLACEHOLDER:
            needed.add("JWT_SECRET_KEY")
        elif auth.public_key == PLACEHOLDER and not auth.jwks_url:
            needed.add("JWT_PUBLIC_KEY")
    optional = set()
    if store.kind == "postgres":
        if store.dsn and store.dsn.get() == PLACEHOLDER:
            needed.add("DATABASE_URL")
        optional.add("REDIS_URL")
    example = project.directory / ".env.example"
    extra: list[tuple[str, str]] = []
    for name, value in (read_dotenv(example) if example.is_file() else {}).items():
        if name in HANDLED | needed | optional:
            continue
        if secret_values({name: PLACEHOLDER}):
            optional.add(name)
        else:
            extra.append((name, value))
    return {
        "required": sorted(needed - HANDLED),
        "optional_secrets": sorted(optional - needed - HANDLED),
        "settings_extra": extra,
    }


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def context(
    project: Project,
    found: dict[str, Any],
    *,
    python: str,
    output: Path,
    compose: bool,
    wheel: PurePosixPath,
) -> dict[str, Any]:
    """Everything the build templates use; `wheel` is the agentflow wheel's path in `output`."""
    settings, directory, state = project.settings, project.directory, project.state_dir
    elsewhere = output.resolve() != directory.resolve()  # the wheel is outside the context
    dockerfile = _relative(output / "Dockerfile", directory)
    wheels_dir = _relative(output / WHEELS, directory)
    build_args = (
        [f"-t {project.name}"]
        + ([f"-f {dockerfile}"] if dockerfile != "Dockerfile" else [])
        + ([f"--build-context wheels={wheels_dir}"] if elsewhere else [])
        + ["."]
    )
    grace = math.ceil(settings.shutdown_grace)
    origins = ",".join(o for o in settings.origins if o != "*") or DEFAULT_ORIGIN
    env = project.data.get("env")
    env_file = PurePosixPath(env) if isinstance(env, str) and env else None
    quote = shlex.quote
    return {
        "name": project.name,
        "image": f"{project.name}:latest",
        "agentflow_version": __version__,
        "python_version": python,
        "toml_module": "tomllib" if tuple(map(int, python.split("."))) >= (3, 11) else "tomli",
        "dockerfile": dockerfile,
        "docker_build": " ".join(["docker build", *build_args]),
        "buildah_build": " ".join(["buildah build --format docker --layers", *build_args]),
        "context": _relative(directory, output),
        "distribution": DISTRIBUTION,
        "wheel": wheel.name,
        "wheel_path": str(wheel),  # in /build, and in the project when it is the output
        "wheels_context": elsewhere,
        "wheels_dir": wheels_dir,
        "env_example": ENV_EXAMPLE,
        "dependency_files": [
            f for f in ("pyproject.toml", "requirements.txt") if (directory / f).is_file()
        ],
        "env_file": quote(str(env_file)) if env_file else None,
        "env_dir": quote(str(env_file.parent)) if env_file and env_file.parent.name else None,
        "extra_ignores": [str(env_file)] if env_file else [],
        "sqlite_dir": quote(str(state)) if state else None,
        "sqlite_volume": str(PurePosixPath("/app") / state) if state else None,
        "checkpointer": settings.checkpointer.kind,
        "shareable": settings.checkpointer.shareable,
        "compose": compose,
        "uid": UID,
        "port": PORT,
        "workers": 2 if settings.checkpointer.shareable else 1,
        "grace": grace,
        "stop_grace": grace + GRACE_MARGIN,
        "prestop": PRESTOP_SECONDS,
        "termination_grace": PRESTOP_SECONDS + grace + GRACE_MARGIN,
        "ping_command": f'python -c "{PING}"',
        "ping_json": json.dumps(PING),
        "origins": origins,
        "origins_json": json.dumps(origins),
        **found,
        "settings_extra_json": [(n, json.dumps(v)) for n, v in found["settings_extra"]],
        "secret_name": f"{project.name}-secrets",
        "config_name": f"{project.name}-config",
        "replicas": 2,  # the autoscaler's minimum
    }


def shareability_warnings(project: Project, *, compose: bool, k8s: bool) -> list[str]:
    """Refuse replicas on a checkpointer they cannot share; warn about a lone Dockerfile."""
    store, state = project.settings.checkpointer, project.state_dir
    warnings = []
    if not store.shareable:
        if compose or k8s:
            what = " and ".join(
                w for w, on in (("docker-compose.yml", compose), ("k8s/", k8s)) if on
            )
            raise CliError(
                f"cannot write {what}: they run several workers and replicas, and the "
                f"{store.kind} checkpointer is not shared between processes, so each would "
                "see different threads; nothing was written",
                hint='set "checkpointer": "postgres" in agentflow.json (it reads DATABASE_URL '
                "and REDIS_URL), or build only the Dockerfile for one machine",
            )
        warnings.append(
            f"the {store.kind} checkpointer keeps threads "
            + (
                f"in a file on one machine: run ONE container with ONE worker (the image sets "
                f"WEB_CONCURRENCY=1) and mount a volume at {PurePosixPath('/app') / state}, or "
                "the threads vanish with the container"
                if state
                else "in the process's memory: every thread vanishes on restart"
            )
            + '; for replicas use "checkpointer": "postgres"'
        )
    if project.settings.auth is None:
        warnings.append(
            "agentflow.json configures no auth: anyone who can reach the port can call the "
            'API; set "auth": "jwt" (or a custom "module:attr") before exposing it'
        )
    return warnings


def render_build(ctx: dict[str, Any], *, compose: bool, k8s: bool) -> dict[PurePosixPath, bytes]:
    """The generated files, keyed by their path relative to the output directory."""
    files = {
        target: item
        for target, item in list_files([template_dir("build")]).items()
        if not target.name.startswith("_")
        and (compose or target.name != "docker-compose.yml")
        and (k8s or target.parts[0] != "k8s")
    }
    # .dockerignore belongs at the root of the build context; for a Dockerfile elsewhere
    # BuildKit reads <Dockerfile>.dockerignore next to it.
    ignore = ".dockerignore" if not ctx["wheels_context"] else "Dockerfile.dockerignore"
    rendered = render_files(files, ctx)
    return {
        PurePosixPath(ignore) if str(t) == ".dockerignore" else t: c for t, c in rendered.items()
    }


def run_build(
    config: Path | None,
    output: Path | None,
    docker_compose: bool,
    k8s: bool,
    python: str | None,
    force: bool,
) -> None:
    version = python_version(python)
    project = load_project(config)
    warnings = shareability_warnings(project, compose=docker_compose, k8s=k8s)
    target = output if output is not None else project.directory
    if target.exists() and not target.is_dir():
        raise CliError(f"--output {target} is a file", hint="pass a directory (it is created)")
    wheel, wheel_bytes = wheel_file()
    ctx = context(
        project, variables(project), python=version, output=target, compose=docker_compose,
        wheel=wheel,
    )  # fmt: skip
    files = render_build(ctx, compose=docker_compose, k8s=k8s)
    files[wheel] = wheel_bytes
    blocked = blocked_paths(target, files)
    if blocked:
        raise CliError(
            f"in {display_path(target)}, these paths are taken by something of another kind "
            f"(a directory where a file goes, or the reverse): {', '.join(blocked)}",
            hint="move them away, or write elsewhere with --output DIR",
        )
    # A file with the same content is no conflict, and the wheel is always the running
    # agentflow's (the Dockerfile pins its version).
    changed = changed_paths(target, files)
    existing = [path for path in changed if path != wheel]
    before = set(existing_paths(target, files))
    if existing and not force:
        raise CliError(
            f"{len(existing)} file{'s' * (len(existing) != 1)} in {display_path(target)} would "
            f"be overwritten: {', '.join(map(str, existing))}; nothing was written",
            hint="pass --force to overwrite them (nothing else is touched), or write "
            "elsewhere with --output DIR",
        )
    write_files(target, files)
    shown = {k: shlex.quote(display_path(p)) for k, p in (
        ("output", target), ("directory", project.directory), ("dockerfile", target / "Dockerfile"),
        ("example", target / ENV_EXAMPLE), ("compose", target / "docker-compose.yml"),
        ("k8s", target / "k8s"), ("wheels", target / WHEELS))}  # fmt: skip
    written = [
        (path, "overwritten" if path in changed else "unchanged" if path in before else "")
        for path in files
    ]
    report = list_files([template_dir("build")])[PurePosixPath("_report.txt")]
    text = render_files(
        {report.target: report}, {**ctx, "shown": shown, "written": written, "k8s": k8s}
    )
    console.print(text[report.target].decode().rstrip(), markup=False, soft_wrap=True)
    for warning in warnings:
        err_console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
