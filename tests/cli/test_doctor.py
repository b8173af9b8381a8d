"""`agentflow doctor`: every finding code fires on a project that has the problem and is ok on
one that does not; both output formats; exit codes; --strict, --offline, NO_COLOR; secrets
never printed. Postgres and Redis are the local servers (unreachable ones on port 1)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

import agentflow_cli.checks as checks_package
from agentflow.checkpointer.pg_schema import migrations
from agentflow.runtime import Settings
from agentflow_cli.checks import registry
from agentflow_cli.checks.environment import declared_dependencies
from agentflow_cli.main import app
from tests.cli.test_api import GRAPH
from tests.runtime.conftest import free_port

runner = CliRunner()
PG = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "doctor-Secret-value-7f3a9c1e5b2d4f6a8c0e2b4d"  # 44 bytes
PASSWORD = "hunter2-doctor-pw"
# Everything the checks read, unset, so the developer's own environment cannot leak in.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    ["MODE", "ORIGINS", "JWT_SECRET_KEY", "JWT_ALGORITHM", "JWT_PUBLIC_KEY", "JWT_JWKS_URL",
     "DATABASE_URL", "REDIS_URL", "DOCS_PATH", "REDOCS_PATH", "WEB_CONCURRENCY", "LOG_LEVEL",
     "HOST", "UVICORN_RELOAD", "RELOAD", "DEBUG", "PYTHONDEVMODE", "PYTHONASYNCIODEBUG",
     "NO_COLOR", "FORCE_COLOR", "AGENTFLOW_CONFIG", "OPENAI_API_KEY"]
)  # fmt: skip


@dataclass
class Run:
    exit_code: int
    stdout: str
    output: str  # stdout and stderr

    @property
    def doc(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data

    def finding(self, code: str) -> dict[str, str]:
        (found,) = [f for f in self.doc["findings"] if f["code"] == code]
        return dict(found)

    def skipped(self) -> dict[str, str]:
        return {s["code"]: s["reason"] for s in self.doc["skipped"]}


def doctor(project: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    full_env = {**CLEAN_ENV, "PORT": str(free_port()), **(env or {})}
    result = runner.invoke(app, ["doctor", "--config", str(project), *args], env=full_env)
    return Run(result.exit_code, result.stdout, result.output)


def make_project(root: Path, config: dict[str, Any] | str, graph: str = GRAPH) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "graph").mkdir(exist_ok=True)
    (root / "graph" / "__init__.py").write_text("")
    (root / "graph" / "react.py").write_text(graph)
    text = config if isinstance(config, str) else json.dumps(config)
    (root / "agentflow.json").write_text(text)
    return root


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def pg(*statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(PG, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def postgres_schema(stack: ExitStack, version: int | None) -> str:
    """A fresh schema whose schema_version table holds `version` (None: an empty table)."""
    name = f"doctor_{uuid.uuid4().hex[:10]}"
    statements = [
        f"CREATE SCHEMA {name}",
        f"CREATE TABLE {name}.schema_version (version integer PRIMARY KEY, applied_at float8)",
    ]
    if version is not None:
        statements.append(f"INSERT INTO {name}.schema_version VALUES ({version}, 0)")
    pg(*statements)
    stack.callback(pg, f"DROP SCHEMA IF EXISTS {name} CASCADE")
    return name


def busy_port(stack: ExitStack) -> int:
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return int(sock.getsockname()[1])


def postgres_config(schema: str, pool_max: int = 5) -> dict[str, Any]:
    return {"kind": "postgres", "dsn": "${DATABASE_URL}", "schema": schema,
            "pool": {"min": 1, "max": pool_max}}  # fmt: skip


# -- scenarios: each builds a project and runs doctor once (shared by the tests below) ----------

Scenario = Callable[[Path, ExitStack], Run]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def healthy_dev(root: Path, stack: ExitStack) -> Run:
    return doctor(make_project(root, {"graph": "graph.react:app"}), "--json")


@scenario
def healthy_production(root: Path, stack: ExitStack) -> Run:
    schema = postgres_schema(stack, len(migrations("s")))
    project = make_project(root, {
        "graph": "graph.react:app", "env": ".env", "auth": "jwt",
        "checkpointer": {**postgres_config(schema), "redis": "${REDIS_URL}"},
        "required_env": ["OPENAI_API_KEY"],
    })  # fmt: skip
    (project / ".env").write_text("OPENAI_API_KEY=sk-doctor-test\n")
    (project / ".gitignore").write_text(".env\n")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["httpx>=0.27", "PyJWT[crypto]"]\n'
    )
    git(project, "init", "-q")
    git(project, "add", ".")
    env = {"DATABASE_URL": PG, "REDIS_URL": "redis://127.0.0.1:6379/0", "JWT_SECRET_KEY": SECRET,
           "ORIGINS": "https://app.example.com", "WEB_CONCURRENCY": "2"}  # fmt: skip
    return doctor(project, "--production", "--json", env=env)


@scenario
def production_defaults(root: Path, stack: ExitStack) -> Run:
    project = make_project(root, {
        "graph": "graph.react:app", "checkpointer": "memory", "descripton": "typo",
        "limits": {"run_timout": 5}, "required_env": ["AGENTFLOW_DOCTOR_UNSET"],
    })  # fmt: skip
    (project / ".env").write_text("SOME_TOKEN=x\n")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["agentflow-doctor-missing-dist>=1"]\n'
    )
    git(project, "init", "-q")
    git(project, "add", ".env")
    env = {"MODE": "production", "ORIGINS": "*", "DOCS_PATH": "/docs", "WEB_CONCURRENCY": "3",
           "LOG_LEVEL": "DEBUG", "UVICORN_RELOAD": "true"}  # fmt: skip
    env["PORT"] = str(busy_port(stack))
    return doctor(project, "--json", env=env)


@scenario
def no_config(root: Path, stack: ExitStack) -> Run:
    root.mkdir()
    env = {**CLEAN_ENV, "AGENTFLOW_CONFIG": str(root / "agentflow.json")}
    result = runner.invoke(app, ["doctor", "--json"], env=env)
    return Run(result.exit_code, result.stdout, result.output)


@scenario
def invalid_json(root: Path, stack: ExitStack) -> Run:
    return doctor(make_project(root, '{"graph": "graph.react:app",'), "--json")


@scenario
def bad_settings(root: Path, stack: ExitStack) -> Run:
    config = {"graph": "graph.react:app", "checkpointer": "mongo"}
    return doctor(make_project(root, config), "--json")


@scenario
def graph_missing_dependency(root: Path, stack: ExitStack) -> Run:
    project = make_project(root, {"graph": "graph.react:app"}, "import not_installed_pkg\n")
    return doctor(project, "--json")


@scenario
def dotenv_missing(root: Path, stack: ExitStack) -> Run:
    config = {"graph": "graph.react:app", "env": ".env.production"}
    return doctor(make_project(root, config), "--json", "--production")


@scenario
def dotenv_missing_in_development(root: Path, stack: ExitStack) -> Run:
    config = {"graph": "graph.react:app", "env": ".env"}
    return doctor(make_project(root, config), "--json")


@scenario
def unset_reference(root: Path, stack: ExitStack) -> Run:
    config = {"graph": "graph.react:app",
              "checkpointer": {"kind": "postgres", "dsn": "${AGENTFLOW_DOCTOR_DSN}"}}  # fmt: skip
    return doctor(make_project(root, config), "--json")


@scenario
def bad_mode(root: Path, stack: ExitStack) -> Run:
    return doctor(make_project(root, {"graph": "graph.react:app"}), "--json", env={"MODE": "prod"})


@scenario
def short_secret_production(root: Path, stack: ExitStack) -> Run:
    project = make_project(root, {"graph": "graph.react:app", "auth": "jwt"})
    return doctor(project, "--production", "--json", env={"JWT_SECRET_KEY": "short-secret"})


@scenario
def short_secret_dev(root: Path, stack: ExitStack) -> Run:
    project = make_project(root, {"graph": "graph.react:app", "auth": "jwt"})
    return doctor(project, "--json", env={"JWT_SECRET_KEY": "short-secret"})


@scenario
def bad_algorithm(root: Path, stack: ExitStack) -> Run:
    project = make_project(root, {"graph": "graph.react:app", "auth": "jwt"})
    return doctor(project, "--json", env={"JWT_SECRET_KEY": SECRET, "JWT_ALGORITHM": "none"})


@scenario
def sqlite_unwritable(root: Path, stack: ExitStack) -> Run:
    config = {
        "graph": "graph.react:app",
        "checkpointer": {"kind": "sqlite", "path": "blocker/x.db"},
    }
    project = make_project(root, config)
    (project / "blocker").write_text("a file where the directory should be")
    return doctor(project, "--json")


@scenario
def postgres_trouble(root: Path, stack: ExitStack) -> Run:
    schema = postgres_schema(stack, 99)
    config = {"graph": "graph.react:app", "checkpointer": postgres_config(schema, pool_max=60)}
    project = make_project(root, config)
    env = {"DATABASE_URL": PG, "REDIS_URL": "redis://127.0.0.1:1/0", "WEB_CONCURRENCY": "2"}
    return doctor(project, "--json", env=env)


@scenario
def schema_older(root: Path, stack: ExitStack) -> Run:
    schema = postgres_schema(stack, None)
    config = {"graph": "graph.react:app", "checkpointer": postgres_config(schema)}
    return doctor(make_project(root, config), "--json", env={"DATABASE_URL": PG})


@scenario
def postgres_down(root: Path, stack: ExitStack) -> Run:
    config = {"graph": "graph.react:app", "checkpointer": "postgres"}
    env = {"DATABASE_URL": f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test"}
    return doctor(make_project(root, config), "--json", env=env)


# An offline model, and a count of the graph's imports (doctor imports it once, in the probe).
OFFLINE_GRAPH = """
from pathlib import Path
from agentflow.models import DemoChat
from agentflow.tools import create_react_agent

