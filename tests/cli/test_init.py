"""`agentflow init`: every template renders into a project that passes its own tests and
serves; the command never prompts without a TTY, never overwrites without --force and never
deletes anything."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path, PurePosixPath

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from agentflow import __version__
from agentflow.utils import mask_secrets
from agentflow_cli.init import agentflow_requirement, suggested_name
from agentflow_cli.main import app
from agentflow_cli.output import CliError
from agentflow_cli.render import list_files, render_text
from tests.checkpointer.conftest import PG_DSN, REDIS_URL, drop_schema, require_postgres
from tests.runtime.conftest import free_port

runner = CliRunner()
TEMPLATES = ["react", "minimal", "production"]
MAJOR, MINOR = (int(part) for part in __version__.split(".")[:2])
REQUIREMENT = f"agentflow-runner>={MAJOR}.{MINOR},<{MAJOR}.{MINOR + 1}"
WHEEL = f"wheels/agentflow_runner-{__version__}-py3-none-any.whl"
SCHEMA = "./agentflow.schema.json"  # written next to it, for editors
COMMON = [
    ".env.example", ".gitignore", "README.md", "agentflow.json", "agentflow.schema.json",
    "graph/__init__.py",
    "pyproject.toml", "tests/conftest.py", "tests/test_graph.py", WHEEL,
]  # fmt: skip
FILES = {
    "react": [*COMMON, "graph/react.py", "graph/tools.py"],
    "minimal": [*COMMON, "graph/agent.py"],
    "production": [*COMMON, "graph/react.py", "graph/tools.py", "tests/test_config.py"],
}
CONFIGS = {
    "react": {"$schema": SCHEMA, "name": "react-agent", "graph": "graph.react:app", "env": ".env",
              "checkpointer": "sqlite"},
    "minimal": {"$schema": SCHEMA, "name": "minimal-agent", "graph": "graph.agent:app",
                "env": ".env", "checkpointer": "sqlite"},
    "production": {
        "$schema": SCHEMA,
        "name": "production-agent",
        "graph": "graph.react:app",
        "checkpointer": {"kind": "postgres", "dsn": "${DATABASE_URL}", "redis": "${REDIS_URL}"},
        "auth": "jwt",
        "required_env": ["JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"],
        "origins": ["https://app.example.com"],
        "limits": {"max_body_bytes": 1048576, "run_timeout": 120, "recursion_limit": 25},
    },
}  # fmt: skip


def init(*args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["init", *args], input=input, env={"NO_COLOR": "1"})
    return result.exit_code, " ".join(result.output.split())


def files_in(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Each template rendered once by the real command: its directory and the output."""
    root = tmp_path_factory.mktemp("rendered")
    projects = {}
    for template in TEMPLATES:
        target = root / template
        code, output = init(str(target), "--template", template, "--name", f"{template}-agent")
        assert code == 0, output
        projects[template] = (target, output)
    return projects


def make(tmp_path: Path, template: str) -> Path:
    target = tmp_path / template
    code, output = init(str(target), "-t", template, "-y")
    assert code == 0, output
    return target


# -- what gets rendered ------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_a_complete_project(
    rendered: dict[str, tuple[Path, str]], template: str
) -> None:
    project, output = rendered[template]
    assert files_in(project) == sorted(FILES[template])
    assert json.loads((project / "agentflow.json").read_text()) == CONFIGS[template]
    pyproject = (project / "pyproject.toml").read_text()
    assert f'dependencies = ["{REQUIREMENT}"]' in pyproject
    assert f'name = "{template}-agent"' in pyproject
    for expected in ('test = ["pytest>=8", "pytest-asyncio>=0.24"]', 'pythonpath = ["."]',
                     'asyncio_mode = "auto"'):  # fmt: skip
        assert expected in pyproject
    for path in project.rglob("*"):
        if path.is_file() and path.suffix != ".whl":
            text = path.read_text()
            assert not re.search(r"\{\{|\{%|\{#", text), f"unrendered Jinja in {path}"
    gitignore = (project / ".gitignore").read_text().split()
    assert {".env", ".venv/", "__pycache__/", ".agentflow/"} <= set(gitignore)
    readme = (project / "README.md").read_text()
    assert readme.startswith(f"# {template}-agent\n")
    assert "pytest" in readme and "agentflow api" in readme
    assert f"pip install {WHEEL}" in readme
    steps = [f"cd {project}", "python -m venv .venv && . .venv/bin/activate",
             f"pip install {WHEEL}", 'pip install -e ".[test]"', "pytest", "agentflow doctor",
             "agentflow api"]  # fmt: skip
    if template == "production":  # its settings come from the environment
        steps[-2:] = ["cp .env.example .env", "set -a; . ./.env; set +a",
                      "agentflow doctor --production", "agentflow api --workers 2"]  # fmt: skip
    else:  # the playground first: it needs nothing else
        steps.insert(1, "agentflow play")
        assert "cp .env.example .env, then set OPENAI_API_KEY" in output
    positions = [output.find(f" {step} ") for step in steps]
    order = dict(zip(steps, positions, strict=True))
    assert -1 not in positions and positions == sorted(positions), order


