"""The observer's verification engine: an honest federation passes, and each tampering fails at
its own numbered step, naming the item."""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from crypto import SecretKey
from protocol.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    SplitViewProof,
    cosign,
    sign_checkpoint,
)
from protocol.errors import ValidationError
from protocol.events import Event
from protocol.merkle import MemoryTree, leaf_hash
from protocol.verify import (
    STEPS,
    ConsistencyProof,
    Finding,
    LogMaterial,
    NodeMaterial,
    Report,
    SavedState,
    Trust,
    verify,
)

from ._events_factory import key
from ._verify_factory import (
    CLOSES,
    GRACE,
    OPENS,
    WITNESS,
    A,
    B,
    C,
    Federation,
    Log,
    build,
    flip,
    witness_key,
)

AFTER = CLOSES + GRACE + 60


@pytest.fixture(scope="module")
def fed() -> Federation:
    return build()


def run(fed: Federation, *nodes: NodeMaterial, now: int | None = AFTER, **kw: Any) -> Report:
    if not nodes:
        nodes = (fed.material("http://a.example/"), fed.material("http://c.example/"))
    return verify(fed.trust(), list(nodes), now=now, **kw).report


def errors(report: Report, step: int | None = None) -> list[Any]:
    return [f for f in report.findings("error") if step is None or f.step == step]


def replace_log(node: NodeMaterial, origin: str, **changes: Any) -> NodeMaterial:
    logs = dict(node.logs)
    logs[origin] = dataclasses.replace(logs[origin], **changes)
    return NodeMaterial(node.node, logs, node.proofs)


def fork(log: Log, keep: int) -> Log:
    """A copy of ``log`` cut to its first ``keep`` leaves, ready to sign a different future."""
    out = Log(log.origin, log.sk, list(log.leaves[:keep]))
    for leaf in out.leaves:
        ev = Event.decode(leaf)
        if ev.author == log.pk:
            out.seq, out.prev = ev.seq, ev.id
    return out


# --- the honest federation --------------------------------------------------------------------


def test_honest_federation_passes(fed: Federation) -> None:
    report = run(fed)
    assert report.passed, report.to_text()
    assert report.verdict == "PASS"
    assert report.first_failure is None
    assert [s.number for s in report.steps.values()] == list(STEPS)
    (issue,) = report.issues
    assert issue.status == "tallied"
    assert issue.record == fed.record
    assert issue.digest == fed.digest
    assert issue.winner == "yes"
    assert report.step(7).counts["attestations agreeing"] == 3  # A, C and the witness city B
    assert report.step(2).counts["checkpoints consistent"] > 0
    assert report.step(3).counts["entries checked"] == len(fed.a.leaves) + len(fed.c.leaves) + len(
        fed.b.leaves
    )


def test_honest_report_serialises(fed: Federation) -> None:
    report = run(fed)
    d = report.to_dict()
    json.dumps(d)
    assert d["verdict"] == "PASS"
    assert len(d["steps"]) == 8
    assert d["issues"][0]["options"][0]["id"] == "yes"
    text = report.to_text()
    assert text.endswith("PASS\n")
    assert "1. checkpoint signatures" in text


def test_one_node_is_enough(fed: Federation) -> None:
    assert run(fed, fed.material("http://a.example/")).passed


def test_batcher_gives_the_same_verdict(fed: Federation) -> None:
    calls: list[int] = []

    class Inline:
        def submit(self, keys: Sequence[bytes], signed: Sequence[bytes]) -> Callable[[], list[int]]:
            import nacl.bindings
            import nacl.exceptions

            calls.append(len(keys))
            bad = []
            for i, (k, s) in enumerate(zip(keys, signed, strict=True)):
                try:
                    nacl.bindings.crypto_sign_open(s, k)
                except nacl.exceptions.BadSignatureError:
                    bad.append(i)
            return lambda: bad

    report = run(fed, batcher=Inline(), chunk=5)
    assert report.passed, report.to_text()
    assert sum(calls) == report.step(3).counts["entries checked"]
    assert max(calls) <= 5
    # and a bad signature found by the batcher is still named
    a = list(fed.a.leaves)
    a[6] = _resign_other(a[6])
    node = replace_log(fed.material("http://a.example/"), A, entries=a)
    bad = run(fed, node, batcher=Inline(), chunk=4)
    assert bad.first_failure == 3
    (f,) = errors(bad, 3)
    assert (f.code, f.origin, f.index) == ("bad_signature", A, 6)


def test_the_cyclic_collector_is_paused_while_verifying_and_restored(fed: Federation) -> None:
    seen: list[bool] = []

    class Watch:
        def __init__(self, fail: bool) -> None:
            self.fail = fail

        def submit(self, keys: Sequence[bytes], signed: Sequence[bytes]) -> Callable[[], list[int]]:
            seen.append(gc.isenabled())
            if self.fail:
                raise RuntimeError("the batcher broke")
            return list

    assert gc.isenabled()
    assert run(fed, batcher=Watch(fail=False)).passed
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="the batcher broke"):
        run(fed, batcher=Watch(fail=True))
    assert gc.isenabled()
    gc.disable()
    try:
        assert run(fed, batcher=Watch(fail=False)).passed
        assert not gc.isenabled()  # a caller's choice is left as it was
    finally:
        gc.enable()
    assert seen
    assert not any(seen)


def _resign_other(leaf: bytes) -> bytes:
    """The same event with a signature by another key (canonical, but a bad signature)."""
    d = json.loads(leaf)
    other = Event.create(key("someone-else"), d["type"], d["body"], d["seq"], d["prev"], d["ts"])
    d["sig"] = other.to_dict()["sig"]
    return Event.from_dict(d).encode()


