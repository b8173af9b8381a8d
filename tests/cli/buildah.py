"""Build and run OCI images without a Docker daemon, for the image tests and bench/image_bench.py.

buildah (Debian's package) builds with the vfs storage driver and chroot isolation: no daemon,
no privileges beyond root's. No container registry is reachable here, so `python:3.11-slim` is
a stand-in made once per machine from Debian's packages (debootstrap) and kept in buildah's
storage; builds never pull (`--pull-never`). pip inside a build reaches the package index as the
host's pip does: the CA bundle the host's pip trusts is mounted read-only for the build, never
copied into the image. Containers share the host's network (chroot isolation), so a server in
one listens on the host's 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}
SUITE = "bookworm"  # its python3 is 3.11, the version the stand-in may claim to be
STAND_IN_PYTHON = "3.11"
MIRROR = "http://deb.debian.org/debian"
STAND_IN_LABEL = "org.agentflow.test.stand-in"  # marks the base we made, never a real one
LOCK = Path(tempfile.gettempdir()) / "agentflow-buildah-base.lock"


class ImageToolError(RuntimeError):
    """buildah or debootstrap failed; the message holds the command and its output."""


def missing_tools() -> list[str]:
    """What the image tests need and this machine lacks (root, buildah, debootstrap)."""
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (buildah's vfs storage and debootstrap run as root here)")
    return missing


def buildah(
    *args: str, timeout: float = 120, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["buildah", *args], env={**os.environ, **ENV, **(env or {})}, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise ImageToolError(f"buildah {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done


def image_id(ref: str) -> str | None:
    done = buildah("images", "--quiet", "--no-trunc", ref, check=False)
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout.strip() else None


def inspect(ref: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", ref).stdout)
    return data


def image_size(ref: str) -> str:
    """The image's size as `buildah images` shows it (its layers, uncompressed: "324 MB")."""
    done = buildah("images", "--json", ref)
    return str(json.loads(done.stdout)[0]["size"])


