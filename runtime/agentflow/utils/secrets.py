"""Secret redaction for log output: `mask_secrets` and a logging filter that applies it.

Two kinds of secret are masked. Known values: whatever was passed to `register_secret` (the
settings register every secret they load, `OpenAIChat` its API key), masked wherever they
appear. Recognisable shapes: every pattern is compiled once at import; rules run in a fixed
order, each replaces only the secret part with ``[REDACTED]`` and none matches its own
output, so masking is idempotent.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar
from urllib.parse import unquote, urlsplit

REDACTED = "[REDACTED]"

# Key names whose value is a secret. A name only has to end with one of these, so
# OPENAI_API_KEY, x-api-key, accessToken and aws_secret_access_key all match, while
# prompt_tokens, max_tokens and token_count (which continue past the keyword) do not.
_KEYWORDS = (
    r"api[_-]?key|secret[_-]?key|private[_-]?key|access[_-]?key"
    r"|secret|password|passwd|token"
)

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str], tuple[str, ...]]


def _keep(*groups: str) -> Callable[[re.Match[str]], str]:
    """Build a replacement that keeps the named groups and puts REDACTED after the first."""
    head, *tail = groups

    def replace(match: re.Match[str]) -> str:
        return match[head] + REDACTED + "".join(match[name] for name in tail)

    return replace


def _redact_all(_match: re.Match[str]) -> str:
    return REDACTED


def _redact_kv(match: re.Match[str]) -> str:
    quote = match["dq"] or match["sq"] or match["eq"] or ""
    return f"{match['key']}{match['sep']}{quote}{REDACTED}{quote}"


def _redact_auth(match: re.Match[str]) -> str:
    return match["prefix"] + (match["scheme"] or "") + REDACTED


# -----BEGIN RSA PRIVATE KEY----- ... -----END RSA PRIVATE KEY-----: keep the markers.
_PRIVATE_KEY = re.compile(
    r"(?P<begin>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)[\s\S]*?"
    r"(?P<end>-----END [A-Z0-9 ]*PRIVATE KEY-----)"
)

# scheme://user:password@host -> scheme://user:[REDACTED]@host. The password may contain a
# raw '@' (it runs to the last '@' of the authority) but not '[' or ']' (RFC 3986), which is
# also what keeps an already redacted password from being matched again.
_URL_USERINFO = re.compile(
    r"(?P<prefix>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#\[\]\"'<>\\]*:)"
    r"[^\s/?#\[\]\"'<>\\]+(?P<at>@)"
)

# Authorization: <scheme> <credentials>, as a header, a dict entry or a JSON member.
_AUTH_HEADER = re.compile(
    r"(?P<prefix>(?<![A-Za-z0-9_-])(?:proxy-)?authorization\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?)"
    r"(?P<scheme>(?:bearer|basic|digest|token|negotiate|ntlm|apikey|key|jwt)[ \t]+)?"
    r"[^\s\"',;\\]+",
    re.IGNORECASE,
)

# "Bearer <token>" anywhere. The token needs a digit or an inner symbol, or 16+ characters,
# so prose such as "Bearer authentication" survives.
_TOKEN_CHARS = r"A-Za-z0-9._~+/-"
_BEARER = re.compile(
    rf"(?P<prefix>\bbearer[ \t]+)"
    rf"(?:(?=[{_TOKEN_CHARS}]*(?:[0-9]|[._~+/-][A-Za-z0-9]))[{_TOKEN_CHARS}]{{8,}}"
    rf"|[{_TOKEN_CHARS}]{{16,}})=*(?![{_TOKEN_CHARS}=[])",
    re.IGNORECASE,
)

# Credential parameters of signed URLs (S3, GCS, Azure SAS, legacy S3, generic tokens).
_SIGNED_URL_PARAM = re.compile(
    r"(?P<name>(?<=[?&;])(?:x-amz-signature|x-amz-credential|x-amz-security-token"
    r"|x-goog-signature|x-goog-credential|awsaccesskeyid|signature|sig|access_token|token)=)"
    r"[^&#\s\"'<>\\]+",
    re.IGNORECASE,
)

# key=value, key: value, "key": "value", 'key': 'value', \"key\": \"value\" and key => value.
_KEY_VALUE = re.compile(
    rf"""
    (?P<key>{_KEYWORDS})
    (?P<sep>\\?["']?[ \t]*(?:=>|[:=])[ \t]*)
    (?:
        (?P<dq>")(?:\\.|[^"\\\r\n])+"
      | (?P<sq>')(?:\\.|[^'\\\r\n])+'
      | (?P<eq>\\")[^"\\\r\n]+\\"
      | [^\s,;&"'<>{{}}\[\]()\\]+
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)

# header.payload.signature, each base64url; the signature may be empty (alg "none").
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

# Vendor tokens recognisable by their prefix alone. Case-sensitive on purpose.
_VENDOR_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-[A-Za-z0-9_-]{20,}"  # OpenAI (sk-, sk-proj-, ...) and Anthropic (sk-ant-)
    r"|AIza[A-Za-z0-9_-]{35,}"  # Google API key
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub classic tokens
    r"|github_pat_[A-Za-z0-9_]{22,}"  # GitHub fine-grained tokens
    r"|xox[abeprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"  # AWS access key id
    r")"
)

