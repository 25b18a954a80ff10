"""Real multi-process federation on loopback: five ``liquide node serve`` processes.

One test, kept short: a line n0 – n1 – n2 – n3 – n4 whose middle link goes through local TCP
proxies; the proxies are cut (a partition), citizens vote on both sides, the link heals, every
node converges to the same checkpoint of every origin; then the line is closed into a ring, the
issue closes, and all five nodes attest the same tally digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from crypto import SecretKey
from node._admin_socket import call
from node._datadir import init_data_dir
from node.client import NodeClient
from node.errors import PeerError
from protocol.checkpoint import SignedCheckpoint
from protocol.events import Event

pytestmark = pytest.mark.timeout(240)

ENV = {
    **os.environ,
    "LIQUIDE_CHECKPOINT_INTERVAL_S": "0.2",
    "LIQUIDE_VERIFY_WORKERS": "0",
    "LIQUIDE_RATE_LIMIT_EXEMPT": "127.0.0.0/8",
    "LIQUIDE_LOG_LEVEL": "WARNING",
    "LIQUIDE_FED_SYNC_INTERVAL_S": "0.2",
    "LIQUIDE_FED_TICK_INTERVAL_S": "0.2",
    "LIQUIDE_FED_BACKOFF_MAX_S": "1",
    "LIQUIDE_FED_PEER_TIMEOUT_S": "3",
}


class Proxy:
    """A TCP proxy to one node, which the test can cut (partition) and heal."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._pipe_both(reader, writer)

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_w}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self.writers -= {writer, up_w}

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.close()
        await self.server.wait_closed()

    async def heal(self) -> None:
        await self.start()


class Proc:
    def __init__(self, name: str, data: Path) -> None:
        self.name = name
        self.origin = f"{name}.procs/liquide"
        self.data = data
        _, key = init_data_dir(data, self.origin)
        self.key = key.public_key
        self.vkey = self.key.to_vkey(self.origin)
        argv = [sys.executable, "-c", "import sys; from node.cli import main; sys.exit(main())"]
        with (data.parent / f"{name}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [*argv, "node", "serve", "--data", str(data), "--port", "0"],
                stdout=subprocess.PIPE,
                stderr=log,
                env=ENV,
            )
        self.url = ""
        self.port = 0
        self.heads: dict[str, tuple[int, str | None]] = {}

    def wait_url(self) -> None:
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        assert self.url.startswith("http://"), f"{self.name} did not start"
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))

    async def admin(self, op: str, **args: Any) -> dict[str, Any]:
        out = await asyncio.to_thread(call, self.data, op, args)
        assert out is not None
        return out

    async def get(self, path: str) -> Any:
        async with NodeClient(self.url) as c:
            return await c.get_json(path)

    async def vote(self, name: str, issue: str, grade: int) -> None:
        sk = SecretKey.generate()
        await self.admin("enrol", key=sk.public_key.to_text(), ref=name)
        ev = Event.create(
            sk, "ballot", {"issue": issue, "grades": {"yes": grade}}, 1, None, int(time.time())
        )
        async with NodeClient(self.url) as c:
            await c.submit(ev)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def _views(nodes: list[Proc]) -> list[dict[str, tuple[int, bytes]]]:
    out = []
    for n in nodes:
        logs = (await n.get("/v1/logs"))["logs"]
        view = {}
        for lg in logs:
            cp = SignedCheckpoint.parse(lg["checkpoint"]).checkpoint
            view[lg["origin"]] = (cp.size, cp.root)
        out.append(view)
    return out


async def _until(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except PeerError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def _converged(nodes: list[Proc]) -> bool:
    views = await _views(nodes)
    return all(len(v) == len(nodes) for v in views) and all(v == views[0] for v in views)


async def _peer(a: Proc, b: Proc, a_to_b: str | None = None, b_to_a: str | None = None) -> None:
    await a.admin("peer.add", url=a_to_b or b.url, origin=b.origin, key=b.vkey)
    await b.admin("peer.add", url=b_to_a or a.url, origin=a.origin, key=a.vkey)


async def test_five_processes_partition_heal_ring_and_attest(tmp_path: Path) -> None:
    nodes = [Proc(f"n{i}", tmp_path / f"n{i}") for i in range(5)]
    proxies: list[Proxy] = []
    try:
        for n in nodes:
            n.wait_url()
        to2, to1 = Proxy(nodes[2].port), Proxy(nodes[1].port)
        proxies += [to2, to1]
        for p in proxies:
            await p.start()
        await _peer(nodes[0], nodes[1])
        await _peer(
            nodes[1], nodes[2], f"http://127.0.0.1:{to2.port}/", f"http://127.0.0.1:{to1.port}/"
        )
        await _peer(nodes[2], nodes[3])
        await _peer(nodes[3], nodes[4])
        first = nodes[0]
        members = [[n.origin, n.vkey] for n in nodes]
        asm = (
            await first.admin(
                "assembly.create", name="five", members=members, witnesses=[], k=0, grace=2
            )
        )["event_id"]
        definition = (await first.get(f"/v1/events/{asm}"))["event"]
        for n in nodes[1:]:
            await n.admin("assembly.join", assembly=asm, definition=definition)
        area = (await first.admin("area.create", assembly=asm, name="a"))["event_id"]
        now = int(time.time())
        issue = (
            await first.admin(
                "issue.create",
                area=area,
                title="t",
                options=[["yes", "Yes"]],
                opens=now,
                closes=now + 25,
            )
        )["event_id"]

        async def adopted() -> bool:
            for n in nodes:
                try:
                    await n.get(f"/v1/issues/{issue}")
                except PeerError:
                    return False
            return True

        await _until("every city to adopt the issue", adopted)
        await to2.cut()
        await to1.cut()
        for i, n in enumerate(nodes):
            await n.vote(f"v{i}", issue, 1 if i % 2 else -1)
        await _until("each side to converge", lambda: _side_converged(nodes[2:]))
        assert not await _converged(nodes)
        await to2.heal()
        await to1.heal()
        await _until("convergence after the heal", lambda: _converged(nodes))
        for n in nodes:  # nothing lost: every city's own log is whole everywhere
            own = (await _views([n]))[0][n.origin]
            assert all(v[n.origin] == own for v in await _views(nodes))
        await _peer(nodes[4], nodes[0])  # close the line into a ring

        async def attested() -> bool:
            docs = [await n.get(f"/v1/issues/{issue}/attestations") for n in nodes]
            return all(len(d["attestations"]) == 5 and d["agree"] for d in docs)

        await _until("five agreeing attestations on every node", attested, timeout=90)
        digests = {(await n.get(f"/v1/issues/{issue}/record"))["digest"] for n in nodes}
        assert len(digests) == 1
        assert await _converged(nodes)
    finally:
        for n in nodes:
            n.stop()
        for p in proxies:
            with contextlib.suppress(Exception):
                await p.cut()


async def _side_converged(side: list[Proc]) -> bool:
    views = await _views(side)
    return all(v == views[0] for v in views) and all(
        json.dumps(sorted(v)) == json.dumps(sorted(views[0])) for v in views
    )
