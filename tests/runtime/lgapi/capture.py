"""Write a readable capture of what a server answers to every conformance scenario.

    python -m tests.runtime.lgapi.capture http://127.0.0.1:PORT OUT.md [langgraph|agentflow]

Each scenario's HTTP exchanges (request path and JSON body, status, the headers a client reads,
the JSON or SSE events answered) under its step names; a failed semantic assert is reported
in the file and the capture goes on."""

from __future__ import annotations

import asyncio
import sys
import time
import traceback

from tests.runtime.lgapi.recording import Recorder, to_markdown
from tests.runtime.lgapi.scenarios import (
    AGENTFLOW,
    ASYNC_SCENARIOS,
    LANGGRAPH,
    Transcript,
    async_client,
    sync_client,
    sync_subset,
)


async def capture(url: str, kind: str, server: str) -> str:
    target = LANGGRAPH if kind == "langgraph" else AGENTFLOW
    sections = [f"# Conformance capture: {url} ({kind} graphs)\n"]
    for name, scenario in ASYNC_SCENARIOS.items():
        recorder = Recorder()
        client = async_client(url, recorder)
        began = time.monotonic()
        try:
            await scenario(client, target, Transcript(server, recorder))
            outcome = "passed"
        except Exception:
            outcome = "FAILED\n```\n" + traceback.format_exc()[-3000:] + "```"
        finally:
            await client.aclose()
        took = f" ({time.monotonic() - began:.1f} s)"
        sections.append(
            f"\n# scenario `{name}`: {outcome}{took}\n" + to_markdown(recorder.exchanges)
        )
    recorder = Recorder()
    sclient = sync_client(url, recorder)
    try:
        await asyncio.to_thread(sync_subset, sclient, target, Transcript(server, recorder))
        outcome = "passed"
    except Exception:
        outcome = "FAILED\n```\n" + traceback.format_exc()[-3000:] + "```"
    finally:
        sclient.close()
    sections.append(f"\n# scenario `sync_subset`: {outcome}\n" + to_markdown(recorder.exchanges))
    return "\n".join(sections)


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    kind = sys.argv[3] if len(sys.argv) > 3 else "langgraph"
    server = sys.argv[4] if len(sys.argv) > 4 else "langgraph-dev"
    text = asyncio.run(capture(url, kind, server))
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out}: {text.count(chr(10))} lines")


if __name__ == "__main__":
    main()