# --- tampering, each at its own step ----------------------------------------------------------


def test_forged_checkpoint_signature_fails_step_1(fed: Federation) -> None:
    log = fed.a
    size = len(log.leaves)
    forged = sign_checkpoint(Checkpoint(A, size, log.root()), key("impostor"))
    # same key name, a signature by another key: the pinned key's signature is missing
    node = replace_log(fed.material("http://evil.example/"), A, checkpoints=(forged.to_text(),))
    report = run(fed, node, fed.material("http://c.example/"))
    assert report.first_failure == 1
    (f,) = [f for f in errors(report, 1) if f.origin == A]
    assert f.code == "bad_checkpoint_signature"
    assert f.node == "http://evil.example/"
    assert f.index == size
    # a signature line that claims the pinned key but whose bytes are wrong
    good = log.checkpoints[size]
    sig = good.signatures[0]
    broken = SignedCheckpoint(good.checkpoint, (dataclasses.replace(sig, signature=bytes(64)),))
    node2 = replace_log(fed.material("http://evil.example/"), A, checkpoints=(broken.to_text(),))
    report2 = run(fed, node2)
    assert report2.first_failure == 1
    assert any(f.code == "bad_checkpoint_signature" and f.origin == A for f in errors(report2, 1))


def test_forged_cosignature_fails_step_1(fed: Federation) -> None:
    size = len(fed.a.leaves)
    sc = sign_checkpoint(Checkpoint(A, size, fed.a.root()), fed.a.sk)
    line = cosign(sc.checkpoint, WITNESS, key("not-the-witness"), CLOSES + 40)
    # a cosignature line under the witness's name and key ID, signed by another key
    from protocol.checkpoint import Cosignature, cosigner_key_id

    cs = Cosignature.from_line(line)
    fake = dataclasses.replace(cs, key_id=cosigner_key_id(WITNESS, witness_key().public_key))
    node = replace_log(
        fed.material("http://a.example/"),
        A,
        checkpoints=(sc.with_signature(fake.line()).to_text(),),
    )
    report = run(fed, node)
    assert report.first_failure == 1
    assert any(f.code == "bad_cosignature" and f.origin == A for f in errors(report, 1))


def test_malformed_checkpoint_fails_step_1(fed: Federation) -> None:
    node = replace_log(fed.material("http://a.example/"), A, checkpoints=("garbage\n",))
    report = run(fed, node)
    assert report.first_failure == 1
    assert [f.code for f in errors(report, 1)] == ["malformed_checkpoint", "no_checkpoint"]


def test_two_histories_of_one_size_fail_step_2(fed: Federation) -> None:
    n = len(fed.a.leaves)
    other = fork(fed.a, n - 1)
    other.city("enrol", {"key": key("forked").public_key.to_text(), "ref": "fork"}, CLOSES + 30)
    other.checkpoint(cosigned_at=CLOSES + 40)
    honest = fed.material("http://a.example/")
    evil_base = fed.material("http://a2.example/")
    notes = tuple(sc.to_text() for s, sc in sorted(fed.a.checkpoints.items()) if s < n)
    evil = replace_log(
        evil_base, A, entries=other.leaves, checkpoints=(*notes, other.checkpoints[n].to_text())
    )
    report = run(fed, honest, evil)
    assert report.first_failure == 2, report.to_text()
    (f,) = errors(report, 2)
    assert f.code == "split_view"
    assert f.origin == A
    assert f.node == "http://a2.example/"
    proof = SplitViewProof.from_dict(f.proof)
    assert proof.kind == "roots"
    proof.verify(fed.a.sk.public_key)
    for step in (1, 3, 4, 5):
        assert report.step(step).passed, step


def test_two_histories_of_different_sizes_fail_step_2_with_inclusion_proof(fed: Federation) -> None:
    n = len(fed.a.leaves)
    other = fork(fed.a, n - 1)
    other.city("enrol", {"key": key("forked").public_key.to_text(), "ref": "fork"}, CLOSES + 30)
    other.city("enrol", {"key": key("forked2").public_key.to_text(), "ref": "fork2"}, CLOSES + 31)
    other.checkpoint(cosigned_at=CLOSES + 40)
    honest = replace_log(
        fed.material("http://a.example/"), A, checkpoints=(fed.a.checkpoints[n].to_text(),)
    )
    evil = replace_log(
        fed.material("http://a2.example/"),
        A,
        entries=other.leaves,
        checkpoints=(other.checkpoints[n + 1].to_text(),),
    )
    report = run(fed, honest, evil)
    assert report.first_failure == 2, report.to_text()
    (f,) = errors(report, 2)
    assert f.code == "split_view"
    assert f.index == n - 1
    proof = SplitViewProof.from_dict(f.proof)
    assert proof.kind == "inclusion"
    assert proof.index == n - 1
    proof.verify(fed.a.sk.public_key)


