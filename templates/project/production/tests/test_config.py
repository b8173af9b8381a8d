"""The production settings, checked offline: no Postgres or Redis is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest
from agentflow.runtime import ConfigError, load_settings

CONFIG = Path(__file__).resolve().parents[1] / "agentflow.json"
ENV = {
    "MODE": "production",
    "JWT_SECRET_KEY": "0123456789abcdef" * 4,
    "DATABASE_URL": "postgresql://app@db.invalid:5432/app",
    "REDIS_URL": "redis://cache.invalid:6379/0",
}


def test_the_production_settings_are_strict() -> None:
    settings = load_settings(CONFIG, environ=ENV)
    assert settings.production
    assert settings.auth is not None and settings.auth.kind == "jwt"
    assert settings.checkpointer.kind == "postgres"
    assert settings.checkpointer.redis_url is not None
    assert settings.origins and "*" not in settings.origins
    assert settings.docs_path is None
    assert set(settings.required_env) == {"JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
    assert settings.warnings == ()


def test_a_short_jwt_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        load_settings(CONFIG, environ={**ENV, "JWT_SECRET_KEY": "too-short"})


def test_a_missing_database_url_is_refused() -> None:
    env = {k: v for k, v in ENV.items() if k != "DATABASE_URL"}
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(CONFIG, environ=env)
