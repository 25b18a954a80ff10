"""Replay: a table covering every finding reason (and check() agreeing with it), the effects of
each event type, incremental replay equal to full replay, and TallyInput documents the tally
engine accepts."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import LiquideError, SecretKey
from protocol import encoding
from protocol.errors import ProtocolError, TallyInputError, ValidationError
from protocol.events import MAX_EVENT_BYTES, MAX_TRUSTEES, Event
from protocol.state import REASONS, Finding, State, replay, tally_input
from protocol.tally import TallyInput, tally

from ._events_factory import T0, Author, assembly_body, issue_body, key, pk

A = "a.example/liquide"
B = "b.example/liquide"
C = "c.example/liquide"
H9 = "9" * 64


def raw_leaf(sk: SecretKey, unsigned: dict[str, Any]) -> bytes:
    """A signed leaf built without Event's validation (to forge invalid events)."""
    msg = encoding.encode(unsigned)
    sig = sk.sign(unsigned["type"], msg)
    return encoding.encode({**unsigned, "sig": base64.b64encode(sig).decode()})


def unsigned(author: Author, type_: str, body: Any, seq: int | None = None) -> dict[str, Any]:
    seq = author.seq + 1 if seq is None else seq
    return {"v": 1, "type": type_, "author": author.pk, "seq": seq,
            "prev": author.prev if seq > 1 else None, "ts": author.ts, "body": body}  # fmt: skip


class World:
    """Two member cities A and B of one assembly, and a non-member C.

    A's log: assembly, area, issue, enrol alice, enrol bob.
    B's log: join, adopt (issue + area), enrol carol.
    """

    def __init__(self) -> None:
        self.a = Author(key("city-a"))
        self.b = Author(key("city-b"))
        self.c = Author(key("city-c"))
        self.alice = Author(key("alice"))
        self.bob = Author(key("bob"))
        self.carol = Author(key("carol"))
        self.mallory = Author(key("mallory"))
        self.a2 = Author(key("city-a-2"))  # A's key after a handover
        self.asm = self.a.sign("assembly", assembly_body([(A, self.a.pk), (B, self.b.pk)]))
        self.area = self.a.sign("area", {"assembly": self.asm.id, "name": "Mobilité"})
        self.issue = self.a.sign("issue", issue_body(self.asm.id, self.area.id, opens=T0 + 100))
        self.a.sign("enrol", {"key": self.alice.pk, "ref": "r-alice"})
        self.a.sign("enrol", {"key": self.bob.pk, "ref": "r-bob"})
        self.b.sign("assembly.join", {"assembly": self.asm.to_dict()})
        self.b.sign("issue.adopt", {"issue": self.issue.to_dict(), "area": self.area.to_dict()})
        self.b.sign("enrol", {"key": self.carol.pk, "ref": "r-carol"})
        self._base = {
            "a": [ev.leaf for ev in self.a.events],
            "b": [ev.leaf for ev in self.b.events],
        }

    def base(self, city: str) -> list[bytes]:
        return list(self._base[city])

    def city(self, city: str) -> tuple[str, str]:
        return (A, self.a.pk) if city == "a" else (B, self.b.pk)

    def ballot(self, who: Author, grades: dict[str, int] | None = None, **kw: Any) -> bytes:
        return who.sign("ballot", {"issue": self.issue.id, "grades": grades or {"a": 1}}, **kw).leaf


Case = Callable[[World], tuple[str, list[bytes]]]


def _flip_sig(leaf: bytes) -> bytes:
    d = encoding.decode(leaf)
    sig = bytearray(base64.b64decode(d["sig"]))
    sig[3] ^= 1
    return encoding.encode({**d, "sig": base64.b64encode(bytes(sig)).decode()})


def _equivocate(w: World) -> list[bytes]:
    first = w.ballot(w.alice, {"a": 1})
    second = w.alice.sign(
        "ballot", {"issue": w.issue.id, "grades": {"b": 1}}, seq=1, prev=None, advance=False
    )
    return [first, second.leaf]


def _other_assembly(w: World, members: list[tuple[str, str]]) -> Event:
    return w.c.sign("assembly", assembly_body(members, name="Autre"))


