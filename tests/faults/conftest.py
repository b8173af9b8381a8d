"""Fault-injection fixtures: real `agentflow api` processes against real Postgres and Redis.

The shared services (Postgres on 5432, Redis on 6379) are only ever used, never stopped: a
test that must take a service down starts its own instance on a free port (`own_redis`,
`own_postgres`) and stops only that one, by its PID. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from tests.cli.test_api import GRAPH  # the same echo graph that sleeps on demand
from tests.runtime.conftest import free_port

PG_DSN = os.environ.get("AGENTFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AGENTFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")
LEASE_TTL = 1.5  # RUN_LEASE_TTL of the servers: how long a crashed worker's thread stays locked
HTTP_TIMEOUT = 15.0


def unavailable(reason: str) -> NoReturn:
    """Skip locally; under CI=true a missing service or binary is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def deadline_loop(seconds: float, interval: float = 0.05) -> Iterator[float]:
    """Yield the time left until `seconds` have passed, sleeping `interval` between turns."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        yield left
        time.sleep(interval)


# -- shared services --------------------------------------------------------------------------


def probe_postgres(dsn: str, timeout: float = 3.0) -> None:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=timeout)
        await conn.close()

    with ThreadPoolExecutor(1) as pool:  # callers may be inside a running event loop
        pool.submit(asyncio.run, probe()).result()


def pg_execute(dsn: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def require_shared_postgres() -> None:
    import asyncpg

    try:
        probe_postgres(PG_DSN)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        unavailable(f"Postgres at {PG_DSN} is unreachable: {exc}")


def redis_command(port: int, *args: str, host: str = "127.0.0.1", timeout: float = 1.0) -> bytes:
    """Send one RESP command over a raw socket; the first reply line."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload.encode())
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.strip()


def require_shared_redis() -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_URL)
    try:
        reply = redis_command(parts.port or 6379, "PING", host=parts.hostname or "127.0.0.1")
    except OSError as exc:
        unavailable(f"Redis at {REDIS_URL} is unreachable: {exc}")
    if reply != b"+PONG":
        unavailable(f"Redis at {REDIS_URL} answered {reply!r} to PING")
    return REDIS_URL


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema on the shared Postgres, dropped (CASCADE) afterwards."""
    require_shared_postgres()
    schema = "faults_" + uuid.uuid4().hex[:12]
    yield schema
    pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def shared_redis(pg_schema: str) -> Iterator[str]:
    """The shared Redis URL; the keys of this test's schema are deleted afterwards."""
    url = require_shared_redis()
    yield url
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"agentflow:{pg_schema}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
        client.connection_pool.disconnect()


# -- a Redis of our own ------------------------------------------------------------------------