def test_conflicting_checkpoint_without_entries_fails_step_2(fed: Federation) -> None:
    n = len(fed.a.leaves)
    other = fork(fed.a, n - 1)
    other.city("enrol", {"key": key("forked").public_key.to_text(), "ref": "fork"}, CLOSES + 30)
    other.city("enrol", {"key": key("forked2").public_key.to_text(), "ref": "fork2"}, CLOSES + 31)
    other.checkpoint(cosigned_at=CLOSES + 40)
    # the honest node is longer; the other serves only a conflicting checkpoint of a smaller size
    honest = fed.material("http://a.example/")
    short = fork(fed.a, n - 2)
    short.city("enrol", {"key": key("x").public_key.to_text(), "ref": "x"}, CLOSES)
    note = short.checkpoint(cosigned_at=CLOSES + 40)
    evil = replace_log(fed.material("http://a2.example/"), A, entries=None, checkpoints=(note,))
    report = run(fed, honest, evil)
    assert report.first_failure == 2
    (f,) = errors(report, 2)
    assert f.code == "split_view" or f.code == "checkpoint_conflict"
    assert f.node == "http://a2.example/"
    assert f.index == n - 1


def test_a_failing_consistency_proof_proves_nothing(fed: Federation) -> None:
    # A mirror announces a larger checkpoint with a garbage consistency proof: a warning only.
    n = len(fed.a.leaves)
    longer = fork(fed.a, n)
    longer.city("enrol", {"key": key("later").public_key.to_text(), "ref": "later"}, AFTER)
    note = longer.checkpoint(cosigned_at=AFTER)
    mirror = replace_log(
        fed.material("http://mirror.example/"),
        A,
        entries=None,
        checkpoints=(note,),
        consistency=(ConsistencyProof(n, n + 1, (b"\x00" * 32,)),),
    )
    report = run(fed, fed.material("http://a.example/"), mirror)
    assert report.passed, report.to_text()
    (w,) = [f for f in report.findings("warning") if f.code == "not_shown_consistent"]
    assert w.node == "http://mirror.example/"
    # the right proof shows it extends the history
    proof = MemoryTree(leaf_hash(x) for x in longer.leaves).consistency_proof(n)
    mirror2 = replace_log(mirror, A, consistency=(ConsistencyProof(n, n + 1, tuple(proof)),))
    report2 = run(fed, fed.material("http://a.example/"), mirror2)
    assert report2.passed
    assert not report2.findings("warning")
    assert report2.step(2).counts["larger checkpoints proven consistent"] == 1


def test_flipped_byte_in_an_entry_fails_step_3(fed: Federation) -> None:
    entries = list(fed.c.leaves)
    ballot = next(i for i, x in enumerate(entries) if Event.decode(x).type == "ballot")
    pos = entries[ballot].index(b'"ts":') + 6  # a digit of the claimed time
    entries[ballot] = flip(entries[ballot], pos)
    node = replace_log(fed.material("http://c.example/"), C, entries=entries)
    report = run(fed, node)
    assert report.first_failure == 3, report.to_text()
    (f,) = errors(report, 3)
    assert (f.code, f.origin, f.index, f.node) == (
        "non_canonical",
        C,
        ballot,
        "http://c.example/",
    ) or (f.code == "bad_signature" and f.origin == C and f.index == ballot)
    assert report.step(1).passed
    assert report.step(2).passed


def test_flipped_signature_byte_fails_step_3_with_the_event_id(fed: Federation) -> None:
    entries = list(fed.a.leaves)
    idx = 10
    ev = Event.decode(entries[idx])
    entries[idx] = _resign_other(entries[idx])
    node = replace_log(fed.material("http://a.example/"), A, entries=entries)
    report = run(fed, node)
    assert report.first_failure == 3
    (f,) = errors(report, 3)
    assert (f.code, f.index, f.event_id) == ("bad_signature", idx, ev.id)


def test_wrong_root_fails_step_4(fed: Federation) -> None:
    n = len(fed.a.leaves)
    wrong = sign_checkpoint(Checkpoint(A, n, fed.a.root(n - 1)), fed.a.sk)
    wrong = wrong.with_signature(cosign(wrong.checkpoint, WITNESS, witness_key(), CLOSES + 40))
    notes = tuple(sc.to_text() for s, sc in sorted(fed.a.checkpoints.items()) if s < n)
    node = replace_log(fed.material("http://a.example/"), A, checkpoints=(*notes, wrong.to_text()))
    report = run(fed, node)
    assert report.first_failure == 4, report.to_text()
    (f,) = errors(report, 4)
    assert (f.code, f.origin, f.index) == ("root_mismatch", A, n)


def test_missing_entries_fail_step_4(fed: Federation) -> None:
    node = replace_log(fed.material("http://a.example/"), A, entries=fed.a.leaves[:-2])
    report = run(fed, node)
    assert report.first_failure == 4
    assert "entries_missing" in {f.code for f in errors(report, 4)}


def test_no_entries_at_all_fails_step_4(fed: Federation) -> None:
    node = replace_log(fed.material("http://a.example/"), C, entries=None)
    report = run(fed, node)
    assert report.first_failure == 4
    assert [f.code for f in errors(report, 4)] == ["no_entries"]
    assert report.issues[0].status == "unverifiable"


def test_ballot_from_unenrolled_key_fails_step_5() -> None:
    rogue = build(rogue_ballot=True)
    report = run(rogue)
    assert report.first_failure == 5, report.to_text()
    (f,) = errors(report, 5)
    stranger = rogue.citizens["stranger"]
    assert f.code == "not_enrolled"
    assert f.origin == A
    assert stranger.pk in f.message
    assert Event.decode(rogue.a.leaves[f.index]).author == stranger.pk
    assert f.event_id == Event.decode(rogue.a.leaves[f.index]).id
    for step in (1, 2, 3, 4):
        assert report.step(step).passed