CASES: dict[str, Case] = {
    "non_canonical": lambda w: ("a", [w.ballot(w.alice).replace(b'"v":1}', b'"v": 1}')]),
    "invalid": lambda w: ("a", [raw_leaf(w.alice.sk, unsigned(w.alice, "withdraw", {"issue": 5}))]),
    "unknown_type": lambda w: ("a", [raw_leaf(w.alice.sk, unsigned(w.alice, "vote", {}))]),
    "too_large": lambda w: ("a", [b"{" + b" " * MAX_EVENT_BYTES + b"}"]),
    "trustees_too_long": lambda w: ("a", [raw_leaf(w.alice.sk, unsigned(w.alice, "delegate", {
        "scope": "assembly", "target": w.asm.id,
        "trustees": [pk(f"t{i}") for i in range(MAX_TRUSTEES + 1)]}))]),
    "duplicate_trustee": lambda w: ("a", [raw_leaf(w.alice.sk, unsigned(w.alice, "delegate", {
        "scope": "assembly", "target": w.asm.id, "trustees": [w.bob.pk, w.bob.pk]}))]),
    "self_delegation": lambda w: ("a", [raw_leaf(w.alice.sk, unsigned(w.alice, "delegate", {
        "scope": "assembly", "target": w.asm.id, "trustees": [w.alice.pk]}))]),
    "bad_signature": lambda w: ("a", [_flip_sig(w.ballot(w.alice))]),
    "not_city": lambda w: ("a", [w.alice.sign("enrol", {"key": w.mallory.pk, "ref": "x"}).leaf]),
    "not_enrolled": lambda w: ("a", [w.ballot(w.mallory)]),
    "chain_gap": lambda w: ("a", [w.ballot(w.alice, seq=2, prev=H9)]),
    "chain_prev": lambda w: ("a", [w.ballot(w.alice), w.ballot(w.alice, prev=H9)]),
    "duplicate_event": lambda w: ("a", [w.ballot(w.alice), w.ballot(w.alice)[:0] + w.alice.events[0].leaf]),
    "equivocation": lambda w: ("a", _equivocate(w)),
    "seq_reused": lambda w: ("a-nolookup", [w.ballot(w.alice), w.ballot(w.alice, {"b": 2}), w.alice.events[0].leaf]),
    "bad_definition": lambda w: ("b", [w.b.sign("assembly.join", {"assembly": _other_assembly(w, [(B, w.b.pk)]).to_dict()}).leaf]),
    "not_member": lambda w: ("a", [w.a.sign("assembly.join", {"assembly": _other_assembly(w, [(C, w.c.pk), (B, w.b.pk)]).to_dict()}).leaf]),
    "already_known": lambda w: ("b", [w.b.sign("assembly.join", {"assembly": w.asm.to_dict()}).leaf]),
    "unknown_assembly": lambda w: ("a", [w.a.sign("area", {"assembly": H9, "name": "X"}).leaf]),
    "unknown_area": lambda w: ("a", [w.a.sign("issue", issue_body(w.asm.id, H9)).leaf]),
    "area_mismatch": lambda w: ("a", [
        (asm2 := w.a.sign("assembly", assembly_body([(A, w.a.pk)], name="Deux"))).leaf,
        w.a.sign("issue", issue_body(asm2.id, w.area.id)).leaf]),
    "city_key": lambda w: ("a", [w.a.sign("enrol", {"key": w.a.pk, "ref": "self"}).leaf]),
    "already_enrolled": lambda w: ("a", [w.a.sign("enrol", {"key": w.alice.pk, "ref": "again"}).leaf]),
    "unknown_citizen": lambda w: ("a", [w.a.sign("unenrol", {"key": w.mallory.pk, "ref": "x"}).leaf]),
    "unknown_issue": lambda w: ("a", [w.alice.sign("ballot", {"issue": H9, "grades": {}}).leaf]),
    "already_sealed": lambda w: ("a", [w.a.sign("seal", {"issue": w.issue.id}).leaf, w.a.sign("seal", {"issue": w.issue.id}).leaf]),
    "issue_sealed": lambda w: ("a", [w.a.sign("seal", {"issue": w.issue.id}).leaf, w.ballot(w.alice)]),
    "unknown_option": lambda w: ("a", [w.ballot(w.alice, {"a": 1, "zz": 2})]),
    "unknown_target": lambda w: ("a", [w.alice.sign("delegate", {"scope": "area", "target": w.asm.id, "trustees": []}).leaf]),
    "no_delegation": lambda w: ("a", [w.alice.sign("revoke", {"scope": "area", "target": w.area.id}).leaf]),
    "no_ballot": lambda w: ("a", [w.alice.sign("withdraw", {"issue": w.issue.id}).leaf]),
    "retired_key": lambda w: ("a", [w.a.sign("handover", {"key": w.a2.pk}).leaf, w.a.sign("seal", {"issue": w.issue.id}).leaf]),
    "key_reused": lambda w: ("a", [w.a.sign("handover", {"key": w.a.pk}).leaf]),
    "citizen_key": lambda w: ("a", [w.a.sign("handover", {"key": w.alice.pk}).leaf]),
    "attest_repeated": lambda w: ("a", [w.a.sign("attest", {"record": H9, "digest": H9, "issue": H9}).leaf] * 1 + [w.a.sign("attest", {"record": H9, "digest": "8" * 64, "issue": H9}).leaf]),
}  # fmt: skip