with (Path(__file__).parent / "imports.log").open("a") as log:
    log.write("imported\\n")
app = create_react_agent(DemoChat(), [])
"""


@scenario
def offline_model_production(root: Path, stack: ExitStack) -> Run:
    project = make_project(root, {"graph": "graph.react:app"}, OFFLINE_GRAPH)
    return doctor(project, "--production", "--json")


class Runs:
    def __init__(self, root: Path, stack: ExitStack) -> None:
        self.root, self.stack, self.done = root, stack, dict[str, Run]()

    def __getitem__(self, name: str) -> Run:
        if name not in self.done:
            self.done[name] = SCENARIOS[name](self.root / name, self.stack)
        return self.done[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    with ExitStack() as stack:
        yield Runs(tmp_path_factory.mktemp("doctor"), stack)


# (code, scenario, severity, words in the detail)
TRIGGERS = [
    ("AF-CONFIG-001", "no_config", "error", "no configuration file"),
    ("AF-CONFIG-002", "invalid_json", "error", "invalid JSON at line 1"),
    ("AF-CONFIG-003", "production_defaults", "error", "(did you mean 'description'?)"),
    ("AF-CONFIG-003", "production_defaults", "error", "(did you mean 'run_timeout'?)"),
    ("AF-CONFIG-004", "bad_settings", "error", "unknown checkpointer 'mongo'"),
    ("AF-GRAPH-001", "graph_missing_dependency", "error", "'not_installed_pkg', which is not"),
    ("AF-GRAPH-002", "offline_model_production", "error",
     "offline model in production (DemoChat 'demo')"),
    ("AF-ENV-001", "dotenv_missing", "error", "'.env.production' named by agentflow.json"),
    ("AF-ENV-001", "dotenv_missing_in_development", "warning", "development runs without it"),
    ("AF-ENV-001", "production_defaults", "warning", 'no "env" key'),
    ("AF-ENV-002", "production_defaults", "error", "not set: AGENTFLOW_DOCTOR_UNSET"),
    ("AF-ENV-003", "unset_reference", "error", "checkpointer.dsn -> ${AGENTFLOW_DOCTOR_DSN}"),
    ("AF-ENV-004", "bad_mode", "error", "MODE is set to something other than"),
    ("AF-ENV-006", "production_defaults", "error", "agentflow-doctor-missing-dist"),
    ("AF-SEC-001", "production_defaults", "error", "ORIGINS=* lets any website"),
    ("AF-SEC-002", "production_defaults", "warning", "DOCS_PATH is set"),
    ("AF-SEC-003", "production_defaults", "error", "no authentication"),
    ("AF-SEC-004", "short_secret_production", "error", "12 bytes; production needs at least 32"),
    ("AF-SEC-004", "short_secret_dev", "warning", "production refuses"),
    ("AF-SEC-004", "bad_algorithm", "error", "unsupported JWT algorithm 'NONE'"),
    ("AF-SEC-005", "production_defaults", "error", "secrets committed: .env"),
    ("AF-PERSIST-001", "production_defaults", "error", "threads vanish"),
    ("AF-PERSIST-002", "production_defaults", "error", "3 workers cannot share the memory"),
    ("AF-PERSIST-003", "sqlite_unwritable", "error", "is not a directory"),
    ("AF-PERSIST-004", "postgres_trouble", "error", "version 99, newer than this agentflow knows"),
    ("AF-PERSIST-004", "schema_older", "warning", "will be migrated at startup"),
    ("AF-PERSIST-005", "postgres_trouble", "error", "2 workers x pool max 60 = 120 connections"),
    ("AF-NET-001", "postgres_down", "error", "cannot connect to Postgres at 127.0.0.1:1/test"),
    ("AF-NET-002", "postgres_trouble", "warning", "Redis at 127.0.0.1:1/0 is not reachable"),
    ("AF-RUNTIME-001", "production_defaults", "warning", "LOG_LEVEL=DEBUG in production"),
    ("AF-RUNTIME-002", "production_defaults", "warning", "UVICORN_RELOAD set in production"),
    ("AF-RUNTIME-003", "production_defaults", "warning", "is already in use"),
]  # fmt: skip
ALL_CODES = sorted({check.code for check in registry()})


def test_every_code_is_documented_and_has_a_trigger() -> None:
    assert checks_package.__doc__ is not None
    assert sorted(re.findall(r"AF-[A-Z]+-\d{3}", checks_package.__doc__)) == ALL_CODES
    assert {code for code, *_ in TRIGGERS} | {"AF-ENV-005"} == set(ALL_CODES)  # 005: below


@pytest.mark.parametrize(("code", "name", "severity", "words"), TRIGGERS)
def test_each_code_fires_on_a_project_with_the_problem(
    runs: Runs, code: str, name: str, severity: str, words: str
) -> None:
    run = runs[name]
    finding = run.finding(code)
    assert (finding["severity"], finding["category"]) == (severity, code_category(code))
    assert words in finding["detail"]
    assert finding["fix"] and finding["title"]
    assert run.exit_code == (1 if run.doc["summary"]["errors"] else 0)
    assert "Traceback" not in run.output


def code_category(code: str) -> str:
    (check,) = [c for c in registry() if c.code == code]
    return check.category


@pytest.mark.parametrize("code", ALL_CODES)
def test_each_code_is_ok_on_a_healthy_project(runs: Runs, code: str) -> None:
    run = runs["healthy_dev" if code == "AF-PERSIST-003" else "healthy_production"]
    assert run.finding(code)["severity"] == "ok"


def test_healthy_projects_pass_even_with_strict(runs: Runs) -> None:
    for name in ("healthy_dev", "healthy_production"):
        summary = runs[name].doc["summary"]
        assert (summary["errors"], summary["warnings"], runs[name].exit_code) == (0, 0, 0)
    production = runs["healthy_production"].doc
    assert production["mode"] == "production" and production["skipped"] == []
    assert runs["healthy_dev"].skipped()["AF-SEC-001"].startswith("production only")


def test_json_document_shape(runs: Runs) -> None:
    doc = runs["production_defaults"].doc
    assert list(doc) == ["version", "project", "config", "mode", "findings", "skipped", "summary"]
    assert doc["version"] == 1 and doc["mode"] == "production"
    assert doc["project"] == str((runs.root / "production_defaults").resolve())
    for finding in doc["findings"]:
        assert list(finding) == ["code", "category", "severity", "title", "detail", "fix"]
    summary = doc["summary"]
    counts = [sum(f["severity"] == s for f in doc["findings"]) for s in ("error", "warning", "ok")]
    assert [summary["errors"], summary["warnings"], summary["ok"]] == counts
    assert summary["exit_code"] == runs["production_defaults"].exit_code == 1


def test_settings_errors_are_reported_once_by_the_specific_check(runs: Runs) -> None:
    assert runs["dotenv_missing"].skipped()["AF-CONFIG-004"].endswith("see AF-ENV-001")
    assert runs["unset_reference"].skipped()["AF-CONFIG-004"].endswith("see AF-ENV-003")
    assert runs["short_secret_production"].skipped()["AF-CONFIG-004"].endswith("see AF-SEC-004")
    assert "AF-PERSIST-001" in runs["bad_settings"].skipped()  # needs loaded settings


def test_unreachable_postgres_skips_what_needs_a_connection(runs: Runs) -> None:
    skipped = runs["postgres_down"].skipped()
    assert skipped["AF-PERSIST-004"] == skipped["AF-PERSIST-005"]
    assert "see AF-NET-001" in skipped["AF-PERSIST-004"]


@pytest.mark.parametrize(
    ("graph", "words"),
    [
        ("raise KeyError('OPENAI_API_KEY')\n", "KeyError: 'OPENAI_API_KEY' (graph/react.py:1)"),
        ("x = 1\n", "has no attribute 'app'"),
        ("from agentflow.graph import StateGraph\napp = StateGraph()\n", "never compiled"),
        ("import os\nos._exit(3)\n", "crashed the interpreter (exit code 3)"),
        ("import time\ntime.sleep(30)\n", "did not finish within 1 s"),
    ],
)  # fmt: skip
def test_graph_import_problems_name_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: str, words: str
) -> None:
    monkeypatch.setattr("agentflow_cli.checks.graph.PROBE_TIMEOUT", 1.0)
    run = doctor(make_project(tmp_path, {"graph": "graph.react:app"}, graph), "--json")
    finding = run.finding("AF-GRAPH-001")
    assert finding["severity"] == "error" and run.exit_code == 1
    assert words in finding["detail"]
    assert "Traceback" not in run.output


def test_old_python_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agentflow_cli.checks.environment.MIN_PYTHON", (99, 0))
    run = doctor(make_project(tmp_path, {"graph": "graph.react:app"}), "--json")
    finding = run.finding("AF-ENV-005")
    assert finding["severity"] == "error" and "agentflow needs 99.0 or newer" in finding["detail"]


def test_dependencies_come_from_pyproject_or_requirements(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# comment\n-r other.txt\nhttpx[http2]>=0.27  # inline\nPyJWT==2.*\n"
        'tomli; python_version < "3.11"\ngit+https://example.com/x.git#egg=x\n\n'
        "wheel-pkg @ https://example.com/wheel_pkg-1.0-py3-none-any.whl\n"
    )
    names = ["httpx", "PyJWT", "wheel-pkg"]
    assert declared_dependencies(tmp_path) == ("requirements.txt", names)
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["rich>=13"]\n')
    assert declared_dependencies(tmp_path) == ("pyproject.toml", ["rich"])


def test_human_output_groups_rows_and_ends_with_the_summary(runs: Runs) -> None:
    project = runs.root / "production_defaults"
    result = runner.invoke(app, ["doctor", "--config", str(project), "--offline"],
                           env={**CLEAN_ENV, "MODE": "production", "ORIGINS": "*",
                                "PORT": str(free_port())})  # fmt: skip
    out = result.stdout
    assert result.exit_code == 1
    headings = [line for line in out.splitlines() if line in ("config", "graph", "security")]
    assert headings == ["config", "graph", "security"]
    assert "  ✗ AF-SEC-001 CORS origins: ORIGINS=* lets any website" in out
    assert "      fix: list your frontend origins instead" in out
    assert "  ✓ AF-CONFIG-001 agentflow.json found" in out
    assert "  ✗ AF-CONFIG-003 known keys" in out
    errors, warnings = (len(re.findall(rf"^  {mark} ", out, re.M)) for mark in "✗!")
    assert (errors, warnings) == (7, 1)
    assert out.endswith("\n\n7 errors, 1 warning, 13 ok, 4 skipped\n")


@pytest.mark.parametrize(("no_color", "escapes"), [("1", False), (None, True)])
def test_no_color_means_no_escape_codes(runs: Runs, no_color: str | None, escapes: bool) -> None:
    project = runs.root / "healthy_dev"
    env = {**CLEAN_ENV, "FORCE_COLOR": "1", "NO_COLOR": no_color}
    result = runner.invoke(app, ["doctor", "--config", str(project)], env=env)
    assert result.exit_code == 0
    assert ("\x1b[" in result.stdout) is escapes


def test_exit_codes_strict_and_usage_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"graph": "graph.react:app", "env": ".env"})
    assert doctor(project).exit_code == 0  # a warning only: no .env yet
    strict = doctor(project, "--strict", "--json")
    assert strict.exit_code == 1 and strict.doc["summary"]["exit_code"] == 1
    config = {"graph": "graph.react:app", "checkpionter": "sqlite"}
    typo = doctor(make_project(tmp_path / "typo", config), "--json")  # an unknown key: an error
    assert typo.exit_code == 1
    assert "did you mean 'checkpointer'?" in typo.finding("AF-CONFIG-003")["detail"]
    missing = doctor(tmp_path / "nope.json")
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert doctor(project, "--bogus").exit_code == 2


def test_offline_skips_every_service_check(runs: Runs, tmp_path: Path) -> None:
    config = {"graph": "graph.react:app", "checkpointer": "postgres"}
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test",
           "REDIS_URL": "redis://127.0.0.1:1/0"}  # fmt: skip
    run = doctor(make_project(tmp_path, config), "--offline", "--json", env=env)
    assert run.exit_code == 0, run.doc
    network = {c.code for c in registry() if c.network}
    assert network == {"AF-NET-001", "AF-NET-002", "AF-PERSIST-004", "AF-PERSIST-005"}
    assert {code: run.skipped()[code] for code in network} == dict.fromkeys(
        network, "--offline: connects to a service"
    )
    assert not network & {f["code"] for f in run.doc["findings"]}


SECRET_GRAPH = "import os\nraise RuntimeError('bad key ' + os.environ['JWT_SECRET_KEY'])\n"


@pytest.mark.parametrize("json_output", [True, False])
def test_secrets_are_never_printed(tmp_path: Path, json_output: bool) -> None:
    config = {"graph": "graph.react:app", "auth": "jwt", "checkpointer": "postgres",
              "required_env": ["JWT_SECRET_KEY"]}  # fmt: skip
    project = make_project(tmp_path, config, SECRET_GRAPH)
    env = {"JWT_SECRET_KEY": SECRET, "DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:1/x",
           "MODE": "production", "ORIGINS": "*"}  # fmt: skip
    run = doctor(project, *(["--json"] if json_output else []), env=env)
    assert run.exit_code == 1
    assert "raised RuntimeError: bad key [REDACTED]" in " ".join(run.output.split())
    assert SECRET not in run.output and PASSWORD not in run.output


@pytest.fixture
def fresh_imports() -> Iterator[None]:
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name in [m for m in sys.modules if m == "graph" or m.startswith("graph.")]:
        del sys.modules[name]


def test_api_refuses_to_start_on_every_blocking_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_imports: None
) -> None:
    served: list[Settings] = []
    monkeypatch.setattr("agentflow.runtime.serve", lambda settings, **_: served.append(settings))
    config = {"graph": "graph.react:app", "required_env": ["AGENTFLOW_DOCTOR_UNSET"]}
    project = make_project(tmp_path, config, "import os\nos.environ['AGENTFLOW_DOCTOR_UNSET']\n")
    result = runner.invoke(app, ["api", "--config", str(project)], env=CLEAN_ENV)
    assert result.exit_code == 3 and served == []
    output = " ".join(result.output.split())
    assert "not set: AGENTFLOW_DOCTOR_UNSET [AF-ENV-002]" in output
    assert (
        "needs the environment variable AGENTFLOW_DOCTOR_UNSET, which is not set "
        "(graph/react.py:2) [AF-GRAPH-001]"
    ) in output


def test_doctor_finds_the_project_from_a_subdirectory(tmp_path: Path) -> None:
    project = make_project(tmp_path / "my-agent", {"graph": "graph.react:app"})
    deep = project / "graph" / "nested"
    deep.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "agentflow_cli", "doctor", "--json", "--offline"],
        cwd=deep, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    doc = json.loads(done.stdout)
    found = next(f for f in doc["findings"] if f["code"] == "AF-CONFIG-001")
    assert found["severity"] == "ok"
    assert str(project / "agentflow.json") in found["detail"]


def test_the_offline_model_finding_and_a_single_import_of_the_graph(runs: Runs) -> None:
    run = runs["offline_model_production"]
    finding = run.finding("AF-GRAPH-002")
    assert "OPENAI_API_KEY" in finding["fix"]
    assert run.finding("AF-GRAPH-001")["severity"] == "ok"
    log = runs.root / "offline_model_production" / "graph" / "imports.log"
    assert log.read_text().splitlines() == ["imported"]  # one probe for both findings
    skipped = runs["graph_missing_dependency"].skipped()
    assert skipped["AF-GRAPH-002"] == "the graph does not import: see AF-GRAPH-001"


def test_the_model_a_template_picks_from_the_environment_is_reported(tmp_path: Path) -> None:
    """A react project on the offline model is fine for development, an error for production
    until OPENAI_API_KEY makes it pick a real model."""
    project = tmp_path / "agent"
    made = runner.invoke(app, ["init", str(project), "--template", "react", "--yes"])
    assert made.exit_code == 0, made.output
    development = doctor(project, "--json").finding("AF-GRAPH-002")
    assert development["severity"] == "ok"
    assert development["detail"] == (
        "the graph answers with DemoChat 'demo' (offline): fine for development, an error in "
        "production"
    )
    assert doctor(project, "--json", "--production").finding("AF-GRAPH-002")["severity"] == (
        "error"
    )
    key = {"OPENAI_API_KEY": "sk-doctor-model-0123456789"}
    real = doctor(project, "--json", "--production", env=key).finding("AF-GRAPH-002")
    assert real["severity"] == "ok"
    assert real["detail"] == "the graph answers with OpenAIChat 'gpt-4o-mini-2024-07-18'"
