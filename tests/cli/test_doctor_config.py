"""`agentflow doctor` on unknown keys at any depth: an error finding (AF-CONFIG-003) naming
every key's path with a did-you-mean, and `api` refusing the same project."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.runtime import Settings
from agentflow_cli.main import app
from tests.cli.test_doctor import CLEAN_ENV, doctor, make_project, runner


def test_unknown_nested_keys_are_an_error_finding_with_their_paths(tmp_path: Path) -> None:
    project = make_project(tmp_path, {
        "graph": "graph.react:app",
        "limits": {"run_timout": 5},
        "auth": {"audiance": "a"},
        "checkpointer": {"kind": "sqlite", "pool": {"mx": 4}},
        "rate_limits": {"per_usr": "5/minute"},
    })  # fmt: skip
    run = doctor(project, "--json", env={"JWT_SECRET_KEY": "k" * 32})
    finding = run.finding("AF-CONFIG-003")
    assert finding["severity"] == "error" and run.exit_code == 1
    for key, close in [
        ("limits.run_timout", "run_timeout"),
        ("auth.audiance", "audience"),
        ("checkpointer.pool.mx", "max"),
        ("rate_limits.per_usr", "per_user"),
    ]:
        assert f"{key!r} (did you mean {close!r}?)" in finding["detail"]
        assert f"rename {key!r} to {close!r}" in finding["fix"]
    assert "AF-CONFIG-004" in run.skipped() or run.finding("AF-CONFIG-004")["severity"] == "ok"


def test_a_clean_nested_config_has_no_unknown_keys(tmp_path: Path) -> None:
    project = make_project(tmp_path, {
        "$schema": "./agentflow.schema.json", "graph": "graph.react:app",
        "limits": {"run_timeout": 5}, "rate_limits": {"per_user": "5/minute"},
    })  # fmt: skip
    assert doctor(project, "--json").finding("AF-CONFIG-003")["severity"] == "ok"


def test_api_refuses_an_unknown_nested_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Settings] = []
    monkeypatch.setattr("agentflow.runtime.serve", lambda settings, **_: served.append(settings))
    project = make_project(tmp_path, {"graph": "graph.react:app", "limits": {"run_timout": 5}})
    result = runner.invoke(app, ["api", "--config", str(project)], env=CLEAN_ENV)
    output = " ".join(result.output.split())
    assert result.exit_code == 3 and served == []
    assert "unknown key 'run_timout' (did you mean 'run_timeout'?)" in output
    assert "agentflow.json: limits.run_timout" in output