# (pattern, replacement, lower-case substrings at least one of which a match must contain).
# The substring check is a cheap pre-filter: most log lines skip most rules entirely.
_RULES: tuple[_Rule, ...] = (
    (_PRIVATE_KEY, _keep("begin", "end"), ("private key",)),
    (_URL_USERINFO, _keep("prefix", "at"), ("://",)),
    (_AUTH_HEADER, _redact_auth, ("authorization",)),
    (_BEARER, _keep("prefix"), ("bearer",)),
    (_SIGNED_URL_PARAM, _keep("name"), ("sig", "token", "credential", "awsaccesskeyid")),
    (_KEY_VALUE, _redact_kv, ("key", "secret", "passw", "token")),
    (_JWT, _redact_all, ("eyj",)),
    (_VENDOR_TOKEN, _redact_all, ("sk-", "aiza", "gh", "github_pat_", "xox", "akia", "asia")),
)

_SECRET_KEY_NAME = re.compile(rf"[A-Za-z0-9_.-]*?(?:{_KEYWORDS})", re.IGNORECASE)


# ------------------------------------------------------------------------- known secret values

MIN_SECRET_LENGTH = 8

_known: tuple[str, ...] = ()  # longest first, so a value inside another one is masked with it
_known_lock = threading.Lock()
_LIBPQ_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*(?:'((?:\\.|[^'])*)'|(\S+))")
_T = TypeVar("_T")


def _secret_parts(value: str) -> list[str]:
    """What of `value` is secret: a URL's password (the rest of a URL is an address), the
    password of a libpq "key=value" DSN, else the whole value."""
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return [value]
        return [password, unquote(password)] if password else []
    found = _LIBPQ_PASSWORD.search(value)
    if found:
        return [found[1] if found[1] is not None else found[2]]
    return [value]


def _worth_masking(value: str) -> bool:
    """Short values and plain words ("postgres", "changeme") would mask ordinary text."""
    return len(value) >= MIN_SECRET_LENGTH and not value.isalpha()


def register_secret(value: str | None) -> None:
    """Mask `value` from now on wherever `mask_secrets` runs: log lines, exception text,
    model output. A URL registers only its password. Values shorter than MIN_SECRET_LENGTH
    characters and values made of letters only are ignored (masking them would hide common
    words); their recognisable forms (password=..., URLs) are still masked by pattern."""
    global _known
    if not value:
        return
    new = {part for part in _secret_parts(value.strip()) if _worth_masking(part)}
    if new <= set(_known):
        return
    with _known_lock:
        _known = tuple(sorted(new | set(_known), key=len, reverse=True))


