"""Build and boot times of the images `agentflow build` describes, with buildah (no daemon).

    .venv/bin/python bench/image_bench.py [--rounds 1] [--keep]

Needs root, buildah and debootstrap (`make image-tools`), and Postgres + Redis (`make
services`). In one run it measures:
- cold base: making the `python:3.11-slim` stand-in from Debian's packages (debootstrap +
  commit), under a scratch tag so buildah's cached one stays;
- warm base: `agentflow init --template production` + `agentflow build --docker-compose
  --k8s`, then a full build of the generated Dockerfile (no layer cache), and the same for
  the react template;
- code-only rebuild: one new module in the production project, built again (the dependency
  layer comes from the cache);
- boot: `buildah run` of the image's CMD until `/ping` answers (production: 2 workers on
  Postgres + Redis; react: 1 worker on SQLite);
- the sizes of the images and of the base.
Writes bench/results/image_bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from http_bench import free_port  # noqa: E402

from tests.cli import buildah  # noqa: E402  (the image tests' buildah helpers)

RESULTS = ROOT / "bench" / "results"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/13"
SECRET = "image-bench-" + "0" * 52
AGENTFLOW = ROOT / ".venv" / "bin" / "agentflow"


def project(root: Path, template: str, *build_args: str) -> Path:
    path = root / template
    subprocess.run([str(AGENTFLOW), "init", str(path), "--template", template], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    subprocess.run([str(AGENTFLOW), "build", "--config", str(path / "agentflow.json"),
                    *build_args], check=True, capture_output=True, timeout=120)  # fmt: skip
    return path


def boot_seconds(tag: str, env: dict[str, str], log: Path) -> float:
    """From `buildah run` of the image's CMD to the first 200 of /ping; then SIGTERM."""
    cmd = buildah.inspect(tag)["Docker"]["config"]["Cmd"]
    with buildah.container(tag) as box:
        start = time.monotonic()
        running = box.start(cmd, log, env=env)
        try:
            while time.monotonic() - start < 60:
                if running.launcher.poll() is not None:
                    raise SystemExit(f"the server of {tag} exited:\n{log.read_text()}")
                with contextlib.suppress(OSError):
                    url = f"http://127.0.0.1:{env['PORT']}/ping"
                    with urllib.request.urlopen(url, timeout=1) as reply:
                        if reply.status == 200:
                            return time.monotonic() - start
                time.sleep(0.02)
            raise SystemExit(f"no /ping from {tag} within 60 s:\n{log.read_text()}")
        finally:
            running.stop()
            try:
                running.launcher.wait(30)
            except subprocess.TimeoutExpired:
                running.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="builds and boots per figure")
    parser.add_argument("--keep", action="store_true", help="keep the images built")
    args = parser.parse_args()
    missing = buildah.missing_tools()
    if missing:
        raise SystemExit(f"needs {', '.join(missing)}: run `make image-tools` as root")
    buildah.ensure_base()
    results: dict[str, list[float]] = {}
    sizes: dict[str, str] = {"base (stand-in)": buildah.image_size(buildah.base_ref())}
    tags: list[str] = []
    with tempfile.TemporaryDirectory(prefix="agentflow-image-bench-") as tmp:
        for round_ in range(args.rounds):
            scratch = f"localhost/agentflow-bench-base:{uuid.uuid4().hex[:8]}"
            start = time.monotonic()
            buildah.make_stand_in(scratch)
            results.setdefault("cold base: make the stand-in", []).append(time.monotonic() - start)
            buildah.remove_image(scratch)
            root = Path(tmp) / str(round_)
            for template, build_args, env in (
                ("production", ("--docker-compose", "--k8s"),
                 {"DATABASE_URL": PG_DSN, "REDIS_URL": REDIS_URL, "JWT_SECRET_KEY": SECRET}),
                ("react", (), {}),
            ):  # fmt: skip
                path = project(root, template, *build_args)
                tag = f"localhost/agentflow-bench-{template}:{uuid.uuid4().hex[:8]}"
                tags.append(tag)
                full = buildah.build_image(path, tag, no_cache=True)
                results.setdefault(f"warm base: full build, {template}", []).append(full.seconds)
                sizes[template] = buildah.image_size(tag)
                if template == "production":
                    (path / "graph" / "bench_change.py").write_text("# a code-only change\n")
                    again = buildah.build_image(path, tag)
                    assert any("pip install" in s for s in again.cached_steps()), again.log
                    results.setdefault("code-only rebuild, production", []).append(again.seconds)
                log = root / f"{template}.log"
                boot = boot_seconds(tag, {**env, "PORT": str(free_port())}, log)
                results.setdefault(f"boot to /ping, {template}", []).append(boot)
        if not args.keep:
            for tag in tags:
                buildah.remove_image(tag)
    rows = {name: statistics.median(values) for name, values in results.items()}
    print(f"{'figure':<44} {'seconds (median of ' + str(args.rounds) + ')':>24}")
    for name, value in rows.items():
        print(f"{name:<44} {value:>24.1f}")
    ratio = rows["code-only rebuild, production"] / rows["warm base: full build, production"]
    print(f"{'code-only rebuild / full build':<44} {ratio:>24.2f}")
    for name, size in sizes.items():
        print(f"{'image size, ' + name:<44} {size:>24}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"seconds": results, "median": rows, "sizes": sizes, "rounds": args.rounds}
    (RESULTS / "image_bench.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
