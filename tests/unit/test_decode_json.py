"""credit_schema.decode_json: JSON bodies, double encoding, and the 400s for everything else."""

from __future__ import annotations

import json
import math

import pytest
from credit_schema import MalformedPayloadError, decode_json
from hypothesis import given
from hypothesis import strategies as st

DOC = [{"age": 45, "DebtRatio": 0.1}]


@pytest.mark.parametrize("levels", [0, 1, 2, 3])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_json_strings_holding_json_are_unwrapped(levels: int, as_bytes: bool) -> None:
    text = json.dumps(DOC)
    for _ in range(levels):
        text = json.dumps(text)  # the original blog's client: json.dumps(df.to_json(...))
    assert decode_json(text.encode() if as_bytes else text) == DOC


def test_more_string_levels_than_accepted_are_refused() -> None:
    text = json.dumps(DOC)
    for _ in range(4):
        text = json.dumps(text)
    with pytest.raises(MalformedPayloadError, match="JSON string"):
        decode_json(text)


def test_numbers_decode_as_json_loads_does() -> None:
    body = '{"a": 0.1, "b": 1e999, "c": NaN, "d": -0.0, "e": 12345678901234567890}'
    got = decode_json(body)
    assert got["a"] == 0.1 and got["b"] == math.inf and math.isnan(got["c"])
    assert math.copysign(1.0, got["d"]) == -1.0 and got["e"] == 12345678901234567890


def test_an_integer_too_long_for_int_becomes_infinite_for_the_schema_to_refuse() -> None:
    assert decode_json('{"age": ' + "9" * 5000 + "}") == {"age": math.inf}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff[1]", "not valid UTF-8"),
        (b"[1", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1] 2", "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('"just text"', "not valid JSON"),
    ],
)
def test_anything_else_is_a_400_that_says_why(body: str | bytes, message: str) -> None:
    with pytest.raises(MalformedPayloadError, match=message) as info:
        decode_json(body)
    assert info.value.status_code == 400


# Bodies where a JSON parser might differ from json.loads, the rule: each is read as json.loads
# reads it, or refused with json.loads' own message.
EDGES = [
    "NaN", "-Infinity", "1e999", "-0", "-0.0", "1E400", "5e-324", "2.4703282292062327e-324",
    "1.7976931348623157e308", "9223372036854775808", "-" + "9" * 4000, '"\\ud800"', '"\ud800"',
    '"\\ud83d\\ude00 \\u0000 \\/ \u2028 é"', '{"a": 1, "b": 2, "a": 3}', "[1,]", '{"a": 1,}', "01",
    "1.", ".5", "+1", "nan", "-NaN", "Infinityx", '"a\x00b"', "[1 2]", "'a'", "0x10", "True",
    "\ufeff[1]", "\xa0[1]", "\t[1]\r\n",
]  # fmt: skip


def _same(a: object, b: object) -> bool:
    return repr(a) == repr(b) and type(a) is type(b)  # NaN and -0.0 compared by their text


@pytest.mark.parametrize("item", EDGES)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_bodies_read_exactly_as_json_loads_reads_them(item: str, as_bytes: bool) -> None:
    text = f"[{item}]"
    body = text.encode("utf-8", "surrogatepass") if as_bytes else text
    try:
        expected = json.loads(body)
    except ValueError as exc:
        with pytest.raises(MalformedPayloadError) as info:
            decode_json(body)
        assert str(exc)[:100] in str(info.value) or "UTF-8" in str(info.value)
    else:
        assert _same(decode_json(body), expected)


_NUMBER = r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?"


@given(st.lists(st.from_regex(_NUMBER, fullmatch=True) | st.floats().map(repr), max_size=20))
def test_numbers_read_exactly_as_json_loads_reads_them(numbers: list[str]) -> None:
    text = "[" + ",".join(n.replace("nan", "NaN").replace("inf", "Infinity") for n in numbers) + "]"
    assert _same(decode_json(text), json.loads(text))