# More ways to reach some reasons (each row: reason, case).
EXTRA_CASES: list[tuple[str, Case]] = [
    ("duplicate_event", lambda w: ("a", [w.ballot(w.alice), w.ballot(w.alice, {"b": 1}), w.alice.events[0].leaf])),
    ("seq_reused", lambda w: ("a-nolookup", [*_equivocate(w)[:1], w.alice.sign("ballot", {"issue": w.issue.id, "grades": {}}, seq=1, prev=None, advance=False).leaf])),
    ("bad_definition", lambda w: ("b", [w.b.sign("issue.adopt", {"issue": w.c.sign("issue", issue_body(w.asm.id, w.area.id)).to_dict(), "area": w.area.to_dict()}).leaf])),
    ("bad_definition", lambda w: ("b", [w.b.sign("issue.adopt", {"issue": w.issue.to_dict(), "area": Event.from_dict({**w.area.to_dict(), "ts": 1}).to_dict()}).leaf])),
    ("bad_definition", lambda w: ("b", [w.b.sign("issue.adopt", {"issue": Event.from_dict({**w.issue.to_dict(), "ts": 1}).to_dict(), "area": w.area.to_dict()}).leaf])),
    ("area_mismatch", lambda w: ("b", [w.b.sign("issue.adopt", {"issue": w.issue.to_dict(), "area": w.a.sign("area", {"assembly": w.asm.id, "name": "Autre"}).to_dict()}).leaf])),
    ("unknown_assembly", lambda w: ("b", [w.b.sign("issue.adopt", {
        "issue": (w.c.sign("issue", issue_body(H9, (a2 := w.c.sign("area", {"assembly": H9, "name": "Z"})).id))).to_dict(),
        "area": a2.to_dict()}).leaf])),
    ("unknown_assembly", lambda w: ("a", [w.a.sign("issue", issue_body(H9, w.area.id)).leaf])),
    ("already_known", lambda w: ("b", [w.b.sign("issue.adopt", {"issue": w.issue.to_dict(), "area": w.area.to_dict()}).leaf])),
    ("already_known", lambda w: ("a", [w.a.sign("issue.adopt", {"issue": w.issue.to_dict(), "area": w.area.to_dict()}).leaf])),
    ("not_member", lambda w: ("a", [w.a.sign("assembly", assembly_body([(B, w.b.pk)])).leaf])),
    ("not_member", lambda w: ("a", [w.a.sign("assembly", assembly_body([(A, w.b.pk), (B, w.a.pk)])).leaf])),
    ("unknown_issue", lambda w: ("a", [w.a.sign("seal", {"issue": H9}).leaf])),
    ("unknown_issue", lambda w: ("a", [w.alice.sign("withdraw", {"issue": H9}).leaf])),
    ("issue_sealed", lambda w: ("a", [w.a.sign("seal", {"issue": w.issue.id}).leaf, w.alice.sign("delegate", {"scope": "issue", "target": w.issue.id, "trustees": []}).leaf])),
    ("issue_sealed", lambda w: ("a", [w.ballot(w.alice), w.a.sign("seal", {"issue": w.issue.id}).leaf, w.alice.sign("withdraw", {"issue": w.issue.id}).leaf])),
    ("unknown_target", lambda w: ("a", [w.alice.sign("revoke", {"scope": "issue", "target": H9}).leaf])),
    ("no_delegation", lambda w: ("a", [w.alice.sign("delegate", {"scope": "assembly", "target": w.asm.id, "trustees": []}).leaf,
                                       w.alice.sign("revoke", {"scope": "assembly", "target": w.asm.id}).leaf,
                                       w.alice.sign("revoke", {"scope": "assembly", "target": w.asm.id}).leaf])),
    ("not_enrolled", lambda w: ("a", [w.a.sign("unenrol", {"key": w.alice.pk, "ref": "left"}).leaf, w.ballot(w.alice)])),
    ("not_enrolled", lambda w: ("b", [w.ballot(w.alice)])),  # a citizen of A voting in B's log
    ("not_city", lambda w: ("b", [w.a.sign("seal", {"issue": w.issue.id}).leaf])),
    ("not_city", lambda w: ("a", [w.a.sign("handover", {"key": w.a2.pk}).leaf, w.mallory.sign("seal", {"issue": w.issue.id}).leaf])),
    ("retired_key", lambda w: ("a", [w.a.sign("handover", {"key": w.a2.pk}).leaf, w.a.sign("handover", {"key": w.mallory.pk}).leaf])),
    ("key_reused", lambda w: ("a", [w.a.sign("handover", {"key": w.a2.pk}).leaf, w.a2.sign("handover", {"key": w.a.pk}).leaf])),
    # a key that signed citizen events here stays refused after its unenrolment (its chain stays)
    ("citizen_key", lambda w: ("a", [w.ballot(w.alice), w.a.sign("unenrol", {"key": w.alice.pk, "ref": "left"}).leaf, w.a.sign("handover", {"key": w.alice.pk}).leaf])),
    ("city_key", lambda w: ("a", [w.a.sign("handover", {"key": w.a2.pk}).leaf, w.a2.sign("enrol", {"key": w.a.pk, "ref": "old"}).leaf])),
    ("city_key", lambda w: ("a", [w.a.sign("handover", {"key": w.a2.pk}).leaf, w.a2.sign("enrol", {"key": w.a2.pk, "ref": "new"}).leaf])),
]  # fmt: skip

