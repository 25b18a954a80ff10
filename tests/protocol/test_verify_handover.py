"""The observer across a city's key rotation: it follows the handover from the pinned key,
verifies each checkpoint with the key in effect at its size, and reports the old key's use
after the handover."""

from __future__ import annotations

import pytest

from crypto import SecretKey
from protocol.checkpoint import Checkpoint, SplitViewProof, sign_checkpoint
from protocol.errors import CheckpointError, ProofError
from protocol.events import Event
from protocol.verify import NodeMaterial, verify

from ._events_factory import key
from ._verify_factory import CLOSES, GRACE, OPENS, A, Federation, build
from .test_verify import _incremental, errors, replace_log, run

OLD = key("city-a")
NEW = key("city-a-next")


@pytest.fixture(scope="module")
def fed() -> Federation:
    return build(handover=True)


def handover_index(fed: Federation) -> int:
    return next(i for i, leaf in enumerate(fed.a.leaves) if Event.decode(leaf).type == "handover")


def test_a_record_across_a_handover_passes_from_the_old_pin(fed: Federation) -> None:
    trust = fed.trust()
    assert trust.city(A) is not None
    assert trust.city(A).key == OLD.public_key  # the pin is the key the log started with
    h = handover_index(fed)
    # checkpoints up to the handover leaf are the old key's; from h + 1 on, the new key's
    sizes = sorted(fed.a.checkpoints)
    assert any(n <= h for n in sizes)
    assert any(n > h for n in sizes)
    for n in sizes:
        fed.a.checkpoints[n].verify(A, OLD.public_key if n <= h else NEW.public_key)
    report = run(fed)
    assert report.passed, report.to_text()
    (issue,) = report.issues
    assert issue.status == "tallied"
    assert issue.digest == fed.digest


def _resigned(fed: Federation, size: int, sk: SecretKey) -> NodeMaterial:
    """Node A's material where the checkpoint of ``size`` is signed by ``sk`` instead."""
    node = fed.material("http://a.example/")
    notes = [
        (sign_checkpoint(Checkpoint(A, n, fed.a.root(n)), sk) if n == size else sc).to_text()
        for n, sc in sorted(fed.a.checkpoints.items())
    ]
    return replace_log(node, A, checkpoints=tuple(notes))


def test_a_checkpoint_after_the_handover_signed_by_the_old_key_fails(fed: Federation) -> None:
    h = handover_index(fed)
    after = min(n for n in fed.a.checkpoints if n > h)
    report = run(fed, _resigned(fed, after, OLD), fed.material("http://c.example/"))
    assert not report.passed
    [f] = [f for f in errors(report, 1) if f.origin == A]
    assert f.code == "retired_key"
    assert f.index == after
    assert NEW.public_key.to_text() in f.message  # names the key in effect


def test_a_checkpoint_before_the_handover_signed_by_the_new_key_fails(fed: Federation) -> None:
    h = handover_index(fed)
    before = max(n for n in fed.a.checkpoints if n <= h)
    report = run(fed, _resigned(fed, before, NEW), fed.material("http://c.example/"))
    [f] = [f for f in errors(report, 1) if f.origin == A]
    assert f.code == "checkpoint_key"
    assert f.index == before


def test_a_key_nobody_handed_over_to_is_not_followed(fed: Federation) -> None:
    h = handover_index(fed)
    after = min(n for n in fed.a.checkpoints if n > h)
    report = run(fed, _resigned(fed, after, key("mallory")), fed.material("http://c.example/"))
    codes = {f.code for f in errors(report, 1) if f.origin == A}
    assert codes == {"bad_checkpoint_signature"}


