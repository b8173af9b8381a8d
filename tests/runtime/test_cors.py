"""CORS over real HTTP: exact origins with credentials, the development wildcard, no CORS
at all in production without ORIGINS, and invalid ORIGINS refused at load time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentflow.runtime import load_settings
from agentflow.runtime.settings import ConfigError
from tests.runtime.conftest import ServerFactory, user_message, write_project

ALLOWED = "https://app.example.com"
FOREIGN = "https://evil.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def header_list(response: httpx.Response, name: str) -> list[str]:
    return [item.strip().lower() for item in response.headers.get(name, "").split(",")]


def cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


@pytest.fixture
def listed(make_server: ServerFactory) -> Iterator[httpx.Client]:
    url = make_server(env={"ORIGINS": f"{ALLOWED},http://localhost:3000"})
    with httpx.Client(base_url=url, timeout=30) as http:
        yield http


@pytest.mark.parametrize("origin", [ALLOWED, "http://localhost:3000"])
def test_preflight_from_an_allowed_origin(listed: httpx.Client, origin: str) -> None:
    response = listed.options("/v1/graph/invoke", headers={"Origin": origin, **PREFLIGHT})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in header_list(response, "access-control-allow-headers")
    assert "content-type" in header_list(response, "access-control-allow-headers")
    assert "post" in header_list(response, "access-control-allow-methods")


def test_preflight_from_a_foreign_origin_is_refused(listed: httpx.Client) -> None:
    response = listed.options("/v1/graph/invoke", headers={"Origin": FOREIGN, **PREFLIGHT})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    # a look-alike of an allowed origin is foreign too
    for lookalike in ("https://app.example.com.evil.example", "http://app.example.com"):
        spoof = listed.options("/v1/graph/invoke", headers={"Origin": lookalike, **PREFLIGHT})
        assert "access-control-allow-origin" not in spoof.headers, lookalike


def test_actual_request_from_an_allowed_origin(listed: httpx.Client) -> None:
    response = listed.post("/v1/graph/invoke", json=user_message("hi"), headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in header_list(response, "access-control-expose-headers")
    assert "origin" in header_list(response, "vary")


def test_actual_request_from_a_foreign_origin_gets_no_cors_headers(listed: httpx.Client) -> None:
    response = listed.post("/v1/graph/invoke", json=user_message("hi"), headers={"Origin": FOREIGN})
    assert response.status_code == 200  # CORS is enforced by the browser, not the server
    assert "access-control-allow-origin" not in response.headers


def test_development_wildcard_never_allows_credentials(make_server: ServerFactory) -> None:
    url = make_server(env={"ORIGINS": "*"})
    with httpx.Client(base_url=url, timeout=30) as http:
        preflight = http.options("/v1/graph/invoke", headers={"Origin": FOREIGN, **PREFLIGHT})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in preflight.headers
        actual = http.post(
            "/v1/graph/invoke",
            json=user_message("hi"),
            headers={"Origin": FOREIGN, "Cookie": "session=abc"},
        )
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in actual.headers


def test_development_default_is_the_wildcard(make_server: ServerFactory) -> None:
    url = make_server()
    response = httpx.get(f"{url}/ping", headers={"Origin": FOREIGN})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_production_without_origins_sends_no_cors_headers(make_server: ServerFactory) -> None:
    url = make_server(env={"MODE": "production"})
    with httpx.Client(base_url=url, timeout=30) as http:
        preflight = http.options("/v1/graph/invoke", headers={"Origin": ALLOWED, **PREFLIGHT})
        assert cors_headers(preflight) == []
        actual = http.post("/v1/graph/invoke", json=user_message("hi"), headers={"Origin": ALLOWED})
        assert actual.status_code == 200
        assert cors_headers(actual) == []


def test_origins_from_the_config_file(make_server: ServerFactory) -> None:
    url = make_server(config={"origins": [ALLOWED]}, env={"MODE": "production"})
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.options("/v1/graph/invoke", headers={"Origin": ALLOWED, **PREFLIGHT})
        assert response.headers["access-control-allow-origin"] == ALLOWED
        foreign = http.options("/v1/graph/invoke", headers={"Origin": FOREIGN, **PREFLIGHT})
        assert "access-control-allow-origin" not in foreign.headers


@pytest.mark.parametrize(
    "value",
    [
        "app.example.com",
        "https://app.example.com,app2.example.com",
        "https://app.example.com/path",
        "ftp://app.example.com",
        "https://",
    ],
)
def test_invalid_origins_are_a_config_error(tmp_path: Path, value: str) -> None:
    path = write_project(tmp_path)
    with pytest.raises(ConfigError, match="ORIGINS"):
        load_settings(path, environ={"ORIGINS": value})


def test_trailing_slash_is_normalised(tmp_path: Path) -> None:
    path = write_project(tmp_path)
    settings = load_settings(path, environ={"ORIGINS": " https://app.example.com/ , "})
    assert settings.origins == ("https://app.example.com",)
