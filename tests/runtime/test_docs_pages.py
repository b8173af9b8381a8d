"""The /docs explorer and /redoc reference pages: self-contained (nothing from another
origin), escaped, and working in a real headless Chromium."""

from __future__ import annotations

import asyncio
import html
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agentflow.runtime import schemas
from agentflow.runtime.docs import DOCS_CSP, reference_page, swagger_page
from agentflow.runtime.openapi import Endpoint, build_document
from agentflow.runtime.settings import AuthSettings, Settings
from tests.runtime.browser import BROWSER_ARGS, CHROMIUM, require_browser

REPO_ROOT = Path(__file__).resolve().parents[2]
EVIL = "<script>alert(1)</script>"
TIMEOUT_MS = 15_000


async def _unused(request: Request) -> Response:  # pragma: no cover - never routed
    return Response()


def _app_document() -> dict[str, Any]:
    """A document from the real generator, with auth on and an SSE endpoint."""
    endpoints = [
        Endpoint("GET", "/ping", _unused, "Liveness", "system", auth=False),
        Endpoint("POST", "/v1/graph/invoke", _unused, "Run the graph", "graph",
                 request=schemas.RUN_REQUEST, response=schemas.RUN_RESPONSE, errors=("422",)),
        Endpoint("POST", "/v1/graph/stream", _unused, "Run the graph, streaming SSE", "graph",
                 request=schemas.RUN_REQUEST, response={"type": "string"},
                 media_type="text/event-stream"),
        Endpoint("GET", "/v1/threads/{thread_id}/messages", _unused, "A thread's messages",
                 "threads", response=schemas.MESSAGE_PAGE, errors=("404",),
                 query=(("limit", "integer", "page size"),),
                 headers=(("Idempotency-Key", "replay protection"),)),
        Endpoint("DELETE", "/v1/threads/{thread_id}", _unused, "Delete a thread", "threads"),
    ]  # fmt: skip
    settings = Settings(
        project_dir=Path("/srv/demo"), config_path=None, graph="app:graph", auth=AuthSettings("jwt")
    )
    return build_document(endpoints, settings)


def _hostile_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": EVIL, "version": EVIL, "description": EVIL},
        "tags": [{"name": EVIL}],
        "paths": {
            f"/items/{{{EVIL}}}": {
                "parameters": [{"name": EVIL, "in": "path", "required": True}],
                "post": {
                    "operationId": EVIL,
                    "summary": EVIL,
                    "description": EVIL,
                    "tags": [EVIL],
                    "parameters": [
                        {"name": "q", "in": "query", "description": EVIL, "schema": {"type": EVIL}}
                    ],
                    "requestBody": {
                        "content": {
                            EVIL: {"schema": {"$ref": f"#/components/schemas/{EVIL}"}},
                        }
                    },
                    "responses": {
                        EVIL: {
                            "description": EVIL,
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            EVIL: {
                                                "type": "string",
                                                "enum": [EVIL],
                                                "pattern": EVIL,
                                                "default": EVIL,
                                            }
                                        },
                                    }
                                }
                            },
                        },
                    },
                },
            }
        },
        "components": {
            "schemas": {
                EVIL: {
                    "type": "object",
                    "description": EVIL,
                    "required": [EVIL],
                    "properties": {EVIL: {"format": EVIL, "const": EVIL}},
                }
            },
        },
    }


EXTERNAL = re.compile(r"https?://|//cdn|@import|\burl\(", re.IGNORECASE)
RESOURCE_ATTR = re.compile(r"""\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?([^"'\s>]*)""")


def _pages() -> dict[str, str]:
    return {
        "swagger": swagger_page("/openapi.json", "demo agent API"),
        "reference": reference_page(_app_document()),
        "reference-hostile": reference_page(_hostile_document()),
    }


def test_docs_csp_is_strict() -> None:
    assert DOCS_CSP == (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:"
    )


@pytest.mark.parametrize("name", ["swagger", "reference", "reference-hostile"])
def test_pages_load_nothing_from_other_origins(name: str) -> None:
    page = _pages()[name]
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    markup = re.sub(r"<(script|style)>.*?</\1>", "", page, flags=re.DOTALL)
    assert '<link rel="icon" href="data:,">' in markup  # no /favicon.ico request
    for value in RESOURCE_ATTR.findall(markup):
        assert value.startswith(("#", "data:")), value
    assert '<link rel="stylesheet"' not in page
    assert "<script src" not in page and "<iframe" not in page and "<img" not in page


