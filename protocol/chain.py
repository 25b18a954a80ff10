"""Per-author chains (docs/PROTOCOL.md §3.3) and proofs of equivocation.

Each author's events form a chain: ``seq`` counts from 1 without gaps and ``prev`` is the id of
the author's previous event (null at seq 1). The chain is what keeps a city from dropping a
citizen's earlier event while keeping a later one: the later event names the earlier one.

Within one log the first event at a ``seq`` wins. A second, different, validly signed event by
the same author at the same ``seq`` is an equivocation; the pair is an
:class:`EquivocationProof`, which anyone can check offline from the two events alone.

:func:`check_next` raises :class:`ChainError` with ``code`` set to the replay finding reason:

* ``chain_gap``: ``seq`` skips past the head's successor;
* ``chain_prev``: the successor's ``prev`` is not the head's id;
* ``duplicate_event``: the very event at the head again (same id);
* ``seq_reused``: any other event at a ``seq`` the chain already holds. Whether it is an
  equivocation or a duplicate of an older event is decided by comparing it with the event the log
  holds at that ``seq`` (see :mod:`protocol.state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from crypto import BadSignatureError

from .errors import ChainError, ProofError, ValidationError
from .events import Event

__all__ = ["EquivocationProof", "Head", "check_next"]


@dataclass(frozen=True, slots=True)
class Head:
    """The last event of an author's chain that a log accepted: its ``seq`` and id."""

    seq: int
    id: str


def check_next(head: Head | None, event: Event) -> None:
    """Check that ``event`` extends the chain whose last accepted event is ``head``.

    ``head`` is None when the author has no accepted event yet. Returns None when the event is
    the head's successor; raises :class:`ChainError` (code as in the module docstring, message
    naming the current head so that a wallet can recover) otherwise.
    """
    if head is None:
        if event.seq != 1:
            raise ChainError(
                f"seq {event.seq} skips ahead: the author has no event yet, so seq must be 1",
                code="chain_gap",
            )
        return
    if event.seq == head.seq + 1:
        if event.prev != head.id:
            raise ChainError(
                f"prev {event.prev} is not the id of the author's event at seq {head.seq} "
                f"(current head: seq {head.seq}, id {head.id})",
                code="chain_prev",
            )
        return
    if event.seq > head.seq:
        raise ChainError(
            f"seq {event.seq} skips ahead (current head: seq {head.seq}, id {head.id})",
            code="chain_gap",
        )
    if event.seq == head.seq and event.id == head.id:
        raise ChainError(
            f"event {event.id} is already the author's head at seq {head.seq}",
            code="duplicate_event",
        )
    raise ChainError(
        f"seq {event.seq} is already used (current head: seq {head.seq}, id {head.id})",
        code="seq_reused",
    )


@dataclass(frozen=True, slots=True)
class EquivocationProof:
    """Two different events, both validly signed by one author, at the same ``seq``.

    Canonical form: ``{"events": [a, b]}`` with the two signed events ordered by id. Build one
    with :meth:`of` (which orders them); :meth:`verify` checks it offline.
    """

    first: Event
    second: Event

    KEYS: ClassVar[frozenset[str]] = frozenset({"events"})

    @classmethod
    def of(cls, a: Event, b: Event) -> EquivocationProof:
        """The proof made of ``a`` and ``b`` in canonical order (not yet verified)."""
        return cls(a, b) if a.id <= b.id else cls(b, a)

    @property
    def author(self) -> str:
        return self.first.author

    @property
    def seq(self) -> int:
        return self.first.seq

    def to_dict(self) -> dict[str, Any]:
        return {"events": [self.first.to_dict(), self.second.to_dict()]}

    @classmethod
    def from_dict(cls, d: Any) -> EquivocationProof:
        """Parse the canonical form; raise :class:`ValidationError` naming the field."""
        if type(d) is not dict or d.keys() != cls.KEYS:
            raise ValidationError("equivocation: must be an object with exactly 'events'")
        events = d["events"]
        if type(events) is not list or len(events) != 2:
            raise ValidationError("equivocation.events: must be an array of two signed events")
        a = Event.from_dict(events[0], "equivocation.events[0]")
        b = Event.from_dict(events[1], "equivocation.events[1]")
        if not a.id < b.id:
            raise ValidationError("equivocation.events: must be two distinct events sorted by id")
        return cls(a, b)

    def verify(self) -> None:
        """Check the proof offline; return None if it is real.

        Raises :class:`ProofError` unless both events are signed by the same author, at the same
        ``seq``, with different ids, and both signatures verify.
        """
        a, b = self.first, self.second
        if a.author != b.author:
            raise ProofError("equivocation: the two events have different authors")
        if a.seq != b.seq:
            raise ProofError(f"equivocation: the events are at seq {a.seq} and {b.seq}")
        if a.id == b.id:
            raise ProofError("equivocation: the two events are the same event")
        for name, ev in (("first", a), ("second", b)):
            try:
                ev.verify()
            except BadSignatureError:
                raise ProofError(f"equivocation: the {name} event's signature is bad") from None
