"""The images the image tests check (tests/cli/test_image.py), built in the background from
the start of a test run (tests/conftest.py): the base image's stand-in first, then each
image, one at a time, while the tests that run before the image tests go on.

Each project comes from `agentflow init`, with files that must never reach an image planted in
it, then `agentflow build` (the real CLI, in a subprocess), then the generated Dockerfile is
built exactly as written (tests/cli/buildah.py adds only the CA bundle's mount and
`--pull-never`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflow_cli.init import create_project
from tests.cli import buildah

SECRET = "image-test-" + "0123456789abcdef" * 3 + "x" * 5  # the JWT secret the tests use
OPENAI_KEY = "sk-image-test-" + uuid.uuid4().hex
PLANTED = {
    ".env": f"JWT_SECRET_KEY={SECRET}\nOPENAI_API_KEY={OPENAI_KEY}\n",
    ".env.production": f"JWT_SECRET_KEY={SECRET}\n",
    ".venv/pyvenv.cfg": "home = /usr/bin\n",
    ".git/config": f"[credential]\n\thelper = store {OPENAI_KEY}\n",
}
BUILD_ARGS = {"production": ("--docker-compose", "--k8s"), "react": ()}


@dataclass
class Image:
    project: Path
    tag: str
    build: buildah.Build
    config: dict[str, Any]  # the image's Docker config: Env, Cmd, User, Healthcheck, ...

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config["Env"])


def make_image(template: str) -> Image:
    project = Path(tempfile.mkdtemp(prefix=f"agentflow-image-{template}-")) / template
    create_project(project, template=template, name=f"{template}-image")
    for name, text in PLANTED.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    cli = Path(sys.executable).parent / "agentflow"
    argv = [str(cli), "build", "--config", str(project / "agentflow.json"), *BUILD_ARGS[template]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip
    if done.returncode != 0:
        raise buildah.ImageToolError(f"agentflow build failed:\n{done.stdout}{done.stderr}")
    tag = f"localhost/agentflow-test-{template}-{uuid.uuid4().hex[:8]}:latest"
    built = buildah.build_image(project, tag)
    return Image(project, tag, built, buildah.inspect(tag)["Docker"]["config"])


_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-builds")
_IMAGES: dict[str, Future[Image]] = {}


def _after_base(template: str) -> Image:
    buildah.base_in_background().result()
    return make_image(template)


def images_in_background() -> dict[str, Future[Image]]:
    """Start the builds (once): the stand-in base, then the production and react images."""
    if not _IMAGES:
        for template in BUILD_ARGS:
            _IMAGES[template] = _BUILDER.submit(_after_base, template)
    return _IMAGES