def test_wrong_digest_attestation_fails_step_7() -> None:
    liar = build(digests={C: "e" * 64})
    report = run(liar)
    assert report.first_failure == 7, report.to_text()
    codes = {(f.code, f.origin) for f in errors(report, 7)}
    assert ("wrong_digest", C) in codes
    assert ("attestations_disagree", None) in codes
    (wrong,) = [f for f in errors(report, 7) if f.code == "wrong_digest"]
    assert wrong.index == len(liar.c.leaves) - 1
    assert wrong.issue == liar.issue.id


def test_split_view_proof_held_by_a_node_fails_step_8(fed: Federation) -> None:
    n = len(fed.a.leaves)
    other = fork(fed.a, n - 1)
    other.city("enrol", {"key": key("forked").public_key.to_text(), "ref": "fork"}, CLOSES + 30)
    other.checkpoint(cosigned_at=None)
    proof = SplitViewProof.of_roots(fed.a.checkpoints[n], other.checkpoints[n])
    held = {"id": proof.id, "kind": "split-view", "origin": A, "proof": proof.to_dict(), "time": 1}
    node = dataclasses.replace(fed.material("http://c.example/"), proofs=(held, held))
    report = run(fed, fed.material("http://a.example/"), node)
    assert report.first_failure == 8
    (f,) = errors(report, 8)
    assert f.code == "split_view"
    assert f.origin == A
    assert f.node == "http://c.example/"


def test_invalid_or_unknown_proofs_are_warnings(fed: Federation) -> None:
    n = len(fed.a.leaves)
    # A "proof" whose halves are signed by a key other than A's pinned key proves nothing.
    impostor = SecretKey(bytes(range(32)))
    x = sign_checkpoint(Checkpoint(A, n, b"\x01" * 32), impostor)
    y = sign_checkpoint(Checkpoint(A, n, b"\x02" * 32), impostor)
    bogus = SplitViewProof.of_roots(x, y)
    eqv_a = fed.citizens["a0"].sign("ballot", {"issue": fed.issue.id, "grades": {"yes": 1}}, 1)
    proofs: tuple[dict[str, Any], ...] = (
        {"id": "1", "kind": "split-view", "origin": A, "proof": bogus.to_dict(), "time": 1},
        {"id": "2", "kind": "split-view", "origin": A, "proof": {"type": "nope"}, "time": 1},
        {"id": "3", "kind": "mystery", "origin": None, "proof": {}, "time": 1},
        {
            "id": "4",
            "kind": "equivocation",
            "origin": None,
            "proof": {"events": [eqv_a.to_dict()]},
            "time": 1,
        },
        {
            "id": "5",
            "kind": "split-view",
            "origin": "elsewhere",
            "proof": _foreign_split(),
            "time": 1,
        },
    )
    node = dataclasses.replace(fed.material("http://c.example/"), proofs=proofs)
    report = run(fed, node)
    assert report.passed, report.to_text()
    codes = sorted(f.code for f in report.step(8).findings)
    assert codes == ["invalid_proof", "invalid_proof", "invalid_proof", "unknown_proof"]
    assert report.step(8).counts["proofs about unpinned logs (not checked)"] == 1


def _foreign_split() -> dict[str, Any]:
    sk = key("foreign")
    x = sign_checkpoint(Checkpoint("elsewhere", 3, b"\x01" * 32), sk)
    y = sign_checkpoint(Checkpoint("elsewhere", 3, b"\x02" * 32), sk)
    return SplitViewProof.of_roots(x, y).to_dict()


def test_valid_equivocation_proof_is_reported(fed: Federation) -> None:
    from protocol.chain import EquivocationProof

    ctz = fed.citizens["a2"]
    one = Event.create(
        ctz.sk, "ballot", {"issue": fed.issue.id, "grades": {"yes": 1}}, 9, "0" * 64, 1
    )
    two = Event.create(
        ctz.sk, "ballot", {"issue": fed.issue.id, "grades": {"no": 1}}, 9, "0" * 64, 1
    )
    p = EquivocationProof.of(one, two).to_dict()
    held = {"id": "e", "kind": "equivocation", "origin": None, "proof": p, "time": 1}
    node = dataclasses.replace(fed.material("http://a.example/"), proofs=(held, held))
    report = run(fed, node)
    assert report.passed
    (w,) = report.step(8).findings
    assert w.code == "equivocation"
    assert w.severity == "warning"


# --- seals, windows and records ----------------------------------------------------------------


def test_early_seal_is_flagged() -> None:
    early = build(seal_cosigned_at=CLOSES - 100)
    report = run(early)
    assert report.passed
    flagged = {(f.code, f.origin) for f in report.findings("warning")}
    assert flagged == {("seal_early", A), ("seal_early", C)}


def test_late_seal_is_flagged() -> None:
    late = build(seal_cosigned_at=CLOSES + GRACE + 100)
    report = run(late)
    assert report.passed
    assert {f.code for f in report.findings("warning")} == {"seal_late"}


def test_missing_seal_uses_the_stand_in_checkpoint() -> None:
    fed = build(sealers=(A,))
    report = run(fed)
    assert report.passed, report.to_text()
    (w,) = [f for f in report.findings("warning") if f.code == "seal_missing"]
    assert w.origin == C
    (issue,) = report.issues
    assert issue.status == "tallied"
    assert issue.record == fed.record
    assert issue.digest == fed.digest
    assert report.step(7).counts["attestations agreeing"] == 3


def test_issue_stays_open_until_grace_runs_out() -> None:
    fed = build(sealers=(A,), attest=False)
    report = run(fed, now=CLOSES + 10)
    assert report.passed
    assert report.issues[0].status == "open"
    report2 = run(fed, now=None)
    assert report2.issues[0].status == "open"


