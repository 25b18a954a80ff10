"""When a node may settle a member city's part of a record (docs/PROTOCOL.md §8.6).

A line A–B–C: A and C are the member cities, B their only witness (k = 1). Each test puts one
node in a position where its own clock is past close + grace but its view of a member is
incomplete, and checks that honest nodes never attest different records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.client import Response
from node.errors import ApiError
from protocol.record import Record

from .test_federation_harness import Sim, SimNode
from .test_federation_records import CLOSE_IN, GRACE, _setup, never_seals


@pytest.fixture
async def sim(tmp_path: Path):
    s = Sim(tmp_path)
    yield s
    await s.close()


async def _record(sn: SimNode, issue: str) -> dict[str, Any]:
    return await sn.client().get_json(f"/v1/issues/{issue}/record")


async def _attestations(sn: SimNode, issue: str) -> dict[str, Any]:
    return await sn.client().get_json(f"/v1/issues/{issue}/attestations")


async def _pending(sn: SimNode, issue: str) -> ApiError:
    with pytest.raises(ApiError) as err:
        await _record(sn, issue)
    assert err.value.status == 409
    assert err.value.code == "open"
    return err.value


def _no_pulls_by(sim: Sim, node: SimNode, source: SimNode) -> Any:
    """``node`` answers every request of ``source`` but its pushes with 503; returns the
    handler to register again to heal."""
    handler = sim.net.handlers[node.url]

    async def refuse(req: Any) -> Response:
        if req.source == source.url and not req.path.endswith("add-checkpoint"):
            return Response(503, b"busy\n")
        return await handler(req)

    sim.net.register(node.url, refuse)
    return handler


async def test_a_node_cut_off_from_a_timely_seal_waits_for_it(sim: Sim) -> None:
    # A seals at the close and B cosigns it at once. C pushes to B (its own seal is witnessed
    # in time) but cannot pull from B until after close + grace, so it never sees A's seal.
    # C must not settle A's part on a stand-in: the seal exists and was timely.
    a, b, c, issue, _close = await _setup(sim)
    heal = _no_pulls_by(sim, b, c)
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(3)
    sim.clock.advance(GRACE + 30)
    await sim.step(3)
    err = await _pending(c, issue)
    assert a.origin in err.message
    (waiting,) = err.details["waiting"]
    assert waiting["origin"] == a.origin
    status = await c.client().get_json("/v1/federation")
    assert status["pending_records"][issue][0]["origin"] == a.origin
    # A and B, which saw both seals witnessed in time, settled and agree.
    recs = [await _record(sn, issue) for sn in (a, b)]
    assert recs[0]["record_id"] == recs[1]["record_id"]
    sim.net.register(b.url, heal)
    await sim.step(4)
    recs = [await _record(sn, issue) for sn in (a, b, c)]
    assert len({r["record_id"] for r in recs}) == 1
    assert len({r["digest"] for r in recs}) == 1
    assert recs[2]["standins"] == []
    assert [p.basis for p in Record.from_dict(recs[2]["record"]).parts] == ["seal", "seal"]
    for sn in (a, b, c):
        att = await _attestations(sn, issue)
        assert {x["origin"] for x in att["attestations"]} == {a.origin, b.origin, c.origin}
        assert att["agree"], sn.name
        assert not att["split_records"], sn.name


async def test_a_member_that_never_seals_is_stood_in_once_a_later_checkpoint_shows_it(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c, issue, close = await _setup(sim)
    never_seals(monkeypatch, c)
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(3)
    sim.clock.advance(GRACE + 1)
    await sim.step(2)
    # Past close + grace nobody has a checkpoint of C cosigned after the deadline yet.
    for sn in (a, b, c):
        err = await _pending(sn, issue)
        assert err.details["waiting"][0]["origin"] == c.origin, sn.name
    # C's log grows (a new citizen); B cosigns that checkpoint, after the deadline, without a
    # seal in it: that is the evidence that C did not seal in time.
    await c.enrol_citizen("late")
    await sim.step(4)
    recs = [await _record(sn, issue) for sn in (a, b, c)]
    assert len({r["record_id"] for r in recs}) == 1
    assert len({r["digest"] for r in recs}) == 1
    for rec in recs:
        assert rec["standins"] == [c.origin]
        assert rec["flags"][c.origin] == ["no_seal"]
    part = Record.from_dict(recs[0]["record"]).part(c.origin)
    assert part is not None
    assert part.basis == "checkpoint"
    asm = a.fed._own().assembly(a.fed._own().issue(issue).assembly)
    part.verify_standin(c.node.key.public_key, asm, close)
    await sim.step(2)
    att = await _attestations(b, issue)
    assert {x["origin"] for x in att["attestations"]} == {a.origin, b.origin, c.origin}
    assert att["agree"]


async def test_a_member_gone_for_good_leaves_the_record_pending_and_named(sim: Sim) -> None:
    a, b, c, issue, _close = await _setup(sim)
    sim.down.add("c")  # C never seals, never pushes again
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(2)
    sim.clock.advance(GRACE * 10)
    await sim.step(4)
    for sn in (a, b):
        err = await _pending(sn, issue)
        (waiting,) = err.details["waiting"]
        assert waiting["origin"] == c.origin
        assert "after close + grace" in waiting["reason"]
        att = await _attestations(sn, issue)
        assert att["attestations"] == []
