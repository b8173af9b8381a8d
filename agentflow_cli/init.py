"""`agentflow init`: create a project from `templates/project/<template>/`.

A template directory holds the project's files (`*.jinja` ones are rendered) and an optional
`template.json`: `{"description": ..., "extends": "<template>", "defaults": {...}}`. `extends`
layers the template over another one (directories starting with `_` are bases, not offered to
users); `defaults` are extra variables for its Jinja files, among them `agentflow_extras`
(the extras of agentflow the project depends on) and `model_hint` (the closing line of the
report).

Every project also gets `wheels/` with the wheel of the agentflow that made it: our
distribution is not on the package index, so the project's README installs agentflow from
there. Everything is rendered in memory first; the directory is only touched once nothing can
fail. An existing directory must be empty unless `--force`, which overwrites the template's
own files and never deletes anything.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import click

from agentflow import __version__
from agentflow_cli import DISTRIBUTION
from agentflow_cli.output import EXIT_USAGE, CliError, console
from agentflow_cli.render import (
    MANIFEST,
    blocked_paths,
    existing_paths,
    list_files,
    render_files,
    write_files,
)
from agentflow_cli.templates import template_dir
from agentflow_cli.wheel import WHEEL_NAME, WHEELS, wheel_file

DEFAULT_TEMPLATE = "react"
DEFAULT_NAME = "my-agent"
# After "Next steps"; a template's `model_hint` default replaces it.
MODEL_HINT = (
    "The agent answers on an offline demo model until you give it a real one: "
    "cp .env.example .env, then set OPENAI_API_KEY in .env. README.md has the rest."
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# Entries that do not make a directory "non-empty": a fresh `git init` is a fine place.
_IGNORED_ENTRIES = frozenset({".git", ".DS_Store"})


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    description: str
    roots: tuple[Path, ...]  # base first; later roots override earlier files
    defaults: dict[str, Any] = field(default_factory=dict)


# -- templates ---------------------------------------------------------------------------


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(
            f"the template manifest {path} is unreadable: {exc}",
            hint="the installed template is broken; reinstall agentflow-runner",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("defaults", {}), dict):
        raise CliError(
            f"the template manifest {path} must be an object with an object 'defaults'",
            hint="the installed template is broken; reinstall agentflow-runner",
        )
    return data


def template_names() -> list[str]:
    """The templates users can choose: the default first, then alphabetical."""
    root = template_dir("project")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    return sorted(names, key=lambda n: n != DEFAULT_TEMPLATE)


def load_template(name: str) -> Template:
    """The template `name` with the chain of templates it extends resolved."""
    names = template_names()
    if name not in names:
        raise CliError(
            f"unknown template {name!r}",
            hint=f"choose one of: {', '.join(names)} (e.g. --template {DEFAULT_TEMPLATE})",
            code=EXIT_USAGE,
        )
    project = template_dir("project")
    chain: list[tuple[Path, dict[str, Any]]] = []
    current: str | None = name
    while current is not None:
        root = project / current
        if not root.is_dir() or any(r == root for r, _ in chain):
            raise CliError(
                f"template {name!r} extends {current!r}, which is missing or circular",
                hint="the installed template is broken; reinstall agentflow-runner",
            )
        manifest = _read_manifest(root)
        chain.append((root, manifest))
        parent = manifest.get("extends")
        current = str(parent) if parent else None
    chain.reverse()
    defaults: dict[str, Any] = {}
    for _, manifest in chain:
        defaults.update(manifest.get("defaults", {}))
    return Template(
        name=name,
        description=str(chain[-1][1].get("description", "")),
        roots=tuple(root for root, _ in chain),
        defaults=defaults,
    )


def agentflow_requirement(version: str = __version__, extras: Sequence[str] = ()) -> str:
    """`agentflow-runner[extras]>=X.Y,<X.(Y+1)`: this minor series, whose API the templates
    use, with the extras a template needs (`langgraph`)."""
    distribution = f"{DISTRIBUTION}[{','.join(extras)}]" if extras else DISTRIBUTION
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return distribution
    major, minor = int(match[1]), int(match[2])
    return f"{distribution}>={major}.{minor},<{major}.{minor + 1}"


# -- names ---------------------------------------------------------------------------------


_NAME_RULE = "letters, digits, '-' and '_' (at most 64), starting with a letter"


def check_name(name: str) -> str:
    """The name itself when it is valid, else a usage error that says what is allowed."""
    if not _NAME.fullmatch(name):
        raise CliError(
            f"invalid project name {name!r}",
            hint=f"use {_NAME_RULE}, e.g. --name {suggested_name(name)}",
            code=EXIT_USAGE,
        )
    return name


def suggested_name(name: str) -> str:
    """A valid name close to `name`, never silently used: `9lives` -> `agent-9lives`,
    `My Project.v2` -> `My-Project-v2`."""
    candidate = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")
    if candidate and not candidate[0].isalpha():
        candidate = f"agent-{candidate}"
    candidate = candidate[:64].rstrip("-_")
    return candidate if _NAME.fullmatch(candidate) else DEFAULT_NAME


def name_from_directory(path: Path, *, interactive: bool) -> str:
    """The target directory's name when it is a valid project name. Otherwise a prompt
    offers a valid one, and without a prompt it is a usage error: the project is never
    silently named something else (`9lives` is not `lives`)."""
    directory = path.resolve().name
    if _NAME.fullmatch(directory):
        return _prompt_name(directory) if interactive else directory
    if interactive:
        return _prompt_name(suggested_name(directory))
    raise CliError(
        f"the directory name {directory!r} is not a valid project name: use {_NAME_RULE}",
        hint=f"name the project with --name, e.g. --name {suggested_name(directory)}",
        code=EXIT_USAGE,
    )


def package_name(name: str) -> str:
    """A Python-safe identifier for the project name: `my-agent` -> `my_agent`."""
    return name.lower().replace("-", "_")


# -- writing -------------------------------------------------------------------------------


def _existing_entries(target: Path) -> list[str]:
    if not target.exists():
        return []
    return sorted(p.name for p in target.iterdir() if p.name not in _IGNORED_ENTRIES)


def _check_target(target: Path, outputs: list[PurePosixPath], force: bool) -> None:
    shown = target.resolve()
    if target.exists() and not target.is_dir():
        raise CliError(
            f"{shown} is a file, not a directory",
            hint="pass the directory to create the project in",
        )
    blocked = blocked_paths(target, outputs)
    if blocked:
        raise CliError(
            f"{shown}: these template paths are taken by something of another kind "
            f"(a directory where a file goes, or the reverse): {', '.join(blocked)}",
            hint="move them away, or choose another directory",
        )
    entries = _existing_entries(target)
    if not entries or force:
        return
    conflicts = [str(p) for p in existing_paths(target, outputs)]
    detail = (
        f"the template would overwrite: {', '.join(conflicts)}"
        if conflicts
        else f"it holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
        f"({', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''})"
    )
    raise CliError(
        f"{shown} is not empty; {detail}",
        hint="choose a new or empty directory, or pass --force to overwrite the template's "
        "files (other files are kept, nothing is deleted)",
    )


@dataclass(frozen=True, slots=True)
class Created:
    template: Template
    files: list[PurePosixPath]  # relative to the project directory
    overwritten: list[PurePosixPath]
    wheel: PurePosixPath  # agentflow's wheel, among the files


def create_project(
    target: Path, *, template: str, name: str, force: bool = False, with_wheel: bool = True
) -> Created:
    """Render `template` into `target`; what was written and what it replaced. Without
    `with_wheel` (a project only served, such as the demo) `wheels/` stays empty."""
    chosen = load_template(template)
    check_name(name)
    wheel, wheel_bytes = wheel_file() if with_wheel else (WHEELS / WHEEL_NAME, None)
    context = {
        **chosen.defaults,
        "name": name,
        "package": package_name(name),
        "template": chosen.name,
        "description": chosen.description,
        "agentflow_version": __version__,
        "agentflow_requirement": agentflow_requirement(
            extras=[str(extra) for extra in chosen.defaults.get("agentflow_extras", [])]
        ),
        "distribution": DISTRIBUTION,
        "wheel_path": str(wheel),
    }
    files = render_files(list_files(chosen.roots), context)
    if wheel_bytes is not None:
        files[wheel] = wheel_bytes
    outputs = list(files)
    _check_target(target, outputs, force)
    overwritten = existing_paths(target, outputs)
    write_files(target, files)
    return Created(template=chosen, files=outputs, overwritten=overwritten, wheel=wheel)


# -- the command ---------------------------------------------------------------------------


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _prompt_name(default: str) -> str:
    def validate(value: str) -> str:
        value = value.strip()
        try:
            return check_name(value)
        except CliError as exc:
            raise click.BadParameter(f"{exc.message}; {exc.hint}") from None

    result: str = click.prompt("Project name", default=default, value_proc=validate)
    return result


def _prompt_template(names: list[str]) -> str:
    console.print("Templates:", soft_wrap=True)
    for name in names:
        description = load_template(name).description
        console.print(f"  {name:<12} {description}", markup=False, soft_wrap=True)
    result: str = click.prompt(
        "Template", default=DEFAULT_TEMPLATE, type=click.Choice(names), show_choices=False
    )
    return result


def run_init(path: Path, template: str | None, name: str | None, yes: bool, force: bool) -> None:
    interactive = not yes and _stdin_is_tty()
    if template is not None:
        load_template(template)  # an unknown template fails before any prompt
    if name is not None:
        check_name(name)
    if name is None:
        name = name_from_directory(path, interactive=interactive)
    if template is None:
        template = _prompt_template(template_names()) if interactive else DEFAULT_TEMPLATE
    created = create_project(path, template=template, name=name, force=force)
    _report(path, name, created)


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is inside it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(resolved)


def _report(path: Path, name: str, created: Created) -> None:
    where = display_path(path)
    production = bool(created.template.defaults.get("production"))
    console.print(
        f"Created {name!r} from the {created.template.name} template in {where} "
        f"({len(created.files)} files).",
        markup=False,
        soft_wrap=True,
    )
    if created.overwritten:
        listed = ", ".join(str(p) for p in created.overwritten)
        console.print(f"Overwrote (--force): {listed}", markup=False, soft_wrap=True)
    install = [
        ("python -m venv .venv && . .venv/bin/activate", "the project's own environment"),
        (f"pip install {created.wheel}", f"agentflow {__version__}: not on the package index yet"),
        ('pip install -e ".[test]"', "this project, editable, and pytest"),
        ("pytest", "the project's tests; offline, no API key needed"),
    ]
    if production:
        steps = [
            *install,
            ("cp .env.example .env", "fill in the secrets, then export them:"),
            ("set -a; . ./.env; set +a", "production settings come from the environment"),
            ("agentflow doctor --production", "what would break"),
            ("agentflow api --workers 2", "serves http://127.0.0.1:8000"),
        ]
    else:
        steps = [
            ("agentflow play", "right away: the playground at http://127.0.0.1:8000/playground"),
            *install,
            ("agentflow doctor", "what would break"),
            ("agentflow api", "serves http://127.0.0.1:8000"),
        ]
    if where != ".":
        steps.insert(0, (f"cd {shlex.quote(where)}", ""))
    console.print("\nNext steps:", soft_wrap=True)
    width = max(len(command) for command, note in steps if note)
    for command, note in steps:
        line = f"  {command:<{width}}  # {note}" if note else f"  {command}"
        console.print(line, markup=False, soft_wrap=True)
    if not production:
        hint = created.template.defaults.get("model_hint", MODEL_HINT)
        console.print(f"\n{hint}", markup=False, soft_wrap=True)
