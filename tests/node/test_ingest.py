"""node/ingest.py: the single writer — decisions, one transaction per group, receipts, restarts."""

from __future__ import annotations

import asyncio
import base64
import sqlite3

import pytest

from crypto import BadSignatureError
from node._node import Node
from node.errors import (
    IntegrityError,
    SeqUsedError,
    StoreError,
    UnavailableError,
    UnknownAuthorError,
)
from node.ingest import Accepted, Ingest, Submission, VerifyPool, _BatchTree
from protocol.checkpoint import BatchedReceipt, Receipt, SignedCheckpoint, parse_receipt
from protocol.merkle import (
    MemoryTree,
    inclusion_proof,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
)
from protocol.state import replay


def submit(node: Node, *events) -> list:
    return node.writer.process([Submission(leaf=e.encode()) for e in events])


def test_receipts_are_deterministic_protocol_receipts(civic) -> None:
    c = civic()
    ev = c.citizens[0].delegate("area", c.area, [c.citizens[1].pk])
    (acc,) = submit(c.node, ev)
    assert isinstance(acc, Accepted)
    assert acc.new
    receipt = Receipt.from_dict(acc.receipt)
    receipt.verify(c.node.key.public_key)
    assert receipt.time == int(c.node.clock())
    again = c.node.writer.receipt(ev.id)
    assert again is not None
    assert again.receipt == acc.receipt
    (repeat,) = submit(c.node, ev)
    assert repeat.receipt == acc.receipt
    assert not repeat.new


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 8, 13, 32, 33, 100, 1000])
def test_batch_tree_paths_are_the_protocol_inclusion_proofs(n: int) -> None:
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(n)]
    tree = _BatchTree(hashes)
    reference = MemoryTree(hashes)
    assert tree.root == root_from_leaves(hashes)
    for k in range(n):
        proof = inclusion_proof(reference, k, n)
        assert tree.path(k) == [base64.b64encode(h).decode() for h in proof]


def test_batch_receipts_survive_a_restart_and_cover_only_new_leaves(civic) -> None:
    """A batch group signs once over its new leaves; after a restart the same receipts come
    back, and a repeat in a later batch keeps its first receipt (no new batch covers it)."""
    c = civic()
    w = c.node.writer
    evs = [c.citizens[i].delegate("area", c.area, []) for i in range(3)]
    first = w.size
    out = w.process([Submission(leaf=e.encode()) for e in evs], batch=True)
    receipts = [o.receipt for o in out if isinstance(o, Accepted)]
    assert len(receipts) == 3
    for ev, doc in zip(evs, receipts, strict=True):
        r = parse_receipt(doc)
        assert isinstance(r, BatchedReceipt)
        r.verify(c.node.key.public_key, leaf=ev.encode())
        assert (r.batch.first, r.batch.count) == (first, 3)
    more = c.citizens[0].event("revoke", {"scope": "area", "target": c.area})
    again = w.process(
        [Submission(leaf=evs[1].encode()), Submission(leaf=more.encode())], batch=True
    )
    assert isinstance(again[0], Accepted)
    assert not again[0].new
    assert again[0].receipt == receipts[1]
    assert isinstance(again[1], Accepted)
    assert parse_receipt(again[1].receipt).batch.count == 1  # type: ignore[union-attr]
    data = c.node.data_dir
    c.node.close()
    node = Node.open(data, clock=c.node.clock)
    try:
        for ev, doc in zip(evs, receipts, strict=True):
            got = node.writer.receipt(ev.id)
            assert got is not None
            assert got.receipt == doc
    finally:
        node.close()