@dataclass
class RedisProcess:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir),
             "--dbfilename", "dump.rdb"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in deadline_loop(timeout):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited ({self.proc.returncode})"
                )
            with contextlib.suppress(OSError):
                if redis_command(self.port, "PING", timeout=0.5) == b"+PONG":
                    return
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def stop(self, *, keep_data: bool = False, timeout: float = 10.0) -> None:
        """Terminate it; with `keep_data` its keys are saved first and reloaded by start()."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if keep_data:
            assert redis_command(self.port, "SAVE", timeout=5) == b"+OK"
        else:
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / "dump.rdb").unlink()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server on a free port: stop() and start() it at will."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisProcess(free_port(), workdir)
    try:
        server.start()
        yield server
    finally:
        server.kill()


# -- a Postgres cluster of our own -------------------------------------------------------------


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parts[-3]
    return tuple(int(p) for p in version.split(".") if p.isdigit())


@dataclass
class PgCluster:
    bindir: Path
    base: Path  # world-writable: holds the data dir, the socket and the log
    port: int
    prefix: list[str]  # runs a command as the postgres user

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def init(self) -> None:
        done = subprocess.run(
            [*self.prefix, str(self.bindir / "initdb"), "-D", str(self.datadir), "-A", "trust",
             "-U", "postgres", "--no-sync"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        done = self._ctl("-o", options, "-l", str(self.base / "server.log"), "-w", "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}{self.log()}")

    def stop(self) -> None:
        done = self._ctl("-m", "fast", "-w", "stop")
        if done.returncode != 0 and self.postmaster_pid() is not None:
            raise RuntimeError(f"pg_ctl stop failed: {done.stdout}{done.stderr}")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.base / "server.log").read_text(errors="replace")
        return ""

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    def kill_leftovers(self) -> None:
        """SIGKILL the postmaster if it is still there and it is ours (runs our data dir)."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return
        if str(self.datadir).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PgCluster]:
    """A private Postgres cluster on a free port: stop() and start() it at will."""
    bindir = _pg_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        unavailable("Postgres server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            unavailable("runuser is needed to run initdb as the postgres user")
        prefix = ["runuser", "-u", "postgres", "--"]
    elif _user_name() == "postgres":
        prefix = []
    else:
        unavailable("a private Postgres cluster needs root (runuser) or the postgres user")
    base = Path(tempfile.mkdtemp(prefix="agentflow-faults-pg-"))  # not under 0700 dirs
    base.chmod(0o777)
    cluster = PgCluster(bindir, base, free_port(), prefix)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            cluster.stop()
        cluster.kill_leftovers()
        shutil.rmtree(base, ignore_errors=True)


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


# -- agentflow api servers ---------------------------------------------------------------------


@dataclass
class Server:
    """One `agentflow api` process (or a uvicorn supervisor with its workers)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    reaped: bool = False
    crashed: bool = False  # killed on purpose: no clean exit expected
    signalled: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # HTTP: a fresh connection per call, so no keep-alive connection can go stale between
    # steps and a dead server never poisons a pool.
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return httpx.request(method, self.url + path, **kwargs)

    def invoke(self, thread_id: str, text: str | None = None, **kwargs: Any) -> httpx.Response:
        body: dict[str, Any] = {"thread_id": thread_id}
        if text is not None:
            body["messages"] = [{"role": "user", "content": text}]
        return self.request("POST", "/v1/graph/invoke", json=body, **kwargs)

    def stop_run(self, thread_id: str) -> httpx.Response:
        return self.request("POST", "/v1/graph/stop", json={"thread_id": thread_id})

    def messages(self, thread_id: str) -> list[dict[str, Any]]:
        """Every message of the thread, following next_offset."""
        found: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            response = self.request(
                "GET", f"/v1/threads/{thread_id}/messages", params={"offset": offset, "limit": 500}
            )
            assert response.status_code == 200, response.text
            page = response.json()
            found.extend(page["messages"])
            offset = page["next_offset"]
        return found

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        """Every checkpoint of the thread, newest first, following next_cursor."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            response = self.request("GET", f"/v1/threads/{thread_id}/history", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            found.extend(page["checkpoints"])
            if not page["next_cursor"]:
                return found
            params["before"] = page["next_cursor"]

    def state(self, thread_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/v1/threads/{thread_id}/state")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def health(self) -> httpx.Response:
        return self.request("GET", "/health", timeout=5)

    def wait_ready(self, timeout: float = 30.0) -> None:
        for _ in deadline_loop(timeout):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server {self.name} exited with {self.proc.returncode} before /ping:\n"
                    + self.output()
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/ping", timeout=1).status_code == 200:
                    return
        raise AssertionError(f"server {self.name} did not answer /ping:\n{self.output()}")

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def kill(self) -> None:
        """SIGKILL: a crash, no drain, no lease release."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)
        self.reaped = self.crashed = True

    def signal_stop(self) -> None:
        """One SIGTERM only: a second one during interpreter exit would kill it uncleanly."""
        if self.proc.poll() is None and not self.signalled:
            self.proc.send_signal(signal.SIGTERM)
            self.signalled = True

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL to this server's own process group after `timeout`."""
        self.signal_stop()
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only our processes
            self.proc.communicate(timeout=10)
        self.reaped = True
        return self.proc.returncode


def launch(
    project: Path,
    name: str,
    port: int,
    environ: dict[str, str],
    log_path: Path,
    extra: list[str] | None = None,
) -> Server:
    """Start `agentflow api` for `project` on `port` in a session of its own (so it and its
    workers can be stopped by process group), its output in `log_path`."""
    config = str(project / "agentflow.json")
    command = [sys.executable, "-m", "agentflow_cli", "api", "--config", config,
               "--port", str(port), *(extra or [])]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, env=environ, cwd=project, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    return Server(name, port, proc, log_path)


@dataclass
class Cluster:
    """Starts `agentflow api` servers sharing one Postgres schema; stops them all after."""

    tmp_path: Path
    schema: str
    servers: list[Server] = field(default_factory=list)
    allow_tracebacks: bool = False
    # `"graphs"` of the projects instead of the echo graph, and more files (name: text) to
    # write into each project directory (e.g. the modules those graphs name)
    graphs: dict[str, str] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def project(self, dsn: str, redis_url: str | None) -> Path:
        project = self.tmp_path / f"project{len(self.servers)}_{uuid.uuid4().hex[:6]}"
        (project / "graph").mkdir(parents=True)
        (project / "graph" / "__init__.py").write_text("")
        (project / "graph" / "react.py").write_text(GRAPH)
        for name, text in self.files.items():
            (project / name).write_text(text)
        checkpointer: dict[str, Any] = {"kind": "postgres", "dsn": dsn, "schema": self.schema}
        if redis_url:
            checkpointer["redis"] = redis_url
        graphs: dict[str, Any] = (
            {"graphs": self.graphs} if self.graphs else {"graph": "graph.react:app"}
        )
        config = {**graphs, "checkpointer": checkpointer}
        (project / "agentflow.json").write_text(json.dumps(config))
        return project

    def start(
        self,
        count: int = 1,
        *,
        dsn: str = PG_DSN,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
        workers: int | None = None,
        ports: list[int] | None = None,
    ) -> list[Server]:
        """Start `count` servers (in parallel) and wait until each answers /ping."""
        project = self.project(dsn, redis_url)
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR",
                         "MODE", "AGENTFLOW_CONFIG", "AGENTFLOW_OVERRIDES", "PORT", "HOST")
        }  # fmt: skip
        environ.update(
            LOG_LEVEL="WARNING", RUN_LEASE_TTL=str(LEASE_TTL), SHUTDOWN_GRACE="2",
            NO_COLOR="1", PYTHONUNBUFFERED="1",
        )  # fmt: skip
        environ.update(env or {})
        if workers and workers > 1:
            metrics_dir = project / "prometheus"
            metrics_dir.mkdir()
            environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        started = []
        for i in range(count):
            port = ports[i] if ports else free_port()
            name = f"s{len(self.servers)}"
            log_path = self.tmp_path / f"{name}-{port}.log"
            extra = ["--workers", str(workers)] if workers else []
            server = launch(project, name, port, environ, log_path, extra)
            self.servers.append(server)
            started.append(server)
        for server in started:
            server.wait_ready()
        return started

    def stop_all(self) -> list[str]:
        """Stop every server still running; the problems found in their output."""
        problems = []
        running = [s for s in self.servers if not s.reaped]
        for server in running:  # all drain at once
            server.signal_stop()
        for server in running:
            server.terminate()
            output = server.output()
            header = f"--- server {server.name} (port {server.port})"
            if "Traceback" in output and not self.allow_tracebacks:
                problems.append(f"{header} printed a Traceback ---\n{output}")
            elif server.proc.returncode != 0 and not server.crashed:
                code = server.proc.returncode
                problems.append(f"{header} exited with {code} after SIGTERM ---\n{output}")
        return problems


