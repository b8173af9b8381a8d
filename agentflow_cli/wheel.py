"""The wheel of the agentflow that is running, for the projects and images it makes.

agentflow-runner is not on the package index, so `init` and `build` hand on this very
agentflow as a wheel. Where it comes from depends on how agentflow is installed:

- from a wheel: the files its dist-info RECORD lists are packed again (METADATA, WHEEL, entry
  points and licences included; no .pyc, nothing outside site-packages such as the console
  script, install-time files such as INSTALLER and direct_url.json left out), with a fresh
  RECORD and fixed timestamps, so the same install always gives the same bytes;
- from a checkout (an editable install, whose direct_url.json points at the checkout the
  modules are imported from): built from the source with hatchling's PEP 517 hook when it is
  importable, else with `python -m pip wheel --no-deps`. Builds are cached under the user's
  cache directory, keyed by a digest of the files that go into the wheel: a changed checkout
  builds again, an unchanged one is a file copy.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import agentflow_cli
from agentflow_cli import DISTRIBUTION, __version__
from agentflow_cli.output import CliError

PROJECT = DISTRIBUTION.replace("-", "_")  # the name in wheel and dist-info names
WHEELS = PurePosixPath("wheels")  # where a project or a build output keeps it
WHEEL_NAME = f"{PROJECT}-{__version__}-py3-none-any.whl"  # pure Python: one wheel for all
# What a checkout's wheel is made of (pyproject.toml's wheel target): the cache key.
_CHECKOUT_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "agentflow_cli", "runtime/agentflow",
                    "templates")  # fmt: skip
_INSTALL_TIME = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
_ZIP_DATE = (2020, 2, 2, 0, 0, 0)  # hatchling's reproducible timestamp
_KEPT_BUILDS = 4
_BUILD_TIMEOUT = 300


def write_wheel(directory: Path) -> Path:
    """Write the wheel of the running agentflow into `directory` (created if missing) and
    return its path: `agentflow_runner-<version>-py3-none-any.whl`."""
    directory.mkdir(parents=True, exist_ok=True)
    checkout = _checkout()
    if checkout is None:
        return _repack_installed(directory)
    built = _cached_build(checkout)
    if built is None:  # no usable cache directory
        return _build_checkout(checkout, directory)
    target = directory / built.name
    shutil.copyfile(built, target)
    return target


def wheel_file() -> tuple[PurePosixPath, bytes]:
    """`wheels/<wheel name>` and the wheel's bytes, for the files `init` and `build` write."""
    with tempfile.TemporaryDirectory(prefix="agentflow-wheel-") as tmp:
        path = write_wheel(Path(tmp))
        return WHEELS / path.name, path.read_bytes()


def _checkout() -> Path | None:
    """The source checkout agentflow runs from, if it runs from one."""
    root = Path(agentflow_cli.__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "runtime" / "agentflow").is_dir():
        return root
    return None


# -- installed from a wheel ---------------------------------------------------------------


def _repack_installed(directory: Path) -> Path:
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    files = dist.files if dist is not None else None
    if dist is None or not files:
        raise CliError(
            f"cannot find the installed files of {DISTRIBUTION} to hand on as a wheel",
            hint=f"reinstall agentflow from its wheel: pip install {PROJECT}-<version>-"
            "py3-none-any.whl",
        )
    members: dict[str, bytes] = {}
    for entry in files:
        path = PurePosixPath(entry.as_posix())
        if path.is_absolute() or path.parts[0] == ".." or _is_bytecode(path):
            continue  # the console script and caches are made by the installer
        if path.parts[0].endswith(".dist-info") and path.name in _INSTALL_TIME:
            continue
        members[str(path)] = Path(str(dist.locate_file(entry))).read_bytes()
    dist_info = f"{PROJECT}-{dist.version}.dist-info"
    if f"{dist_info}/WHEEL" not in members:
        raise CliError(
            f"the installed {DISTRIBUTION} {dist.version} has no {dist_info}/WHEEL",
            hint="reinstall agentflow from its wheel",
        )
    target = directory / f"{PROJECT}-{dist.version}-{_tag(members[f'{dist_info}/WHEEL'])}.whl"
    _write_zip(target, members, dist_info)
    return target


