"""`langgraph_sdk` (async and sync) against `langgraph dev` and against `agentflow api`.

The scenarios (scenarios.py) run once per server and graph kind, all of a server's at once
(each on threads of its own), and every test reads its scenario's outcome:

- on `langgraph dev`, each scenario passes its semantic asserts: the protocol as the real
  server speaks it (where it differs from the documentation, the scenarios pin what it does);
- on agentflow (SQLite; Postgres with two workers), the LangGraph graphs pass the same asserts
  and give transcripts of the same shape as `langgraph dev`'s (field names and types, event
  names and their order; ids and times are placeholders);
- on agentflow, its own graph `echo` passes the same asserts, and its transcripts match
  `langgraph dev`'s in outline (the same steps, the same resource fields, the same stream
  event names), which is what two different graphs can share.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.runtime.lgapi.recording import Recorder
from tests.runtime.lgapi.scenarios import (
    AGENTFLOW,
    ASYNC_SCENARIOS,
    DIVERGENT_STEPS,
    LANGGRAPH,
    Target,
    Transcript,
    async_client,
    outline,
    sync_client,
    sync_subset,
)

pytestmark = pytest.mark.slow  # starts langgraph dev and agentflow api processes

SCENARIOS = [*ASYNC_SCENARIOS, "sync_subset"]
AGENTFLOW_SERVERS = ["agentflow_sqlite", "agentflow_postgres"]
SCENARIO_TIMEOUT = 60.0  # seconds for all scenarios of one server


@dataclass
class Outcome:
    transcript: Transcript
    error: str | None  # the traceback of a failed assert or call


async def run_one(name: str, url: str, target: Target, server: str) -> Outcome:
    transcript = Transcript(server, Recorder())
    assert transcript.recorder is not None
    try:
        if name == "sync_subset":
            sclient = sync_client(url, transcript.recorder)
            try:
                await asyncio.to_thread(sync_subset, sclient, target, transcript)
            finally:
                sclient.close()
        else:
            client = async_client(url, transcript.recorder)
            try:
                await ASYNC_SCENARIOS[name](client, target, transcript)
            finally:
                await client.aclose()
    except Exception:
        return Outcome(transcript, traceback.format_exc())
    return Outcome(transcript, None)


async def run_all(url: str, target: Target, server: str) -> dict[str, Outcome]:
    async def bounded(name: str) -> Outcome:
        try:
            return await asyncio.wait_for(run_one(name, url, target, server), SCENARIO_TIMEOUT)
        except TimeoutError:
            return Outcome(Transcript(server), f"{name} took over {SCENARIO_TIMEOUT} s")

    outcomes = await asyncio.gather(*(bounded(name) for name in SCENARIOS))
    return dict(zip(SCENARIOS, outcomes, strict=True))


_cache: dict[tuple[str, str], dict[str, Outcome]] = {}


@pytest.fixture
def outcomes(request: pytest.FixtureRequest) -> Callable[[str, Target], dict[str, Outcome]]:
    """outcomes(server fixture name, target): every scenario's outcome there, run once."""

    def get(server: str, target: Target) -> dict[str, Outcome]:
        key = (server, target.kind)
        if key not in _cache:
            url = request.getfixturevalue(server)
            kind = "langgraph-dev" if server == "langgraph_dev" else "agentflow"
            _cache[key] = asyncio.run(run_all(url, target, kind))
        return _cache[key]

    return get


def passed(outcome: Outcome, where: str) -> Transcript:
    if outcome.error is not None:
        pytest.fail(f"{where}:\n{outcome.error}\n{dump(outcome.transcript)}", pytrace=False)
    return outcome.transcript


def dump(transcript: Transcript, limit: int = 6000) -> str:
    text = json.dumps(transcript.steps, indent=1)
    return "transcript so far:\n" + (text if len(text) < limit else text[-limit:])


def compare(expected: list[Any], got: list[Any], what: str) -> None:
    if got == expected:
        return
    a = json.dumps(expected, indent=1, sort_keys=True).splitlines()
    b = json.dumps(got, indent=1, sort_keys=True).splitlines()
    diff = "\n".join(difflib.unified_diff(a, b, "langgraph dev", "agentflow", n=4, lineterm=""))
    pytest.fail(f"{what} differs from langgraph dev's:\n{diff[:12000]}", pytrace=False)


def comparable(transcript: Transcript) -> list[Any]:
    return [s for s in transcript.shape() if s["call"] not in DIVERGENT_STEPS]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_langgraph_dev(outcomes: Callable[..., dict[str, Outcome]], scenario: str) -> None:
    """The scenario's asserts hold on `langgraph dev`: they describe the real protocol."""
    passed(outcomes("langgraph_dev", LANGGRAPH)[scenario], "on langgraph dev")


@pytest.mark.parametrize("server", AGENTFLOW_SERVERS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_agentflow_langgraph_graph(
    outcomes: Callable[..., dict[str, Outcome]], scenario: str, server: str
) -> None:
    """A LangGraph graph on agentflow: the asserts hold, the transcript has langgraph dev's
    shape step by step."""
    reference = passed(outcomes("langgraph_dev", LANGGRAPH)[scenario], "on langgraph dev")
    got = passed(outcomes(server, LANGGRAPH)[scenario], f"on {server}")
    compare(comparable(reference), comparable(got), f"the {scenario} transcript on {server}")


@pytest.mark.parametrize("server", AGENTFLOW_SERVERS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_agentflow_graph(
    outcomes: Callable[..., dict[str, Outcome]], scenario: str, server: str
) -> None:
    """agentflow's own graph through the same protocol: the asserts hold, the transcript
    has langgraph dev's outline."""
    reference = passed(outcomes("langgraph_dev", LANGGRAPH)[scenario], "on langgraph dev")
    got = passed(outcomes(server, AGENTFLOW)[scenario], f"on {server}")
    compare(
        [outline(s) for s in comparable(reference)],
        [outline(s) for s in comparable(got)],
        f"the {scenario} transcript outline of the agentflow graph on {server}",
    )
