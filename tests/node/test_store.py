"""node/store.py: durability settings, the single-writer lock, the tree and its proofs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import IntegrityError, LockedError, NotFoundError, StoreError
from node.store import MIGRATIONS, LeafRow, Store
from protocol.merkle import (
    MemoryTree,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

ORIGIN = "test.example/log"


def _store(path: Path) -> Store:
    s = Store.open(path, writer=True, create=True)
    with s.atomic():
        s.ensure_log(ORIGIN, own=True, vkey=None)
    return s


def _rows(start: int, n: int) -> list[LeafRow]:
    return [
        LeafRow(hashlib.sha256(b"%d" % i).hexdigest(), b"leaf %d" % i)
        for i in range(start, start + n)
    ]


def test_wal_and_synchronous_full(tmp_path: Path) -> None:
    s = _store(tmp_path)
    try:
        assert s.pragma("journal_mode") == "wal"
        assert s.pragma("synchronous") == 2  # FULL: a commit is on disk when it returns
        # Above one large batch's commit, so that a commit rarely also runs a checkpoint.
        assert s.pragma("wal_autocheckpoint") == 20_000  # SQLite's default is 1,000
        r = s.reader()
        assert r.pragma("synchronous") == 2
        assert r.pragma("query_only") == 1
        r.close()
    finally:
        s.close()


def test_one_writer_per_directory(tmp_path: Path) -> None:
    s = _store(tmp_path)
    with pytest.raises(LockedError, match=r"pid \d+"):
        Store.open(tmp_path, writer=True)
    reader = Store.open(tmp_path, writer=False)  # readers take no lock
    reader.close()
    s.close()
    Store.open(tmp_path, writer=True).close()  # released on close


def test_missing_database_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path, writer=True)


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    _store(tmp_path).close()
    s = Store.open(tmp_path, writer=True)
    assert MIGRATIONS.pending(s.db) == []
    assert [m.name for m in MIGRATIONS.applied(s.db)] == [
        "m001_logs",
        "m002_governance",
        "m003_event_key",
        "m004_batches",
    ]
    s.close()


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    s = _store(tmp_path)
    with pytest.raises(RuntimeError), s.atomic():
        s.append_leaves(ORIGIN, _rows(0, 5))
        raise RuntimeError("crash in the middle")
    info = s.log(ORIGIN)
    assert info is not None
    assert info.size == 0
    assert s.conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0
    assert s.conn.execute("SELECT COUNT(*) FROM nodes").fetchone()[0] == 0
    with pytest.raises(StoreError, match="inside a transaction"):
        s.append_leaves(ORIGIN, _rows(0, 1))
    s.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_proofs_from_stored_nodes_verify(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int]
) -> None:
    s = _store(tmp_path_factory.mktemp("store"))
    mem = MemoryTree()
    sizes = []
    for n in batches:
        rows = _rows(mem.size, n)
        with s.atomic():
            s.append_leaves(ORIGIN, rows)
        for r in rows:
            mem.append_data(r.leaf)
        sizes.append(mem.size)
    size = mem.size
    info = s.log(ORIGIN)
    assert info is not None
    assert info.size == size
    assert info.root() == mem.root()
    assert s.root_at(ORIGIN, size) == root_from_leaves(
        [leaf_hash(x) for x in s.leaves(ORIGIN, 0, size)]
    )
    for old in sizes:
        proof = s.consistency_proof(ORIGIN, old, size)
        verify_consistency(old, size, mem.root(old), mem.root(), proof)
        for idx in {0, old - 1, size - 1}:
            verify_inclusion(
                mem.leaf(idx),
                idx,
                old if idx < old else size,
                s.inclusion_proof(ORIGIN, idx, old if idx < old else size),
                mem.root(old if idx < old else size),
            )
    s.verify_log(ORIGIN)
    s.close()


def test_verify_log_finds_tampering(tmp_path: Path) -> None:
    s = _store(tmp_path)
    with s.atomic():
        cr = s.append_leaves(ORIGIN, _rows(0, 10))
        s.add_checkpoint(ORIGIN, 10, cr.root(), "note", 0)
    s.verify_log(ORIGIN)
    s.conn.execute("UPDATE entries SET leaf = ? WHERE origin = ? AND idx = 3", (b"forged", ORIGIN))
    with pytest.raises(IntegrityError, match="entry 3 does not match its leaf hash"):
        s.verify_log(ORIGIN)
    s.conn.execute(
        "UPDATE entries SET leaf = ?, leaf_hash = ? WHERE origin = ? AND idx = 3",
        (b"forged", leaf_hash(b"forged"), ORIGIN),
    )
    with pytest.raises(IntegrityError, match="do not extend the checkpoint of size 10"):
        s.verify_log(ORIGIN)
    s.close()


def test_a_checkpoint_beyond_the_leaves_is_an_integrity_error(tmp_path: Path) -> None:
    s = _store(tmp_path)
    with s.atomic():
        cr = s.append_leaves(ORIGIN, _rows(0, 3))
        s.add_checkpoint(ORIGIN, 3, cr.root(), "n", 0)
        s.add_checkpoint(ORIGIN, 5, b"\x00" * 32, "n", 0)
    with pytest.raises(IntegrityError, match="size 5 was signed but only 3"):
        s.verify_log(ORIGIN)
    with pytest.raises(IntegrityError, match="another root"):
        s.add_checkpoint(ORIGIN, 3, b"\x01" * 32, "n", 0)
    s.close()


def test_reads_are_bounded_and_named(tmp_path: Path) -> None:
    s = _store(tmp_path)
    with s.atomic():
        s.append_leaves(ORIGIN, _rows(0, 4))
    assert s.leaves(ORIGIN, 2, 100) == [b"leaf 2", b"leaf 3"]
    assert s.find_event(ORIGIN, hashlib.sha256(b"2").hexdigest()) == 2
    with pytest.raises(NotFoundError):
        s.leaf(ORIGIN, 4)
    with pytest.raises(NotFoundError, match="holds 4 entries, not 5"):
        s.inclusion_proof(ORIGIN, 0, 5)
    with pytest.raises(NotFoundError, match="no log"):
        s.root_at("other.example", 0)
    s.close()


def test_peers_and_proofs(tmp_path: Path) -> None:
    s = _store(tmp_path)
    s.add_peer("http://b.example/", "b.example", "b.example+00000000+AA")
    s.set_peer_cursor("http://b.example/", {"b.example": 7}, ok_at=5)
    assert s.peers()[0]["cursor"] == {"b.example": 7}
    assert s.add_proof("ab" * 32, "split-view", "b.example", {"x": 1}, 3)
    assert not s.add_proof("ab" * 32, "split-view", "b.example", {"x": 1}, 3)
    assert s.proofs()[0]["proof"] == {"x": 1}
    assert s.remove_peer("http://b.example/")
    s.close()
