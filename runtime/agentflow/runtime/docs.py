"""The API documentation pages: the stock Swagger UI (/docs) and ReDoc (/redoc).

Both UIs are vendored in `docs_assets/` (see its VERSIONS.md) and served by this server, so
the pages load nothing from any other origin and work offline. The pages are two tiny HTML
documents with no inline script or style, each sent with its Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from html import escape
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = [
    "ASSETS_DIR",
    "REDOC_STYLE_HASHES",
    "SWAGGER_CSP",
    "AssetFiles",
    "PageBuilder",
    "assets_path",
    "redoc_csp",
    "redoc_page",
    "swagger_page",
]

# (openapi_url, title, assets_path) -> (page, its Content-Security-Policy)
PageBuilder = Callable[[str, str, str], tuple[str, str]]

ASSETS_DIR = Path(__file__).with_name("docs_assets")

# The Content-Security-Policy of both pages, found in headless Chromium with the UIs fully
# rendered and "Try it out" used: every source below is needed, anything else is refused.
_CSP = (
    "default-src 'none'",  # everything not listed below is refused
    "script-src 'self'",  # the bundles and the two init files; no inline script, no eval
    "connect-src 'self'",  # the OpenAPI document and Swagger UI's "Try it out" requests
    "img-src data:",  # the icons both UIs embed as data: URIs; the data:, favicon
    "frame-ancestors 'none'",  # never framed (clickjacking)
    "base-uri 'none'",  # no <base> may redirect the relative URLs of the UIs
    "form-action 'none'",  # the UIs send requests with fetch, never by posting a form
)
# Swagger UI: swagger-ui.css only; it sets styles through the DOM, never inline.
SWAGGER_CSP = "; ".join((*_CSP, "style-src 'self'"))


# The two <style> elements ReDoc's bundle inserts as it loads, before it can know a nonce:
# an empty one, then perfect-scrollbar's CSS (".ps{overflow:hidden!important;...").
REDOC_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
)


def redoc_csp(nonce: str) -> str:
    """ReDoc inserts its styles as <style> elements at run time (styled-components): they
    are allowed by this response's nonce, which redoc-init.js hands to ReDoc, and by the
    hashes above; never by 'unsafe-inline'. Its search index runs in a worker it builds
    from a blob: URL (made by its own same-origin script, hence `worker-src blob:`)."""
    style = " ".join(("style-src", f"'nonce-{nonce}'", *REDOC_STYLE_HASHES))
    return "; ".join((*_CSP, style, "worker-src blob:"))


def assets_path() -> str:
    """The URL prefix of the assets: `/docs-assets/<fingerprint>`. VERSIONS.md lists the
    sha256 of every file of the directory (a test checks it), so its digest changes with
    any file and a cached copy is never stale: `AssetFiles` may say "cache for a year"."""
    digest = hashlib.sha256((ASSETS_DIR / "VERSIONS.md").read_bytes()).hexdigest()
    return f"/docs-assets/{digest[:12]}"


class AssetFiles(StaticFiles):
    """`StaticFiles` over `ASSETS_DIR` whose responses may be cached for good."""

    def __init__(self) -> None:
        super().__init__(directory=ASSETS_DIR)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _page(title: str, head: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'  # no /favicon.ico request
        f"{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )


def swagger_page(openapi_url: str, title: str, assets: str) -> tuple[str, str]:
    """Swagger UI and its CSP; swagger-init.js reads the document's URL from the page."""
    a = escape(assets)
    page = _page(
        f"{title} \u2013 Swagger UI",
        f'<link rel="stylesheet" href="{a}/swagger-ui.css">\n',
        f'<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>\n'
        f'<script src="{a}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{a}/swagger-init.js"></script>\n',
    )
    return page, SWAGGER_CSP


def redoc_page(openapi_url: str, title: str, assets: str) -> tuple[str, str]:
    """ReDoc and its CSP, with a fresh style nonce (so: one call per response)."""
    nonce = secrets.token_urlsafe(18)
    a = escape(assets)
    page = _page(
        f"{title} \u2013 ReDoc",
        "",
        f'<div id="redoc" data-openapi-url="{escape(openapi_url)}" data-style-nonce="{nonce}">'
        "</div>\n"
        f'<script src="{a}/redoc.standalone.js"></script>\n'
        f'<script src="{a}/redoc-init.js"></script>\n',
    )
    return page, redoc_csp(nonce)
