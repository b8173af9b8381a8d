"""Secret redaction for log output: `mask_secrets` and a logging filter that applies it.

Every pattern is compiled once at import. Rules run in a fixed order; each replaces only the
secret part with ``[REDACTED]`` and none matches its own output, so masking is idempotent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

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


def mask_secrets(text: str) -> str:
    """Return `text` with API keys, tokens, passwords and URL credentials replaced by [REDACTED]."""
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
