"""A time limit on a block of async code, on every Python the package supports."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["time_limit"]


def time_limit(seconds: float) -> Any:
    """asyncio.timeout on 3.11+, a wait_for-like fallback before."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is not None:
        return timeout(seconds)
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def fallback() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def cancel() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = loop.call_later(seconds, cancel)
        try:
            yield
        except asyncio.CancelledError:
            if fired:
                raise TimeoutError from None
            raise
        finally:
            handle.cancel()

    return fallback()
