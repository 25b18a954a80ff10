"""Assemblies across cities, witnessing, seals, records and attestations in a simulated
federation: a line A–B–C where A and C are the member cities and B their witness."""

from __future__ import annotations

from typing import Any

import pytest

from crypto import SecretKey
from node._registrar import enrol, issue_seal
from node.client import Response
from protocol.checkpoint import SignedCheckpoint
from protocol.record import Record

from .test_federation_harness import Sim, SimNode, make_assembly, make_issue

CLOSE_IN = 100
GRACE = 60


async def _setup(
    sim: Sim, *, k: int = 1, refuse_c: bool = False
) -> tuple[SimNode, SimNode, SimNode, str, int]:
    """A–B–C, assembly of A and C witnessed by B, one issue; citizens who vote and delegate.

    With ``refuse_c``, B answers C's pushes with 503 until the test registers B's handler again.
    """
    a, b, c = await sim.line(["a", "b", "c"])
    if refuse_c:
        handler = sim.net.handlers[b.url]

        async def refuse(req: Any) -> Response:
            if req.source == c.url and req.path.endswith("add-checkpoint"):
                return Response(503, b"busy\n")
            return await handler(req)

        sim.net.register(b.url, refuse)
        sim.b_handler = handler  # type: ignore[attr-defined]
    asm = await make_assembly(a, [a, c], [b], k=k, grace=GRACE)
    await sim.step(2)
    await sim.join(c, asm, via=b)
    now = int(sim.clock())
    _, issue = await make_issue(a, asm, opens=now, closes=now + CLOSE_IN)
    await sim.step(3)
    assert issue in c.fed._own().issues  # adopted automatically, through B
    for name in ("ann", "al"):
        await a.enrol_citizen(name)
    for name in ("cat", "cy"):
        await c.enrol_citizen(name)
    cat, cy = c.citizens["cat"].public_key.to_text(), c.citizens["cy"].public_key.to_text()
    # A cross-city ranked delegation, direct ballots on both sides.
    await a.submit("ann", "delegate", {"scope": "issue", "target": issue, "trustees": [cat, cy]})
    await a.submit("al", "ballot", {"issue": issue, "grades": {"yes": 1, "no": -1}})
    await c.submit("cat", "ballot", {"issue": issue, "grades": {"yes": -1, "no": 1}})
    await c.submit("cy", "ballot", {"issue": issue, "grades": {"yes": 1}})
    await sim.step(2)
    return a, b, c, issue, now + CLOSE_IN


async def _attestations(sn: SimNode, issue: str) -> dict[str, Any]:
    return await sn.client().get_json(f"/v1/issues/{issue}/attestations")


async def _record(sn: SimNode, issue: str) -> dict[str, Any]:
    return await sn.client().get_json(f"/v1/issues/{issue}/record")


async def test_witness_cosigns_and_cosignatures_are_published(sim: Sim) -> None:
    a, b, _c, _issue, _close = await _setup(sim)
    note = await a.client().checkpoint(a.origin)
    sc = SignedCheckpoint.parse(note)
    cosig = sc.verify_cosignature(b.origin, b.node.key.public_key)
    assert cosig.time <= int(sim.clock())
    # B's view of what it cosigned is the last checkpoint A pushed.
    logs = {log["origin"]: log for log in await a.client().logs()}
    assert logs[a.origin]["cosignatures"]


async def test_seals_at_close_then_every_node_attests_the_same_record(sim: Sim) -> None:
    a, b, c, issue, _close = await _setup(sim)
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(4)
    recs = [await _record(sn, issue) for sn in (a, b, c)]
    assert len({r["record_id"] for r in recs}) == 1
    assert len({r["digest"] for r in recs}) == 1
    record = Record.from_dict(recs[0]["record"])
    assert record.id == recs[0]["record_id"]
    assert [p.basis for p in record.parts] == ["seal", "seal"]
    assert recs[0]["flags"] == {a.origin: [], c.origin: []}
    await sim.step(2)
    att = await _attestations(b, issue)
    assert {x["origin"] for x in att["attestations"]} == {a.origin, b.origin, c.origin}
    assert att["agree"]
    assert not att["disagreements"]
    # ann's weight went, through her ranked cross-city delegation, to cat (who voted no).
    result = recs[0]["result"]
    ann = a.citizens["ann"].public_key.to_text()
    cat = c.citizens["cat"].public_key.to_text()
    assert result["voters"][ann]["path"] == [cat]
    assert result["voters"][cat]["weight"] == 2
    assert result["winner"] == "no"


