"""Federation rules that need no I/O: comparing a peer's checkpoint with ours, and the
witness-time rules of an issue's record (docs/PROTOCOL.md, section "federation").

* :func:`compare` classifies a verified checkpoint of a peer against the mirror we hold.
* A city's part of a record is its prefix up to its seal. The clock enters only through
  witnesses: :func:`witnessed_at` is when ``k`` pinned witnesses had cosigned a checkpoint that
  covers a leaf; :func:`seal_part` flags a seal witnessed before the close (``early_seal``) or
  only after close + grace (``late_seal``), and :func:`fallback_size` is the prefix standing in
  for a city that did not seal by close + grace: the largest size that ``k`` witnesses had
  vouched for (cosigned it or a larger, consistent checkpoint) before the close.
* :func:`record_id` is the id of a record: the hex SHA-256 of the canonical list of
  ``[origin, size, base64 root]`` triples, ordered by origin.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .encoding import encode

__all__ = [
    "CosignFact",
    "Part",
    "compare",
    "fallback_size",
    "record_id",
    "seal_part",
    "witnessed_at",
]


def compare(
    our_size: int, our_root_at: bytes | None, their_size: int, their_root: bytes
) -> Literal["same", "behind", "ahead", "conflict"]:
    """Classify a peer's verified checkpoint against our mirror of the same origin.

    ``our_root_at`` is our root at ``their_size`` when we hold that many leaves (else None).
    Returns ``ahead`` (theirs is larger: fetch), ``same``, ``behind`` (we hold more, and their
    root agrees with our prefix), or ``conflict`` (a root at a size we hold differs: evidence to
    investigate, not yet a proof).
    """
    if their_size > our_size:
        return "ahead"
    if our_root_at is None:  # pragma: no cover (callers pass a root for sizes we hold)
        return "ahead"
    if our_root_at != their_root:
        return "conflict"
    return "same" if their_size == our_size else "behind"


@dataclass(frozen=True, slots=True)
class CosignFact:
    """A verified cosignature: witness ``witness`` cosigned ``origin``'s checkpoint ``size``
    at the time ``time`` it claims."""

    witness: str
    size: int
    time: int


def witnessed_at(facts: Iterable[CosignFact], index: int, k: int) -> int | None:
    """When ``k`` distinct witnesses had cosigned checkpoints covering leaf ``index``.

    For each witness, the earliest time it cosigned a checkpoint of size > ``index``; the k-th
    smallest of those. None when fewer than ``k`` witnesses ever did, or when ``k`` is 0.
    """
    if k <= 0:
        return None
    first: dict[str, int] = {}
    for f in facts:
        if f.size > index and (f.witness not in first or f.time < first[f.witness]):
            first[f.witness] = f.time
    times = sorted(first.values())
    return times[k - 1] if len(times) >= k else None


def fallback_size(facts: Iterable[CosignFact], close: int, k: int) -> int:
    """The largest prefix that ``k`` witnesses vouched for before ``close``.

    A witness vouches for every prefix of a checkpoint it cosigns (it checked consistency), so
    this is the k-th largest of each witness's largest size cosigned at a time < ``close``.
    With ``k`` = 0 no time can be established and the answer is 0 (the city contributes its
    empty prefix).
    """
    if k <= 0:
        return 0
    best: dict[str, int] = {}
    for f in facts:
        if f.time < close and f.size > best.get(f.witness, -1):
            best[f.witness] = f.size
    sizes = sorted(best.values(), reverse=True)
    return sizes[k - 1] if len(sizes) >= k else 0


@dataclass(frozen=True, slots=True)
class Part:
    """One member city's part of a record and how it was chosen."""

    origin: str
    size: int
    root: bytes
    kind: Literal["seal", "fallback"]
    flags: tuple[str, ...] = ()
    witnessed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode("ascii"),
            "kind": self.kind,
            "flags": list(self.flags),
            "witnessed": self.witnessed,
        }


def seal_part(
    origin: str,
    seal_index: int,
    root: bytes,
    facts: Sequence[CosignFact],
    *,
    close: int,
    grace: int,
    k: int,
    now: int,
) -> Part | None:
    """The part of a city that sealed at leaf ``seal_index``, or None if not settled yet.

    Flags ``early_seal`` when ``k`` witnesses had cosigned the seal before ``close``, and
    ``late_seal`` when they did only after ``close + grace``. A seal not yet witnessed by ``k``
    settles (flagged ``late_seal``, ``unwitnessed``) once ``now`` passes close + grace.
    """
    at = witnessed_at(facts, seal_index, k)
    flags: list[str] = []
    if k > 0:
        if at is None:
            if now <= close + grace:
                return None
            flags += ["late_seal", "unwitnessed"]
        elif at < close:
            flags.append("early_seal")
        elif at > close + grace:
            flags.append("late_seal")
    return Part(origin, seal_index + 1, root, "seal", tuple(flags), at)


def record_id(parts: Iterable[tuple[str, int, bytes]]) -> str:
    """The record id: hex SHA-256 of the canonical ``[[origin, size, b64 root], …]`` by origin."""
    triples = sorted([o, s, base64.b64encode(r).decode("ascii")] for o, s, r in parts)
    return hashlib.sha256(encode(triples)).hexdigest()
