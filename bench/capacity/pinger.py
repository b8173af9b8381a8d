"""GET a liveness path every INTERVAL seconds on one keep-alive connection of its own, from
connecting (before the load starts) for WARMUP + SECONDS; print as JSON the latencies (ms)
of the last SECONDS and what failed. Its own process, so the load client's busy event loop
never delays a sample.

    python pinger.py URL PATH WARMUP SECONDS [INTERVAL]

One connection answers one request at a time, so a request that takes longer than INTERVAL
hides the samples that should have been taken meanwhile; those are added back as the waits
they would have seen (latency - INTERVAL, latency - 2 x INTERVAL, ...), the usual correction
for coordinated omission, so a stall weighs in the percentiles by how long it lasted.
A request that fails counts as taking TIMEOUT seconds, and the connection is made again.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from urllib.parse import urlsplit

TIMEOUT = 30.0


def main() -> None:
    url, path, warmup, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    parts = urlsplit(url)
    start = time.monotonic()
    t0, end = start + warmup, start + warmup + seconds
    measured: list[float] = []
    requests = 0
    failures: dict[str, int] = {}
    connection: http.client.HTTPConnection | None = None
    while time.monotonic() < end:
        tick = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
                connection.connect()
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            latency = time.perf_counter() - started
            if response.status != 200:
                raise http.client.HTTPException(f"HTTP {response.status}")
        except (OSError, http.client.HTTPException) as exc:
            if tick >= t0:
                kind = str(exc) if str(exc).startswith("HTTP ") else type(exc).__name__
                failures[kind] = failures.get(kind, 0) + 1
            latency = TIMEOUT
            if connection is not None:
                connection.close()
            connection = None
        if tick >= t0:
            requests += 1
            waits = [latency - k * interval for k in range(int(latency / interval) + 1)]
            measured += [round(w * 1000, 3) for w in waits if w > 0]
        time.sleep(max(0.0, tick + interval - time.monotonic()))
    print(json.dumps({"requests": requests, "latencies_ms": measured, "failures": failures}))


if __name__ == "__main__":
    main()
