"""Tests of protocol/merkle.py: RFC 6962/9162 reference vectors, an exhaustive sweep of small
trees against a literal transcription of the RFC's recursive definitions, tampering, and a
hypothesis sweep of trees up to 100,000 leaves.

The reference data (leaves, roots, inclusion and consistency proofs of the 8-leaf tree) is the
one Certificate Transparency implementations test against; it is copied from
transparency-dev/merkle ``proof/verify_test.go`` (formerly google/trillian ``merkle``), where the
inclusion vectors number leaves from 1.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import ProofError, ValidationError
from protocol.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_at,
    root_from_inclusion,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# --- transparency-dev/merkle proof/verify_test.go ------------------------------------------------

RFC_LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
RFC_ROOTS = [  # roots of the trees of sizes 1..8
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
RFC_INCLUSION = [  # (1-based leaf number, tree size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
RFC_CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


@functools.cache
def rfc_tree() -> MemoryTree:
    return MemoryTree(leaf_hash(d) for d in RFC_LEAVES)


# --- the RFC's recursive definitions, transcribed literally, as an independent oracle ---------


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], b=False), mth(d[:k])]


def data(i: int) -> bytes:
    return b"leaf %d" % i


SMALL = 64


@functools.cache
def small_tree() -> MemoryTree:
    return MemoryTree(leaf_hash(data(i)) for i in range(SMALL))


# --- hashing --------------------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaves([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT


def test_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    t = MemoryTree()
    assert (t.append_data(b"a"), t.append_data(b"b")) == (0, 1)
    assert t.root() == node_hash(a, b)
    assert leaf_hashes([b"x", b"", b"a"]) == [
        hashlib.sha256(b"\x00x").digest(),
        hashlib.sha256(b"\x00").digest(),
        a,
    ]
    assert leaf_hashes(iter(())) == []


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    tree = rfc_tree()
    leaves = [leaf_hash(d) for d in RFC_LEAVES[:size]]
    assert root_from_leaves(leaves) == RFC_ROOTS[size - 1]
    assert tree.root(size) == RFC_ROOTS[size - 1]
    assert root_at(tree, size) == RFC_ROOTS[size - 1]
    cr = CompactRange()
    cr.extend(leaves)
    assert cr.root() == RFC_ROOTS[size - 1]


# --- the published proofs --------------------------------------------------------------------


def corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """The probes of transparency-dev's corruptInclusionProof, each of which must fail."""
    probes = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, root, leaf_hash(b"WrongLeaf"), proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, root, leaf, bad))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


@pytest.mark.parametrize(("number", "size", "proof"), RFC_INCLUSION)
def test_reference_inclusion_proofs(number: int, size: int, proof: list[bytes]) -> None:
    index = number - 1
    leaf = leaf_hash(RFC_LEAVES[index])
    root = RFC_ROOTS[size - 1]
    assert inclusion_proof(rfc_tree(), index, size) == proof
    assert root_from_inclusion(leaf, index, size, proof) == root
    verify_inclusion(leaf, index, size, proof, root)
    for i, s, r, lf, p in corrupt_inclusion(index, size, proof, root, leaf):
        with pytest.raises(ProofError):
            verify_inclusion(lf, i, s, p, r)


