"""mask_secrets, SecretRedactionFilter and install_secret_redaction."""

from __future__ import annotations

import io
import json
import logging
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from agentflow.utils import SecretRedactionFilter, install_secret_redaction, mask_secrets
from agentflow.utils.secrets import is_secret_key

R = "[REDACTED]"

OPENAI_KEY = "sk-u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzdocJ2isAj"
OPENAI_PROJECT_KEY = (
    "sk-proj-IhKtJ0RlgLKOmxgJTeKdNnFRIBXuDL7DxtpYlSXp_fKtHF4vUCsMehGAkWvj7-FAc9QeWJKY"
)
ANTHROPIC_KEY = "sk-ant-api03-40uvSwMFLZDe1f8rESQedUStPKR0CsTy4Qwb8Dwk-NhFdnXsiVpzz63FfkCzJ"
GOOGLE_KEY = "AIzaJr3J1TWDtkwtDDb_xHKas1VOqg6YYZYn9Zh"
GOOGLE_KEY_2 = "AIzayiA4uoRgnatmUdjAWtGSU8po_799NksnRH9"
GITHUB_PAT = (
    "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"
)
SLACK_BOT = "xoxb-483726167513-6134125242731-z4FkQ1okTBGzvAmwufUxbvJD"
SLACK_USER = "xoxp-706589481131-144024264628-8975140261401-827283e0ad84173581569969e58b0810"
AWS_KEY_ID = "AKIAB69M64P2G158Z6TN"
AWS_SESSION_KEY_ID = "ASIAOVMIZWDIAEQ1KDFY"
AWS_SECRET = "KFLf6xuI5aHUQPFeNBTxaQWk8JzFalHlsZfYcMMD"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJ1c2VyLTEyMyIsImV4cCI6MTcwMDAwMDAwMH0"
    ".7pzNk8cL6j5IXAAjlsHUqJoUD_-Ydua-5ZMs1SWOpQa"
)
UNSIGNED_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzdmMifQ."
SIGNATURE_HEX = "24caf4941d4072014b3ce107f80e222f828767efc2f91624a8940f1f836f99ee"


Case = tuple[str, str, tuple[str, ...], tuple[str, ...]]


def case(case_id: str, text: str, secrets: tuple[str, ...], kept: tuple[str, ...]) -> Case:
    """A secret sample: its id, the text, the secrets that must go and the context that stays."""
    return (case_id, text, secrets, kept)


