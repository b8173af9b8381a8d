"""Arithmetic in a chat message, for the offline DemoChat: "what is (2 + 3) * 4" becomes the
steps add(2, 3), then multiply(<that result>, 4).

Linear in the length of the message whatever it holds: one pass of a tokenizer whose
alternatives never backtrack into each other, then a shunting-yard parse of each run of
arithmetic tokens (runs do not overlap). Numbers longer than ``MAX_DIGITS`` digits and
expressions of more than ``MAX_OPERATIONS`` operations are reported as a ``problem``, not
computed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_DIGITS = 15  # what a float holds exactly
MAX_OPERATIONS = 8  # each one is a model turn and a tool call of the ReAct loop

# One token per match; no alternative can match a prefix of another's match and then
# backtrack, so scanning is linear.
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\*\*|[-+*/^()\u00d7\u00f7]|[A-Za-z]+|\S")
_LEADING_ZERO = re.compile(r"0\d")
_SYMBOLS = {"+": "+", "-": "-", "*": "*", "/": "/", "**": "**", "^": "**", "\u00d7": "*",
            "\u00f7": "/"}  # fmt: skip
_WORDS = {"plus": "+", "minus": "-", "times": "*"}
_WORDS_BEFORE_BY = {"multiplied": "*", "divided": "/"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 3}
_RIGHT_ASSOCIATIVE = frozenset({"**"})

Number = int | float


@dataclass(frozen=True, slots=True)
class Ref:
    """The result of an earlier step, by its index."""

    step: int


Operand = Number | Ref


@dataclass(frozen=True, slots=True)
class Operation:
    """One binary operation: ``op`` is one of + - * / **."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Arithmetic:
    """An expression found in a message: ``text`` is it written canonically ("(2 + 3) * 4"),
    ``steps`` its operations in the order they can be computed (the last one is the
    answer). ``problem`` says why the demo will not compute it (numbers too long, too many
    operations); then ``steps`` is empty."""

    text: str
    steps: tuple[Operation, ...]
    problem: str | None = None

    @property
    def operators(self) -> list[str]:
        """The distinct operators, in order of first use."""
        return list(dict.fromkeys(step.op for step in self.steps))


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # num | op | ( | ) | word
    text: str


def _tokens(text: str) -> Iterator[_Token]:
    pending_by: str | None = None  # "multiplied"/"divided" waiting for "by"
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        lowered = raw.lower()
        if pending_by is not None:
            if lowered == "by":
                yield _Token("op", pending_by)
                pending_by = None
                continue
            yield _Token("word", pending_by)
            pending_by = None
        if raw[0].isdigit():
            yield _Token("num", raw)
        elif raw in _SYMBOLS:
            yield _Token("op", _SYMBOLS[raw])
        elif raw in "()":
            yield _Token(raw, raw)
        elif lowered in _WORDS:
            yield _Token("op", _WORDS[lowered])
        elif lowered in _WORDS_BEFORE_BY:
            pending_by = _WORDS_BEFORE_BY[lowered]
        elif lowered == "x":
            yield _Token("x", raw)  # an operator only between two operands
        else:
            yield _Token("word", raw)
    if pending_by is not None:
        yield _Token("word", pending_by)


def _runs(text: str) -> Iterator[list[_Token]]:
    """Maximal runs of consecutive arithmetic tokens ("x" is '*' between operands)."""
    run: list[_Token] = []
    for token in _tokens(text):
        after_operand = bool(run) and run[-1].kind in ("num", ")")
        if token.kind == "x":
            token = _Token("op", "*") if after_operand else _Token("word", token.text)
        if token.kind == "word" or (after_operand and token.kind in ("num", "(")):
            if run:
                yield run  # two operands in a row ("5 2 + 3") start a new run too
            run = [] if token.kind == "word" else [token]
        else:
            run.append(token)
    if run:
        yield run


