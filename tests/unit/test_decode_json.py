"""credit_schema.decode_json: JSON bodies, double encoding, and the 400s for everything else."""

from __future__ import annotations

import json
import math

import pytest
from credit_schema import MalformedPayloadError, decode_json

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
