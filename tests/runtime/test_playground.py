"""The local web playground (/playground): only under `agentflow play` (or PLAYGROUND=1),
strict CSP, plain self-contained assets, and working in a real headless Chromium against a
freshly generated project served by the real `agentflow play` process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph, emit_delta
from agentflow.runtime import create_app, load_settings
from agentflow.runtime.app import PLAYGROUND_CSP, PLAYGROUND_DIR
from tests.runtime.browser import BROWSER_ARGS, CHROMIUM, require_browser
from tests.runtime.conftest import ServerFactory, free_port, serve_app, write_project

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
TIMEOUT_MS = 15_000
JWT_SECRET = "playground-test-secret-0123456789abcdef"
# variables of the developer's shell that would change what the generated project does
SCRUBBED_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "MODE", "DOCS_PATH", "REDOCS_PATH",
    "PLAYGROUND", "ORIGINS", "DATABASE_URL", "REDIS_URL", "JWT_SECRET_KEY", "PORT",
)  # fmt: skip


# -- the route and its files ------------------------------------------------------------


def test_playground_is_off_under_api_and_on_with_the_env_switch(
    make_server: ServerFactory,
) -> None:
    off = make_server()
    assert httpx.get(off + "/playground", timeout=10).status_code == 404
    assert httpx.get(off + "/playground/assets/app.js", timeout=10).status_code == 404

    on = make_server(env={"PLAYGROUND": "1"})
    page = httpx.get(on + "/playground", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == PLAYGROUND_CSP
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/playground/assets/app.js"' in page.text
    assert '<link rel="stylesheet" href="/playground/assets/style.css">' in page.text
    script = httpx.get(on + "/playground/assets/app.js", timeout=10)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.text == (PLAYGROUND_DIR / "app.js").read_text()
    style = httpx.get(on + "/playground/assets/style.css", timeout=10)
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert httpx.get(on + "/playground/assets/nope.js", timeout=10).status_code == 404


def test_assets_are_plain_self_contained_and_escape_by_construction() -> None:
    page = (PLAYGROUND_DIR / "index.html").read_text()
    script = (PLAYGROUND_DIR / "app.js").read_text()
    style = (PLAYGROUND_DIR / "style.css").read_text()
    # nothing inline (the CSP would block it) and nothing from another origin
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", page, re.IGNORECASE)  # no onclick=...
    assert '<link rel="icon" href="data:,">' in page  # no /favicon.ico request
    for text in (page, script, style):
        assert not re.search(r"https?://|//cdn|@import|\burl\(", text)
    # data reaches the page only as text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "new Function" not in script and 'setAttribute("style"' not in script
    assert sum(len(t.encode()) for t in (page, script, style)) < 60_000


def test_script_parses() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--check", str(PLAYGROUND_DIR / "app.js")],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


# -- in a real browser ----------------------------------------------------------------------


@contextmanager
def _play(project: Path, log: Path) -> Iterator[str]:
    """`agentflow play` on the generated project as a real process; exits 0 on SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["NO_COLOR"] = "1"
    command = [
        sys.executable, "-m", "agentflow_cli", "play", "--config", str(project / "agentflow.json"),
        "--port", str(port), "--no-browser", "--no-reload",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"agentflow play exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(base + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"agentflow play did not answer /ping:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=BROWSER_ARGS, timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


class Watch:
    """Console errors, page errors and requests to other origins of one page."""

    def __init__(self, page: Any, base: str, allowed_statuses: tuple[int, ...] = ()) -> None:
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.allowed = [f"status of {s} " for s in allowed_statuses]
        page.on("console", self.console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", lambda r: self.request(r.url, base))

    def console(self, message: Any) -> None:
        if message.type == "error" and not any(a in message.text for a in self.allowed):
            self.errors.append(message.text)

    def request(self, url: str, base: str) -> None:
        if not url.startswith((base + "/", "data:")):
            self.foreign.append(url)


# The streaming bubble's text node is appended to once per SSE delta (the page edits no other
# text node in place); every intermediate value is recorded, proving tokens were rendered as
# they arrived, before the final `message` replaced the text.
RECORD_DELTAS = """
window.__partials = [];
new MutationObserver((records) => {
  for (const r of records) if (r.type === "characterData") window.__partials.push(r.oldValue);
}).observe(document, {subtree: true, characterData: true, characterDataOldValue: true});
"""


@pytest.mark.slow
def test_chat_in_the_playground_of_a_generated_project(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    from agentflow_cli.init import create_project

    project = tmp_path / "demo"
    create_project(project, template="react", name="demo")
    shutil.copy(project / ".env.example", project / ".env")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with _play(project, tmp_path / "play.log") as base, _browser() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        page.set_default_timeout(TIMEOUT_MS)
        watch = Watch(page, base)
        page.add_init_script(RECORD_DELTAS)
        page.goto(base + "/playground")
        expect(page.locator("#graph-info")).to_contain_text("agent")

        log = page.get_by_role("log", name="Conversation")
        message_box = page.get_by_label("Message")
        message_box.fill("what is 2 + 3")
        message_box.press("Enter")
        answer = log.locator(".msg.assistant").last
        expect(answer).to_contain_text("5")
        expect(log.locator(".run-end")).to_contain_text("done")
        final = answer.locator(".text").text_content() or ""
        partials = page.evaluate("window.__partials")
        assert any(p and p != final and final.startswith(p) for p in partials), partials
        expect(message_box).to_have_value("")

        call = log.locator(".tool").first
        expect(call.locator(".tool-name")).to_have_text("add")
        expect(call.locator(".tool-args")).to_have_text('{"a":2,"b":3}')
        expect(call.locator(".tool-result")).to_contain_text("ok")
        expect(call.locator(".tool-output")).to_have_text("5")
        timing = re.compile(r"^\d+(\.\d+)? (ms|s)$")
        expect(log.locator('.step[data-node="tools"] .step-time')).to_have_text(timing)
        expect(log.locator('.step[data-node="agent"] .step-time').first).to_have_text(timing)
        expect(page.locator("#stop")).to_be_hidden()

        assert re.search(r"#thread=[\w.:-]+$", page.url), page.url
        first_id = page.url.rsplit("#thread=", 1)[1]
        threads = page.get_by_role("navigation", name="Threads")
        expect(threads.get_by_role("button", name=re.compile("what is 2 \\+ 3"))).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "playground.png"))

        # a reload reopens the thread from the URL, with its stored history
        page.reload()
        expect(log.locator(".msg.user")).to_have_text(re.compile("what is 2 \\+ 3"))
        expect(log.locator(".msg.assistant")).to_contain_text("The add tool returned: 5")
        expect(log.locator(".tool .tool-args")).to_have_text('{"a":2,"b":3}')
        expect(log.locator(".tool .tool-result")).to_contain_text("5")
        current = threads.locator('[aria-current="true"]')
        expect(current).to_contain_text("what is 2 + 3")
        expect(current).to_contain_text("4 messages")

        # a new thread, then back to the first one
        page.get_by_role("button", name="New thread").click()
        expect(log.locator(".msg")).to_have_count(0)
        assert "#thread=" not in page.url
        expect(message_box).to_be_focused()
        message_box.fill("what time is it")
        message_box.press("Enter")
        expect(log.locator(".tool-name")).to_have_text("current_time")
        expect(log.locator(".run-end")).to_contain_text("done")
        expect(log.locator(".msg.assistant")).to_contain_text("current_time")
        second_id = page.url.rsplit("#thread=", 1)[1]
        assert second_id != first_id
        expect(threads.locator("button.thread")).to_have_count(2)

        threads.get_by_role("button", name=re.compile("what is 2 \\+ 3")).click()
        expect(page).to_have_url(re.compile("#thread=" + re.escape(first_id) + "$"))
        expect(log.locator(".msg.user")).to_have_text(re.compile("what is 2 \\+ 3"))
        expect(log.locator(".msg.assistant")).to_contain_text("5")
        expect(log).not_to_contain_text("what time is it")
        page.go_back()  # history works too
        expect(log.locator(".msg.user")).to_have_text(re.compile("what time is it"))

        page.set_viewport_size({"width": 380, "height": 760})
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the playground scrolls sideways at 380px"
        expect(threads.locator("button.thread").first).to_be_hidden()  # collapsed
        expect(message_box).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "playground-narrow.png"))
        threads.get_by_role("button", name=re.compile("^Show")).click()
        expect(threads.locator("button.thread").first).to_be_visible()
        page.emulate_media(color_scheme="dark")
        page.screenshot(path=str(ARTIFACTS / "playground-narrow-dark.png"))

        assert watch.errors == []
        assert watch.foreign == []


