"""Every environment variable the runtime reads, declared once."""

from __future__ import annotations

MODE = "MODE"  # development | production
LOG_LEVEL = "LOG_LEVEL"
LOG_FORMAT = "LOG_FORMAT"  # json | pretty
ORIGINS = "ORIGINS"  # comma-separated exact origins, or *
JWT_SECRET_KEY = "JWT_SECRET_KEY"
JWT_ALGORITHM = "JWT_ALGORITHM"
JWT_PUBLIC_KEY = "JWT_PUBLIC_KEY"
JWT_JWKS_URL = "JWT_JWKS_URL"
JWT_AUDIENCE = "JWT_AUDIENCE"
JWT_ISSUER = "JWT_ISSUER"
DATABASE_URL = "DATABASE_URL"
REDIS_URL = "REDIS_URL"
DOCS_PATH = "DOCS_PATH"
REDOCS_PATH = "REDOCS_PATH"
HOST = "HOST"
PORT = "PORT"
WORKERS = "WEB_CONCURRENCY"
MAX_BODY_BYTES = "MAX_BODY_BYTES"
RUN_TIMEOUT = "RUN_TIMEOUT"
RECURSION_LIMIT = "RECURSION_LIMIT"
SHUTDOWN_GRACE = "SHUTDOWN_GRACE"
HEARTBEAT_INTERVAL = "HEARTBEAT_INTERVAL"
IDEMPOTENCY_TTL = "IDEMPOTENCY_TTL"
PLAYGROUND = "PLAYGROUND"  # serve /playground under `agentflow api` too (play always does)
MAX_ACTIVE_RUNS = "MAX_ACTIVE_RUNS"  # runs one worker holds at once; more get 503
RUN_LEASE_TTL = "RUN_LEASE_TTL"  # seconds a crashed worker's thread stays locked

# Internal: how `agentflow api` hands its resolved options to worker processes.
CONFIG_PATH = "AGENTFLOW_CONFIG"
OVERRIDES = "AGENTFLOW_OVERRIDES"
SHOWN_WARNINGS = "AGENTFLOW_SHOWN_WARNINGS"  # settings warnings the CLI already printed (JSON)