def test_unsealed_issue_without_witnessed_checkpoint_cannot_be_tallied() -> None:
    fed = build(sealers=(A,), attest=False)
    # C's only checkpoints now carry no cosignatures
    notes = tuple(
        sign_checkpoint(Checkpoint(C, s, fed.c.root(s)), fed.c.sk).to_text()
        for s in fed.c.checkpoints
    )
    node = replace_log(fed.material("http://c.example/"), C, checkpoints=notes)
    report = run(fed, node)
    assert report.issues[0].status == "unverifiable"
    assert any(f.code == "seal_missing" and f.origin == C for f in report.findings("warning"))


def test_unwitnessed_seal_is_flagged_late() -> None:
    fed = build()
    notes = tuple(
        sign_checkpoint(Checkpoint(A, s, fed.a.root(s)), fed.a.sk).to_text()
        for s in fed.a.checkpoints
    )
    node = replace_log(fed.material("http://a.example/"), A, checkpoints=notes)
    report = run(fed, node)
    assert report.passed
    (f,) = report.findings("warning")
    assert (f.code, f.origin, f.issue) == ("seal_late", A, fed.issue.id)
    assert "unwitnessed" in f.message
    assert not run(fed, node, now=CLOSES + 10).findings("warning")  # not yet: grace runs


def test_without_witnesses_the_record_waits_for_every_seal() -> None:
    fed = build(sealers=(A,), attest=False)
    t = fed.trust()
    no_witness = Trust(None, None, t.cities, (), 0, t.grace)
    report = verify(no_witness, [fed.material("http://a.example/")], now=AFTER).report
    assert report.passed
    assert report.issues[0].status == "open"


def test_enrolment_inside_the_voting_window_is_listed() -> None:
    fed = build(window_enrol=True)
    report = run(fed)
    assert report.passed, report.to_text()
    (i,) = [f for f in report.step(5).findings if f.code == "window_enrol"]
    assert i.severity == "info"
    assert i.origin == A
    assert fed.citizens["late"].pk in i.message
    assert report.step(5).counts["enrolment changes inside voting windows"] == 1
    # Built in bulk (Finding.many), it is the finding the class builds, every field in place.
    late = next(
        j for j, leaf in enumerate(fed.a.leaves) if fed.citizens["late"].pk.encode() in leaf
    )
    assert i == Finding(5, "info", "window_enrol", i.message, A, late, None, None, fed.issue.id)
    assert i.to_dict() == {
        "step": 5,
        "severity": "info",
        "code": "window_enrol",
        "message": i.message,
        "origin": A,
        "index": late,
        "issue": fed.issue.id,
    }


def test_member_that_never_adopted_is_flagged() -> None:
    fed = build(attest=False)
    # C's log without its adoption (and everything after it that depends on it)
    keep = [leaf for leaf in fed.c.leaves if Event.decode(leaf).type in ("assembly.join", "enrol")]
    c = Log(C, fed.c.sk, keep)
    c.seq, c.prev = 0, None
    note = c.checkpoint(cosigned_at=CLOSES + 20)
    # rebuild a consistent chain: re-sign the city events in order
    relog = Log(C, fed.c.sk)
    for leaf in keep:
        ev = Event.decode(leaf)
        relog.city(ev.type, ev.body.to_dict(), ev.ts)
    note = relog.checkpoint(cosigned_at=CLOSES + 20)
    node = replace_log(
        fed.material("http://c.example/"), C, entries=relog.leaves, checkpoints=(note,)
    )
    report = run(fed, fed.material("http://a.example/", (A, B)), node)
    assert any(f.code == "not_adopted" and f.origin == C for f in report.findings("warning"))
    assert report.issues[0].status == "unverifiable"  # no stand-in cosigned before the close


def test_issue_filter(fed: Federation) -> None:
    assert run(fed, issue=fed.issue.id).issues[0].id == fed.issue.id
    other = run(fed, issue="f" * 64)
    assert other.passed
    assert other.issues == []
    assert "attestations agreeing" not in other.step(7).counts


# --- trust ---------------------------------------------------------------------------------------


def test_trust_by_assembly_id_resolves_from_the_logs(fed: Federation) -> None:
    trust = Trust.from_dict({"format": "liquide-trust/v1", "assembly": {"id": fed.assembly.id}})
    assert not trust.resolved
    nodes = [fed.material("http://a.example/"), fed.material("http://c.example/")]
    report = verify(trust, nodes, now=AFTER).report
    assert report.passed, report.to_text()
    assert report.assembly == fed.assembly.id
    # only C's log (which carries the definition in its join) is enough to resolve it
    report2 = verify(trust, [fed.material("http://c.example/", (C,))], now=AFTER).report
    assert report2.assembly == fed.assembly.id


def test_trust_by_unknown_assembly_id_fails_step_1(fed: Federation) -> None:
    trust = Trust.from_dict({"format": "liquide-trust/v1", "assembly": {"id": "a" * 64}})
    report = verify(trust, [fed.material("http://a.example/")], now=AFTER).report
    assert report.first_failure == 1
    assert [f.code for f in errors(report)] == ["assembly_not_found"]


def test_trust_by_cities_verifies_the_assembly_with_those_members(fed: Federation) -> None:
    t = fed.trust()
    direct = Trust(None, None, t.cities, t.witnesses, t.k, t.grace)
    report = verify(
        Trust.from_dict(direct.to_dict()), [fed.material("http://a.example/")], now=AFTER
    ).report
    assert report.passed
    assert report.issues[0].digest == fed.digest


