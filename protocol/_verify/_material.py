"""What the observer verifies: per-node, per-origin material, and the saved incremental state.

The engine is pure, so everything it reads is given to it here: for each node asked, the logs it
served (signed checkpoints with their cosignature lines, the entries, consistency proofs) and the
misbehaviour proofs it holds. How the material was obtained (HTTP, an exported directory) is the
CLI's business; none of it is trusted.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from protocol.checkpoint import SignedCheckpoint
from protocol.errors import CheckpointError, ValidationError
from protocol.merkle import HASH_SIZE, CompactRange
from protocol.state import State

__all__ = [
    "SAVED_FORMAT",
    "ConsistencyProof",
    "LogMaterial",
    "NodeMaterial",
    "SavedLog",
    "SavedState",
    "SealedPart",
]

SAVED_FORMAT: Final = "liquide-verify-state/v1"


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """An RFC 9162 consistency proof between two sizes of one log, as a node served it."""

    old: int
    new: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class LogMaterial:
    """One origin's log as one node served it.

    ``checkpoints`` are signed checkpoint notes (any sizes, each with the cosignature lines the
    node published). ``entries`` are the leaves ``[start, start + len(entries))``; None means the
    node was asked for checkpoints only. ``consistency`` holds the proofs the node served.
    """

    origin: str
    checkpoints: tuple[str, ...]
    entries: Sequence[bytes] | None = None
    start: int = 0
    consistency: tuple[ConsistencyProof, ...] = ()

    @property
    def end(self) -> int:
        """One past the last leaf index served."""
        return self.start + (0 if self.entries is None else len(self.entries))


@dataclass(frozen=True, slots=True)
class NodeMaterial:
    """Everything one node served: its logs by origin and the misbehaviour proofs it holds.

    ``proofs`` are ``{"id", "kind", "origin", "proof", "time"}`` objects as ``GET /v1/proofs``
    lists them.
    """

    node: str
    logs: Mapping[str, LogMaterial]
    proofs: tuple[Mapping[str, Any], ...] = ()


@dataclass(slots=True)
class SavedLog:
    """What an incremental verification keeps of one origin: the last verified checkpoint (its
    note), the compact range of the verified prefix and the replay state after it."""

    checkpoint: str
    range: CompactRange
    state: State

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "range": self.range.to_dict(),
            "state": self.state.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SavedLog:
        if type(d) is not dict or d.keys() != {"checkpoint", "range", "state"}:
            raise ValidationError(f"{where}: must be an object with checkpoint, range and state")
        if type(d["checkpoint"]) is not str:
            raise ValidationError(f"{where}.checkpoint: must be a signed checkpoint note")
        cr = CompactRange.from_dict(d["range"])
        state = State.from_dict(d["state"])
        if state.size != cr.size:
            raise ValidationError(f"{where}: the state and the range cover different sizes")
        try:
            cp = SignedCheckpoint.parse(d["checkpoint"]).checkpoint
        except CheckpointError as exc:
            raise ValidationError(f"{where}.checkpoint: {exc.message}") from None
        if (cp.origin, cp.size, cp.root) != (state.origin, cr.size, cr.root()):
            raise ValidationError(f"{where}.checkpoint: is not the checkpoint of the saved range")
        return cls(d["checkpoint"], cr, state)


@dataclass(slots=True)
class SealedPart:
    """A member city's part of an issue's record, kept until the record is complete: the root
    of its prefix up to its seal and its replay state right after the seal."""

    root: bytes
    state: State

    def to_dict(self) -> dict[str, Any]:
        return {"root": base64.b64encode(self.root).decode("ascii"), "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SealedPart:
        if type(d) is not dict or d.keys() != {"root", "state"}:
            raise ValidationError(f"{where}: must be an object with root and state")
        try:
            root = base64.b64decode(d["root"], validate=True) if type(d["root"]) is str else b""
        except (binascii.Error, ValueError):
            root = b""
        if len(root) != HASH_SIZE:
            raise ValidationError(f"{where}.root: must be the base64 of a 32-byte hash")
        return cls(root, State.from_dict(d["state"]))


@dataclass(slots=True)
class SavedState:
    """The state an incremental verification resumes from (``liquide verify --state DIR``).

    ``trust`` is the digest of the trust it was made under; ``logs`` the verified prefix of each
    origin; ``tallies`` the ``(record, digest)`` of each issue already tallied; ``sealed`` the
    replay states at the seals of issues not yet complete, by issue and origin.
    """

    trust: str
    logs: dict[str, SavedLog] = field(default_factory=dict)
    tallies: dict[str, tuple[str, str]] = field(default_factory=dict)
    sealed: dict[str, dict[str, SealedPart]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SAVED_FORMAT,
            "trust": self.trust,
            "logs": {o: s.to_dict() for o, s in sorted(self.logs.items())},
            "tallies": {
                i: {"record": r, "digest": d} for i, (r, d) in sorted(self.tallies.items())
            },
            "sealed": {
                i: {o: s.to_dict() for o, s in sorted(parts.items())}
                for i, parts in sorted(self.sealed.items())
            },
        }

    @classmethod
    def from_dict(cls, d: Any) -> SavedState:
        """Parse saved state; raise :class:`ValidationError` naming the field."""
        if type(d) is not dict or d.keys() != {"format", "trust", "logs", "tallies", "sealed"}:
            raise ValidationError(
                "state: must be an object with format, trust, logs, tallies, sealed"
            )
        if d["format"] != SAVED_FORMAT:
            raise ValidationError(f"state.format: must be {SAVED_FORMAT!r}")
        if type(d["trust"]) is not str:
            raise ValidationError("state.trust: must be a digest")
        for name in ("logs", "tallies", "sealed"):
            if type(d[name]) is not dict:
                raise ValidationError(f"state.{name}: must be an object")
        out = cls(d["trust"])
        for origin, raw in d["logs"].items():
            out.logs[origin] = SavedLog.from_dict(raw, f"state.logs.{origin}")
        for issue, raw in d["tallies"].items():
            if type(raw) is not dict or raw.keys() != {"record", "digest"}:
                raise ValidationError(f"state.tallies.{issue}: must hold record and digest")
            if type(raw["record"]) is not str or type(raw["digest"]) is not str:
                raise ValidationError(f"state.tallies.{issue}: record and digest are hex ids")
            out.tallies[issue] = (raw["record"], raw["digest"])
        for issue, parts in d["sealed"].items():
            if type(parts) is not dict:
                raise ValidationError(f"state.sealed.{issue}: must be an object")
            out.sealed[issue] = {
                o: SealedPart.from_dict(s, f"state.sealed.{issue}.{o}") for o, s in parts.items()
            }
        return out
