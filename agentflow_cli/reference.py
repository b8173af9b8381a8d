"""What derives from the one declaration of settings (`agentflow.utils.config.SETTINGS`): the
settings reference in README.md and the JSON Schema of agentflow.json that `agentflow init`
puts next to every project's agentflow.json (templates/project/_base/agentflow.schema.json).

    .venv/bin/python -m agentflow_cli.reference           # rewrite both
    .venv/bin/python -m agentflow_cli.reference --check   # exit 1 when either is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agentflow.utils.config import SETTINGS, TREE, ByMode, Node, Setting

CHECKOUT = Path(__file__).resolve().parent.parent
README = CHECKOUT / "README.md"
SCHEMA_FILE = (
    "agentflow.schema.json"  # next to agentflow.json: "$schema": "./agentflow.schema.json"
)
SCHEMA = CHECKOUT / "templates" / "project" / "_base" / SCHEMA_FILE
MARKERS = ("<!-- settings-reference:start -->", "<!-- settings-reference:end -->")
OPTIONS = ("host", "port", "workers", "log_level")  # `agentflow api`'s (play: host, port)
GROUPS = {
    "server": "agentflow.json and the server",
    "model": "Models (`OpenAIChat`, read when one is made)",
    "tracing": "Tracing",
}


def _description(s: Setting) -> str:
    if s.env is None or s.key is None:
        return s.doc
    return f"{s.doc} ({s.env} {'when absent' if s.file_first else 'overrides it'})"


def _schema(node: Node) -> dict[str, Any]:
    children = {key: _schema(child) for key, child in node.children.items()}
    obj = {"type": "object", "properties": children, "additionalProperties": False}
    s = node.setting
    if s is None:
        return obj
    found = {"description": _description(s), **s.kind.schema(obj if children else None)}
    if s.default is not None and not isinstance(s.default, ByMode):
        found["default"] = list(s.default) if isinstance(s.default, tuple) else s.default
    return found


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of agentflow.json."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "agentflow.json",
        "description": "What `agentflow play` and `agentflow api` serve, and how.",
        **_schema(TREE),
        "required": ["graph"],
    }


def _value(value: Any) -> str:
    if isinstance(value, ByMode):
        return f"{_value(value.development)} (production: {_value(value.production)})"
    if value is None or value == "":
        return "—" if value is None else "off"
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def settings_reference() -> str:
    """The README's settings tables (between `MARKERS`)."""
    lines = [
        "Every setting, generated from `runtime/agentflow/utils/config.py` by "
        "`.venv/bin/python -m agentflow_cli.reference`. Layers, lowest first: default, "
        "agentflow.json, the dotenv file, the environment, the CLI flag; where the variable "
        'is marked "if absent" the key wins (it usually names it: `"${DATABASE_URL}"`), and '
        "`${VAR}` in `checkpointer` and `auth` values is read from the environment. An unknown "
        "key at any depth is an error.",
    ]
    for group, title in GROUPS.items():
        lines += ["", f"**{title}**", ""]
        lines += ["| agentflow.json | environment / flag | type | default | what it does |"]
        lines += ["|---|---|---|---|---|"]
        for s in (s for s in SETTINGS if s.group == group):
            source = [f"`{s.env}`" + (" if absent" if s.file_first else "")] if s.env else []
            source += [f"`--{s.flag.replace('_', '-')}`"] if s.flag in OPTIONS else []
            key = f"`{s.key}`" if s.key else ""
            row = [key, ", ".join(source), s.kind.text, _value(s.default), s.doc]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    start, end = MARKERS
    readme = README.read_text(encoding="utf-8")
    if start not in readme or end not in readme:
        print(f"{README}: the markers {start} ... {end} are missing", file=sys.stderr)
        return 1
    before, rest = readme.split(start, 1)
    wanted = {
        README: f"{before}{start}\n{settings_reference()}{end}{rest.split(end, 1)[1]}",
        SCHEMA: json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n",
    }
    stale = [
        path for path, text in wanted.items() if not path.is_file() or path.read_text() != text
    ]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run `python -m agentflow_cli.reference`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(CHECKOUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