STEP5 = {
    "bad_definition", "not_member", "already_known", "unknown_assembly", "unknown_area",
    "area_mismatch", "city_key", "already_enrolled", "unknown_citizen", "unknown_issue",
    "already_sealed", "issue_sealed", "unknown_option", "unknown_target", "no_delegation",
    "no_ballot", "attest_repeated", "key_reused", "citizen_key",
}  # fmt: skip
# check() compares only with the head; with a lookup, replay refines seq_reused.
CHECK_CODE: dict[str, str] = {}


@pytest.mark.parametrize(("reason", "case"), [*CASES.items(), *EXTRA_CASES])
def test_finding_reason(reason: str, case: Case) -> None:
    w = World()
    city, extra = case(w)
    lookup = not city.endswith("-nolookup")
    city = city.removesuffix("-nolookup")
    log = w.base(city) + extra
    origin, city_key = w.city(city)
    state = State(origin, city_key, leaves=log.__getitem__ if lookup else None)
    for i, leaf in enumerate(log[:-1]):
        assert state.apply(i, leaf) == [], i
    before = state.to_dict()
    last = log[-1]
    try:
        ev: Event | None = Event.decode(last)
    except ProtocolError as exc:
        ev = None
        code = exc.code
    if ev is None:
        assert code == reason
    else:
        with pytest.raises(LiquideError) as exc_info:
            state.check(ev)
        assert exc_info.value.code == CHECK_CODE.get(reason, reason)
        head = state.head(ev.author)
        if reason.startswith(("chain_", "duplicate_", "equivocation", "seq_")) and head:
            assert head.id in exc_info.value.message  # so that a wallet can resynchronise
        assert state.to_dict() == before  # check() changes nothing
    findings = state.apply(len(log) - 1, last)
    assert [f.reason for f in findings] == [reason], findings
    f = findings[0]
    assert (f.origin, f.index) == (origin, len(log) - 1)
    assert f.event_id == (None if ev is None else ev.id)
    assert f.message
    assert Finding.from_dict(encoding.decode(encoding.encode(f.to_dict()))) == f
    after = state.to_dict()
    assert after.pop("size") == before.pop("size") + 1
    if reason in STEP5:
        # the author's chain advances (they signed it there); nothing else changes
        assert ev is not None
        assert after["chains"][ev.author]["id"] == ev.id
        after.pop("chains")
        before.pop("chains")
    assert after == before
    if reason == "equivocation":
        assert f.proof is not None
        f.proof.verify()
    else:
        assert f.proof is None


def test_table_covers_every_reason() -> None:
    covered = set(CASES) | {r for r, _ in EXTRA_CASES} | {"enrolled_twice"}  # see the tally tests
    assert covered == set(REASONS)


# --- effects ---------------------------------------------------------------------------------


def state_of(w: World, city: str, extra: list[bytes] = ()) -> State:  # type: ignore[assignment]
    origin, city_key = w.city(city)
    log = w.base(city) + list(extra)
    # check() accepts each of these valid events just before replay applies it
    probe = State(origin, city_key)
    for i, leaf in enumerate(log):
        probe.check(Event.decode(leaf))
        assert probe.apply(i, leaf) == []
    r = replay(origin, city_key, log)
    assert r.findings == (), r.findings
    return r.state


def test_definitions_and_roll() -> None:
    w = World()
    a = state_of(w, "a")
    assert a.assembly(w.asm.id).members[1].origin == B
    assert a.issue(w.issue.id).option_ids() == ("a", "b")
    assert a.assembly(H9) is None
    assert a.issue(H9) is None
    assert a.enrolled[w.alice.pk].ref == "r-alice"
    assert a.enrolled[w.alice.pk].index == 3
    assert a.head(w.a.pk).seq == 5
    assert a.head(w.alice.pk) is None
    b = state_of(w, "b")
    assert set(b.areas) == {w.area.id}
    assert set(b.issues) == {w.issue.id}
    assert b.issues[w.issue.id].index == 1


def test_second_issue_of_a_known_area_is_adopted() -> None:
    w = World()
    second = w.a.sign("issue", issue_body(w.asm.id, w.area.id, options=("x",)))
    b = state_of(
        w,
        "b",
        [w.b.sign("issue.adopt", {"issue": second.to_dict(), "area": w.area.to_dict()}).leaf],
    )
    assert set(b.issues) == {w.issue.id, second.id}
    assert b.areas[w.area.id].index == 1  # still where the area first became known