def mask_known_secrets(text: str) -> str:
    """`text` with every registered secret value replaced by [REDACTED] (no patterns)."""
    for value in _known:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def mask_known_secrets_in(value: _T) -> _T:
    """`mask_known_secrets` applied to every string in nested dicts and lists."""
    if isinstance(value, str):
        return mask_known_secrets(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {  # type: ignore[return-value]
            mask_known_secrets_in(key): mask_known_secrets_in(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_known_secrets_in(item) for item in value]  # type: ignore[return-value]
    return value


def _starts_token(text: str, at: int, before: str) -> bool:
    """Whether position `at` of `text` begins a word: the character before it (or `before`,
    the last one already shown) is not a letter or digit."""
    previous = text[at - 1] if at else before
    return not previous.isalnum()


def _partial_tail(text: str, known: Iterable[str], before: str) -> int:
    """Length of the longest end of `text` that could begin a known value: it is the start
    of the value and it begins a word (a secret glued to the word before it is not expected;
    holding back every letter that starts some secret would re-cut most deltas)."""
    longest = 0
    for value in known:
        at = text.find(value[0], max(len(text) - len(value) + 1, 0))
        while at != -1 and len(text) - at > longest:
            if value.startswith(text[at:]) and (
                not value[0].isalnum() or _starts_token(text, at, before)
            ):
                longest = len(text) - at
                break
            at = text.find(value[0], at + 1)
    return longest


class KnownSecretStream:
    """Masks registered secret values in text that arrives in pieces (a model's streamed
    deltas), also when a value is split across pieces: the end of a piece that could be the
    start of a secret (at the start of a word) is held back until the next piece shows
    whether it is. Whole values are masked wherever they are, inside words too."""

    __slots__ = ("_last", "_pending")

    def __init__(self) -> None:
        self._pending = ""
        self._last = ""  # the last character shown, to tell where a word starts

    def feed(self, piece: str) -> str:
        """The masked text that can be shown now (may be empty)."""
        known = _known
        text = self._pending + piece
        held = 0
        if known:
            text = mask_known_secrets(text)
            held = _partial_tail(text, known, self._last)
        shown = text[: len(text) - held]
        self._pending = text[len(shown) :]
        if shown:
            self._last = shown[-1]
        return shown

    def flush(self) -> str:
        """What is still held back, at the end of the stream (never a whole secret)."""
        text, self._pending = self._pending, ""
        return text


def mask_secrets(text: str) -> str:
    """Return `text` with registered secret values, API keys, tokens, passwords and URL
    credentials replaced by [REDACTED]."""
    text = mask_known_secrets(text)
    lowered = text.lower()
    for pattern, replace, triggers in _RULES:
        if any(trigger in lowered for trigger in triggers):
            text = pattern.sub(replace, text)
    return text


def is_secret_key(name: str) -> bool:
    """True if a field called `name` holds a secret (password, api_key, DB_PASSWORD, ...)."""
    return _SECRET_KEY_NAME.fullmatch(name) is not None


def safe_str(value: object) -> str:
    """str(value), or a placeholder if its __str__ raises."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def record_message(record: logging.LogRecord) -> str:
    """The record's formatted message; str(msg) and str(args) if %-formatting fails."""
    try:
        return record.getMessage()
    except Exception:
        return f"{safe_str(record.msg)} {safe_str(record.args)}"


# Attributes every LogRecord has (plus those Formatter.format adds); the rest came from extra=.
STANDARD_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

_EXCEPTION_FORMATTER = logging.Formatter()


class SecretRedactionFilter(logging.Filter):
    """Mask secrets in a record's message, exception text, stack info and extra fields.

    Never drops a record. The message is formatted and masked once (``args`` becomes None);
    the exception is rendered into ``exc_text`` masked, which Formatters use instead of
    re-rendering ``exc_info``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_secrets(record_message(record))
        record.args = None
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        elif isinstance(record.exc_info, tuple) and record.exc_info[0] is not None:
            text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
            record.exc_text = mask_secrets(text)
        if isinstance(record.stack_info, str):
            record.stack_info = mask_secrets(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in STANDARD_RECORD_ATTRS or value is None:
                continue
            if is_secret_key(key):
                record.__dict__[key] = REDACTED
            elif isinstance(value, str):
                record.__dict__[key] = mask_secrets(value)
        return True


def install_secret_redaction(logger_name: str = "agentflow") -> SecretRedactionFilter:
    """Add one SecretRedactionFilter to a logger and to each of its current handlers.

    "root" or "" names the root logger. Handler-level filters also cover records that child
    loggers propagate. Calling again reuses the installed filter instead of adding another.
    Handlers added to the logger later are not covered.
    """
    logger = logging.getLogger(None if logger_name in ("", "root") else logger_name)
    installed = [f for f in logger.filters if isinstance(f, SecretRedactionFilter)]
    redaction = installed[0] if installed else SecretRedactionFilter()
    logger.addFilter(redaction)
    for handler in logger.handlers:
        if not any(isinstance(f, SecretRedactionFilter) for f in handler.filters):
            handler.addFilter(redaction)
    return redaction
