"""A newcomer's first minutes on a real install, outside this checkout: our wheel in a fresh
venv (agentflow-runner is not on the package index, so pip can take it from nowhere else),
`agentflow init my-agent`, `agentflow play` with no other step, then the generated README's
commands word for word and `agentflow play` from the environment they made, over real HTTP.
The installed agentflow also hands on its own wheel (the repack path of agentflow_cli.wheel)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agentflow import __version__
from agentflow_cli import DISTRIBUTION
from agentflow_cli.wheel import write_wheel
from tests.cli.test_api import wait_for
from tests.runtime.conftest import free_port

pytestmark = pytest.mark.slow

TIMEOUT = 600  # a hang guard: pip installs from a warm cache in seconds
# What would make the run depend on this machine rather than on what a newcomer has.
UNWANTED = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "OPENAI_API_KEY", "MODE", "ORIGINS",
            "DATABASE_URL", "REDIS_URL", "JWT_SECRET_KEY", "AGENTFLOW_CONFIG"}  # fmt: skip
SOURCE = "import {module}, sys; sys.stdout.write({module}.__file__)"
ORIGIN = (
    "import importlib.metadata as m; print(m.distribution({name!r}).read_text('direct_url.json'))"
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("newcomer")


@pytest.fixture(scope="module")
def user_venv(home: Path) -> Path:
    """A fresh venv (not the checkout's .venv) with agentflow installed from our wheel."""
    wheel = write_wheel(home / "dist")
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip(venv, "install", str(wheel))
    where = run([str(venv / "bin" / "python"), "-c", SOURCE.format(module="agentflow_cli")], home)
    assert where.startswith(str(venv)), where  # imported from the venv, not the checkout
    return venv


def environment(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNWANTED}
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", "NO_COLOR": "1"}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def pip(venv: Path, *args: str) -> str:
    return run([str(venv / "bin" / "python"), "-m", "pip", *args], venv.parent, environment(venv))


def installed_from(python: Path) -> str:
    """Where pip took agentflow-runner from, as it recorded it (direct_url.json)."""
    recorded = run([str(python), "-c", ORIGIN.format(name=DISTRIBUTION)], python.parent)
    return str(json.loads(recorded)["url"])


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


@contextmanager
def serving(command: str, cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """`command` (an `agentflow play`) in bash on a free port until the block ends, then
    SIGTERM; the output must show a clean stop."""
    port = free_port()
    proc = subprocess.Popen(
        ["bash", "-c", f"{command} --no-browser --port {port}"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", timeout=60)
        yield f"http://127.0.0.1:{port}"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only this server
        output = proc.communicate(timeout=10)[0]
    assert "Traceback" not in output, output


def check_the_playground(base: str) -> None:
    assert httpx.get(base + "/ping", timeout=10).json() == {"status": "ok"}
    page = httpx.get(base + "/playground", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    body = {"messages": [{"role": "user", "content": "what is 12 + 30"}]}
    reply = httpx.post(base + "/v1/graph/invoke", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["messages"][-1]["content"]  # the agent answers


def test_our_name_is_not_on_the_package_index(user_venv: Path, home: Path) -> None:
    """So pip cannot have taken agentflow-runner from the index in any of these runs."""
    command = [str(user_venv / "bin" / "python"), "-m", "pip", "download", "--no-deps",
               "--dest", str(home / "download"), DISTRIBUTION]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                          env=environment(user_venv))  # fmt: skip
    assert done.returncode != 0, done.stdout  # offline fails too: nothing can come from there
    assert not (home / "download").exists() or not any((home / "download").iterdir())


def test_an_installed_agentflow_hands_on_its_own_wheel(user_venv: Path, home: Path) -> None:
    original = home / "dist" / f"agentflow_runner-{__version__}-py3-none-any.whl"
    assert installed_from(user_venv / "bin" / "python") == original.as_uri()
    code = "import sys; from pathlib import Path; from agentflow_cli.wheel import write_wheel; "
    code += "print(write_wheel(Path(sys.argv[1])))"
    python = str(user_venv / "bin" / "python")
    repacked = Path(run([python, "-c", code, str(home / "repacked")], home).strip())
    assert repacked.name == original.name

    with zipfile.ZipFile(original) as built, zipfile.ZipFile(repacked) as again:
        assert sorted(again.namelist()) == sorted(built.namelist())
        record = f"agentflow_runner-{__version__}.dist-info/RECORD"
        for name in built.namelist():
            if name != record:
                assert again.read(name) == built.read(name), name
        rows = [line.split(",") for line in again.read(record).decode().splitlines()]
        assert {row[0] for row in rows} == set(again.namelist())
        for name, digest, size in rows:
            if name != record:  # the RECORD lists itself without a hash
                data = again.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert (digest, size) == (f"sha256={expected.decode()}", str(len(data))), name
    assert not [n for n in again.namelist() if n.endswith(".pyc") or n.startswith("..")]

    # The repacked wheel installs and runs (it stays installed for the newcomer below).
    pip(user_venv, "install", "--force-reinstall", "--no-deps", str(repacked))
    assert installed_from(user_venv / "bin" / "python") == repacked.as_uri()
    version = run([str(user_venv / "bin" / "agentflow"), "--version"], home)
    assert version.strip() == f"agentflow {__version__}"


def test_init_play_then_the_readme_word_for_word(user_venv: Path, home: Path) -> None:
    env = environment(user_venv)
    work = home / "work"
    work.mkdir()
    run(["bash", "-c", "agentflow init my-agent"], work, env)
    project = work / "my-agent"
    assert not (project / ".env").exists()

    # `agentflow init my-agent && cd my-agent && agentflow play`: nothing else needed.
    with serving("agentflow play", project, env) as base:
        check_the_playground(base)

    readme = (project / "README.md").read_text()
    blocks = bash_blocks(readme)
    (setup,) = [block for block in blocks if 'pip install -e ".[test]"' in block]
    assert "python -m venv .venv" in setup and "pytest" in setup
    assert ".env" not in setup  # the install and the tests need no dotenv file
    output = run(["bash", "-e", "-c", setup], project, env)  # word for word
    assert re.search(r"\d+ passed", output), output
    wheel = project / "wheels" / f"agentflow_runner-{__version__}-py3-none-any.whl"
    assert installed_from(project / ".venv" / "bin" / "python") == wheel.as_uri()

    (play,) = {
        line.split("#")[0].strip()
        for block in blocks
        for line in block.splitlines()
        if line.startswith("agentflow play")
    }
    with serving(f". .venv/bin/activate && exec {play}", project, env) as base:
        check_the_playground(base)
