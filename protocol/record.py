"""The record of an issue: the member cities' log prefixes that its tally is computed from.

At the close each member city appends a ``seal`` event for the issue; its *part* of the record is
its log prefix up to and including that seal. A member city that has not sealed by
``closes + grace`` does not hold the issue hostage: its part is then the largest checkpoint of
its log that at least ``k`` of the assembly's witnesses cosigned with a time before ``closes``
(a *stand-in*), and the record says so (docs/PROTOCOL.md, section "replay", "The record").

The record id is the lower-case hex SHA-256 of the canonical encoding of the list
``[[origin, size, base64(root)], ...]`` sorted by origin, one entry per member city. It does not
depend on how a part was chosen, only on which prefixes the tally reads, so every node that holds
the same prefixes computes the same id; attestations name it.

This module is pure data: choosing the stand-in checkpoint among the ones a node has collected is
the federation layer's job; :meth:`RecordPart.verify_standin` checks a chosen one offline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from crypto import PublicKey

from . import encoding
from .checkpoint import SignedCheckpoint
from .encoding import MAX_INT
from .errors import CheckpointError, ValidationError
from .events import AssemblyBody

__all__ = ["RECORD_BASES", "Record", "RecordPart", "record_id"]

RECORD_BASES: Final = ("seal", "checkpoint")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: Any) -> bytes | None:
    if type(text) is not str:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII string
        return None
    return raw if _b64(raw) == text else None


@dataclass(frozen=True, slots=True)
class RecordPart:
    """One member city's part of a record: the prefix ``size`` of its log, with root ``root``.

    ``basis`` is ``"seal"`` when the prefix ends at the city's seal (``seal`` is that leaf's
    index, so ``size == seal + 1``), or ``"checkpoint"`` when the city did not seal by
    ``closes + grace`` and ``checkpoint`` holds the stand-in: the signed checkpoint note text with
    the witnesses' cosignature lines, whose origin, size and root are this part's.
    """

    origin: str
    size: int
    root: bytes
    basis: str = "seal"
    seal: int | None = None
    checkpoint: str | None = None

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"origin", "size", "root", "basis", "seal", "checkpoint"}
    )

    def __post_init__(self) -> None:
        self._validate("part")

    def _validate(self, where: str) -> None:
        if type(self.origin) is not str or not self.origin:
            raise ValidationError(f"{where}.origin: must be a non-empty string")
        if type(self.size) is not int or not 1 <= self.size <= MAX_INT:
            raise ValidationError(f"{where}.size: must be a positive integer")
        if type(self.root) is not bytes or len(self.root) != 32:
            raise ValidationError(f"{where}.root: must be 32 bytes")
        if self.basis == "seal":
            if self.seal != self.size - 1 or type(self.seal) is not int:
                raise ValidationError(f"{where}.seal: a sealed part ends at its seal (size - 1)")
            if self.checkpoint is not None:
                raise ValidationError(f"{where}.checkpoint: must be null for a sealed part")
        elif self.basis == "checkpoint":
            if self.seal is not None:
                raise ValidationError(f"{where}.seal: must be null for a stand-in part")
            if type(self.checkpoint) is not str:
                raise ValidationError(f"{where}.checkpoint: must be the signed checkpoint text")
            try:
                cp = SignedCheckpoint.parse(self.checkpoint).checkpoint
            except CheckpointError as exc:
                raise ValidationError(f"{where}.checkpoint: {exc.message}") from None
            if (cp.origin, cp.size, cp.root) != (self.origin, self.size, self.root):
                raise ValidationError(
                    f"{where}.checkpoint: names another origin, size or root than the part"
                )
        else:
            raise ValidationError(f"{where}.basis: must be seal or checkpoint")

    def entry(self) -> list[Any]:
        """``[origin, size, base64(root)]``: what the record id hashes."""
        return [self.origin, self.size, _b64(self.root)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": _b64(self.root),
            "basis": self.basis,
            "seal": self.seal,
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "part") -> RecordPart:
        """Parse a part; raise :class:`ValidationError` naming the field."""
        if type(d) is not dict or d.keys() != cls.KEYS:
            raise ValidationError(f"{where}: must be an object with {', '.join(sorted(cls.KEYS))}")
        root = d["root"]
        raw = _unb64(root)
        if raw is None:
            raise ValidationError(f"{where}.root: must be canonical padded base64")
        part = object.__new__(cls)
        for name in ("origin", "size", "basis", "seal", "checkpoint"):
            object.__setattr__(part, name, d[name])
        object.__setattr__(part, "root", raw)
        part._validate(where)
        return part

    def verify_standin(self, city_key: PublicKey, assembly: AssemblyBody, closes: int) -> None:
        """Check a ``checkpoint`` part offline against the assembly's pins.

        Returns None when the checkpoint is signed by ``city_key`` under this origin and at
        least ``assembly.k`` of the assembly's witnesses cosigned it with a time before
        ``closes``. Raises :class:`CheckpointError` otherwise (``ValidationError`` for a sealed
        part, which has no stand-in to check).
        """
        if self.checkpoint is None:
            raise ValidationError("part: a sealed part has no stand-in checkpoint")
        signed = SignedCheckpoint.parse(self.checkpoint)
        signed.verify(self.origin, city_key)
        early = 0
        for w in assembly.witnesses:
            try:
                cosig = signed.verify_cosignature(w.name, PublicKey.from_text(w.key))
            except CheckpointError:
                continue
            if cosig.time < closes:
                early += 1
        if early < assembly.k:
            raise CheckpointError(
                f"{self.origin}: only {early} of the required {assembly.k} witnesses cosigned "
                "this checkpoint before the close"
            )


def record_id(parts: Iterable[RecordPart]) -> str:
    """The record id of ``parts``: hex SHA-256 of the canonical list of entries by origin.

    Raises :class:`ValidationError` if two parts share an origin.
    """
    entries = sorted(p.entry() for p in parts)
    if len({e[0] for e in entries}) != len(entries):
        raise ValidationError("record: two parts for one origin")
    return hashlib.sha256(encoding.encode(entries)).hexdigest()


@dataclass(frozen=True, slots=True)
class Record:
    """An issue's record: one part per member city, sorted by origin."""

    issue: str
    parts: tuple[RecordPart, ...]

    KEYS: ClassVar[frozenset[str]] = frozenset({"issue", "parts"})

    def __post_init__(self) -> None:
        if (
            type(self.issue) is not str
            or len(self.issue) != 64
            or self.issue.strip("0123456789abcdef")
        ):
            raise ValidationError("record.issue: must be a lower-case hex id")
        if not self.parts:
            raise ValidationError("record.parts: must hold at least one part")
        origins = [p.origin for p in self.parts]
        if origins != sorted(set(origins)):
            raise ValidationError("record.parts: must be sorted by origin, one per origin")

    @classmethod
    def of(cls, issue: str, parts: Iterable[RecordPart]) -> Record:
        """The record of ``parts`` in canonical order."""
        return cls(issue, tuple(sorted(parts, key=lambda p: p.origin)))

    @property
    def id(self) -> str:
        """The record id (see :func:`record_id`)."""
        return record_id(self.parts)

    def part(self, origin: str) -> RecordPart | None:
        """The part of ``origin``, or None."""
        return next((p for p in self.parts if p.origin == origin), None)

    def standins(self) -> tuple[str, ...]:
        """Origins whose part is a stand-in checkpoint (every attestation must say so)."""
        return tuple(p.origin for p in self.parts if p.basis == "checkpoint")

    def to_dict(self) -> dict[str, Any]:
        return {"issue": self.issue, "parts": [p.to_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, d: Any) -> Record:
        """Parse a record; raise :class:`ValidationError` naming the field."""
        if type(d) is not dict or d.keys() != cls.KEYS:
            raise ValidationError("record: must be an object with issue and parts")
        parts = d["parts"]
        if type(parts) is not list:
            raise ValidationError("record.parts: must be an array")
        return cls(
            d["issue"],
            tuple(RecordPart.from_dict(p, f"record.parts[{i}]") for i, p in enumerate(parts)),
        )
