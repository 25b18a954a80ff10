"""Bech32m (BIP-350) encoding, used for the typed, checksummed text form of keys.

Bech32m gives a human-readable prefix (``lqpk``, ``lqsk``), a checksum that detects any error in
up to four characters, and a case-insensitive alphabet without look-alike characters.
"""

from __future__ import annotations

from ._errors import KeyFormatError

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
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
