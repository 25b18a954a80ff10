"""The RFC 9162 Merkle tree of a city log: hashing, compact ranges, proofs and their checks.

Every city log is an append-only Merkle tree exactly as in RFC 9162 §2.1 (RFC 6962's tree):
leaves hash as ``SHA-256(0x00 ‖ data)``, interior nodes as ``SHA-256(0x01 ‖ left ‖ right)``,
and the empty tree's root is ``SHA-256("")``. Proofs are the inclusion proofs of §2.1.3 and
the consistency proofs of §2.1.4, generated and verified by the RFC's own algorithms, so that
other ecosystems' verifiers (Go's ``tlog``, transparency-dev/merkle) accept Liquide's proofs.

The module has three parts:

* :class:`CompactRange` — the O(log n) append state a log writer keeps: the tree size and the
  roots of the perfect subtrees ("peaks") it decomposes into. Each append returns the newly
  completed subtree nodes ``(level, index, hash)`` so that a store can persist them.
* :class:`NodeReader` — anything that answers ``node(level, index)`` with the hash of a complete
  subtree (level 0 holds the leaf hashes). Proof generation reads only such nodes, so a store
  that persisted the nodes :meth:`CompactRange.append` returned serves any proof in O(log n)
  lookups, without rehashing leaves. :class:`MemoryTree` is the in-memory reader.
* Verification: :func:`verify_inclusion`, :func:`verify_consistency` and
  :func:`root_from_inclusion` (the root a proof implies, which split-view detection compares).

Nothing here does I/O. Every malformed input (an index at or beyond the size, sizes out of
order, a proof of the wrong length, a hash that is not 32 bytes) raises
:class:`~protocol.errors.ProofError` naming the problem; ``CompactRange.from_dict`` raises
:class:`~protocol.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from .errors import ProofError, ValidationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryTree",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root_at",
    "root_from_inclusion",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256

# Sizes and indices are unsigned 64-bit integers in RFC 9162 and in every C2SP format.
_MAX_SIZE = 2**64 - 1


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 ‖ data)``."""
    return _sha256(b"\x00" + data).digest()


def leaf_hashes(data: Iterable[bytes]) -> list[bytes]:
    """The leaf hash of each of ``data``, as :func:`leaf_hash` (one call for a batch)."""
    return [_sha256(b"\x00" + d).digest() for d in data]


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``SHA-256(0x01 ‖ left ‖ right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _check_hash(h: object, what: str) -> bytes:
    if not isinstance(h, bytes):
        raise ProofError(f"{what} must be bytes, got {type(h).__name__}")
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(h)}")
    return h


def _check_int(n: object, what: str) -> int:
    if type(n) is not int or not 0 <= n <= _MAX_SIZE:
        raise ProofError(f"{what} must be an integer in [0, 2^64-1], got {n!r}")
    return n


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n`` ≥ 2): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash of ``leaf_hashes`` (already leaf-hashed); ``EMPTY_ROOT`` if none.

    Raises :class:`ProofError` if an element is not a 32-byte hash.
    """
    cr = CompactRange()
    for i, h in enumerate(leaf_hashes):
        cr.append(_check_hash(h, f"leaf hash {i}"))
    return cr.root()


# Compact range ------------------------------------------------------------------------------


class CompactRange:
    """The O(log n) append state of a Merkle tree: its size and the roots of its perfect subtrees.

    A tree of size ``n`` decomposes into one perfect subtree per set bit of ``n``, largest (left)
    first; :attr:`peaks` holds their roots in that order. Appending merges equal-sized peaks,
    exactly like incrementing a binary counter.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self, size: int = 0, peaks: Iterable[bytes] = ()) -> None:
        """Build a range of ``size`` leaves from its peaks; raise :class:`ProofError` if they don't fit."""
        self._size = _check_int(size, "size")
        self._peaks = [_check_hash(p, f"peak {i}") for i, p in enumerate(peaks)]
        if len(self._peaks) != size.bit_count():
            raise ProofError(
                f"a tree of size {size} has {size.bit_count()} peaks, got {len(self._peaks)}"
            )

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        """The roots of the perfect subtrees, largest first."""
        return tuple(self._peaks)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return the subtree nodes it completes, as ``(level, index, hash)``.

        The first node is always the leaf itself ``(0, old_size, leaf)``; each further one is a
        perfect subtree that the leaf completed. A store that persists every returned node can
        later serve any proof through :class:`NodeReader`. Raises :class:`ProofError` if
        ``leaf`` is not a 32-byte hash.
        """
        h = _check_hash(leaf, "leaf hash")
        index = self._size
        level = 0
        nodes = [(0, index, h)]
        peaks = self._peaks
        while index & 1:
            h = node_hash(peaks.pop(), h)
            index >>= 1
            level += 1
            nodes.append((level, index, h))
        peaks.append(h)
        self._size += 1
        return nodes

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append many leaf hashes, discarding the completed nodes."""
        for h in leaves:
            self.append(h)

    def root(self) -> bytes:
        """Return the tree's root hash (``EMPTY_ROOT`` for the empty tree)."""
        peaks = self._peaks
        if not peaks:
            return EMPTY_ROOT
        r = peaks[-1]
        for p in reversed(peaks[:-1]):
            r = node_hash(p, r)
        return r

    def copy(self) -> CompactRange:
        """Return an independent copy."""
        return CompactRange(self._size, self._peaks)

    @classmethod
    def from_reader(cls, reader: NodeReader, size: int) -> CompactRange:
        """Rebuild the range of the first ``size`` leaves from stored nodes (``popcount(size)`` reads)."""
        _check_int(size, "size")
        peaks = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                peaks.append(_read(reader, level, start >> level))
                start += 1 << level
        return cls(size, peaks)

    def to_dict(self) -> dict[str, Any]:
        """``{"size": n, "peaks": [base64, …]}`` (peaks largest first)."""
        return {
            "size": self._size,
            "peaks": [base64.b64encode(p).decode("ascii") for p in self._peaks],
        }

    @classmethod
    def from_dict(cls, d: object) -> CompactRange:
        """Parse :meth:`to_dict` output; raise :class:`ValidationError` naming the field."""
        if not isinstance(d, dict) or set(d) != {"size", "peaks"}:
            raise ValidationError("compact range must be an object with exactly size and peaks")
        size, peaks = d["size"], d["peaks"]
        if type(size) is not int or size < 0:
            raise ValidationError("compact range size must be a non-negative integer")
        if not isinstance(peaks, list) or len(peaks) != size.bit_count():
            raise ValidationError(
                f"compact range peaks must be a list of {size.bit_count()} hashes"
            )
        return cls(size, [_b64_hash(p, f"peaks[{i}]") for i, p in enumerate(peaks)])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._peaks == other._peaks

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"


