"""/docs and /redoc: the stock Swagger UI and ReDoc, vendored in the package and served from
the server's own origin under a strict CSP, at DOCS_PATH/REDOCS_PATH, off in production unless
set, and working in a real headless Chromium that asks no other origin for anything."""

from __future__ import annotations

import hashlib
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from agentflow.runtime.docs import ASSETS_DIR, assets_path, redoc_page, swagger_page
from tests.runtime.browser import BROWSER_ARGS, CHROMIUM, require_browser
from tests.runtime.conftest import ServerFactory

REPO_ROOT = Path(__file__).resolve().parents[2]
EVIL = "<script>alert(1)</script>"
TIMEOUT_MS = 20_000
JWT_SECRET = "docs-pages-test-secret-0123456789abcdef"
PRODUCTION = {"MODE": "production"}
# what each page loads: the UI's files and our initializer, nothing else
PAGE_ASSETS = {
    "/docs": {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-init.js"},
    "/redoc": {"redoc.standalone.js", "redoc-init.js"},
}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


class Markup(HTMLParser):
    """What a page asks the browser to load or run."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.inline_code: list[str] = []  # text inside <script> or <style>
        self.title = ""
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._open = tag

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open in ("script", "style") and data.strip():
            self.inline_code.append(data)
        if self._open == "title":
            self.title += data

    def urls(self) -> list[str]:
        return [a[k] for _, a in self.elements for k in ("src", "href") if k in a]

    def attribute(self, name: str) -> str:
        return next(a[name] for _, a in self.elements if name in a)


def parse(page: str) -> Markup:
    markup = Markup()
    markup.feed(page)
    return markup


def csp(header: str) -> dict[str, list[str]]:
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def versions() -> dict[str, tuple[str, str]]:
    """VERSIONS.md's table: file -> (where it comes from, sha256)."""
    rows = re.findall(r"^\| (\S+) \| ([^|]+) \| ([0-9a-f]{64}) \|$",
                      (ASSETS_DIR / "VERSIONS.md").read_text(), re.MULTILINE)  # fmt: skip
    return {name: (source.strip(), digest) for name, source, digest in rows}


def token(sub: str) -> str:
    claims = {"sub": sub, "exp": int(time.time()) + 600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


# -- the vendored files -------------------------------------------------------------------


def test_versions_lists_every_asset_with_its_sha256() -> None:
    files = {p.name: p for p in ASSETS_DIR.iterdir() if p.name != "VERSIONS.md"}
    listed = versions()
    assert set(listed) == set(files), "run `make docs-assets` to rewrite VERSIONS.md"
    for name, (_, digest) in listed.items():
        assert hashlib.sha256(files[name].read_bytes()).hexdigest() == digest, name
    sources = {source.split(",")[0] for source, _ in listed.values()}
    assert {s.split("@")[0] for s in sources} == {"swagger-ui-dist", "redoc", "agentflow"}
    assert any(s.startswith("swagger-ui-dist@5.") for s in sources)
    assert any(s.startswith("redoc@2.") for s in sources)
    # each vendored package ships its licence next to its code
    for package in ("swagger-ui-dist", "redoc"):
        licences = [n for n, (s, _) in listed.items() if s.startswith(package) and "LICENSE" in n]
        assert len(licences) >= 2, package  # the package's and its bundle's third parties
    assert "MIT License" in (ASSETS_DIR / "redoc-LICENSE.txt").read_text()
    assert "Apache License" in (ASSETS_DIR / "swagger-ui-LICENSE.txt").read_text()


def test_assets_path_is_a_fingerprint_of_the_listed_files() -> None:
    path = assets_path()
    assert re.fullmatch(r"/docs-assets/[0-9a-f]{12}", path)
    assert assets_path() == path


# -- the pages over real HTTP -------------------------------------------------------------


def check_csp(header: str, page: str) -> dict[str, list[str]]:
    policy = csp(header)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    for sources in policy.values():
        for source in sources:
            assert source not in ("'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:")
    if page == "/docs":
        assert policy["style-src"] == ["'self'"] and "worker-src" not in policy
    else:
        assert policy["worker-src"] == ["blob:"]
        assert len(policy["style-src"]) == 3 and policy["style-src"][0].startswith("'nonce-")
        assert all(s.startswith("'sha256-") for s in policy["style-src"][1:])
    return policy


def check_page(http: httpx.Client, path: str, kind: str) -> Markup:
    """`path` serves the `kind` page (/docs or /redoc): strict CSP, nothing inline, and every
    file it references served from this origin, unchanged from the package."""
    response = http.get(path)
    assert response.status_code == 200, path
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    check_csp(response.headers["content-security-policy"], kind)
    markup = parse(response.text)
    assert markup.inline_code == []
    for tag, attrs in markup.elements:
        assert tag != "style" and "style" not in attrs, (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "script":
            assert attrs["src"], attrs
    loaded = set()
    for url in markup.urls():
        if url == "data:,":  # the empty favicon: no /favicon.ico request
            continue
        assert url.startswith(assets_path() + "/") and "//" not in url, url
        asset = http.get(url)
        name = url.rsplit("/", 1)[1]
        assert asset.status_code == 200, url
        assert asset.content == (ASSETS_DIR / name).read_bytes()
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[Path(name).suffix])
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        loaded.add(name)
    assert loaded == PAGE_ASSETS[kind]
    document = http.get(markup.attribute("data-openapi-url"))
    assert document.status_code == 200 and "/v1/graph/invoke" in document.json()["paths"]
    return markup


def test_pages_and_their_assets_come_from_this_origin(make_server: ServerFactory) -> None:
    with httpx.Client(base_url=make_server(), timeout=30) as http:
        docs = check_page(http, "/docs", "/docs")
        assert "Swagger UI" in docs.title and "agent API" in docs.title
        redoc = check_page(http, "/redoc", "/redoc")
        assert "ReDoc" in redoc.title
        # a fresh nonce on every response, the same in the page and in its CSP
        nonces = set()
        for _ in range(2):
            response = http.get("/redoc")
            nonce = parse(response.text).attribute("data-style-nonce")
            assert len(nonce) >= 22
            policy = csp(response.headers["content-security-policy"])
            assert policy["style-src"][0] == f"'nonce-{nonce}'"
            nonces.add(nonce)
        assert len(nonces) == 2


def test_assets_revalidate_and_unknown_files_are_404(make_server: ServerFactory) -> None:
    with httpx.Client(base_url=make_server(), timeout=30) as http:
        url = assets_path() + "/swagger-ui.css"
        first = http.get(url)
        again = http.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert http.get(assets_path() + "/nope.js").status_code == 404
        assert http.get("/docs-assets/000000000000/swagger-ui.css").status_code == 404


def test_pages_escape_the_title_and_the_document_url() -> None:
    url = '/api/openapi.json?a="></div><script>alert(1)</script>&b=\u2028'
    for build in (swagger_page, redoc_page):
        page, _ = build(url, f'{EVIL}"<b>', "/docs-assets/x")
        markup = parse(page)
        assert "<script>alert" not in page and "<b>" not in page
        assert markup.title.startswith(f'{EVIL}"<b>')
        assert markup.attribute("data-openapi-url") == url
        assert [t for t, _ in markup.elements].count("script") == len(
            [u for u in markup.urls() if u.endswith(".js")]
        )


def test_custom_paths_move_the_pages(make_server: ServerFactory) -> None:
    env = {"DOCS_PATH": "/reference/try", "REDOCS_PATH": "/reference/read"}
    with httpx.Client(base_url=make_server(env=env), timeout=30) as http:
        check_page(http, "/reference/try", "/docs")
        check_page(http, "/reference/read", "/redoc")
        for old in ("/docs", "/redoc"):
            assert http.get(old).status_code == 404


def test_production_hides_the_docs_and_their_assets(make_server: ServerFactory) -> None:
    with httpx.Client(base_url=make_server(env=PRODUCTION), timeout=30) as http:
        for path in ("/docs", "/redoc", "/openapi.json", assets_path() + "/swagger-init.js"):
            assert http.get(path).status_code == 404, path


def test_production_serves_only_the_pages_that_are_set(make_server: ServerFactory) -> None:
    env = {**PRODUCTION, "DOCS_PATH": "/internal/docs"}
    with httpx.Client(base_url=make_server(env=env), timeout=30) as http:
        check_page(http, "/internal/docs", "/docs")
        page = http.get("/internal/docs")
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        for path in ("/docs", "/redoc"):
            assert http.get(path).status_code == 404, path
        # the assets of the page that is off are still files of this directory (one mount)
        assert http.get(assets_path() + "/redoc-init.js").status_code == 200


# -- in a real browser --------------------------------------------------------------------


def test_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI"):
        require_browser("/nonexistent/chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        require_browser("/nonexistent/chromium")


# CSP violations as the page sees them (Chromium also logs each as a console error)
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));
"""


@pytest.mark.slow
def test_docs_pages_in_headless_chromium(make_server: ServerFactory) -> None:
    require_browser()
    from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright
    from playwright.sync_api import Request as BrowserRequest

    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    base = make_server(config={"auth": "jwt"}, env={"JWT_SECRET_KEY": JWT_SECRET})
    errors: list[str] = []
    requests: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_request(request: BrowserRequest) -> None:
        requests.append(request.url)

    def open_page(pw_page: Page, path: str) -> None:
        pw_page.add_init_script(WATCH_CSP)
        pw_page.on("console", on_console)
        pw_page.on("pageerror", lambda exc: errors.append(str(exc)))
        pw_page.on("request", on_request)
        pw_page.goto(base + path)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS,
                                     timeout=TIMEOUT_MS)  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            open_page(page, "/docs")
            expect(
                page.locator(".opblock-summary-path", has_text="/v1/graph/invoke")
            ).to_be_visible()
            expect(page.get_by_role("heading", name="agent API")).to_be_visible()

            # "Try it out" on GET /ping: a real request from the page, answered 200
            ping = page.locator(".opblock", has=page.locator("[data-path='/ping']"))
            ping.locator(".opblock-summary-control").click()
            ping.get_by_role("button", name="Try it out").click()
            ping.get_by_role("button", name="Execute").click()
            result = ping.locator(".live-responses-table .response")
            expect(result.locator(".response-col_status")).to_have_text("200")
            expect(result.locator(".response-col_description")).to_contain_text('"status": "ok"')

            # Authorize with a bearer token, then GET /v1/threads sends it: 200, not 401
            page.locator(".auth-wrapper .authorize").click()
            dialog = page.locator(".modal-ux")
            dialog.get_by_label("auth-bearer-value").fill(token("docs-user"))
            dialog.get_by_role("button", name="Apply credentials").click()
            expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
            dialog.get_by_role("button", name="Close").click()
            threads = page.locator(".opblock", has=page.locator("[data-path='/v1/threads']"))
            threads.locator(".opblock-summary-control").click()
            threads.get_by_role("button", name="Try it out").click()
            threads.get_by_role("button", name="Execute").click()
            result = threads.locator(".live-responses-table .response")
            expect(result.locator(".response-col_status")).to_have_text("200")
            expect(result.locator(".response-col_description")).to_contain_text('"threads"')
            page.screenshot(path=str(artifacts / "docs.png"), full_page=True)
            docs_violations = page.evaluate("window.__violations")

            reference = browser.new_page(viewport={"width": 1280, "height": 900})
            reference.set_default_timeout(TIMEOUT_MS)
            open_page(reference, "/redoc")
            expect(
                reference.get_by_role("heading", name="Run the graph to completion")
            ).to_be_visible()
            expect(reference.locator("h1", has_text="agent API")).to_be_visible()
            # the search runs in ReDoc's blob: worker
            reference.get_by_placeholder("Search...").fill("thread")
            hits = reference.locator("[data-role='search:results'] li")
            expect(hits.first).to_be_visible()
            reference.screenshot(path=str(artifacts / "redoc.png"))
            redoc_violations = reference.evaluate("window.__violations")
        finally:
            browser.close()

    assert docs_violations == [] and redoc_violations == []
    assert errors == []
    own = (base + "/", f"blob:{base}/", "data:")
    assert [url for url in requests if not url.startswith(own)] == []
    paths = {urlsplit(url).path for url in requests if url.startswith(base)}
    assets = {p.rsplit("/", 1)[1] for p in paths if p.startswith(assets_path() + "/")}
    assert assets == PAGE_ASSETS["/docs"] | PAGE_ASSETS["/redoc"]
    assert {"/docs", "/redoc", "/openapi.json", "/ping", "/v1/threads"} <= paths