def test_trust_never_takes_keys_from_the_node(fed: Federation) -> None:
    # A node that serves a log of A signed by another key (with its own "assembly") fails step 1.
    impostor = Log(A, key("impostor"))
    impostor.city("enrol", {"key": key("z").public_key.to_text(), "ref": "z"}, 1)
    note = impostor.checkpoint()
    node = replace_log(
        fed.material("http://evil.example/"), A, entries=impostor.leaves, checkpoints=(note,)
    )
    report = run(fed, node)
    assert report.first_failure == 1
    assert {f.code for f in errors(report, 1)} >= {"bad_checkpoint_signature", "no_checkpoint"}


def test_trust_round_trip_and_fingerprints(fed: Federation) -> None:
    t = fed.trust()
    d = t.to_dict()
    assert Trust.from_dict(json.loads(json.dumps(d))) == t
    assert d["cities"][0]["vkey"].startswith(A + "+")
    roles = [r for r, _, _ in t.fingerprints()]
    assert roles == ["city", "city", "witness"]
    assert t.log(A) is not None
    assert t.log("nope") is None
    assert len(t.digest()) == 64
    extra = Trust.from_dict({**d, "logs": [{"origin": B, "key": fed.b.pk}], "comment": "x"})
    assert extra.log(B) is not None
    assert [r for r, _, _ in extra.fingerprints()][-1] == "log"


def _bad_trusts(fed: Federation) -> list[tuple[Any, str]]:
    d = fed.trust().to_dict()
    city = d["cities"][0]
    wit = d["witnesses"][0]
    other_vkey = key("x").public_key.to_vkey(A)
    return [
        ([], "trust: must be an object"),
        ({}, "missing field 'format'"),
        ({"format": "v0"}, "trust.format"),
        ({"format": "liquide-trust/v1"}, "must pin an assembly"),
        ({**d, "extra": 1}, "unknown field 'extra'"),
        ({**d, "comment": 3}, "trust.comment"),
        ({"format": "liquide-trust/v1", "assembly": {}}, "trust.assembly: must pin"),
        ({"format": "liquide-trust/v1", "assembly": {"id": "XYZ"}}, "trust.assembly.id"),
        (
            {
                "format": "liquide-trust/v1",
                "assembly": {"id": "a" * 64, "definition": d["assembly"]["definition"]},
            },
            "not the pinned id",
        ),
        (
            {"format": "liquide-trust/v1", "assembly": {"definition": {"type": "assembly"}}},
            "trust.assembly.definition",
        ),
        (
            {"format": "liquide-trust/v1", "assembly": {"definition": fed.area.to_dict()}},
            "must be a signed 'assembly' event",
        ),
        (
            {"format": "liquide-trust/v1", "assembly": {"definition": _badly_signed(fed)}},
            "signature does not verify",
        ),
        (
            {"format": "liquide-trust/v1", "assembly": {"definition": _foreign_assembly(fed)}},
            "not signed by one of its member",
        ),
        ({**d, "cities": [city]}, "trust.cities: differ"),
        ({**d, "witnesses": []}, "trust.k: must be an integer within [0, 0]"),
        ({**d, "k": 0}, "trust.k: differs"),
        ({**d, "grace": 1}, "trust.grace: differs"),
        ({**d, "k": 5}, "trust.k: must be an integer"),
        ({**d, "grace": -1}, "trust.grace: must be"),
        ({**d, "cities": "x"}, "trust.cities: must be an array"),
        ({**d, "cities": [city, city]}, "origins must be unique"),
        ({**d, "witnesses": [wit, wit]}, "names must be unique"),
        ({**d, "logs": [{"origin": B, "key": fed.b.pk}] * 2}, "trust.logs: origins must be unique"),
        ({"format": "liquide-trust/v1", "cities": [city]}, "needs 'k' and 'grace'"),
        (
            {"format": "liquide-trust/v1", "assembly": {"id": "a" * 64}, "grace": 1},
            "come from the definition",
        ),
        ({**d, "cities": [{"origin": A}]}, "needs a 'vkey'"),
        ({**d, "cities": [{"origin": "has space", "key": fed.a.pk}]}, "trust.cities[0].origin"),
        ({**d, "cities": [{"origin": A, "vkey": 3}]}, "trust.cities[0].vkey: must be"),
        ({**d, "cities": [{"origin": A, "vkey": "nonsense"}]}, "trust.cities[0].vkey"),
        (
            {**d, "cities": [{"origin": A, "vkey": fed.c.sk.public_key.to_vkey(C)}]},
            "not the origin",
        ),
        (
            {**d, "cities": [{"origin": A, "vkey": other_vkey, "key": fed.a.pk}]},
            "does not match the vkey",
        ),
        ({**d, "cities": [{"origin": A, "key": "lqpk1nope"}]}, "trust.cities[0].key"),
        ({**d, "witnesses": [{"name": WITNESS}]}, "needs a 'vkey'"),
        ({**d, "witnesses": [{"name": "a b", "key": fed.b.pk}]}, "trust.witnesses[0].name"),
        ({**d, "witnesses": [{"name": WITNESS, "vkey": 1}]}, "trust.witnesses[0].vkey: must be"),
        ({**d, "witnesses": [{"name": WITNESS, "vkey": "bad"}]}, "trust.witnesses[0].vkey"),
        (
            {**d, "witnesses": [{"name": WITNESS, "vkey": fed.b.sk.public_key.to_vkey(WITNESS)}]},
            "0x04",
        ),
        (
            {**d, "witnesses": [{"name": WITNESS, "vkey": _cosigner_vkey("other", fed.b.sk)}]},
            "not 'b.example",
        ),
        (
            {**d, "witnesses": [{"name": WITNESS, "vkey": wit["vkey"], "key": fed.a.pk}]},
            "does not match the vkey",
        ),
    ]


