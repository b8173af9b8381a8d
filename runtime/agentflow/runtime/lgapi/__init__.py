"""The HTTP protocol of `langgraph-sdk` (assistants, threads, runs, store), served by the
same run service as /v1."""

__all__: list[str] = []