SECRET_CASES: list[Case] = [
    # --- OpenAI / Anthropic ---
    case(
        "openai",
        f"using key {OPENAI_KEY} for requests",
        (OPENAI_KEY,),
        ("using key", "for requests"),
    ),
    case(
        "openai-env",
        f"OPENAI_API_KEY={OPENAI_PROJECT_KEY}",
        (OPENAI_PROJECT_KEY,),
        ("OPENAI_API_KEY=",),
    ),
    case(
        "openai-json",
        f'{{"key": "{OPENAI_PROJECT_KEY}", "org": "acme"}}',
        (OPENAI_PROJECT_KEY,),
        ('"org": "acme"',),
    ),
    case(
        "openai-in-error",
        f"401 Incorrect API key provided: {OPENAI_KEY}.",
        (OPENAI_KEY,),
        ("401 Incorrect API key provided:",),
    ),
    case(
        "anthropic",
        f"x-anthropic-key {ANTHROPIC_KEY} rejected",
        (ANTHROPIC_KEY,),
        ("x-anthropic-key", "rejected"),
    ),
    # --- Google ---
    case(
        "google-query",
        f"GET https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key={GOOGLE_KEY}",
        (GOOGLE_KEY,),
        ("address=Paris&key=", "maps.googleapis.com"),
    ),
    case("google-env", f"GOOGLE_API_KEY: {GOOGLE_KEY_2}", (GOOGLE_KEY_2,), ("GOOGLE_API_KEY:",)),
    case(
        "google-bare",
        f"gemini client created with {GOOGLE_KEY}",
        (GOOGLE_KEY,),
        ("gemini client created with",),
    ),
    # --- GitHub ---
    case(
        "github-ghp-clone",
        "git clone https://ghp_1SkHbn88HxjSI6bWHtP3fS2qHx6kwXoIIXGv@github.com/acme/repo.git",
        ("ghp_1SkHbn88HxjSI6bWHtP3fS2qHx6kwXoIIXGv",),
        ("git clone https://", "@github.com/acme/repo.git"),
    ),
    case(
        "github-gho",
        "oauth token gho_OoNZYW2mZp0zVZomHFwUbbYrEqmSM9wCZ7Uw expired",
        ("gho_OoNZYW2mZp0zVZomHFwUbbYrEqmSM9wCZ7Uw",),
        ("oauth token", "expired"),
    ),
    case(
        "github-ghu",
        "user-to-server ghu_9xfogoEmvnEN5N1aE6PwZPf1Qh6yYTWmE4lB",
        ("ghu_9xfogoEmvnEN5N1aE6PwZPf1Qh6yYTWmE4lB",),
        ("user-to-server",),
    ),
    case(
        "github-ghs",
        "GH_APP=ghs_YOvfZ8UzDzV8fUkkibjL5DZPjN0MEQ7wjJJi done",
        ("ghs_YOvfZ8UzDzV8fUkkibjL5DZPjN0MEQ7wjJJi",),
        ("GH_APP=", "done"),
    ),
    case(
        "github-ghr",
        "refresh with (ghr_baZUPgHV7iB3m03nbqnsGpWLuqIA1id6Vw5D)",
        ("ghr_baZUPgHV7iB3m03nbqnsGpWLuqIA1id6Vw5D",),
        ("refresh with (", ")"),
    ),
    case("github-pat", f"GITHUB_PAT {GITHUB_PAT} loaded", (GITHUB_PAT,), ("GITHUB_PAT", "loaded")),
    # --- Slack ---
    case("slack-bot", f"slack client token={SLACK_BOT}", (SLACK_BOT,), ("slack client token=",)),
    case("slack-user", f"posting as {SLACK_USER}", (SLACK_USER,), ("posting as",)),
    case(
        "slack-app",
        "legacy xoxa-2-1234567890-abcdefABCDEF12 in use",
        ("xoxa-2-1234567890-abcdefABCDEF12",),
        ("legacy", "in use"),
    ),
    case(
        "slack-refresh",
        "rotated xoxr-11223344556-AbCdEfGhIjKl",
        ("xoxr-11223344556-AbCdEfGhIjKl",),
        ("rotated",),
    ),
    case(
        "slack-session",
        "cookie xoxs-99887766554-1234-abcdEFGH",
        ("xoxs-99887766554-1234-abcdEFGH",),
        ("cookie",),
    ),
    # --- AWS ---
    case(
        "aws-key-id", f"aws_access_key_id = {AWS_KEY_ID}", (AWS_KEY_ID,), ("aws_access_key_id =",)
    ),
    case(
        "aws-session-key-id",
        f"assumed role, credentials {AWS_SESSION_KEY_ID} valid",
        (AWS_SESSION_KEY_ID,),
        ("assumed role, credentials", "valid"),
    ),
    case(
        "aws-secret",
        f"aws_secret_access_key = {AWS_SECRET}",
        (AWS_SECRET,),
        ("aws_secret_access_key = ",),
    ),
    case(
        "aws-env",
        f"AWS_SECRET_ACCESS_KEY={AWS_SECRET} AWS_REGION=eu-west-1",
        (AWS_SECRET,),
        ("AWS_SECRET_ACCESS_KEY=", "AWS_REGION=eu-west-1"),
    ),
    # --- Bearer / Authorization ---
    case(
        "bearer-header",
        "Authorization: Bearer abc123def456ghi789",
        ("abc123def456ghi789",),
        ("Authorization: Bearer ",),
    ),
    case(
        "bearer-lowercase",
        "curl -H 'authorization: bearer Zm9vYmFyYmF6.cXV4-1'",
        ("Zm9vYmFyYmF6.cXV4-1",),
        ("curl -H 'authorization: bearer ", "'"),
    ),
    case(
        "bearer-prose",
        "sending bearer 0123456789abcdef to upstream",
        ("0123456789abcdef",),
        ("sending bearer", "to upstream"),
    ),
    case(
        "bearer-jwt",
        f"headers={{'Authorization': 'Bearer {JWT}'}}",
        (JWT, "eyJ"),
        ("headers={'Authorization': 'Bearer ",),
    ),
    case(
        "basic-auth",
        "Authorization: Basic dXNlcjpodW50ZXIy",
        ("dXNlcjpodW50ZXIy",),
        ("Authorization: Basic",),
    ),
    case(
        "raw-authorization",
        '{"Authorization": "tok_live_7d9f8a7s"}',
        ("tok_live_7d9f8a7s",),
        ('{"Authorization": "',),
    ),
    # --- key/value pairs ---
    case(
        "kv-password",
        "connecting password=hunter2 user=bob",
        ("hunter2",),
        ("connecting password=", "user=bob"),
    ),
    case("kv-yaml", "PASSWORD: correct-horse-battery", ("correct-horse-battery",), ("PASSWORD:",)),
    case(
        "kv-json",
        '{"password": "hunter2", "user": "bob"}',
        ("hunter2",),
        ('"password": "', '"user": "bob"'),
    ),
    case(
        "kv-json-spaces-in-value",
        '{"client_secret": "two words here"}',
        ("two words here",),
        ('"client_secret": "',),
    ),
    case(
        "kv-python-dict",
        "{'api_key': 'abc123xyz', 'model': 'gpt-4o'}",
        ("abc123xyz",),
        ("'api_key': '", "'model': 'gpt-4o'"),
    ),
    case("kv-header-api-key", "api-key: 9f8e7d6c5b4a", ("9f8e7d6c5b4a",), ("api-key:",)),
    case(
        "kv-x-api-key",
        "X-Api-Key: key_live_abcdef123456",
        ("key_live_abcdef123456",),
        ("X-Api-Key:",),
    ),
    case(
        "kv-apikey-query",
        "GET /v1/search?apikey=abc123&q=weather",
        ("abc123",),
        ("apikey=", "&q=weather"),
    ),
    case(
        "kv-access-token",
        "access_token=ya29.a0AfH6SMBx&expires_in=3599",
        ("ya29.a0AfH6SMBx",),
        ("access_token=", "&expires_in=3599"),
    ),
    case(
        "kv-refresh-token",
        "refresh_token: 1//0gLf-rt-value",
        ("1//0gLf-rt-value",),
        ("refresh_token:",),
    ),
    case(
        "kv-secret",
        "secret = s3cr3t-value, retrying",
        ("s3cr3t-value",),
        ("secret = ", ", retrying"),
    ),
    case(
        "kv-passwd",
        "mysql --user=root --passwd=letmein --host=db",
        ("letmein",),
        ("--passwd=", "--host=db"),
    ),
    case("kv-token", "token=tok_12345 user_id=u1", ("tok_12345",), ("token=", "user_id=u1")),
    case(
        "kv-env-db-password",
        "DB_PASSWORD=pa55word! DB_HOST=db",
        ("pa55word!",),
        ("DB_PASSWORD=", "DB_HOST=db"),
    ),
    case(
        "kv-camel-case",
        '{"clientSecret":"cs_abc","accessToken":"at_def"}',
        ("cs_abc", "at_def"),
        ('"clientSecret":"', '"accessToken":"'),
    ),
    case(
        "kv-escaped-json",
        '{\\"password\\": \\"hunter2\\", \\"user\\": \\"bob\\"}',
        ("hunter2",),
        ('\\"user\\": \\"bob\\"',),
    ),
    case(
        "kv-kwargs-repr",
        "Settings(host='db', password='p@ss w0rd')",
        ("p@ss w0rd",),
        ("host='db'", "password='"),
    ),
    case("kv-ruby-hash", ':password => "rubypass"', ("rubypass",), (":password => ",)),
    # --- signed URLs ---
    case(
        "s3-presigned",
        "https://bucket.s3.amazonaws.com/report.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={AWS_KEY_ID}%2F20240101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={SIGNATURE_HEX}",
        (AWS_KEY_ID, SIGNATURE_HEX, "us-east-1%2Fs3"),
        ("X-Amz-Signature=", "X-Amz-Credential=", "X-Amz-Date=20240101T000000Z", "report.pdf"),
    ),
    case(
        "s3-security-token",
        "https://b.s3.amazonaws.com/k?X-Amz-Security-Token=IQoJb3JpZ2luX2VjEOr%2F%2F&X-Amz-Expires=60",
        ("IQoJb3JpZ2luX2VjEOr",),
        ("X-Amz-Security-Token=", "&X-Amz-Expires=60"),
    ),
    case(
        "s3-legacy",
        f"https://b.s3.amazonaws.com/k?AWSAccessKeyId={AWS_KEY_ID}&Expires=1700000000&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D",
        (AWS_KEY_ID, "vjbyPxybdZaNmGa"),
        ("AWSAccessKeyId=", "&Expires=1700000000", "&Signature="),
    ),
    case(
        "gcs-signed",
        "https://storage.googleapis.com/bkt/obj?X-Goog-Algorithm=GOOG4-RSA-SHA256"
        "&X-Goog-Credential=svc%40proj.iam.gserviceaccount.com%2F20240101%2Fauto%2Fstorage%2Fgoog4_request"
        f"&X-Goog-Date=20240101T000000Z&X-Goog-Expires=900&X-Goog-Signature={SIGNATURE_HEX}",
        (SIGNATURE_HEX, "svc%40proj.iam.gserviceaccount.com"),
        ("X-Goog-Credential=", "X-Goog-Signature=", "X-Goog-Expires=900"),
    ),
    case(
        "azure-sas",
        "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&ss=b&srt=o&sp=r"
        "&se=2024-12-31T00:00:00Z&spr=https&sig=AbCdEf0123%2BgHiJk%3D",
        ("AbCdEf0123",),
        ("sv=2022-11-02", "sp=r", "se=2024-12-31T00:00:00Z", "&sig="),
    ),
    case(
        "generic-token-param",
        "GET https://cdn.example.com/video.mp4?token=9a8b7c6d5e&expires=1700000000",
        ("9a8b7c6d5e",),
        ("video.mp4?token=", "&expires=1700000000"),
    ),
    # --- JWT ---
    case("jwt-bare", f"id token {JWT} verified", (JWT, "eyJzdWIi"), ("id token", "verified")),
    case(
        "jwt-unsigned",
        f"decoded {UNSIGNED_JWT} (alg none)",
        ("eyJhbGciOiJub25lIn0",),
        ("decoded", "(alg none)"),
    ),
    # --- URL userinfo ---
    case(
        "url-postgres",
        "postgres://user:pass@host/db",
        (":pass@",),
        ("postgres://user:", "@host/db"),
    ),
    case(
        "url-postgresql-driver",
        "DATABASE_URL=postgresql+asyncpg://app:s3cret@db:5432/app",
        ("s3cret",),
        ("postgresql+asyncpg://app:", "@db:5432/app"),
    ),
    case(
        "url-redis-no-user",
        "redis://:redispass@cache:6379/0",
        ("redispass",),
        ("redis://:", "@cache:6379/0"),
    ),
    case(
        "url-rediss",
        "connecting to rediss://default:Upstash123@eu1.upstash.io:6379",
        ("Upstash123",),
        ("rediss://default:", "@eu1.upstash.io:6379"),
    ),
    case(
        "url-mysql",
        "mysql://root:rootpw@localhost/shop",
        ("rootpw",),
        ("mysql://root:", "@localhost/shop"),
    ),
    case(
        "url-amqp",
        "broker amqp://guest:guest@rabbit:5672// ready",
        (":guest@",),
        ("amqp://guest:", "@rabbit:5672// ready"),
    ),
    case(
        "url-https",
        "proxy https://alice:pr0xy@proxy.corp:3128 set",
        ("pr0xy",),
        ("https://alice:", "@proxy.corp:3128 set"),
    ),
    case(
        "url-password-with-at",
        "mongodb+srv://user:p@ss@cluster0.mongodb.net/db",
        ("p@ss",),
        ("mongodb+srv://user:", "@cluster0.mongodb.net/db"),
    ),
    # --- private keys ---
    case(
        "private-key",
        "key=-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nbase64body==\n"
        "-----END RSA PRIVATE KEY-----",
        ("MIIEowIBAAKCAQEA7", "base64body"),
        ("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----"),
    ),
]

