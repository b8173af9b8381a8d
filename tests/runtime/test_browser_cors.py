"""The seed's "works in curl but fails in the browser" case, proven both ways in headless
Chromium: a page on one origin calls the API on another origin with a bearer token (invoke
and a streamed run) — allowed when the page's origin is in ORIGINS, blocked when it is not."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.runtime.browser import BROWSER_ARGS, CHROMIUM, require_browser
from tests.runtime.conftest import ServerFactory, serve_app

SECRET = "browser-cors-test-secret-" + "x" * 40
TIMEOUT_MS = 15_000

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>frontend</title></head>
<body><pre id="out">running</pre>
<script>
const api = %(api)s, token = %(token)s;
const out = document.getElementById("out");
async function main() {
  const headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token};
  const body = JSON.stringify({messages: [{role: "user", content: "from the browser"}]});
  const result = {};
  try {
    const r = await fetch(api + "/v1/graph/invoke", {method: "POST", headers, body});
    const data = await r.json();
    result.invoke = data.messages[data.messages.length - 1].content;
    result.request_id = r.headers.get("X-Request-ID");
    const s = await fetch(api + "/v1/graph/stream", {method: "POST", headers, body});
    const reader = s.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      text += decoder.decode(value, {stream: true});
    }
    result.events = [...text.matchAll(/^event: (\\w+)$/gm)].map(m => m[1]);
  } catch (error) {
    result.blocked = String(error);
  }
  out.textContent = JSON.stringify(result);
  out.dataset.done = "1";
}
main();
</script></body></html>"""


@pytest.fixture
def frontend() -> Iterator[tuple[str, dict[str, str]]]:
    """A page server on its own origin; the test sets which API it calls."""
    config: dict[str, str] = {}

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE % {"api": json.dumps(config["api"]),
                                    "token": json.dumps(config["token"])})  # fmt: skip

    with serve_app(Starlette(routes=[Route("/", page)])) as url:
        yield url, config


def token(sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")


def run_page(url: str) -> tuple[dict[str, object], list[str]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=BROWSER_ARGS, timeout=TIMEOUT_MS
        )
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(url, timeout=TIMEOUT_MS)
            page.wait_for_selector("#out[data-done='1']", timeout=TIMEOUT_MS)
            result = json.loads(page.inner_text("#out"))
        finally:
            browser.close()
    return result, console


def api_env(origins: str) -> dict[str, str]:
    return {"ORIGINS": origins, "JWT_SECRET_KEY": SECRET}


@pytest.mark.slow
def test_allowed_origin_works_in_the_browser_with_streaming(
    make_server: ServerFactory, frontend: tuple[str, dict[str, str]]
) -> None:
    require_browser()
    page_url, config = frontend
    config["api"] = make_server(config={"auth": "jwt"}, env=api_env(page_url))
    config["token"] = token("alice")
    result, _ = run_page(page_url + "/")
    assert result.get("blocked") is None, result
    assert result["invoke"] == "echo: from the browser"
    assert result["request_id"]  # exposed to the page through Access-Control-Expose-Headers
    events = result["events"]
    assert isinstance(events, list) and events[0] == "metadata" and events[-1] == "end"


@pytest.mark.slow
def test_origin_not_in_origins_is_blocked_by_the_browser(
    make_server: ServerFactory, frontend: tuple[str, dict[str, str]]
) -> None:
    require_browser()
    page_url, config = frontend
    config["api"] = make_server(config={"auth": "jwt"}, env=api_env("https://app.example.com"))
    config["token"] = token("alice")
    result, console = run_page(page_url + "/")
    assert "Failed to fetch" in str(result.get("blocked")), result
    assert any("CORS" in line for line in console), console
