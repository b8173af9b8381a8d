"""HTTP routes of the runtime, grouped by resource; `ENDPOINTS` is the route table."""

from agentflow.runtime.routes.table import ENDPOINTS

__all__ = ["ENDPOINTS"]