def _cosigner_vkey(name: str, sk: SecretKey) -> str:
    from protocol.checkpoint import cosigner_vkey

    return cosigner_vkey(name, sk.public_key)


def _badly_signed(fed: Federation) -> dict[str, Any]:
    d = fed.assembly.to_dict()
    other = Event.create(key("x"), "assembly", d["body"], 1, None, 0)
    d["sig"] = other.to_dict()["sig"]
    return d


def _foreign_assembly(fed: Federation) -> dict[str, Any]:
    body = fed.assembly.to_dict()["body"]
    return Event.create(key("outsider"), "assembly", body, 1, None, 0).to_dict()


def test_bad_trust_files_name_the_problem(fed: Federation) -> None:
    for value, expected in _bad_trusts(fed):
        with pytest.raises(ValidationError) as info:
            Trust.from_dict(value)
        assert expected in info.value.message, (value, info.value.message)


# --- incremental mode ------------------------------------------------------------------------------


def test_incremental_verifies_only_new_entries() -> None:
    fed = build(seal=False)
    trust = fed.trust()
    first = verify(trust, [fed.material("http://a.example/")], now=OPENS + 60)
    assert first.report.passed
    assert first.report.issues[0].status == "open"
    saved = SavedState.from_dict(json.loads(json.dumps(first.state.to_dict())))
    before = {o: s.range.size for o, s in saved.logs.items()}
    # the federation goes on: seals, attestations
    for log in (fed.a, fed.c):
        log.city("seal", {"issue": fed.issue.id}, CLOSES + 5)
        log.checkpoint(cosigned_at=CLOSES + 20)
    full = build()
    for log in (fed.a, fed.c, fed.b):
        log.city(
            "attest",
            {"record": full.record, "digest": full.digest, "issue": fed.issue.id},
            CLOSES + 30,
        )
        log.checkpoint(cosigned_at=CLOSES + 40)
    node = _incremental(fed, "http://a.example/", before)
    second = verify(trust, [node], now=AFTER, saved=saved)
    r = second.report
    assert r.passed, r.to_text()
    assert r.incremental
    new = sum(len(log.leaves) - before[o] for o, log in fed.logs().items())
    assert r.step(3).counts["entries checked"] == new
    assert r.issues[0].status == "tallied"
    assert r.issues[0].digest == full.digest
    assert r.step(7).counts["attestations agreeing"] == 3
    # a third run with nothing new is quiet and keeps the tally
    third = verify(
        trust,
        [_incremental(fed, "http://a.example/", {o: len(g.leaves) for o, g in fed.logs().items()})],
        now=AFTER,
        saved=second.state,
    )
    assert third.report.passed
    assert "entries checked" not in third.report.step(3).counts
    assert third.report.step(6).counts["issues tallied before (incremental)"] == 1
    assert third.state.tallies == second.state.tallies


def _incremental(fed: Federation, url: str, start: dict[str, int]) -> NodeMaterial:
    logs = {}
    for o, log in fed.logs().items():
        notes = tuple(sc.to_text() for _, sc in sorted(log.checkpoints.items()))
        s = start[o]
        tree = MemoryTree(leaf_hash(x) for x in log.leaves)
        proofs = (ConsistencyProof(s, len(log.leaves), tuple(tree.consistency_proof(s))),)
        logs[o] = LogMaterial(o, notes, log.leaves[s:], s, proofs)
    return NodeMaterial(url, logs)


def test_incremental_refuses_a_log_that_does_not_extend_the_saved_one() -> None:
    fed = build(seal=False)
    trust = fed.trust()
    first = verify(trust, [fed.material("http://a.example/")], now=OPENS + 60)
    saved = first.state
    n = len(fed.a.leaves)
    # A rewrites its history: a different log of a larger size
    other = fork(fed.a, n - 1)
    for i in range(3):
        other.city("enrol", {"key": key(f"r{i}").public_key.to_text(), "ref": f"r{i}"}, CLOSES)
    note = other.checkpoint(cosigned_at=CLOSES)
    tree = MemoryTree(leaf_hash(x) for x in other.leaves)
    node = _incremental(fed, "http://a.example/", {o: len(g.leaves) for o, g in fed.logs().items()})
    node = replace_log(
        node,
        A,
        checkpoints=(note,),
        entries=other.leaves[n:],
        start=n,
        consistency=(ConsistencyProof(n, n + 2, tuple(tree.consistency_proof(n))),),
    )
    report = verify(trust, [node], now=AFTER, saved=saved).report
    assert report.first_failure == 2, report.to_text()
    (f,) = errors(report, 2)
    assert (f.code, f.origin, f.index) == ("not_extending", A, n + 2)
    # and a same-size different root is a split view against the saved checkpoint
    same = fork(fed.a, n - 1)
    same.city("enrol", {"key": key("s").public_key.to_text(), "ref": "s"}, CLOSES)
    node2 = replace_log(
        node, A, checkpoints=(same.checkpoint(),), entries=[], start=n, consistency=()
    )
    report2 = verify(trust, [node2], now=AFTER, saved=saved).report
    assert report2.first_failure == 2
    assert [f.code for f in errors(report2, 2)] == ["split_view"]


def test_saved_state_must_match_the_trust() -> None:
    fed = build(seal=False)
    first = verify(fed.trust(), [fed.material("http://a.example/")])
    other = Trust.from_dict({"format": "liquide-trust/v1", "assembly": {"id": "a" * 64}})
    with pytest.raises(ValidationError, match="another trust"):
        verify(other, [], saved=first.state)


