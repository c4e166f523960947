"""credit_schema.decode_json: pydantic_core's parser, with json.loads' results and errors.

``decode_json`` parses short texts with json's own scanner, longer ones with
``pydantic_core.from_json``, and hands whatever they refuse to ``json.loads``. These properties compare it with the implementation
it replaced (kept below as ``reference``), over generated JSON texts: floats of
every magnitude including correctly-rounded halfway cases, big integers, every
Unicode character and escape, lone surrogates, duplicate keys, double encoding,
invalid bytes, mutated documents and deep nesting. Results must be identical
(same types, floats bit for bit, same key order); errors must be the same class
with the same message and the same cause.
"""

from __future__ import annotations

import json
import math
import os
import sys
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from credit_schema import MAX_JSON_DEPTH, MalformedPayloadError, PayloadError, decode_json, payload
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.filterwarnings("ignore")

# ---------------------------------------------------------------------------
# The implementation decode_json replaced: json.loads only.


def _huge_int(text: str) -> float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _loads(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        return json.loads(text, parse_int=_huge_int)


def reference(body: str | bytes | bytearray) -> Any:
    try:
        obj = _loads(body)
        for _ in range(3):
            if not isinstance(obj, str):
                break
            obj = _loads(obj)
    except UnicodeDecodeError as exc:
        raise MalformedPayloadError("request body is not valid UTF-8") from exc
    except RecursionError as exc:
        raise MalformedPayloadError(
            f"request body is nested too deeply; the limit is {MAX_JSON_DEPTH} levels"
        ) from exc
    except ValueError as exc:
        text = str(exc)
        text = text if len(text) <= 200 else text[:200] + "..."
        raise MalformedPayloadError(f"request body is not valid JSON: {text}") from exc
    if isinstance(obj, str):
        raise MalformedPayloadError("request body is a JSON string, not applicants")
    return obj


# ---------------------------------------------------------------------------


def canonical(obj: Any) -> list[str]:
    """Type, value and order of every node, without recursion (documents nest ~1,000 deep).

    ``repr`` tells every float apart (shortest round-trip form: -0.0, subnormals) and
    ints from floats and bools.
    """
    out: list[str] = []
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(f"dict{len(node)}")
            for key, value in reversed(list(node.items())):
                stack.append(value)
                stack.append(("key", key))
        elif isinstance(node, list):
            out.append(f"list{len(node)}")
            stack.extend(reversed(node))
        elif isinstance(node, tuple):
            out.append(f"key {node[1]!r}")
        else:
            out.append(f"{type(node).__name__} {node!r}")
    return out


def outcome(decode: Any, body: str | bytes | bytearray) -> tuple[Any, ...]:
    try:
        return ("ok", canonical(decode(body)))
    except PayloadError as exc:
        cause = exc.__cause__
        return (
            "error",
            type(exc).__name__,
            exc.status_code,
            str(exc),
            type(cause).__name__,
            str(cause),
        )


def check(body: str | bytes | bytearray) -> None:
    assert outcome(decode_json, body) == outcome(reference, body)


# ---------------------------------------------------------------------------
# Strategies

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
INTS = st.one_of(
    st.integers(),
    st.integers(-(2**64), 2**64),
    st.integers(10**300, 10**320),
    st.integers(0, 30).map(lambda k: 10**k),
    st.integers(4_290, 4_300).map(lambda d: 10 ** (d - 1) + 7),  # json.dumps' 4,300-digit cap
)
ANY_CHAR = st.characters(codec=None) | st.characters(categories=["Cs"])
TEXT = st.text(ANY_CHAR, max_size=12)
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=30,
)


def _halfway(x: float) -> str:
    # The exact decimal midpoint between x and the next float up: the case a parser
    # rounds wrongly if it is not correctly rounded.
    up = math.nextafter(x, math.inf)
    return str((Decimal(x) + Decimal(up)) / 2)


NUMBER_TEXT = st.one_of(
    st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,4})?", fullmatch=True),
    FLOATS.filter(math.isfinite).map(repr),
    FLOATS.filter(math.isfinite).map(lambda x: f"{x:.17e}"),
    FLOATS.filter(math.isfinite).map(lambda x: f"{x:.25g}"),
    st.floats(min_value=0.0, max_value=1.7e308, allow_subnormal=True).map(_halfway),
    # Integers around the 4,300-digit cap of int(str) (and of jiter), with a sign or not.
    st.tuples(st.sampled_from(["", "-"]), st.integers(4_295, 4_305)).map(
        lambda t: t[0] + "7" * t[1]
    ),
    st.sampled_from(
        ["NaN", "Infinity", "-Infinity", "-NaN", "1e999", "-1e999", "1e-999", "-0", "-0.0", "0e0"]
    ),
)


@st.composite
def dumped(draw: st.DrawFn, value: Any) -> str:
    return json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 0, 2, "\t"])),
        separators=draw(st.sampled_from([None, (",", ":"), (" , ", " : ")])),
    )


def to_wire(text: str, how: str) -> str | bytes | bytearray:
    if how == "str":
        return text
    data = text.encode("utf-8", "surrogatepass")
    return data if how == "bytes" else bytearray(data)


WIRE = st.sampled_from(["str", "bytes", "bytearray"])


