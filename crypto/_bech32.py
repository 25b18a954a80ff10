"""Bech32m (BIP-350) encoding, used for the typed, checksummed text form of keys.

Bech32m gives a human-readable prefix (``lqpk``, ``lqsk``), a checksum that detects any error in
up to four characters, and a case-insensitive alphabet without look-alike characters.
"""

from __future__ import annotations

from functools import lru_cache, reduce
from operator import getitem, xor

from ._errors import KeyFormatError

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        chk = _step(chk, v)
    return chk


def _step(chk: int, v: int) -> int:
    """One step of the BIP-173 checksum: feed the 5-bit value ``v`` into ``chk``."""
    top = chk >> 25
    chk = (chk & 0x1FFFFFF) << 5 ^ v
    for i in range(5):
        if (top >> i) & 1:
            chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: bytes | list[int], frombits: int, tobits: int, *, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise KeyFormatError("bech32m: invalid padding in the data part")
    return out


def encode(hrp: str, payload: bytes) -> str:
    """Return the Bech32m string for ``payload`` under the human-readable part ``hrp``."""
    data = _convertbits(payload, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ _BECH32M_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)


def decode_raw(text: str) -> tuple[str, list[int]]:
    """Split a Bech32m string into its prefix and 5-bit data values; raise on any defect."""
    if len(text) > 90:
        raise KeyFormatError("bech32m: string longer than 90 characters")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise KeyFormatError("bech32m: character outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("bech32m: mixed case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise KeyFormatError("bech32m: missing separator or checksum")
    hrp = text[:pos]
    try:
        data = [CHARSET.index(c) for c in text[pos + 1 :]]
    except ValueError:
        raise KeyFormatError("bech32m: character outside the bech32 alphabet") from None
    if _polymod(_hrp_expand(hrp) + data) != _BECH32M_CONST:
        raise KeyFormatError("bech32m: checksum mismatch (a typo in the key?)")
    return hrp, data[:-6]


def decode(hrp: str, text: str) -> bytes:
    """Return the payload of a Bech32m string, checking that its prefix is ``hrp``."""
    got, data = decode_raw(text)
    if got != hrp:
        raise KeyFormatError(f"expected a {hrp!r} key, got prefix {got!r}")
    return bytes(_convertbits(data, 5, 8, pad=False))


# --- a fast path for the canonical text of 32-byte payloads ------------------------------------
#
# Every event carries keys, so decoding ``lqpk1…`` is on the node's hot path. Bech32m's checksum
# step is GF(2)-linear in the state and the value fed, so the final state is the prefix's state
# carried through 58 steps XOR each value's own contribution, and each bit of the data part
# contributes a fixed 30-bit word. The 58 values read as one base-32 integer (the payload's 256
# bits, 4 padding bits, the 30-bit checksum) are thus checked a byte at a time: one table of 256
# words per byte, XOR-ed in a C-driven loop. This path accepts exactly the canonical (lower-case)
# strings that :func:`decode` accepts for a 32-byte payload, which ``tests/crypto/test_keys.py``
# checks with hypothesis; anything else returns None and callers fall back to :func:`decode` for
# a precise error.


_VALUES = bytes(CHARSET.find(chr(i)) if chr(i) in CHARSET else 255 for i in range(256))
# Each value as its digit in int(…, 32); an invalid character is refused before this table.
_DIGITS = bytes(b"0123456789abcdefghijklmnopqrstuv"[v] if v < 32 else 0 for v in _VALUES)
_LEN32 = 52 + 6  # 256 bits in 5-bit groups, plus the checksum
_BYTES32 = (5 * _LEN32 + 7) // 8


def _carry(chk: int, steps: int) -> int:
    """The checksum state ``chk`` after ``steps`` more zero values."""
    for _ in range(steps):
        chk = _step(chk, 0)
    return chk


def _byte_tables() -> tuple[tuple[int, ...], ...]:
    """Per byte of the big-endian data integer, the checksum word of each of its 256 values."""
    # Bit t (from the least significant) is bit t % 5 of value 57 - t // 5, followed by t // 5
    # more values.
    words = [0] * (8 * _BYTES32)
    for b in range(5):
        chk = 1 << b
        for t in range(b, 5 * _LEN32, 5):
            words[t] = chk
            chk = _step(chk, 0)
    tables = []
    for p in range(_BYTES32):
        low = 8 * (_BYTES32 - 1 - p)
        table = [0] * 256
        for byte in range(1, 256):
            bit = byte & -byte
            table[byte] = table[byte ^ bit] ^ words[low + bit.bit_length() - 1]
        tables.append(tuple(table))
    return tuple(tables)


_TABLES = _byte_tables()


def _prefix_state(hrp: str) -> int:
    chk = 1
    for v in _hrp_expand(hrp):
        chk = _step(chk, v)
    return chk


class Fast32:
    """Decode the canonical Bech32m text of a 32-byte payload under one fixed prefix."""

    __slots__ = ("_head", "_len", "_state", "decode")

    def __init__(self, hrp: str) -> None:
        self._head = hrp + "1"
        self._len = len(self._head) + _LEN32
        # The prefix's contribution to the final state: its state carried through the data part.
        self._state = _carry(_prefix_state(hrp), _LEN32)
        self.decode = lru_cache(maxsize=1 << 16)(self._decode)

    def _decode(self, text: str) -> bytes | None:
        """The 32-byte payload of ``text``, or None if it is not canonical text of one."""
        if len(text) != self._len or not text.startswith(self._head) or not text.isascii():
            return None
        data = text.encode("ascii")[len(self._head) :]
        if 255 in data.translate(_VALUES):
            return None
        acc = int(data.translate(_DIGITS), 32)
        if reduce(xor, map(getitem, _TABLES, acc.to_bytes(_BYTES32, "big")), self._state) != (
            _BECH32M_CONST
        ):
            return None
        if acc >> 30 & 0xF:  # 52 groups carry 260 bits: the last 4 are padding and must be zero
            return None
        return (acc >> 34).to_bytes(32, "big")