def _token(sub: str = "alice") -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256")


@pytest.mark.slow
def test_token_interrupt_errors_and_stop_in_the_browser(make_server: ServerFactory) -> None:
    """Auth on: the token field appears and is used; an interrupt is answered; a failing run
    shows its error; a slow run is stopped."""
    require_browser()
    from playwright.sync_api import expect

    env = {"PLAYGROUND": "1", "JWT_SECRET_KEY": JWT_SECRET}
    base = make_server(config={"auth": "jwt"}, env=env)
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        watch = Watch(page, base, allowed_statuses=(401,))
        page.goto(base + "/playground")
        token = page.get_by_label("Bearer token")
        expect(token).to_be_visible()
        expect(page.locator("#auth-note")).to_contain_text("missing_token")
        token.fill(_token())
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#graph-info")).to_contain_text("respond")
        assert page.evaluate("sessionStorage.length") == 1

        log = page.get_by_role("log", name="Conversation")
        box = page.get_by_label("Message")
        box.fill("ask")
        box.press("Enter")
        prompt = page.locator("#interrupt")
        expect(prompt).to_contain_text("are you sure?")
        expect(log.locator(".run-end")).to_contain_text("interrupted")
        page.get_by_label("Your answer").fill("yes <b>really</b>")
        page.get_by_role("button", name="Resume").click()
        expect(log.locator(".msg.assistant")).to_have_text(
            re.compile("you answered yes <b>really</b>")
        )
        expect(prompt).to_be_hidden()
        expect(log.locator("b")).to_have_count(0)  # shown as text, never parsed

        box.fill("fail")
        box.press("Enter")
        error = log.locator(".error")
        expect(error).to_contain_text("RuntimeError")
        expect(error.locator(".error-meta")).to_contain_text("run_failed")
        expect(error.locator(".error-meta code").nth(1)).to_have_text(re.compile("^[0-9a-f]{8,}$"))

        box.fill("sleep 10")
        box.press("Enter")
        stop = page.get_by_role("button", name="Stop")
        expect(stop).to_be_visible()
        expect(log.locator('.step[data-node="respond"]').last).to_have_class(re.compile("running"))
        stop.click()
        expect(log.locator(".note.stopped")).to_be_visible()
        expect(stop).to_be_hidden()
        expect(box).to_be_focused()
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "playground-auth.png"))

        # the token stays in the tab: a reload needs no new token and reopens the thread
        page.reload()
        expect(log.locator(".msg.user").first).to_have_text(re.compile("ask"))
        assert watch.errors == [], watch.errors
        assert watch.foreign == []


