"""Replay: one city's log, leaf by leaf, into governance state and findings.

A city log is self-contained for validity (DESIGN invariant 4): joins carry the assembly's signed
definition and adoptions carry the issue's and its area's, so :class:`State` never needs another
log. Replay is pure and ordered: validity depends only on the log's contents and their order,
never on a clock (voting windows are the ingest policy of honest nodes, not replay rules).

:meth:`State.apply` never raises for a governance problem. A leaf that breaks a rule becomes a
:class:`Finding` that names the city, the leaf index and a reason (docs/PROTOCOL.md, section
"replay"), and the state ignores the leaf. :meth:`State.check` applies the same rules to a
candidate event without changing anything and raises instead, with the same reason as the error's
``code``, so that a node's ingest refuses exactly what replay would report.

Each leaf goes through these steps; the first that fails decides the finding:

1. decode (canonical bytes, field rules);
2. the author's signature;
3. authority: a city type must be signed by the city key in effect at that leaf (the pinned key,
   then each key a ``handover`` named, see :meth:`State.key_at`), a citizen type by an enrolled
   key;
4. the author's chain (:mod:`protocol.chain`); an accepted event then becomes the chain's head,
   even if step 5 rejects its effect, because the author did sign it at that place;
5. the type's governance rule (known targets, seals, options, ...), then its effect.

:func:`tally_input` turns the member cities' states as of their seals into the ``TallyInput``
document of docs/TALLY.md.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

from crypto import BadSignatureError

from ._drafts import draft
from ._drafts import new as new_draft
from .chain import EquivocationProof, Head, check_next
from .encoding import MAX_INT
from .errors import ChainError, ProtocolError, TallyInputError, ValidationError
from .events import (
    CITY_TYPES,
    EVENT_TYPES,
    AreaBody,
    AssemblyBody,
    AssemblyJoinBody,
    AttestBody,
    BallotBody,
    DelegateBody,
    EnrolBody,
    Event,
    HandoverBody,
    IssueAdoptBody,
    IssueBody,
    RevokeBody,
    SealBody,
    WithdrawBody,
    parse_key,
)
from .tally import MAX_VOTERS, TallyInput
from .tally import Policy as TallyPolicy

__all__ = [
    "REASONS",
    "Attestation",
    "Enrolment",
    "Finding",
    "Leaves",
    "Replay",
    "RollEntry",
    "State",
    "TallyInputBuild",
    "replay",
    "tally_input",
]

REASONS: Final[Mapping[str, str]] = {
    # step 1: the leaf itself
    "non_canonical": "the leaf is not canonical JSON of the encoding profile",
    "invalid": "a field breaks its rule (type, size, form, unknown or missing field)",
    "unknown_type": "the event type is not a protocol type",
    "too_large": "the leaf exceeds MAX_EVENT_BYTES",
    "trustees_too_long": "a delegation names more than MAX_TRUSTEES trustees",
    "duplicate_trustee": "a delegation names a trustee twice",
    "self_delegation": "a delegation names its own author as a trustee",
    # step 2
    "bad_signature": "the author's signature does not verify",
    # step 3
    "not_city": "a city event type signed by a key other than this city's",
    "retired_key": "a city event signed by a city key that a handover retired",
    "not_enrolled": "a citizen event by a key this city has not enrolled",
    # step 4
    "chain_gap": "the author's seq skips ahead of its chain",
    "chain_prev": "prev is not the id of the author's previous event",
    "duplicate_event": "the same event appears a second time",
    "equivocation": "a different event by the same author at a seq already used (first wins)",
    "seq_reused": "an event at a seq already used, not compared (no leaf lookup available)",
    # step 5
    "bad_definition": "a carried definition is malformed, badly signed or by a non-member",
    "not_member": "this city is not a member city of the assembly",
    "already_known": "the assembly is already joined or the issue already adopted here",
    "unknown_assembly": "the assembly is not joined in this log",
    "unknown_area": "the area is not defined in this log",
    "area_mismatch": "an issue and its area name different assemblies or areas",
    "city_key": "an enrolment of a key that is or was this city's key",
    "key_reused": "a handover to a key that is or was this city's key",
    "citizen_key": "a handover to a key ever enrolled here or that signed events here",
    "already_enrolled": "an enrolment of a key that is already enrolled here",
    "unknown_citizen": "an unenrolment of a key that is not enrolled here",
    "unknown_issue": "the issue is not adopted in this log",
    "already_sealed": "a second seal of an issue",
    "issue_sealed": "a ballot, withdrawal or issue delegation after this city's seal",
    "unknown_option": "a ballot grades an option id the issue lacks",
    "unknown_target": "a delegation's scope target is not known in this log",
    "no_delegation": "a revocation of a delegation that does not exist",
    "no_ballot": "a withdrawal without a ballot",
    "attest_repeated": "a second attestation of the same record",
    # tally input (across cities)
    "enrolled_twice": "a key enrolled by two member cities: excluded from the electorate",
}

Leaves = Callable[[int], bytes]
"""Returns the leaf at an index of the log being replayed (used to prove equivocations)."""


class _Reject(Exception):  # noqa: N818 (internal control flow, never escapes this module)
    def __init__(self, reason: str, message: str, proof: EquivocationProof | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.proof = proof


@dataclass(frozen=True, slots=True)
class Finding:
    """A leaf that broke a rule: which city's log, where, what, and why."""

    origin: str
    index: int
    event_id: str | None
    reason: str
    message: str
    proof: EquivocationProof | None = None

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"origin", "index", "event_id", "reason", "message", "proof"}
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "index": self.index,
            "event_id": self.event_id,
            "reason": self.reason,
            "message": self.message,
            "proof": None if self.proof is None else self.proof.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Finding:
        """Parse a finding; raise :class:`ValidationError` naming the field."""
        d = _obj(d, "finding", cls.KEYS)
        if d["reason"] not in REASONS:
            raise ValidationError(f"finding.reason: unknown reason {d['reason']!r}")
        if type(d["message"]) is not str:
            raise ValidationError("finding.message: must be a string")
        event_id = d["event_id"]
        if event_id is not None:
            _hex(event_id, "finding.event_id")
        return cls(
            _str(d["origin"], "finding.origin"),
            _int(d["index"], "finding.index"),
            event_id,
            d["reason"],
            d["message"],
            None if d["proof"] is None else EquivocationProof.from_dict(d["proof"]),
        )


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A citizen enrolled by this city: the registrar's reference and the enrol event."""

    ref: str
    index: int
    event_id: str


