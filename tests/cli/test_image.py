"""The images `agentflow build` describes, built and booted for real with buildah.

The images are built as tests/cli/images.py says, in the background from the start of the
run. The production image boots with the environment its compose file
gives the api service, against the local Postgres and Redis; the react template's image in its
one-container SQLite mode, with a volume on its state directory. These tests run last (see
tests/conftest.py), so the builds overlap the tests before them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import yaml

from tests.cli import buildah
from tests.cli.images import OPENAI_KEY, PLANTED, SECRET, Image, images_in_background
from tests.cli.test_build import ASK_ADD, interpolate, serves_the_production_project
from tests.faults.conftest import (
    PG_DSN,
    REDIS_URL,
    deadline_loop,
    pg_execute,
    require_shared_postgres,
    require_shared_redis,
    unavailable,
)
from tests.runtime.conftest import free_port

pytestmark = [pytest.mark.image, pytest.mark.slow]

UID = 10001


@pytest.fixture(scope="module")
def base() -> float:
    """The seconds making the python:3.11-slim stand-in took (0: it was in buildah's storage)."""
    missing = buildah.missing_tools()
    if missing:
        unavailable(f"the image tests need {', '.join(missing)} (`make image-tools`)")
    return buildah.base_in_background().result()


def built(template: str) -> Iterator[Image]:
    image = images_in_background()[template].result()
    yield image
    buildah.remove_image(image.tag)
    shutil.rmtree(image.project.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def production(base: float) -> Iterator[Image]:
    yield from built("production")


@pytest.fixture(scope="module")
def react(base: float) -> Iterator[Image]:
    yield from built("react")


def healthcheck(image: Image) -> list[str]:
    test = image.config["Healthcheck"]["Test"]
    assert test[0] == "CMD-SHELL", test
    return ["/bin/sh", "-c", test[1]]


# -- what is in the image ------------------------------------------------------------------------


def assert_sealed(image: Image, *, writable: list[str]) -> None:
    """Runs as 10001, which can write nothing in /app but `writable`; no planted file or
    secret value anywhere in the image."""
    assert image.config["User"] == f"{UID}:{UID}"
    assert image.config["WorkingDir"] == "/app"
    with buildah.container(image.tag) as box:
        done = box.run(["sh", "-c", "id -u; id -g; touch /app/x /app/agentflow.json; true"])
        assert done.stdout.split()[:2] == [str(UID), str(UID)], done.stderr
        assert done.stderr.count("Permission denied") == 2, done.stderr
        owned = box.run(["find", "/app", "-user", str(UID)]).stdout.split()
        assert owned == writable
        with box.mounted() as root:
            for planted in PLANTED:  # a dotenv file agentflow.json names stands in empty
                path = root / "app" / planted
                assert not path.exists() or path.read_bytes() == b"", planted
            assert not (root / "app" / ".venv").exists() and not (root / "app" / ".git").exists()
            needles = [SECRET.encode(), OPENAI_KEY.encode()]
            for path in root.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    data = path.read_bytes()
                    assert not any(n in data for n in needles), f"a secret is in {path}"


def test_the_production_image_is_non_root_read_only_and_holds_no_secret(production: Image) -> None:
    assert_sealed(production, writable=[])
    assert "useradd warning" not in production.build.log  # the user is made quietly


def test_the_react_image_writes_only_its_state_directory(react: Image) -> None:
    assert_sealed(react, writable=["/app/.agentflow"])
    assert react.config["Volumes"] == {"/app/.agentflow": {}}
    assert react.env["WEB_CONCURRENCY"] == "1"


# -- booting -------------------------------------------------------------------------------------


@contextlib.contextmanager
def served(
    image: Image, env: dict[str, str], log: Path, volumes: tuple[str, ...] = ()
) -> Iterator[tuple[buildah.Container, buildah.Running, str]]:
    """The image's CMD in a new container, as `docker run` starts it; yields once /ping answers."""
    with buildah.container(image.tag) as box:
        running = box.start(image.config["Cmd"], log, env=env, volumes=volumes)
        base = f"http://127.0.0.1:{env['PORT']}"
        try:
            for _ in deadline_loop(30, 0.1):
                assert running.launcher.poll() is None, log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(base + "/ping", timeout=1).status_code == 200:
                        break
            else:
                pytest.fail("no /ping within 30 s:\n" + log.read_text())
            yield box, running, base
        finally:
            if running.launcher.poll() is None:
                running.kill()


def stop_within_grace(running: buildah.Running, grace: float) -> float:
    """`docker stop`: SIGTERM to the container's first process; it exits 0 within the grace."""
    start = time.monotonic()
    running.stop(signal.SIGTERM)
    assert running.launcher.wait(timeout=grace) == 0, running.log.read_text()
    assert "Traceback" not in running.log.read_text()
    return time.monotonic() - start


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A database of its own on the shared Postgres and a Redis database of its own."""
    require_shared_postgres()
    require_shared_redis()
    name = "image_" + uuid.uuid4().hex[:12]
    pg_execute(PG_DSN, f'CREATE DATABASE "{name}"')
    redis_url = urlunsplit(urlsplit(REDIS_URL)._replace(path="/13"))
    try:
        yield urlunsplit(urlsplit(PG_DSN)._replace(path=f"/{name}")), redis_url
    finally:
        pg_execute(PG_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        with contextlib.closing(redis.Redis.from_url(redis_url, socket_timeout=2)) as client:
            client.flushdb()


def test_the_production_image_boots_with_the_compose_environment(
    production: Image, database: tuple[str, str], tmp_path: Path
) -> None:
    compose = yaml.safe_load((production.project / "docker-compose.yml").read_text())
    service = compose["services"]["api"]
    secrets = {"JWT_SECRET_KEY": SECRET, "POSTGRES_PASSWORD": "unused-here"}
    env = {k: interpolate(str(v), secrets) for k, v in service["environment"].items()}
    assert env["WEB_CONCURRENCY"] == "2" and env["MODE"] == "production"
    # The compose network's hosts are the local servers; the container shares the host's
    # network, so it listens on a free port of its own.
    env.update(DATABASE_URL=database[0], REDIS_URL=database[1], PORT=str(free_port()))
    with served(production, env, tmp_path / "server.log") as (box, running, base):
        main = running.main_pid()
        assert main is not None and len(buildah.descendants(main)) >= 2  # two workers
        serves_the_production_project(base, SECRET)
        check = healthcheck(production)
        done = box.run(check, env={"PORT": env["PORT"]})
        assert done.returncode == 0, done.stderr
        assert service["healthcheck"]["test"][1:] == ["python", "-c", check[2].split('"')[1]]
        stop_within_grace(running, float(env["SHUTDOWN_GRACE"]))
        assert box.run(check, env={"PORT": env["PORT"]}).returncode != 0  # it notices


def test_the_react_image_keeps_its_threads_on_the_volume(react: Image, tmp_path: Path) -> None:
    state = tmp_path / "state"  # a named volume: owned by the image's user, as Docker copies it
    state.mkdir()
    shutil.chown(state, UID, UID)
    volume = (f"{state}:/app/.agentflow",)
    env = {"PORT": str(free_port())}
    question = {**ASK_ADD, "thread_id": "kept"}
    with served(react, env, tmp_path / "first.log", volume) as (box, running, base):
        assert running.main_pid() is not None
        assert httpx.get(base + "/health", timeout=10).status_code == 200
        reply = httpx.post(base + "/v1/graph/invoke", json=question, timeout=15)
        assert reply.status_code == 200, reply.text
        assert box.run(healthcheck(react), env=env).returncode == 0
        stop_within_grace(running, 30)
    assert any(state.iterdir())  # the SQLite file is on the volume, not in the container
    with served(react, env, tmp_path / "second.log", volume) as (_, running, base):
        messages = httpx.get(base + "/v1/threads/kept/messages", timeout=10)
        assert messages.status_code == 200, messages.text
        assert "The add tool returned: 42" in json.dumps(messages.json())
        stop_within_grace(running, 30)


# -- the layer cache -----------------------------------------------------------------------------


def test_a_code_only_change_reuses_the_dependency_layer(production: Image) -> None:
    tool = production.project / "graph" / "image_rebuild.py"
    tool.write_text('"""A code-only change: no dependency moves."""\n')
    rebuilt = buildah.build_image(production.project, production.tag)
    cached = rebuilt.cached_steps()
    assert any("RUN " in step and "pip install" in step for step in cached), rebuilt.log
    assert not any("COPY . ." in step for step in cached), rebuilt.log
    with buildah.container(production.tag) as box, box.mounted() as root:
        assert (root / "app" / "graph" / "image_rebuild.py").read_text() == tool.read_text()
