"""`Tool.arun`: argument validation, result text, and the injected ToolContext."""

import datetime as dt
import enum
import json
import threading
from typing import Any, Literal

import pytest

from agentflow.tools import ArgumentError, ToolContext, tool


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@tool
def forecast(
    city: str,
    days: int = 3,
    units: Literal["c", "f"] = "c",
    ratio: float = 1.0,
    exact: bool = False,
) -> dict[str, Any]:
    """Forecast."""
    return {"city": city, "days": days, "units": units, "ratio": ratio, "exact": exact}


@tool
def stats(values: list[int], weights: dict[str, float] | None = None) -> int:
    """Stats."""
    return sum(values)


# -- validation ------------------------------------------------------------------------------


async def test_valid_arguments_run_the_function_with_defaults_filled_in() -> None:
    out = await forecast.arun({"city": "Paris"})
    assert json.loads(out) == {
        "city": "Paris",
        "days": 3,
        "units": "c",
        "ratio": 1.0,
        "exact": False,
    }


async def test_missing_required_argument_is_named() -> None:
    with pytest.raises(ArgumentError, match="missing required 'city'"):
        await forecast.arun({"days": 2})


async def test_unexpected_argument_is_named_and_known_ones_listed() -> None:
    with pytest.raises(ArgumentError) as info:
        await forecast.arun({"city": "Paris", "zip": "75001"})
    message = str(info.value)
    assert "unexpected argument 'zip'" in message
    assert "city" in message and "days" in message


@pytest.mark.parametrize(
    ("arguments", "name", "expected"),
    [
        ({"city": 42}, "city", "string"),
        ({"city": "Paris", "days": "3"}, "days", "integer"),
        ({"city": "Paris", "days": 2.5}, "days", "integer"),
        ({"city": "Paris", "days": True}, "days", "integer"),
        ({"city": "Paris", "ratio": "0.5"}, "ratio", "number"),
        ({"city": "Paris", "ratio": False}, "ratio", "number"),
        ({"city": "Paris", "exact": 1}, "exact", "boolean"),
        ({"city": "Paris", "exact": "true"}, "exact", "boolean"),
        ({"city": None}, "city", "string"),
    ],
)
async def test_wrong_type_is_rejected_naming_the_argument(
    arguments: dict[str, Any], name: str, expected: str
) -> None:
    with pytest.raises(ArgumentError, match=rf"arguments\.{name}: expected {expected}"):
        await forecast.arun(arguments)


async def test_int_is_accepted_for_a_number_parameter() -> None:
    out = json.loads(await forecast.arun({"city": "Paris", "ratio": 2}))
    assert out["ratio"] == 2


async def test_enum_violation_lists_the_allowed_values() -> None:
    with pytest.raises(ArgumentError) as info:
        await forecast.arun({"city": "Paris", "units": "kelvin"})
    message = str(info.value)
    assert "arguments.units" in message
    assert "'c'" in message and "'f'" in message
    assert "'kelvin'" in message


async def test_enum_class_violation_is_rejected() -> None:
    @tool
    def paint(color: Color) -> str:
        return "ok"

    with pytest.raises(ArgumentError, match=r"arguments\.color: must be one of \['red', 'green'\]"):
        await paint.arun({"color": "blue"})


async def test_nested_list_item_type_is_checked_with_its_index() -> None:
    with pytest.raises(ArgumentError, match=r"arguments\.values\[2\]: expected integer"):
        await stats.arun({"values": [1, 2, "3"]})
    with pytest.raises(ArgumentError, match=r"arguments\.values: expected array"):
        await stats.arun({"values": "1,2,3"})


async def test_dict_values_are_checked_by_key() -> None:
    with pytest.raises(ArgumentError, match=r"arguments\.weights\.bob: expected number"):
        await stats.arun({"values": [1], "weights": {"alice": 1.0, "bob": "heavy"}})
    assert await stats.arun({"values": [1, 2], "weights": {"alice": 1}}) == "3"


async def test_list_of_lists_checks_inner_items() -> None:
    @tool
    def grid(rows: list[list[int]]) -> int:
        return len(rows)

    assert await grid.arun({"rows": [[1, 2], [3]]}) == "2"
    with pytest.raises(ArgumentError, match=r"arguments\.rows\[1\]\[0\]: expected integer"):
        await grid.arun({"rows": [[1], ["x"]]})


async def test_union_accepts_either_and_rejects_others() -> None:
    @tool
    def lookup(key: int | str) -> str:
        return repr(key)

    assert await lookup.arun({"key": 3}) == "3"
    assert await lookup.arun({"key": "a"}) == "'a'"
    with pytest.raises(ArgumentError, match=r"arguments\.key: .*none of the allowed types"):
        await lookup.arun({"key": [1]})


@pytest.mark.parametrize("arguments", [[1, 2], "city=Paris", None, 3])
async def test_arguments_must_be_an_object(arguments: Any) -> None:
    with pytest.raises(ArgumentError, match="must be a JSON object"):
        await forecast.arun(arguments)