def test_delegations_revoke_ballots_withdraw() -> None:
    w = World()
    extra = [
        w.alice.sign("delegate", {"scope": "assembly", "target": w.asm.id, "trustees": [w.bob.pk]}).leaf,
        w.alice.sign("delegate", {"scope": "area", "target": w.area.id, "trustees": [w.carol.pk, w.bob.pk]}).leaf,
        w.alice.sign("delegate", {"scope": "area", "target": w.area.id, "trustees": []}).leaf,
        w.bob.sign("ballot", {"issue": w.issue.id, "grades": {"a": 1}}).leaf,
        w.bob.sign("ballot", {"issue": w.issue.id, "grades": {"b": -3}}).leaf,
        w.alice.sign("revoke", {"scope": "area", "target": w.area.id}).leaf,
        w.alice.sign("ballot", {"issue": w.issue.id, "grades": {}}).leaf,
        w.alice.sign("withdraw", {"issue": w.issue.id}).leaf,
    ]  # fmt: skip
    s = state_of(w, "a", extra)
    assert s.delegation(w.alice.pk, w.asm.id) == ("assembly", (w.bob.pk,))
    assert s.delegation(w.alice.pk, w.area.id) is None
    assert s.ballot(w.issue.id, w.bob.pk) == {"b": -3}
    assert s.ballot(w.issue.id, w.alice.pk) is None
    assert s.head(w.alice.pk).seq == 6


def test_unenrol_drops_delegations_and_ballots_and_reenrol_continues_chain() -> None:
    w = World()
    extra = [
        w.alice.sign("delegate", {"scope": "assembly", "target": w.asm.id, "trustees": [w.bob.pk]}).leaf,
        w.ballot(w.alice),
        w.a.sign("unenrol", {"key": w.alice.pk, "ref": "moved"}).leaf,
        w.a.sign("enrol", {"key": w.alice.pk, "ref": "back"}).leaf,
        w.ballot(w.alice, {"b": 1}),
    ]  # fmt: skip
    s = state_of(w, "a", extra)
    assert s.delegation(w.alice.pk, w.asm.id) is None
    assert s.ballot(w.issue.id, w.alice.pk) == {"b": 1}
    assert s.head(w.alice.pk).seq == 3
    assert [(r.kind, r.ref) for r in s.roll][-2:] == [("unenrol", "moved"), ("enrol", "back")]


def test_enrolment_changes_inside_the_window() -> None:
    w = World()  # the issue opens at T0 + 100; everything so far has ts T0
    s0 = state_of(w, "a")
    assert s0.enrolment_changes(w.issue.id) == []
    w.a.ts = T0 + 50
    before_open = w.a.sign("enrol", {"key": w.mallory.pk, "ref": "early"}).leaf
    w.alice.ts = T0 + 100
    opening = w.ballot(w.alice)  # first leaf claiming the window is open: the window starts here
    w.a.ts = T0 + 10  # backdated, but after the window started by log position
    purge = w.a.sign("unenrol", {"key": w.bob.pk, "ref": "purge"}).leaf
    seal = w.a.sign("seal", {"issue": w.issue.id}).leaf
    after = w.a.sign("enrol", {"key": w.bob.pk, "ref": "late"}).leaf
    s = state_of(w, "a", [before_open, opening, purge, seal, after])
    assert s.window_start[w.issue.id] == 6
    changes = s.enrolment_changes(w.issue.id)
    assert [(c.kind, c.key, c.index, c.ts) for c in changes] == [("unenrol", w.bob.pk, 7, T0 + 10)]
    assert changes[0].to_dict()["ref"] == "purge"
    # an issue defined (or adopted) once already open starts its window at that very leaf
    w2 = World()
    w2.a.ts = T0 + 500
    late = w2.a.sign("issue", issue_body(w2.asm.id, w2.area.id, opens=T0 + 400))
    s2 = state_of(w2, "a", [late.leaf])
    assert s2.window_start[late.id] == 5
    assert s2.window_start[w2.issue.id] == 5  # that leaf also opens the first issue (T0 + 100)


def test_apply_requires_the_next_index() -> None:
    w = World()
    s = State(A, w.a.pk)
    with pytest.raises(ValueError, match="next leaf"):
        s.apply(1, w.base("a")[0])
    assert s.apply_event(0, w.asm, verified=True) == []
    assert repr(s) == f"State(origin={A!r}, size=1)"


def test_check_accepts_a_valid_next_event() -> None:
    w = World()
    s = state_of(w, "a")
    ev = w.alice.sign("ballot", {"issue": w.issue.id, "grades": {"a": 1}})
    s.check(ev)
    s.check(ev, verified=True)
    assert s.apply_event(s.size, ev) == []


# --- serialisation --------------------------------------------------------------------------