@dataclass(frozen=True, slots=True)
class RollEntry:
    """One change to the roll of citizens: an accepted enrol or unenrol, at a leaf index."""

    index: int
    kind: str
    key: str
    ref: str
    ts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "key": self.key,
            "ref": self.ref,
            "ts": self.ts,
        }


@dataclass(frozen=True, slots=True)
class Attestation:
    """A tally attestation appended by this city."""

    issue: str
    digest: str
    index: int


_EnrolmentDraft = draft(Enrolment)
_RollEntryDraft = draft(RollEntry)


@dataclass(frozen=True, slots=True)
class _Def:
    """A definition known to this log (assembly, area or issue) and where it became known."""

    event: Event
    index: int


class _Chain:
    """An author's chain: head seq and id, and the leaf index of each accepted seq."""

    __slots__ = ("at", "id", "seq")

    def __init__(self, seq: int, id_: str, at: list[int]) -> None:
        self.seq = seq
        self.id = id_
        self.at = at


class State:
    """The governance state of one city's log after replaying its first :attr:`size` leaves.

    ``State(origin, key)`` is the state of an empty log of the city with that log origin and
    that ``lqpk1…`` key: :attr:`key` stays that pinned (anchor) key, while :attr:`city_key` is
    the key in effect after the handovers replayed so far (:attr:`handovers`). ``leaves``, when given, returns earlier leaves of the same log: replay
    uses it to tell an equivocation (with its proof) from a duplicate at an old ``seq``; without
    it such a leaf is reported as ``seq_reused``.
    """

    def __init__(self, origin: str, key: str, *, leaves: Leaves | None = None) -> None:
        parse_key(key, "key")
        self.origin = origin
        self.key = key
        self.city_key = key
        self.handovers: list[tuple[int, str]] = []
        """``(leaf index, new key)`` of every accepted handover, in log order."""
        self.leaves = leaves
        self.size = 0
        self.assemblies: dict[str, _Def] = {}
        self.areas: dict[str, _Def] = {}
        self.issues: dict[str, _Def] = {}
        self.window_start: dict[str, int] = {}
        self.enrolled: dict[str, Enrolment] = {}
        self.roll: list[RollEntry] = []
        self.chains: dict[str, _Chain] = {}
        self.delegations: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {}
        self.ballots: dict[str, dict[str, Mapping[str, int]]] = {}
        self.seals: dict[str, int] = {}
        self.attestations: dict[str, Attestation] = {}
        # issues adopted, not sealed, whose window has not started yet (small; checked per leaf)
        self._pending: dict[str, int] = {}

    # --- reading ---------------------------------------------------------------------------

    def key_at(self, size: int) -> str:
        """The city key in effect after ``size`` leaves: the key that signs a checkpoint of
        ``size`` leaves and any city event at leaf ``size`` (the pinned key, then the key of
        the last handover among leaves ``[0, size)``). Known only for handovers replayed so
        far, so for ``size`` up to :attr:`size`; raises ``ValueError`` beyond it.
        """
        if size > self.size:
            raise ValueError(f"the key at size {size} is not known: replay is at {self.size}")
        n = bisect.bisect_left(self.handovers, size, key=lambda h: h[0])
        return self.key if n == 0 else self.handovers[n - 1][1]

    def city_keys(self) -> list[str]:
        """Every key this city has used, the pinned key first and the one in effect last."""
        return [self.key, *(k for _, k in self.handovers)]

    def head(self, author: str) -> Head | None:
        """The author's chain head in this log, or None."""
        c = self.chains.get(author)
        return None if c is None else Head(c.seq, c.id)

    def issue(self, issue_id: str) -> IssueBody | None:
        """The definition of an issue adopted (or defined) here, or None."""
        d = self.issues.get(issue_id)
        return None if d is None else _body(d.event, IssueBody)

    def assembly(self, assembly_id: str) -> AssemblyBody | None:
        """The definition of an assembly joined (or defined) here, or None."""
        d = self.assemblies.get(assembly_id)
        return None if d is None else _body(d.event, AssemblyBody)

    def delegation(self, citizen: str, target: str) -> tuple[str, tuple[str, ...]] | None:
        """``(scope, trustees)`` of the citizen's delegation for a target id, or None."""
        return self.delegations.get(citizen, {}).get(target)

    def ballot(self, issue_id: str, citizen: str) -> Mapping[str, int] | None:
        """The citizen's latest ballot on the issue, or None."""
        return self.ballots.get(issue_id, {}).get(citizen)

    def enrolment_changes(self, issue_id: str) -> list[RollEntry]:
        """Enrolments and unenrolments inside the issue's voting window in this log.

        The window starts at the first accepted leaf, at or after the issue's adoption, whose
        ``ts`` is at least the issue's ``opens``, and ends at this city's seal of the issue
        (or at the end of the log so far). Empty when the window has not started.
        """
        start = self.window_start.get(issue_id)
        if start is None:
            return []
        end = self.seals.get(issue_id, self.size)
        lo = bisect.bisect_left(self.roll, start, key=lambda r: r.index)
        hi = bisect.bisect_right(self.roll, end, key=lambda r: r.index)
        return self.roll[lo:hi]

    # --- replay ----------------------------------------------------------------------------

    def apply(self, index: int, leaf: bytes) -> list[Finding]:
        """Replay the leaf at ``index`` (which must be :attr:`size`); return its findings.

        Never raises for a governance problem; raises ``ValueError`` only when ``index`` is not
        the next leaf of this log (a caller's bug).
        """
        self._expect(index)
        try:
            ev = Event.decode(leaf)
        except ProtocolError as exc:
            self.size += 1
            return [Finding(self.origin, index, None, exc.code, exc.message)]
        return self.apply_event(index, ev)

    def apply_event(self, index: int, event: Event, *, verified: bool = False) -> list[Finding]:
        """Like :meth:`apply` for an already decoded event (the node's hot path).

        With ``verified=True`` the caller vouches that it checked the signature itself.
        """
        # One frame: this runs once per leaf of every replay.
        if index != self.size:
            self._expect(index)
        try:
            self._judge(index, event, verified=verified, commit=True)
        except _Reject as r:
            return [Finding(self.origin, index, event.id, r.reason, r.message, r.proof)]
        finally:
            self.size = index + 1
        return []

    def check(self, event: Event, *, verified: bool = False) -> None:
        """Check whether appending ``event`` next would be accepted; change nothing.

        Raises, with ``code`` set to the finding reason replay would report:
        :class:`crypto.BadSignatureError` (``bad_signature``), :class:`ChainError` (chain
        reasons; the message names the current head) or :class:`ValidationError` (any other).
        """
        try:
            self._judge(self.size, event, verified=verified, commit=False)
        except _Reject as r:
            if r.reason == "bad_signature":
                raise BadSignatureError(r.message) from None
            if r.reason in _CHAIN_REASONS:
                raise ChainError(r.message, code=r.reason) from None
            raise ValidationError(r.message, code=r.reason) from None

    def _expect(self, index: int) -> None:
        if index != self.size:
            raise ValueError(f"leaf index {index} given, the next leaf of this log is {self.size}")

    def _judge(self, index: int, ev: Event, *, verified: bool, commit: bool) -> None:
        if not verified:
            try:
                ev.verify()
            except BadSignatureError:
                raise _Reject(
                    "bad_signature", f"{ev.type} {ev.id}: signature does not verify"
                ) from None
        author = ev.author
        city_type = ev.type in CITY_TYPES
        if city_type:
            if author != self.city_key:
                if author == self.key or any(k == author for _, k in self.handovers):
                    raise _Reject(
                        "retired_key",
                        f"{ev.type} signed by {author}, a key of {self.origin} that a handover "
                        f"retired; the key in effect is {self.city_key}",
                    )
                raise _Reject("not_city", f"{ev.type} signed by {author}, not by {self.origin}")
        elif author not in self.enrolled:
            raise _Reject("not_enrolled", f"{ev.type} by {author}, not enrolled by {self.origin}")
        chain = self.chains.get(author)
        if chain is None:
            if ev.seq != 1:
                self._chain_reject(None, ev)
        elif ev.seq != chain.seq + 1 or ev.prev != chain.id:
            self._chain_reject(chain, ev)
        if commit:
            if chain is None:
                self.chains[author] = _Chain(ev.seq, ev.id, [index])
            else:
                chain.seq, chain.id = ev.seq, ev.id
                chain.at.append(index)
            if self._pending:
                self._start_windows(index, ev.ts)
        _RULES[ev.type](self, index, ev, commit)

    def _chain_reject(self, chain: _Chain | None, ev: Event) -> None:
        try:
            check_next(None if chain is None else Head(chain.seq, chain.id), ev)
        except ChainError as exc:
            if exc.code != "seq_reused" or chain is None or self.leaves is None:
                raise _Reject(exc.code, exc.message) from None
            index = chain.at[ev.seq - 1]
            first = Event.decode(self.leaves(index))
            head = f"(current head: seq {chain.seq}, id {chain.id})"
            if first.id == ev.id:
                raise _Reject(
                    "duplicate_event", f"event {ev.id} already appears at leaf {index} {head}"
                ) from None
            raise _Reject(
                "equivocation",
                f"{ev.author} signed two events at seq {ev.seq}; the one at leaf {index} wins "
                + head,
                EquivocationProof.of(first, ev),
            ) from None
        raise AssertionError("unreachable: check_next accepted a rejected link")  # pragma: no cover

    def _start_windows(self, index: int, ts: int) -> None:
        started = [i for i, opens in self._pending.items() if ts >= opens]
        for issue_id in started:
            del self._pending[issue_id]
            self.window_start[issue_id] = index

    # --- governance rules: check, then (when commit) apply ---------------------------------

    def _rule_assembly(self, index: int, ev: Event, commit: bool) -> None:
        body = _body(ev, AssemblyBody)
        member = body.member(self.origin)
        if member is None or member.key != self.key:
            raise _Reject("not_member", f"{self.origin} is not among the assembly's members")
        if commit:
            self.assemblies[ev.id] = _Def(ev, index)

    def _rule_join(self, index: int, ev: Event, commit: bool) -> None:
        d = _body(ev, AssemblyJoinBody).assembly
        _check_definition(d, "assembly definition")
        body = _body(d, AssemblyBody)
        if not self._by_member(body, d.author):
            raise _Reject("bad_definition", f"assembly {d.id} is signed by a non-member key")
        member = body.member(self.origin)
        if member is None or member.key != self.key:
            raise _Reject("not_member", f"{self.origin} is not among assembly {d.id}'s members")
        if d.id in self.assemblies:
            raise _Reject("already_known", f"assembly {d.id} is already joined")
        if commit:
            self.assemblies[d.id] = _Def(d, index)

    def _by_member(self, assembly: AssemblyBody, author: str) -> bool:
        """Whether a carried definition's author is a member city's key: its pinned key or,
        for this city, any key of its own schedule (the other cities' handovers are not in
        this log, so their definitions must be signed by their pinned keys)."""
        if assembly.member_by_key(author) is not None:
            return True
        own = assembly.member(self.origin)
        return own is not None and own.key == self.key and author in self.city_keys()

    def _rule_area(self, index: int, ev: Event, commit: bool) -> None:
        body = _body(ev, AreaBody)
        if body.assembly not in self.assemblies:
            raise _Reject("unknown_assembly", f"assembly {body.assembly} is not joined here")
        if commit:
            self.areas[ev.id] = _Def(ev, index)

    def _rule_issue(self, index: int, ev: Event, commit: bool) -> None:
        body = _body(ev, IssueBody)
        if body.assembly not in self.assemblies:
            raise _Reject("unknown_assembly", f"assembly {body.assembly} is not joined here")
        area = self.areas.get(body.area)
        if area is None:
            raise _Reject("unknown_area", f"area {body.area} is not defined here")
        if _body(area.event, AreaBody).assembly != body.assembly:
            raise _Reject("area_mismatch", f"area {body.area} belongs to another assembly")
        if commit:
            self._add_issue(index, ev, ev.ts)

    def _rule_adopt(self, index: int, ev: Event, commit: bool) -> None:
        adopt = _body(ev, IssueAdoptBody)
        iss, area = adopt.issue, adopt.area
        _check_definition(iss, "issue definition")
        _check_definition(area, "area definition")
        ib, ab = _body(iss, IssueBody), _body(area, AreaBody)
        if ib.area != area.id or ib.assembly != ab.assembly:
            raise _Reject("area_mismatch", f"issue {iss.id} is not of the carried area {area.id}")
        asm = self.assemblies.get(ib.assembly)
        if asm is None:
            raise _Reject("unknown_assembly", f"assembly {ib.assembly} is not joined here")
        members = _body(asm.event, AssemblyBody)
        for what, d in (("issue", iss), ("area", area)):
            if not self._by_member(members, d.author):
                raise _Reject("bad_definition", f"the {what} is signed by a non-member key")
        if iss.id in self.issues:
            raise _Reject("already_known", f"issue {iss.id} is already adopted")
        if commit:
            if area.id not in self.areas:
                self.areas[area.id] = _Def(area, index)
            self._add_issue(index, iss, ev.ts)

    def _add_issue(self, index: int, iss: Event, ts: int) -> None:
        # The window starts at this leaf if its ts already reaches opens, else later (_pending).
        self.issues[iss.id] = _Def(iss, index)
        opens = _body(iss, IssueBody).opens
        if ts >= opens:
            self.window_start[iss.id] = index
        else:
            self._pending[iss.id] = opens

    # The rules of the hot types (enrol, delegate, ballot) take their body inline, not through
    # _body: they run once per leaf of every replay.
    def _rule_enrol(self, index: int, ev: Event, commit: bool) -> None:
        body = ev.body
        assert isinstance(body, EnrolBody)
        if body.key == self.key or (self.handovers and body.key in self.city_keys()):
            raise _Reject("city_key", "a key that is or was the city's cannot be enrolled")
        if body.key in self.enrolled:
            raise _Reject("already_enrolled", f"{body.key} is already enrolled here")
        if commit:
            # Built as drafts (protocol/_drafts.py): a city log is mostly enrolments and votes.
            e = new_draft(_EnrolmentDraft)
            e.ref, e.index, e.event_id = body.ref, index, ev.id
            e.__class__ = Enrolment
            self.enrolled[body.key] = e
            r = new_draft(_RollEntryDraft)
            r.index, r.kind, r.key, r.ref, r.ts = index, "enrol", body.key, body.ref, ev.ts
            r.__class__ = RollEntry
            self.roll.append(r)

    def _rule_unenrol(self, index: int, ev: Event, commit: bool) -> None:
        body = _body(ev, EnrolBody)
        if body.key not in self.enrolled:
            raise _Reject("unknown_citizen", f"{body.key} is not enrolled here")
        if commit:
            # An unenrolled key's delegations and ballots go with it; its chain stays, so a
            # re-enrolled citizen continues it.
            del self.enrolled[body.key]
            self.delegations.pop(body.key, None)
            for ballots in self.ballots.values():
                ballots.pop(body.key, None)
            self.roll.append(RollEntry(index, "unenrol", body.key, body.ref, ev.ts))

    def _rule_seal(self, index: int, ev: Event, commit: bool) -> None:
        issue_id = _body(ev, SealBody).issue
        if issue_id not in self.issues:
            raise _Reject("unknown_issue", f"issue {issue_id} is not adopted here")
        if issue_id in self.seals:
            raise _Reject("already_sealed", f"issue {issue_id} is already sealed here")
        if commit:
            self.seals[issue_id] = index
            self._pending.pop(issue_id, None)

    def _rule_attest(self, index: int, ev: Event, commit: bool) -> None:
        body = _body(ev, AttestBody)
        if body.record in self.attestations:
            raise _Reject("attest_repeated", f"record {body.record} is already attested here")
        if commit:
            self.attestations[body.record] = Attestation(body.issue, body.digest, index)

    def _rule_handover(self, index: int, ev: Event, commit: bool) -> None:
        new = _body(ev, HandoverBody).key
        if new in self.city_keys():
            what = "the key in effect" if new == self.city_key else "a retired key"
            raise _Reject("key_reused", f"a handover to {new}, {what} of {self.origin}")
        if new in self.chains or any(r.key == new for r in self.roll):
            raise _Reject("citizen_key", f"a handover to {new}, a citizen key of {self.origin}")
        if commit:
            self.handovers.append((index, new))
            self.city_key = new

    def _target(self, scope: str, target: str) -> None:
        if scope == "area":
            known: Mapping[str, _Def] = self.areas
        elif scope == "issue":
            known = self.issues
        else:
            known = self.assemblies
        if target not in known:
            raise _Reject("unknown_target", f"{scope} {target} is not known here")
        if scope == "issue" and target in self.seals:
            raise _Reject("issue_sealed", f"issue {target} is sealed here")

    def _rule_delegate(self, index: int, ev: Event, commit: bool) -> None:
        body = ev.body
        assert isinstance(body, DelegateBody)
        self._target(body.scope, body.target)
        if commit:
            self.delegations.setdefault(ev.author, {})[body.target] = (body.scope, body.trustees)

    def _rule_revoke(self, index: int, ev: Event, commit: bool) -> None:
        body = _body(ev, RevokeBody)
        self._target(body.scope, body.target)
        mine = self.delegations.get(ev.author, {})
        current = mine.get(body.target)
        if current is None or current[0] != body.scope:
            raise _Reject("no_delegation", f"no {body.scope} delegation for {body.target}")
        if commit:
            del mine[body.target]
            if not mine:
                del self.delegations[ev.author]

    def _open_issue(self, issue_id: str) -> IssueBody:
        d = self.issues.get(issue_id)
        if d is None:
            raise _Reject("unknown_issue", f"issue {issue_id} is not adopted here")
        if issue_id in self.seals:
            raise _Reject("issue_sealed", f"issue {issue_id} is sealed here")
        return _body(d.event, IssueBody)

    def _rule_ballot(self, index: int, ev: Event, commit: bool) -> None:
        body = ev.body
        assert isinstance(body, BallotBody)
        options = self._open_issue(body.issue).option_ids()
        for option in body.grades:
            if option not in options:
                raise _Reject("unknown_option", f"issue {body.issue} has no option {option!r}")
        if commit:
            self.ballots.setdefault(body.issue, {})[ev.author] = body.grades

    def _rule_withdraw(self, index: int, ev: Event, commit: bool) -> None:
        issue_id = _body(ev, WithdrawBody).issue
        self._open_issue(issue_id)
        ballots = self.ballots.get(issue_id, {})
        if ev.author not in ballots:
            raise _Reject("no_ballot", f"no ballot on {issue_id} to withdraw")
        if commit:
            del ballots[ev.author]

    # --- serialisation ---------------------------------------------------------------------

    def copy(self) -> State:
        """An independent copy (a snapshot: events are immutable and shared)."""
        new = State(self.origin, self.key, leaves=self.leaves)
        new.size = self.size
        new.city_key = self.city_key
        new.handovers = list(self.handovers)
        new.assemblies = dict(self.assemblies)
        new.areas = dict(self.areas)
        new.issues = dict(self.issues)
        new.window_start = dict(self.window_start)
        new.enrolled = dict(self.enrolled)
        new.roll = list(self.roll)
        new.chains = {a: _Chain(c.seq, c.id, list(c.at)) for a, c in self.chains.items()}
        new.delegations = {c: dict(d) for c, d in self.delegations.items()}
        new.ballots = {i: dict(b) for i, b in self.ballots.items()}
        new.seals = dict(self.seals)
        new.attestations = dict(self.attestations)
        new._pending = dict(self._pending)
        return new

    def to_dict(self) -> dict[str, Any]:
        """The state as a canonical-encodable JSON value (``from_dict`` reverses it)."""

        def defs(m: Mapping[str, _Def]) -> dict[str, Any]:
            return {i: {"event": d.event.to_dict(), "index": d.index} for i, d in m.items()}

        return {
            "v": 1,
            "origin": self.origin,
            "key": self.key,
            "handovers": [{"index": i, "key": k} for i, k in self.handovers],
            "size": self.size,
            "assemblies": defs(self.assemblies),
            "areas": defs(self.areas),
            "issues": defs(self.issues),
            "window_start": dict(self.window_start),
            "enrolled": {
                k: {"ref": e.ref, "index": e.index, "event_id": e.event_id}
                for k, e in self.enrolled.items()
            },
            "roll": [r.to_dict() for r in self.roll],
            "chains": {
                a: {"seq": c.seq, "id": c.id, "at": list(c.at)} for a, c in self.chains.items()
            },
            "delegations": {
                c: {t: {"scope": s, "trustees": list(tr)} for t, (s, tr) in d.items()}
                for c, d in self.delegations.items()
            },
            "ballots": {
                i: {c: dict(g) for c, g in b.items()} for i, b in self.ballots.items() if b
            },
            "seals": dict(self.seals),
            "attestations": {
                r: {"issue": a.issue, "digest": a.digest, "index": a.index}
                for r, a in self.attestations.items()
            },
        }

    @classmethod
    def from_dict(cls, d: Any, *, leaves: Leaves | None = None) -> State:
        """Rebuild a state from :meth:`to_dict`; raise :class:`ValidationError` naming the field."""
        d = _obj(d, "state", _STATE_KEYS)
        if d["v"] != 1 or type(d["v"]) is not int:
            raise ValidationError("state.v: must be 1")
        s = cls(_str(d["origin"], "state.origin"), _key(d["key"], "state.key"), leaves=leaves)
        s.size = _int(d["size"], "state.size")
        handovers = d["handovers"]
        if type(handovers) is not list:
            raise ValidationError("state.handovers: must be an array")
        for n, raw in enumerate(handovers):
            w = f"state.handovers[{n}]"
            h = _obj(raw, w, frozenset({"index", "key"}))
            index, key = _int(h["index"], f"{w}.index"), _key(h["key"], f"{w}.key")
            if index >= s.size or (s.handovers and index <= s.handovers[-1][0]):
                raise ValidationError(f"{w}.index: must grow and lie below state.size")
            if key in s.city_keys():
                raise ValidationError(f"{w}.key: a key this city already used")
            s.handovers.append((index, key))
            s.city_key = key

        def defs(m: Any, where: str, type_: str) -> dict[str, _Def]:
            out = {}
            for i, raw in _map(m, where).items():
                v = _obj(raw, f"{where}.{i}", frozenset({"event", "index"}))
                ev = Event.from_dict(v["event"], f"{where}.{i}.event")
                if ev.type != type_ or ev.id != i:
                    raise ValidationError(f"{where}.{i}: not the {type_} event with that id")
                out[i] = _Def(ev, _int(v["index"], f"{where}.{i}.index"))
            return out

        s.assemblies = defs(d["assemblies"], "state.assemblies", "assembly")
        s.areas = defs(d["areas"], "state.areas", "area")
        s.issues = defs(d["issues"], "state.issues", "issue")
        s.window_start = {
            _hex(i, "state.window_start"): _int(v, f"state.window_start.{i}")
            for i, v in _map(d["window_start"], "state.window_start").items()
        }
        for k, raw in _map(d["enrolled"], "state.enrolled").items():
            w = f"state.enrolled.{k}"
            v = _obj(raw, w, frozenset({"ref", "index", "event_id"}))
            s.enrolled[_key(k, w)] = Enrolment(
                _str(v["ref"], f"{w}.ref"),
                _int(v["index"], f"{w}.index"),
                _hex(v["event_id"], f"{w}.event_id"),
            )
        roll = d["roll"]
        if type(roll) is not list:
            raise ValidationError("state.roll: must be an array")
        for n, raw in enumerate(roll):
            w = f"state.roll[{n}]"
            r = _obj(raw, w, frozenset({"index", "kind", "key", "ref", "ts"}))
            if r["kind"] not in ("enrol", "unenrol"):
                raise ValidationError(f"{w}.kind: must be enrol or unenrol")
            s.roll.append(
                RollEntry(
                    _int(r["index"], f"{w}.index"),
                    r["kind"],
                    _key(r["key"], f"{w}.key"),
                    _str(r["ref"], f"{w}.ref"),
                    _int(r["ts"], f"{w}.ts"),
                )
            )
        for author, raw in _map(d["chains"], "state.chains").items():
            w = f"state.chains.{author}"
            ch = _obj(raw, w, frozenset({"seq", "id", "at"}))
            at = ch["at"]
            if type(at) is not list or len(at) != _int(ch["seq"], f"{w}.seq"):
                raise ValidationError(f"{w}.at: must list one leaf index per seq")
            s.chains[_key(author, w)] = _Chain(
                ch["seq"], _hex(ch["id"], f"{w}.id"), [_int(i, f"{w}.at") for i in at]
            )
        for c, m in _map(d["delegations"], "state.delegations").items():
            w = f"state.delegations.{c}"
            rows: dict[str, tuple[str, tuple[str, ...]]] = {}
            for t, raw in _map(m, w).items():
                row = _obj(raw, f"{w}.{t}", frozenset({"scope", "trustees"}))
                body = DelegateBody.from_dict({"target": t, **row}, f"{w}.{t}")
                rows[t] = (body.scope, body.trustees)
            s.delegations[_key(c, w)] = rows
        for i, m in _map(d["ballots"], "state.ballots").items():
            w = f"state.ballots.{i}"
            s.ballots[_hex(i, w)] = {
                _key(c, f"{w}.{c}"): BallotBody.from_dict({"issue": i, "grades": g}, w).grades
                for c, g in _map(m, w).items()
            }
        s.seals = {
            _hex(i, "state.seals"): _int(v, f"state.seals.{i}")
            for i, v in _map(d["seals"], "state.seals").items()
        }
        for rec, raw in _map(d["attestations"], "state.attestations").items():
            w = f"state.attestations.{rec}"
            a = _obj(raw, w, frozenset({"issue", "digest", "index"}))
            s.attestations[_hex(rec, w)] = Attestation(
                _hex(a["issue"], f"{w}.issue"),
                _hex(a["digest"], f"{w}.digest"),
                _int(a["index"], f"{w}.index"),
            )
        s._pending = {
            i: _body(iss.event, IssueBody).opens
            for i, iss in s.issues.items()
            if i not in s.window_start and i not in s.seals
        }
        return s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and other.to_dict() == self.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"State(origin={self.origin!r}, size={self.size})"


