"""Where the bundled templates live: inside the wheel, or in a source checkout."""

from __future__ import annotations

from pathlib import Path

from agentflow_cli.output import CliError

_PACKAGED = Path(__file__).parent / "templates"
_CHECKOUT = Path(__file__).parent.parent / "templates"


def template_dir(name: str) -> Path:
    """`templates/<name>` from the installed package, else from the source checkout."""
    for root in (_PACKAGED, _CHECKOUT):
        candidate = root / name
        if candidate.is_dir():
            return candidate
    raise CliError(
        f"template {name!r} is missing from this installation",
        hint="reinstall agentflow-runner; templates ship inside the package",
    )