def test_saved_state_validation() -> None:
    fed = build(seal=False)
    good = verify(fed.trust(), [fed.material("http://a.example/")]).state.to_dict()
    assert SavedState.from_dict(good).to_dict() == good
    bad: list[tuple[Any, str]] = [
        ([], "state: must be an object"),
        ({**good, "format": "x"}, "state.format"),
        ({**good, "trust": 1}, "state.trust"),
        ({**good, "logs": []}, "state.logs"),
        ({**good, "tallies": {"i": 1}}, "state.tallies.i"),
        ({**good, "tallies": {"i": {"record": 1, "digest": 2}}}, "hex ids"),
        ({**good, "sealed": {"i": 1}}, "state.sealed.i"),
        ({**good, "sealed": {"i": {A: {"root": "x", "state": {}}}}}, "root"),
        ({**good, "sealed": {"i": {A: []}}}, "root and state"),
        ({**good, "logs": {A: []}}, "checkpoint, range and state"),
        ({**good, "logs": {A: {**good["logs"][A], "checkpoint": 1}}}, "signed checkpoint note"),
        (
            {**good, "logs": {A: {**good["logs"][A], "checkpoint": "x"}}},
            "state.logs.a.example/liquide.checkpoint",
        ),
        (
            {**good, "logs": {A: {**good["logs"][A], "checkpoint": good["logs"][C]["checkpoint"]}}},
            "not the checkpoint of the saved range",
        ),
        (
            {**good, "logs": {A: {**good["logs"][A], "range": good["logs"][C]["range"]}}},
            "different sizes",
        ),
    ]
    for value, expected in bad:
        with pytest.raises(ValidationError) as info:
            SavedState.from_dict(value)
        assert expected in info.value.message, (value, info.value.message)


def test_progress_is_reported(fed: Federation) -> None:
    seen: list[tuple[str, int, int]] = []
    run(
        fed,
        fed.material("http://a.example/"),
        progress=lambda o, d, t: seen.append((o, d, t)),
        chunk=4,
    )
    assert (A, len(fed.a.leaves), len(fed.a.leaves)) in seen
    assert all(d <= t for _, d, t in seen)


def test_unpinned_logs_are_ignored(fed: Federation) -> None:
    stranger = Log("stranger.example/liquide", key("stranger"))
    stranger.city("enrol", {"key": key("q").public_key.to_text(), "ref": "q"}, 1)
    mat = fed.material("http://a.example/")
    logs = dict(mat.logs)
    logs[stranger.origin] = LogMaterial(stranger.origin, (stranger.checkpoint(),), stranger.leaves)
    # a log under the witness's name signed with another key is not the witness's log
    impostor_b = Log(B, key("not-b"))
    impostor_b.city("enrol", {"key": key("q").public_key.to_text(), "ref": "q"}, 1)
    logs[B] = LogMaterial(B, (impostor_b.checkpoint(), "garbage"), impostor_b.leaves)
    report = run(fed, NodeMaterial("http://a.example/", logs))
    assert report.passed, report.to_text()
    assert report.step(1).counts["unpinned logs ignored"] == 1
    assert report.step(1).counts["logs not signed by their witness key"] == 1
    assert report.step(7).counts["attestations agreeing"] == 2


def test_unreplayable_witness_log_with_garbage_checkpoint(fed: Federation) -> None:
    mat = fed.material("http://a.example/")
    report = run(fed, replace_log(mat, B, checkpoints=("garbage",)))
    assert report.passed
    assert any(
        f.code == "malformed_checkpoint" and f.severity == "info" for f in report.step(1).findings
    )


def test_entries_beyond_the_checkpoint_are_counted(fed: Federation) -> None:
    longer = fork(fed.a, len(fed.a.leaves))
    longer.city("enrol", {"key": key("unsigned").public_key.to_text(), "ref": "u"}, AFTER)
    node = replace_log(fed.material("http://a.example/"), A, entries=longer.leaves)
    report = run(fed, node)
    assert report.passed
    assert report.step(4).counts["entries beyond the latest checkpoint (not verified)"] == 1


def test_secondary_view_with_bad_entries_fails_step_4(fed: Federation) -> None:
    entries = list(fed.a.leaves)
    entries[3] = _resign_other(entries[3])
    mirror = replace_log(fed.material("http://mirror.example/"), A, entries=entries)
    report = run(fed, fed.material("http://a.example/"), mirror)
    assert report.first_failure == 4
    assert {(f.code, f.node) for f in errors(report)} == {
        ("root_mismatch", "http://mirror.example/")
    }


def test_city_accepting_an_equivocation_fails_step_3_with_the_proof() -> None:
    fed = build(seal=False)
    a0 = fed.citizens["a0"]
    # a second, different event at a seq a0 already used, appended by A anyway
    other = Event.create(
        a0.sk, "ballot", {"issue": fed.issue.id, "grades": {"no": 1}}, 1, None, OPENS + 9
    )
    fed.a.add(other)
    fed.a.checkpoint(cosigned_at=OPENS + 60)
    report = run(fed, fed.material("http://a.example/"), now=OPENS + 100)
    assert report.first_failure == 3
    (f,) = errors(report)
    assert (f.code, f.origin, f.index, f.event_id) == (
        "equivocation",
        A,
        len(fed.a.leaves) - 1,
        other.id,
    )
    from protocol.chain import EquivocationProof

    EquivocationProof.from_dict(f.proof).verify()
