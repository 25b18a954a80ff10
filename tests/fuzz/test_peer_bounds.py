"""Bounded lists between peers: a city that signs split views by the thousand cannot stop
replication by making honest nodes' proof lists exceed what their peers accept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from node.errors import PeerError
from protocol.checkpoint import Checkpoint, SplitViewProof, sign_checkpoint
from tests.node.test_federation_harness import Sim


@pytest.fixture
async def sim(tmp_path: Path):
    s = Sim(tmp_path, max_proofs=3)
    yield s
    await s.close()


def _split_views(sn, n: int) -> list[SplitViewProof]:
    """``n`` distinct split views of ``sn``'s log: pairs of same-size checkpoints, two roots."""
    out = []
    for i in range(n):
        a, b = (
            sign_checkpoint(
                Checkpoint(sn.origin, 100 + i, hashlib.sha256(f"{side}{i}".encode()).digest()),
                sn.node.key,
            )
            for side in "ab"
        )
        out.append(SplitViewProof.of_roots(a, b))
    return out


async def test_many_split_views_of_one_city_do_not_stop_replication(sim: Sim) -> None:
    m = await sim.add("m")
    n0, n1 = await sim.line(["n0", "n1"])
    await sim.link(m, n0)
    await sim.link(m, n1)
    for proof in _split_views(m, 5):  # beyond max_proofs = 3
        proof.verify(m.node.key.public_key)
        await n0.fed.store_split_view(proof)
    # One proof convicts the city; n0 does not keep an unbounded list of them…
    assert len(n0.node.reader.proofs()) <= 3
    # …so its peers still sync with it, and the evidence still spreads.
    results = await n1.fed.sync_all()
    failures = [r for r in results if isinstance(r, PeerError)]
    assert failures == [], failures
    assert any(p["origin"] == m.origin for p in n1.node.reader.proofs())
