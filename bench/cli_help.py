"""CLI start-up: `agentflow --help` and `agentflow doctor --help` next to a minimal Typer app
with five empty commands, timed side by side with hyperfine in the same run.

    python bench/cli_help.py [--runs 30]

Target (issue 6): each agentflow command at most 1.25x the minimal app's wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MINIMAL_APP = '''
import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def init() -> None:
    """Create a project."""


@app.command()
def doctor() -> None:
    """Check a project."""


@app.command()
def play() -> None:
    """Run locally."""


@app.command()
def api() -> None:
    """Serve."""


@app.command()
def build() -> None:
    """Write deployment files."""


if __name__ == "__main__":
    app()
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/cli_help.json")
    args = parser.parse_args()
    if shutil.which("hyperfine") is None:
        sys.exit("hyperfine is not installed: apt-get install -y hyperfine")
    with tempfile.TemporaryDirectory() as tmp:
        minimal = Path(tmp) / "minimal_app.py"
        minimal.write_text(textwrap.dedent(MINIMAL_APP))
        export = Path(tmp) / "hyperfine.json"
        commands = {
            "minimal typer --help": f"{PYTHON} {minimal} --help",
            "agentflow --help": f"{PYTHON} -m agentflow_cli --help",
            "agentflow doctor --help": f"{PYTHON} -m agentflow_cli doctor --help",
        }
        subprocess.run(
            ["hyperfine", "--warmup", "3", "--runs", str(args.runs), "-N",
             "--export-json", str(export), *[arg for name, cmd in commands.items()
                                              for arg in ("-n", name, cmd)]],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        results = json.loads(export.read_text())["results"]
    by_name = {r["command"]: r for r in results}
    base = by_name["minimal typer --help"]["mean"]
    rows: list[dict[str, Any]] = []
    for name in commands:
        mean = by_name[name]["mean"]
        rows.append(
            {
                "command": name,
                "mean_ms": round(mean * 1000, 1),
                "stddev_ms": round(by_name[name]["stddev"] * 1000, 1),
                "x_minimal": round(mean / base, 2),
            }
        )
    print(f"{'command':<26} {'mean ms':>9} {'± ms':>7} {'x minimal':>10}")
    for row in rows:
        print(
            f"{row['command']:<26} {row['mean_ms']:>9.1f} {row['stddev_ms']:>7.1f} "
            f"{row['x_minimal']:>10.2f}"
        )
    targets = [
        {"target": f"{r['command']} <= 1.25x minimal", "value": r["x_minimal"],
         "passed": r["x_minimal"] <= 1.25}
        for r in rows[1:]
    ]  # fmt: skip
    for t in targets:
        print(f"{'PASS' if t['passed'] else 'FAIL'}  {t['target']} (measured {t['value']})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "targets": targets}, indent=2) + "\n")


if __name__ == "__main__":
    main()
