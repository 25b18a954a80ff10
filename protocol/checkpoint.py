"""Checkpoints, cosignatures, receipts and split-view proofs: what a city log signs about itself.

A city publishes the state of its log as a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): a
C2SP signed note (c2sp.org/signed-note) whose text is ::

    <origin>\\n<size in decimal>\\n<base64 root>\\n[extension lines\\n]

followed by a blank line and signature lines ``— <key name> <base64(key ID ‖ signature)>\\n``
(U+2014 EM DASH, then a space). The city's key name is its origin and its signature is plain
Ed25519 over the note text (signature type 0x01), so Go's ``golang.org/x/mod/sumdb/note`` opens
a Liquide checkpoint unchanged. Witnesses add C2SP ``cosignature/v1`` lines
(c2sp.org/tlog-cosignature, type 0x04): Ed25519 over ``"cosignature/v1\\ntime <t>\\n"`` ‖ the
note text, encoded as key ID ‖ 8-byte big-endian time ‖ signature.

Two Liquide objects live here too:

* :class:`Receipt` — the home node's signed promise to include an event at a leaf index
  (DESIGN invariant 10), signed with the Liquide context ``receipt``;
* :class:`SplitViewProof` — portable evidence that a log showed two views (DESIGN invariant 5):
  two signed checkpoints of one origin with the same size and different roots, or two valid
  inclusion proofs under two signed checkpoints of that origin placing different leaves at one
  index. A consistency proof that fails to verify is not evidence (anyone can forge a bad one),
  so there is deliberately no way to build a split-view proof from one.

Parsing is strict and raises :class:`~protocol.errors.CheckpointError` naming the defect;
``from_dict`` methods raise :class:`~protocol.errors.ValidationError` naming the field;
:meth:`SplitViewProof.verify` raises :class:`~protocol.errors.ProofError`. No I/O, no clock:
times are passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeGuard

from crypto import BadSignatureError, PublicKey, SecretKey, key_id

from .encoding import MAX_INT, encode
from .errors import CheckpointError, ProofError, ValidationError
from .merkle import HASH_SIZE, leaf_hash, root_from_leaves, verify_inclusion

__all__ = [
    "BATCH_RECEIPT_CONTEXT",
    "COSIGNATURE_ALG",
    "MAX_NOTE_SIGNATURES",
    "RECEIPT_CONTEXT",
    "BatchReceipt",
    "BatchedReceipt",
    "Checkpoint",
    "Cosignature",
    "NoteSignature",
    "Receipt",
    "SignedCheckpoint",
    "SignedNote",
    "SplitViewProof",
    "cosign",
    "cosignature_message",
    "cosigner_key_id",
    "cosigner_vkey",
    "parse_cosigner_vkey",
    "parse_receipt",
    "sign_checkpoint",
]

#: Signature type byte of C2SP ``cosignature/v1`` Ed25519 cosignatures (c2sp.org/signed-note).
COSIGNATURE_ALG = 0x04
#: The most signature lines a note may carry. C2SP requires accepting at least 16; Go's ``note``
#: package rejects more than 100.
MAX_NOTE_SIGNATURES = 100
#: Liquide signing context of receipts.
RECEIPT_CONTEXT = "receipt"
#: Liquide signing context of batch receipts (one signature over a run of appended leaves).
BATCH_RECEIPT_CONTEXT = "receipt-batch"

_SIG_PREFIX = "\u2014 "
_MAX_U63 = 2**63 - 1
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_COSIG_HEADER = b"cosignature/v1\ntime "


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes | None:
    """Strict standard base64: canonical padding and zero pad bits, else ``None``."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if _b64(raw) == s else None


def _valid_name(name: str) -> bool:
    # C2SP signed-note: non-empty, no Unicode spaces, no '+'. (Go: unicode.IsSpace.)
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


_BAD_CHAR_RE = re.compile(r"[\x00-\x09\x0b-\x1f\ud800-\udfff]")


def _bad_char(s: str) -> str | None:
    """Describe the first character a note may not contain (controls other than \\n, surrogates)."""
    m = _BAD_CHAR_RE.search(s)
    if m is None:
        return None
    c = m.group()
    if c < " ":
        return f"control character U+{ord(c):04X}"
    return "a lone surrogate (not valid UTF-8)"


def _as_text(data: str | bytes, what: str) -> str:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(f"{what} is not valid UTF-8") from None
    if not isinstance(data, str):
        raise CheckpointError(f"{what} must be text")
    bad = _bad_char(data)
    if bad:
        raise CheckpointError(f"{what} contains {bad}")
    return data