def ca_bundle() -> Path | None:
    """The CA bundle the host's pip trusts (its `cert` setting, else PIP_CERT, else the
    system bundle)."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    named = re.findall(r"^[\w:.-]*\.?cert='([^']+)'$", done.stdout, re.M)
    for candidate in (*named, os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


# -- the base image stand-in ---------------------------------------------------------------------


def base_ref(python: str = STAND_IN_PYTHON) -> str:
    return f"docker.io/library/python:{python}-slim"


def make_stand_in(ref: str, log: Path | None = None) -> None:
    """debootstrap a minimal Debian with python3, venv and pip, link `python`, and commit it
    as `ref`."""
    with tempfile.TemporaryDirectory(prefix="agentflow-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        argv = ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip",
                SUITE, str(rootfs), MIRROR]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if log is not None:
            log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise ImageToolError(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr}")
        (rootfs / "usr" / "bin" / "python").symlink_to("python3")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        container = buildah("from", "scratch").stdout.strip()
        try:
            buildah("add", container, str(rootfs), "/", timeout=600)
            buildah("config", "--env", "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--cmd", "python3", "--label", f"{STAND_IN_LABEL}=debootstrap {SUITE}",
                    container)  # fmt: skip
            buildah("commit", "--rm", container, ref, timeout=600)
        except BaseException:
            buildah("rm", container, check=False)
            raise


def ensure_base(python: str = STAND_IN_PYTHON) -> float:
    """Make the base image's stand-in unless buildah's storage has it; the seconds spent
    (0 when it was there). One process at a time makes it."""
    ref = base_ref(python)
    if image_id(ref) is not None:
        return 0.0
    if python != STAND_IN_PYTHON:
        raise ImageToolError(f"no stand-in for {ref}: Debian {SUITE} ships Python {python}")
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_id(ref) is not None:
            return 0.0
        start = time.monotonic()
        make_stand_in(ref)
        return time.monotonic() - start


_MAKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buildah-base")
_BASE: Future[float] | None = None


def base_in_background() -> Future[float]:
    """Start making the stand-in (once): tests/conftest.py calls this as soon as the run is
    known to hold image tests, so debootstrap works while other tests run."""
    global _BASE
    if _BASE is None:
        _BASE = _MAKER.submit(ensure_base)
    return _BASE


# -- builds ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Build:
    tag: str
    seconds: float
    log: str

    def cached_steps(self) -> list[str]:
        """The steps buildah took from its layer cache ("STEP n/m: WORD ..." lines)."""
        steps = re.split(r"^(?=\[\d+/\d+\] STEP |STEP )", self.log, flags=re.M)
        return [s.splitlines()[0] for s in steps if "--> Using cache" in s]


def build_image(context: Path, tag: str, *, no_cache: bool = False) -> Build:
    """`docker build -t TAG CONTEXT` as buildah does it: the Dockerfile as written, Docker's
    image format (it keeps HEALTHCHECK), the layer cache, never a pull, the CA bundle mounted."""
    argv = ["build", "--format", "docker", "--layers", "--pull-never", "-t", tag]
    bundle = ca_bundle()
    if bundle is not None:
        argv += ["--volume", f"{bundle}:{bundle}:ro"]
    argv += ["--no-cache"] if no_cache else []
    start = time.monotonic()
    done = buildah(*argv, str(context), timeout=900, check=False)
    build = Build(tag, time.monotonic() - start, done.stdout + done.stderr)
    if done.returncode != 0:
        raise ImageToolError(f"buildah build of {context}: exit {done.returncode}\n{build.log}")
    return build


def remove_image(ref: str) -> None:
    buildah("rmi", "--force", ref, check=False)
    buildah("rmi", "--prune", check=False, timeout=300)  # the build's dangling layers


# -- containers ------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def command_line(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    return []


@dataclass
class Running:
    """A `buildah run` of the image's command: the launcher and the container's process."""

    launcher: subprocess.Popen[bytes]
    log: Path

    def main_pid(self) -> int | None:
        """The container's first process (the image's CMD, which `exec`s the server): what
        `docker stop` signals."""
        for pid in descendants(self.launcher.pid):
            argv = command_line(pid)
            if argv and not argv[0].startswith(("buildah", "memfd:buildah")):
                return pid
        return None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        pid = self.main_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL every process of the container, then the launcher."""
        for pid in reversed(descendants(self.launcher.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.launcher.wait(10)


@dataclass
class Container:
    name: str

    def run(
        self, argv: Sequence[str], *, user: str | None = None, env: Mapping[str, str] = {},
        volumes: Sequence[str] = (), timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        argv = self._run_argv(argv, user, env, volumes)
        environ = {**os.environ, **ENV}
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environ,
                              check=False)  # fmt: skip

    def start(
        self, argv: Sequence[str], log: Path, *, user: str | None = None,
        env: Mapping[str, str] = {}, volumes: Sequence[str] = (),
    ) -> Running:  # fmt: skip
        with log.open("wb") as out:
            launcher = subprocess.Popen(
                self._run_argv(argv, user, env, volumes), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, **ENV},
            )  # fmt: skip
        return Running(launcher, log)

    def _run_argv(
        self, argv: Sequence[str], user: str | None, env: Mapping[str, str],
        volumes: Sequence[str],
    ) -> list[str]:  # fmt: skip
        words = ["buildah", "run"] + (["--user", user] if user else [])
        words += [f"--env={k}={v}" for k, v in env.items()]
        words += [f"--volume={v}" for v in volumes]
        return [*words, self.name, "--", *argv]

    @contextlib.contextmanager
    def mounted(self) -> Iterator[Path]:
        """The container's file system, read from the host."""
        yield Path(buildah("mount", self.name).stdout.strip())
        buildah("umount", self.name, check=False)


@contextlib.contextmanager
def container(ref: str) -> Iterator[Container]:
    name = buildah("from", "--pull-never", ref).stdout.strip()
    try:
        yield Container(name)
    finally:
        buildah("rm", name, check=False)
