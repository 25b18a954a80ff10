"""Per-author chain rules and the offline check of equivocation proofs."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from protocol import encoding
from protocol.chain import EquivocationProof, Head, check_next
from protocol.errors import ChainError, ProofError, ValidationError
from protocol.events import Event

from ._events_factory import Author, key

H1 = "1" * 64


def chain(n: int) -> tuple[Author, list[Event]]:
    a = Author(key("alice"))
    return a, [a.sign("withdraw", {"issue": H1}) for _ in range(n)]


def test_first_event_must_be_seq_1() -> None:
    _, evs = chain(2)
    check_next(None, evs[0])
    with pytest.raises(ChainError) as exc:
        check_next(None, evs[1])
    assert exc.value.code == "chain_gap"


def test_successor_links_to_head() -> None:
    a, evs = chain(3)
    check_next(Head(1, evs[0].id), evs[1])
    check_next(Head(2, evs[1].id), evs[2])
    wrong_prev = a.sign("withdraw", {"issue": H1}, advance=False, seq=3, prev=evs[0].id)
    with pytest.raises(ChainError, match="current head: seq 2") as exc:
        check_next(Head(2, evs[1].id), wrong_prev)
    assert exc.value.code == "chain_prev"


@pytest.mark.parametrize(
    ("head_seq", "event_index", "code"),
    [(1, 2, "chain_gap"), (3, 2, "duplicate_event"), (3, 1, "seq_reused"), (3, 0, "seq_reused")],
)
def test_chain_errors(head_seq: int, event_index: int, code: str) -> None:
    _, evs = chain(3)
    with pytest.raises(ChainError) as exc:
        check_next(Head(head_seq, evs[head_seq - 1].id), evs[event_index])
    assert exc.value.code == code
    assert evs[head_seq - 1].id in exc.value.message


def test_other_event_at_head_seq_is_reuse() -> None:
    a, evs = chain(2)
    twin = a.sign("withdraw", {"issue": "2" * 64}, advance=False, seq=2, prev=evs[0].id)
    with pytest.raises(ChainError) as exc:
        check_next(Head(2, evs[1].id), twin)
    assert exc.value.code == "seq_reused"


def equivocation() -> tuple[Event, Event]:
    a = Author(key("alice"))
    e1 = a.sign("ballot", {"issue": H1, "grades": {"a": 1}}, advance=False)
    e2 = a.sign("ballot", {"issue": H1, "grades": {"a": -1}}, advance=False)
    return e1, e2


def test_proof_verifies_and_round_trips() -> None:
    e1, e2 = equivocation()
    proof = EquivocationProof.of(e2, e1)
    assert proof == EquivocationProof.of(e1, e2)
    assert proof.first.id < proof.second.id
    proof.verify()
    assert proof.author == e1.author
    assert proof.seq == 1
    d = proof.to_dict()
    assert encoding.decode(encoding.encode(d)) == d
    back = EquivocationProof.from_dict(encoding.decode(encoding.encode(d)))
    assert back == proof
    back.verify()


def _resign_other(ev: Event) -> Event:
    """The same fields signed by another key: a valid event by a different author."""
    return Event.create(key("mallory"), ev.type, ev.body, ev.seq, ev.prev, ev.ts)


def _corrupt_sig(ev: Event) -> Event:
    sig = bytearray(ev.sig)
    sig[10] ^= 0x40
    return Event.from_dict({**ev.to_dict(), "sig": base64.b64encode(bytes(sig)).decode()})


def _alter_body(ev: Event) -> Event:
    return Event.from_dict({**ev.to_dict(), "body": {"issue": H1, "grades": {"a": 7}}})


def _other_seq(ev: Event) -> Event:
    return Event.create(key("alice"), ev.type, ev.body, 2, "3" * 64, ev.ts)


@pytest.mark.parametrize("half", [0, 1])
@pytest.mark.parametrize(
    ("alter", "match"),
    [
        (_corrupt_sig, "signature is bad"),
        (_alter_body, "signature is bad"),
        (_resign_other, "different authors"),
        (_other_seq, "seq"),
    ],
)
def test_proof_fails_when_either_half_altered(half: int, alter: Any, match: str) -> None:
    proof = EquivocationProof.of(*equivocation())
    pair = [proof.first, proof.second]
    pair[half] = alter(pair[half])
    with pytest.raises(ProofError, match=match):
        EquivocationProof(pair[0], pair[1]).verify()
    # and the altered proof, in canonical form, fails the same way after a round trip
    altered = EquivocationProof.of(pair[0], pair[1])
    with pytest.raises(ProofError):
        EquivocationProof.from_dict(altered.to_dict()).verify()


def test_same_event_twice_is_no_proof() -> None:
    e1, _ = equivocation()
    with pytest.raises(ProofError, match="same event"):
        EquivocationProof(e1, e1).verify()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: [],
        lambda d: {**d, "extra": 1},
        lambda d: {"events": d["events"][:1]},
        lambda d: {"events": "x"},
        lambda d: {"events": d["events"][::-1]},
        lambda d: {"events": [d["events"][0], d["events"][0]]},
    ],
)
def test_from_dict_rejects_malformed(mangle: Any) -> None:
    d = EquivocationProof.of(*equivocation()).to_dict()
    with pytest.raises(ValidationError):
        EquivocationProof.from_dict(mangle(d))


def test_from_dict_names_the_bad_half() -> None:
    d = EquivocationProof.of(*equivocation()).to_dict()
    d["events"][1] = {**d["events"][1], "seq": 0}
    with pytest.raises(ValidationError, match=r"equivocation.events\[1\].seq"):
        EquivocationProof.from_dict(d)
