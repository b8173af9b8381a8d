"""Who is calling: anonymous, a JWT bearer token, or a custom `module:attr` callable."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request

from agentflow.graph.compiled import ANONYMOUS
from agentflow.runtime.errors import ApiError
from agentflow.runtime.loader import import_object
from agentflow.runtime.settings import AuthSettings, ConfigError

logger = logging.getLogger("agentflow.runtime.auth")

Authenticator = Callable[[Request], Awaitable[str]]


def unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="agentflow"'})


async def anonymous(request: Request) -> str:
    return ANONYMOUS


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized(
            "missing_token", "this API needs an 'Authorization: Bearer <token>' header"
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("invalid_token", "the Authorization header must be 'Bearer <token>'")
    return token


class CustomAuthenticator:
    """Calls the user's `fn(request)` (sync or async). It returns the user id (or a dict
    with 'sub'/'user_id'), returns None to refuse, or raises ApiError itself."""

    def __init__(self, fn: Callable[..., Any], path: str) -> None:
        self.fn = fn
        self.path = path

    async def __call__(self, request: Request) -> str:
        try:
            result = self.fn(request)
            if inspect.isawaitable(result):
                result = await result
        except ApiError:
            raise
        except Exception as exc:
            logger.error(
                "custom auth %s raised %s", self.path, type(exc).__name__,
                extra={"error_class": type(exc).__name__},
            )  # fmt: skip
            raise unauthorized("invalid_credentials", "authentication failed") from None
        if isinstance(result, dict):
            result = result.get("user_id") or result.get("sub")
        if result is None or result is False:
            raise unauthorized("invalid_credentials", "authentication failed")
        if not isinstance(result, str) or not result:
            raise ApiError(500, "auth_misconfigured", "the auth callable returned no user id")
        return result


def build_authenticator(settings: AuthSettings | None, project_dir: Path) -> Authenticator:
    if settings is None:
        return anonymous
    if settings.kind == "custom":
        assert settings.callable_path is not None
        fn = import_object(
            settings.callable_path, project_dir, what="auth callable", key="agentflow.json: auth"
        )
        if not callable(fn):
            raise ConfigError(
                f"{settings.callable_path} is not callable", where="agentflow.json: auth"
            )
        return CustomAuthenticator(fn, settings.callable_path)
    from agentflow.runtime.jwt_auth import JwtAuthenticator  # pyjwt loads only when used

    return JwtAuthenticator(settings)