@pytest.mark.parametrize("name", ["swagger", "reference"])
def test_pages_have_viewport_and_title(name: str) -> None:
    page = _pages()[name]
    assert page.startswith("<!doctype html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    title = re.search(r"<title>(.*?)</title>", page)
    assert title is not None and "demo agent API" in title.group(1)


def test_reference_page_escapes_everything() -> None:
    page = reference_page(_hostile_document())
    assert "<script" not in page
    assert "alert(1)</" not in page
    assert html.escape(EVIL) in page
    # and the hostile text still shows up, as text, in each place it came from
    assert page.count(html.escape(EVIL)) >= 10
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_reference_page_lists_every_operation() -> None:
    document = _app_document()
    page = reference_page(document)
    count = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            count += 1
            heading = f'<span class="badge">{method.upper()}</span><code class="path">'
            assert heading + html.escape(path) + "</code>" in page
            assert html.escape(operation["summary"]) in page
            assert f'id="op-{operation["operationId"]}"' in page
    assert count == 5
    assert page.count('<article class="op') == count
    assert "<script" not in page


def test_reference_page_renders_parameters_and_schemas() -> None:
    page = reference_page(_app_document())
    # path, query and header parameters in the table
    for row in ("<td><code>thread_id</code></td><td>path</td><td>string</td><td>yes</td>",
                "<td><code>limit</code></td><td>query</td><td>integer</td><td>no</td>",
                "<td><code>Idempotency-Key</code></td><td>header</td>"):  # fmt: skip
        assert row in page
    # nested request fields, an enum, required marks
    assert "<code>recursion_limit</code>" in page
    assert "enum: &quot;system&quot;, &quot;user&quot;" in page
    assert '<code>role</code> <span class="req">required</span>' in page
    # $ref to the Error component is resolved: its nested fields appear in the 401 response
    assert '<span class="ref">\u2192 Error</span>' in page
    assert "<code>request_id</code>" in page
    assert "text/event-stream" in page
    assert "Authorization: Bearer &lt;token&gt;" in page


def test_reference_page_survives_recursive_and_odd_schemas() -> None:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "odd"},
        "paths": {
            "/tree": {
                "get": {
                    "responses": {"200": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Node"}}}},
                        "default": {"$ref": "#/components/responses/Missing"},
                        "500": "not an object"},
                }
            },
            "/bad": "not an object",
        },
        "components": {"schemas": {"Node": {"type": "object", "properties": {
            "child": {"$ref": "#/components/schemas/Node"},
            "anything": True,
            "remote": {"$ref": "other.json#/Thing"}}}}},
    }  # fmt: skip
    page = reference_page(document)
    assert "(recursive)" in page
    assert "/tree" in page and "/bad" not in page
    assert "other.json#/Thing" not in page and "Thing" in page


def test_swagger_page_embeds_the_openapi_url_as_json() -> None:
    url = "/api/openapi.json?x=</script><script>alert(1)</script>&y=\"'\u2028"
    page = swagger_page(url, "t")
    assert page.count("<script>") == 1 and page.count("</script>") == 1
    assert "alert(1)</" not in page
    line = next(ln for ln in page.splitlines() if ln.startswith("const SPEC_URL = "))
    literal = line.removeprefix("const SPEC_URL = ").removesuffix(";")
    assert json.loads(literal) == url
    assert "\u2028" not in page


def test_swagger_page_escapes_the_title_and_never_parses_document_markup() -> None:
    page = swagger_page("/openapi.json", f'{EVIL}"<b>')
    assert EVIL not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&lt;b&gt;" in page
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in page


def test_swagger_page_is_compact() -> None:
    assert len(swagger_page("/openapi.json", "demo agent API").encode()) < 25_000


# -- the pages in a real browser ------------------------------------------------------------

ECHO_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Echo test API", "version": "1.0.0", "description": "A tiny sample."},
    "paths": {
        "/echo": {
            "post": {
                "operationId": "post_echo",
                "summary": "Echo the text back",
                "tags": ["echo"],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {
                        "type": "object", "required": ["text"],
                        "properties": {"text": {"type": "string", "description": "what to echo"}},
                    }}},
                },
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"echo": {"type": "string"}}}}}},
                    "401": {"description": "no token", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
                },
                "security": [{"bearer": []}],
            }
        },
        "/stream": {
            "post": {
                "operationId": "post_stream",
                "summary": "Count to three over SSE",
                "tags": ["echo"],
                "responses": {"200": {"description": "OK", "content": {
                    "text/event-stream": {"schema": {"type": "string"}}}}},
            }
        },
    },
    "components": {
        "schemas": {"Error": schemas.ERROR},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}  # fmt: skip


