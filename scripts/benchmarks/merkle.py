"""Merkle log benchmark: compact-range appends, proof generation and proof verification.

* Appends: a log writer's cost per new leaf, through :class:`protocol.merkle.CompactRange`
  (leaf hash of a 200-byte leaf, then the merges; the completed nodes are returned as a store
  would receive them). Its ratio is against raw SHA-256 of 200 bytes per second measured in the
  same run: an append costs one leaf hash plus, on average, one node hash, so ~0.5 is the
  ceiling for any implementation built on the same hash calls.
* Proofs: inclusion and consistency proofs generated over a :class:`MemoryTree` (the same node
  reads a SQLite store would answer), and inclusion proofs verified, at random positions.
* Checkpoints: a cosigned checkpoint parsed and both signatures checked, as a witness or a
  mirror does per checkpoint; the ratio counts two verifies against raw PyNaCl verifies/s.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import Context, Row
from crypto import SecretKey
from protocol.checkpoint import Checkpoint, SignedCheckpoint, cosign, sign_checkpoint
from protocol.merkle import (
    CompactRange,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_inclusion,
)


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs of ``fn()``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(ctx: Context) -> list[Row]:
    n_append = 100_000 if ctx.quick else 1_000_000
    n_tree = 1 << (14 if ctx.quick else 18)
    n_proofs = 2_000 if ctx.quick else 20_000
    leaves = [os.urandom(200) for _ in range(min(n_append, 100_000))]

    def appends() -> None:
        cr = CompactRange()
        append = cr.append
        k = len(leaves)
        for i in range(n_append):
            append(leaf_hash(leaves[i % k]))

    t_append = _best(appends)
    hashed = [leaf_hash(d) for d in leaves]

    def appends_hashed() -> None:
        cr = CompactRange()
        append = cr.append
        k = len(hashed)
        for i in range(n_append):
            append(hashed[i % k])

    t_hashed = _best(appends_hashed)

    tree = MemoryTree(leaf_hash(i.to_bytes(8, "big")) for i in range(n_tree))
    rng = random.Random(7)
    picks = [(rng.randrange(n_tree), rng.randrange(1, n_tree + 1)) for _ in range(n_proofs)]
    incl = [(min(i, s - 1), s) for i, s in picks]
    cons = [(min(a, s), s) for a, s in picks]

    t_incl = _best(lambda: [inclusion_proof(tree, i, s) for i, s in incl], 2)
    t_cons = _best(lambda: [consistency_proof(tree, m, s) for m, s in cons], 2)
    roots = {s: tree.root(s) for _, s in incl}
    proofs = [(tree.leaf(i), i, s, inclusion_proof(tree, i, s), roots[s]) for i, s in incl]
    t_verify = _best(lambda: [verify_inclusion(*p) for p in proofs], 2)

    # A witness's or mirror's per-checkpoint cost: parse the signed note, check the log's
    # signature (one Ed25519 verify, the floor) and one cosignature (a second verify).
    sk, wk = SecretKey(bytes(32)), SecretKey(bytes(range(32)))
    n_notes = 2_000 if ctx.quick else 10_000
    notes = []
    for i in range(n_notes):
        cp = Checkpoint("bench.example/log", i + 1, leaf_hash(i.to_bytes(8, "big")))
        notes.append(sign_checkpoint(cp, sk).with_signature(cosign(cp, "w", wk, i)).to_text())

    def check_notes() -> None:
        for text in notes:
            sc = SignedCheckpoint.parse(text)
            sc.verify("bench.example/log", sk.public_key)
            sc.verify_cosignature("w", wk.public_key)

    t_notes = _best(check_notes, 2)

    sha = ctx.raw.sha256_per_s
    return [
        Row(
            "Merkle appends/s (compact range, 200-byte leaves hashed)",
            n_append / t_append,
            "/s",
            ratio=n_append / t_append / sha,
        ),
        Row(
            "Merkle appends/s (compact range, leaf hashes given)",
            n_append / t_hashed,
            "/s",
            ratio=n_append / t_hashed / sha,
        ),
        Row(
            f"inclusion proofs generated/s (MemoryTree, {n_tree:,} leaves)", n_proofs / t_incl, "/s"
        ),
        Row(
            f"consistency proofs generated/s (MemoryTree, {n_tree:,} leaves)",
            n_proofs / t_cons,
            "/s",
        ),
        Row(
            f"inclusion proofs verified/s (RFC 9162 §2.1.3.2, {n_tree:,} leaves)",
            n_proofs / t_verify,
            "/s",
        ),
        Row(
            "cosigned checkpoints checked/s (parse + 2 verifies)",
            n_notes / t_notes,
            "/s",
            ratio=2 * n_notes / t_notes / ctx.raw.verify_per_s,
        ),
    ]
