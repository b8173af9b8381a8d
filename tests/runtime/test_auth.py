"""Authentication over real HTTP: JWT (HS/RS/ES, public key, JWKS), attacks that must all
be 401, per-user thread ownership, anonymous mode, custom auth callables, config errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from httpx_sse import connect_sse

from agentflow.runtime import create_app, load_settings
from agentflow.runtime.settings import ConfigError
from tests.runtime import auth_fixtures, graphs
from tests.runtime.conftest import ServerFactory, free_port, serve_app, user_message, write_project

SECRET = secrets.token_hex(32)  # 64 bytes: long enough for HS256..HS512
WRONG_SECRET = secrets.token_hex(32)
DROP = object()  # claim value meaning "leave this claim out"


# --- tokens -----------------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 300}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not DROP}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def hs_token(payload: dict[str, Any], key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def unsigned_token(payload: dict[str, Any]) -> str:
    """alg "none": header + payload + an empty signature, built by hand."""
    return f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(payload)}."


def hmac_token(payload: dict[str, Any], secret: bytes, header: dict[str, Any]) -> str:
    """An HS256 token built by hand (pyjwt refuses a PEM key as an HMAC secret)."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tampered_token() -> str:
    """A valid token for alice whose payload was swapped for sub=admin (same signature)."""
    header, _, signature = hs_token(claims()).split(".")
    return f"{header}.{b64json(claims(sub='admin'))}.{signature}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def public_pem(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def assert_unauthorized(response: httpx.Response, code: str = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


# --- servers shared by a module (one uvicorn each) --------------------------------------


@contextmanager
def running(tmp: Path, config: dict[str, Any], env: dict[str, str]) -> Iterator[str]:
    settings = load_settings(write_project(tmp, config), environ=env)
    with serve_app(create_app(settings, graph=graphs.echo)) as url:
        yield url


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def hs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"JWT_SECRET_KEY": SECRET}
    with running(tmp_path_factory.mktemp("hs"), {"auth": "jwt"}, env) as url:
        yield url