def _sample_app() -> Starlette:
    csp = {"Content-Security-Policy": DOCS_CSP}

    async def docs(request: Request) -> Response:
        return HTMLResponse(swagger_page("/openapi.json", "Echo test API"), headers=csp)

    async def redoc(request: Request) -> Response:
        return HTMLResponse(reference_page(ECHO_DOCUMENT), headers=csp)

    async def openapi(request: Request) -> Response:
        return JSONResponse(ECHO_DOCUMENT)

    async def echo(request: Request) -> Response:
        body = await request.json()
        auth = request.headers.get("authorization", "")
        return JSONResponse(
            {"echo": body["text"], "authorization": auth}, headers={"X-Request-ID": "req-echo-1"}
        )

    async def stream(request: Request) -> Response:
        async def frames() -> AsyncIterator[bytes]:
            for i in (1, 2, 3):
                name = "end" if i == 3 else "count"
                yield f"id: {i}\nevent: {name}\ndata: {json.dumps({'n': i})}\n\n".encode()
                await asyncio.sleep(0.05)

        return StreamingResponse(frames(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/docs", docs),
            Route("/redoc", redoc),
            Route("/openapi.json", openapi),
            Route("/echo", echo, methods=["POST"]),
            Route("/stream", stream, methods=["POST"]),
        ]
    )


@contextmanager
def _serve(app: Starlette) -> Iterator[str]:
    """`app` under uvicorn in a background thread, on a socket bound to a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", lifespan="off", loop="asyncio", http="h11",
        ws="none",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI"):
        require_browser("/nonexistent/chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        require_browser("/nonexistent/chromium")


@pytest.mark.slow
def test_docs_pages_in_headless_chromium() -> None:
    require_browser()
    from playwright.sync_api import ConsoleMessage, expect, sync_playwright
    from playwright.sync_api import Request as BrowserRequest

    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    with _serve(_sample_app()) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=BROWSER_ARGS,
            timeout=TIMEOUT_MS,
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            foreign: list[str] = []

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    errors.append(message.text)

            def on_request(request: BrowserRequest) -> None:
                if not request.url.startswith((base + "/", "data:")):
                    foreign.append(request.url)

            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", on_request)

            page.goto(base + "/docs")
            echo = page.locator("details.op", has_text="/echo")
            expect(echo).to_be_visible()
            expect(echo.locator(":scope > summary")).to_contain_text("POST")
            expect(echo.locator(":scope > summary")).to_contain_text("Echo the text back")
            expect(page.get_by_role("heading", name="echo", exact=True)).to_be_visible()

            page.get_by_label("Bearer token").fill("tok-123")
            echo.locator(":scope > summary").click()
            body = echo.get_by_label("Request body (JSON)")
            assert json.loads(body.input_value()) == {"text": "string"}
            body.fill('{"text": "hello from the browser"}')
            echo.get_by_role("button", name="Send").click()
            result = echo.locator(".result")
            expect(result).to_contain_text("200", timeout=TIMEOUT_MS)
            expect(result).to_contain_text('"echo": "hello from the browser"')
            expect(result).to_contain_text('"authorization": "Bearer tok-123"')
            expect(result).to_contain_text("X-Request-ID: req-echo-1")

            stream = page.locator("details.op", has_text="/stream")
            stream.locator(":scope > summary").click()
            stream.get_by_role("button", name="Send").click()
            events = stream.locator("ol.events > li")
            expect(events).to_have_count(3)
            expect(events.nth(2)).to_contain_text("end")
            expect(stream.locator(".result")).to_contain_text("stream closed")

            page.screenshot(path=str(artifacts / "docs.png"), full_page=True)

            page.set_viewport_size({"width": 360, "height": 740})
            fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert fits, "the explorer scrolls sideways at 360px"
            page.screenshot(path=str(artifacts / "docs-narrow.png"), full_page=True)

            page.set_viewport_size({"width": 1100, "height": 900})
            page.goto(base + "/redoc")
            expect(page.get_by_role("heading", name="Echo test API")).to_be_visible()
            expect(page.locator("article.op", has_text="Echo the text back")).to_be_visible()
            expect(page.locator("article.op code.path", has_text="/echo")).to_be_visible()
            page.screenshot(path=str(artifacts / "redoc.png"), full_page=True)

            assert errors == []
            assert foreign == []
        finally:
            browser.close()
