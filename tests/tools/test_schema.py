"""`@tool`: names, descriptions and the JSON Schema the model sees."""

import enum
import inspect
from typing import Annotated, Any, Literal, Optional

import pytest

from agentflow.tools import Tool, ToolContext, tool


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


def params(t: Tool) -> dict[str, Any]:
    return t.parameters


# -- decorator forms -----------------------------------------------------------------------


def test_bare_decorator_builds_a_tool_with_name_description_and_schema() -> None:
    @tool
    def get_weather(city: str, days: int = 3) -> str:
        """Get the weather forecast for a city."""
        return f"{city}:{days}"

    assert isinstance(get_weather, Tool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the weather forecast for a city."
    assert get_weather.schema == {
        "name": "get_weather",
        "description": "Get the weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "default": 3},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    assert set(get_weather.schema) == {"name", "description", "parameters"}


def test_decorator_with_options_overrides_name_and_description() -> None:
    @tool(name="lookup", description="Look a word up.", timeout=2.5, read_only=True)
    def find_word(word: str) -> str:
        """The docstring loses to the explicit description."""
        return word

    assert find_word.name == "lookup"
    assert find_word.description == "Look a word up."
    assert find_word.schema["name"] == "lookup"
    assert find_word.schema["description"] == "Look a word up."
    assert find_word.timeout == 2.5
    assert find_word.read_only is True


def test_defaults_of_options() -> None:
    @tool
    def noop() -> None:
        """Do nothing."""

    assert noop.timeout is None
    assert noop.read_only is False
    assert noop.parameters == {"type": "object", "properties": {}, "additionalProperties": False}
    assert "required" not in noop.parameters


def test_decorator_with_empty_parentheses_works() -> None:
    @tool()
    def ping() -> str:
        """Ping."""
        return "pong"

    assert isinstance(ping, Tool)
    assert ping.name == "ping"
    assert ping() == "pong"


def test_description_falls_back_to_the_name_without_docstring() -> None:
    @tool
    def send_reminder_email(to: str) -> str:
        return to

    assert send_reminder_email.description == "send reminder email"


def test_tool_is_still_callable_as_the_plain_function() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    assert add(2, 3) == 5
    assert add(a=4, b=5) == 9
    assert add.__name__ == "add"  # type: ignore[attr-defined]
    assert add.__doc__ == "Add two integers."
    assert list(inspect.signature(add).parameters) == ["a", "b"]


async def test_async_tool_is_still_awaitable_as_the_plain_function() -> None:
    @tool
    async def fetch(url: str) -> str:
        """Fetch a URL."""
        return f"got {url}"

    assert fetch.is_async is True
    assert await fetch("http://x") == "got http://x"
    assert fetch.schema["parameters"]["required"] == ["url"]


def test_tool_on_something_not_callable_raises_type_error() -> None:
    with pytest.raises(TypeError, match="needs a function"):
        tool(42)  # type: ignore[call-overload]


def test_repr_names_the_tool() -> None:
    @tool(name="calc")
    def calculator(expression: str) -> str:
        return expression

    assert repr(calculator) == "<Tool calc>"


# -- types -----------------------------------------------------------------------------------


def test_scalar_types() -> None:
    @tool
    def f(s: str, i: int, x: float, b: bool) -> None:
        """F."""

    assert params(f)["properties"] == {
        "s": {"type": "string"},
        "i": {"type": "integer"},
        "x": {"type": "number"},
        "b": {"type": "boolean"},
    }
    assert params(f)["required"] == ["s", "i", "x", "b"]


def test_list_and_dict_types() -> None:
    @tool
    def f(
        tags: list[str],
        matrix: list[list[int]],
        scores: dict[str, float],
        anything: list,  # type: ignore[type-arg]
    ) -> None:
        """F."""

    props = params(f)["properties"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["matrix"] == {
        "type": "array",
        "items": {"type": "array", "items": {"type": "integer"}},
    }
    assert props["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["anything"] == {"type": "array"}


def test_literal_and_enum_types() -> None:
    @tool
    def f(unit: Literal["c", "f"], color: Color, level: Priority, n: Literal[1, 2, 3] = 1) -> None:
        """F."""

    props = params(f)["properties"]
    assert props["unit"] == {"enum": ["c", "f"]}
    assert props["color"] == {"enum": ["red", "green"]}
    assert props["level"] == {"enum": [1, 2]}
    assert props["n"] == {"enum": [1, 2, 3], "default": 1}


def test_optional_parameters_are_not_required_and_show_their_default() -> None:
    @tool
    def f(
        query: str,
        limit: int | None = None,
        lang: Optional[str] = "en",  # noqa: UP045 - the typing spelling must work too
        exact: bool = False,
        ratio: float = 0.5,
    ) -> None:
        """F."""

    p = params(f)
    assert p["required"] == ["query"]
    assert p["properties"]["limit"]["default"] is None
    assert p["properties"]["lang"]["default"] == "en"
    assert p["properties"]["lang"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert p["properties"]["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert p["properties"]["exact"] == {"type": "boolean", "default": False}
    assert p["properties"]["ratio"] == {"type": "number", "default": 0.5}


def test_union_of_several_types_is_any_of() -> None:
    @tool
    def f(key: int | str) -> None:
        """F."""

    assert params(f)["properties"]["key"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def test_annotated_string_becomes_the_parameter_description() -> None:
    @tool
    def f(
        city: Annotated[str, "The city, e.g. Paris"],
        days: Annotated[int, "How many days ahead"] = 1,
    ) -> None:
        """Forecast."""

    props = params(f)["properties"]
    assert props["city"] == {"type": "string", "description": "The city, e.g. Paris"}
    assert props["days"] == {"type": "integer", "description": "How many days ahead", "default": 1}


def test_unannotated_parameter_accepts_anything() -> None:
    @tool
    def f(value) -> None:  # type: ignore[no-untyped-def]
        """F."""

    assert params(f)["properties"] == {"value": {}}
    assert params(f)["required"] == ["value"]


def test_var_args_are_left_out_of_the_schema() -> None:
    @tool
    def f(a: int, *args: int, **kwargs: str) -> None:
        """F."""

    assert list(params(f)["properties"]) == ["a"]


@pytest.mark.parametrize("bad", [object, bytes, complex])
def test_unsupported_parameter_type_raises_type_error_naming_the_parameter(bad: type) -> None:
    def convert(good: str, weird) -> None:  # type: ignore[no-untyped-def]
        """Convert."""

    convert.__annotations__["weird"] = bad
    with pytest.raises(TypeError, match="'weird'") as info:
        tool(convert)
    assert "convert" in str(info.value)
    assert "unsupported" in str(info.value)
    assert "'good'" not in str(info.value)


def test_unsupported_type_nested_in_a_list_names_the_parameter() -> None:
    class Point:
        pass

    def plot(points: list[Point]) -> None:
        """Plot."""

    with pytest.raises(TypeError, match="'points'"):
        tool(plot)


def test_tool_context_parameter_is_injected_and_not_in_the_schema() -> None:
    @tool
    def charge(amount: float, ctx: ToolContext) -> str:
        """Charge the card."""
        return str(amount)

    assert params(charge)["properties"] == {"amount": {"type": "number"}}
    assert params(charge)["required"] == ["amount"]


# -- docstrings ------------------------------------------------------------------------------


def test_google_docstring_gives_description_and_parameter_descriptions() -> None:
    @tool
    def get_weather(city: str, units: Literal["c", "f"] = "c", days: int = 3) -> str:
        """Get the weather forecast
        for a city.

        Uses a remote service; this paragraph is not part of the description.

        Args:
            city: The city name,
                including the country.
            units (str): Temperature units.
            days: How many days ahead.

        Returns:
            The forecast as text.
        """
        return city

    assert get_weather.description == "Get the weather forecast for a city."
    props = params(get_weather)["properties"]
    assert props["city"]["description"] == "The city name, including the country."
    assert props["units"]["description"] == "Temperature units."
    assert props["units"]["enum"] == ["c", "f"]
    assert props["days"]["description"] == "How many days ahead."
    assert "forecast as text" not in str(get_weather.schema)


def test_sphinx_docstring_gives_parameter_descriptions() -> None:
    @tool
    def search(query: str, limit: int = 5) -> list[str]:
        """Search the web.

        :param query: What to search for.
        :param int limit: Maximum number of results.
        :returns: The hits.
        """
        return []

    assert search.description == "Search the web."
    props = params(search)["properties"]
    assert props["query"]["description"] == "What to search for."
    assert props["limit"]["description"] == "Maximum number of results."


def test_sphinx_params_right_after_the_summary_stay_out_of_the_description() -> None:
    @tool
    def search(query: str) -> str:
        """Search the web.
        :param query: What to search for.
        """
        return query

    assert search.description == "Search the web."
    assert params(search)["properties"]["query"]["description"] == "What to search for."


def test_annotated_description_wins_over_the_docstring() -> None:
    @tool
    def f(x: Annotated[str, "from Annotated"]) -> None:
        """F.

        Args:
            x: from the docstring
        """

    assert params(f)["properties"]["x"]["description"] == "from Annotated"


def test_docstring_for_unknown_parameter_is_ignored() -> None:
    @tool
    def f(x: str) -> None:
        """F.

        Args:
            x: the x
            y: there is no y
        """

    assert list(params(f)["properties"]) == ["x"]
    assert "there is no y" not in str(f.schema)
