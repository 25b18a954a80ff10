"""Canonical JSON: the strict RFC 8785 (JCS) profile that every signed object uses.

The profile (docs/PROTOCOL.md §1):

* values are objects, arrays, strings, integers, ``true``, ``false`` and ``null``;
* integers lie within ±(2^53−1); there are no floats, no exponents, no NaN or infinities;
* object keys are ASCII strings, unique, sorted; strings are NFC and contain no lone surrogates;
* nesting is at most :data:`MAX_DEPTH` deep;
* the bytes are exactly JCS's: no insignificant whitespace, JCS string escaping, UTF-8.

:func:`decode` rejects — never repairs — any input that is not in this exact form, with an
:class:`~protocol.errors.EncodingError` naming the defect. :func:`encode` produces the form.

Within the profile, ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` is
byte-identical to JCS (sorting ASCII keys by code point equals JCS's UTF-16 order, and integers
in range print identically). ``tests/protocol/test_encoding.py`` proves that against the
``rfc8785`` package with hypothesis; that equivalence is what makes this fast path legitimate.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from .errors import EncodingError

__all__ = ["MAX_DEPTH", "MAX_INT", "check_profile", "decode", "encode"]

MAX_INT = 2**53 - 1
MAX_DEPTH = 32

_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _check_str(s: str, where: str) -> None:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodingError(f"lone surrogate in string at {where}") from None
        if not unicodedata.is_normalized("NFC", s):
            raise EncodingError(f"string at {where} is not NFC-normalized")


def check_profile(obj: Any, where: str = "$", depth: int = 1) -> None:
    """Raise :class:`EncodingError` unless ``obj`` lies within the canonical profile."""
    if depth > MAX_DEPTH:
        raise EncodingError(f"nesting deeper than {MAX_DEPTH} at {where}")
    if obj is None or obj is True or obj is False:
        return
    t = type(obj)
    if t is int:
        if not -MAX_INT <= obj <= MAX_INT:
            raise EncodingError(f"integer out of range ±(2^53-1) at {where}")
    elif t is str:
        _check_str(obj, where)
    elif t is dict:
        for k, v in obj.items():
            if type(k) is not str:
                raise EncodingError(f"object key at {where} is not a string")
            if not k.isascii():
                raise EncodingError(f"object key {k!r} at {where} is not ASCII")
            check_profile(v, f"{where}.{k}", depth + 1)
    elif t is list or t is tuple:
        for i, v in enumerate(obj):
            check_profile(v, f"{where}[{i}]", depth + 1)
    elif t is float:
        what = "NaN or infinity" if not math.isfinite(obj) else "a float"
        raise EncodingError(f"{what} at {where}: only integers are allowed")
    else:
        raise EncodingError(f"value of type {t.__name__} at {where} is not JSON")


def encode(obj: Any) -> bytes:
    """Return the canonical bytes of ``obj``; raise :class:`EncodingError` outside the profile."""
    check_profile(obj)
    return _dumps(obj).encode("utf-8")


def _reject_float(text: str) -> Any:
    raise EncodingError(f"number {text} is not an integer (floats are not allowed)")


def _reject_constant(text: str) -> Any:
    raise EncodingError(f"{text} is not allowed")


def _parse_int(text: str) -> int:
    if len(text) > 17:
        raise EncodingError(f"integer {text[:20]} is out of range ±(2^53-1)")
    return int(text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prev: str | None = None
    for k, v in pairs:
        if k in out:
            raise EncodingError(f"duplicate object key {k!r}")
        if prev is not None and k < prev:
            raise EncodingError(f"object keys are not sorted: {k!r} after {prev!r}")
        out[k] = v
        prev = k
    return out


_decoder = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_float=_reject_float,
    parse_constant=_reject_constant,
    parse_int=_parse_int,
    strict=True,
)


def decode(data: bytes) -> Any:
    """Decode canonical bytes into Python values.

    Raises :class:`EncodingError` when ``data`` is not valid UTF-8 JSON, breaks the profile, or
    is not byte-for-byte the canonical encoding of what it denotes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EncodingError("canonical JSON must be given as bytes")
    data = bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"invalid UTF-8 at byte {exc.start}") from None
    if text[:1].isspace() or text[-1:].isspace():
        raise EncodingError("whitespace around the value")
    try:
        obj = _decoder.decode(text)
    except RecursionError:
        raise EncodingError(f"nesting deeper than {MAX_DEPTH}") from None
    except json.JSONDecodeError as exc:
        raise EncodingError(f"malformed JSON: {exc.msg} at byte {exc.pos}") from None
    check_profile(obj)
    canonical = _dumps(obj).encode("utf-8")
    if canonical != data:
        pos = next(
            (i for i, (a, b) in enumerate(zip(canonical, data, strict=False)) if a != b),
            min(len(canonical), len(data)),
        )
        found = data[pos : pos + 1]
        if found in (b" ", b"\n", b"\r", b"\t"):
            raise EncodingError(f"insignificant whitespace at byte {pos}")
        raise EncodingError(f"not in canonical form at byte {pos} (string escaping or number form)")
    return obj
