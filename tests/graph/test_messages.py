"""Message, ToolCall and Usage: the data every node, model and checkpointer exchanges."""

import json

import pytest

from agentflow.graph import InvalidInputError, Message, ToolCall, Usage


def test_message_round_trips_through_dict_and_json() -> None:
    call = ToolCall(name="search", arguments={"q": "weather", "n": 3}, id="call_1")
    original = Message.assistant(
        [{"type": "text", "text": "Let me look."}],
        tool_calls=[call],
        name="planner",
        usage=Usage(prompt_tokens=12, completion_tokens=4),
        metadata={"model": "m-1"},
    )
    data = json.loads(json.dumps(original.to_dict()))
    restored = Message.from_dict(data)
    assert restored == original
    assert restored.tool_calls[0].arguments == {"q": "weather", "n": 3}
    assert restored.usage == Usage(12, 4)


def test_tool_message_round_trip_keeps_tool_call_id() -> None:
    msg = Message.tool("42", tool_call_id="call_7", name="calc")
    data = msg.to_dict()
    assert data["role"] == "tool"
    assert data["tool_call_id"] == "call_7"
    assert Message.from_dict(data) == msg


def test_to_dict_leaves_out_unset_optional_fields() -> None:
    data = Message.user("hi").to_dict()
    assert set(data) == {"id", "role", "content", "created_at"}


def test_from_dict_minimal_fills_defaults() -> None:
    msg = Message.from_dict({"role": "user", "content": "hello"})
    assert msg.role == "user"
    assert msg.text == "hello"
    assert msg.tool_calls == []
    assert msg.usage is None
    assert isinstance(msg.id, str) and msg.id
    assert Message.from_dict({"role": "user", "content": "hello"}).id != msg.id
    assert Message.from_dict({"role": "assistant", "content": None}).content == ""


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"role": "robot", "content": "x"}, "role"),
        ({"content": "x"}, "role"),
        ({"role": "user", "content": 5}, "content"),
        ({"role": "user", "content": ["not a block"]}, "content"),
        ({"role": "assistant", "tool_calls": {"name": "x"}}, "tool_calls"),
        ({"role": "assistant", "tool_calls": [{"arguments": {}}]}, "name"),
        ({"role": "assistant", "tool_calls": [{"name": "x", "arguments": [1]}]}, "arguments"),
        ({"role": "user", "metadata": [1]}, "metadata"),
        ({"role": "user", "usage": 3}, "usage"),
        ({"role": "tool", "tool_call_id": 3}, "tool_call_id"),
    ],
)
def test_from_dict_rejects_bad_fields(data: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        Message.from_dict(data)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(InvalidInputError, match="str"):
        Message.from_dict("hello")  # type: ignore[arg-type]


def test_text_joins_text_blocks_and_skips_others() -> None:
    msg = Message.user(
        [
            {"type": "text", "text": "Look at "},
            {"type": "image", "url": "https://example.com/cat.png"},
            {"type": "text", "text": "this cat"},
        ]
    )
    assert msg.text == "Look at this cat"
    assert Message.user("plain").text == "plain"
    assert Message.user([{"type": "image", "url": "x"}]).text == ""


def test_role_constructors() -> None:
    assert Message.system("s").role == "system"
    assert Message.user("u").role == "user"
    assert Message.assistant().role == "assistant"
    assert Message.assistant().content == ""
    tool = Message.tool("out", tool_call_id="c1")
    assert (tool.role, tool.tool_call_id) == ("tool", "c1")


def test_usage_addition_and_total() -> None:
    total = Usage(10, 5) + Usage(prompt_tokens=3, completion_tokens=2)
    assert total == Usage(13, 7)
    assert total.total_tokens == 20
    assert total.to_dict() == {"prompt_tokens": 13, "completion_tokens": 7, "total_tokens": 20}
    assert Usage() + Usage() == Usage(0, 0)
    assert Usage.from_dict({"prompt_tokens": 4, "completion_tokens": None}) == Usage(4, 0)


def test_tool_call_defaults_and_dict_round_trip() -> None:
    a = ToolCall(name="search")
    b = ToolCall(name="search")
    assert a.arguments == {}
    assert a.id.startswith("call_")
    assert a.id != b.id
    restored = ToolCall.from_dict(a.to_dict())
    assert restored == a
    assert ToolCall.from_dict({"name": "x"}).id.startswith("call_")
    assert ToolCall.from_dict({"name": "x", "id": "given"}).id == "given"
