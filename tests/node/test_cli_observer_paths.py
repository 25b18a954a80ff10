"""The observer's three signature paths give identical reports, on honest and tampered records.

``verify`` may check signatures itself (no batcher), through the CLI's in-process batch
(:class:`InlineBatcher`, the single-core path) or through its worker pool (:class:`PoolBatcher`,
pipelined chunks). Whatever the chunk size and whatever was tampered with, the three must
produce the same report and the same saved state. The Merkle roots the engine grows chunk by
chunk must equal those of appending one leaf at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node._cli_observer import InlineBatcher, PoolBatcher
from protocol._verify._engine import _grow
from protocol.events import Event
from protocol.merkle import CompactRange
from protocol.verify import LogMaterial, NodeMaterial, Report, verify
from tests.protocol._events_factory import key
from tests.protocol._verify_factory import AFTER_GRACE, A, C, Federation, build, flip


@pytest.fixture(scope="module")
def fed() -> Federation:
    return build(voters=4, handover=True)


@pytest.fixture(scope="module")
def pool() -> Iterator[PoolBatcher]:
    with PoolBatcher(2) as p:
        yield p


def _resign(leaf: bytes) -> bytes:
    """The same event signed by another key: canonical, but its signature does not verify."""
    d = json.loads(leaf)
    other = Event.create(key("intruder"), d["type"], d["body"], d["seq"], d["prev"], d["ts"])
    d["sig"] = other.to_dict()["sig"]
    return Event.from_dict(d).encode()


def _tamper(leaves: list[bytes], kind: str, i: int, at: int) -> list[bytes]:
    out = list(leaves)
    i %= len(out)
    if kind == "flip":
        out[i] = flip(out[i], at % len(out[i]))
    elif kind == "resign":
        out[i] = _resign(out[i])
    elif kind == "drop":
        del out[i]
    elif kind == "swap":
        j = (i + 1) % len(out)
        out[i], out[j] = out[j], out[i]
    elif kind == "repeat":
        out.insert(i, out[i])
    return out


def _material(fed: Federation, origin: str, leaves: list[bytes]) -> list[NodeMaterial]:
    node = fed.material("http://a.example/")
    logs = dict(node.logs)
    old = logs[origin]
    logs[origin] = LogMaterial(origin, old.checkpoints, leaves, old.start, old.consistency)
    return [NodeMaterial(node.node, logs, node.proofs)]


def _run(fed: Federation, nodes: list[NodeMaterial], **kw: Any) -> tuple[Report, dict[str, Any]]:
    v = verify(fed.trust(), nodes, now=AFTER_GRACE, **kw)
    return v.report, v.state.to_dict()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    origin=st.sampled_from([A, C]),
    kind=st.sampled_from(["none", "flip", "resign", "drop", "swap", "repeat"]),
    i=st.integers(0, 10_000),
    at=st.integers(0, 10_000),
    chunk=st.integers(1, 9),
)
def test_the_three_signature_paths_report_identically(
    fed: Federation, pool: PoolBatcher, origin: str, kind: str, i: int, at: int, chunk: int
) -> None:
    leaves = list(fed.logs()[origin].leaves)
    nodes = _material(fed, origin, leaves if kind == "none" else _tamper(leaves, kind, i, at))
    alone, alone_state = _run(fed, nodes, chunk=chunk)
    inline, inline_state = _run(fed, nodes, chunk=chunk, batcher=InlineBatcher())
    pooled, pooled_state = _run(fed, nodes, chunk=chunk, batcher=pool)
    assert inline.to_dict() == alone.to_dict()
    assert pooled.to_dict() == alone.to_dict()
    assert inline_state == alone_state == pooled_state
    if kind == "none":
        assert alone.passed, alone.to_text()
    elif kind in ("resign", "drop", "swap"):
        # each breaks a signature, a chain link or a root of a log that was checkpointed
        assert not alone.passed


def test_a_tampered_record_fails_the_same_way_on_every_path(
    fed: Federation, pool: PoolBatcher
) -> None:
    leaves = list(fed.a.leaves)
    leaves[5] = _resign(leaves[5])
    nodes = _material(fed, A, leaves)
    reports = [
        _run(fed, nodes, chunk=3, **kw)[0]
        for kw in ({}, {"batcher": InlineBatcher()}, {"batcher": pool})
    ]
    named = [[(f.code, f.origin, f.index) for f in r.findings("error")] for r in reports]
    assert named[0] == named[1] == named[2]
    for r in reports:
        assert r.first_failure == 3
    # the author's later events then break its chain: the first error names the forged one
    assert named[0][0] == ("bad_signature", A, 5)


def _hashes(n: int) -> list[bytes]:
    return [hashlib.sha256(b"leaf %d" % i).digest() for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(
    before=st.integers(0, 200),
    n=st.integers(0, 200),
    cuts=st.lists(st.integers(-5, 420), max_size=8),
)
def test_growing_by_subtrees_equals_appending_one_leaf_at_a_time(
    before: int, n: int, cuts: list[int]
) -> None:
    hashes = _hashes(before + n)
    start = CompactRange()
    for h in hashes[:before]:
        start.append(h)
    expected: dict[int, bytes] = {}
    one = start.copy()
    for h in hashes[before:]:
        one.append(h)
        if one.size in cuts:
            expected[one.size] = one.root()
    grown, roots = _grow(start.copy(), hashes[before:], cuts)
    assert grown.size == one.size
    assert grown.peaks == one.peaks
    assert grown.root() == one.root()
    assert roots == expected
