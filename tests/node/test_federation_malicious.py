"""Malicious peers in a simulated federation: the honest node keeps working, keeps what it can
verify, and records the right finding or proof. The peer ``x`` relays city ``c``'s log to the
honest node ``h`` and lies about it in one way per test."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from crypto import SecretKey
from node.client import Response
from node.store import LeafRow
from node.transport import Handler, PeerRequest
from protocol.events import Event

from .test_federation_harness import Sim, SimNode


async def _triangle(sim: Sim) -> tuple[SimNode, SimNode, SimNode]:
    h, x, c = await sim.line(["h", "x", "c"])
    await sim.link(h, c)
    for i in range(3):
        await c.enrol_citizen(f"c{i}")
    await sim.step(2)
    return h, x, c


def _wrap(sim: Sim, sn: SimNode, change: Any) -> None:
    """Make ``sn`` answer through ``change(request, honest answer) -> answer``."""

    def wrapper(inner: Handler) -> Handler:
        async def handler(req: PeerRequest) -> Response:
            return await change(req, await inner(req))

        return handler

    sim.net.wrap(sn.url, wrapper)


def _mirror(sn: SimNode, of: SimNode) -> tuple[int, bytes] | None:
    info = sn.node.reader.log(of.origin)
    return None if info is None else (info.size, info.root())


def _own(sn: SimNode) -> tuple[int, bytes]:
    info = sn.node.reader.log(sn.origin)
    assert info is not None
    return info.size, info.root()


def _kinds(sn: SimNode) -> set[str]:
    return {f["kind"] for f in sn.fed.peer_findings}


async def _grow(sim: Sim, c: SimNode, n: int) -> None:
    for i in range(n):
        await c.enrol_citizen(f"more{len(c.citizens)}-{i}")
    await sim.checkpoint()


async def test_forged_checkpoint_signature_is_refused(sim: Sim) -> None:
    h, x, c = await _triangle(sim)
    await _grow(sim, c, 2)
    await x.fed.sync_all()

    async def forge(req: PeerRequest, resp: Response) -> Response:
        if req.path != "/v1/logs":
            return resp
        doc = json.loads(resp.body)
        for log in doc["logs"]:
            if log["origin"] == c.origin:
                lines = log["checkpoint"].split("\n")
                lines[1] = str(int(lines[1]) + 5)  # a bigger size under the old signature
                log["checkpoint"] = "\n".join(lines)
        return Response(200, json.dumps(doc).encode(), resp.headers)

    _wrap(sim, x, forge)
    await h.fed.sync_peer(x.url)
    assert "bad_checkpoint" in _kinds(h)
    assert not h.node.reader.proofs()
    await h.fed.sync_peer(c.url)
    assert _mirror(h, c) == _own(c)


async def test_forged_failing_consistency_proof_freezes_nothing(sim: Sim) -> None:
    h, x, c = await _triangle(sim)
    await _grow(sim, c, 3)
    await x.fed.sync_all()

    async def garble(req: PeerRequest, resp: Response) -> Response:
        if "/proof/consistency" not in req.path:
            return resp
        doc = json.loads(resp.body)
        doc["proof"] = [base64.b64encode(os.urandom(32)).decode() for _ in doc["proof"] or [0]]
        return Response(200, json.dumps(doc).encode(), resp.headers)

    _wrap(sim, x, garble)
    await h.fed.sync_peer(x.url)
    assert "bad_consistency_proof" in _kinds(h)
    assert not h.node.reader.proofs()
    info = h.node.reader.log(c.origin)
    assert info is not None
    assert info.frozen is None
    await h.fed.sync_peer(c.url)  # the honest city is still followed
    assert _mirror(h, c) == _own(c)


async def test_truncated_log_keeps_the_verifiable_prefix(sim: Sim) -> None:
    h, x, c = await _triangle(sim)
    before = _mirror(h, c)
    assert before is not None
    await _grow(sim, c, 6)
    await x.fed.sync_all()
    sim.net.cut(h.url, c.url)  # h can only learn c's log from x
    keep = before[0] + 2

    async def truncate(req: PeerRequest, resp: Response) -> Response:
        if not req.path.endswith("/entries"):
            return resp
        start = int(req.params["start"])
        lines = resp.body.split(b"\n")[:-1]
        lines = lines[: max(0, keep - start)]
        return Response(200, b"".join(line + b"\n" for line in lines), resp.headers)

    _wrap(sim, x, truncate)
    await h.fed.sync_peer(x.url)
    assert "truncated" in _kinds(h)
    got = _mirror(h, c)
    assert got is not None
    assert got[0] == keep  # what verified is kept, with no hole
    assert h.node.reader.root_at(c.origin, keep) == c.node.reader.root_at(c.origin, keep)
    assert not h.node.reader.proofs()
    sim.net.heal()
    await h.fed.sync_peer(c.url)
    assert _mirror(h, c) == _own(c)


async def test_city_that_accepted_an_unenrolled_ballot_is_named(sim: Sim) -> None:
    h, _x, c = await _triangle(sim)
    stranger = SecretKey.generate()
    ev = Event.create(
        stranger, "ballot", {"issue": "ab" * 32, "grades": {"yes": 1}}, 1, None, int(sim.clock())
    )

    def smuggle() -> int:
        store = c.node.store
        with store.atomic():
            store.append_leaves(c.origin, [LeafRow(ev.id, ev.leaf, ev.author, ev.seq, ev.type)])
        c.node.writer.reload()
        return c.node.writer.size - 1

    assert c.node.ingest is not None
    index = await c.node.ingest.call(smuggle)
    await sim.checkpoint()
    await sim.step(2)
    assert _mirror(h, c) == _own(c)  # the mirror keeps the leaf: no hole
    findings = (await h.client().get_json("/v1/findings"))["findings"]
    hits = [f for f in findings if f["reason"] == "not_enrolled"]
    assert hits
    assert hits[0]["origin"] == c.origin
    assert hits[0]["index"] == index
    assert hits[0]["event_id"] == ev.id


@pytest.mark.parametrize(
    "answer",
    [
        Response(200, b"\xff\x00 not json"),
        Response(200, b'{"logs": 7, "proofs": "x"}'),
        Response(200, json.dumps({"proofs": [{"id": i} for i in range(5000)]}).encode()),
        Response(500, b"<html>oops</html>"),
    ],
    ids=["garbage", "wrong-shape", "too-many", "error-page"],
)
async def test_garbage_answers_fail_the_round_and_nothing_else(sim: Sim, answer: Response) -> None:
    h, x, c = await _triangle(sim)
    await _grow(sim, c, 2)

    async def garbage(req: PeerRequest, resp: Response) -> Response:
        return answer

    _wrap(sim, x, garbage)
    results = await h.fed.sync_all()
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1  # the round with x; the round with c went on
    assert _mirror(h, c) == _own(c)
    assert h.fed.peer_state[x.url]["failed"] == 1