def test_a_batch_statement_that_cannot_be_stored_takes_its_leaves_back(civic, monkeypatch) -> None:
    """The batch statement is stored in the transaction of its leaves: if storing it fails,
    nothing of the group is stored and no receipt is given."""
    c = civic()
    w = c.node.writer
    size, root = w.size, c.node.store.log(c.node.origin).compact_range().root()
    evs = [c.citizens[i].delegate("area", c.area, []) for i in range(3)]

    def refuse(row: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(c.node.store, "add_batch", refuse)
    with pytest.raises(StoreError, match="disk I/O error"):
        w.process([Submission(leaf=e.encode()) for e in evs], batch=True)
    assert w.size == size
    assert c.node.store.log(c.node.origin).compact_range().root() == root
    assert all(c.node.store.locate(c.node.origin, e.id) is None for e in evs)
    monkeypatch.undo()
    out = w.process([Submission(leaf=e.encode()) for e in evs], batch=True)
    assert [o.index for o in out if isinstance(o, Accepted)] == [size, size + 1, size + 2]


def test_a_group_is_decided_in_order(civic, author) -> None:
    c = civic()
    a = c.citizens[0]
    e1 = a.delegate("area", c.area, [])
    e2 = a.delegate("area", c.area, [c.citizens[1].pk])
    stranger = author("x").delegate("area", c.area, [])
    out = submit(c.node, e1, e2, e1, stranger)
    assert [type(o) for o in out] == [Accepted, Accepted, Accepted, UnknownAuthorError]
    assert out[2].index == out[0].index
    assert not out[2].new
    assert out[1].index == out[0].index + 1


def test_city_events_need_the_city_key(civic, author) -> None:
    c = civic()
    fake = author("mayor").event("enrol", {"key": author("y").pk, "ref": "r"})
    (out,) = submit(c.node, fake)
    assert isinstance(out, UnknownAuthorError)
    assert "this city's key" in out.message


def test_used_seq_names_the_head(civic) -> None:
    c = civic()
    a = c.citizens[0]
    first = a.delegate("area", c.area, [])
    submit(c.node, first)
    a.seq, a.prev = 0, None
    (out,) = submit(c.node, a.delegate("area", c.area, [c.citizens[1].pk]))
    assert isinstance(out, SeqUsedError)
    assert (out.head_seq, out.head_id) == (1, first.id)


def test_a_failed_transaction_stores_nothing_and_reloads(civic) -> None:
    c = civic()
    w = c.node.writer
    size = w.size
    w.hooks.append(lambda store, accepted: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(StoreError, match="disk full"):
        submit(c.node, c.citizens[0].delegate("area", c.area, []))
    assert w.size == size == c.node.store.log(c.node.origin).size
    w.hooks.clear()
    c.citizens[0].seq, c.citizens[0].prev = 0, None
    (ok,) = submit(c.node, c.citizens[0].delegate("area", c.area, []))
    assert isinstance(ok, Accepted)
    assert ok.index == size


def test_checkpoints_extend_each_other_across_restarts(civic, clock) -> None:
    c = civic()
    node = c.node
    data = node.data_dir
    submit(node, *(p.delegate("area", c.area, []) for p in c.citizens))
    first = node.writer.sign_checkpoint()
    assert first is not None
    assert node.writer.sign_checkpoint() is None  # no growth, no new checkpoint
    node.close()
    node = Node.open(data, clock=clock)
    submit(node, *(p.delegate("area", c.area, [c.citizens[0].pk]) for p in c.citizens[1:]))
    second = node.writer.sign_checkpoint()
    assert second is not None
    assert second.size == first.size + 2
    pk = node.key.public_key
    old = SignedCheckpoint.parse(first.note).verify(node.origin, pk)
    new = SignedCheckpoint.parse(second.note).verify(node.origin, pk)
    proof = node.store.consistency_proof(node.origin, old.size, new.size)
    verify_consistency(old.size, new.size, old.root, new.root, proof)
    node.close()


def test_restart_refuses_a_log_that_breaks_a_signed_checkpoint(civic, clock) -> None:
    c = civic()
    node, data = c.node, c.node.data_dir
    node.writer.sign_checkpoint()
    size = node.writer.size
    node.close()
    conn = sqlite3.connect(data / "node.db")
    conn.execute("UPDATE entries SET leaf = CAST('x' AS BLOB) WHERE idx = 1")
    conn.commit()
    with pytest.raises(IntegrityError, match="entry 1"):
        Node.open(data, clock=clock)
    # Losing the tail that a checkpoint covers (a disk that lied about fsync) is caught too.
    conn.execute("DELETE FROM entries WHERE idx = ?", (size - 1,))
    conn.commit()
    conn.close()
    with pytest.raises(IntegrityError):
        Node.open(data, clock=clock)


def test_snapshot_reload_equals_a_full_replay(civic, clock) -> None:
    c = civic()
    node, data = c.node, c.node.data_dir
    submit(node, *(p.delegate("area", c.area, []) for p in c.citizens))
    node.writer.save_snapshot()
    submit(node, c.citizens[0].ballot(c.issue, {"yes": 2}))
    node.close()
    node = Node.open(data, clock=clock)
    leaves = node.store.leaves(node.origin, 0, node.writer.size)
    full = replay(node.origin, node.writer.city, leaves)
    assert full.findings == ()
    assert node.writer.state.to_dict() == full.state.to_dict()
    node.close()


def test_issues_are_sealed_at_their_close(civic, clock) -> None:
    c = civic()
    w = c.node.writer
    assert w.seal_due() == []
    clock.advance(3600)
    (seal,) = w.seal_due()
    assert c.issue in w.state.seals
    assert w.state.seals[c.issue] == seal.index
    assert w.seal_due() == []
    row = c.node.store.conn.execute(
        "SELECT sealed_idx FROM issues WHERE id = ?", (c.issue,)
    ).fetchone()
    assert row[0] == seal.index


def test_a_group_is_verified_on_two_threads_and_forgeries_are_refused(civic, monkeypatch) -> None:
    import node.ingest
    from protocol.events import Event

    paired: list[int] = []
    real = node.ingest._verify_on_two_threads

    def spy(subs):
        paired.append(len(subs))
        real(subs)
        # The marks are the check's own: a forgery stays unmarked, in either half.
        assert [s.verified for s in subs] == [i not in (1, 9) for i in range(len(subs))]

    monkeypatch.setattr(node.ingest, "_verify_on_two_threads", spy)

    c = civic(citizens=12, verify_workers=0)
    assert c.node.writer.pool is None
    evs = [p.delegate("area", c.area, []) for p in c.citizens]
    subs = [Submission(leaf=e.encode()) for e in evs]
    for i in (1, 9):  # one forgery in each half of the group
        forged = evs[i].to_dict()
        forged["sig"] = evs[i + 1].to_dict()["sig"]
        subs[i] = Submission(leaf=Event.from_dict(forged).encode())
    subs.append(Submission(leaf=b"{not json"))  # a leaf that does not decode: not verified
    out = c.node.writer.process(subs)
    kinds = [type(o).__name__ for o in out]
    assert kinds[1] == kinds[9] == "BadSignatureError"
    assert kinds[12] == "EncodingError"
    assert [k for i, k in enumerate(kinds) if i not in (1, 9, 12)] == ["Accepted"] * 10
    assert c.node.writer.size == c.node.store.log(c.node.origin).size
    assert paired == [12]


def test_the_pool_verifies_large_batches(civic) -> None:
    c = civic(citizens=4, verify_workers=2, pool_threshold=2)
    c.node.writer.pool = VerifyPool(2, chunk=1)
    evs = [p.delegate("area", c.area, []) for p in c.citizens]
    forged = evs[2].to_dict()
    forged["sig"] = evs[1].to_dict()["sig"]
    from protocol.events import Event

    subs = [Submission(leaf=e.encode()) for e in evs]
    subs[2] = Submission(leaf=Event.from_dict(forged).encode())
    try:
        out = c.node.writer.process(subs)
    finally:
        c.node.writer.pool.close()
    assert [type(o) for o in out] == [Accepted, Accepted, BadSignatureError, Accepted]


async def test_writer_errors_reach_their_callers_and_a_dead_writer_refuses_work(civic) -> None:
    c = civic(citizens=2)
    ingest = Ingest(c.node.writer)
    ingest.start()

    class Halt(BaseException):
        pass

    def fail() -> None:
        raise ValueError("group failed")

    def halt() -> None:
        raise Halt

    try:
        with pytest.raises(ValueError, match="group failed"):
            await ingest.call(fail)
        # An ordinary error fails only its own group: the writer goes on.
        first = await ingest.submit(c.citizens[0].delegate("area", c.area, []).encode())
        assert first.new
        # A BaseException stops the writer: its group and the work queued behind it fail, and
        # later work is refused instead of waiting forever.
        halted = asyncio.ensure_future(ingest.call(halt))
        behind = asyncio.ensure_future(ingest.call(lambda: c.node.writer.size))
        with pytest.raises(StoreError, match="the writer stopped"):
            await halted
        with pytest.raises(UnavailableError):
            await behind
        with pytest.raises(UnavailableError):
            await ingest.submit(c.citizens[1].delegate("area", c.area, []).encode())
    finally:
        await ingest.stop()


async def test_a_dead_writer_fails_the_work_it_had_taken_ahead(civic, monkeypatch) -> None:
    import threading

    c = civic(citizens=1)
    ingest = Ingest(c.node.writer)
    ingest.start()

    class Halt(BaseException):
        pass

    def process(*args, **kwargs):
        raise Halt

    gate = threading.Event()
    try:
        held = asyncio.ensure_future(ingest.call(gate.wait))  # the writer waits here...
        await asyncio.sleep(0)
        monkeypatch.setattr(c.node.writer, "process", process)
        # ... while a submission and a call queue behind: the writer takes the call along
        # with the submission's group (to run next), then the group's append dies.
        sub = asyncio.ensure_future(
            ingest.submit(c.citizens[0].delegate("area", c.area, []).encode())
        )
        after = asyncio.ensure_future(ingest.call(lambda: "ran"))
        await asyncio.sleep(0)
        gate.set()
        assert await held is True
        with pytest.raises(StoreError, match="the writer stopped"):
            await sub
        with pytest.raises(UnavailableError, match="writer has stopped"):
            await asyncio.wait_for(after, 10)
    finally:
        gate.set()
        await ingest.stop()


async def test_concurrent_submissions_share_groups(civic) -> None:
    c = civic(citizens=40)
    ingest = Ingest(c.node.writer)
    ingest.start()
    try:
        evs = [p.delegate("area", c.area, []) for p in c.citizens]
        out = await asyncio.gather(*(ingest.submit(e.encode()) for e in evs))
        assert len({o.index for o in out}) == 40
        assert ingest.groups < 40
        own = await ingest.append_own("area", {"assembly": c.assembly, "name": "Housing"})
        assert own.index == c.node.writer.size - 1
        assert await ingest.call(lambda: c.node.writer.size) == own.index + 1
    finally:
        await ingest.stop()
