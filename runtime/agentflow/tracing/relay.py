"""OTLP export from a helper process, off the server's GIL.

Encoding spans to protobuf and posting them is CPU work; in the server process it competes
with the requests for the one interpreter lock, and on an agent whose steps are fast it costs
more than running them. :class:`RelayExporter` is the exporter agentflow puts behind its
``BatchSpanProcessor`` when it builds the tracer provider itself for ``OTEL_TRACES_EXPORTER=otlp``:
in the server it only turns each batch into plain rows (:func:`agentflow.tracing.otlp.group`)
and writes them, marshalled, to a helper process (``python -m agentflow.tracing.relay``),
which encodes them and posts them through the SDK's OTLP exporter -- configured, like the
server would have been, by the ``OTEL_EXPORTER_OTLP_*`` variables it inherits.

An export waits for the helper's answer, so the batch processor's contract holds: a batch is
exported (or has failed) when ``export`` returns, and ``force_flush``/``shutdown`` wait for
the spans to be sent. Whatever the helper logs (a collector answering 503, say) comes back
with that answer and is logged here, through the server's logging. A helper that dies or
stops answering (``timeout`` past the exporter's own) is replaced at the next batch; one that
cannot start at all leaves the export in this process (the :class:`FastOTLPSpanExporter` it
was given), with a warning. The helper exits when the server's end of the pipe closes, so it
never outlives the server, even one killed with SIGKILL. It costs about 35 MB of memory per
server worker; ``AGENTFLOW_TRACING_RELAY=0`` keeps the export in the server process instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentflow.tracing.otlp import FastOTLPSpanExporter, encode_groups, group, light_sink

logger = logging.getLogger("agentflow.tracing")

_LENGTH = struct.Struct("<I")
_START_TIMEOUT = 30.0  # seconds for a new helper to import and build its exporter
_MARGIN = 5.0  # seconds past the exporter's own timeout before a helper counts as stuck
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class RelayError(Exception):
    """The helper process did not take or answer a batch."""


class RelayExporter(SpanExporter):
    """A span exporter that hands batches to a helper process (see the module's doc)."""

    def __init__(self, local: FastOTLPSpanExporter, argv: Sequence[str] | None = None) -> None:
        """``local`` exports in this process if the helper cannot run; it must encode rows
        (an SDK whose OTLP exporter has its own HTTP client)."""
        if not local.encodes:
            raise ValueError("the relay needs an OTLP exporter that encodes rows")
        self._argv = list(argv or (sys.executable, "-m", "agentflow.tracing.relay"))
        self._lock = threading.Lock()
        self._helper: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._pid = os.getpid()
        self._timeout = _START_TIMEOUT
        self._local = local
        self._in_process = False
        self._shutdown = False
        self._spawn()  # it imports while the server starts

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        groups = group(spans)
        with self._lock:
            if not self._in_process:
                try:
                    payload = marshal.dumps(groups)
                except ValueError:  # a value marshal does not carry: send it encoded
                    payload = marshal.dumps(encode_groups(groups))
                try:
                    return self._relay(payload)
                except RelayError as exc:
                    self._stop_helper()
                    if not self._in_process:
                        logger.warning("span export helper failed (%s): a batch was lost", exc)
                        return SpanExportResult.FAILURE
            return self._local.send(encode_groups(groups))

    def light_sink(self, batch: Any, tracer: Any) -> Callable[[Any], None] | None:
        return light_sink(batch, tracer)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export waits for the helper's answer: nothing is buffered here

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        with self._lock:
            self._stop_helper(graceful=True)
            self._local.shutdown()

    # -- the helper process ---------------------------------------------------------------

    def _spawn(self) -> None:
        self._ready = False
        self._pid = os.getpid()
        try:
            helper = subprocess.Popen(
                self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
            )
        except OSError as exc:
            self._fall_back(f"could not start it: {exc}")
            return
        assert helper.stdin is not None
        os.set_blocking(helper.stdin.fileno(), False)  # writes wait in select, with a deadline
        with contextlib.suppress(OSError):  # Linux: room for a whole batch in one write
            fcntl.fcntl(helper.stdin.fileno(), _F_SETPIPE_SZ, 1 << 20)
        self._helper = helper

    def _relay(self, payload: bytes) -> SpanExportResult:
        if self._helper is None or self._pid != os.getpid():  # died earlier, or forked
            self._spawn()
        helper = self._helper
        if helper is None:
            raise RelayError("no helper")
        assert helper.stdin is not None and helper.stdout is not None
        if not self._ready:
            try:
                ok, logs, timeout = _read(helper.stdout, time.monotonic() + _START_TIMEOUT)
            except RelayError as exc:
                ok, logs, timeout = False, [], 0.0
                self._fall_back(str(exc))
            _replay(logs)
            if not ok:
                if not self._in_process:
                    self._fall_back("it could not build the OTLP exporter")
                raise RelayError("the helper did not start")
            self._ready, self._timeout = True, float(timeout) + _MARGIN
        deadline = time.monotonic() + self._timeout
        _write(helper.stdin, _LENGTH.pack(len(payload)) + payload, deadline)
        ok, logs, _ = _read(helper.stdout, deadline)
        _replay(logs)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def _fall_back(self, why: str) -> None:
        logger.warning("span export helper unavailable (%s); exporting in the server process", why)
        self._in_process = True

    def _stop_helper(self, graceful: bool = False) -> None:
        helper, self._helper = self._helper, None
        if helper is None:
            return
        assert helper.stdin is not None and helper.stdout is not None
        with contextlib.suppress(OSError):
            helper.stdin.close()  # end of input: the helper exits
        try:
            helper.wait(self._timeout if graceful else 0)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
        helper.stdout.close()


# Every system call below lets the server's threads take the GIL from each other: a batch
# makes as few as it can (one write, one wait and one read, when all goes well).


def _wait(fd: int, writing: bool, deadline: float) -> None:
    wait = deadline - time.monotonic()
    ready = select.select([], [fd], [], wait) if writing else select.select([fd], [], [], wait)
    if wait <= 0 or not any(ready):
        raise RelayError("the helper stopped reading" if writing else "the helper did not answer")


def _write(pipe: IO[bytes], data: bytes, deadline: float) -> None:
    fd = pipe.fileno()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # the pipe is full: wait for the helper to read
            _wait(fd, True, deadline)
        except OSError as exc:  # BrokenPipeError: it exited
            raise RelayError(f"the helper exited ({exc.strerror})") from exc


def _read(pipe: IO[bytes], deadline: float) -> tuple[bool, list[tuple[int, str, str]], float]:
    """One answer: (success, the helper's log records, its exporter's timeout)."""
    fd = pipe.fileno()
    received = b""
    size = -1
    while size < 0 or len(received) < _LENGTH.size + size:
        _wait(fd, False, deadline)
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise RelayError("the helper exited")
        received += chunk
        if size < 0 and len(received) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(received)
    ok, logs, timeout = marshal.loads(received[_LENGTH.size : _LENGTH.size + size])
    return bool(ok), logs, timeout


def _replay(logs: list[tuple[int, str, str]]) -> None:
    for level, name, message in logs:
        logging.getLogger(name).log(level, "%s", message)


# -- the helper's side ------------------------------------------------------------------------


class _Collected(logging.Handler):
    """Keeps the helper's log records to send back with the next answer."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[int, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.name, record.getMessage()))

    def take(self) -> list[tuple[int, str, str]]:
        records, self.records = self.records, []
        return records


def _answer(out: IO[bytes], ok: bool, logs: list[tuple[int, str, str]], timeout: float) -> None:
    payload = marshal.dumps((ok, logs, timeout))
    out.write(_LENGTH.pack(len(payload)) + payload)
    out.flush()


def main() -> None:
    """The helper: read marshalled batches on stdin until it closes, encode and post each,
    answer on stdout."""
    # The server's Ctrl-C or SIGTERM reaches its whole process group; the helper stays to
    # send what the server flushes while it shuts down, and exits when its input closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, set_value

    attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # its own HTTP calls are not traced
    collected = _Collected()
    logging.basicConfig(level=logging.WARNING, handlers=[collected])
    # The answers get their own copy of stdout; whatever else prints goes to stderr, not
    # into the middle of an answer.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    source = sys.stdin.buffer
    try:
        exporter = FastOTLPSpanExporter()
    except Exception as exc:
        logger.error("cannot build the OTLP span exporter: %s", exc)
        _answer(out, False, collected.take(), 0.0)
        return
    if not exporter.encodes:
        logger.error("the installed OTLP exporter has no HTTP client this relay can use")
        _answer(out, False, collected.take(), 0.0)
        return
    timeout = float(getattr(getattr(exporter, "_client", None), "_timeout", 10.0))
    _answer(out, True, collected.take(), timeout)
    while True:
        head = source.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            break
        (size,) = _LENGTH.unpack(head)
        payload = source.read(size)
        if len(payload) < size:  # the server went away mid-batch
            break
        batch = marshal.loads(payload)
        try:
            data = batch if isinstance(batch, bytes) else encode_groups(batch)
            ok = exporter.send(data) is SpanExportResult.SUCCESS
        except Exception as exc:
            logger.error("span batch not exported: %s", exc)
            ok = False
        _answer(out, ok, collected.take(), timeout)
    exporter.shutdown()


if __name__ == "__main__":
    main()