WORD_PAUSE = 0.1  # seconds between the streamed words of `_slow_graph`
RUN_MEMORY_KEY = "agentflow.playground.run"
# CSP violations are recorded by the page itself (they need not reach the console)
RECORD_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


def textOf(message: dict[str, Any]) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def _words(count: int) -> str:
    return " ".join(f"word{i}" for i in range(count))


def _slow_graph() -> CompiledGraph:
    """Replies `_words(n)` for the message "words n", one word every WORD_PAUSE seconds."""

    async def speak(state: AgentState) -> Message:
        count = int(state.context[-1].text.split()[1])
        reply = Message.assistant(_words(count))
        for word in reply.text.split():
            emit_delta(word + " ", message_id=reply.id)
            await asyncio.sleep(WORD_PAUSE)
        return reply

    graph = StateGraph()
    graph.add_node("speak", speak)
    graph.add_edge(START, "speak")
    graph.add_edge("speak", END)
    return graph.compile(name="slow")


@pytest.mark.slow
def test_a_reload_mid_answer_keeps_streaming_it(make_server: ServerFactory) -> None:
    """A reload while the answer streams: the page follows the run's stream_url and shows the
    rest, the whole reply once, equal to the stored one; stop works on the resumed stream."""
    require_browser()
    from playwright.sync_api import expect

    base = make_server(env={"PLAYGROUND": "1"}, graph=_slow_graph())
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        watch = Watch(page, base)
        page.add_init_script(RECORD_CSP)
        page.goto(base + "/playground")
        expect(page.locator("#graph-info")).to_contain_text("speak")

        log = page.get_by_role("log", name="Conversation")
        box = page.get_by_label("Message")
        box.fill("words 30")
        box.press("Enter")
        answer = log.locator(".msg.assistant")
        expect(answer).to_contain_text("word3 ")  # some words are shown; the run goes on
        memory = json.loads(page.evaluate(f"sessionStorage.getItem('{RUN_MEMORY_KEY}')"))
        thread_id = page.url.rsplit("#thread=", 1)[1]
        assert memory["thread_id"] == thread_id
        assert memory["stream_url"].startswith(f"/v1/threads/{thread_id}/runs/")
        assert memory["last_id"] >= 3

        page.reload()
        stop = page.get_by_role("button", name="Stop")
        expect(log.locator(".msg.user")).to_have_text(re.compile("words 30"))
        expect(log.locator(".run-end")).to_contain_text("done")
        expect(answer).to_have_count(1)
        expect(answer.locator(".text")).to_have_text(_words(30))
        expect(stop).to_be_hidden()
        assert page.evaluate(f"sessionStorage.getItem('{RUN_MEMORY_KEY}')") is None
        stored = httpx.get(f"{base}/v1/threads/{thread_id}/messages", timeout=10).json()
        assert [(m["role"], m["content"]) for m in stored["messages"]] == [
            ("user", "words 30"),
            ("assistant", _words(30)),
        ]
        shown = log.locator(".msg .text").all_text_contents()
        assert shown == ["words 30", _words(30)]

        # a reload of the second answer: stop still stops it (by the thread id)
        box.fill("words 200")
        box.press("Enter")
        expect(answer.nth(1)).to_contain_text("word2 ")
        page.reload()
        expect(answer.nth(1)).to_contain_text("word4 ")
        stop.click()
        expect(log.locator(".note.stopped")).to_be_visible()
        expect(log.locator(".run-end")).to_contain_text("cancelled")
        expect(stop).to_be_hidden()
        assert page.evaluate(f"sessionStorage.getItem('{RUN_MEMORY_KEY}')") is None
        runs = f"{base}/v1/threads/{thread_id}/runs?limit=1"
        assert httpx.get(runs, timeout=10).json()["runs"][0]["status"] == "cancelled"

        # the tab leaves mid-answer and comes back once the run has ended (its events are still
        # kept): the stored reply, shown once, replayed in order with its steps
        box.fill("words 10")
        box.press("Enter")
        expect(answer.nth(2)).to_contain_text("word1 ")
        thread_url = page.url
        page.goto("about:blank")
        deadline = time.monotonic() + 15
        while httpx.get(runs, timeout=10).json()["runs"][0]["status"] != "success":
            assert time.monotonic() < deadline, "the run did not finish"
            time.sleep(0.1)
        page.goto(thread_url)
        expect(log.locator(".run-end")).to_have_text(re.compile("^done"))
        expect(answer.last.locator(".text")).to_have_text(_words(10))
        assert page.evaluate(f"sessionStorage.getItem('{RUN_MEMORY_KEY}')") is None
        stored = httpx.get(f"{base}/v1/threads/{thread_id}/messages", timeout=10).json()
        shown = log.locator(".msg .text").all_text_contents()
        assert shown == [textOf(m) for m in stored["messages"]]
        assert shown[-2:] == ["words 10", _words(10)]

        assert watch.errors == [], watch.errors
        assert watch.foreign == []
        assert page.evaluate("window.__csp") == []