def corrupt_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]):
    """The probes of transparency-dev's corruptConsistencyProof, each of which must fail."""
    probes = [
        (size1 - 1, size2, root1, root2, proof),
        (size1 + 1, size2, root1, root2, proof),
        (size1 ^ 2, size2, root1, root2, proof),
        (size1, size2 * 2, root1, root2, proof),
        (size1, size2 // 2, root1, root2, proof),
        (size1, size2, b"WrongRoot", root2, proof),
        (size1, size2, root1, b"WrongRoot", proof),
        (size1, size2, SOME_HASH, root2, proof),
        (size1, size2, root1, SOME_HASH, proof),
        (size1, size2, root2, root1, proof),
        (size1, size2, root1, root2, []),
        (size1, size2, root1, root2, [*proof, b""]),
        (size1, size2, root1, root2, [*proof, root1]),
        (size1, size2, root1, root2, [*proof, root2]),
        (size1, size2, root1, root2, [b"", *proof]),
        (size1, size2, root1, root2, [root1, *proof]),
        (size1, size2, root1, root2, [root2, *proof]),
        (size1, size2, root1, root2, [proof[0], *proof]),
        (size1, size2, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((size1, size2, root1, root2, bad))
    return probes


@pytest.mark.parametrize(("size1", "size2", "proof"), RFC_CONSISTENCY)
def test_reference_consistency_proofs(size1: int, size2: int, proof: list[bytes]) -> None:
    root1, root2 = RFC_ROOTS[size1 - 1], RFC_ROOTS[size2 - 1]
    assert consistency_proof(rfc_tree(), size1, size2) == proof
    verify_consistency(size1, size2, root1, root2, proof)
    if proof:
        for s1, s2, r1, r2, p in corrupt_consistency(size1, size2, root1, root2, proof):
            with pytest.raises(ProofError):
                verify_consistency(s1, s2, r1, r2, p)


def test_reference_trivial_consistency_cases() -> None:
    r1, r2 = RFC_ROOTS[0], RFC_ROOTS[1]
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 1, EMPTY_ROOT, r1, [])
    verify_consistency(1, 1, r2, r2, [])
    bad = [
        (0, 0, r1, r2, []),  # equal sizes, different roots
        (1, 1, r1, r2, []),
        (0, 1, r1, r2, []),  # the empty tree's root is fixed
        (1, 0, r1, r2, []),  # time travel to the past
        (2, 1, r1, r2, []),
        (1, 2, r1, r2, []),  # empty proof between different sizes
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),  # trivial cases need an empty proof
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
    ]
    for s1, s2, a, b, p in bad:
        with pytest.raises(ProofError):
            verify_consistency(s1, s2, a, b, p)


def test_reference_single_entry_inclusion() -> None:
    leaf = leaf_hash(b"data")
    verify_inclusion(leaf, 0, 1, [], leaf)
    for lf, root in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(lf, 0, 1, [], root)
    for index, size in [(0, 0), (1, 0), (2, 1), (1, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


# --- exhaustive sweep of small trees -----------------------------------------------------------


def test_generation_matches_the_rfc_definitions_for_every_small_tree() -> None:
    tree = small_tree()
    d = [data(i) for i in range(SMALL)]
    cr = CompactRange()
    for n in range(SMALL + 1):
        assert cr.root() == mth(d[:n]) == tree.root(n) == root_at(tree, n)
        assert CompactRange.from_reader(tree, n) == cr
        for m in range(n):
            assert inclusion_proof(tree, m, n) == path(m, d[:n])
        for m in range(1, n):
            assert consistency_proof(tree, m, n) == subproof(m, d[:n], b=True)
        assert consistency_proof(tree, 0, n) == []
        assert consistency_proof(tree, n, n) == []
        if n < SMALL:
            cr.append(leaf_hash(d[n]))


def flip(p: bytes, at: int = 0) -> bytes:
    return p[:at] + bytes([p[at] ^ 1]) + p[at + 1 :]


def _neighbours(x: int, n: int) -> list[int]:
    """Values near ``x`` that differ from it: ±1 and every single-bit flip up to above ``n``."""
    near = {x - 1, x + 1, *(x ^ (1 << b) for b in range(n.bit_length() + 1))}
    return sorted(v for v in near if v >= 0 and v != x)


def tampered_inclusions(leaf: bytes, index: int, size: int, proof: list[bytes], roots: list[bytes]):
    root = roots[size]
    yield leaf, index, size, proof, flip(root)
    yield flip(leaf, 31), index, size, proof, root
    for i in range(len(proof)):
        at = i % HASH_SIZE  # a different byte position for each node
        yield leaf, index, size, [*proof[:i], flip(proof[i], at), *proof[i + 1 :]], root
        yield leaf, index, size, proof[:i] + proof[i + 1 :], root  # drop a node
    for i in range(len(proof) + 1):
        yield leaf, index, size, [*proof[:i], SOME_HASH, *proof[i:]], root  # add a node
    for j in _neighbours(index, size):
        yield leaf, j, size, proof, root  # wrong index
    # Wrong size. The path only depends on the shape of the tree along it, so the proof also
    # "verifies" against the same root under any size of the same shape: it is the signed
    # checkpoint that binds a root to its size. What must fail is claiming another size with
    # that size's real root, or a size of another shape.
    for s in _neighbours(size, size):
        if s < len(roots):
            yield leaf, index, s, proof, roots[s]
    yield leaf, index, size * 2, proof, root
    yield leaf, index, size // 2, proof, root


def test_every_inclusion_proof_up_to_64_verifies_and_no_tampering_does() -> None:
    tree = small_tree()
    roots = [tree.root(n) for n in range(SMALL + 1)]
    for n in range(1, SMALL + 1):
        for m in range(n):
            leaf = tree.leaf(m)
            proof = tree.inclusion_proof(m, n)
            verify_inclusion(leaf, m, n, proof, roots[n])
            for args in tampered_inclusions(leaf, m, n, proof, roots):
                with pytest.raises(ProofError):
                    verify_inclusion(*args)


def tampered_consistencies(m: int, n: int, roots: list[bytes], proof: list[bytes]):
    r1, r2 = roots[m], roots[n]
    yield m, n, flip(r1), r2, proof
    if m == 0:
        # Every tree extends the empty one: only the empty root and an empty proof matter.
        yield m, n, r1, r2, [SOME_HASH]
        yield 1, n, r1, r2, proof
        return
    yield m, n, r1, flip(r2), proof
    yield m, n, r2, r1, proof
    for i in range(len(proof)):
        at = (i * 7) % HASH_SIZE
        yield m, n, r1, r2, [*proof[:i], flip(proof[i], at), *proof[i + 1 :]]
        yield m, n, r1, r2, proof[:i] + proof[i + 1 :]
    for i in range(len(proof) + 1):
        yield m, n, r1, r2, [*proof[:i], SOME_HASH, *proof[i:]]
    # Wrong sizes: claim other sizes with their real roots, or sizes of another shape with the
    # same roots (as for inclusion, the signed checkpoint is what binds a root to its size).
    for s in _neighbours(m, n):
        yield s, n, roots[s] if s <= n else r1, r2, proof
    for s in _neighbours(n, n):
        if s < len(roots):
            yield m, s, r1, roots[s], proof
    yield m, n * 2, r1, r2, proof
    yield m * 2, n, r1, r2, proof
    yield m // 2, n, r1, r2, proof


def test_every_consistency_proof_up_to_64_verifies_and_no_tampering_does() -> None:
    tree = small_tree()
    roots = [tree.root(n) for n in range(SMALL + 1)]

    def honest(s1: int, s2: int, r1: bytes, r2: bytes, p: list[bytes]) -> bool:
        return (
            s1 <= s2 <= SMALL
            and (r1, r2) == (roots[s1], roots[s2])
            and p == tree.consistency_proof(s1, s2)
        )

    for n in range(SMALL + 1):
        for m in range(n + 1):
            proof = tree.consistency_proof(m, n)
            verify_consistency(m, n, roots[m], roots[n], proof)
            for args in tampered_consistencies(m, n, roots, proof):
                try:
                    verify_consistency(*args)
                except ProofError:
                    continue
                # Accepted: only right if the altered claim is an honest one after all.
                assert honest(*args), f"tampered proof accepted for sizes {args[:2]}"


# --- hypothesis sweep up to 100,000 leaves ------------------------------------------------------

BIG = 100_000


@functools.cache
def big_tree() -> MemoryTree:
    # Built once: a complete subtree's hash never changes as the tree grows, so the nodes of
    # this tree serve every size up to BIG.
    return MemoryTree(leaf_hash(i.to_bytes(4, "big")) for i in range(BIG))


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, BIG))
    return n, draw(st.integers(0, n - 1))


@settings(max_examples=150, deadline=None)
@given(size_and_index(), st.data())
def test_random_inclusion_proofs_in_large_trees(ni: tuple[int, int], dd: st.DataObject) -> None:
    n, i = ni
    tree = big_tree()
    root = tree.root(n)
    assert root == CompactRange.from_reader(tree, n).root()
    proof = tree.inclusion_proof(i, n)
    leaf = tree.leaf(i)
    verify_inclusion(leaf, i, n, proof, root)
    # Tamper in one way: flip a byte, drop or add a node, or claim another index, size or leaf.
    how = dd.draw(st.sampled_from(["flip", "drop", "add", "index", "size", "leaf"]))
    bad = list(proof)
    if how == "flip" and proof:
        k = dd.draw(st.integers(0, len(proof) - 1))
        bad[k] = flip(proof[k], dd.draw(st.integers(0, 31)))
    elif how == "drop" and proof:
        del bad[dd.draw(st.integers(0, len(proof) - 1))]
    elif how == "index":
        i = dd.draw(st.integers(0, BIG).filter(lambda j: j != ni[1]))
    elif how == "size":
        # Another size with that size's real root (see tampered_inclusions).
        n = dd.draw(st.integers(1, BIG).filter(lambda s: s != ni[0]))
        root = tree.root(n)
    elif how == "leaf":
        leaf = tree.leaf(dd.draw(st.integers(0, BIG - 1).filter(lambda j: j != i)))
    else:
        bad.insert(dd.draw(st.integers(0, len(proof))), SOME_HASH)
    if i < n and (leaf, bad, root) == (tree.leaf(i), tree.inclusion_proof(i, n), tree.root(n)):
        return  # the altered claim is an honest one (never seen, but not a failure if it were)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, i, n, bad, root)


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, BIG))
    return draw(st.integers(1, n)), n


