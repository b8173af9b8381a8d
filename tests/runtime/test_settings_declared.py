"""The one declaration of every setting: unknown keys at any depth and wrong types are errors
naming the file and the key path (with a did-you-mean), and what derives from the declaration
(the JSON Schema shipped to projects, the README reference) is current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from agentflow.models import ModelConfigError, OpenAIChat
from agentflow.runtime import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "templates" / "project" / "_base" / "agentflow.schema.json"


def project(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "agentflow.json"
    path.write_text(json.dumps({"graph": "g:app", **config}))
    return path


@pytest.mark.parametrize(
    ("config", "key", "suggestion"),
    [
        ({"limits": {"run_timout": 5}}, "limits.run_timout", "run_timeout"),
        ({"auth": {"audiance": "a"}}, "auth.audiance", "audience"),
        ({"checkpointer": {"kind": "postgres", "dsn": "postgresql://h/db", "pool": {"mx": 4}}},
         "checkpointer.pool.mx", "max"),
        ({"rate_limits": {"per_usr": "6/minute"}}, "rate_limits.per_usr", "per_user"),
        ({"grpah": "g:app"}, "grpah", "graph"),
        ({"run_timeout": 5}, "run_timeout", "limits.run_timeout"),
    ],
)  # fmt: skip
def test_unknown_keys_at_any_depth_are_errors_with_a_did_you_mean(
    tmp_path: Path, config: dict[str, Any], key: str, suggestion: str
) -> None:
    path = project(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={"JWT_SECRET_KEY": "k" * 32})
    assert info.value.where == f"{path}: {key}"
    assert f"did you mean {suggestion!r}?" in info.value.problem
    assert f"agentflow.json: {key}: unknown key" in str(info.value)


def test_an_unknown_key_is_listed_with_the_known_ones_when_nothing_is_close(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(project(tmp_path, {"limits": {"zzz": 1}}), environ={})
    assert info.value.problem == "unknown key 'zzz'"
    assert info.value.fix is not None and "max_active_runs" in info.value.fix


@pytest.mark.parametrize(
    ("config", "key", "words"),
    [
        ({"limits": {"run_timeout": "5"}}, "limits.run_timeout", "must be a number"),
        ({"limits": {"recursion_limit": 2.5}}, "limits.recursion_limit", "must be an integer"),
        ({"limits": 5}, "limits", "must be an object"),
        ({"checkpointer": {"kind": "postgres", "dsn": "postgresql://h/db", "pool": {"max": "9"}}},
         "checkpointer.pool.max", "must be an integer"),
        ({"checkpointer": {"pgbouncer": "yes"}}, "checkpointer.pgbouncer", "must be true or false"),
        ({"auth": {"leeway": "5s"}}, "auth.leeway", "must be a number"),
        ({"auth": {"audience": 7}}, "auth.audience", "must be a string"),
        ({"required_env": ["A", 1]}, "required_env", "must be a list of strings"),
        ({"env": 1}, "env", "must be a string"),
    ],
)  # fmt: skip
def test_wrong_types_name_the_key_path(
    tmp_path: Path, config: dict[str, Any], key: str, words: str
) -> None:
    path = project(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={"JWT_SECRET_KEY": "k" * 32})
    assert info.value.where == f"{path}: {key}"
    assert info.value.problem.startswith(words)


def test_values_nested_deeper_still_load(tmp_path: Path) -> None:
    config = {
        "$schema": "./agentflow.schema.json",
        "auth": {"type": "jwt", "audience": "api://agents", "issuer": "https://id.example"},
        "limits": {"run_timeout": 5, "max_body_bytes": 1e6},
        "checkpointer": {"kind": "postgres", "dsn": "postgresql://h/db", "pool": {"max": 4}},
    }
    settings = load_settings(project(tmp_path, config), environ={"JWT_SECRET_KEY": "k" * 32})
    assert settings.auth is not None and settings.auth.audience == "api://agents"
    assert (settings.run_timeout, settings.max_body_bytes) == (5.0, 1_000_000)
    assert (settings.checkpointer.pool_min, settings.checkpointer.pool_max) == (2, 4)


def test_a_bad_model_setting_in_the_environment_is_a_model_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in [
        ("AGENTFLOW_MODEL_MAX_CONCURRENCY", "0"),
        ("AGENTFLOW_MODEL_RPM", "ten"),
        ("AGENTFLOW_MODEL_TIMEOUT", "-3"),
        ("AGENTFLOW_MODEL_MAX_RETRIES", "-1"),
    ]:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(ModelConfigError) as info:
                OpenAIChat("gpt-test-2024-01-01", base_url="http://127.0.0.1:9/v1")
            assert f"{name} must be " in str(info.value)
            assert repr(value) in str(info.value)


def test_declared_settings_read_an_explicit_environment() -> None:
    from agentflow.utils.config import read

    assert read("AGENTFLOW_TRACING", {}) is None
    assert read("AGENTFLOW_TRACING", {"AGENTFLOW_TRACING": "off"}) is False
    assert read("AGENTFLOW_TRACE_NODES", {"AGENTFLOW_TRACE_NODES": " Yes "}) is True
    assert read("AGENTFLOW_TRACE_NODES", {}) is False
    assert read("AGENTFLOW_MODEL_TIMEOUT", {"AGENTFLOW_MODEL_TIMEOUT": "2.5"}) == 2.5
    with pytest.raises(ConfigError) as info:
        read("AGENTFLOW_TRACING", {"AGENTFLOW_TRACING": "maybe"})
    assert info.value.where == "environment"
    assert info.value.problem.startswith("AGENTFLOW_TRACING must be ")


# -- what derives from the declaration --------------------------------------------------------


def test_the_shipped_schema_is_what_the_declaration_generates() -> None:
    from agentflow_cli.reference import json_schema

    assert json.loads(SCHEMA.read_text()) == json_schema(), (
        "stale: run `.venv/bin/python -m agentflow_cli.reference`"
    )
    jsonschema_rs.meta.validate(json_schema())


def test_the_readme_reference_is_current() -> None:
    from agentflow_cli.reference import MARKERS, settings_reference

    start, end = MARKERS
    readme = (ROOT / "README.md").read_text()
    block = readme.split(start, 1)[1].split(end, 1)[0]
    assert block == "\n" + settings_reference(), (
        "stale: run `.venv/bin/python -m agentflow_cli.reference`"
    )


@pytest.mark.parametrize("template", ["react", "minimal", "production"])
def test_the_template_configs_validate_against_the_schema(template: str) -> None:
    from agentflow_cli.render import render_text

    source = ROOT / "templates" / "project" / template / "agentflow.json.jinja"
    config = json.loads(render_text(source.read_text(), {"name": "an-agent"}, origin="t"))
    assert config["$schema"] == "./agentflow.schema.json"
    validator = jsonschema_rs.Draft202012Validator(json.loads(SCHEMA.read_text()))
    assert [error.message for error in validator.iter_errors(config)] == []


@pytest.mark.parametrize(
    "config",
    [
        {"limits": {"run_timout": 5}},
        {"auth": {"audiance": "a"}},
        {"checkpointer": {"pool": {"mx": 1}}},
        {"checkpointer": "mongo"},
        {"limits": {"run_timeout": 0}},
        {"rate_limits": {"per_user": "5 per minute"}},
        {"client_roles": ["asistant"]},
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(tmp_path: Path, config: dict[str, Any]) -> None:
    validator = jsonschema_rs.Draft202012Validator(json.loads(SCHEMA.read_text()))
    assert not validator.is_valid({"graph": "g:app", **config})
    with pytest.raises(ConfigError):
        load_settings(project(tmp_path, config), environ={})


def test_an_empty_auth_object_is_jwt_auth_not_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a shared secret"):
        load_settings(project(tmp_path, {"auth": {}}), environ={})
    settings = load_settings(project(tmp_path, {"auth": {}}), environ={"JWT_SECRET_KEY": "k" * 32})
    assert settings.auth is not None and settings.auth.kind == "jwt"
    assert load_settings(project(tmp_path, {"auth": False}), environ={}).auth is None
