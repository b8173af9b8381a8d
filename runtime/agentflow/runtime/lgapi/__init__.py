"""The LangGraph face: the HTTP protocol of `langgraph-sdk` (assistants, threads, runs,
store) at the root paths that client uses, on agentflow's run service and store; and LangGraph
compiled graphs served with their state in agentflow's store (`adapter`, with the `langgraph`
extra)."""

__all__: list[str] = []