@settings(max_examples=150, deadline=None)
@given(two_sizes(), st.data())
def test_random_consistency_proofs_in_large_trees(mn: tuple[int, int], dd: st.DataObject) -> None:
    m, n = mn
    tree = big_tree()
    r1, r2 = tree.root(m), tree.root(n)
    proof = tree.consistency_proof(m, n)
    verify_consistency(m, n, r1, r2, proof)
    how = dd.draw(st.sampled_from(["flip", "drop", "add", "old", "new", "root"]))
    bad = list(proof)
    if how == "flip" and proof:
        k = dd.draw(st.integers(0, len(proof) - 1))
        bad[k] = flip(proof[k], dd.draw(st.integers(0, 31)))
    elif how == "drop" and proof:
        del bad[dd.draw(st.integers(0, len(proof) - 1))]
    elif how == "old":
        m = dd.draw(st.integers(1, n).filter(lambda s: s != mn[0]))
        r1 = tree.root(m)
    elif how == "new":
        n = dd.draw(st.integers(m, BIG).filter(lambda s: s != mn[1]))
        r2 = tree.root(n)
    elif how == "root":
        r1 = tree.root(dd.draw(st.integers(1, BIG).filter(lambda s: s != m)))
    else:
        bad.insert(dd.draw(st.integers(0, len(proof))), SOME_HASH)
    if (m, n) != mn and bad == tree.consistency_proof(m, n):
        return  # the "tampered" claim happens to be an honest one (say, m == n)
    with pytest.raises(ProofError):
        verify_consistency(m, n, r1, r2, bad)


