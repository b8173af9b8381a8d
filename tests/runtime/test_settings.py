"""Settings layers and their errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentflow.runtime import ConfigError, Secret, load_settings


def project(tmp_path: Path, config: Any, dotenv: str | None = None) -> Path:
    path = tmp_path / "agentflow.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(project(tmp_path, {"graph": "graph.react:app"}), environ={})
    assert settings.graph == "graph.react:app"
    assert settings.mode == "development" and not settings.production
    assert settings.checkpointer.kind == "sqlite"
    assert settings.checkpointer.path == tmp_path / ".agentflow" / "state.db"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.docs_path == "/docs" and settings.redocs_path == "/redoc"
    assert settings.origins == ("*",)
    assert settings.auth is None
    assert settings.log_format == "pretty"


def test_layers_file_then_dotenv_then_env_then_flags(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        {"graph": "g:app", "env": ".env", "origins": ["https://file.example"]},
        dotenv="ORIGINS=https://dotenv.example\nPORT=7000\nLOG_LEVEL=debug\n",
    )
    from_dotenv = load_settings(path, environ={})
    assert from_dotenv.origins == ("https://dotenv.example",)
    assert from_dotenv.port == 7000 and from_dotenv.log_level == "DEBUG"
    from_env = load_settings(path, environ={"ORIGINS": "https://env.example", "PORT": "7100"})
    assert from_env.origins == ("https://env.example",) and from_env.port == 7100
    from_flags = load_settings(path, environ={"PORT": "7100"}, port=7200, log_level="warning")
    assert from_flags.port == 7200 and from_flags.log_level == "WARNING"


def test_production_defaults(tmp_path: Path) -> None:
    settings = load_settings(project(tmp_path, {"graph": "g:app"}), environ={"MODE": "production"})
    assert settings.production and settings.log_format == "json"
    assert settings.docs_path is None and settings.redocs_path is None
    assert settings.openapi_path is None and settings.origins == ()
    opened = load_settings(
        project(tmp_path, {"graph": "g:app"}),
        environ={"MODE": "production", "DOCS_PATH": "/internal/docs"},
    )
    assert opened.docs_path == "/internal/docs" and opened.openapi_path == "/openapi.json"


def test_checkpointer_object_expands_variables(tmp_path: Path) -> None:
    config = {
        "graph": "g:app",
        "checkpointer": {"kind": "postgres", "dsn": "${PG}", "redis": "${REDIS_URL}",
                         "pool": {"min": 1, "max": 4}, "schema": "agents"},
    }  # fmt: skip
    env = {"PG": "postgresql://u:pw@127.0.0.1/db", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    settings = load_settings(project(tmp_path, config), environ=env)
    cp = settings.checkpointer
    assert cp.kind == "postgres" and cp.shareable
    assert cp.dsn == Secret("postgresql://u:pw@127.0.0.1/db")
    assert "pw" not in repr(settings)
    assert (cp.pool_min, cp.pool_max, cp.schema) == (1, 4, "agents")


@pytest.mark.parametrize(
    ("config", "environ", "match"),
    [
        ("{not json", {}, r"invalid JSON at line 1 column 2"),
        ("[]", {}, "must be a JSON object"),
        ({}, {}, "missing required key 'graph'"),
        ({"graph": 5}, {}, "graph: must be a string"),
        ({"graph": "no_colon"}, {}, "module.path:attribute"),
        ({"graph": "g:app", "checkpointer": "mongo"}, {}, "unknown checkpointer 'mongo'"),
        ({"graph": "g:app", "checkpointer": {"kind": "postgres", "dsn": "${NOPE}"}}, {},
         r"checkpointer.dsn: refers to \$\{NOPE\}, which is not set"),
        ({"graph": "g:app", "checkpointer": {"kind": "sqlite", "bogus": 1}}, {},
         "checkpointer.bogus: unknown key 'bogus'"),
        ({"graph": "g:app", "checkpointer": "postgres"}, {}, "needs a database URL"),
        ({"graph": "g:app", "env": "missing.env"}, {"MODE": "production"},
         "dotenv file 'missing.env' does not exist"),
        ({"graph": "g:app", "required_env": "X"}, {}, "required_env: must be a list of strings"),
        ({"graph": "g:app", "limits": {"run_timeout": -1}}, {}, "limits.run_timeout"),
        ({"graph": "g:app"}, {"MODE": "staging"}, "MODE must be 'development' or 'production'"),
        ({"graph": "g:app"}, {"PORT": "eighty"}, "PORT must be an integer"),
        ({"graph": "g:app"}, {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
        ({"graph": "g:app"}, {"ORIGINS": "app.example.com"}, "is not an origin"),
        ({"graph": "g:app", "auth": "jwt"}, {}, "JWT_SECRET_KEY"),
        ({"graph": "g:app", "auth": 5}, {}, "auth: must be null"),
    ],
)  # fmt: skip
def test_errors_name_the_place_and_the_fix(
    tmp_path: Path, config: Any, environ: dict[str, str], match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_settings(project(tmp_path, config), environ=environ)
    assert info.value.where


def test_missing_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="agentflow init") as info:
        load_settings(tmp_path / "nope.json", environ={})
    assert "no configuration file" in str(info.value)


def test_a_missing_dotenv_file_is_a_warning_in_development(tmp_path: Path) -> None:
    path = project(tmp_path, {"graph": "g:app", "env": ".env"})
    settings = load_settings(path, environ={"FROM_ENV": "1"})
    assert settings.env_file == tmp_path / ".env"
    [warning] = settings.warnings
    assert "'.env' does not exist yet" in warning and "copy .env.example to .env" in warning
    (tmp_path / ".env").write_text("X=1\n")
    assert load_settings(path, environ={}).warnings == ()


def test_the_nearest_config_is_found_from_a_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project(tmp_path, {"graph": "g:app"})
    (tmp_path / "graph" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "graph" / "deep")
    assert load_settings(environ={}).config_path == path.resolve()


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    path = project(tmp_path, {"graph": "g:app", "grpah": "x"})
    with pytest.raises(ConfigError, match=r"grpah: unknown key 'grpah' \(did you mean 'graph'\?\)"):
        load_settings(path, environ={})
    assert load_settings(path, environ={}, unknown_keys="ignore").graph == "g:app"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AGENTFLOW_TRACING", "maybe"), ("AGENTFLOW_TRACE_NODES", "2"),
     ("AGENTFLOW_MODEL_TIMEOUT", "soon"), ("AGENTFLOW_MODEL_RPM", "0")],
)  # fmt: skip
def test_settings_the_server_does_not_hold_are_checked_at_load(
    tmp_path: Path, variable: str, value: str
) -> None:
    """Model and tracing variables are read later (by a model, by the first span): a wrong
    value still stops the start, naming the variable, instead of failing a request."""
    path = project(tmp_path, {"graph": "g:app"})
    with pytest.raises(ConfigError, match=rf"{variable} must be .*got '{value}'"):
        load_settings(path, environ={variable: value})


def test_production_refuses_short_jwt_secrets(tmp_path: Path) -> None:
    path = project(tmp_path, {"graph": "g:app", "auth": "jwt"})
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings(path, environ={"MODE": "production", "JWT_SECRET_KEY": "short"})
    ok = load_settings(path, environ={"MODE": "production", "JWT_SECRET_KEY": "k" * 32})
    assert ok.auth is not None and ok.auth.secret == Secret("k" * 32)
    assert "kkkk" not in repr(ok)


def test_max_active_runs_from_limits_and_the_environment(tmp_path: Path) -> None:
    path = project(tmp_path, {"graph": "g:app", "limits": {"max_active_runs": 300}})
    assert load_settings(path, environ={}).max_active_runs == 300
    assert load_settings(path, environ={"MAX_ACTIVE_RUNS": "40"}).max_active_runs == 40
    default = load_settings(project(tmp_path, {"graph": "g:app"}), environ={})
    assert default.max_active_runs == 2000
    with pytest.raises(ConfigError, match="MAX_ACTIVE_RUNS"):
        load_settings(path, environ={"MAX_ACTIVE_RUNS": "0"})
