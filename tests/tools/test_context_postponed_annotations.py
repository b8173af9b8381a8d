"""ToolContext injection in a module that uses ``from __future__ import annotations``.

With postponed evaluation every annotation is a string, so the tool must resolve it
before deciding which parameter is the injected context.
"""

from __future__ import annotations

import agentflow.tools as af
from agentflow.tools import ToolContext, tool

CTX = ToolContext(thread_id="t", run_id="r", user_id="u", tool_call_id="c", step=1)


@tool
def plain_name(x: int, ctx: ToolContext) -> str:
    """Uses the imported name."""
    return f"{x}:{ctx.user_id}"


@af.tool
def qualified_name(x: int, ctx: af.ToolContext) -> str:
    """Uses the module-qualified name."""
    return f"{x}:{ctx.user_id}"


def test_context_parameter_is_left_out_of_the_schema_either_way() -> None:
    for t in (plain_name, qualified_name):
        assert t.parameters["properties"] == {"x": {"type": "integer"}}, t.name
        assert t.parameters["required"] == ["x"], t.name


async def test_context_is_injected_with_the_imported_name() -> None:
    assert await plain_name.arun({"x": 1}, CTX) == "1:u"


async def test_context_is_injected_with_a_module_qualified_name() -> None:
    # The schema (built from resolved hints) hides `ctx` from the model, so the runtime
    # must inject it; otherwise every call fails with "missing argument 'ctx'".
    assert await qualified_name.arun({"x": 1}, CTX) == "1:u"
