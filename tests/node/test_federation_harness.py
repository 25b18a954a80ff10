"""An in-process simulated federation (STYLE §6) and tests of the harness itself.

Every node is a real :class:`node._node.Node` over its own data directory, served by its real
aiohttp app through :class:`node.transport.AppHandler`; nodes reach each other through a
:class:`node.transport.MemoryNetwork` whose links the tests cut and heal. Loops do not run by
themselves: a test steps the federation with :meth:`Sim.round` (every node syncs once with each
of its peers) and :meth:`Sim.tick` (checkpoints, seals, adoption, attestations, witness pushes),
and a fake clock moves time.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crypto import SecretKey
from node._datadir import init_data_dir
from node._federation import Federation, FederationConfig, assembly_join, peer_add
from node._node import Node
from node._registrar import area_create, assembly_create, enrol, issue_create
from node.client import NodeClient
from node.errors import PeerError
from node.server import create_app
from node.transport import AppHandler, MemoryNetwork
from protocol.events import Event


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class SimNode:
    name: str
    url: str
    node: Node
    handler: AppHandler
    sim: Sim
    citizens: dict[str, SecretKey] = field(default_factory=dict)
    heads: dict[str, tuple[int, str | None]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.node.origin

    @property
    def fed(self) -> Federation:
        fed = self.node.extra["federation"]
        assert isinstance(fed, Federation)
        return fed

    @property
    def key(self) -> str:
        return self.node.key.public_key.to_text()

    @property
    def vkey(self) -> str:
        return self.node.vkey

    async def admin(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        assert self.node.ingest is not None
        return await self.node.ingest.call(lambda: fn(self.node.writer, *args, **kwargs))

    async def enrol_citizen(self, name: str) -> SecretKey:
        sk = SecretKey.generate()
        await self.admin(enrol, sk.public_key.to_text(), f"ref-{name}")
        self.citizens[name] = sk
        return sk

    def client(self) -> NodeClient:
        return NodeClient(self.sim.net.transport("http://client.sim/", self.url))

    def client_of(self, other: SimNode) -> NodeClient:
        """A client from this node to ``other`` (subject to this node's links)."""
        return NodeClient(self.sim.net.transport(self.url, other.url))

    async def submit(self, citizen: str, type_: str, body: dict[str, Any]) -> dict[str, Any]:
        sk = self.citizens[citizen]
        seq, prev = self.heads.get(citizen, (0, None))
        ev = Event.create(sk, type_, body, seq + 1, prev, int(self.sim.clock()))
        out = await self.client().submit(ev)
        self.heads[citizen] = (seq + 1, ev.id)
        return out

    def checkpoints(self) -> dict[str, tuple[int, bytes]]:
        out = {}
        for info in self.node.reader.logs():
            cp = self.node.reader.latest_checkpoint(info.origin)
            if cp is not None:
                out[info.origin] = (cp.size, cp.root)
        return out


class Sim:
    """A simulated federation of nodes on a :class:`MemoryNetwork`."""

    def __init__(self, tmp: Path, clock: Clock | None = None, **fed: Any) -> None:
        self.tmp = tmp
        self.clock = clock or Clock()
        self.net = MemoryNetwork()
        self.nodes: dict[str, SimNode] = {}
        self.down: set[str] = set()
        """Names of nodes that neither tick nor sync (crashed, or stuck)."""
        self.fed_config = FederationConfig(auto=False, **fed)

    async def add(
        self, name: str, *, origin: str | None = None, twin_of: SimNode | None = None
    ) -> SimNode:
        """Start a node; ``twin_of`` copies an idle node's data directory (same key and log),
        to play the second face of a city that shows two histories."""
        d = self.tmp / name
        if twin_of is not None:
            shutil.copytree(twin_of.node.data_dir, d, ignore=shutil.ignore_patterns("*.sock"))
        else:
            init_data_dir(
                d,
                origin or f"{name}.example/liquide",
                verify_workers=0,
                checkpoint_interval_s=3600.0,
                rate_limit_exempt=("127.0.0.0/8",),
            )
        node = Node.open(d, clock=self.clock)
        url = f"http://{name}.sim/"
        node.extra["federation_config"] = self.fed_config
        node.extra["transport_factory"] = lambda u, src=url: self.net.transport(src, u)
        handler = AppHandler(create_app(node))
        await handler.start()
        self.net.register(url, handler)
        sn = SimNode(name, url, node, handler, self)
        self.nodes[name] = sn
        return sn

    async def link(self, a: SimNode, b: SimNode) -> None:
        """Pin each as the other's peer."""
        await a.admin(peer_add, b.url, b.origin, b.vkey)
        await b.admin(peer_add, a.url, a.origin, a.vkey)

    async def line(self, names: list[str]) -> list[SimNode]:
        nodes = [await self.add(n) for n in names]
        for a, b in itertools.pairwise(nodes):
            await self.link(a, b)
        return nodes

    def _live(self) -> list[SimNode]:
        return [sn for sn in self.nodes.values() if sn.name not in self.down]

    async def checkpoint(self) -> None:
        """Every live node seals due issues and signs a checkpoint of its own log if it grew."""
        for sn in self._live():
            assert sn.node.ingest is not None
            await sn.node.ingest.call(sn.node.tick)

    async def round(self) -> None:
        """Every live node syncs once with each of its peers."""
        for sn in self._live():
            await sn.fed.sync_all()

    async def tick(self) -> None:
        """Checkpoints, then replay, adoption, attestation and pushes, then checkpoints."""
        await self.checkpoint()
        for sn in self._live():
            await sn.fed.tick()
        await self.checkpoint()

    async def step(self, n: int = 1) -> None:
        for _ in range(n):
            await self.tick()
            await self.round()

    async def join(self, member: SimNode, assembly: str, via: SimNode) -> None:
        """``member`` joins ``assembly``, fetching its definition from ``via``."""
        got = await member.client_of(via).get_json(f"/v1/events/{assembly}")
        await member.admin(assembly_join, assembly, definition=got["event"])

    def converged(self, names: list[str] | None = None) -> bool:
        """Every node holds the same latest checkpoint of every origin any node holds."""
        views = [
            sn.checkpoints() for sn in self.nodes.values() if names is None or sn.name in names
        ]
        origins = set().union(*views)
        return all(v.keys() == origins for v in views) and all(v == views[0] for v in views)

    async def rounds_to_converge(self, limit: int, names: list[str] | None = None) -> int:
        """Run rounds until converged; return how many it took (fails beyond ``limit``)."""
        await self.checkpoint()
        for n in range(limit + 1):
            if self.converged(names):
                return n
            await self.round()
        raise AssertionError(f"not converged after {limit} rounds")

    async def close(self) -> None:
        for sn in self.nodes.values():
            await sn.handler.stop()


async def make_assembly(
    owner: SimNode, members: list[SimNode], witnesses: list[SimNode], k: int, grace: int
) -> str:
    out = await owner.admin(
        assembly_create,
        name="metro",
        members=[[m.origin, m.key] for m in members],
        witnesses=[[w.origin, w.key] for w in witnesses],
        k=k,
        grace=grace,
    )
    return str(out["event_id"])


async def make_issue(owner: SimNode, assembly: str, opens: int, closes: int) -> tuple[str, str]:
    area = (await owner.admin(area_create, assembly, "transport"))["event_id"]
    issue = await owner.admin(
        issue_create,
        area=area,
        title="tram line",
        options=[["yes", "Build it"], ["no", "Do not"]],
        opens=opens,
        closes=closes,
    )
    return str(area), str(issue["event_id"])


async def test_memory_network_cut_and_heal(sim: Sim) -> None:
    a, b = await sim.line(["a", "b"])
    sim.net.cut(a.url, b.url)
    with pytest.raises(PeerError, match="link cut"):
        await a.fed.sync_peer(b.url)
    sim.net.heal()
    report = await a.fed.sync_peer(b.url)
    assert report.peer == b.url


async def test_two_nodes_mirror_each_other(sim: Sim) -> None:
    a, b = await sim.line(["a", "b"])
    await a.enrol_citizen("ann")
    await b.enrol_citizen("bob")
    assert await sim.rounds_to_converge(2) <= 2
    assert a.checkpoints()[b.origin] == b.checkpoints()[b.origin]
    assert b.checkpoints()[a.origin][0] == 1  # the enrolment