@st.composite
def documents(draw: st.DrawFn) -> str:
    text = draw(VALUES.flatmap(dumped))
    for _ in range(draw(st.integers(0, 4))):  # double, triple... encoding
        text = json.dumps(text, ensure_ascii=draw(st.booleans()))
    return text


@st.composite
def duplicate_keys(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from("abc"), VALUES), min_size=1, max_size=8))
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(documents()).encode("utf-8", "surrogatepass"))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.integers(0, 255) | st.sampled_from(list(b'"\\[]{},:-.eE0\x00\xff')))
        if op == "insert" or at == len(data):
            data.insert(at, byte)
        elif op == "delete":
            del data[at]
        else:
            data[at] = byte
    return bytes(data)


# CI-sized; a long run: CREDIT_FUZZ_EXAMPLES=5000.
SETTINGS = settings(
    max_examples=int(os.environ.get("CREDIT_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(documents(), WIRE)
@example('"[1, 2]"', "bytes")
@example('"\\ud800"', "str")
@example('["\\udc00\\ud800", "\\ud83d\\ude00"]', "bytes")
@example('{"a": 1, "b": 2, "a": 3}', "bytes")
def test_json_documents_decode_exactly_as_json_loads(text: str, how: str) -> None:
    check(to_wire(text, how))


@SETTINGS
@given(NUMBER_TEXT, st.sampled_from(["{}", "[{}]", "[1, {}]", '{{"x": {}}}', '"[{}]"']), WIRE)
@example("0.1000000000000000055511151231257827021181583404541015625", "{}", "bytes")
@example("2.4703282292062328e-324", "{}", "bytes")
@example("1" * 4300, "{}", "bytes")
@example("1" * 4301, "[{}]", "bytes")
@example("-" + "9" * 4300, "{}", "str")
@example("1" * 400 + ".5", "{}", "bytes")
def test_numbers_of_every_magnitude_are_bit_identical(number: str, shape: str, how: str) -> None:
    check(to_wire(shape.format(number), how))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), WIRE, st.sampled_from([0, 10**9]))
def test_with_and_without_jiters_string_cache(text: str, how: str, threshold: int) -> None:
    # Short texts are parsed without the cache, long ones with it: both decode alike.
    with mock.patch.object(payload, "STRING_CACHE_MIN_LENGTH", threshold):
        check(to_wire(text, how))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents() | mutated(), WIRE, st.sampled_from([0, 10**9]))
@example(b"\xef\xbb\xbf[1]", "bytes", 10**9)  # a BOM, UTF-16, a surrogate in UTF-8:
@example("[1]".encode("utf-16"), "bytes", 10**9)  # not the scanner's, json.loads' own
@example(b'"\xed\xa0\x80"', "bytes", 10**9)
@example(" \t[1]\r\n", "str", 10**9)  # whitespace around the document
@example("[1] 2", "bytes", 10**9)  # extra data
@example("  ", "str", 10**9)
@example('"[{\\"age\\": 45}]"', "bytes", 10**9)  # double encoding
def test_with_and_without_jsons_scanner(text: str | bytes, how: str, threshold: int) -> None:
    # Short texts are parsed by json's own scanner first, long ones by jiter: both decode
    # alike, and fail alike (the scanner hands whatever it refuses to the general path).
    with mock.patch.object(payload, "SCANNER_MAX_LENGTH", threshold):
        check(text if isinstance(text, bytes) else to_wire(text, how))


@SETTINGS
@given(duplicate_keys(), WIRE)
def test_duplicate_keys_keep_the_last_value_in_the_first_place(text: str, how: str) -> None:
    check(to_wire(text, how))


@SETTINGS
@given(mutated() | st.binary(max_size=40))
@example(b"\xef\xbb\xbf[1]")  # UTF-8 BOM: json.loads reads it from bytes
@example("[1]".encode("utf-16"))  # so does it UTF-16
@example(b"5\x00")
@example(b'"\xed\xa0\x80"')  # a surrogate encoded in UTF-8
@example(b'"\x80"')
@example(b'"a\x01b"')
@example(b"[1]\x0c")
@example(b"")
def test_invalid_bytes_fail_with_the_same_error(body: bytes) -> None:
    check(body)


@pytest.mark.parametrize("depth", [2, MAX_JSON_DEPTH + 1, 199, 200, 201, 202, 500, 990, 5_000])
@pytest.mark.parametrize("kind", ["list", "dict", "string"])
def test_deep_nesting_decodes_or_fails_as_before(depth: int, kind: str) -> None:
    if kind == "list":
        text = "[" * depth + "]" * depth
    elif kind == "dict":
        text = '{"a":' * depth + "1" + "}" * depth
    else:
        text = json.dumps("[" * depth + "]" * depth)
    check(text)
    check(text.encode())


def test_a_lowered_int_digit_limit_is_honoured() -> None:
    # json.loads refuses (then reads as inf) integers past sys's limit; jiter's own cap is
    # fixed, so below Python's default limit decode_json must not use it.
    body = json.dumps([{"age": int("1" * 1_000)}])
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        check(body)
        assert decode_json(body) == [{"age": math.inf}]
    finally:
        sys.set_int_max_str_digits(before)


def test_a_non_text_body_is_refused_as_before() -> None:
    with pytest.raises(TypeError) as ours:
        decode_json(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as theirs:
        reference(123)  # type: ignore[arg-type]
    assert str(ours.value) == str(theirs.value)
