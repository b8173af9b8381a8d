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
from agentflow_cli import DISTRIBUTION
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
WHEEL = f"agentflow_runner-{__version__}-py3-none-any.whl"
SECRET = "build-test-" + "0123456789abcdef" * 3 + "x" * 5  # 64 bytes
# ... and wheels/WHEEL, which the projects of `agentflow init` already hold (the same bytes).
DOCKERFILE_ALWAYS = [".dockerignore", ".env.production.example", "Dockerfile"]
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
    assert f"wheels/{WHEEL} (unchanged)" in output
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
                    "buildah build --format docker --layers -t production-agent:latest .",
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
    assert steps[5] == ("COPY", f"wheels/{WHEEL} wheels/")  # from the context: the project
    assert steps[6] == ("COPY", "pyproject.toml ./")  # dependencies before the code
    install = steps[7][1]
    assert install.endswith(f"&& pip install wheels/{WHEEL} -r requirements.project.txt")
    assert "agentflow-cli" not in dockerfile and "--find-links" not in dockerfile
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
    assert ("RUN", f"pip install wheels/{WHEEL} -r requirements.txt") in steps
    assert ("RUN", "mkdir -p config && touch config/prod.env") in steps
    assert "VOLUME" not in dict(steps) and dockerfile_env(dockerfile)["WEB_CONCURRENCY"] == "1"
    assert "config/prod.env" in (tmp_path / ".dockerignore").read_text().splitlines()
    assert b"sk-never-shipped" not in b"".join(p.read_bytes() for p in tmp_path.rglob("*") if
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
    assert "replicas" not in deployment  # the autoscaler owns the count
    assert deployment["selector"]["matchLabels"] == labels
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
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "production-agent"}
    assert hpa["minReplicas"] == 2 and hpa["scaleTargetRef"] == target
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
    assert (
        "1 file in" in output and "would be overwritten: Dockerfile; nothing was written" in output
    )
    assert "--force" in output
    assert (production / "Dockerfile").read_text() == "mine\n"
    code, output = build(production, "--docker-compose", "--k8s", "--force")
    assert code == 0, output
    assert "Dockerfile (overwritten)" in output
    assert "k8s/deployment.yaml (unchanged)" in output  # same content: never a conflict
    assert (production / "Dockerfile").read_text().startswith("# syntax=docker/dockerfile:1")
    assert (production / "notes.txt").read_text() == "keep\n"


def test_the_wheel_is_always_the_running_agentflows(production: Path) -> None:
    wheel = production / "wheels" / WHEEL  # init put it there; build found the same bytes
    fresh = wheel.read_bytes()
    wheel.write_bytes(b"an older build of the same version")
    code, output = build(production, "--docker-compose", "--k8s")
    assert code == 0, output  # no --force needed: the Dockerfile pins the running version
    assert f"wheels/{WHEEL} (overwritten)" in output and "Dockerfile (unchanged)" in output
    assert wheel.read_bytes() == fresh


def reported_paths(output: str) -> list[str]:
    """The files `build` says it wrote (the indented lines between the header and the steps)."""
    listed = re.search(r"\) in \S+: (.*?) Next steps:", output)
    assert listed is not None, output
    return re.sub(r" \((overwritten|unchanged)\)", "", listed[1]).split()


def test_output_elsewhere_writes_only_there_and_a_second_output_works(project: Path) -> None:
    before = files_in(project)
    for out in ("deploy", "deploy2"):
        code, output = build(project, "--docker-compose", "--k8s", "--output", str(project / out))
        assert code == 0, output
        written = sorted(files_in(project / out))
        assert written == sorted([".env.production.example", "Dockerfile",
                                  "Dockerfile.dockerignore", "docker-compose.yml", *K8S,
                                  f"wheels/{WHEEL}"])  # fmt: skip
        assert sorted(reported_paths(output)) == written
        outside = {k: v for k, v in files_in(project).items() if not k.startswith("deploy")}
        assert outside == before  # nothing in the project itself
        dockerfile = (project / out / "Dockerfile").read_text()
        assert ("COPY", f"--from=wheels {WHEEL} wheels/") in instructions(dockerfile)
        command = f"docker build -t production-agent -f {out}/Dockerfile "
        assert f"#   {command}--build-context wheels={out}/wheels ." in dockerfile
        daemonless = command.replace("docker build", "buildah build --format docker --layers")
        assert f"#   {daemonless}--build-context wheels={out}/wheels ." in dockerfile
        assert f"--build-context wheels={project / out / 'wheels'} {project}" in output
        compose = yaml.safe_load((project / out / "docker-compose.yml").read_text())
        assert compose["services"]["api"]["build"] == {
            "context": "..", "dockerfile": f"{out}/Dockerfile",
            "additional_contexts": {"wheels": "./wheels"},  # next to the compose file
        }  # fmt: skip