async def test_argument_error_is_a_value_error() -> None:
    assert issubclass(ArgumentError, ValueError)


async def test_function_is_not_called_when_arguments_are_bad() -> None:
    calls: list[int] = []

    @tool
    def record(n: int) -> str:
        calls.append(n)
        return "ok"

    with pytest.raises(ArgumentError):
        await record.arun({"n": "1"})
    assert calls == []
    assert await record.arun({"n": 1}) == "ok"
    assert calls == [1]


async def test_optional_parameter_accepts_an_explicit_null() -> None:
    # Models (notably OpenAI strict mode) send `null` for optional parameters they skip.
    @tool
    def search(query: str, limit: int | None = None) -> str:
        return f"{query}:{limit}"

    assert await search.arun({"query": "cats"}) == "cats:None"
    assert await search.arun({"query": "cats", "limit": 5}) == "cats:5"
    assert await search.arun({"query": "cats", "limit": None}) == "cats:None"


async def test_enum_parameter_receives_the_enum_member() -> None:
    # The function is typed `color: Color`; it must not get a bare string.
    @tool
    def paint(color: Color) -> str:
        assert isinstance(color, Color), f"got {type(color).__name__} {color!r}"
        return color.name

    assert await paint.arun({"color": "green"}) == "GREEN"


# -- results ---------------------------------------------------------------------------------


async def test_string_result_is_returned_as_is() -> None:
    @tool
    def say() -> str:
        return '{"not": "re-encoded"}'

    assert await say.arun({}) == '{"not": "re-encoded"}'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5, "5"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1, "a"]'),
        ({"temp": 21, "city": "Zürich"}, '{"temp": 21, "city": "Zürich"}'),
    ],
)
async def test_other_results_are_json_encoded(value: Any, text: str) -> None:
    @tool
    def give() -> Any:
        return value

    out = await give.arun({})
    assert out == text
    assert json.loads(out) == value


async def test_values_json_cannot_encode_are_stringified() -> None:
    @tool
    def when() -> dict[str, Any]:
        return {"at": dt.date(2024, 5, 1)}

    assert json.loads(await when.arun({})) == {"at": "2024-05-01"}


async def test_async_tool_result_is_encoded_too() -> None:
    @tool
    async def total(values: list[float]) -> float:
        return sum(values)

    assert await total.arun({"values": [1.5, 2]}) == "3.5"


async def test_sync_tool_runs_in_a_worker_thread() -> None:
    seen: list[int] = []

    @tool
    def where() -> str:
        seen.append(threading.get_ident())
        return "here"

    assert await where.arun({}) == "here"
    assert seen and seen[0] != threading.get_ident()


async def test_exceptions_from_the_function_propagate_from_arun() -> None:
    @tool
    def explode() -> str:
        raise RuntimeError("kaboom")

    with pytest.raises(RuntimeError, match="kaboom"):
        await explode.arun({})


# -- ToolContext -----------------------------------------------------------------------------


def make_context(**overrides: Any) -> ToolContext:
    values: dict[str, Any] = {
        "thread_id": "thread-1",
        "run_id": "run-1",
        "user_id": "alice",
        "tool_call_id": "call_1",
        "step": 2,
    }
    values.update(overrides)
    return ToolContext(**values)


async def test_context_is_injected_into_the_declared_parameter() -> None:
    got: list[ToolContext] = []

    @tool
    def charge(amount: float, context: ToolContext) -> str:
        got.append(context)
        return f"charged {amount}"

    ctx = make_context()
    assert await charge.arun({"amount": 9.5}, ctx) == "charged 9.5"
    assert got == [ctx]
    assert (got[0].thread_id, got[0].run_id, got[0].user_id) == ("thread-1", "run-1", "alice")
    assert (got[0].tool_call_id, got[0].step) == ("call_1", 2)


async def test_async_tool_gets_the_context_too() -> None:
    @tool
    async def who(ctx: ToolContext) -> str:
        return ctx.user_id

    assert await who.arun({}, make_context(user_id="bob")) == "bob"


async def test_model_cannot_pass_the_context_parameter_itself() -> None:
    @tool
    def who(ctx: ToolContext) -> str:
        return ctx.user_id

    with pytest.raises(ArgumentError, match="unexpected argument 'ctx'"):
        await who.arun({"ctx": {"user_id": "admin"}}, make_context())


def test_idempotency_key_is_stable_for_the_same_call() -> None:
    a = make_context()
    b = make_context()
    assert a.idempotency_key == b.idempotency_key
    assert a.idempotency_key == a.idempotency_key
    assert len(a.idempotency_key) == 32
    int(a.idempotency_key, 16)


@pytest.mark.parametrize(
    "change", [{"tool_call_id": "call_2"}, {"step": 3}, {"thread_id": "thread-2"}]
)
def test_idempotency_key_differs_for_another_call_step_or_thread(change: dict[str, Any]) -> None:
    assert make_context().idempotency_key != make_context(**change).idempotency_key


def test_tool_context_is_immutable() -> None:
    ctx = make_context()
    with pytest.raises(AttributeError):
        ctx.step = 5  # type: ignore[misc]