def test_state_round_trip_and_copy() -> None:
    w = World()
    s = state_of(w, "a", [w.ballot(w.alice), w.a.sign("seal", {"issue": w.issue.id}).leaf,
                          w.a.sign("attest", {"record": H9, "digest": H9, "issue": w.issue.id}).leaf])  # fmt: skip
    d = s.to_dict()
    assert encoding.decode(encoding.encode(d)) == d
    back = State.from_dict(encoding.decode(encoding.encode(d)))
    assert back == s
    assert back.to_dict() == d
    assert back != "state"
    c = s.copy()
    assert c == s
    c.apply(c.size, w.ballot(w.bob))
    assert c != s


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("v", 2, "state.v"),
        ("extra", 1, "unknown field"),
        ("size", -1, "state.size"),
        ("origin", "", "state.origin"),
        ("key", "k", "state.key"),
        ("assemblies", [], "state.assemblies"),
        ("issues.ISSUE.index", "0", "index"),
        ("issues.ISSUE.event", "AREA_EVENT", "not the issue event"),
        ("issues.ISSUE.event.type", "area", "state.issues"),
        ("enrolled.ALICE.ref", 5, "ref"),
        ("enrolled.ALICE.extra", 5, "unknown field"),
        ("roll", {}, "state.roll"),
        ("roll.0.kind", "x", "kind"),
        ("chains.ALICE.at", [], "one leaf index per seq"),
        ("chains.ALICE.id", "x", "id"),
        ("delegations.ALICE.ASM.scope", "x", "scope"),
        ("ballots.ISSUE.ALICE", {"a": 1.5}, "grades"),
        ("seals.ISSUE", "x", "seals"),
        ("window_start.ISSUE", None, "window_start"),
        ("attestations." + H9 + ".digest", "x", "digest"),
    ],
)
def test_state_from_dict_names_the_field(path: str, value: Any, match: str) -> None:
    w = World()
    s = state_of(w, "a", [
        w.alice.sign("delegate", {"scope": "assembly", "target": w.asm.id, "trustees": []}).leaf,
        w.ballot(w.alice), w.a.sign("attest", {"record": H9, "digest": H9, "issue": w.issue.id}).leaf])  # fmt: skip
    s.window_start[w.issue.id] = 0
    d = encoding.decode(encoding.encode(s.to_dict()))
    subst = {"ISSUE": w.issue.id, "ALICE": w.alice.pk, "ASM": w.asm.id}
    parts = [subst.get(p, p) for p in path.split(".")]
    cur: Any = d
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    if value == "AREA_EVENT":
        value = w.area.to_dict()
    cur[int(parts[-1]) if isinstance(cur, list) else parts[-1]] = value
    with pytest.raises(ValidationError, match=match):
        State.from_dict(d)


def test_finding_from_dict_rejects() -> None:
    f = Finding(A, 3, H9, "invalid", "m")
    d = f.to_dict()
    for bad, match in (({**d, "reason": "nope"}, "reason"), ({**d, "message": 1}, "message"),
                       ({**d, "event_id": "x"}, "event_id"), ({**d, "index": -1}, "index"),
                       ([], "finding"), ({**d, "x": 1}, "unknown field")):  # fmt: skip
        with pytest.raises(ValidationError, match=match):
            Finding.from_dict(bad)
    assert Finding.from_dict({**d, "event_id": None}).event_id is None


# --- random logs: incremental replay equals full replay --------------------------------------