# -- the image's install step, without Docker ----------------------------------------------------


def run_builder_stage(dockerfile: str, contexts: dict[str, Path], root: Path) -> Path:
    """The builder stage as BuildKit runs it, without Docker: `root` stands for `/`, a clean
    venv for /opt/venv, and every COPY, ENV and RUN of the stage in order (COPY --from=NAME
    reads the named context). pip's cache stays on: the image turns it off to stay small,
    here it only saves downloads. Returns the venv."""
    venv = root / "opt" / "venv"
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    workdir = root
    steps = instructions(dockerfile)
    stage = steps[1 : next(i for i, (word, _) in enumerate(steps) if word == "FROM" and i)]
    for word, args in stage:
        args = args.replace("/opt/venv", str(venv))
        if word == "ENV":
            for item in shlex.split(args):
                name, value = item.split("=", 1)
                env[name] = value.replace("$PATH", env.get("PATH", ""))
            env.pop("PIP_NO_CACHE_DIR", None)
        elif word == "WORKDIR":
            workdir = root / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            words = args.split()
            named = words[0].startswith("--from=")
            source = contexts[words.pop(0).removeprefix("--from=") if named else "."]
            *sources, dest = words
            (workdir / dest).mkdir(parents=True, exist_ok=True)
            for name in sources:
                shutil.copy(source / name, workdir / dest / Path(name).name)
        elif word == "RUN":
            done = subprocess.run(["sh", "-c", args], cwd=workdir, env=env, capture_output=True,
                                  text=True, timeout=600, check=False)  # fmt: skip
            assert done.returncode == 0, f"RUN {args}\n{done.stdout}{done.stderr}"
        else:
            raise AssertionError(f"the test does not emulate {word} {args}")
    return venv


@pytest.mark.slow
def test_the_builder_stage_installs_our_wheel_and_never_asks_the_index_for_it(
    project: Path, tmp_path: Path
) -> None:
    output = tmp_path / "deploy"
    code, report = build(project, "--output", str(output))
    assert code == 0, report
    dockerfile = (output / "Dockerfile").read_text()
    venv = run_builder_stage(
        dockerfile, {".": project, "wheels": output / "wheels"}, tmp_path / "root"
    )
    version = subprocess.run([str(venv / "bin" / "agentflow"), "--version"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert version.stdout.strip() == f"agentflow {__version__}", version.stderr
    probe = "import importlib.metadata as m; print(m.distribution(%r).read_text('direct_url.json'))"
    probe %= DISTRIBUTION
    origin = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    url = json.loads(origin.stdout)["url"]  # pip records where the distribution came from
    assert url == (tmp_path / "root" / "build" / "wheels" / WHEEL).as_uri()

    # Built in place, the same stage takes the wheel from the project instead.
    assert build(project)[0] == 0
    in_place = instructions((project / "Dockerfile").read_text())
    elsewhere = instructions(dockerfile)
    assert [s for s in in_place if s[0] == "RUN"] == [s for s in elsewhere if s[0] == "RUN"]
    assert ("COPY", f"wheels/{WHEEL} wheels/") in in_place
    assert (project / "wheels" / WHEEL).read_bytes() == (output / "wheels" / WHEEL).read_bytes()


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
    env.update(PORT=str(free_port()), OPENAI_API_KEY="sk-build-test-not-a-real-key")  # no demo
    config = str(project / "agentflow.json")
    result = runner.invoke(app, ["doctor", "--production", "--json", "--config", config], env=env)
    findings = json.loads(result.stdout)["findings"]
    problems = [f for f in findings if f["severity"] != "ok"]
    assert result.exit_code == 0 and not problems, problems
    assert {f["code"] for f in findings} >= {"AF-NET-001", "AF-NET-002", "AF-PERSIST-004"}


def serves_the_production_project(base: str, secret: str) -> None:
    """Ready, refuses a call without a token, and answers one signed with `secret` (the
    offline model's tool call)."""
    assert httpx.get(base + "/health", timeout=10).status_code == 200
    assert httpx.post(base + "/v1/graph/invoke", json=ASK_ADD, timeout=15).status_code == 401
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, secret, "HS256")
    reply = httpx.post(base + "/v1/graph/invoke", json=ASK_ADD, timeout=15,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["messages"][-1]["content"] == "The add tool returned: 42"


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
        serves_the_production_project(base, SECRET)
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