# --- compact range ------------------------------------------------------------------------------


def test_compact_range_emits_exactly_the_complete_subtree_nodes() -> None:
    tree = small_tree()
    cr = CompactRange()
    seen: dict[tuple[int, int], bytes] = {}
    for i in range(SMALL):
        nodes = cr.append(tree.leaf(i))
        assert nodes[0] == (0, i, tree.leaf(i))
        assert len(nodes) == 1 + (i + 1 ^ i).bit_length() - 1  # trailing ones of i, plus one
        for level, index, hh in nodes:
            assert tree.node(level, index) == hh
            assert (level, index) not in seen
            seen[level, index] = hh
        assert len(cr.peaks) == (i + 1).bit_count()
    # Every complete subtree of the 64-leaf tree was emitted once: 64 + 32 + … + 1 nodes.
    assert len(seen) == 2 * SMALL - 1

    class Store:
        def node(self, level: int, index: int) -> bytes:
            return seen[level, index]

    store = Store()
    for n in range(1, SMALL + 1):
        assert root_at(store, n) == tree.root(n)
        assert inclusion_proof(store, n - 1, n) == tree.inclusion_proof(n - 1, n)
        assert consistency_proof(store, n // 2, n) == tree.consistency_proof(n // 2, n)


def test_compact_range_dict_round_trip_and_copy() -> None:
    cr = CompactRange()
    cr.extend(small_tree().leaf(i) for i in range(13))
    d = cr.to_dict()
    assert d["size"] == 13
    assert len(d["peaks"]) == 3
    back = CompactRange.from_dict(d)
    assert back == cr
    assert back.root() == small_tree().root(13)
    c = cr.copy()
    c.append(SOME_HASH)
    assert c != cr
    assert cr.size == 13
    assert cr != "not a range"
    assert "size=13" in repr(cr)
    assert CompactRange.from_dict({"size": 0, "peaks": []}) == CompactRange()


@pytest.mark.parametrize(
    ("d", "needle"),
    [
        ([], "object"),
        ({"size": 1}, "object"),
        ({"size": 1, "peaks": [], "x": 1}, "object"),
        ({"size": -1, "peaks": []}, "size"),
        ({"size": True, "peaks": []}, "size"),
        ({"size": 2, "peaks": []}, "peaks"),
        ({"size": 1, "peaks": "abc"}, "peaks"),
        ({"size": 1, "peaks": [1]}, "peaks[0]"),
        ({"size": 1, "peaks": ["!!!"]}, "peaks[0]"),
        ({"size": 1, "peaks": ["AAAA"]}, "peaks[0]"),
        # Non-canonical base64 (non-zero padding bits) of 32 bytes.
        ({"size": 1, "peaks": ["A" * 42 + "B="]}, "peaks[0]"),
    ],
)
def test_compact_range_from_dict_rejects(d: object, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        CompactRange.from_dict(d)


def test_compact_range_constructor_checks() -> None:
    with pytest.raises(ProofError, match="peaks"):
        CompactRange(3, [SOME_HASH])
    with pytest.raises(ProofError, match="peak 0"):
        CompactRange(1, [b"short"])
    with pytest.raises(ProofError, match="size"):
        CompactRange(-1)
    with pytest.raises(ProofError, match="leaf hash"):
        CompactRange().append(b"x" * 31)


# --- bad input is a ProofError naming the problem ------------------------------------------------


def test_generation_rejects_bad_arguments() -> None:
    tree = small_tree()
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: inclusion_proof(tree, 5, 5), "not below"),
        (lambda: inclusion_proof(tree, 0, 0), "not below"),
        (lambda: inclusion_proof(tree, -1, 5), "index"),
        (lambda: inclusion_proof(tree, True, 5), "index"),  # noqa: FBT003
        (lambda: inclusion_proof(tree, 0, 2**64), "size"),
        (lambda: consistency_proof(tree, 6, 5), "larger"),
        (lambda: consistency_proof(tree, "1", 5), "old size"),  # type: ignore[arg-type]
        (lambda: root_at(tree, -1), "size"),
        (lambda: tree.inclusion_proof(0, SMALL + 1), "exceeds"),
        (lambda: tree.consistency_proof(1, SMALL + 1), "exceeds"),
        (lambda: tree.root(SMALL + 1), "exceeds"),
        (lambda: tree.node(7, 0), "no complete subtree"),
        (lambda: tree.node(0, SMALL), "no complete subtree"),
        (lambda: tree.node(-1, 0), "no complete subtree"),
        (lambda: tree.node(0, -1), "no complete subtree"),
        (lambda: tree.node("0", 0), "no complete subtree"),  # type: ignore[arg-type]
        (lambda: tree.node(0, 1.0), "no complete subtree"),  # type: ignore[arg-type]
        (lambda: MemoryTree().append(b""), "32 bytes"),
        (lambda: root_from_leaves([SOME_HASH, "x"]), "leaf hash 1"),  # type: ignore[list-item]
    ]
    for fn, needle in cases:
        with pytest.raises(ProofError, match=needle):
            fn()


