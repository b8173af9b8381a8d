"""`agentflow build`: the files each template gets, their structure, no secret in any of
them, the refusals, and a boot test that runs the image's command with the compose file's
environment against the local Postgres and Redis (no Docker engine needed)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from typer.testing import CliRunner

from agentflow import __version__
from agentflow.utils import mask_secrets
from agentflow_cli.init import agentflow_requirement, create_project
from agentflow_cli.main import app
from tests.cli.test_doctor import CLEAN_ENV
from tests.faults.conftest import (
    PG_DSN,
    REDIS_URL,
    deadline_loop,
    pg_execute,
    require_shared_postgres,
    require_shared_redis,
)
from tests.runtime.conftest import free_port

runner = CliRunner()
SECRET = "build-test-" + "0123456789abcdef" * 3 + "x" * 5  # 64 bytes
DOCKERFILE_ALWAYS = [".dockerignore", ".env.production.example", "Dockerfile", "wheels/README.md"]
K8S = ["k8s/configmap.yaml", "k8s/deployment.yaml", "k8s/hpa.yaml", "k8s/pdb.yaml",
       "k8s/service.yaml"]  # fmt: skip
CMD = 'exec agentflow api --host 0.0.0.0 --port "${PORT}"'
ASK_ADD = {"messages": [{"role": "user", "content": "what is 12 + 30"}], "thread_id": "t1"}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("templates")
    for template in ("react", "minimal", "production"):
        create_project(root / template, template=template, name=f"{template}-agent")
    return {p.name: p for p in root.iterdir()}


@pytest.fixture
def project(request: pytest.FixtureRequest, templates: dict[str, Path], tmp_path: Path) -> Path:
    """A fresh copy of the project rendered from the template named by the parameter."""
    template = getattr(request, "param", "production")
    return Path(shutil.copytree(templates[template], tmp_path / template))


def build(project: Path, *args: str) -> tuple[int, str]:
    config = str(project / "agentflow.json")
    result = runner.invoke(app, ["build", "--config", config, *args], env={"NO_COLOR": "1"})
    return result.exit_code, " ".join(result.output.split())


def files_in(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def generated(project: Path, before: dict[str, bytes]) -> list[str]:
    return sorted(set(files_in(project)) - set(before))


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]
    return [(line.split(" ", 1)[0], line.split(" ", 1)[1].strip()) for line in lines]


def dockerfile_env(dockerfile: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in instructions(dockerfile):
        if word == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))  # type: ignore[misc]
    return env


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        current = env.get(name) or ""
        if op == ":?" and not current:
            raise LookupError(f"required variable {name} is missing a value: {arg}")
        return current or (arg if op == ":-" else "")

    pattern = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}"
    return re.sub(pattern, substitute, value.replace("$$", "\0")).replace("\0", "$")


# -- what each template gets ---------------------------------------------------------------------


@pytest.mark.parametrize("project", ["react", "minimal"], indirect=True)
def test_a_sqlite_project_gets_a_single_machine_dockerfile_with_a_loud_warning(
    project: Path,
) -> None:
    before = files_in(project)
    code, output = build(project)
    assert code == 0, output
    assert generated(project, before) == DOCKERFILE_ALWAYS
    assert "warning: the sqlite checkpointer keeps threads in a file on one machine" in output
    assert "ONE container with ONE worker" in output and "/app/.agentflow" in output
    assert "configures no auth" in output
    dockerfile = (project / "Dockerfile").read_text()
    env = dockerfile_env(dockerfile)
    assert env["WEB_CONCURRENCY"] == "1" and env["MODE"] == "production"
    assert ("VOLUME", '["/app/.agentflow"]') in instructions(dockerfile)
    assert ("RUN", "touch .env") in instructions(dockerfile)  # agentflow.json names .env
    assert ("RUN", "mkdir -p .agentflow && chown 10001:10001 .agentflow") in instructions(
        dockerfile
    )


@pytest.mark.parametrize("project", ["react", "minimal"], indirect=True)
@pytest.mark.parametrize("flags", [["--docker-compose"], ["--k8s"], ["--docker-compose", "--k8s"]])
def test_replicas_on_sqlite_are_refused_and_nothing_is_written(
    project: Path, flags: list[str]
) -> None:
    before = files_in(project)
    code, output = build(project, *flags)
    assert code == 1
    assert "sqlite checkpointer is not shared between processes" in output
    assert '"checkpointer": "postgres"' in output and "Traceback" not in output
    assert files_in(project) == before


def test_the_production_project_gets_everything(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)  # the next steps name paths relative to it
    before = files_in(project)
    code, output = build(project, "--docker-compose", "--k8s")
    assert code == 0, output
    assert generated(project, before) == sorted([*DOCKERFILE_ALWAYS, "docker-compose.yml", *K8S])
    assert "warning" not in output
    for command in ("docker build -t production-agent:latest .", "docker compose up --build",
                    "kubectl create secret generic production-agent-secrets",
                    "--from-literal=JWT_SECRET_KEY=...", "kubectl apply -f k8s/"):  # fmt: skip
        assert command in output


def test_the_dockerfile_is_multi_stage_cached_non_root_and_pinned(project: Path) -> None:
    assert build(project)[0] == 0
    dockerfile = (project / "Dockerfile").read_text()
    steps = instructions(dockerfile)
    assert [word for word, _ in steps] == [
        "FROM", "ENV", "RUN", "ENV", "WORKDIR", "COPY", "COPY", "RUN",  # builder
        "FROM", "ENV", "RUN", "COPY", "WORKDIR", "COPY", "USER", "EXPOSE", "STOPSIGNAL",
        "HEALTHCHECK", "CMD",
    ]  # fmt: skip
    assert steps[0] == ("FROM", "python:3.11-slim AS builder")
    assert steps[8] == ("FROM", "python:3.11-slim")
    assert steps[5] == ("COPY", "wheels/ wheels/")
    assert steps[6] == ("COPY", "pyproject.toml ./")  # dependencies before the code
    install = steps[7][1]
    assert f'pip install --find-links wheels "agentflow-cli=={__version__}"' in install
    assert "-r requirements.project.txt" in install
    assert steps[11] == ("COPY", "--from=builder /opt/venv /opt/venv")
    assert steps[13] == ("COPY", ". .")
    assert ("USER", "10001:10001") in steps and "--uid 10001" in steps[10][1]
    assert ("STOPSIGNAL", "SIGTERM") in steps
    assert ("CMD", CMD) in steps
    healthcheck = dict(steps)["HEALTHCHECK"]
    assert "CMD python -c" in healthcheck and "urllib.request" in healthcheck
    assert "/ping" in healthcheck and not any("curl" in args for _, args in steps)
    env = dockerfile_env(dockerfile)
    assert env["MODE"] == "production" and env["WEB_CONCURRENCY"] == "2" and env["PORT"] == "8000"
    assert "VOLUME" not in dict(steps)


def test_the_dependency_layer_installs_what_pyproject_declares(project: Path) -> None:
    assert build(project)[0] == 0
    run = [
        args for word, args in instructions((project / "Dockerfile").read_text()) if word == "RUN"
    ]
    install = next(args for args in run if "requirements.project.txt" in args)
    extract = install.split(" > requirements.project.txt")[0]
    done = subprocess.run(["sh", "-c", extract], cwd=project, capture_output=True, text=True,
                          timeout=20, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == [agentflow_requirement()]


@pytest.mark.parametrize(("version", "toml"), [("3.12", "tomllib"), ("3.10", "tomli")])
def test_the_python_version_picks_the_base_image(project: Path, version: str, toml: str) -> None:
    code, output = build(project, "--python", version)
    assert code == 0, output
    steps = instructions((project / "Dockerfile").read_text())
    assert steps[0] == ("FROM", f"python:{version}-slim AS builder")
    assert ("FROM", f"python:{version}-slim") in steps
    assert f"import {toml} as toml" in (project / "Dockerfile").read_text()
    assert f"python:{version}-slim" in output


@pytest.mark.parametrize("version", ["2.7", "abc", "3.9", "3", "3.11.2", ""])
def test_a_bad_python_version_is_a_usage_error(project: Path, version: str) -> None:
    before = files_in(project)
    code, output = build(project, "--python", version)
    assert code == 2
    assert "not a supported Python version" in output and "3.10 or newer" in output
    assert files_in(project) == before


def test_the_dockerignore_keeps_secrets_and_local_state_out(project: Path) -> None:
    assert build(project)[0] == 0
    lines = (project / ".dockerignore").read_text().splitlines()
    ignored = ["**/.env", "**/.env.*", ".venv", ".git", ".agentflow", "**/__pycache__",
               ".pytest_cache", "test-artifacts", "**/*.log", "**/*.db", "**/*.db-*"]  # fmt: skip
    assert set(ignored) <= set(lines)
    assert lines.index("!**/.env.example") > lines.index("**/.env.*")  # the re-include wins
    assert not any(line.startswith("wheels") for line in lines)


def test_requirements_a_custom_dotenv_file_and_memory(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "prod.env").write_text("OPENAI_API_KEY=sk-never-shipped\n")
    (tmp_path / "requirements.txt").write_text("httpx>=0.27\n")
    config = {"graph": "graph.react:app", "env": "config/prod.env", "checkpointer": "memory"}
    (tmp_path / "agentflow.json").write_text(json.dumps(config))
    code, output = build(tmp_path)
    assert code == 0, output
    assert "the memory checkpointer keeps threads in the process's memory" in output
    dockerfile = (tmp_path / "Dockerfile").read_text()
    steps = instructions(dockerfile)
    assert ("COPY", "requirements.txt ./") in steps
    assert ("RUN", f'pip install --find-links wheels "agentflow-cli=={__version__}" '
                   "-r requirements.txt") in steps  # fmt: skip
    assert ("RUN", "mkdir -p config && touch config/prod.env") in steps
    assert "VOLUME" not in dict(steps) and dockerfile_env(dockerfile)["WEB_CONCURRENCY"] == "1"
    assert "config/prod.env" in (tmp_path / ".dockerignore").read_text().splitlines()
    assert "sk-never-shipped" not in "".join(p.read_text() for p in tmp_path.rglob("*") if
                                             p.is_file() and p.name != "prod.env")  # fmt: skip


# -- compose and Kubernetes ----------------------------------------------------------------------


@pytest.fixture
def production(project: Path) -> Path:
    code, output = build(project, "--docker-compose", "--k8s")
    assert code == 0, output
    return project


def test_the_compose_file_runs_the_api_with_postgres_and_redis(production: Path) -> None:
    text = (production / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {"api", "postgres", "redis"}
    assert all("healthcheck" in s for s in services.values())
    assert services["postgres"]["image"].startswith(("postgres:16", "postgres:15"))
    assert services["redis"]["image"] == "redis:7-alpine"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert "postgres-data" in compose["volumes"]
    api = services["api"]
    assert api["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                 "redis": {"condition": "service_healthy"}}  # fmt: skip
    test = api["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and "/ping" in test[3]
    assert api["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert api["ports"] == ["${API_PORT:-8000}:8000"]
    grace = int(api["environment"]["SHUTDOWN_GRACE"])
    assert int(api["stop_grace_period"].removesuffix("s")) >= grace + 5
    assert "${JWT_SECRET_KEY:?" in text and "${POSTGRES_PASSWORD:?" in text

    env = {"JWT_SECRET_KEY": SECRET, "POSTGRES_PASSWORD": "pw"}
    resolved = {k: interpolate(str(v), env) for k, v in api["environment"].items()}
    assert resolved["MODE"] == "production" and resolved["WEB_CONCURRENCY"] == "2"
    assert resolved["ORIGINS"] == "https://app.example.com"
    assert resolved["DATABASE_URL"] == "postgresql://agentflow:pw@postgres:5432/agentflow"
    assert resolved["REDIS_URL"] == "redis://redis:6379/0"
    assert resolved["JWT_SECRET_KEY"] == SECRET and resolved["OPENAI_API_KEY"] == ""
    for missing in ("JWT_SECRET_KEY", "POSTGRES_PASSWORD"):  # `up` stops, naming it
        with pytest.raises(LookupError, match=f"set {missing}"):
            [interpolate(str(v), {**env, missing: ""}) for v in api["environment"].values()]


def k8s_documents(project: Path) -> dict[str, dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted((project / "k8s").iterdir())]
    return {doc["kind"]: doc for doc in docs}


def test_the_kubernetes_manifests_scale_probe_and_drain(production: Path) -> None:
    docs = k8s_documents(production)
    assert {k: d["apiVersion"] for k, d in docs.items()} == {
        "ConfigMap": "v1", "Deployment": "apps/v1", "Service": "v1",
        "HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1",
    }  # fmt: skip
    deployment = docs["Deployment"]["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    assert deployment["replicas"] >= 2 and deployment["selector"]["matchLabels"] == labels
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/ping"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    config = docs["ConfigMap"]["data"]
    assert pod["terminationGracePeriodSeconds"] >= 5 + int(config["SHUTDOWN_GRACE"]) + 5
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["envFrom"] == [
        {"configMapRef": {"name": docs["ConfigMap"]["metadata"]["name"]}}
    ]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert {"JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(refs)
    assert all(ref["name"] == "production-agent-secrets" for ref in refs.values())
    assert (
        refs["OPENAI_API_KEY"].get("optional") is True and "optional" not in refs["JWT_SECRET_KEY"]
    )
    assert all("value" not in e for e in container["env"])
    assert {"MODE", "ORIGINS", "LOG_LEVEL", "WEB_CONCURRENCY", "SHUTDOWN_GRACE"} <= set(config)
    assert config["MODE"] == "production" and config["ORIGINS"] == "https://app.example.com"
    assert not set(config) & set(refs)  # no secret in the ConfigMap
    hpa, pdb, service = (docs[k]["spec"] for k in ("HorizontalPodAutoscaler",
                                                   "PodDisruptionBudget", "Service"))  # fmt: skip
    assert hpa["minReplicas"] == 2 and hpa["scaleTargetRef"]["name"] == "production-agent"
    assert pdb["minAvailable"] == 1 and pdb["selector"]["matchLabels"] == labels
    assert service["selector"] == labels and service["ports"][0]["targetPort"] == "http"
    assert "Secret" not in docs


def test_no_generated_file_holds_a_secret_value(production: Path) -> None:
    for path in [production / name for name in [*DOCKERFILE_ALWAYS, "docker-compose.yml", *K8S]]:
        text = path.read_text()
        # ${VAR...} are compose/shell references, never values: judge the rest.
        neutral = re.sub(r'"?\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}"?', r"<\1>", text)
        assert mask_secrets(neutral) == neutral, path.name
    example = (production / ".env.production.example").read_text()
    values = dict(
        line.split("=", 1) for line in example.splitlines() if "=" in line and line[0] != "#"
    )
    for name in (
        "JWT_SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "OPENAI_API_KEY",
        "POSTGRES_PASSWORD",
    ):
        assert values[name] == "", name


# -- the command's rules -------------------------------------------------------------------------


def test_existing_files_are_refused_then_overwritten_with_force(production: Path) -> None:
    (production / "Dockerfile").write_text("mine\n")
    (production / "notes.txt").write_text("keep\n")
    code, output = build(production, "--docker-compose", "--k8s")
    assert code == 1
    assert "14 files in" in output or "would be overwritten" in output
    assert "Dockerfile" in output and "k8s/deployment.yaml" in output and "--force" in output
    assert (production / "Dockerfile").read_text() == "mine\n"
    code, output = build(production, "--docker-compose", "--k8s", "--force")
    assert code == 0, output
    assert "Dockerfile (overwritten)" in output
    assert (production / "Dockerfile").read_text().startswith("# syntax=docker/dockerfile:1")
    assert (production / "notes.txt").read_text() == "keep\n"


def test_output_elsewhere_keeps_the_project_as_build_context(project: Path) -> None:
    code, output = build(project, "--docker-compose", "--output", str(project / "deploy"))
    assert code == 0, output
    written = sorted(files_in(project / "deploy"))
    assert written == [".env.production.example", "Dockerfile", "Dockerfile.dockerignore",
                       "docker-compose.yml"]  # fmt: skip
    assert (project / "wheels" / "README.md").is_file()  # part of the build context
    api = yaml.safe_load((project / "deploy" / "docker-compose.yml").read_text())["services"]["api"]
    assert api["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_configuration_errors_name_the_real_file(tmp_path: Path) -> None:
    code, output = build(tmp_path)
    assert code == 1 and "no configuration file" in output
    (tmp_path / "agentflow.json").write_text('{"graph": "graph.react:app", "checkpointer": 5}')
    code, output = build(tmp_path)
    assert code == 1 and "Traceback" not in output
    assert str(tmp_path / "agentflow.json") in output and "agentflow-build-" not in output


# -- the generated environment passes doctor, and the image's command boots ------------------


@pytest.fixture
def live(production: Path) -> Iterator[tuple[Path, str]]:
    """The production project on a fresh schema of the shared Postgres, plus Redis."""
    require_shared_postgres()
    require_shared_redis()
    schema = "t_build_" + uuid.uuid4().hex[:12]
    config = json.loads((production / "agentflow.json").read_text())
    config["checkpointer"]["schema"] = schema
    (production / "agentflow.json").write_text(json.dumps(config))
    try:
        yield production, schema
    finally:
        pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        with contextlib.closing(client):
            keys = list(client.scan_iter(match=f"agentflow:{schema}:*", count=500))
            if keys:
                client.delete(*keys)


LOCAL = {"DATABASE_URL": PG_DSN, "REDIS_URL": REDIS_URL, "JWT_SECRET_KEY": SECRET,
         "MODE": "production", "ORIGINS": "https://app.example.com"}  # fmt: skip


def test_doctor_production_passes_with_the_generated_environment(live: tuple[Path, str]) -> None:
    project, _ = live
    from dotenv import dotenv_values

    example = dotenv_values(project / ".env.production.example")
    env = {**CLEAN_ENV, **{k: v or "" for k, v in example.items()}, **LOCAL}
    env["PORT"] = str(free_port())
    config = str(project / "agentflow.json")
    result = runner.invoke(app, ["doctor", "--production", "--json", "--config", config], env=env)
    findings = json.loads(result.stdout)["findings"]
    problems = [f for f in findings if f["severity"] != "ok"]
    assert result.exit_code == 0 and not problems, problems
    assert {f["code"] for f in findings} >= {"AF-NET-001", "AF-NET-002", "AF-PERSIST-004"}


def test_the_image_command_boots_with_the_compose_environment(live: tuple[Path, str]) -> None:
    project, _ = live
    dockerfile = (project / "Dockerfile").read_text()
    steps = dict(instructions(dockerfile))
    compose = yaml.safe_load((project / "docker-compose.yml").read_text())
    port = free_port()
    local = {"JWT_SECRET_KEY": SECRET, "POSTGRES_PASSWORD": "unused"}
    unwanted = {"MODE", "ORIGINS", "OPENAI_API_KEY", "PORT", "HOST", "WEB_CONCURRENCY",
                "AGENTFLOW_CONFIG", "AGENTFLOW_OVERRIDES", "PROMETHEUS_MULTIPROC_DIR",
                *CLEAN_ENV}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in unwanted}
    env.update({k: v for k, v in dockerfile_env(dockerfile).items() if k != "PATH"})
    env.update(
        {
            k: interpolate(str(v), local)
            for k, v in compose["services"]["api"]["environment"].items()
        }
    )
    env.update(DATABASE_URL=PG_DSN, REDIS_URL=REDIS_URL, PORT=str(port), NO_COLOR="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    assert env["WEB_CONCURRENCY"] == "2" and env["MODE"] == "production"
    log = project / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["sh", "-c", steps["CMD"]], cwd=project, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in deadline_loop(20, 0.1):
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/ping", timeout=1).status_code == 200:
                    break
        else:
            pytest.fail("no /ping within 20 s:\n" + log.read_text())
        assert httpx.get(base + "/health", timeout=10).status_code == 200
        assert httpx.post(base + "/v1/graph/invoke", json=ASK_ADD, timeout=15).status_code == 401
        token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, SECRET, "HS256")
        reply = httpx.post(base + "/v1/graph/invoke", json=ASK_ADD, timeout=15,
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert reply.status_code == 200, reply.text
        assert reply.json()["messages"][-1]["content"] == "The add tool returned: 42"
        check = ["sh", "-c", steps["HEALTHCHECK"].split(" CMD ", 1)[1]]
        compose_check = compose["services"]["api"]["healthcheck"]["test"][1:]  # after "CMD"
        for command in (check, compose_check):
            assert subprocess.run(command, env=env, timeout=10, check=False).returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=min(20, int(env["SHUTDOWN_GRACE"]))) == 0, log.read_text()
        stopped = subprocess.run(check, env=env, timeout=10, check=False, capture_output=True)
        assert stopped.returncode != 0  # the HEALTHCHECK notices a dead server
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only this server
            proc.wait(10)
