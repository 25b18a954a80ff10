"""When a node may settle a member city's part of a record (docs/PROTOCOL.md §8.6).

A line A–B–C: A and C are the member cities, B their only witness (k = 1). Each test puts one
node in a position where its own clock is past close + grace but its view of a member is
incomplete, and checks that honest nodes never attest different records.
"""

from __future__ import annotations

from typing import Any

import pytest

from node._federation import settle_part
from node.client import Response
from node.errors import ApiError
from protocol._sync import CosignFact
from protocol.record import Record

from .test_federation_harness import Sim, SimNode
from .test_federation_records import CLOSE_IN, GRACE, _setup, never_seals


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
    # The issue page says so, in both languages, and its JSON twin carries the list.
    page = await c.client().get_json(f"/issues/{issue}.json")
    assert [w["origin"] for w in page["waiting"]] == [a.origin]
    for lang, heading in (("en", "Waiting for signed evidence"), ("fr", "preuves signées")):
        resp = await c.client().transport.request("GET", f"/issues/{issue}", params={"lang": lang})
        html = resp.body.decode()
        assert heading in html
        assert a.origin in html.split('id="waiting-h"')[1]
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


def _facts(*items: tuple[str, int, int]) -> list[CosignFact]:
    return [CosignFact(w, size, t) for w, size, t in items]


@pytest.mark.parametrize(
    ("facts", "seal", "late", "k", "want"),
    [
        # Covered before the close, or between the close and close + grace.
        (_facts(("w1", 11, 99)), 10, (), 1, ("seal", ("early_seal",))),
        (_facts(("w1", 11, 159)), 10, (), 1, ("seal", ())),
        # Covered only at close + grace: late, unless a later checkpoint without it is shown.
        (_facts(("w1", 11, 160)), 10, (), 1, ("seal", ("late_seal",))),
        (_facts(("w1", 11, 170)), 10, ("w1",), 1, ("checkpoint", ("no_seal",))),
        # A timely seal wins over a deadline checkpoint (which honest witnesses cannot make).
        (_facts(("w1", 11, 100)), 10, ("w2",), 1, ("seal", ())),
        # k counts distinct witnesses, for the seal and for the evidence against it.
        (_facts(("w1", 11, 100), ("w1", 12, 101)), 10, (), 2, (None, ())),
        (_facts(("w1", 11, 100), ("w2", 12, 101)), 10, (), 2, ("seal", ())),
        ([], None, ("w1",), 2, (None, ())),
        ([], None, ("w1", "w2"), 2, ("checkpoint", ("no_seal",))),
        # No seal and no evidence: wait, however late the node's clock is.
        (_facts(("w1", 5, 90)), None, (), 1, (None, ())),
        # Without witnesses a seal settles unflagged, and a missing seal is waited for.
        ([], 10, (), 0, ("seal", ())),
        ([], None, ("w1",), 0, (None, ())),
    ],
)
def test_settle_part_decides_from_signed_facts_only(
    facts: list[CosignFact],
    seal: int | None,
    late: tuple[str, ...],
    k: int,
    want: tuple[str | None, tuple[str, ...]],
) -> None:
    rule = settle_part(facts, seal=seal, deadline_witnesses=late, close=100, grace=60, k=k)
    assert (rule.basis, rule.flags) == want
    assert bool(rule.waiting) == (rule.basis is None)
