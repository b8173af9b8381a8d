"""`/` leads somewhere useful: the playground under `play`, the API docs under `api` when
they are on, and nowhere (404) when they are off."""

from __future__ import annotations

import httpx

from tests.runtime.conftest import ServerFactory


def test_home_redirects_to_the_docs_under_api(make_server: ServerFactory) -> None:
    base = make_server()
    response = httpx.get(base + "/", follow_redirects=False, timeout=10)
    assert response.status_code == 307 and response.headers["location"] == "/docs"
    assert httpx.get(base + "/", follow_redirects=True, timeout=10).status_code == 200


def test_home_follows_a_moved_docs_path(make_server: ServerFactory) -> None:
    base = make_server(env={"DOCS_PATH": "/reference"})
    assert httpx.get(base + "/", timeout=10).headers["location"] == "/reference"


def test_home_is_not_found_when_the_docs_are_off(make_server: ServerFactory) -> None:
    base = make_server(env={"MODE": "production"})
    response = httpx.get(base + "/", follow_redirects=False, timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_home_redirects_to_the_playground_under_play(make_server: ServerFactory) -> None:
    base = make_server(playground=True)
    response = httpx.get(base + "/", follow_redirects=False, timeout=10)
    assert response.status_code == 307 and response.headers["location"] == "/playground"
