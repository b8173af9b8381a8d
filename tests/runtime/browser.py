"""Headless Chromium for browser tests: Debian's package, driven by Playwright, never a
browser download. Missing parts fail the test under CI=true and skip it elsewhere."""

from __future__ import annotations

import importlib.util
import os

import pytest

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_browser(chromium: str = CHROMIUM) -> None:
    problem = None
    if not os.access(chromium, os.X_OK):
        problem = f"{chromium} is missing: apt-get install -y chromium"
    elif importlib.util.find_spec("playwright") is None:
        problem = "the playwright package is missing: pip install -e '.[dev]'"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run in CI: {problem}")
    pytest.skip(problem)