_STATE_KEYS: Final = frozenset(
    {
        "v",
        "origin",
        "key",
        "handovers",
        "size",
        "assemblies",
        "areas",
        "issues",
        "window_start",
        "enrolled",
        "roll",
        "chains",
        "delegations",
        "ballots",
        "seals",
        "attestations",
    }
)
_CHAIN_REASONS: Final = frozenset(
    {"chain_gap", "chain_prev", "duplicate_event", "equivocation", "seq_reused"}
)
_RULES: Final[dict[str, Callable[[State, int, Event, bool], None]]] = {
    "assembly": State._rule_assembly,
    "assembly.join": State._rule_join,
    "area": State._rule_area,
    "issue": State._rule_issue,
    "issue.adopt": State._rule_adopt,
    "enrol": State._rule_enrol,
    "unenrol": State._rule_unenrol,
    "seal": State._rule_seal,
    "attest": State._rule_attest,
    "handover": State._rule_handover,
    "delegate": State._rule_delegate,
    "revoke": State._rule_revoke,
    "ballot": State._rule_ballot,
    "withdraw": State._rule_withdraw,
}
assert _RULES.keys() == EVENT_TYPES


_T = TypeVar("_T")


def _body(ev: Event, cls: type[_T]) -> _T:
    body = ev.body
    assert isinstance(body, cls)
    return body