class Generator:
    """Draws a random, mostly well-formed log for city A, with citizens that follow the head."""

    def __init__(self, data: st.DataObject) -> None:
        self.w = World()
        self.data = data
        self.log = self.w.base("a")
        self.state = State(A, self.w.a.pk, leaves=self.log.__getitem__)
        for i, leaf in enumerate(self.log):
            self.state.apply(i, leaf)
        self.people = [self.w.alice, self.w.bob, self.w.carol, self.w.mallory]
        self.city_keys = [self.w.a]  # every key A used, the one it believes in effect last
        self.handovers = 0

    def _follow(self, author: Author) -> Author:
        head = self.state.head(author.pk)
        author.seq, author.prev = (0, None) if head is None else (head.seq, head.id)
        return author

    def step(self) -> None:
        w, d = self.w, self.data
        who = self._follow(d.draw(st.sampled_from(self.people)))
        city = self._follow(self.city_keys[-1])
        who.ts = city.ts = T0 + d.draw(st.integers(0, 300))
        to: Author | None = None
        targets = [("assembly", w.asm.id), ("area", w.area.id), ("issue", w.issue.id), ("area", H9)]
        kind = d.draw(st.sampled_from(
            ["enrol", "unenrol", "delegate", "revoke", "ballot", "withdraw", "seal", "attest",
             "garbage", "gap", "equivocate", "handover", "retired"]))  # fmt: skip
        if kind in ("enrol", "unenrol"):
            leaf = city.sign(kind, {"key": who.pk, "ref": "r"}).leaf
        elif kind == "delegate":
            scope, target = d.draw(st.sampled_from(targets))
            trustees = d.draw(
                st.lists(
                    st.sampled_from([p.pk for p in self.people if p is not who]),
                    unique=True,
                    max_size=3,
                )
            )
            leaf = who.sign(
                "delegate", {"scope": scope, "target": target, "trustees": trustees}
            ).leaf
        elif kind == "revoke":
            scope, target = d.draw(st.sampled_from(targets))
            leaf = who.sign("revoke", {"scope": scope, "target": target}).leaf
        elif kind == "ballot":
            grades = d.draw(
                st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-3, 3), max_size=3)
            )
            leaf = who.sign("ballot", {"issue": w.issue.id, "grades": grades}).leaf
        elif kind == "withdraw":
            leaf = who.sign("withdraw", {"issue": w.issue.id}).leaf
        elif kind == "seal":
            leaf = city.sign("seal", {"issue": w.issue.id}).leaf
        elif kind == "handover":
            # mostly to a fresh key; sometimes to a citizen's or an already used city key
            self.handovers += 1
            fresh = Author(key(f"city-a-{self.handovers}"))
            to = d.draw(st.sampled_from([fresh, fresh, who, *self.city_keys]))
            leaf = city.sign("handover", {"key": to.pk}).leaf
        elif kind == "retired":
            old = self._follow(d.draw(st.sampled_from(self.city_keys)))
            leaf = old.sign("seal", {"issue": w.issue.id}).leaf
        elif kind == "attest":
            leaf = city.sign(
                "attest",
                {
                    "record": d.draw(st.sampled_from([H9, "8" * 64])),
                    "digest": H9,
                    "issue": w.issue.id,
                },
            ).leaf
        elif kind == "garbage":
            leaf = d.draw(st.sampled_from([b"{}", b"[", self.log[-1] + b" "]))
        elif kind == "gap":
            leaf = who.sign("withdraw", {"issue": w.issue.id}, seq=who.seq + 2, prev=H9).leaf
        else:
            at = d.draw(st.integers(1, max(1, who.seq)))
            leaf = who.sign("ballot", {"issue": w.issue.id, "grades": {"b": d.draw(st.integers(-2, 2))}},
                            seq=at, prev=None if at == 1 else H9, advance=False).leaf  # fmt: skip
        findings = self.state.apply(len(self.log), leaf)
        self.log.append(leaf)
        if to is not None and not findings:
            self.city_keys.append(to)
            if to in self.people:
                self.people.remove(to)
        assert self.state.city_key == self.city_keys[-1].pk


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_incremental_replay_equals_full_replay(data: st.DataObject) -> None:
    g = Generator(data)
    for _ in range(data.draw(st.integers(1, 25))):
        g.step()
    full = replay(A, g.w.a.pk, g.log)
    # incremental, with the state saved as canonical bytes and reloaded at random points
    s = State(A, g.w.a.pk, leaves=g.log.__getitem__)
    findings: list[Finding] = []
    for i, leaf in enumerate(g.log):
        if data.draw(st.booleans()):
            s = State.from_dict(
                encoding.decode(encoding.encode(s.to_dict())), leaves=g.log.__getitem__
            )
        if data.draw(st.booleans()):
            findings += s.apply(i, leaf)
        else:
            try:
                ev = Event.decode(leaf)
            except ProtocolError:
                findings += s.apply(i, leaf)
            else:
                findings += s.apply_event(i, ev)
    assert s == full.state
    assert s.to_dict() == full.state.to_dict()
    assert s.key_at(s.size) == s.city_key == g.city_keys[-1].pk
    for h, new in s.handovers:  # the schedule: the new key from the leaf after the handover
        assert s.key_at(h) != new
        assert s.key_at(h + 1) == new
    assert [f.to_dict() for f in findings] == [f.to_dict() for f in full.findings]
    for f in findings:
        if f.proof is not None:
            f.proof.verify()


# --- tally input ----------------------------------------------------------------------------


def two_city_record(w: World, a_extra: list[bytes], b_extra: list[bytes]) -> dict[str, State]:
    seal_a = w.a.sign("seal", {"issue": w.issue.id}).leaf
    seal_b = w.b.sign("seal", {"issue": w.issue.id}).leaf
    ra = replay(A, w.a.pk, w.base("a") + a_extra + [seal_a], snapshot=[w.issue.id])
    rb = replay(B, w.b.pk, w.base("b") + b_extra + [seal_b], snapshot=[w.issue.id])
    return {A: ra.at_seal[w.issue.id], B: rb.at_seal[w.issue.id]}


def test_tally_input_shape_and_cross_city_delegation() -> None:
    w = World()
    other_area = w.a.sign("area", {"assembly": w.asm.id, "name": "Culture"})
    a_extra = [
        other_area.leaf,
        w.alice.sign("delegate", {"scope": "assembly", "target": w.asm.id, "trustees": [w.carol.pk]}).leaf,
        w.alice.sign("delegate", {"scope": "area", "target": other_area.id, "trustees": [w.bob.pk]}).leaf,
        w.alice.sign("delegate", {"scope": "issue", "target": w.issue.id, "trustees": []}).leaf,
        w.bob.sign("delegate", {"scope": "area", "target": w.area.id, "trustees": [w.carol.pk, w.alice.pk]}).leaf,
        w.ballot(w.bob, {"a": 1}),
        w.ballot(w.bob, {"a": 2, "b": -1}),
    ]  # fmt: skip
    b_extra = [w.ballot(w.carol, {"b": 1})]
    build = tally_input(w.issue.id, two_city_record(w, a_extra, b_extra))
    assert build.findings == ()
    doc = build.input
    assert doc["version"] == 1
    assert doc["voters"] == {w.alice.pk: 1, w.bob.pk: 1, w.carol.pk: 1}
    assert doc["options"] == ["a", "b"]
    assert doc["ballots"] == {w.bob.pk: {"a": 2, "b": -1}, w.carol.pk: {"b": 1}}
    rows = {(r["truster"], r["scope"]): r["trustees"] for r in doc["delegations"]}
    assert rows == {
        (w.alice.pk, "assembly"): [w.carol.pk],
        (w.alice.pk, "issue"): [],
        (w.bob.pk, "area"): [w.carol.pk, w.alice.pk],
    }
    assert doc["policy"]["delegation_rule"] == "bfd"
    assert encoding.decode(encoding.encode(doc)) == doc
    assert [(r["truster"], r["scope"]) for r in doc["delegations"]] == sorted(
        rows, key=lambda r: (r[0], ["assembly", "area", "issue"].index(r[1]))
    )
    assert build.prepared == TallyInput.from_dict(doc)


