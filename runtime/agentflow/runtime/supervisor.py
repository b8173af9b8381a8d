"""The parent of `agentflow api --workers N`: uvicorn's multiprocess supervisor, with its
kills and restarts in the log.

uvicorn pings each worker every half second and kills one that does not answer within
`timeout_worker_healthcheck` seconds, or notices one that died, and starts another; it says
so only at INFO, without the reason or the exit code. It also takes a worker that exits
with code 3 (uvicorn's "startup failure") for a broken app and stops the whole server, even
when that worker had been serving for hours. Here `keep_subprocess_alive` (the public
method uvicorn's loop calls) does the same checks and logs:

- ERROR "worker [pid] did not answer ... killed it" / "worker [pid] exited with code N";
- WARNING "started worker [new] in place of worker [old]";
- ERROR and stop, as uvicorn does, only for a worker that never finished starting.
"""

from __future__ import annotations

import logging
from socket import socket

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("agentflow.runtime.supervisor")


class WorkerSupervisor(Multiprocess):
    """uvicorn's Multiprocess supervisor that logs what it does to its workers."""

    def __init__(self, config: Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        self.serving: set[int] = set()  # pids of workers that finished starting

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return  # the parent is stopping: workers exit on purpose
        timeout = self.config.timeout_worker_healthcheck
        for index, process in enumerate(self.processes):
            running = process.process.is_alive()
            if running and process.ping(timeout):
                if process.pid not in self.serving and process.is_ready(timeout):
                    self.serving.add(process.pid or 0)
                    logger.info("worker [%d] is serving", process.pid, extra={"pid": process.pid})
                continue
            process.kill()
            process.join()
            pid, code = process.pid or 0, process.exitcode
            started = pid in self.serving
            self.serving.discard(pid)
            if running:
                logger.error(
                    "worker [%d] did not answer the supervisor's health check within %d s "
                    "(its event loop or the interpreter is blocked); killed it",
                    pid, timeout, extra={"pid": pid, "reason": "unresponsive"},
                )  # fmt: skip
            else:
                logger.error(
                    "worker [%d] exited with code %s", pid, code,
                    extra={"pid": pid, "reason": "exited", "exit_code": code},
                )  # fmt: skip
            if not started and not running and code == STARTUP_FAILURE:
                logger.error(
                    "worker [%d] failed to start; stopping the server (the log above says why)",
                    pid, extra={"pid": pid},
                )  # fmt: skip
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            self.processes[index] = self.replace(pid)

    def replace(self, pid: int) -> Process:
        replacement = Process(self.config, self.sockets)
        replacement.start()
        logger.warning(
            "started worker [%d] in place of worker [%d]", replacement.pid, pid,
            extra={"pid": replacement.pid, "replaced_pid": pid},
        )  # fmt: skip
        return replacement