def _check_definition(d: Event, what: str) -> None:
    try:
        d.verify()
    except BadSignatureError:
        raise _Reject("bad_definition", f"the carried {what} {d.id} is badly signed") from None


# --- small validators for from_dict --------------------------------------------------------


def _obj(d: Any, where: str, keys: frozenset[str]) -> dict[str, Any]:
    if type(d) is not dict:
        raise ValidationError(f"{where}: must be an object")
    if d.keys() != keys:
        extra = sorted(d.keys() - keys)
        what = f"unknown field {extra[0]!r}" if extra else f"missing {sorted(keys - d.keys())[0]!r}"
        raise ValidationError(f"{where}: {what}")
    return d


def _map(d: Any, where: str) -> dict[str, Any]:
    if type(d) is not dict:
        raise ValidationError(f"{where}: must be an object")
    return d


def _int(v: Any, where: str) -> int:
    if type(v) is not int or not 0 <= v <= MAX_INT:
        raise ValidationError(f"{where}: must be a non-negative integer")
    return v


def _str(v: Any, where: str) -> str:
    if type(v) is not str or not v:
        raise ValidationError(f"{where}: must be a non-empty string")
    return v


def _hex(v: Any, where: str) -> str:
    if type(v) is not str or len(v) != 64 or v.strip("0123456789abcdef"):
        raise ValidationError(f"{where}: must be a lower-case hex id")
    return v