SECRET_PARAMS = [pytest.param(*rest, id=case_id) for case_id, *rest in SECRET_CASES]

NON_SECRET_CASES = [
    "skill",
    "sk-",
    "task-list",
    "the sk- prefix identifies OpenAI keys",
    "risk-assessment-for-production-deployments-v2",
    "123e4567-e89b-12d3-a456-426614174000",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 on main",
    "/home/alice/.config/agentflow/secrets.toml",
    "/etc/passwd is world-readable",
    r"C:\Users\alice\passwords.txt",
    "https://api.example.com:8443/v1/chat?model=gpt-4o&stream=true#top",
    "http://localhost:8000/threads/abc/runs",
    "redis://localhost:6379/0",
    "postgres://app@db:5432/app",
    "ssh://git@github.com/acme/repo.git",
    "git@github.com:acme/repo.git",
    "password reset email sent to alice@example.com",
    "the password field is required",
    "passwordless login enabled",
    "alice@example.com",
    "prompt_tokens=12 completion_tokens=34 total_tokens=46",
    "max_tokens=4096",
    "tokens=5",
    "token_count=5",
    '{"usage": {"prompt_tokens": 12, "max_tokens": 256}}',
    "Total: 5 tokens used",
    "token_type=bearer expires_in=3600",
    "Bearer authentication is required",
    "missing bearer token",
    "secret_name=prod-db",
    "AKIA is the prefix of AWS access key ids",
    "xoxo hugs",
    "ghp_short",
    "42",
    "-3.14159",
    "2024-01-15T10:30:00.123Z",
    "2024-01-15T10:30:00+02:00",
    "node=agent outcome=ok duration_ms=12.5 thread_id=t-1",
    "user=bob role=admin",
    "",
    "multi\nline\ttext",
]


