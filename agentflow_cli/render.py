"""Render a project template into memory: files ending in `.jinja` go through a sandboxed
Jinja environment (suffix dropped), every other file is copied byte for byte.

Templates can be layered: later roots override files of earlier ones with the same output
path. Rendering never touches the disk; the commands (`init`, `build`) decide what may be
written, using the conflict helpers and `write_files` at the end of this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from agentflow_cli.output import CliError

JINJA_SUFFIX = ".jinja"
MANIFEST = "template.json"
_SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_SKIPPED_FILES = frozenset({MANIFEST, ".DS_Store"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")

_environment = SandboxedEnvironment(
    undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
)


@dataclass(frozen=True, slots=True)
class TemplateFile:
    """One file of a template: where it comes from and where it goes in the project."""

    source: Path
    target: PurePosixPath
    rendered: bool


def _skipped(relative: PurePosixPath) -> bool:
    if any(part in _SKIPPED_DIRS for part in relative.parts[:-1]):
        return True
    return relative.name in _SKIPPED_FILES or relative.name.endswith(_SKIPPED_SUFFIXES)


def list_files(roots: Sequence[Path]) -> dict[PurePosixPath, TemplateFile]:
    """The files the layered template roots produce, keyed by output path (sorted)."""
    files: dict[PurePosixPath, TemplateFile] = {}
    for root in roots:
        for source in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = PurePosixPath(source.relative_to(root).as_posix())
            if _skipped(relative):
                continue
            rendered = relative.name.endswith(JINJA_SUFFIX)
            target = relative.with_name(relative.name.removesuffix(JINJA_SUFFIX))
            files[target] = TemplateFile(source=source, target=target, rendered=rendered)
    return dict(sorted(files.items()))


def render_text(text: str, context: Mapping[str, Any], *, origin: str) -> str:
    """Render one template string; a broken template is a CliError naming the file."""
    try:
        return _environment.from_string(text).render(context)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None) or _template_line(exc)
        where = f"{origin}:{line}" if line else origin
        raise CliError(
            f"the template file {where} cannot be rendered: {exc.message or exc}",
            hint="the installed template is broken; reinstall agentflow-runner or report it",
        ) from exc


def _template_line(exc: BaseException) -> int | None:
    """The template line a runtime error happened on (Jinja maps its frames back to it)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_files(
    files: Mapping[PurePosixPath, TemplateFile], context: Mapping[str, Any]
) -> dict[PurePosixPath, bytes]:
    """Every file's final content, rendered or copied."""
    output: dict[PurePosixPath, bytes] = {}
    for target, item in files.items():
        if item.rendered:
            text = item.source.read_text(encoding="utf-8")
            output[target] = render_text(text, context, origin=str(item.source)).encode("utf-8")
        else:
            output[target] = item.source.read_bytes()
    return output


# -- writing ---------------------------------------------------------------------------------


def _place(target: Path, relative: PurePosixPath) -> Path:
    """`target / relative` with `..` resolved lexically: `out/../x` is `x` even before `out`
    exists."""
    return Path(os.path.normpath(target / relative))


def blocked_paths(target: Path, outputs: Iterable[PurePosixPath]) -> list[str]:
    """Outputs whose place under `target` is taken by something of another kind: a
    directory where a file goes, or a file where one of its directories goes."""
    return [
        str(p)
        for p in outputs
        if _place(target, p).is_dir()
        or any(_place(target, q).is_file() for q in p.parents if str(q) != ".")
    ]


def existing_paths(target: Path, outputs: Iterable[PurePosixPath]) -> list[PurePosixPath]:
    """Outputs that already exist under `target` (a dangling symlink counts)."""
    return [p for p in outputs if _place(target, p).exists() or _place(target, p).is_symlink()]


def changed_paths(target: Path, files: Mapping[PurePosixPath, bytes]) -> list[PurePosixPath]:
    """Outputs that already exist under `target` with other content than they would get."""
    changed = []
    for path in existing_paths(target, files):
        place = _place(target, path)
        if place.is_symlink() or not place.is_file() or place.read_bytes() != files[path]:
            changed.append(path)
    return changed


def write_files(target: Path, files: Mapping[PurePosixPath, bytes]) -> None:
    """Write every file under `target`, creating directories; a symlink in the way is
    replaced, never written through to somewhere else."""
    for relative, content in files.items():
        destination = _place(target, relative)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.is_symlink():
            destination.unlink()
        destination.write_bytes(content)