def _key(v: Any, where: str) -> str:
    parse_key(v, where)
    return str(v)


# --- whole-log replay -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replay:
    """The result of :func:`replay`: the final state, every finding, and seal snapshots."""

    state: State
    findings: tuple[Finding, ...]
    at_seal: Mapping[str, State]
    """For each requested issue this log sealed: the state right after the seal leaf."""


def replay(
    origin: str, key: str, leaves: Sequence[bytes], *, snapshot: Iterable[str] = ()
) -> Replay:
    """Replay a whole log from its first leaf; return the :class:`Replay`.

    ``snapshot`` names issues whose state as of this city's seal should be kept (the input of
    :func:`tally_input`). Raises only :class:`ValidationError` for a malformed ``key``.
    """
    state = State(origin, key, leaves=leaves.__getitem__)
    wanted = set(snapshot)
    findings: list[Finding] = []
    at_seal: dict[str, State] = {}
    for i, leaf in enumerate(leaves):
        findings += state.apply(i, leaf)
        if wanted:
            for issue_id in [w for w in wanted if state.seals.get(w) == i]:
                at_seal[issue_id] = state.copy()
                wanted.discard(issue_id)
    return Replay(state, tuple(findings), at_seal)


# --- tally input ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TallyInputBuild:
    """An issue's ``TallyInput`` and the findings met while building it.

    ``prepared`` is the engine's input, built from states whose events the replay rules already
    validated (equal to ``TallyInput.from_dict(input)``, which the tests check): nothing is
    encoded or checked again. ``input`` is the JSON document of docs/TALLY.md, made on demand.
    """

    prepared: TallyInput
    findings: tuple[Finding, ...]

    @property
    def input(self) -> dict[str, Any]:
        """The ``TallyInput`` document: delegation rows sorted by truster, then scope."""
        p = self.prepared
        rows = [
            {"truster": truster, "scope": scope, "trustees": list(trustees)}
            for scope in _SCOPES
            for truster, trustees in p.delegations[scope].items()
        ]
        rows.sort(key=_truster_then_scope)
        return {
            "version": p.version,
            "voters": dict(p.voters),
            "options": list(p.options),
            "delegations": rows,
            "ballots": {k: dict(g) for k, g in p.ballots.items()},
            "policy": p.policy.to_dict(),
        }