async def test_early_seal_is_flagged(sim: Sim) -> None:
    a, _b, c, issue, _close = await _setup(sim)
    await a.admin(issue_seal, issue)  # before the close
    await sim.step(2)  # B cosigns the seal before the close
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(4)
    rec = await _record(c, issue)
    assert rec["flags"][a.origin] == ["early_seal"]
    assert rec["flags"][c.origin] == []


async def test_late_seal_is_flagged(sim: Sim) -> None:
    # B refuses C's pushes until after close + grace: nothing of C is witnessed in time, so no
    # checkpoint can stand in for C and the record waits for C's seal, then flags it late.
    a, b, c, issue, _close = await _setup(sim, refuse_c=True)
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(2)  # both seal; A's seal is witnessed in time, C's is not
    sim.clock.advance(GRACE + 10)
    sim.net.register(b.url, sim.b_handler)  # type: ignore[attr-defined]
    await sim.step(4)
    for sn in (a, b, c):
        rec = await _record(sn, issue)
        assert "late_seal" in rec["flags"][c.origin], sn.name
        assert rec["flags"][a.origin] == []
        part = Record.from_dict(rec["record"]).part(c.origin)
        assert part is not None
        assert part.basis == "seal"


def never_seals(monkeypatch: pytest.MonkeyPatch, sn: SimNode) -> None:
    """``sn`` keeps running (it checkpoints, pushes, syncs) but never seals an issue."""
    monkeypatch.setattr(sn.node.writer, "due_seals", list)


async def past_deadline_without_seal(sim: Sim, c: SimNode) -> None:
    """Close, then close + grace pass; C's log grows after that and B cosigns it, without a seal:
    the evidence that lets every node stand a checkpoint in for C (docs/PROTOCOL.md §8.6)."""
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(2)  # A seals at the close; B cosigns it
    sim.clock.advance(GRACE)
    await c.enrol_citizen("later")
    await sim.step(3)


async def test_missing_seal_is_replaced_by_a_witnessed_checkpoint(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c, issue, close = await _setup(sim)
    never_seals(monkeypatch, c)
    await past_deadline_without_seal(sim, c)
    recs = [await _record(sn, issue) for sn in (a, b)]
    assert recs[0]["record_id"] == recs[1]["record_id"]
    assert recs[0]["flags"][c.origin] == ["no_seal"]
    assert recs[0]["standins"] == [c.origin]
    record = Record.from_dict(recs[0]["record"])
    part = record.part(c.origin)
    assert part is not None
    assert part.basis == "checkpoint"
    asm = a.fed._own().assembly(a.fed._own().issue(issue).assembly)
    part.verify_standin(c.node.key.public_key, asm, close)
    att = await _attestations(a, issue)
    assert att["agree"]


async def test_key_enrolled_by_two_member_cities_is_excluded_and_reported(sim: Sim) -> None:
    a, b, c, issue, _close = await _setup(sim)
    dual = SecretKey.generate()
    for sn in (a, c):
        await sn.admin(enrol, dual.public_key.to_text(), "dual")
        sn.citizens["dual"] = dual
    await a.submit("dual", "ballot", {"issue": issue, "grades": {"yes": 1}})
    sim.clock.advance(CLOSE_IN + 1)
    await sim.step(4)
    rec = await _record(b, issue)
    key = dual.public_key.to_text()
    twice = [f for f in rec["findings"] if f["reason"] == "enrolled_twice"]
    assert {f["origin"] for f in twice} == {a.origin, c.origin}
    assert all(key in f["message"] for f in twice)
    assert key not in rec["result"]["voters"]


async def test_tally_and_explain_serve_the_record_the_node_attests(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a stand-in for C, the seal-only record would differ; /tally and /explain must show
    # the federation's settled record, the one every node attests.
    a, b, c, issue, _close = await _setup(sim)
    never_seals(monkeypatch, c)
    await past_deadline_without_seal(sim, c)
    for sn in (a, b):
        rec = await _record(sn, issue)
        tally = await sn.client().get_json(f"/v1/issues/{issue}/tally")
        assert tally["record_id"] == rec["record_id"]
        assert tally["result"]["digest"] == rec["digest"]
        assert tally["standins"] == [c.origin]
        ann = a.citizens["ann"].public_key.to_text()
        why = await sn.client().get_json(f"/v1/voters/{ann}/explain/{issue}")
        assert why["digest"] == rec["digest"]
        assert why["status"] == "delegated"
