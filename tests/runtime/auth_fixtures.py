"""Custom auth callables for `"auth": "tests.runtime.auth_fixtures:verify"`.

Behaviour is driven by the `X-User` header: absent -> None (refused), `boom` -> raises,
`dict:<id>` -> {"sub": <id>}, anything else -> that string as the user id.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

LEAKY_ERROR = "auth backend exploded: ldap-bind-secret-xyz"


def _decide(request: Request) -> Any:
    who = request.headers.get("x-user")
    if who is None:
        return None
    if who == "boom":
        raise RuntimeError(LEAKY_ERROR)
    if who.startswith("dict:"):
        return {"sub": who.removeprefix("dict:")}
    return who


def verify(request: Request) -> Any:
    return _decide(request)


async def verify_async(request: Request) -> Any:
    await asyncio.sleep(0)
    return _decide(request)
