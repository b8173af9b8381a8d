"""What derives from the one declaration of settings (`agentflow.utils.config.SETTINGS`): the
settings reference in README.md and the JSON Schema of agentflow.json that `agentflow init`
puts next to every project's agentflow.json (templates/project/_base/agentflow.schema.json).

    .venv/bin/python -m agentflow_cli.reference   # rewrite both (tests fail while either is stale)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agentflow.utils import SETTINGS, ByMode, Kind, Setting, children, setting

CHECKOUT = Path(__file__).resolve().parent.parent
README = CHECKOUT / "README.md"
# Every project gets it next to its agentflow.json, which says "$schema": "./agentflow.schema.json".
SCHEMA = CHECKOUT / "templates" / "project" / "_base" / "agentflow.schema.json"
MARKERS = ("<!-- settings-reference:start -->", "<!-- settings-reference:end -->")
OPTIONS = ("host", "port", "workers", "log_level")  # `agentflow api`'s (play: host, port)
GROUPS = {  # title: the settings' variables start with one of these (the rest: the server)
    "Models (`OpenAIChat`, read when one is made)": ("OPENAI_", "AGENTFLOW_MODEL_"),
    "Tracing": ("AGENTFLOW_TRAC",),
}


def _description(s: Setting) -> str:
    if s.env is None:
        return s.doc
    return f"{s.doc} ({s.env} {'when absent' if s.file_first else 'overrides it'})"


def _kind(kind: Kind, obj: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON Schema of a kind (`obj`: the schema of the key's own sub-keys)."""
    if kind.any_of:
        return {"anyOf": [_kind(k, obj) for k in kind.any_of]}
    if kind.type == "object":
        return obj or {"type": "object"}
    if kind.type in ("null", "false"):
        return {"const": None if kind.type == "null" else False}
    found: dict[str, Any] = {"type": kind.type}
    if kind.type in ("integer", "number"):
        found["exclusiveMinimum" if kind.above else "minimum"] = kind.minimum
    found.update({"enum": list(kind.choices)} if kind.choices else {})
    found.update({"pattern": f"^(?:{kind.pattern})$"} if kind.pattern else {})
    return found | ({"items": _kind(kind.item, None)} if kind.item else {})


def _schema(path: str = "") -> dict[str, Any]:
    keys = {key: _schema(f"{path}.{key}" if path else key) for key in children(path)}
    obj = {"type": "object", "properties": keys, "additionalProperties": False}
    if not path:
        return obj
    s = setting(path)
    found = {"description": _description(s), **_kind(s.kind, obj if keys else None)}
    if s.default is not None and not isinstance(s.default, ByMode):
        found["default"] = list(s.default) if isinstance(s.default, tuple) else s.default
    return found


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of agentflow.json."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "agentflow.json",
        "description": "What `agentflow play` and `agentflow api` serve, and how.",
        **_schema(),
        "anyOf": [{"required": ["graph"]}, {"required": ["graphs"]}],
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

    def group(s: Setting) -> str:
        found = (t for t, starts in GROUPS.items() if (s.variable or "").startswith(starts))
        return next(found, "agentflow.json and the server")

    for title in ("agentflow.json and the server", *GROUPS):
        lines += ["", f"**{title}**", ""]
        lines += ["| agentflow.json | environment / flag | type | default | what it does |"]
        lines += ["|---|---|---|---|---|"]
        for s in (s for s in SETTINGS if group(s) == title):
            source = [f"`{s.variable}`" + (" if absent" if s.env and s.file_first else "")]
            source = source if s.variable else []
            source += [f"`--{s.flag.replace('_', '-')}`"] if s.flag in OPTIONS else []
            key = f"`{s.key}`" if s.key else ""
            row = [key, ", ".join(source), s.kind.text, _value(s.default), s.doc]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
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
    for path, text in wanted.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(CHECKOUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