def test_a_city_event_by_the_retired_key_is_a_finding() -> None:
    """A thief holding the old key appends a seal signed by it after the handover; the log
    honestly includes it (the new key signs the checkpoint): replay reports ``retired_key``."""
    fed = build(handover=True, seal=False)
    a = fed.a
    h = handover_index(fed)
    old_head = Event.decode(a.leaves[h])
    forged = Event.create(OLD, "seal", {"issue": fed.issue.id}, old_head.seq + 1, old_head.id, 1)
    a.add(forged)
    a.checkpoint(cosigned_at=CLOSES + 20)
    report = verify(
        fed.trust(), [fed.material("http://a.example/")], now=CLOSES + GRACE + 60
    ).report
    found = [f for f in errors(report) if f.code == "retired_key"]
    assert [(f.step, f.origin, f.index, f.event_id) for f in found] == [
        (5, A, len(a.leaves) - 1, forged.id)
    ]


def test_a_split_view_signed_by_the_old_and_the_new_key_is_proven(fed: Federation) -> None:
    """A thief of the old key signs another history at a size past the handover; the honest
    checkpoint there is the new key's. The proof holds across the two keys of the schedule."""
    h = handover_index(fed)
    after = min(n for n in fed.a.checkpoints if n > h)
    honest = fed.a.checkpoints[after]
    forged = sign_checkpoint(Checkpoint(A, after, fed.a.root(after - 1)), OLD)
    proof = SplitViewProof.of_roots(honest, forged)
    proof.verify(OLD.public_key, NEW.public_key)
    with pytest.raises(ProofError, match="checkpoint"):
        proof.verify(OLD.public_key)
    node = replace_log(
        fed.material("http://thief.example/"), A, checkpoints=(forged.to_text(),), entries=None
    )
    report = run(fed, fed.material("http://a.example/"), fed.material("http://c.example/"), node)
    codes = {f.code for f in errors(report) if f.origin == A}
    assert "split_view" in codes


def test_signer_names_the_key_of_the_schedule_that_signed() -> None:
    cp = Checkpoint(A, 3, b"\x01" * 32)
    sc = sign_checkpoint(cp, NEW)
    assert sc.signer(A, [OLD.public_key, NEW.public_key]) == NEW.public_key
    with pytest.raises(CheckpointError, match=r"none of the 2 keys of a\.example/liquide"):
        sc.signer(A, [OLD.public_key, key("mallory").public_key])
    with pytest.raises(CheckpointError, match="no signature"):
        sc.signer(A, [OLD.public_key])  # one key: the plain error of that key
    with pytest.raises(CheckpointError, match="origin"):
        sc.signer("other.example/liquide", [NEW.public_key])


def test_incremental_verification_follows_a_handover_made_in_between() -> None:
    """Saved before the handover, resumed after it: the saved schedule plus the new entries'
    handover give the new key; a later incremental run starts from the saved new key."""
    fed = build(seal=False)
    trust = fed.trust()
    first = verify(trust, [fed.material("http://a.example/")], now=OPENS + 60)
    assert first.report.passed, first.report.to_text()
    before = {o: s.range.size for o, s in first.state.logs.items()}
    fed.a.hand_over(NEW, OPENS + 60)
    fed.a.city("enrol", {"key": key("late").public_key.to_text(), "ref": "late"}, OPENS + 61)
    fed.a.checkpoint(cosigned_at=OPENS + 70)
    second = verify(
        trust, [_incremental(fed, "http://a.example/", before)], now=OPENS + 80, saved=first.state
    )
    assert second.report.passed, second.report.to_text()
    assert second.state.logs[A].state.city_key == NEW.public_key.to_text()
    # once more, with a checkpoint past the handover signed by the retired key
    size = len(fed.a.leaves)
    fed.a.city("seal", {"issue": fed.issue.id}, CLOSES + 5)
    fed.a.checkpoint(cosigned_at=CLOSES + 20)
    bad = sign_checkpoint(Checkpoint(A, size + 1, fed.a.root(size + 1)), OLD)
    fed.a.checkpoints[size + 1] = bad
    again = {o: s.range.size for o, s in second.state.logs.items()}
    third = verify(
        trust, [_incremental(fed, "http://a.example/", again)], now=CLOSES + 30, saved=second.state
    )
    assert [(f.code, f.index) for f in errors(third.report, 1)] == [("retired_key", size + 1)]