def test_generation_rejects_a_reader_returning_garbage() -> None:
    class Bad:
        def node(self, level: int, index: int) -> bytes:
            return b"short"

    with pytest.raises(ProofError, match="malformed hash"):
        inclusion_proof(Bad(), 0, 2)
    with pytest.raises(ProofError, match="malformed hash"):
        CompactRange.from_reader(Bad(), 3)


def test_verification_rejects_bad_arguments() -> None:
    leaf, root = leaf_hash(b"a"), SOME_HASH
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: verify_inclusion(leaf, 3, 3, [], root), "not below"),
        (lambda: verify_inclusion(leaf, 0, 2, [], root), "too short"),
        (lambda: verify_inclusion(leaf, 0, 1, [root], root), "too long"),
        (lambda: verify_inclusion(leaf, 0, 2, [b"x"], root), "proof hash 0"),
        (lambda: verify_inclusion(leaf, 0, 2, "abc", root), "list"),  # type: ignore[arg-type]
        (lambda: verify_inclusion(leaf, 0, 2, [root], b"r"), "root"),
        (lambda: verify_inclusion("leaf", 0, 1, [], root), "leaf hash must be bytes"),  # type: ignore[arg-type]
        (lambda: verify_inclusion(leaf, 0, 1, [], root), "does not lead"),
        (lambda: root_from_inclusion(leaf, -1, 1, []), "index"),
        (lambda: verify_consistency(3, 2, root, root, []), "larger"),
        (lambda: verify_consistency(1, 2, root, root, []), "empty"),
        (lambda: verify_consistency(1, 2, root, root, [root, root]), "too long"),
        (lambda: verify_consistency(3, 4, root, root, [root]), "too short"),
        (lambda: verify_consistency(1, 2, b"", root, [root]), "old root"),
        (lambda: verify_consistency(1, 2, root, b"", [root]), "new root"),
        (lambda: verify_consistency(1, 2, root, root, [b""]), "proof hash 0"),
        (lambda: verify_consistency(2, 2, root, leaf, []), "different roots"),
        (lambda: verify_consistency(2, 2, root, root, [root]), "must be empty"),
        (lambda: verify_consistency(0, 2, root, root, []), "empty tree"),
        (lambda: verify_consistency(1, 2, root, root, [root]), "new root"),
    ]
    for fn, needle in cases:
        with pytest.raises(ProofError, match=needle):
            fn()