def _trim(run: list[_Token]) -> list[_Token]:
    """Drop what cannot start or end an expression ("= 5", "2 +", a stray bracket); a
    leading '-' stays (a sign)."""
    start, end = 0, len(run)
    while start < end and run[start].kind not in ("num", "(") and run[start].text != "-":
        start += 1
    while end > start and run[end - 1].kind not in ("num", ")"):
        end -= 1
    return run[start:end]


def _number(raw: str) -> Number:
    return float(raw) if "." in raw else int(raw)


class _Invalid(Exception):
    pass


def _parse(run: list[_Token]) -> Arithmetic | None:
    """Shunting-yard over one run: the steps in computation order, or None when the run is
    not a well-formed expression with at least one operation."""
    steps: list[Operation] = []
    values: list[Operand] = []
    pending: list[str] = []  # operators and "("
    words: list[str] = []  # the canonical text
    expect_operand = True
    negative = False
    too_long = False

    def apply(op: str) -> None:
        if len(values) < 2:
            raise _Invalid
        right, left = values.pop(), values.pop()
        steps.append(Operation(op, left, right))
        values.append(Ref(len(steps) - 1))

    try:
        for token in run:
            if token.kind == "num":
                if not expect_operand or _LEADING_ZERO.match(token.text):
                    raise _Invalid  # "2024-01-05" is a date, not a subtraction
                if len(token.text.replace(".", "")) > MAX_DIGITS:
                    too_long = True
                    values.append(0)
                else:
                    number = _number(token.text)
                    values.append(-number if negative else number)
                words.append(("-" if negative else "") + token.text)
                negative, expect_operand = False, False
            elif token.kind == "(":
                if not expect_operand or negative:
                    raise _Invalid
                pending.append("(")
                words.append("(")
            elif token.kind == ")":
                if expect_operand:
                    raise _Invalid
                while pending and pending[-1] != "(":
                    apply(pending.pop())
                if not pending:
                    raise _Invalid
                pending.pop()
                words.append(")")
            elif expect_operand:  # an operator where a number belongs: only a sign
                if token.text != "-" or negative:
                    raise _Invalid
                negative = True
            else:
                op = token.text
                while pending and pending[-1] != "(":
                    top = pending[-1]
                    if _PRECEDENCE[top] > _PRECEDENCE[op] or (
                        _PRECEDENCE[top] == _PRECEDENCE[op] and op not in _RIGHT_ASSOCIATIVE
                    ):
                        apply(pending.pop())
                    else:
                        break
                pending.append(op)
                words.append(op)
                expect_operand = True
        if expect_operand:
            raise _Invalid
        while pending:
            op = pending.pop()
            if op == "(":
                raise _Invalid
            apply(op)
    except _Invalid:
        return None
    if not steps:
        return None
    text = _join(words)
    if too_long:
        return Arithmetic(text, (), f"it has a number longer than {MAX_DIGITS} digits")
    if len(steps) > MAX_OPERATIONS:
        return Arithmetic(
            text, (), f"it has {len(steps)} operations; the demo does at most {MAX_OPERATIONS}"
        )
    return Arithmetic(text, tuple(steps))


def _join(words: list[str]) -> str:
    out: list[str] = []
    for word in words:
        if out and word != ")" and out[-1] != "(":
            out.append(" ")
        out.append(word)
    return "".join(out)


def find_arithmetic(text: str) -> Arithmetic | None:
    """The first well-formed arithmetic expression in ``text`` ("what is 12 plus 30?" ->
    12 + 30), or None."""
    for run in _runs(text):
        found = _parse(_trim(run))
        if found is not None:
            return found
    return None


def numbers_in(text: str) -> list[Number]:
    """The numbers in ``text``, in order; a '-' right before a number is its sign unless a
    number or ')' comes before it ("10 - 4" is 10 and 4, "-3 apples" is -3)."""
    found: list[Number] = []
    previous: _Token | None = None
    sign = False
    for token in _tokens(text):
        if token.kind == "num":
            if len(token.text.replace(".", "")) <= MAX_DIGITS:
                number = _number(token.text)
                found.append(-number if sign else number)
            sign = False
        else:
            sign = token.text == "-" and (previous is None or previous.kind not in ("num", ")"))
        previous = token
    return found
