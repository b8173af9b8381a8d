"""`agentflow doctor`: run every check (see agentflow_cli/checks), then print the findings
grouped by category, or one JSON document with --json.

Exit codes: 0 no errors (warnings allowed), 1 errors (or warnings with --strict), 2 usage.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow_cli.output import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from rich.console import Console

    from agentflow_cli.checks import Check, Finding
    from agentflow_cli.checks.context import Context

JSON_VERSION = 1
MARKS = {"ok": ("✓", "+"), "warning": ("!", "!"), "error": ("✗", "x"), "skipped": ("-", "-")}
STYLES = {"ok": "green", "warning": "yellow", "error": "bold red", "skipped": "dim"}


@dataclass(frozen=True, slots=True)
class SkippedCheck:
    code: str
    category: str
    title: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "category": self.category,
            "title": self.title,
            "reason": self.reason,
        }


@dataclass(slots=True)
class Report:
    project: Path | None
    config: Path | None
    mode: str
    rows: list[Finding | SkippedCheck] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [row for row in self.rows if not isinstance(row, SkippedCheck)]

    @property
    def skipped(self) -> list[SkippedCheck]:
        return [row for row in self.rows if isinstance(row, SkippedCheck)]

    def count(self, severity: str) -> int:
        return sum(1 for finding in self.findings if finding.severity == severity)

    def exit_code(self, strict: bool) -> int:
        failed = self.count("error") or (strict and self.count("warning"))
        return EXIT_FAILURE if failed else EXIT_OK


def run_doctor(
    *, config: Path | None, production: bool, json_output: bool, strict: bool, offline: bool
) -> int:
    from agentflow.runtime import CONFIG_FILE

    if config is not None and not (config.is_file() or (config / CONFIG_FILE).is_file()):
        raise CliError(
            f"--config {config}: no such file",
            hint=f"pass the path of your project's {CONFIG_FILE} (or its directory)",
            code=EXIT_USAGE,
        )
    report = collect(config, production=production, offline=offline, environ=dict(os.environ))
    code = report.exit_code(strict)
    if json_output:
        sys.stdout.write(json.dumps(to_json(report, code), indent=2) + "\n")
    else:
        render(report, _console())
    return code


def collect(
    config: Path | None, *, production: bool, offline: bool, environ: dict[str, str]
) -> Report:
    from agentflow_cli.checks import Skipped, registry, scrub, scrubbed
    from agentflow_cli.checks.context import build_context

    ctx = build_context(config, production=production, offline=offline, environ=environ)
    secrets = ctx.secrets()
    report = Report(ctx.project_dir, ctx.config_path, ctx.mode)
    for check in registry():
        reason = skip_reason(check, ctx)
        outcome = Skipped(reason) if reason else check.run(ctx)
        if isinstance(outcome, Skipped):
            reason = scrub(outcome.reason, secrets)
            report.rows.append(SkippedCheck(check.code, check.category, check.title, reason))
        elif outcome is not None:
            report.rows.append(scrubbed(check.finding(outcome), secrets))
    return report


def skip_reason(check: Check, ctx: Context) -> str | None:
    """Why `check` cannot run in this context, or None."""
    if check.needs_config and ctx.data is None:
        return "no readable agentflow.json: see AF-CONFIG-001 and AF-CONFIG-002"
    if check.production_only and not ctx.production:
        return "production only: run with --production or MODE=production"
    if check.network and ctx.offline:
        return "--offline: connects to a service"
    if check.needs_settings and ctx.settings is None:
        return "the settings do not load: fix the errors above first"
    return None


def to_json(report: Report, exit_code: int) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "project": str(report.project) if report.project else None,
        "config": str(report.config) if report.config else None,
        "mode": report.mode,
        "findings": [finding.to_json() for finding in report.findings],
        "skipped": [skipped.to_json() for skipped in report.skipped],
        "summary": {
            "errors": report.count("error"),
            "warnings": report.count("warning"),
            "ok": report.count("ok"),
            "skipped": len(report.skipped),
            "exit_code": exit_code,
        },
    }


def _console() -> Console:
    from rich.console import Console

    no_color = bool(os.environ.get("NO_COLOR"))
    return Console(highlight=False, soft_wrap=True, color_system=None if no_color else "auto")


def render(report: Report, console: Console) -> None:
    from rich.text import Text

    unicode = console.encoding.lower().startswith("utf")
    where = str(report.project) if report.project else "no project found"
    console.print(Text.assemble(("agentflow doctor", "bold"), f": {where} ({report.mode})"))
    category = None
    for row in report.rows:
        if row.category != category:
            category = row.category
            console.print(Text("\n" + category, style="bold"))
        state = "skipped" if isinstance(row, SkippedCheck) else row.severity
        mark = MARKS[state][0 if unicode else 1]
        text = row.reason if isinstance(row, SkippedCheck) else row.detail
        line = Text.assemble(
            "  ", (mark, STYLES[state]), " ", (row.code, "dim"), " ", (row.title, "bold"), ": "
        )
        if state == "skipped":
            text = f"skipped ({text})"
        line.append(text, style=_text_style(state))
        console.print(line)
        if not isinstance(row, SkippedCheck) and row.severity != "ok" and row.fix:
            console.print(Text.assemble("      ", ("fix:", "bold"), " " + row.fix))
    console.print()
    console.print(_summary(report), style="bold")


def _text_style(state: str) -> str:
    return "dim" if state in ("ok", "skipped") else ""


def _summary(report: Report) -> str:
    errors, warnings = report.count("error"), report.count("warning")
    parts = [
        f"{errors} error{'s' * (errors != 1)}",
        f"{warnings} warning{'s' * (warnings != 1)}",
        f"{report.count('ok')} ok",
    ]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    return ", ".join(parts)