def test_consistency_names_the_root_that_does_not_match() -> None:
    tree = small_tree()
    proof = tree.consistency_proof(5, 9)
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(5, 9, tree.root(4), tree.root(9), proof)
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(5, 9, tree.root(5), tree.root(10), proof)


# --- test vectors (tests/vectors/merkle.json, copied into docs/PROTOCOL.md) ---------------------

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "merkle.json"


def build_vectors() -> dict[str, Any]:
    """The Merkle vectors, rebuilt: the RFC 6962 8-leaf tree with every root and proof."""
    tree = rfc_tree()
    hx = bytes.hex
    cr = CompactRange()
    ranges = []
    for n in range(len(RFC_LEAVES) + 1):
        ranges.append({"size": n, "peaks_hex": [hx(p) for p in cr.peaks]})
        if n < len(RFC_LEAVES):
            cr.append(tree.leaf(n))
    n_max = len(RFC_LEAVES)
    return {
        "description": "RFC 9162 Merkle tree (leaf = SHA-256(0x00 || data), node = "
        "SHA-256(0x01 || left || right), empty root = SHA-256('')) over the 8 leaves of the "
        "RFC 6962 reference tests. Proof hashes are listed bottom-up, as in RFC 9162. "
        "roots_hex[n] is the root of the first n leaves.",
        "leaves_hex": [hx(d) for d in RFC_LEAVES],
        "leaf_hashes_hex": [hx(tree.leaf(i)) for i in range(n_max)],
        "roots_hex": [hx(tree.root(n)) for n in range(n_max + 1)],
        "inclusion": [
            {"index": i, "size": n, "proof_hex": [hx(p) for p in tree.inclusion_proof(i, n)]}
            for n in range(1, n_max + 1)
            for i in range(n)
        ],
        "consistency": [
            {
                "old_size": m,
                "new_size": n,
                "proof_hex": [hx(p) for p in tree.consistency_proof(m, n)],
            }
            for n in range(2, n_max + 1)
            for m in range(1, n)
        ],
        "compact_ranges": ranges,
    }


def test_vectors_file_matches() -> None:
    if os.environ.get("LIQUIDE_WRITE_VECTORS"):
        VECTORS.write_text(json.dumps(build_vectors(), indent=2) + "\n")
    assert json.loads(VECTORS.read_text()) == build_vectors()


