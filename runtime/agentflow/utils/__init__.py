"""Secret redaction, logging setup and the declaration of every setting agentflow reads
(standard library only)."""

from __future__ import annotations

from agentflow.utils.config import (
    SETTINGS,
    VARIABLE_REFERENCE,
    ByMode,
    Kind,
    Setting,
    children,
    setting,
    unknown_keys,
)
from agentflow.utils.logging import JsonFormatter, PrettyFormatter, configure_logging
from agentflow.utils.secrets import (
    SecretRedactionFilter,
    install_secret_redaction,
    is_secret_key,
    mask_secrets,
)

__all__ = [
    "SETTINGS",
    "VARIABLE_REFERENCE",
    "ByMode",
    "JsonFormatter",
    "Kind",
    "PrettyFormatter",
    "SecretRedactionFilter",
    "Setting",
    "children",
    "configure_logging",
    "install_secret_redaction",
    "is_secret_key",
    "mask_secrets",
    "setting",
    "unknown_keys",
]
