"""Secret redaction and logging setup for agentflow (standard library only)."""

from __future__ import annotations

from agentflow.utils.logging import JsonFormatter, PrettyFormatter, configure_logging
from agentflow.utils.secrets import SecretRedactionFilter, install_secret_redaction, mask_secrets

__all__ = [
    "JsonFormatter",
    "PrettyFormatter",
    "SecretRedactionFilter",
    "configure_logging",
    "install_secret_redaction",
    "mask_secrets",
]
