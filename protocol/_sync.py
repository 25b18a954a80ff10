"""Federation rules that need no I/O: comparing a peer's checkpoint with ours, and the
witness-time rules of an issue's record (docs/PROTOCOL.md, section "federation").

* :func:`compare` classifies a verified checkpoint of a peer against the mirror we hold.
* A city's part of a record (:mod:`protocol.record`) is its prefix up to its seal. The clock
  enters only through witnesses: :func:`witnessed_at` is when ``k`` pinned witnesses had
  cosigned a checkpoint that covers a leaf; :func:`seal_flags` flags a seal witnessed before the
  close (``early_seal``) or only after close + grace (``late_seal``), and :func:`standin_size`
  picks the checkpoint standing in for a city that did not seal by close + grace: the largest
  one that ``k`` witnesses cosigned before the close.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["CosignFact", "compare", "seal_flags", "standin_size", "witnessed_at"]


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


def standin_size(facts: Iterable[CosignFact], close: int, k: int) -> int | None:
    """The size of the stand-in checkpoint of a city that did not seal by close + grace.

    That is the largest checkpoint size that at least ``k`` distinct witnesses cosigned with a
    time before ``close`` (:meth:`protocol.record.RecordPart.verify_standin` checks the same).
    None when there is none, and when ``k`` is 0: without witnesses no time can be established,
    so the record waits for the seal.
    """
    if k <= 0:
        return None
    early: dict[int, set[str]] = {}
    for f in facts:
        if f.time < close and f.size > 0:
            early.setdefault(f.size, set()).add(f.witness)
    sizes = [size for size, ws in early.items() if len(ws) >= k]
    return max(sizes) if sizes else None


def seal_flags(
    facts: Sequence[CosignFact], seal_index: int, *, close: int, grace: int, k: int, now: int
) -> tuple[str, ...] | None:
    """The flags of a seal at leaf ``seal_index``, or None while it is not settled.

    ``early_seal`` when ``k`` witnesses had cosigned the seal before ``close``; ``late_seal``
    when they did only after ``close + grace``. A seal not witnessed by ``k`` yet settles, flagged
    ``late_seal`` and ``unwitnessed``, once ``now`` passes close + grace. With ``k`` = 0 there is
    no witness clock and no flag.
    """
    if k <= 0:
        return ()
    at = witnessed_at(facts, seal_index, k)
    if at is None:
        if now <= close + grace:
            return None
        return ("late_seal", "unwitnessed")
    if at < close:
        return ("early_seal",)
    if at > close + grace:
        return ("late_seal",)
    return ()