@pytest.mark.parametrize("template", TEMPLATES)
def test_env_example_names_variables_without_secrets(
    rendered: dict[str, tuple[Path, str]], template: str
) -> None:
    text = (rendered[template][0] / ".env.example").read_text()
    assert mask_secrets(text) == text
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert values["OPENAI_API_KEY"] == ""
    assert values["OPENAI_MODEL"] and not values["OPENAI_MODEL"].endswith("latest")
    if template == "production":
        assert values["MODE"] == "production"
        assert values["ORIGINS"] == "https://app.example.com"
        for secret in ("JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
            assert values[secret] == ""


@pytest.mark.parametrize("template", TEMPLATES)
def test_generated_projects_pass_their_own_tests_and_lint(
    rendered: dict[str, tuple[Path, str]], template: str
) -> None:
    project = rendered[template][0]
    env = {**os.environ, "PYTHONPATH": "", "NO_COLOR": "1"}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"\d+ passed", tests.stdout)
    assert "warning" not in tests.stdout.lower()
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select",
         "E,F,W,I,B,UP,SIM,RUF,ASYNC", "."],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatting = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert formatting.returncode == 0, formatting.stdout + formatting.stderr


# -- serving --------------------------------------------------------------------------------


def serve(project: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow_cli", "api", "--config",
         str(project / "agentflow.json"), "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/ping", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the server did not come up:\n{proc.communicate(timeout=10)[0]}")


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, expect a clean exit, return everything it printed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate(timeout=10)[0]
    assert code == 0, output
    assert "Traceback" not in output
    return output


def server_env(**extra: str) -> dict[str, str]:
    """This environment without what would change the project's behaviour, plus `extra`."""
    unwanted = {"OPENAI_API_KEY", "MODE", "ORIGINS", "JWT_SECRET_KEY", "DATABASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in unwanted}
    return {**env, "NO_COLOR": "1", **extra}


ASK_ADD = {"messages": [{"role": "user", "content": "what is 12 + 30"}], "thread_id": "t1"}


@pytest.mark.parametrize(
    ("template", "answer"),
    [("react", "The add tool returned: 42"), ("minimal", "offline demo model")],
)
def test_a_development_project_serves_on_sqlite_after_the_next_steps(
    tmp_path: Path, template: str, answer: str
) -> None:
    project = make(tmp_path, template)  # no .env: the demo model needs none
    proc, base = serve(project, server_env())
    try:
        reply = httpx.post(base + "/v1/graph/invoke", json=ASK_ADD, timeout=30)
        assert reply.status_code == 200, reply.text
        assert answer in reply.json()["messages"][-1]["content"]
    finally:
        output = stop(proc)
    assert output.count("the dotenv file '.env' does not exist") == 1  # said once, no error
    assert (project / ".agentflow" / "state.db").is_file()


def test_the_production_project_serves_with_postgres_redis_and_jwt(tmp_path: Path) -> None:
    require_postgres()
    project = make(tmp_path, "production")
    schema = "t_init_" + uuid.uuid4().hex[:12]  # never the shared default `agentflow` schema
    config = json.loads((project / "agentflow.json").read_text())
    config["checkpointer"]["schema"] = schema
    (project / "agentflow.json").write_text(json.dumps(config))
    secret = "0123456789abcdef" * 4
    env = server_env(
        MODE="production", DATABASE_URL=PG_DSN, REDIS_URL=REDIS_URL, JWT_SECRET_KEY=secret
    )
    try:
        proc, base = serve(project, env)
        try:
            anonymous = httpx.post(base + "/v1/graph/invoke", json=ASK_ADD, timeout=30)
            assert anonymous.status_code == 401
            token = jwt.encode(
                {"sub": "alice", "exp": int(time.time()) + 300}, secret, algorithm="HS256"
            )
            reply = httpx.post(
                base + "/v1/graph/invoke", json=ASK_ADD, timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            assert reply.status_code == 200, reply.text
            assert reply.json()["messages"][-1]["content"] == "The add tool returned: 42"
            assert httpx.get(base + "/docs", timeout=10).status_code == 404
        finally:
            stop(proc)
    finally:
        asyncio.run(drop_schema(f"{PG_DSN}?agentflow_schema={schema}"))


# -- the command's rules -------------------------------------------------------------------


def test_a_non_empty_directory_is_refused_with_the_conflicts(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    (tmp_path / "notes.txt").write_text("keep\n")
    code, output = init(str(tmp_path), "--yes")
    assert code == 1
    assert "is not empty" in output
    assert "would overwrite: README.md" in output
    assert "--force" in output
    assert files_in(tmp_path) == ["README.md", "notes.txt"]
    assert (tmp_path / "README.md").read_text() == "mine\n"


def test_a_non_empty_directory_without_conflicts_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep\n")
    code, output = init(str(tmp_path), "--yes")
    assert code == 1
    assert "is not empty; it holds 1 entry (notes.txt)" in output
    assert files_in(tmp_path) == ["notes.txt"]


def test_force_overwrites_only_the_templates_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "extra.py").write_text("KEEP = 1\n")
    (tmp_path / "notes.txt").write_text("keep\n")
    code, output = init(str(tmp_path), "--yes", "--force", "--name", "forced")
    assert code == 0, output
    assert "Overwrote (--force): README.md" in output
    assert (tmp_path / "README.md").read_text().startswith("# forced\n")
    assert (tmp_path / "notes.txt").read_text() == "keep\n"
    assert (tmp_path / "graph" / "extra.py").read_text() == "KEEP = 1\n"
    assert set(FILES["react"]) < set(files_in(tmp_path))


def test_without_a_tty_defaults_are_used_and_nothing_is_asked(tmp_path: Path) -> None:
    target = tmp_path / "quiet-bot"
    code, output = init(str(target), input="")  # CliRunner's stdin is not a TTY
    assert code == 0, output
    assert "Project name" not in output and "Template" not in output
    assert json.loads((target / "agentflow.json").read_text())["name"] == "quiet-bot"
    assert files_in(target) == sorted(FILES["react"])


def test_yes_never_prompts_even_on_a_tty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agentflow_cli.init._stdin_is_tty", lambda: True)
    code, output = init(str(tmp_path / "p"), "--yes", input="")
    assert code == 0, output
    assert "Project name" not in output


def test_a_tty_is_asked_for_the_name_and_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agentflow_cli.init._stdin_is_tty", lambda: True)
    target = tmp_path / "proj"
    code, output = init(str(target), input="bad name!\nmy-bot\nnope\nminimal\n")
    assert code == 0, output
    assert "Project name [proj]:" in output
    assert "invalid project name 'bad name!'" in output
    assert "minimal" in output and "production" in output  # the templates are listed
    config = json.loads((target / "agentflow.json").read_text())
    assert (config["name"], config["graph"]) == ("my-bot", "graph.agent:app")


def test_a_tty_takes_the_defaults_on_enter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agentflow_cli.init._stdin_is_tty", lambda: True)
    code, output = init(str(tmp_path / "enter-bot"), input="\n\n")
    assert code == 0, output
    config = json.loads((tmp_path / "enter-bot" / "agentflow.json").read_text())
    assert (config["name"], config["graph"]) == ("enter-bot", "graph.react:app")


def test_an_unknown_template_is_a_usage_error_listing_the_templates(tmp_path: Path) -> None:
    code, output = init(str(tmp_path / "p"), "--template", "langchain", "--yes")
    assert code == 2
    assert "unknown template 'langchain'" in output
    assert "react, langgraph, minimal, production" in output
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("name", ["my agent", "1st", "a/b", "-x", "x" * 65])
def test_a_bad_name_is_a_usage_error(tmp_path: Path, name: str) -> None:
    code, output = init(str(tmp_path / "p"), "--name", name, "--yes")
    assert code == 2
    assert "invalid project name" in output and "letters, digits, '-' and '_'" in output
    assert not (tmp_path / "p").exists()


def test_a_file_is_not_a_project_directory(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    code, output = init(str(tmp_path / "taken"), "--yes")
    assert code == 1
    assert "is a file, not a directory" in output


def test_a_git_checkout_counts_as_empty(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    code, output = init(str(tmp_path), "--yes", "--name", "repo")
    assert code == 0, output
    assert (tmp_path / "agentflow.json").is_file()


# -- the pieces ------------------------------------------------------------------------------


def test_the_dependency_range_is_this_minor_series() -> None:
    assert agentflow_requirement() == REQUIREMENT
    assert agentflow_requirement("1.4.2") == "agentflow-runner>=1.4,<1.5"
    assert agentflow_requirement("0.10.0.dev1") == "agentflow-runner>=0.10,<0.11"


@pytest.mark.parametrize("directory", ["9lives", "My Project.v2", "123"])
def test_a_directory_name_that_is_no_valid_name_is_refused_with_the_rule(
    tmp_path: Path, directory: str
) -> None:
    code, output = init(str(tmp_path / directory), "--yes")
    assert code == 2
    assert f"the directory name {directory!r} is not a valid project name" in output
    assert "letters, digits, '-' and '_' (at most 64), starting with a letter" in output
    assert f"--name {suggested_name(directory)}" in output
    assert not (tmp_path / directory).exists()


def test_a_directory_name_is_kept_or_replaced_only_by_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert suggested_name("9lives") == "agent-9lives"  # never "lives"
    assert suggested_name("My Project.v2") == "My-Project-v2"
    code, output = init(str(tmp_path / "9lives"), "--yes", "--name", "nine-lives")
    assert code == 0, output
    assert json.loads((tmp_path / "9lives" / "agentflow.json").read_text())["name"] == "nine-lives"
    monkeypatch.setattr("agentflow_cli.init._stdin_is_tty", lambda: True)
    code, output = init(str(tmp_path / "1st"), input="\n\n")  # a TTY shows the name offered
    assert code == 0, output
    assert "Project name [agent-1st]:" in output
    assert json.loads((tmp_path / "1st" / "agentflow.json").read_text())["name"] == "agent-1st"


WEATHER = """
import os

WEATHER_API_KEY = os.environ["WEATHER_API_KEY"]  # read at import, as many graphs do
"""


def test_the_project_tests_load_the_projects_dotenv_file(tmp_path: Path) -> None:
    project = make(tmp_path, "react")
    (project / "graph" / "weather.py").write_text(WEATHER)
    (project / "tests" / "test_weather.py").write_text(
        "from graph.weather import WEATHER_API_KEY\n\n\n"
        "def test_the_key_comes_from_the_dotenv_file() -> None:\n"
        '    assert WEATHER_API_KEY == "from-dotenv"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "WEATHER_API_KEY"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_weather.py",
    ]

    def pytest_run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=project, env={**env, "PYTHONPATH": ""},
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    missing = pytest_run()
    assert missing.returncode != 0 and "KeyError: 'WEATHER_API_KEY'" in missing.stdout
    (project / ".env").write_text("WEATHER_API_KEY=from-dotenv\n")
    found = pytest_run()
    assert found.returncode == 0, found.stdout + found.stderr


def test_rendering_is_strict_and_sandboxed() -> None:
    assert render_text("{{ name }}\n", {"name": "x"}, origin="t") == "x\n"
    with pytest.raises(CliError, match=r"t\.jinja:1 cannot be rendered: 'nme' is undefined"):
        render_text("{{ nme }}", {"name": "x"}, origin="t.jinja")
    with pytest.raises(CliError, match="unsafe"):
        render_text("{{ ''.__class__.__mro__ }}", {}, origin="t.jinja")


def test_layered_templates_render_jinja_files_and_skip_the_manifest(tmp_path: Path) -> None:
    base, child = tmp_path / "base", tmp_path / "child"
    for root, text in ((base, "base"), (child, "child")):
        (root / "graph" / "__pycache__").mkdir(parents=True)
        (root / "graph" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
        (root / "README.md.jinja").write_text(text)
        (root / "template.json").write_text("{}")
    (base / "only_base.txt").write_text("{{ not rendered }}")
    files = list_files([base, child])
    assert list(files) == [PurePosixPath("README.md"), PurePosixPath("only_base.txt")]
    assert files[PurePosixPath("README.md")].source == child / "README.md.jinja"
    assert files[PurePosixPath("README.md")].rendered
    assert not files[PurePosixPath("only_base.txt")].rendered
