"""The same one-call agent in LangGraph, served by `langgraph dev` (its own venv)."""

import os

from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent

model = ChatOpenAI(
    model="mock-model-2024-01-01",
    base_url=os.environ["CAPACITY_MOCK_URL"] + "/v1",
    api_key="sk-bench",
    streaming=True,
)
graph = create_react_agent(model, tools=[])
