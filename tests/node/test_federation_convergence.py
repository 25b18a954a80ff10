"""Convergence of simulated federations: lines, rings, partitions, and the spread of a
split-view proof. A round is every node syncing once with each of its peers; the bounds are on
round counts (diameter + 1), never on time."""

from __future__ import annotations

from protocol.checkpoint import SplitViewProof

from .test_federation_harness import Sim, SimNode, make_assembly, make_issue

N = 5


async def _federate(sim: Sim, nodes: list[SimNode]) -> str:
    """An assembly of every node, defined by the first, joined by the others through it."""
    first = nodes[0]
    asm = await make_assembly(first, nodes, [], k=0, grace=30)
    for sn in nodes[1:]:
        await sim.join(sn, asm, via=first)
    return asm


async def _vote_everywhere(sim: Sim, nodes: list[SimNode], issue: str, tag: str) -> None:
    for i, sn in enumerate(nodes):
        name = f"{tag}{i}"
        await sn.enrol_citizen(name)
        grade = 1 if i % 2 else -1
        await sn.submit(name, "ballot", {"issue": issue, "grades": {"yes": grade}})


async def _ring(sim: Sim, names: list[str]) -> list[SimNode]:
    nodes = await sim.line(names)
    await sim.link(nodes[-1], nodes[0])
    return nodes


def _digests(nodes: list[SimNode], issue: str) -> set[str]:
    return {sn.fed._records[issue].digest for sn in nodes if issue in sn.fed._records}


async def _converge_and_tally(sim: Sim, nodes: list[SimNode], diameter: int) -> None:
    asm = await _federate(sim, nodes)
    await sim.step(1)
    now = int(sim.clock())
    _, issue = await make_issue(nodes[0], asm, opens=now, closes=now + 50)
    # Adoption spreads as the issue's log does; then everyone votes.
    for _ in range(diameter + 1):
        await sim.step(1)
    assert all(issue in sn.fed._own().issues for sn in nodes)
    await _vote_everywhere(sim, nodes, issue, "v")
    rounds = await sim.rounds_to_converge(diameter + 1)
    assert rounds <= diameter + 1
    sim.clock.advance(51)
    await sim.tick()  # everyone seals
    assert await sim.rounds_to_converge(diameter + 1) <= diameter + 1
    await sim.tick()  # records settle; everyone attests
    assert await sim.rounds_to_converge(diameter + 1) <= diameter + 1
    digests = _digests(nodes, issue)
    assert len(digests) == 1
    await sim.tick()
    att = await nodes[-1].client().get_json(f"/v1/issues/{issue}/attestations")
    assert {a["origin"] for a in att["attestations"]} == {sn.origin for sn in nodes}
    assert att["agree"]


async def test_line_of_five_converges_within_diameter_plus_one(sim: Sim) -> None:
    nodes = await sim.line([f"n{i}" for i in range(N)])
    await _converge_and_tally(sim, nodes, diameter=N - 1)


async def test_ring_of_five_converges_within_diameter_plus_one(sim: Sim) -> None:
    nodes = await _ring(sim, [f"r{i}" for i in range(N)])
    await _converge_and_tally(sim, nodes, diameter=N // 2)


async def test_partition_with_voting_on_both_sides_then_heal(sim: Sim) -> None:
    nodes = await _ring(sim, [f"p{i}" for i in range(N)])
    asm = await _federate(sim, nodes)
    now = int(sim.clock())
    _, issue = await make_issue(nodes[0], asm, opens=now, closes=now + 500)
    await sim.step(N)
    left, right = nodes[:2], nodes[2:]
    sim.net.partition([sn.url for sn in left], [sn.url for sn in right])
    await _vote_everywhere(sim, left, issue, "l")
    await _vote_everywhere(sim, right, issue, "r")
    await sim.step(3)
    assert not sim.converged()
    assert sim.converged([sn.name for sn in right])
    sim.net.heal()
    assert await sim.rounds_to_converge(N // 2 + 1) <= N // 2 + 1
    # Nothing lost: every node's mirror of every city holds that city's whole log.
    for sn in nodes:
        for other in nodes:
            own = other.node.reader.log(other.origin)
            held = sn.node.reader.log(other.origin)
            assert own is not None
            assert held is not None
            assert (held.size, held.root()) == (own.size, own.root())
    for sn in nodes:
        await sn.fed.tick()
    assert all(
        sum(1 for k in sn.fed._own().ballots.get(issue, {})) == 1 for sn in nodes
    )  # each city's own voter, kept through the partition


async def test_split_view_proof_spreads_within_diameter_plus_one(sim: Sim) -> None:
    # M shows one history to n0 and another to n2: two nodes with one key and one origin.
    m1 = await sim.add("m1", origin="m.example/liquide")
    m2 = await sim.add("m2", twin_of=m1)
    n0, n1, n2 = await sim.line(["n0", "n1", "n2"])
    await sim.link(m1, n0)
    await sim.link(m2, n2)
    # The honest cities pin M as a member city of their assembly.
    asm = await make_assembly(n0, [n0, n1, n2, m1], [], k=0, grace=30)
    for sn in (n1, n2):
        await sim.join(sn, asm, via=n0)
    await m1.enrol_citizen("x")
    await m2.enrol_citizen("y")  # same index, another leaf: a real split view
    await sim.checkpoint()
    diameter = 4  # m1 – n0 – n1 – n2 – m2
    honest = [n0, n1, n2]
    rounds = 0
    while not all(sn.node.reader.proofs() for sn in honest):
        assert rounds <= diameter, "the proof did not spread within diameter + 1 rounds"
        await sim.step(1)
        rounds += 1
    for sn in honest:
        proofs = sn.node.reader.proofs()
        assert len(proofs) == 1
        proof = SplitViewProof.from_dict(proofs[0]["proof"])
        proof.verify(m1.node.key.public_key)
        info = sn.node.reader.log(m1.origin)
        assert info is not None
        assert info.frozen  # mirror frozen, prefix still served
    logs = {entry["origin"]: entry for entry in await n1.client().logs()}
    assert logs[m1.origin]["frozen"]
