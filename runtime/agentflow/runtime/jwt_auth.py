"""Bearer JWT verification with pyjwt (imported only when `auth: "jwt"` is configured)."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
from starlette.requests import Request

from agentflow.runtime.auth import bearer_token, unauthorized
from agentflow.runtime.errors import ApiError
from agentflow.runtime.settings import AuthSettings, ConfigError


class JwtAuthenticator:
    """Verifies `Authorization: Bearer <jwt>`: signature with the one configured algorithm
    (never 'none'), `exp` required, optional audience/issuer; `sub` is the user id."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.algorithms = [settings.algorithm]
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300)
        key = settings.public_key if not settings.algorithm.startswith("HS") else None
        if settings.algorithm.startswith("HS"):
            assert settings.secret is not None
            self._key: Any = settings.secret.get()
        elif key:
            try:
                self._key = jwt.PyJWK.from_dict(_pem_to_jwk(key, settings.algorithm)).key
            except (jwt.PyJWTError, ValueError) as exc:
                raise ConfigError(
                    f"JWT_PUBLIC_KEY is not a valid {settings.algorithm} public key ({exc})",
                    where="environment",
                    fix="set it to the issuer's PEM public key (-----BEGIN PUBLIC KEY-----)",
                ) from None
        else:
            self._key = None

    async def __call__(self, request: Request) -> str:
        token = bearer_token(request)
        try:
            key = self._key
            if key is None and self._jwks is not None:
                signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key = signing.key
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token_expired", "the token has expired; sign in again") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized("invalid_token", f"the token has no '{exc.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise unauthorized("invalid_token", "the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise unauthorized("invalid_token", "the token is from another issuer") from None
        except jwt.PyJWKClientConnectionError:
            raise ApiError(
                503, "auth_unavailable", "the signing keys could not be fetched; try again"
            ) from None
        except jwt.PyJWKClientError:  # no key matches the token's kid: a forged token
            raise unauthorized("invalid_token", "the token is invalid") from None
        except jwt.PyJWTError:
            raise unauthorized("invalid_token", "the token is invalid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise unauthorized("invalid_token", "the token's 'sub' claim is empty")
        return subject


def _pem_to_jwk(pem: str, algorithm: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    public = load_pem_public_key(pem.encode())
    jwk: dict[str, Any] = jwt.algorithms.get_default_algorithms()[algorithm].to_jwk(
        public, as_dict=True
    )
    jwk["alg"] = algorithm
    return jwk