def test_tally_input_refuses_an_electorate_beyond_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import protocol.state
    import protocol.tally._input

    w = World()
    parts = two_city_record(w, [], [])
    build = tally_input(w.issue.id, parts)
    n = len(build.prepared.voters)
    assert n > 1
    for module in (protocol.state, protocol.tally._input):
        monkeypatch.setattr(module, "MAX_VOTERS", n - 1)
    with pytest.raises(TallyInputError, match=rf"voters: {n} voters \(at most {n - 1}\)"):
        tally_input(w.issue.id, parts)
    # the same refusal as the document's loader gives
    with pytest.raises(TallyInputError, match=rf"voters: {n} voters \(at most {n - 1}\)"):
        TallyInput.from_dict(build.input)


def test_tally_input_excludes_keys_enrolled_twice() -> None:
    w = World()
    b_extra = [w.b.sign("enrol", {"key": w.alice.pk, "ref": "also-b"}).leaf]
    a_extra = [w.ballot(w.alice)]
    build = tally_input(w.issue.id, two_city_record(w, a_extra, b_extra))
    assert w.alice.pk not in build.input["voters"]
    assert w.alice.pk not in build.input["ballots"]
    assert sorted((f.origin, f.reason) for f in build.findings) == [
        (A, "enrolled_twice"),
        (B, "enrolled_twice"),
    ]
    assert all(f.event_id is not None for f in build.findings)


def test_tally_input_rejects_incomplete_records() -> None:
    w = World()
    parts = two_city_record(w, [], [])
    with pytest.raises(TallyInputError, match="no state"):
        tally_input(H9, parts)
    with pytest.raises(TallyInputError, match="missing"):
        tally_input(w.issue.id, {A: parts[A]})
    with pytest.raises(TallyInputError, match="not members"):
        tally_input(w.issue.id, {**parts, C: State(C, w.c.pk)})
    with pytest.raises(TallyInputError, match="another key"):
        tally_input(w.issue.id, {A: parts[A], B: parts[A]})
    late = parts[A].copy()
    late.apply(late.size, w.ballot(w.alice))
    with pytest.raises(TallyInputError, match="its seal is leaf"):
        tally_input(w.issue.id, {A: late, B: parts[B]})
    # a member whose part is a checkpoint before any seal (it never sealed) is accepted
    unsealed = replay(B, w.b.pk, w.base("b")).state
    assert tally_input(w.issue.id, {A: parts[A], B: unsealed}).input["voters"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_log_yields_a_tally_input_the_tally_accepts(data: st.DataObject) -> None:
    g = Generator(data)
    for _ in range(data.draw(st.integers(0, 20))):
        g.step()
    w = g.w
    seal_a = w.a.sign("seal", {"issue": w.issue.id}).leaf
    ra = replay(A, w.a.pk, [*g.log, seal_a], snapshot=[w.issue.id])
    part_a = ra.at_seal.get(w.issue.id) or ra.state  # sealed earlier, or a checkpoint part
    if w.issue.id in part_a.seals and part_a.size != part_a.seals[w.issue.id] + 1:
        part_a = replay(A, w.a.pk, g.log[: part_a.seals[w.issue.id] + 1]).state
    b_extra = [
        w.b.sign("enrol", {"key": p.pk, "ref": "b"}).leaf
        for p in data.draw(st.lists(st.sampled_from(g.people), unique_by=lambda p: p.pk))
    ]
    part_b = replay(B, w.b.pk, w.base("b") + b_extra).state
    build = tally_input(w.issue.id, {A: part_a, B: part_b})
    doc = build.input
    inp = TallyInput.from_dict(encoding.decode(encoding.encode(doc)))
    assert inp.to_dict()["voters"] == doc["voters"]
    # the prepared input, built without the document, is the one the document loads into
    assert build.prepared == inp
    assert list(build.prepared.delegations) == list(inp.delegations)
    for scope, rows in inp.delegations.items():
        assert list(build.prepared.delegations[scope]) == list(rows)
    assert list(build.prepared.ballots) == list(inp.ballots)
    assert tally(build.prepared).to_dict() == tally(inp).to_dict()