def _is_bytecode(path: PurePosixPath) -> bool:
    return path.suffix in (".pyc", ".pyo") or "__pycache__" in path.parts


def _tag(wheel_metadata: bytes) -> str:
    """The compressed tag set of a WHEEL file (`py3-none-any`)."""
    tags = [
        line.split(":", 1)[1].strip()
        for line in wheel_metadata.decode().splitlines()
        if line.startswith("Tag:")
    ]
    if not tags:
        return "py3-none-any"
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
    return "-".join(".".join(p) for p in parts)


def _write_zip(target: Path, members: dict[str, bytes], dist_info: str) -> None:
    """A wheel: the package files, then the dist-info, then a RECORD of them all."""
    record = f"{dist_info}/RECORD"
    names = sorted(members, key=lambda n: (n.startswith(f"{dist_info}/"), n))
    lines = [f"{name},sha256={_digest(members[name])},{len(members[name])}" for name in names]
    members = {**members, record: ("\n".join([*lines, f"{record},,"]) + "\n").encode()}
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in [*names, record]:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[name])
    os.replace(partial, target)


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


# -- built from a checkout ----------------------------------------------------------------


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentflow" / "wheels"


def _checkout_key(checkout: Path) -> str:
    """A digest of every file that goes into the checkout's wheel (paths and contents)."""
    digest = hashlib.sha256(sys.version.encode())  # pip may pick a different builder
    for name in _CHECKOUT_INPUTS:
        root = checkout / name
        paths = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in paths:
            relative = PurePosixPath(path.relative_to(checkout).as_posix())
            if path.is_file() and not _is_bytecode(relative):
                digest.update(f"{relative}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _cached_build(checkout: Path) -> Path | None:
    """The cached wheel of the checkout as it is now, built first if needed; None when the
    cache directory cannot be written."""
    entry = _cache_root() / _checkout_key(checkout)
    found = sorted(entry.glob("*.whl")) if entry.is_dir() else []
    if found:
        os.utime(entry)  # recently used: not pruned
        return found[0]
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=entry.parent))
    except OSError:
        return None
    try:
        _build_checkout(checkout, staging)
        with contextlib.suppress(OSError):  # another process cached the same build first
            os.replace(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(entry.parent)
    found = sorted(entry.glob("*.whl"))
    return found[0] if found else None


def _prune(root: Path) -> None:
    """Keep the few builds used last: every change of a checkout makes a new one."""
    builds = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[_KEPT_BUILDS:]:
        shutil.rmtree(old, ignore_errors=True)


def _build_checkout(checkout: Path, directory: Path) -> Path:
    if importlib.util.find_spec("hatchling") is not None:
        hook = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"
        command = [sys.executable, "-c", hook, str(directory)]
        how = "hatchling's build_wheel"
    else:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                   "--disable-pip-version-check", "-w", str(directory), str(checkout)]  # fmt: skip
        how = "pip wheel"
    try:
        done = subprocess.run(
            command, cwd=checkout, capture_output=True, text=True, timeout=_BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        failed, detail = True, str(exc)
    else:
        failed = done.returncode != 0
        detail = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
    wheels = sorted(directory.glob(f"{PROJECT}-{__version__}-*.whl"))
    if failed or not wheels:
        raise CliError(
            f"cannot build the wheel of agentflow from the checkout {checkout} ({how}): {detail}",
            hint="install hatchling in this environment (pip install hatchling), or build it "
            f"yourself: python -m pip wheel --no-deps {checkout} -w DIR",
        )
    return wheels[0]