@pytest.mark.slow
def test_a_dropped_stream_is_followed_after_its_last_event_id(
    make_server: ServerFactory,
) -> None:
    """The answer's stream ends early (cut after its fifth event): the page asks stream_url
    for the events after id 5 and shows the rest, with no gap and no repeat."""
    require_browser()
    from playwright.sync_api import expect

    base = make_server(env={"PLAYGROUND": "1"}, graph=_slow_graph())
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        watch = Watch(page, base)
        page.add_init_script(RECORD_DELTAS + RECORD_CSP)
        followed: list[dict[str, str]] = []
        page.on(
            "request",
            lambda r: (
                followed.append(r.headers)
                if r.url.endswith("/stream") and r.method == "GET"
                else None
            ),
        )

        def cut(route: Any) -> None:
            response = route.fetch()  # the whole run's stream
            frames = response.text().split("\n\n")
            assert frames[4].startswith("id: 5\n"), frames[4]
            route.fulfill(
                status=200, content_type="text/event-stream", body="\n\n".join(frames[:5]) + "\n\n"
            )

        page.route(base + "/v1/graph/stream", cut)
        page.goto(base + "/playground")
        box = page.get_by_label("Message")
        box.fill("words 10")
        box.press("Enter")
        log = page.get_by_role("log", name="Conversation")
        expect(log.locator(".run-end")).to_contain_text("done")
        answer = log.locator(".msg.assistant .text")
        expect(answer).to_have_text(_words(10))
        assert len(followed) == 1 and followed[0]["last-event-id"] == "5", followed
        partials = [p for p in page.evaluate("window.__partials") if p.startswith("word")]
        assert "word0 word1 word2 " in partials, partials  # the three deltas before the cut
        assert all((_words(10) + " ").startswith(p) for p in partials), partials
        expect(log.locator(".error")).to_have_count(0)
        assert watch.errors == [], watch.errors
        assert watch.foreign == []
        assert page.evaluate("window.__csp") == []


