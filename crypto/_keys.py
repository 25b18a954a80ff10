"""Ed25519 keys, their text forms, and domain-separated signing (PyNaCl).

Every Liquide signature covers ``b"liquide/v1/" + context + b"\\n" + message``, so that a
signature made for one purpose (a ballot, a receipt, an attestation) can never be replayed as
another. The only exception is the C2SP signed-note family (checkpoints and cosignatures): those
formats carry their own domain separation and must verify unchanged in other ecosystems' tools,
so they are signed with :meth:`SecretKey.sign_raw`.

Text forms:

* public key:  ``lqpk1…`` — Bech32m (BIP-350) of the 32-byte Ed25519 public key;
* secret key:  ``lqsk1…`` — Bech32m of the 32-byte seed;
* fingerprint: ``xxxx-xxxx`` — the first 40 bits of SHA-256(public key) in the Bech32 alphabet;
* C2SP verifier key (cities): ``<name>+<key ID hex>+<base64(0x01 ‖ public key)>``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions

from . import _bech32
from ._errors import BadSignatureError, KeyFormatError

__all__ = [
    "PUBLIC_HRP",
    "SECRET_HRP",
    "PublicKey",
    "SecretKey",
    "domain_message",
    "key_id",
    "public_key_raw",
    "verify",
]

PUBLIC_HRP = "lqpk"
SECRET_HRP = "lqsk"  # noqa: S105 (a text-form prefix, not a secret)
_CONTEXT_RE = re.compile(rb"^[a-z0-9][a-z0-9._-]{0,63}$")
_ALG_ED25519 = 0x01
# C2SP signed-note key names: non-empty, no whitespace, no '+'.
_NOTE_NAME_RE = re.compile(r"^[^\s+]+$")


_FAST_PUBLIC = _bech32.Fast32(PUBLIC_HRP)

public_key_raw: Callable[[str], bytes | None] = _FAST_PUBLIC.decode
"""The raw 32 bytes of a canonical (lower-case) ``lqpk1…`` text, or None if it is not one.

A cached fast path for hot loops (every event carries keys, and decoding calls this once or
twice per event: it is the cache itself, without a call around it); use
:meth:`PublicKey.from_text` when the caller needs the reason a text is refused.
"""


def domain_message(context: str, message: bytes) -> bytes:
    """Return the exact bytes a Liquide signature covers for ``context`` and ``message``."""
    ctx = context.encode("ascii", "strict") if context.isascii() else b""
    if not _CONTEXT_RE.match(ctx):
        raise ValueError(f"invalid signing context {context!r}")
    return b"liquide/v1/" + ctx + b"\n" + message


def key_id(name: str, alg_and_key: bytes) -> bytes:
    """C2SP signed-note key ID: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ alg ‖ key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + alg_and_key).digest()[:4]


def verify(public: bytes, context: str, message: bytes, signature: bytes) -> None:
    """Verify a domain-separated signature by the raw 32-byte key ``public``.

    This is the hot path of event verification, so it takes raw bytes and calls libsodium
    directly. Raises :class:`BadSignatureError` when the signature does not verify.
    """
    _verify_raw(public, domain_message(context, message), signature)