@pytest.mark.parametrize(("text", "secrets", "kept"), SECRET_PARAMS)
def test_secrets_are_masked_and_context_kept(
    text: str, secrets: tuple[str, ...], kept: tuple[str, ...]
) -> None:
    masked = mask_secrets(text)
    assert R in masked
    for secret in secrets:
        assert secret in text, "sample is wrong: secret not in text"
        assert secret not in masked
    for context in kept:
        assert context in masked


@pytest.mark.parametrize(("text", "secrets", "kept"), SECRET_PARAMS)
def test_masking_is_idempotent(text: str, secrets: tuple[str, ...], kept: tuple[str, ...]) -> None:
    once = mask_secrets(text)
    assert mask_secrets(once) == once


def test_masking_is_idempotent_on_glued_samples() -> None:
    """Samples glued together (and cut) in odd ways still mask to a fixed point."""
    texts = [text for _, text, _, _ in SECRET_CASES] + NON_SECRET_CASES
    glue = ["", " ", "\n", "&", "=", ":", '"', "@", "/", "[", "Bearer ", "token=", "password: "]
    rng = random.Random(0)
    for _ in range(3000):
        parts = [rng.choice(texts) for _ in range(rng.randint(1, 4))]
        parts = [p[rng.randint(0, len(p) // 2) :] if rng.random() < 0.3 else p for p in parts]
        text = "".join(part + rng.choice(glue) for part in parts)
        once = mask_secrets(text)
        assert mask_secrets(once) == once, text


@pytest.mark.parametrize("text", NON_SECRET_CASES)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert mask_secrets(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2", f"password={R}"),
        ("PASSWORD: hunter2", f"PASSWORD: {R}"),
        ('{"api_key": "abc"}', f'{{"api_key": "{R}"}}'),
        ("postgres://user:pass@host/db", f"postgres://user:{R}@host/db"),
        ("redis://:pass@host", f"redis://:{R}@host"),
        ("Authorization: Bearer abc123def456", f"Authorization: Bearer {R}"),
        ("auth bearer  abc123def456 ok", f"auth bearer  {R} ok"),
        ("?token=abc&sig=def&sp=r", f"?token={R}&sig={R}&sp=r"),
        (f"key {OPENAI_KEY}.", f"key {R}."),
        (f"{JWT}", R),
        ("&amp;sig=abc123", f"&amp;sig={R}"),
        ('password=""', 'password=""'),
    ],
)
def test_exact_output(text: str, expected: str) -> None:
    assert mask_secrets(text) == expected


def test_many_secrets_in_one_line() -> None:
    text = (
        f"cfg api_key={OPENAI_KEY} db=postgres://app:pw1@db/app "
        f"slack={SLACK_BOT} aws={AWS_KEY_ID} prompt_tokens=12 jwt {JWT}"
    )
    masked = mask_secrets(text)
    for secret in (OPENAI_KEY, "pw1", SLACK_BOT, AWS_KEY_ID, JWT):
        assert secret not in masked
    assert "prompt_tokens=12" in masked
    assert masked.startswith("cfg api_key=[REDACTED] db=postgres://app:[REDACTED]@db/app")
    assert mask_secrets(masked) == masked


def test_masked_json_stays_parseable() -> None:
    text = json.dumps({"password": 'hun"ter', "url": "https://x/?token=a\\b", "n": 1})
    masked = mask_secrets(text)
    assert json.loads(masked)["password"] == R
    assert "hun" not in masked


@pytest.mark.parametrize(
    "text",
    [
        "a:" * 50_000,
        "token" * 20_000,
        "x://a:" * 20_000,
        "Bearer " + "a" * 100_000,
        "password=" * 10_000,
        'password: "' + "a" * 100_000,
        "sk-" * 30_000,
        "eyJ." * 30_000,
        "p" * 100_000 + "password=x",
    ],
    ids=["colons", "tokens", "schemes", "bearer", "kv", "open-quote", "sk", "jwt", "long-word"],
)
def test_pathological_input_is_fast(text: str) -> None:
    start = time.perf_counter()
    mask_secrets(text)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("api_key", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("access_token", True),
        ("client_secret", True),
        ("passwd", True),
        ("token", True),
        ("prompt_tokens", False),
        ("max_tokens", False),
        ("token_count", False),
        ("user_id", False),
        ("thread_id", False),
    ],
)
def test_is_secret_key(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


# ---------------------------------------------------------------------------- logging filter


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A fresh logger whose only handler writes to a StringIO.

    It keeps propagating: pytest attaches its capture handlers to non-propagating loggers.
    """
    logger = logging.getLogger(f"agentflow_test.secrets.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)
    logger.filters.clear()


def test_filter_masks_percent_args(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.addFilter(SecretRedactionFilter())
    logger.info("calling %s with key %s (attempt %d)", "openai", OPENAI_KEY, 2)
    out = stream.getvalue()
    assert OPENAI_KEY not in out
    assert f"INFO calling openai with key {R} (attempt 2)" in out


def test_filter_masks_dict_args_and_non_string_msg(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.addFilter(SecretRedactionFilter())
    logger.warning("db %(url)s", {"url": "postgres://u:p4ss@h/db"})
    logger.warning({"password": "hunter2"})
    out = stream.getvalue()
    assert "p4ss" not in out
    assert "hunter2" not in out
    assert "postgres://u:[REDACTED]@h/db" in out


def test_filter_masks_exception_text(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.addFilter(SecretRedactionFilter())
    try:
        raise RuntimeError("connect failed password=hunter2 dsn=postgres://u:p@h/db")
    except RuntimeError:
        logger.exception("could not connect")
    out = stream.getvalue()
    assert "could not connect" in out
    assert "Traceback (most recent call last)" in out
    assert "RuntimeError: connect failed password=[REDACTED]" in out
    assert "hunter2" not in out
    assert "postgres://u:p@h/db" not in out
    assert "postgres://u:[REDACTED]@h/db" in out


def test_filter_keeps_exc_info_and_sets_masked_exc_text() -> None:
    try:
        raise ValueError(f"bad key {OPENAI_KEY}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, exc_info)
    assert SecretRedactionFilter().filter(record) is True
    assert record.exc_info is exc_info
    assert record.exc_text is not None
    assert OPENAI_KEY not in record.exc_text
    assert "ValueError: bad key [REDACTED]" in record.exc_text
    assert OPENAI_KEY not in logging.Formatter().format(record)


def test_filter_masks_exc_text_already_cached() -> None:
    record = logging.makeLogRecord({"msg": "boom", "exc_text": "Error: token=abc123"})
    SecretRedactionFilter().filter(record)
    assert record.exc_text == f"Error: token={R}"


def test_filter_masks_stack_info(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.addFilter(SecretRedactionFilter())
    logger.info("stack for %s", f"api_key={OPENAI_KEY}", stack_info=True)
    out = stream.getvalue()
    assert "Stack (most recent call last)" in out
    assert OPENAI_KEY not in out
    record = logging.makeLogRecord({"msg": "x", "stack_info": f"line with {GOOGLE_KEY}"})
    SecretRedactionFilter().filter(record)
    assert record.stack_info == f"line with {R}"


def test_filter_masks_extras(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.addFilter(SecretRedactionFilter())
    (handler,) = logger.handlers
    handler.setFormatter(logging.Formatter("%(message)s dsn=%(dsn)s password=%(password)s n=%(n)s"))
    logger.info(
        "saved",
        extra={"dsn": "redis://:cachepw@cache:6379", "password": "hunter2", "n": 3},
    )
    out = stream.getvalue()
    assert "cachepw" not in out
    assert "hunter2" not in out
    assert "dsn=redis://:[REDACTED]@cache:6379" in out
    assert f"password={R}" in out
    assert "n=3" in out


def test_filter_leaves_non_secret_extras_alone() -> None:
    record = logging.makeLogRecord(
        {"msg": "ok", "prompt_tokens": 12, "run_id": "r-1", "meta": {"a": 1}, "note": None}
    )
    SecretRedactionFilter().filter(record)
    assert record.__dict__["prompt_tokens"] == 12
    assert record.__dict__["run_id"] == "r-1"
    assert record.__dict__["meta"] == {"a": 1}
    assert record.__dict__["note"] is None


def test_filter_survives_bad_format_args(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.addFilter(SecretRedactionFilter())
    logger.error("value %d and %s", "not-a-number", f"token={SLACK_BOT}")
    out = stream.getvalue()
    assert SLACK_BOT not in out
    assert "value %d and %s" in out
    assert "not-a-number" in out


def test_filter_survives_unprintable_message() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    record = logging.makeLogRecord({"msg": Unprintable(), "args": ("password=x",)})
    assert SecretRedactionFilter().filter(record) is True
    assert record.msg == "<unprintable Unprintable> ('password=[REDACTED]',)"
    assert record.args is None


def test_filter_is_safe_to_apply_twice() -> None:
    record = logging.makeLogRecord({"msg": "pct %s 100%%", "args": ("password=x",)})
    redaction = SecretRedactionFilter()
    redaction.filter(record)
    redaction.filter(record)
    assert record.getMessage() == f"pct password={R} 100%"


def test_filter_never_drops_records() -> None:
    redaction = SecretRedactionFilter()
    for record in (
        logging.makeLogRecord({}),
        logging.makeLogRecord({"msg": None}),
        logging.makeLogRecord({"msg": 42, "args": ()}),
        logging.makeLogRecord({"msg": "%s %s", "args": ("only-one",)}),
    ):
        assert redaction.filter(record) is True


# ---------------------------------------------------------------------------- install


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    """Undo filters that install_secret_redaction adds to shared loggers and handlers."""
    loggers = [logging.getLogger(), logging.getLogger("agentflow")]
    saved = {id(lg): list(lg.filters) for lg in loggers}
    handler_filters = {id(h): list(h.filters) for lg in loggers for h in lg.handlers}
    yield
    for lg in loggers:
        lg.filters[:] = saved[id(lg)]
        for handler in lg.handlers:
            if id(handler) in handler_filters:
                handler.filters[:] = handler_filters[id(handler)]


def test_install_on_named_logger_is_idempotent(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    first = install_secret_redaction(logger.name)
    second = install_secret_redaction(logger.name)
    assert first is second
    assert isinstance(first, SecretRedactionFilter)
    assert logger.filters == [first]
    (handler,) = logger.handlers
    assert handler.filters == [first]
    logger.info("password=%s", "hunter2")
    assert stream.getvalue() == f"INFO password={R}\n"


def test_install_covers_child_loggers_via_handlers(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    install_secret_redaction(logger.name)
    child = logging.getLogger(f"{logger.name}.child")
    child.warning("token=%s", "tok_abc")
    assert stream.getvalue() == f"WARNING token={R}\n"


def test_install_keeps_existing_handler_filter(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, _ = captured
    (handler,) = logger.handlers
    existing = SecretRedactionFilter()
    handler.addFilter(existing)
    installed = install_secret_redaction(logger.name)
    assert handler.filters == [existing]
    assert logger.filters == [installed]


@pytest.mark.parametrize("name", ["root", ""])
def test_install_on_root(name: str, restore_loggers: None) -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root.addHandler(handler)
    child = logging.getLogger(f"agentflow_test.root.{uuid.uuid4().hex}")
    child.setLevel(logging.INFO)
    try:
        redaction = install_secret_redaction(name)
        assert install_secret_redaction("root") is redaction
        assert root.filters.count(redaction) == 1
        assert handler.filters == [redaction]
        child.info("loaded %s", f"api_key={OPENAI_KEY}")
    finally:
        root.removeHandler(handler)
    out = stream.getvalue()
    assert OPENAI_KEY not in out
    assert f"{child.name} loaded api_key={R}" in out


def test_install_default_is_agentflow_logger(restore_loggers: None) -> None:
    redaction = install_secret_redaction()
    assert redaction in logging.getLogger("agentflow").filters


def test_import_is_lightweight() -> None:
    code = (
        "import sys, agentflow.utils\n"
        "heavy = {'typer', 'rich', 'jinja2', 'starlette'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_public_names() -> None:
    import agentflow.utils as utils

    assert sorted(utils.__all__) == sorted(
        [
            "mask_secrets",
            "SecretRedactionFilter",
            "install_secret_redaction",
            "JsonFormatter",
            "PrettyFormatter",
            "configure_logging",
            *("SETTINGS", "VARIABLE_REFERENCE", "ByMode", "Kind", "Setting", "children"),
            *("is_secret_key", "setting", "unknown_keys"),
        ]
    )
