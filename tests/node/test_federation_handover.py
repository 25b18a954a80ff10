"""Two cities in one simulated federation (STYLE §6): A hands its key over; B, which pins A's
old key, keeps replicating A (following the handover from the entries) and witnessing it (once
it has replicated the handover), and refuses A's retired key after it."""

from __future__ import annotations

from crypto import PublicKey
from node._datadir import load_key
from node._federation import peer_add
from node._registrar import handover
from protocol._witness import format_add_checkpoint
from protocol.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from protocol.events import Event

from .test_federation_harness import Sim
from .test_witness import _post


async def test_b_keeps_replicating_and_witnessing_a_across_its_handover(sim: Sim) -> None:
    a, b = await sim.line(["a", "b"])
    old = load_key(a.node.data_dir)
    await a.enrol_citizen("ann")
    await sim.step(2)
    assert b.checkpoints()[a.origin] == a.checkpoints()[a.origin]
    assert b.fed.trusted_key(a.origin) == old.public_key
    wp = a.fed.pusher.witnesses[b.url]
    assert wp.cosigned == 1  # B witnessed A's log before the handover

    result = await a.admin(handover)
    new = PublicKey.from_text(result["new_key"])
    await a.enrol_citizen("bea")  # signed by the new key
    await sim.checkpoint()
    cp = a.node.reader.latest_checkpoint(a.origin)
    assert cp is not None
    assert cp.size == 3
    SignedCheckpoint.parse(cp.note).verify(a.origin, new)

    # B has not replicated the handover: as a witness it says so (4xx), and cosigns nothing.
    await a.fed.tick()
    assert wp.cosigned == 1
    assert wp.last_error is not None
    assert "403" in wp.last_error
    assert "has not replicated the handover" in wp.last_error

    # B pulls: the checkpoint is signed by a key B does not know yet; B fetches the entries,
    # checks them against its root, replays the handover signed by the pinned key, and keeps it.
    report = await b.fed.sync_peer(a.url)
    assert report.appended == {a.origin: 2}, report.problems
    assert b.checkpoints()[a.origin] == (cp.size, cp.root)
    assert b.fed.pinned_key(a.origin) == old.public_key  # the pin never changes
    assert b.fed.trusted_key(a.origin) == new
    await b.fed.tick()  # B replays its mirror of A
    mirrored = [Event.decode(x) for x in b.node.reader.leaves(a.origin, 0, 3)]
    assert [e.type for e in mirrored] == ["enrol", "handover", "enrol"]
    assert [f for f in b.fed.findings() if f.get("origin") == a.origin] == []

    # Now B witnesses A's new checkpoints again.
    await a.fed.tick()
    assert wp.cosigned == cp.size
    note = SignedCheckpoint.parse(await a.client().checkpoint(a.origin))
    assert note.checkpoint.size == cp.size
    note.verify(a.origin, new)
    note.verify_cosignature(b.origin, b.node.key.public_key)

    # Replication goes on under the new key.
    await a.enrol_citizen("cyd")
    await sim.step(2)
    assert b.checkpoints()[a.origin] == a.checkpoints()[a.origin]
    assert b.checkpoints()[a.origin][0] == 4

    # A thief holding the retired key signs a checkpoint past the handover: B's witness refuses
    # it naming the problem, and B's sync does not keep it.
    size = a.checkpoints()[a.origin][0]
    forged = sign_checkpoint(Checkpoint(a.origin, size + 1, b"\x11" * 32), old)
    resp = await _post(sim, a.url, b.url, format_add_checkpoint(size, [], forged.to_text()))
    assert resp.status == 403
    assert b"a handover retired it" in resp.body
    same_size = sign_checkpoint(Checkpoint(a.origin, size, a.checkpoints()[a.origin][1]), old)
    resp = await _post(sim, a.url, b.url, format_add_checkpoint(size, [], same_size.to_text()))
    assert resp.status == 403


async def test_a_peer_serving_the_retired_keys_history_is_refused(sim: Sim) -> None:
    """A copy of A taken before the handover (a thief holding the old key) goes on signing with
    it; B, which replicated A's handover, refuses that checkpoint as signed by a retired key,
    keeps A's history, and builds no proof from it (a retired key cannot freeze A's mirrors)."""
    a, b = await sim.line(["a", "b"])
    await a.enrol_citizen("ann")
    await sim.step(2)
    thief = await sim.add("thief", twin_of=a)  # same origin and old key, log of 1 leaf
    await a.admin(handover)
    await a.enrol_citizen("bea")
    await sim.step(2)
    assert b.checkpoints()[a.origin][0] == 3
    await thief.enrol_citizen("mal")  # signed by the old key: no handover in the thief's log
    await sim.checkpoint()
    await b.admin(peer_add, thief.url, thief.origin, thief.vkey)
    report = await b.fed.sync_peer(thief.url)
    assert report.appended == {}
    assert any(p.startswith("retired_key:") and "a handover retired" in p for p in report.problems)
    assert b.checkpoints()[a.origin] == a.checkpoints()[a.origin]
    assert b.node.reader.proofs() == []