def tally_input(issue_id: str, parts: Mapping[str, State]) -> TallyInputBuild:
    """Build the ``TallyInput`` (docs/TALLY.md) of an issue from its record's states.

    ``parts`` maps every member city's origin to its state as of its part of the record: right
    after its seal of the issue, or, for a city that did not seal in time, as of the checkpoint
    that stands in for its seal (docs/PROTOCOL.md, "record").

    The electorate is every key enrolled in those states, with weight 1, except a key enrolled by
    two member cities, which is left out and reported (``enrolled_twice``). Delegation rows are
    each voter's rows for the issue's assembly, its area and the issue itself; ballots are the
    voters' latest ballots; options and policy come from the issue's definition.

    Raises :class:`TallyInputError` when no part holds the issue, when ``parts`` is not exactly
    the assembly's member cities, when a state's origin or key differ from the pins, or when a
    sealed part is not exactly at its seal.
    """
    holder = next((s for s in parts.values() if issue_id in s.issues), None)
    if holder is None:
        raise TallyInputError(f"no state in the record holds issue {issue_id}")
    issue = holder.issue(issue_id)
    assert issue is not None
    assembly = holder.assembly(issue.assembly)
    assert assembly is not None  # adoption requires the joined assembly
    pins = {m.origin: m.key for m in assembly.members}
    if set(parts) != set(pins):
        missing = sorted(set(pins) - set(parts))
        extra = sorted(set(parts) - set(pins))
        raise TallyInputError(
            f"record parts must be the member cities: missing {missing}, not members {extra}"
        )
    for origin, s in parts.items():
        if s.origin != origin or s.key != pins[origin]:
            raise TallyInputError(f"state for {origin} is of {s.origin} with another key")
        seal = s.seals.get(issue_id)
        if seal is not None and s.size != seal + 1:
            raise TallyInputError(
                f"state for {origin} holds {s.size} leaves; its seal is leaf {seal}"
            )
    origins = sorted(parts)
    states = [parts[o] for o in origins]
    findings: list[Finding] = []
    if len(states) == 1:
        voter_ids = sorted(states[0].enrolled)
    else:
        counts = Counter(itertools.chain.from_iterable(s.enrolled for s in states))
        for k in [k for k, n in counts.items() if n > 1]:
            by = [(o, s) for o, s in zip(origins, states, strict=True) if k in s.enrolled]
            for origin, s in by:
                e = s.enrolled[k]
                findings.append(
                    Finding(
                        origin,
                        e.index,
                        e.event_id,
                        "enrolled_twice",
                        f"{k} is enrolled by {', '.join(o for o, _ in by)}: excluded from the "
                        "electorate",
                    )
                )
        voter_ids = sorted(k for k, n in counts.items() if n == 1)
    if len(voter_ids) > MAX_VOTERS:  # the one bound of TallyInput that replay cannot reach
        raise TallyInputError(f"voters: {len(voter_ids)} voters (at most {MAX_VOTERS})")
    voters = dict.fromkeys(voter_ids, 1)
    targets = (("assembly", issue.assembly), ("area", issue.area), ("issue", issue_id))
    rows: dict[str, dict[str, tuple[str, ...]]] = {scope: {} for scope in _SCOPES}
    ballots: dict[str, Mapping[str, int]] = {}
    # The states' own tables are walked (row and ballot order carries no meaning in a
    # TallyInput; the document sorts its rows): citizens who neither delegate nor vote cost
    # nothing, and the tables are read in the order replay filled them. Grades are shared with
    # the events, as state copies share them: events are immutable.
    for s in states:  # a later origin's row or ballot replaces an earlier one's
        for k, mine in s.delegations.items():
            if k in voters:
                for scope, target in targets:
                    row = mine.get(target)
                    if row is not None and row[0] == scope:
                        rows[scope][k] = row[1]
        ballots.update(
            (k, grades) for k, grades in s.ballots.get(issue_id, {}).items() if k in voters
        )
    prepared = TallyInput(
        voters=voters,
        options=tuple(issue.option_ids()),
        delegations=rows,
        ballots=ballots,
        policy=TallyPolicy.from_dict(issue.policy.to_dict()),
    )
    return TallyInputBuild(prepared, tuple(findings))


_SCOPE_ORDER: Final = {"assembly": 0, "area": 1, "issue": 2}
_SCOPES: Final = tuple(_SCOPE_ORDER)


def _truster_then_scope(row: Mapping[str, Any]) -> tuple[str, int]:
    return row["truster"], _SCOPE_ORDER[row["scope"]]
