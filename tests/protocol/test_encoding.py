"""The canonical JSON profile: RFC 8785 examples, a rejection table, and the proof that the fast
``json.dumps`` path is byte-identical to the ``rfc8785`` package on the whole profile."""

from __future__ import annotations

import unicodedata

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import MAX_DEPTH, MAX_INT, check_profile, decode, encode
from protocol.errors import EncodingError

# --- RFC 8785 examples ------------------------------------------------------------------------

# RFC 8785 §3.2.2: the string and literal members of the example object (its numbers are floats,
# which the profile excludes; they are checked for rejection below).
RFC8785_STRING = "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"
RFC8785_EXPECTED = (
    b'{"literals":[null,true,false],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)


def test_rfc8785_example_string_and_literals() -> None:
    obj = {"string": RFC8785_STRING, "literals": [None, True, False]}
    assert encode(obj) == RFC8785_EXPECTED
    assert encode(obj) == rfc8785.dumps(obj)
    assert decode(RFC8785_EXPECTED) == obj


def test_rfc8785_example_numbers_are_outside_the_profile() -> None:
    text = b'{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}'
    with pytest.raises(EncodingError, match="not an integer"):
        decode(text)
    with pytest.raises(EncodingError, match="float"):
        encode({"numbers": [4.5]})


def test_rfc8785_sorting_of_ascii_keys() -> None:
    # The ASCII subset of RFC 8785 §3.2.3's sorting example: control characters sort first.
    obj = {"z": 1, "\r": "Carriage Return", "1": "One", "a": [1, 2]}
    assert encode(obj) == rfc8785.dumps(obj)
    assert encode(obj) == b'{"\\r":"Carriage Return","1":"One","a":[1,2],"z":1}'


def test_round_trip_of_typical_event_shape() -> None:
    obj = {"v": 1, "type": "ballot", "seq": 3, "prev": None, "body": {"grades": {"o1": -1}}}
    data = encode(obj)
    assert decode(data) == obj
    assert data == rfc8785.dumps(obj)


# --- rejection table --------------------------------------------------------------------------

REJECTIONS = [
    (b'{"a":1.5}', "not an integer"),
    (b'{"a":1.0}', "not an integer"),
    (b"1e3", "not an integer"),
    (b"NaN", "NaN is not allowed"),
    (b"Infinity", "Infinity is not allowed"),
    (b"-Infinity", "-Infinity is not allowed"),
    (b'{"a":1,"a":1}', "duplicate object key 'a'"),
    (b'{"b":1,"a":2}', "not sorted"),
    (b'{"a": 1}', "whitespace"),
    (b'{"a":1}\n', "whitespace"),
    (b' {"a":1}', "whitespace"),
    (b"[1, 2]", "whitespace"),
    ('"e\u0301"'.encode(), "not NFC"),
    (b'"\\ud800"', "lone surrogate"),
    (b'"\\udc00x"', "lone surrogate"),
    (b"9007199254740992", "out of range"),
    (b"-9007199254740992", "out of range"),
    (b"123456789012345678901234567890", "out of range"),
    (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nesting deeper"),
    (b"[" * 100_000 + b"]" * 100_000, "nesting deeper"),
    (b'"\\u0041"', "canonical form"),
    (b'"\\/"', "canonical form"),
    (b"-0", "canonical form"),
    (b"01", "malformed JSON"),
    (b'{"a":1', "malformed JSON"),
    (b"", "malformed JSON"),
    (b"\xff", "invalid UTF-8"),
    ('{"\u00e9":1}'.encode(), "not ASCII"),
    (b'"a\x01"', "malformed JSON"),
    (b"[1,]", "malformed JSON"),
    (b"true false", "malformed JSON"),
]


@pytest.mark.parametrize(("data", "message"), REJECTIONS)
def test_rejection_table(data: bytes, message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        decode(data)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (1.5, "float"),
        (float("nan"), "NaN"),
        (MAX_INT + 1, "out of range"),
        (-MAX_INT - 1, "out of range"),
        ({"é": 1}, "not ASCII"),
        ({1: 1}, "not a string"),
        ("e\u0301", "not NFC"),
        ("\ud800", "lone surrogate"),
        (b"bytes", "not JSON"),
        ({"a": {1, 2}}, "not JSON"),
    ],
)
def test_encode_refuses_values_outside_the_profile(obj: object, message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        encode(obj)


def test_decode_requires_bytes() -> None:
    with pytest.raises(EncodingError, match="bytes"):
        decode("{}")  # type: ignore[arg-type]


def test_limits_are_inclusive() -> None:
    assert decode(b"9007199254740991") == MAX_INT
    assert decode(b"-9007199254740991") == -MAX_INT
    nested: object = 0
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    assert decode(encode(nested)) == nested


def test_tuples_encode_as_arrays() -> None:
    assert encode({"a": (1, 2)}) == b'{"a":[1,2]}'


# --- the fast path equals RFC 8785 on the profile ----------------------------------------------

nfc_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20).map(
    lambda s: unicodedata.normalize("NFC", s)
)
ascii_keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
scalars = st.none() | st.booleans() | st.integers(min_value=-MAX_INT, max_value=MAX_INT) | nfc_text
profile_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(ascii_keys, children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(profile_values)
def test_fast_path_is_byte_identical_to_rfc8785(obj: object) -> None:
    check_profile(obj)
    assert encode(obj) == rfc8785.dumps(obj)


@settings(max_examples=200, deadline=None)
@given(profile_values)
def test_decode_inverts_encode(obj: object) -> None:
    assert decode(encode(obj)) == obj


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_decode_of_arbitrary_bytes_accepts_only_canonical_input(data: bytes) -> None:
    try:
        obj = decode(data)
    except EncodingError:
        return
    assert encode(obj) == data