@pytest.mark.slow
def test_a_broken_graph_is_shown_until_it_is_fixed(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    project = tmp_path / "broken"
    path = write_project(project, {"graph": "brokengraph:app"})
    (project / "brokengraph.py").write_text("app = undefined_name + 1\n")
    settings = load_settings(path, environ={}, playground=True)
    with serve_app(create_app(settings)) as base, _browser() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.set_default_timeout(TIMEOUT_MS)
        watch = Watch(page, base, allowed_statuses=(503,))
        page.goto(base + "/playground")
        banner = page.get_by_role("alert").filter(has_text="The graph failed to load")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("NameError")
        expect(banner).to_contain_text("brokengraph.py")
        page.screenshot(path=str(ARTIFACTS / "playground-broken.png"))

        # the reloader restarts the app once the file is fixed; stand in for it here
        healthy = {"status": "ok", "checks": {"graph": {"status": "ok", "name": "fixed"}}}
        page.route(
            base + "/health",
            lambda route: route.fulfill(
                status=200, content_type="application/json", body=json.dumps(healthy)
            ),
        )
        expect(banner).to_be_hidden(timeout=10_000)
        assert watch.errors == [], watch.errors
        assert watch.foreign == []


@pytest.mark.slow
def test_an_invalid_config_is_shown_in_the_page(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    from agentflow.runtime.server import stand_in_settings
    from agentflow.runtime.settings import ConfigError

    path = write_project(tmp_path / "invalid")
    path.write_text('{"graph": ')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={}, playground=True)
    settings = stand_in_settings(str(path), {"playground": True})
    with serve_app(create_app(settings, config_error=info.value)) as base, _browser() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.set_default_timeout(TIMEOUT_MS)
        watch = Watch(page, base, allowed_statuses=(503,))
        page.goto(base + "/")  # the home page leads to the playground
        banner = page.get_by_role("alert").filter(has_text="agentflow.json is invalid")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("invalid JSON at line 1")
        page.screenshot(path=str(ARTIFACTS / "playground-invalid-config.png"))
        assert watch.errors == [], watch.errors