@pytest.fixture
def hs(hs_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hs_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def rs_url(tmp_path_factory: pytest.TempPathFactory, rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    env = {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": public_pem(rsa_key)}
    with running(tmp_path_factory.mktemp("rs"), {"auth": "jwt"}, env) as url:
        yield url


@pytest.fixture
def rs(rs_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rs_url, timeout=30) as http:
        yield http


class JwksServer:
    """A tiny JWKS endpoint on 127.0.0.1 that counts its hits."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        body = json.dumps(jwks).encode()
        owner = self
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def jwks(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")
    server = JwksServer({"keys": [jwk]})
    yield server
    server.close()


@pytest.fixture(scope="module")
def jwks_url(tmp_path_factory: pytest.TempPathFactory, jwks: JwksServer) -> Iterator[str]:
    env = {"JWT_ALGORITHM": "RS256", "JWT_JWKS_URL": jwks.url}
    with running(tmp_path_factory.mktemp("jwks"), {"auth": "jwt"}, env) as url:
        yield url


# --- HS256 ------------------------------------------------------------------------------


def test_valid_token_is_accepted_and_sub_is_the_user(hs: httpx.Client) -> None:
    response = hs.post(
        "/v1/graph/invoke",
        json=user_message("hi", thread_id="hs-valid"),
        headers=bearer(hs_token(claims(sub="user-7"))),
    )
    assert response.status_code == 200, response.text
    listed = hs.get("/v1/threads", headers=bearer(hs_token(claims(sub="user-7")))).json()
    assert [t["thread_id"] for t in listed["threads"]] == ["hs-valid"]


ATTACKS: dict[str, tuple[Callable[[], dict[str, str]], str]] = {
    "missing header": (lambda: {}, "missing_token"),
    "basic scheme": (lambda: {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}, "invalid_token"),
    "token without scheme": (lambda: {"Authorization": hs_token(claims())}, "invalid_token"),
    "bearer without token": (lambda: {"Authorization": "Bearer"}, "invalid_token"),
    "garbage": (lambda: bearer("not.a.jwt"), "invalid_token"),
    "alg none": (lambda: bearer(unsigned_token(claims())), "invalid_token"),
    "alg none with a signature": (
        lambda: bearer(unsigned_token(claims()) + b64url(b"sig")),
        "invalid_token",
    ),
    "wrong key": (lambda: bearer(hs_token(claims(), key=WRONG_SECRET)), "invalid_token"),
    "other HMAC algorithm": (lambda: bearer(hs_token(claims(), alg="HS512")), "invalid_token"),
    "tampered payload": (lambda: bearer(tampered_token()), "invalid_token"),
    "expired": (
        lambda: bearer(hs_token(claims(exp=int(time.time()) - 60))),
        "token_expired",
    ),
    "missing exp": (lambda: bearer(hs_token(claims(exp=DROP))), "invalid_token"),
    "missing sub": (lambda: bearer(hs_token(claims(sub=DROP))), "invalid_token"),
    "empty sub": (lambda: bearer(hs_token(claims(sub=""))), "invalid_token"),
    "blank sub": (lambda: bearer(hs_token(claims(sub="   "))), "invalid_token"),
    "numeric sub": (lambda: bearer(hs_token(claims(sub=42))), "invalid_token"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attacks_are_401_with_the_error_shape(hs: httpx.Client, attack: str) -> None:
    make_headers, code = ATTACKS[attack]
    headers = make_headers()
    response = hs.get("/v1/threads", headers=headers)
    assert_unauthorized(response, code)
    token = headers.get("Authorization", "").partition(" ")[2]
    if token:
        assert token not in response.text
    # the same on a write route, before the body is even looked at
    assert_unauthorized(hs.post("/v1/graph/invoke", json={}, headers=headers), code)


def test_public_routes_need_no_token_and_api_routes_do(hs: httpx.Client) -> None:
    assert hs.get("/ping").status_code == 200
    assert hs.get("/health").status_code == 200
    metrics = hs.get("/metrics")
    assert metrics.status_code == 200 and "agentflow_http_requests_total" in metrics.text
    for method, path, body in [
        ("GET", "/v1/graph", None),
        ("GET", "/v1/threads", None),
        ("GET", "/v1/threads/t1", None),
        ("GET", "/v1/threads/t1/state", None),
        ("GET", "/v1/threads/t1/messages", None),
        ("GET", "/v1/threads/t1/history", None),
        ("DELETE", "/v1/threads/t1", None),
        ("PATCH", "/v1/threads/t1", {"metadata": {"a": 1}}),
        ("POST", "/v1/threads/search", {}),
        ("POST", "/v1/graph/invoke", user_message("hi")),
        ("POST", "/v1/graph/stream", user_message("hi")),
        ("POST", "/v1/graph/stop", {"thread_id": "t1"}),
    ]:
        response = hs.request(method, path, json=body)
        assert_unauthorized(response, "missing_token")


@pytest.mark.parametrize("source", ["env", "config"])
def test_audience_and_issuer(make_server: ServerFactory, source: str) -> None:
    audience, issuer = "agentflow-api", "https://issuer.example"
    if source == "env":
        env = {"JWT_SECRET_KEY": SECRET, "JWT_AUDIENCE": audience, "JWT_ISSUER": issuer}
        url = make_server(config={"auth": "jwt"}, env=env)
    else:
        auth = {"type": "jwt", "audience": audience, "issuer": issuer}
        url = make_server(config={"auth": auth}, env={"JWT_SECRET_KEY": SECRET})
    with httpx.Client(base_url=url, timeout=30) as http:
        good = claims(aud=audience, iss=issuer)
        assert http.get("/v1/threads", headers=bearer(hs_token(good))).status_code == 200
        for bad in (
            claims(aud="another-api", iss=issuer),
            claims(aud=DROP, iss=issuer),
            claims(aud=audience, iss="https://evil.example"),
            claims(aud=audience, iss=DROP),
        ):
            assert_unauthorized(http.get("/v1/threads", headers=bearer(hs_token(bad))))


# --- asymmetric keys --------------------------------------------------------------------


def test_rs256_public_key(
    rs: httpx.Client, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    good = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert rs.get("/v1/threads", headers=bearer(good)).status_code == 200
    forged = jwt.encode(claims(), other_rsa_key, algorithm="RS256")
    assert_unauthorized(rs.get("/v1/threads", headers=bearer(forged)))
    assert_unauthorized(rs.get("/v1/threads", headers=bearer(unsigned_token(claims()))))
    expired = jwt.encode(claims(exp=int(time.time()) - 60), rsa_key, algorithm="RS256")
    assert_unauthorized(rs.get("/v1/threads", headers=bearer(expired)), "token_expired")


def test_rs256_rejects_hs256_signed_with_the_public_key(
    rs: httpx.Client, rsa_key: rsa.RSAPrivateKey
) -> None:
    """Algorithm confusion: the attacker knows the public PEM and uses it as HMAC secret."""
    pem = public_pem(rsa_key).encode()
    header = {"alg": "HS256", "typ": "JWT"}
    for secret in (pem, pem.strip()):
        token = hmac_token(claims(sub="admin"), secret, header)
        assert_unauthorized(rs.get("/v1/threads", headers=bearer(token)))


def test_es256_public_key(make_server: ServerFactory) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    url = make_server(
        config={"auth": "jwt"}, env={"JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY": public_pem(key)}
    )
    with httpx.Client(base_url=url, timeout=30) as http:
        good = jwt.encode(claims(sub="es-user"), key, algorithm="ES256")
        assert http.get("/v1/threads", headers=bearer(good)).status_code == 200
        forged = jwt.encode(claims(sub="es-user"), other, algorithm="ES256")
        assert_unauthorized(http.get("/v1/threads", headers=bearer(forged)))
        pem = public_pem(key).encode()
        confused = hmac_token(claims(), pem, {"alg": "HS256", "typ": "JWT"})
        assert_unauthorized(http.get("/v1/threads", headers=bearer(confused)))


def test_jwks_url(
    jwks_url: str, jwks: JwksServer, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    with httpx.Client(base_url=jwks_url, timeout=30) as http:
        good = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
        assert http.get("/v1/threads", headers=bearer(good)).status_code == 200
        assert jwks.hits >= 1
        forged = jwt.encode(claims(), other_rsa_key, algorithm="RS256", headers={"kid": "k1"})
        assert_unauthorized(http.get("/v1/threads", headers=bearer(forged)))
        pem = public_pem(rsa_key).encode()
        confused = hmac_token(claims(), pem, {"alg": "HS256", "typ": "JWT", "kid": "k1"})
        assert_unauthorized(http.get("/v1/threads", headers=bearer(confused)))
        assert_unauthorized(http.get("/v1/threads", headers=bearer("garbage")))
        expired = jwt.encode(
            claims(exp=int(time.time()) - 60), rsa_key, algorithm="RS256", headers={"kid": "k1"}
        )
        assert_unauthorized(http.get("/v1/threads", headers=bearer(expired)), "token_expired")


def test_jwks_token_with_an_unknown_kid_is_401(
    jwks_url: str, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    """A forged token naming a key the issuer never published is the client's problem (401),
    not a server outage (503)."""
    with httpx.Client(base_url=jwks_url, timeout=30) as http:
        forged = jwt.encode(claims(), other_rsa_key, algorithm="RS256", headers={"kid": "evil"})
        assert_unauthorized(http.get("/v1/threads", headers=bearer(forged)))
        assert_unauthorized(http.get("/v1/threads", headers=bearer(unsigned_token(claims()))))


def test_jwks_unreachable_is_503_not_401_or_500(
    make_server: ServerFactory, rsa_key: rsa.RSAPrivateKey
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/jwks.json"
    url = make_server(config={"auth": "jwt"}, env={"JWT_ALGORITHM": "RS256", "JWT_JWKS_URL": dead})
    with httpx.Client(base_url=url, timeout=30) as http:
        token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
        response = http.get("/v1/threads", headers=bearer(token))
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "auth_unavailable"
        assert str(dead) not in response.text


# --- ownership --------------------------------------------------------------------------


def test_threads_belong_to_their_user(hs: httpx.Client) -> None:
    alice = bearer(hs_token(claims(sub="owner-alice")))
    bob = bearer(hs_token(claims(sub="owner-bob")))
    created = hs.post("/v1/graph/invoke", json=user_message("mine", thread_id="a-1"), headers=alice)
    assert created.status_code == 200, created.text

    for path in ("", "/state", "/messages", "/history"):
        response = hs.get(f"/v1/threads/a-1{path}", headers=bob)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "thread_not_found"
    for response in (
        hs.delete("/v1/threads/a-1", headers=bob),
        hs.post("/v1/graph/stop", json={"thread_id": "a-1"}, headers=bob),
        hs.post("/v1/graph/invoke", json=user_message("hijack", thread_id="a-1"), headers=bob),
        hs.post("/v1/graph/stream", json=user_message("hijack", thread_id="a-1"), headers=bob),
    ):
        assert response.status_code == 404, (response.request.url, response.text)
        assert response.json()["error"]["code"] == "thread_not_found"
    with connect_sse(
        hs, "POST", "/v1/graph/stream", json={"thread_id": "a-1", "resume": "x"}, headers=bob
    ) as source:
        assert source.response.status_code == 404

    bob_list = hs.get("/v1/threads", headers=bob).json()
    assert "a-1" not in [t["thread_id"] for t in bob_list["threads"]]
    alice_list = hs.get("/v1/threads", headers=alice).json()
    assert "a-1" in [t["thread_id"] for t in alice_list["threads"]]
    messages = hs.get("/v1/threads/a-1/messages", headers=alice).json()
    assert [m["content"] for m in messages["messages"]] == ["mine", "echo: mine"]


def test_another_user_cannot_probe_or_stop_a_running_thread(hs: httpx.Client, hs_url: str) -> None:
    alice = bearer(hs_token(claims(sub="run-alice")))
    bob = bearer(hs_token(claims(sub="run-bob")))
    results: dict[str, httpx.Response] = {}

    def run() -> None:
        with httpx.Client(base_url=hs_url, timeout=30) as other:
            results["alice"] = other.post(
                "/v1/graph/invoke", json=user_message("sleep 0.6", thread_id="a-run"), headers=alice
            )

    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seen = hs.get("/v1/threads/a-run", headers=alice)
            if seen.is_success and seen.json()["running"]:
                break
            time.sleep(0.02)
        assert hs.get("/v1/threads/a-run", headers=alice).json()["running"] is True
        stop = hs.post("/v1/graph/stop", json={"thread_id": "a-run"}, headers=bob)
        assert stop.status_code == 404 and stop.json()["error"]["code"] == "thread_not_found"
        delete = hs.delete("/v1/threads/a-run", headers=bob)
        assert delete.status_code == 404 and delete.json()["error"]["code"] == "thread_not_found"
        invoke = hs.post(
            "/v1/graph/invoke", json=user_message("hijack", thread_id="a-run"), headers=bob
        )
        # 409 thread_busy would tell bob that alice's thread exists and is running
        assert invoke.status_code == 404, invoke.text
        assert invoke.json()["error"]["code"] == "thread_not_found"
    finally:
        worker.join(10)
    assert results["alice"].status_code == 200
    assert results["alice"].json()["status"] == "done"


def test_without_auth_every_request_is_the_anonymous_user(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        created = http.post("/v1/graph/invoke", json=user_message("hi", thread_id="anon-1"))
        assert created.status_code == 200
        listed = http.get("/v1/threads").json()
        assert [t["thread_id"] for t in listed["threads"]] == ["anon-1"]
        # a token is ignored, not verified: still the same (anonymous) user
        with_token = http.get("/v1/threads/anon-1", headers=bearer("whatever"))
        assert with_token.status_code == 200
    metrics = httpx.get(f"{server}/metrics").text
    assert 'route="/v1/threads",status="200"' in metrics


# --- custom auth ------------------------------------------------------------------------


@pytest.mark.parametrize("attr", ["verify", "verify_async"])
def test_custom_auth_callable(make_server: ServerFactory, attr: str) -> None:
    url = make_server(config={"auth": f"tests.runtime.auth_fixtures:{attr}"})
    with httpx.Client(base_url=url, timeout=30) as http:
        carol = {"X-User": "carol"}
        created = http.post(
            "/v1/graph/invoke", json=user_message("hi", thread_id="c-1"), headers=carol
        )
        assert created.status_code == 200, created.text
        listed = http.get("/v1/threads", headers=carol).json()
        assert [t["thread_id"] for t in listed["threads"]] == ["c-1"]

        # a dict with "sub" is that user: dave sees none of carol's threads
        dave = {"X-User": "dict:dave"}
        assert http.get("/v1/threads", headers=dave).json()["threads"] == []
        response = http.get("/v1/threads/c-1", headers=dave)
        assert response.status_code == 404
        # ... and a dict naming carol is carol
        same = http.get("/v1/threads/c-1", headers={"X-User": "dict:carol"})
        assert same.status_code == 200

        refused = http.get("/v1/threads")  # the callable returns None
        assert_unauthorized(refused, "invalid_credentials")

        crashed = http.get("/v1/threads", headers={"X-User": "boom"})
        assert_unauthorized(crashed, "invalid_credentials")
        assert "ldap-bind-secret-xyz" not in crashed.text
        assert auth_fixtures.LEAKY_ERROR not in crashed.text
        assert "RuntimeError" not in crashed.text

        assert http.get("/ping").status_code == 200


# --- configuration errors ---------------------------------------------------------------


def test_hs256_without_a_secret_is_a_config_error(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"auth": "jwt"})
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        load_settings(path, environ={})


def test_production_refuses_a_short_secret(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"auth": "jwt"})
    with pytest.raises(ConfigError, match="32") as info:
        load_settings(path, environ={"MODE": "production", "JWT_SECRET_KEY": "x" * 20})
    assert "x" * 20 not in str(info.value)
    long_enough = load_settings(path, environ={"MODE": "production", "JWT_SECRET_KEY": "y" * 32})
    assert long_enough.auth is not None and long_enough.auth.kind == "jwt"
    assert "y" * 32 not in repr(long_enough)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_algorithm_without_a_public_key_is_a_config_error(
    tmp_path: Path, algorithm: str
) -> None:
    path = write_project(tmp_path, {"auth": "jwt"})
    with pytest.raises(ConfigError, match="JWT_PUBLIC_KEY") as info:
        load_settings(path, environ={"JWT_ALGORITHM": algorithm, "JWT_SECRET_KEY": SECRET})
    assert "JWT_JWKS_URL" in str(info.value)


def test_alg_none_cannot_be_configured(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"auth": "jwt"})
    with pytest.raises(ConfigError, match="none"):
        load_settings(path, environ={"JWT_ALGORITHM": "none", "JWT_SECRET_KEY": SECRET})
