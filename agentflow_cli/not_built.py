"""Placeholder for commands whose issue has not landed yet."""

from __future__ import annotations

from agentflow_cli.output import CliError


def not_available(command: str) -> CliError:
    return CliError(
        f"`agentflow {command}` is not available yet in this version",
        hint="see CHANGELOG.md for what this release provides",
    )