def _verify_raw(public: bytes, message: bytes, signature: bytes) -> None:
    if len(signature) != 64:
        raise BadSignatureError(f"signature must be 64 bytes, got {len(signature)}")
    if len(public) != 32:
        raise BadSignatureError(f"public key must be 32 bytes, got {len(public)}")
    try:
        nacl.bindings.crypto_sign_open(signature + message, public)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise BadSignatureError("signature does not verify") from None


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise KeyFormatError("an Ed25519 public key is exactly 32 bytes")

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """Parse ``lqpk1…``; raise :class:`KeyFormatError` naming the defect."""
        if not isinstance(text, str):
            raise KeyFormatError("a public key must be a string")
        fast = _FAST_PUBLIC.decode(text)
        if fast is not None:
            return cls(fast)
        raw = _bech32.decode(PUBLIC_HRP, text)
        if len(raw) != 32:
            raise KeyFormatError(f"public key payload must be 32 bytes, got {len(raw)}")
        return cls(raw)

    def to_text(self) -> str:
        """Return the canonical ``lqpk1…`` text (lower case)."""
        return _bech32.encode(PUBLIC_HRP, self.raw)

    def __str__(self) -> str:
        return self.to_text()

    def fingerprint(self) -> str:
        """A short fingerprint for humans to compare, such as ``7k3q-x9ad``."""
        digest = hashlib.sha256(self.raw).digest()
        bits = int.from_bytes(digest[:5], "big")
        chars = "".join(_bech32.CHARSET[(bits >> (35 - 5 * i)) & 31] for i in range(8))
        return f"{chars[:4]}-{chars[4:]}"

    def verify(self, context: str, message: bytes, signature: bytes) -> None:
        """Verify a domain-separated signature; raise :class:`BadSignatureError`."""
        verify(self.raw, context, message, signature)

    def verify_raw(self, message: bytes, signature: bytes) -> None:
        """Verify a plain Ed25519 signature (signed notes only)."""
        _verify_raw(self.raw, message, signature)

    # C2SP signed-note verifier keys -------------------------------------------------------

    def note_key_id(self, name: str) -> bytes:
        """The signed-note key ID of this key under ``name`` (4 bytes)."""
        return key_id(name, bytes([_ALG_ED25519]) + self.raw)

    def to_vkey(self, name: str) -> str:
        """Return the C2SP verifier key ``name+keyid+base64(0x01 ‖ key)``."""
        if not _NOTE_NAME_RE.match(name):
            raise KeyFormatError(f"invalid signed-note key name {name!r}")
        b64 = base64.b64encode(bytes([_ALG_ED25519]) + self.raw).decode("ascii")
        return f"{name}+{self.note_key_id(name).hex()}+{b64}"

    @classmethod
    def from_vkey(cls, vkey: str) -> tuple[str, PublicKey]:
        """Parse a C2SP verifier key; return ``(name, key)``. Checks the embedded key ID."""
        # The name and key ID contain no '+', but standard base64 may: split twice only.
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("a verifier key has the form name+keyid+base64")
        name, hexid, b64 = parts
        if not _NOTE_NAME_RE.match(name):
            raise KeyFormatError(f"invalid verifier key name {name!r}")
        if not re.fullmatch(r"[0-9a-f]{8}", hexid):
            raise KeyFormatError("verifier key ID must be 8 lower-case hex digits")
        try:
            blob = base64.b64decode(b64, validate=True)
        except ValueError:
            raise KeyFormatError("verifier key is not valid base64") from None
        if len(blob) != 33 or blob[0] != _ALG_ED25519:
            raise KeyFormatError("verifier key is not an Ed25519 (0x01) key")
        key = cls(blob[1:])
        if key.note_key_id(name).hex() != hexid:
            raise KeyFormatError("verifier key ID does not match its name and key")
        return name, key


@dataclass(frozen=True, slots=True)
class SecretKey:
    """An Ed25519 secret key, held as its 32-byte seed."""

    seed: bytes = field(repr=False)
    _expanded: bytes = field(init=False, repr=False, compare=False)
    public_key: PublicKey = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != 32:
            raise KeyFormatError("an Ed25519 seed is exactly 32 bytes")
        pk, sk = nacl.bindings.crypto_sign_seed_keypair(self.seed)
        object.__setattr__(self, "_expanded", sk)
        object.__setattr__(self, "public_key", PublicKey(pk))

    @classmethod
    def generate(cls) -> SecretKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(os.urandom(32))

    @classmethod
    def from_text(cls, text: str) -> SecretKey:
        """Parse ``lqsk1…``."""
        return cls(_bech32.decode(SECRET_HRP, text))

    def to_text(self) -> str:
        """Return the ``lqsk1…`` text. Handle with care: it is the whole secret."""
        return _bech32.encode(SECRET_HRP, self.seed)

    def sign(self, context: str, message: bytes) -> bytes:
        """Sign ``message`` under the Liquide domain ``context``; return 64 bytes."""
        return self.sign_raw(domain_message(context, message))

    def sign_raw(self, message: bytes) -> bytes:
        """Plain Ed25519 (signed notes only: they carry their own domain separation)."""
        return nacl.bindings.crypto_sign(message, self._expanded)[:64]