def test_vectors_check_independently() -> None:
    v = json.loads(VECTORS.read_text())
    leaves = [h(x) for x in v["leaves_hex"]]
    assert leaves == RFC_LEAVES
    assert [h(x) for x in v["leaf_hashes_hex"]] == [
        hashlib.sha256(b"\x00" + d).digest() for d in leaves
    ]
    roots = [h(x) for x in v["roots_hex"]]
    assert roots == [EMPTY_ROOT, *RFC_ROOTS]  # the published roots
    assert [mth(leaves[:n]) for n in range(len(leaves) + 1)] == roots
    for e in v["inclusion"]:
        proof = [h(x) for x in e["proof_hex"]]
        assert proof == path(e["index"], leaves[: e["size"]])
        verify_inclusion(
            hashlib.sha256(b"\x00" + leaves[e["index"]]).digest(),
            e["index"],
            e["size"],
            proof,
            roots[e["size"]],
        )
    for e in v["consistency"]:
        proof = [h(x) for x in e["proof_hex"]]
        assert proof == subproof(e["old_size"], leaves[: e["new_size"]], b=True)
        verify_consistency(
            e["old_size"], e["new_size"], roots[e["old_size"]], roots[e["new_size"]], proof
        )
    published = {(num - 1, size): p for num, size, p in RFC_INCLUSION}
    for e in v["inclusion"]:
        if (e["index"], e["size"]) in published:
            assert [h(x) for x in e["proof_hex"]] == published[e["index"], e["size"]]
    published_c = {(a, b): p for a, b, p in RFC_CONSISTENCY}
    for e in v["consistency"]:
        if (e["old_size"], e["new_size"]) in published_c:
            assert [h(x) for x in e["proof_hex"]] == published_c[e["old_size"], e["new_size"]]
    for e in v["compact_ranges"]:
        cr = CompactRange(e["size"], [h(x) for x in e["peaks_hex"]])
        assert cr.root() == roots[e["size"]]


def test_protocol_md_carries_the_vectors() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    v = json.loads(VECTORS.read_text())
    for root in v["roots_hex"]:
        assert root in doc
    for e in v["inclusion"]:
        if (e["index"], e["size"]) in {(0, 8), (5, 8), (1, 5)}:
            assert "\n".join(f"    {x}" for x in e["proof_hex"]) in doc


def test_memory_tree_built_at_once_equals_one_built_by_appends() -> None:
    full = small_tree()
    leaves = [full.leaf(i) for i in range(SMALL)]
    for n in range(SMALL + 1):
        t = MemoryTree(leaves[:n])
        for h_ in leaves[n:]:
            t.append(h_)
        for level in range(7):
            for index in range(SMALL >> level):
                assert t.node(level, index) == full.node(level, index)
    with pytest.raises(ProofError, match="leaf hash 1"):
        MemoryTree([SOME_HASH, b"x"])


class CountingReader:
    """A reader of a virtual tree of any size: counts reads, and checks each is in bounds."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.reads = 0

    def node(self, level: int, index: int) -> bytes:
        assert level >= 0
        assert index >= 0
        assert (index + 1) << level <= self.size, "read outside the tree"
        self.reads += 1
        return hashlib.sha256(b"%d/%d" % (level, index)).digest()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**63 - 1), st.data())
def test_proofs_read_o_log_n_stored_nodes_within_the_tree(n: int, dd: st.DataObject) -> None:
    depth = (n - 1).bit_length()
    r = CountingReader(n)
    i = dd.draw(st.integers(0, n - 1))
    proof = inclusion_proof(r, i, n)
    assert len(proof) <= depth
    assert r.reads <= 2 * depth + 1
    r.reads = 0
    m = dd.draw(st.integers(0, n))
    assert len(consistency_proof(r, m, n)) <= depth + 1
    assert r.reads <= 2 * depth + 2
    r.reads = 0
    root_at(r, n)
    assert r.reads == n.bit_count()
    r.reads = 0
    cr = CompactRange.from_reader(r, n)
    assert r.reads == n.bit_count()
    assert cr.root() == root_at(CountingReader(n), n)