def _b64_hash(s: object, field: str) -> bytes:
    if not isinstance(s, str):
        raise ValidationError(f"{field} must be a base64 string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{field} is not valid base64") from None
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != s:
        raise ValidationError(f"{field} must be the canonical base64 of a {HASH_SIZE}-byte hash")
    return raw


# Node readers and proof generation ------------------------------------------------------------


class NodeReader(Protocol):
    """A source of complete-subtree hashes.

    ``node(level, index)`` returns the root of the perfect subtree over leaves
    ``[index·2^level, (index+1)·2^level)``; level 0 holds the leaf hashes. Proof generation only
    ever asks for subtrees that lie entirely within the tree size it is working on.
    """

    def node(self, level: int, index: int) -> bytes:
        """Return the hash of the complete subtree at ``(level, index)``."""
        ...


def _read(reader: NodeReader, level: int, index: int) -> bytes:
    h = reader.node(level, index)
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise ProofError(f"node reader returned a malformed hash for node ({level}, {index})")
    return h


def _mth(reader: NodeReader, start: int, end: int) -> bytes:
    """MTH of leaves [start, end) where ``start`` is aligned to a power of two ≥ end − start.

    The range splits into ``popcount(end − start)`` perfect subtrees read from ``reader``.
    """
    n = end - start
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return _read(reader, level, start >> level)
    k = _split(n)
    return node_hash(_read(reader, k.bit_length() - 1, start // k), _mth(reader, start + k, end))


def root_at(reader: NodeReader, size: int) -> bytes:
    """Return the root of the first ``size`` leaves of ``reader`` (``EMPTY_ROOT`` for 0)."""
    _check_int(size, "size")
    if size == 0:
        return EMPTY_ROOT
    return _mth(reader, 0, size)


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """Return the RFC 9162 §2.1.3.1 inclusion proof ``PATH(index, D[size])``.

    Hashes are ordered from the leaf's sibling up to the root's child. Raises
    :class:`ProofError` unless ``0 ≤ index < size``.
    """
    _check_int(index, "index")
    _check_int(size, "size")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    proof: list[bytes] = []
    start, n, m = 0, size, index
    # PATH(m, D[start:start+n]) descends one level per step; siblings are appended on the way
    # down and the list reversed at the end, since the RFC lists them bottom-up.
    while n > 1:
        k = _split(n)
        if m < k:
            proof.append(_mth(reader, start + k, start + n))
            n = k
        else:
            proof.append(_mth(reader, start, start + k))
            start, n, m = start + k, n - k, m - k
    proof.reverse()
    return proof


def consistency_proof(reader: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """Return the RFC 9162 §2.1.4.1 consistency proof ``PROOF(old_size, D[new_size])``.

    The proof is empty when ``old_size`` is 0 or equals ``new_size``. Raises
    :class:`ProofError` if ``old_size > new_size``.
    """
    _check_int(old_size, "old size")
    _check_int(new_size, "new size")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, n, m, complete = 0, new_size, old_size, True
    # SUBPROOF(m, D[start:start+n], complete), unrolled the same way as PATH above.
    while m != n:
        k = _split(n)
        if m <= k:
            proof.append(_mth(reader, start + k, start + n))
            n = k
        else:
            proof.append(_mth(reader, start, start + k))
            start, n, m, complete = start + k, n - k, m - k, False
    if not complete:
        proof.append(_mth(reader, start, start + n))
    proof.reverse()
    return proof


class MemoryTree:
    """An in-memory Merkle tree that keeps every complete subtree node (a :class:`NodeReader`).

    Uses about two hashes of memory per leaf. Suitable for tests, tools and small logs; a node
    persists the nodes of :meth:`CompactRange.append` in its store instead.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        """Build the tree of ``leaf_hashes``, level by level; :class:`ProofError` on a bad hash."""
        level = [_check_hash(h, f"leaf hash {i}") for i, h in enumerate(leaf_hashes)]
        self._levels: list[list[bytes]] = [level]
        while len(level) > 1:
            # Only complete nodes are kept: an odd last node waits for its sibling.
            level = [
                _sha256(b"\x01" + level[i] + level[i + 1]).digest()
                for i in range(0, len(level) - 1, 2)
            ]
            self._levels.append(level)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def append(self, leaf: bytes) -> int:
        """Append a leaf hash; return its index. Raises :class:`ProofError` on a malformed hash."""
        h = _check_hash(leaf, "leaf hash")
        levels = self._levels
        index = len(levels[0])
        levels[0].append(h)
        level = 0
        i = index
        while i & 1:
            h = node_hash(levels[level][i - 1], h)
            level += 1
            i >>= 1
            if level == len(levels):
                levels.append([])
            levels[level].append(h)
        return index

    def append_data(self, data: bytes) -> int:
        """Append ``leaf_hash(data)``; return its index."""
        return self.append(leaf_hash(data))

    def node(self, level: int, index: int) -> bytes:
        """Return the complete subtree hash at ``(level, index)``; :class:`ProofError` if absent."""
        levels = self._levels
        if type(level) is int and type(index) is int and 0 <= level < len(levels):
            nodes = levels[level]
            if 0 <= index < len(nodes):
                return nodes[index]
        raise ProofError(f"no complete subtree at level {level!r}, index {index!r}")

    def leaf(self, index: int) -> bytes:
        """Return the leaf hash at ``index``."""
        return self.node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first ``size`` leaves (default: all)."""
        n = self.size if size is None else size
        if n > self.size:
            raise ProofError(f"tree size {n} exceeds the {self.size} leaves held")
        return root_at(self, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of leaf ``index`` in the tree of ``size`` leaves (default: all)."""
        n = self.size if size is None else size
        if n > self.size:
            raise ProofError(f"tree size {n} exceeds the {self.size} leaves held")
        return inclusion_proof(self, index, n)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``new_size`` (default: all leaves)."""
        n = self.size if new_size is None else new_size
        if n > self.size:
            raise ProofError(f"tree size {n} exceeds the {self.size} leaves held")
        return consistency_proof(self, old_size, n)


# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------------------------------


def _check_proof(proof: object) -> list[bytes]:
    if not isinstance(proof, list | tuple):
        raise ProofError("a proof must be a list of hashes")
    return [_check_hash(p, f"proof hash {i}") for i, p in enumerate(proof)]


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root that the inclusion ``proof`` of ``leaf`` at ``index`` in ``size`` implies.

    This is RFC 9162 §2.1.3.2 up to, but not including, the final comparison with a root.
    Raises :class:`ProofError` if ``index ≥ size``, a hash is not 32 bytes, or the proof has
    too many or too few hashes for ``(index, size)``.
    """
    r = _check_hash(leaf, "leaf hash")
    _check_int(index, "index")
    _check_int(size, "size")
    path = _check_proof(proof)
    if index >= size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    fn, sn = index, size - 1
    for p in path:
        if sn == 0:
            raise ProofError(f"inclusion proof is too long for index {index} in size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short for index {index} in size {size}")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows ``leaf`` at ``index`` in the tree of ``size`` with ``root``.

    Returns ``None``; raises :class:`ProofError` naming the problem otherwise.
    """
    _check_hash(root, "root")
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise ProofError(
            f"inclusion proof for index {index} does not lead to the root of size {size}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    Follows RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. When the sizes are equal the
    proof must be empty and the roots equal; from the empty tree the proof must be empty and
    ``old_root`` must be ``EMPTY_ROOT``. Raises :class:`ProofError` naming the problem.
    """
    _check_int(old_size, "old size")
    _check_int(new_size, "new size")
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    path = _check_proof(proof)
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        if path:
            raise ProofError(f"consistency proof from {old_size} to {new_size} must be empty")
        if old_size == 0:
            if old_root != EMPTY_ROOT:
                raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
        elif old_root != new_root:
            raise ProofError(f"two trees of size {old_size} have different roots")
        return
    # Step 1: an empty proof proves nothing between different non-empty sizes.
    if not path:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is empty")
    # Step 2: if the old tree is perfect, its root is the first node of the path.
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]
    # Steps 3-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root of size {new_size}")