@pytest.fixture
def cluster(tmp_path: Path, pg_schema: str) -> Iterator[Cluster]:
    """`agentflow api` servers on the shared Postgres (schema `pg_schema`)."""
    group = Cluster(tmp_path, pg_schema)
    yield group
    problems = group.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def private_cluster(tmp_path: Path, own_postgres: PgCluster) -> Iterator[Cluster]:
    """`agentflow api` servers on the private Postgres (a fresh schema in it)."""
    group = Cluster(tmp_path, "faults_" + uuid.uuid4().hex[:12])
    yield group
    problems = group.stop_all()
    with contextlib.suppress(Exception):  # the cluster may be down if the test failed
        pg_execute(own_postgres.dsn, f'DROP SCHEMA IF EXISTS "{group.schema}" CASCADE')
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def background() -> Iterator[Callable[..., Any]]:
    """background(fn, *args) -> Future; every call is bounded by its HTTP timeout."""
    with ThreadPoolExecutor(8) as pool:
        yield pool.submit


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


def error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def wait_running(server: Server, thread_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The thread's state once a run has saved its input (status "running")."""
    last = None
    for _ in deadline_loop(timeout):
        response = server.request("GET", f"/v1/threads/{thread_id}/state", timeout=5)
        last = response.text
        if response.status_code == 200 and response.json()["status"] == "running":
            body: dict[str, Any] = response.json()
            return body
    raise AssertionError(f"no run started on thread {thread_id}: last state {last}")


class Ledger:
    """The turns that got a 200, per thread: what each thread's messages must be."""

    def __init__(self) -> None:
        self.expected: dict[str, list[tuple[str, str]]] = {}

    def turn(self, server: Server, thread_id: str, text: str) -> httpx.Response:
        response = server.invoke(thread_id, text)
        assert response.status_code == 200, f"{server.name}: {response.status_code} {response.text}"
        assert texts(response.json()["messages"]) == [("assistant", "echo: " + text)]
        self.record(thread_id, text)
        return response

    def record(self, thread_id: str, text: str) -> None:
        self.expected.setdefault(thread_id, []).extend(
            [("user", text), ("assistant", "echo: " + text)]
        )

    def __getitem__(self, thread_id: str) -> list[tuple[str, str]]:
        return self.expected.get(thread_id, [])


def new_thread(label: str = "t") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"