# Signed notes (c2sp.org/signed-note) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a signed note: key name, 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _valid_name(self.name) or _bad_char(self.name):
            raise CheckpointError(f"invalid signature key name {self.name!r}")
        if not isinstance(self.key_id, bytes) or len(self.key_id) != 4:
            raise CheckpointError("a signature's key ID is exactly 4 bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise CheckpointError("a signature line must carry signature bytes")

    def line(self) -> str:
        """The signature line, ``— <name> <base64(key ID ‖ signature)>\\n``."""
        return f"{_SIG_PREFIX}{self.name} {_b64(self.key_id + self.signature)}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line (with or without its final newline)."""
        if not isinstance(line, str):
            raise CheckpointError("a signature line must be text")
        line = line.removesuffix("\n")
        if "\n" in line:
            raise CheckpointError("a signature line must be a single line")
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(
                "a signature line must start with an em dash (U+2014) and a space"
            )
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not _valid_name(name):
            raise CheckpointError(f"invalid signature key name {name!r}")
        if not b64:
            raise CheckpointError(f"signature line of {name} carries no signature")
        blob = _unb64(b64)
        if blob is None:
            raise CheckpointError(f"signature by {name} is not canonical base64")
        if len(blob) < 5:
            raise CheckpointError(f"signature by {name} is shorter than a key ID and a signature")
        return cls(name, blob[:4], blob[4:])


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A C2SP signed note: its text (ending in a newline) and its signature lines, unverified."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, data: str | bytes) -> SignedNote:
        """Parse a signed note strictly, without checking any signature.

        Raises :class:`CheckpointError` if the note is not UTF-8, contains a control character
        other than newline, lacks the blank line before its signatures, has no signature or a
        malformed one, does not end in a newline, or has more than
        :data:`MAX_NOTE_SIGNATURES` signatures.
        """
        s = _as_text(data, "signed note")
        split = s.rfind("\n\n")
        if split < 0:
            raise CheckpointError("signed note has no blank line before its signatures")
        text, block = s[: split + 1], s[split + 2 :]
        if not block:
            raise CheckpointError("signed note has no signature lines")
        if not block.endswith("\n"):
            raise CheckpointError("signed note does not end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_NOTE_SIGNATURES:
            raise CheckpointError(f"signed note has more than {MAX_NOTE_SIGNATURES} signatures")
        return cls(text, tuple(NoteSignature.from_line(line) for line in lines))

    def to_text(self) -> str:
        """The note as text: its text, a blank line, then its signature lines."""
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)

    def verify(self, name: str, key: PublicKey) -> NoteSignature:
        """Check the Ed25519 (type 0x01) signature of ``key`` under key name ``name``.

        Signatures by other keys are ignored, as the spec requires. Returns the verified
        signature. Raises :class:`CheckpointError` if no signature carries that key's name and
        key ID, or if one that does fails to verify (the whole note is then rejected).
        """
        kid = key.note_key_id(name)
        found = None
        for sig in self.signatures:
            if sig.name == name and sig.key_id == kid:
                try:
                    key.verify_raw(self.text.encode("utf-8"), sig.signature)
                except BadSignatureError:
                    raise CheckpointError(
                        f"signature by {name}+{kid.hex()} does not verify"
                    ) from None
                found = found or sig
        if found is None:
            raise CheckpointError(f"note has no signature by {name}+{kid.hex()}")
        return found


# Checkpoints (c2sp.org/tlog-checkpoint) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, size and root hash, plus optional opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointError("checkpoint origin must be a non-empty string")
        if "\n" in self.origin or _bad_char(self.origin):
            raise CheckpointError("checkpoint origin must be a single line of printable text")
        if type(self.size) is not int or not 0 <= self.size <= _MAX_U63:
            raise CheckpointError(
                f"checkpoint size must be an integer in [0, 2^63-1], got {self.size!r}"
            )
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise CheckpointError("checkpoint extensions must be a tuple of lines")
        for ext in self.extensions:
            if not isinstance(ext, str) or not ext or "\n" in ext or _bad_char(ext):
                raise CheckpointError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> bytes:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` and any extension lines."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def from_body(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint note text strictly; raise :class:`CheckpointError` naming the defect."""
        s = _as_text(text, "checkpoint")
        if not s.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = s[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint text must have an origin, a size and a root line")
        origin, size, root, *ext = lines
        if not origin:
            raise CheckpointError("checkpoint origin line is empty")
        if not _SIZE_RE.fullmatch(size):
            raise CheckpointError("checkpoint size must be decimal digits without leading zeros")
        if int(size) > _MAX_U63:
            raise CheckpointError("checkpoint size exceeds 2^63-1")
        raw = _unb64(root)
        if raw is None or len(raw) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be the base64 of {HASH_SIZE} bytes")
        if any(not line for line in ext):
            raise CheckpointError("checkpoint extension lines must not be empty")
        return cls(origin, int(size), raw, tuple(ext))

    def to_dict(self) -> dict[str, Any]:
        """``{"origin", "size", "root": base64}`` (and ``"extensions"`` if there are any)."""
        d: dict[str, Any] = {"origin": self.origin, "size": self.size, "root": _b64(self.root)}
        if self.extensions:
            d["extensions"] = list(self.extensions)
        return d

    @classmethod
    def from_dict(cls, d: object, where: str = "checkpoint") -> Checkpoint:
        """Parse :meth:`to_dict` output; raise :class:`ValidationError` naming the field."""
        if type(d) is not dict or not {"origin", "size", "root"} <= d.keys() <= {
            "origin",
            "size",
            "root",
            "extensions",
        }:
            raise ValidationError(f"{where}: must be an object with origin, size and root")
        size = d["size"]
        if type(size) is not int or not 0 <= size <= MAX_INT:
            raise ValidationError(f"{where}.size: must be an integer in [0, 2^53-1]")
        root = d["root"]
        raw = _unb64(root) if isinstance(root, str) else None
        if raw is None or len(raw) != HASH_SIZE:
            raise ValidationError(f"{where}.root: must be the base64 of a {HASH_SIZE}-byte hash")
        ext = d.get("extensions", [])
        if type(ext) is not list or ("extensions" in d and not ext):
            raise ValidationError(f"{where}.extensions: must be a non-empty array of lines")
        try:
            return cls(d["origin"], size, raw, tuple(ext))
        except CheckpointError as e:
            raise ValidationError(f"{where}: {e.message}") from None


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with its signature lines (the log's own and any cosignatures), unverified."""

    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, data: str | bytes) -> SignedCheckpoint:
        """Parse a signed checkpoint strictly, without checking signatures.

        Raises :class:`CheckpointError` naming the defect in the note or the checkpoint text.
        """
        note = SignedNote.parse(data)
        return cls(Checkpoint.from_body(note.text), note.signatures)

    def note(self) -> SignedNote:
        """The checkpoint as a generic signed note."""
        return SignedNote(self.checkpoint.body().decode("utf-8"), self.signatures)

    def to_text(self) -> str:
        """The signed note text, byte for byte what C2SP tools read."""
        return self.note().to_text()

    def to_bytes(self) -> bytes:
        """:meth:`to_text` in UTF-8."""
        return self.to_text().encode("utf-8")

    def verify(self, origin: str, key: PublicKey) -> Checkpoint:
        """Check that this is ``origin``'s checkpoint, signed by ``key`` under the name ``origin``.

        Returns the checkpoint. Raises :class:`CheckpointError` if the origin differs, no
        signature by that key is present, or one fails to verify.
        """
        if self.checkpoint.origin != origin:
            raise CheckpointError(
                f"checkpoint is for origin {self.checkpoint.origin!r}, not {origin!r}"
            )
        self.note().verify(origin, key)
        return self.checkpoint

    def signer(self, origin: str, keys: Sequence[PublicKey]) -> PublicKey:
        """The first of ``keys`` (an origin's keys across its handovers) that signed this.

        A log's checkpoint of size ``n`` must be signed by the key in effect after its leaf
        ``n - 1`` (docs/PROTOCOL.md §6.2); the caller compares the returned key with that one.
        Raises :class:`CheckpointError` if the origin differs or no key of ``keys`` has a
        signature that verifies (naming the pinned key's problem when there is one key).
        """
        if not keys:
            raise CheckpointError(f"no key of {origin!r} to verify the checkpoint with")
        first: CheckpointError | None = None
        for key in keys:
            try:
                self.verify(origin, key)
            except CheckpointError as exc:
                first = first or exc
                continue
            return key
        assert first is not None
        if len(keys) == 1:
            raise first
        raise CheckpointError(
            f"checkpoint of size {self.checkpoint.size} is signed by none of the {len(keys)} "
            f"keys of {origin} (the pinned key and its handovers): {first.message}"
        )

    def with_signature(self, sig: NoteSignature | str) -> SignedCheckpoint:
        """Return a copy carrying ``sig`` (a signature or its line), replacing any earlier
        signature with the same key name and key ID (a witness's newer cosignature, say)."""
        if isinstance(sig, str):
            sig = NoteSignature.from_line(sig)
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) != (sig.name, sig.key_id))
        if len(kept) + 1 > MAX_NOTE_SIGNATURES:
            raise CheckpointError(f"a note carries at most {MAX_NOTE_SIGNATURES} signatures")
        return SignedCheckpoint(self.checkpoint, (*kept, sig))

    def verify_cosignature(self, name: str, key: PublicKey) -> Cosignature:
        """Check the ``cosignature/v1`` of witness ``name`` with ``key``; return it (with its time).

        Raises :class:`CheckpointError` if there is no signature line with that name and the
        cosigner key ID, if it is not a timestamped signature, or if it does not verify.
        """
        kid = cosigner_key_id(name, key)
        found = None
        for sig in self.signatures:
            if sig.name == name and sig.key_id == kid:
                cosig = Cosignature.from_note_signature(sig)
                cosig.verify(self.checkpoint, key)
                found = found or cosig
        if found is None:
            raise CheckpointError(f"checkpoint has no cosignature by {name}+{kid.hex()}")
        return found


def sign_checkpoint(cp: Checkpoint, sk: SecretKey) -> SignedCheckpoint:
    """Sign ``cp`` as its log: Ed25519 over the note text, key name = the origin.

    Raises :class:`CheckpointError` if the origin cannot be a signed-note key name (it must
    not contain spaces or '+').
    """
    if not _valid_name(cp.origin):
        raise CheckpointError(f"origin {cp.origin!r} is not a valid signed-note key name")
    sig = sk.sign_raw(cp.body())
    return SignedCheckpoint(
        cp, (NoteSignature(cp.origin, sk.public_key.note_key_id(cp.origin), sig),)
    )


# Cosignatures (c2sp.org/tlog-cosignature) ----------------------------------------------------


def cosigner_key_id(name: str, key: PublicKey) -> bytes:
    """Key ID of an Ed25519 cosigner: SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4]."""
    return key_id(name, bytes([COSIGNATURE_ALG]) + key.raw)


def cosigner_vkey(name: str, key: PublicKey) -> str:
    """The cosigner's verifier key ``name+keyid+base64(0x04 ‖ key)``."""
    if not _valid_name(name):
        raise CheckpointError(f"invalid cosigner name {name!r}")
    return f"{name}+{cosigner_key_id(name, key).hex()}+{_b64(bytes([COSIGNATURE_ALG]) + key.raw)}"


def parse_cosigner_vkey(vkey: str) -> tuple[str, PublicKey]:
    """Parse a cosigner verifier key (type 0x04); return ``(name, key)``.

    Raises :class:`CheckpointError` if it is malformed or its key ID does not match.
    """
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    blob = _unb64(parts[2]) if len(parts) == 3 else None
    if blob is None or not _valid_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise CheckpointError("a cosigner verifier key has the form name+keyid+base64")
    name, hexid = parts[0], parts[1]
    if len(blob) != 33 or blob[0] != COSIGNATURE_ALG:
        raise CheckpointError("verifier key is not an Ed25519 cosignature/v1 (0x04) key")
    key = PublicKey(blob[1:])
    if cosigner_key_id(name, key).hex() != hexid:
        raise CheckpointError("cosigner verifier key ID does not match its name and key")
    return name, key


def _check_time(t: object) -> int:
    if type(t) is not int or not 0 <= t <= _MAX_U63:
        raise CheckpointError(f"cosignature time must be an integer in [0, 2^63-1], got {t!r}")
    return t


def cosignature_message(cp: Checkpoint, time: int) -> bytes:
    """The bytes a ``cosignature/v1`` covers: ``cosignature/v1\\ntime <t>\\n`` ‖ the note text."""
    return _COSIG_HEADER + str(_check_time(time)).encode("ascii") + b"\n" + cp.body()


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A witness's ``cosignature/v1``: name, key ID, the time it claims, the Ed25519 signature."""

    name: str
    key_id: bytes
    time: int
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_time(self.time)
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise CheckpointError("a cosignature carries a 64-byte Ed25519 signature")
        self.to_note_signature()  # validates name and key ID

    @classmethod
    def from_note_signature(cls, sig: NoteSignature) -> Cosignature:
        """Read a signature line's bytes as ``timestamp (8, big-endian) ‖ signature (64)``."""
        if len(sig.signature) != 8 + 64:
            raise CheckpointError(
                f"signature by {sig.name} is not a cosignature/v1 (timestamp and Ed25519 signature)"
            )
        t = int.from_bytes(sig.signature[:8], "big")
        if t > _MAX_U63:
            raise CheckpointError(f"cosignature by {sig.name} has a timestamp above 2^63-1")
        return cls(sig.name, sig.key_id, t, sig.signature[8:])

    @classmethod
    def from_line(cls, line: str) -> Cosignature:
        """Parse a cosignature's signature line."""
        return cls.from_note_signature(NoteSignature.from_line(line))

    def to_note_signature(self) -> NoteSignature:
        return NoteSignature(self.name, self.key_id, self.time.to_bytes(8, "big") + self.signature)

    def line(self) -> str:
        """The signature line to append to the checkpoint's note."""
        return self.to_note_signature().line()

    def verify(self, cp: Checkpoint, key: PublicKey) -> None:
        """Check this cosignature of ``cp`` by ``key``; raise :class:`CheckpointError` if wrong."""
        kid = cosigner_key_id(self.name, key)
        if self.key_id != kid:
            raise CheckpointError(f"cosignature by {self.name} is not by key {kid.hex()}")
        try:
            key.verify_raw(cosignature_message(cp, self.time), self.signature)
        except BadSignatureError:
            raise CheckpointError(
                f"cosignature by {self.name}+{kid.hex()} does not verify"
            ) from None


def cosign(cp: Checkpoint, witness_name: str, sk: SecretKey, time: int) -> str:
    """Cosign ``cp`` as witness ``witness_name`` at ``time``; return the signature line.

    The caller (a witness) must first have checked that ``cp`` is consistent with everything it
    cosigned before: a cosignature states exactly that. Raises :class:`CheckpointError` on an
    invalid name or time.
    """
    if not _valid_name(witness_name):
        raise CheckpointError(f"invalid witness name {witness_name!r}")
    sig = sk.sign_raw(cosignature_message(cp, time))
    return Cosignature(witness_name, cosigner_key_id(witness_name, sk.public_key), time, sig).line()


# Receipts (DESIGN invariant 10) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """A home node's signed promise to include event ``event_id`` at leaf ``index`` of ``origin``.

    ``time`` is the node's clock when it promised. ``size``, if present, is the log size when
    the receipt was issued (the event already appended, so ``size > index``). A receipt whose
    event is missing at ``index`` from a later signed checkpoint is a portable proof of
    censorship. Signed with the Liquide context ``receipt`` over the canonical unsigned dict.
    """

    origin: str
    event_id: str
    index: int
    time: int
    size: int | None
    sig: bytes = field(repr=False)

    KEYS: ClassVar[frozenset[str]] = frozenset({"v", "origin", "event_id", "index", "time", "sig"})

    def __post_init__(self) -> None:
        _check_receipt_fields(
            self.origin, self.event_id, self.index, self.time, self.size, where="receipt"
        )
        if not isinstance(self.sig, bytes) or len(self.sig) != 64:
            raise ValidationError("receipt.sig: must be a 64-byte signature")

    @staticmethod
    def unsigned(
        origin: str, event_id: str, index: int, time: int, size: int | None = None
    ) -> dict[str, Any]:
        """The canonical unsigned dict that the signature covers."""
        d: dict[str, Any] = {
            "v": 1,
            "origin": origin,
            "event_id": event_id,
            "index": index,
            "time": time,
        }
        if size is not None:
            d["size"] = size
        return d

    @classmethod
    def create(
        cls,
        sk: SecretKey,
        origin: str,
        event_id: str,
        index: int,
        *,
        time: int,
        size: int | None = None,
    ) -> Receipt:
        """Sign a receipt with the city key ``sk``; raise :class:`ValidationError` on bad fields."""
        _check_receipt_fields(origin, event_id, index, time, size, where="receipt")
        msg = encode(cls.unsigned(origin, event_id, index, time, size))
        return cls(origin, event_id, index, time, size, sk.sign(RECEIPT_CONTEXT, msg))

    def unsigned_bytes(self) -> bytes:
        """The canonical bytes the signature covers."""
        return encode(self.unsigned(self.origin, self.event_id, self.index, self.time, self.size))

    def to_dict(self) -> dict[str, Any]:
        d = self.unsigned(self.origin, self.event_id, self.index, self.time, self.size)
        d["sig"] = _b64(self.sig)
        return d

    @classmethod
    def from_dict(cls, d: object, where: str = "receipt") -> Receipt:
        """Parse :meth:`to_dict` output (no signature check); :class:`ValidationError` names the field."""
        if type(d) is not dict or not cls.KEYS <= d.keys() <= cls.KEYS | {"size"}:
            raise ValidationError(
                f"{where}: must be an object with v, origin, event_id, index, time, sig"
                " and optionally size"
            )
        if d["v"] != 1 or type(d["v"]) is not int:
            raise ValidationError(f"{where}.v: must be 1")
        sig = _unb64(d["sig"]) if isinstance(d["sig"], str) else None
        if sig is None or len(sig) != 64:
            raise ValidationError(f"{where}.sig: must be the base64 of a 64-byte signature")
        size = d.get("size")
        if "size" in d and size is None:
            raise ValidationError(f"{where}.size: must be an integer when present")
        _check_receipt_fields(d["origin"], d["event_id"], d["index"], d["time"], size, where=where)
        return cls(d["origin"], d["event_id"], d["index"], d["time"], size, sig)

    def verify(self, key: PublicKey) -> None:
        """Check the city's signature; raise :class:`CheckpointError` if it does not verify."""
        try:
            key.verify(RECEIPT_CONTEXT, self.unsigned_bytes(), self.sig)
        except BadSignatureError:
            raise CheckpointError(
                f"receipt for event {self.event_id[:16]}… at index {self.index} is not signed "
                "by that key"
            ) from None


def _check_receipt_fields(
    origin: object, event_id: object, index: object, time: object, size: object, *, where: str
) -> None:
    if not isinstance(origin, str) or not origin or "\n" in origin or _bad_char(origin):
        raise ValidationError(f"{where}.origin: must be a non-empty single-line string")
    if not isinstance(event_id, str) or not _HEX64_RE.fullmatch(event_id):
        raise ValidationError(f"{where}.event_id: must be 64 lower-case hex digits")
    if not _is_uint53(index):
        raise ValidationError(f"{where}.index: must be an integer in [0, 2^53-1]")
    if not _is_uint53(time):
        raise ValidationError(f"{where}.time: must be an integer in [0, 2^53-1]")
    if size is not None:
        if not _is_uint53(size):
            raise ValidationError(f"{where}.size: must be an integer in [0, 2^53-1]")
        if size <= index:
            raise ValidationError(f"{where}.size: must exceed the index of an appended event")


def _is_uint53(v: object) -> TypeGuard[int]:
    return type(v) is int and 0 <= v <= MAX_INT


# Batch receipts (docs/PROTOCOL.md §6.4.1) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchReceipt:
    """One signature over ``count`` consecutive leaves of ``origin`` from index ``first``.

    ``root`` is the RFC 9162 Merkle root of those leaves' leaf hashes (the batch's own tree, not
    the log's); ``time`` is when the node appended them. Signed with the Liquide context
    ``receipt-batch`` over the canonical unsigned dict. Each event of the batch gets a
    :class:`BatchedReceipt`: this statement plus the inclusion path of its leaf hash.
    """

    origin: str
    first: int
    count: int
    root: bytes
    time: int
    sig: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_batch_fields(self.origin, self.first, self.count, self.time, where="receipt.batch")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValidationError("receipt.batch.root: must be a 32-byte hash")
        if not isinstance(self.sig, bytes) or len(self.sig) != 64:
            raise ValidationError("receipt.batch.sig: must be a 64-byte signature")

    @staticmethod
    def unsigned(origin: str, first: int, count: int, root: bytes, time: int) -> dict[str, Any]:
        """The canonical unsigned dict that the signature covers."""
        return {
            "v": 1,
            "origin": origin,
            "first": first,
            "count": count,
            "root": _b64(root),
            "time": time,
        }

    @classmethod
    def create(
        cls, sk: SecretKey, origin: str, first: int, leaf_hashes: Sequence[bytes], *, time: int
    ) -> BatchReceipt:
        """Sign the batch of ``leaf_hashes`` appended from index ``first`` with the city key."""
        _check_batch_fields(origin, first, len(leaf_hashes), time, where="receipt.batch")
        root = root_from_leaves(leaf_hashes)
        msg = encode(cls.unsigned(origin, first, len(leaf_hashes), root, time))
        return cls(origin, first, len(leaf_hashes), root, time, sk.sign(BATCH_RECEIPT_CONTEXT, msg))

    def unsigned_bytes(self) -> bytes:
        """The canonical bytes the signature covers."""
        return encode(self.unsigned(self.origin, self.first, self.count, self.root, self.time))

    def verify(self, key: PublicKey) -> None:
        """Check the city's signature; raise :class:`CheckpointError` if it does not verify."""
        try:
            key.verify(BATCH_RECEIPT_CONTEXT, self.unsigned_bytes(), self.sig)
        except BadSignatureError:
            raise CheckpointError(
                f"batch receipt for leaves {self.first}..{self.first + self.count - 1} is not "
                "signed by that key"
            ) from None

    def receipt(
        self, event_id: str, index: int, leaf_hash: bytes, path: Sequence[bytes]
    ) -> BatchedReceipt:
        """The receipt of the event ``event_id`` at ``index`` of this batch (not verified)."""
        return BatchedReceipt(event_id, index, leaf_hash, tuple(path), self)


@dataclass(frozen=True, slots=True)
class BatchedReceipt:
    """A receipt of the batch form: a :class:`BatchReceipt` and the event's inclusion path in it.

    It promises what a :class:`Receipt` promises — the event whose canonical bytes have leaf hash
    ``leaf_hash`` is at leaf ``index`` of ``origin`` — with one signature shared by the batch.
    """

    event_id: str
    index: int
    leaf_hash: bytes
    path: tuple[bytes, ...]
    batch: BatchReceipt

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"v", "origin", "event_id", "index", "time", "leaf_hash", "batch", "path"}
    )
    BATCH_KEYS: ClassVar[frozenset[str]] = frozenset({"first", "count", "root", "sig"})

    def __post_init__(self) -> None:
        b = self.batch
        _check_receipt_fields(b.origin, self.event_id, self.index, b.time, None, where="receipt")
        if not b.first <= self.index < b.first + b.count:
            raise ValidationError(
                f"receipt.index: {self.index} is outside the batch of leaves "
                f"{b.first}..{b.first + b.count - 1}"
            )
        if not isinstance(self.leaf_hash, bytes) or len(self.leaf_hash) != HASH_SIZE:
            raise ValidationError("receipt.leaf_hash: must be a 32-byte hash")
        if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in self.path):
            raise ValidationError("receipt.path: must be a list of 32-byte hashes")

    @property
    def origin(self) -> str:
        return self.batch.origin

    @property
    def time(self) -> int:
        return self.batch.time

    def to_dict(self) -> dict[str, Any]:
        b = self.batch
        return {
            "v": 1,
            "origin": b.origin,
            "event_id": self.event_id,
            "index": self.index,
            "time": b.time,
            "leaf_hash": _b64(self.leaf_hash),
            "batch": {"first": b.first, "count": b.count, "root": _b64(b.root), "sig": _b64(b.sig)},
            "path": [_b64(h) for h in self.path],
        }

    @classmethod
    def from_dict(cls, d: object, where: str = "receipt") -> BatchedReceipt:
        """Parse :meth:`to_dict` output (no signature check); :class:`ValidationError` names the field."""
        if type(d) is not dict or d.keys() != cls.KEYS:
            raise ValidationError(
                f"{where}: a batch receipt must be an object with exactly "
                "v, origin, event_id, index, time, leaf_hash, batch, path"
            )
        if d["v"] != 1 or type(d["v"]) is not int:
            raise ValidationError(f"{where}.v: must be 1")
        b = d["batch"]
        if type(b) is not dict or b.keys() != cls.BATCH_KEYS:
            raise ValidationError(f"{where}.batch: must be an object with first, count, root, sig")
        _check_batch_fields(d["origin"], b["first"], b["count"], d["time"], where=f"{where}.batch")
        root = _unb64(b["root"]) if isinstance(b["root"], str) else None
        if root is None or len(root) != HASH_SIZE:
            raise ValidationError(f"{where}.batch.root: must be the base64 of a 32-byte hash")
        sig = _unb64(b["sig"]) if isinstance(b["sig"], str) else None
        if sig is None or len(sig) != 64:
            raise ValidationError(f"{where}.batch.sig: must be the base64 of a 64-byte signature")
        lh = _unb64(d["leaf_hash"]) if isinstance(d["leaf_hash"], str) else None
        if lh is None or len(lh) != HASH_SIZE:
            raise ValidationError(f"{where}.leaf_hash: must be the base64 of a 32-byte hash")
        path = d["path"]
        if type(path) is not list or len(path) > 64:
            raise ValidationError(f"{where}.path: must be a list of at most 64 base64 hashes")
        hashes = []
        for i, h in enumerate(path):
            raw = _unb64(h) if isinstance(h, str) else None
            if raw is None or len(raw) != HASH_SIZE:
                raise ValidationError(f"{where}.path[{i}]: must be the base64 of a 32-byte hash")
            hashes.append(raw)
        batch = BatchReceipt(d["origin"], b["first"], b["count"], root, d["time"], sig)
        _check_receipt_fields(d["origin"], d["event_id"], d["index"], d["time"], None, where=where)
        return cls(d["event_id"], d["index"], lh, tuple(hashes), batch)

    def verify(self, key: PublicKey, leaf: bytes | None = None) -> None:
        """Check the batch signature and the event's path to the batch root.

        With ``leaf`` (the event's canonical signed bytes, which its author holds), also check
        that they are the leaf the receipt names. Raises :class:`CheckpointError`.
        """
        b = self.batch
        b.verify(key)
        try:
            verify_inclusion(self.leaf_hash, self.index - b.first, b.count, self.path, b.root)
        except ProofError as exc:
            raise CheckpointError(
                f"receipt for event {self.event_id[:16]}… at index {self.index}: its path does "
                f"not lead to the signed batch root: {exc}"
            ) from None
        if leaf is not None and leaf_hash(leaf) != self.leaf_hash:
            raise CheckpointError(
                f"receipt for event {self.event_id[:16]}… names another leaf than these bytes"
            )


def parse_receipt(d: object, where: str = "receipt") -> Receipt | BatchedReceipt:
    """Parse a receipt of either form: a :class:`BatchedReceipt` if it has ``batch``, else a
    :class:`Receipt`. Raises :class:`ValidationError` naming the field."""
    if type(d) is dict and "batch" in d:
        return BatchedReceipt.from_dict(d, where)
    return Receipt.from_dict(d, where)


def _check_batch_fields(
    origin: object, first: object, count: object, time: object, *, where: str
) -> None:
    if not isinstance(origin, str) or not origin or "\n" in origin or _bad_char(origin):
        raise ValidationError(f"{where}.origin: must be a non-empty single-line string")
    if not _is_uint53(first):
        raise ValidationError(f"{where}.first: must be an integer in [0, 2^53-1]")
    if not _is_uint53(count) or count < 1 or first + count > MAX_INT:
        raise ValidationError(f"{where}.count: must be a positive integer (first + count ≤ 2^53-1)")
    if not _is_uint53(time):
        raise ValidationError(f"{where}.time: must be an integer in [0, 2^53-1]")


# Split-view proofs (DESIGN invariant 5) ------------------------------------------------------


def _log_only(sc: SignedCheckpoint) -> SignedCheckpoint:
    # Keep only the signatures under the log's own key name: cosignatures add nothing to the
    # evidence, and dropping them gives one canonical form per pair of checkpoints.
    sigs = tuple(s for s in sc.signatures if s.name == sc.checkpoint.origin)
    if not sigs:
        raise ProofError("split view: a checkpoint carries no signature under its origin's name")
    return SignedCheckpoint(sc.checkpoint, sigs)


@dataclass(frozen=True, slots=True)
class SplitViewProof:
    """Evidence that one log signed two irreconcilable views of itself.

    ``kind == "roots"``: two checkpoints of one origin with the same size and different roots.
    ``kind == "inclusion"``: two checkpoints of one origin, each with a valid inclusion proof,
    placing different leaf hashes at the same ``index``.

    Canonical dict form (ordered by the checkpoints' note texts, then leaves; only signatures
    under the origin's name kept)::

        {"type": "split-view", "kind": "roots", "origin": …, "checkpoints": [note, note]}
        {"type": "split-view", "kind": "inclusion", "origin": …, "checkpoints": [note, note],
         "index": i, "leaves": [b64, b64], "proofs": [[b64, …], [b64, …]]}

    Build one with :meth:`of_roots` or :meth:`of_inclusions`; check it with :meth:`verify`.
    """

    kind: Literal["roots", "inclusion"]
    checkpoints: tuple[SignedCheckpoint, SignedCheckpoint]
    index: int | None = None
    leaves: tuple[bytes, bytes] | None = None
    proofs: tuple[tuple[bytes, ...], tuple[bytes, ...]] | None = None

    @property
    def origin(self) -> str:
        return self.checkpoints[0].checkpoint.origin

    @classmethod
    def of_roots(cls, a: SignedCheckpoint, b: SignedCheckpoint) -> SplitViewProof:
        """The proof made of two same-size checkpoints with different roots (not yet verified).

        Raises :class:`ProofError` if the two do not have one origin, one size and two roots.
        """
        ca, cb = a.checkpoint, b.checkpoint
        if ca.origin != cb.origin:
            raise ProofError("split view: the checkpoints have different origins")
        if ca.size != cb.size:
            raise ProofError(
                f"split view: checkpoints of sizes {ca.size} and {cb.size} are not a root conflict"
                " (a failed consistency proof proves nothing)"
            )
        if ca.root == cb.root:
            raise ProofError("split view: the two checkpoints have the same root")
        pa, pb = sorted((_log_only(a), _log_only(b)), key=lambda s: s.to_text())
        return cls("roots", (pa, pb))

    @classmethod
    def of_inclusions(
        cls,
        index: int,
        a: tuple[SignedCheckpoint, bytes, Sequence[bytes]],
        b: tuple[SignedCheckpoint, bytes, Sequence[bytes]],
    ) -> SplitViewProof:
        """The proof that two checkpoints place different leaves at ``index`` (not yet verified).

        ``a`` and ``b`` are each ``(signed checkpoint, leaf hash, inclusion proof)``. Raises
        :class:`ProofError` if the origins differ or the leaves are equal.
        """
        ca, leaf_a, proof_a = a
        cb, leaf_b, proof_b = b
        if ca.checkpoint.origin != cb.checkpoint.origin:
            raise ProofError("split view: the checkpoints have different origins")
        if leaf_a == leaf_b:
            raise ProofError("split view: both proofs are for the same leaf")
        halves = sorted(
            [(_log_only(ca), leaf_a, tuple(proof_a)), (_log_only(cb), leaf_b, tuple(proof_b))],
            key=lambda h: (h[0].to_text(), h[1]),
        )
        (sa, la, qa), (sb, lb, qb) = halves
        return cls("inclusion", (sa, sb), index, (la, lb), (qa, qb))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "split-view",
            "kind": self.kind,
            "origin": self.origin,
            "checkpoints": [c.to_text() for c in self.checkpoints],
        }
        if self.kind == "inclusion":
            if self.leaves is None or self.proofs is None:
                raise ProofError("split view: an inclusion proof needs leaves and proofs")
            d["index"] = self.index
            d["leaves"] = [_b64(x) for x in self.leaves]
            d["proofs"] = [[_b64(x) for x in p] for p in self.proofs]
        return d

    @property
    def id(self) -> str:
        """Hex SHA-256 of the canonical encoding: the same evidence always has the same id."""
        return hashlib.sha256(encode(self.to_dict())).hexdigest()

    @classmethod
    def from_dict(cls, d: object) -> SplitViewProof:
        """Parse the canonical form (no signature check); :class:`ValidationError` names the field.

        Only the two kinds above exist: in particular no form carries a consistency proof.
        """
        if type(d) is not dict or d.get("type") != "split-view":
            raise ValidationError('split_view: must be an object with "type": "split-view"')
        kind = d.get("kind")
        keys = {"type", "kind", "origin", "checkpoints"}
        if kind == "inclusion":
            keys |= {"index", "leaves", "proofs"}
        elif kind != "roots":
            raise ValidationError('split_view.kind: must be "roots" or "inclusion"')
        if d.keys() != keys:
            raise ValidationError(f"split_view: a {kind} proof has exactly {sorted(keys)}")
        texts = d["checkpoints"]
        if type(texts) is not list or len(texts) != 2 or not all(isinstance(t, str) for t in texts):
            raise ValidationError("split_view.checkpoints: must be two signed checkpoint notes")
        cps = []
        for i, t in enumerate(texts):
            try:
                cps.append(SignedCheckpoint.parse(t))
            except CheckpointError as e:
                raise ValidationError(f"split_view.checkpoints[{i}]: {e.message}") from None
        if d["origin"] != cps[0].checkpoint.origin:
            raise ValidationError("split_view.origin: does not match the checkpoints' origin")
        try:
            if kind == "roots":
                proof = cls.of_roots(cps[0], cps[1])
            else:
                index = d["index"]
                if type(index) is not int or not 0 <= index <= MAX_INT:
                    raise ValidationError("split_view.index: must be an integer in [0, 2^53-1]")
                leaves = d["leaves"]
                if type(leaves) is not list or len(leaves) != 2:
                    raise ValidationError("split_view.leaves: must be two base64 hashes")
                la, lb = (_hash_field(x, f"split_view.leaves[{i}]") for i, x in enumerate(leaves))
                proofs = d["proofs"]
                if type(proofs) is not list or len(proofs) != 2:
                    raise ValidationError("split_view.proofs: must be two arrays of base64 hashes")
                qa, qb = (_proof_field(p, f"split_view.proofs[{i}]") for i, p in enumerate(proofs))
                proof = cls.of_inclusions(index, (cps[0], la, qa), (cps[1], lb, qb))
        except ProofError as e:
            raise ValidationError(e.message) from None
        if proof.to_dict() != d:
            raise ValidationError(
                "split_view: not in canonical form (halves out of order, or signatures other "
                "than the log's)"
            )
        return proof

    def verify(self, key: PublicKey, *handed_over: PublicKey) -> None:
        """Check offline that this proves the log with ``key`` misbehaved; return None if so.

        Raises :class:`ProofError` unless both checkpoints are signed under the origin's name
        by ``key`` or by one of the keys it handed over to (``handed_over``, which the caller
        followed from ``key`` through the log's handover events: two conflicting views signed by
        two keys of one city are still that city's doing), and either (roots) they have one size
        and two roots, or (inclusion) both inclusion proofs verify against their checkpoints and
        place different leaves at one index.
        """
        keys = (key, *handed_over)
        cps = []
        for i, sc in enumerate(self.checkpoints):
            try:
                sc.signer(self.origin, keys)
            except CheckpointError as e:
                raise ProofError(f"split view: checkpoint {i}: {e.message}") from None
            cps.append(sc.checkpoint)
        a, b = cps
        if self.kind == "roots":
            if a.size != b.size:
                raise ProofError("split view: the checkpoints have different sizes")
            if a.root == b.root:
                raise ProofError("split view: the checkpoints have the same root")
            return
        if self.kind != "inclusion" or self.leaves is None or self.proofs is None:
            raise ProofError(f"split view: unknown kind {self.kind!r}")
        index = self.index
        if type(index) is not int:
            raise ProofError("split view: an inclusion proof needs a leaf index")
        if self.leaves[0] == self.leaves[1]:
            raise ProofError("split view: both proofs are for the same leaf")
        for i, (cp, leaf, proof) in enumerate(zip(cps, self.leaves, self.proofs, strict=True)):
            try:
                verify_inclusion(leaf, index, cp.size, proof, cp.root)
            except ProofError as e:
                raise ProofError(f"split view: inclusion proof {i}: {e.message}") from None


def _hash_field(x: object, where: str) -> bytes:
    raw = _unb64(x) if isinstance(x, str) else None
    if raw is None or len(raw) != HASH_SIZE:
        raise ValidationError(f"{where}: must be the base64 of a {HASH_SIZE}-byte hash")
    return raw


def _proof_field(p: object, where: str) -> tuple[bytes, ...]:
    if type(p) is not list or len(p) > 64:
        raise ValidationError(f"{where}: must be an array of at most 64 base64 hashes")
    return tuple(_hash_field(x, f"{where}[{i}]") for i, x in enumerate(p))
