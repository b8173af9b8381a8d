"""The agent under test: one model call, no tools, against the mock at $CAPACITY_MOCK_URL."""

import os

from agentflow.models import OpenAIChat
from agentflow.tools import create_react_agent

model = OpenAIChat(
    "mock-model-2024-01-01", base_url=os.environ["CAPACITY_MOCK_URL"] + "/v1", api_key="sk-bench"
)
app = create_react_agent(model, [])
