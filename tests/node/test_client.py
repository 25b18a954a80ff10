"""node/client.py against a live test server, and its bounds against hostile transports."""

from __future__ import annotations

import pytest

from node.client import NodeClient, Response
from node.errors import ApiError, PeerError
from node.server import create_app
from protocol.checkpoint import BatchedReceipt, Receipt, SignedCheckpoint, parse_receipt
from protocol.merkle import leaf_hash, verify_consistency, verify_inclusion


@pytest.fixture
async def live(civic, aiohttp_server):
    c = civic()
    server = await aiohttp_server(create_app(c.node))
    async with NodeClient(str(server.make_url("/"))) as client:
        yield client, c


async def test_every_read_and_write(live) -> None:
    client, c = live
    node = c.node
    pk = node.key.public_key
    a, b = c.citizens[0], c.citizens[1]
    ev = a.delegate("area", c.area, [b.pk])
    receipt = await client.submit(ev)
    Receipt.from_dict(receipt).verify(pk)
    ballot = b.ballot(c.issue, {"yes": 1})
    (res,) = await client.submit_batch([ballot])
    batched = parse_receipt(res["receipt"])
    assert isinstance(batched, BatchedReceipt)
    batched.verify(pk, leaf=ballot.encode())
    assert (await client.receipt(ballot.id))["receipt"] == res["receipt"]
    await client.wait_ready()
    size = node.writer.size
    # On the writer thread, as the node's own ticker does: a direct call from this thread could
    # race the ticker's checkpoint of the same size on the shared connection.
    await node.ingest.call(node.writer.sign_checkpoint)
    note = await client.checkpoint(node.origin)
    cp = SignedCheckpoint.parse(note).verify(node.origin, pk)
    assert cp.size == size
    leaves = await client.entries(node.origin, 0, size)
    assert len(leaves) == size
    idx = receipt["index"]
    proof = await client.inclusion_proof(node.origin, idx, size)
    verify_inclusion(leaf_hash(leaves[idx]), idx, size, proof, cp.root)
    old = SignedCheckpoint.parse(await client.checkpoint(node.origin, 0)).checkpoint
    verify_consistency(
        0, size, old.root, cp.root, await client.consistency_proof(node.origin, 0, size)
    )
    got = await client.receipt(ev.id)
    assert got["receipt"] == receipt
    assert [x["origin"] for x in await client.logs()] == [node.origin]
    assert (await client.voter(a.pk))["head"] == {"seq": 1, "event_id": ev.id}
    assert (await client.issue(c.issue))["ballots"] == 1
    assert [x["id"] for x in await client.issues(state="open")] == [c.issue]
    assert [x["id"] for x in await client.areas(c.assembly)] == [c.area]
    assert [x["id"] for x in await client.assemblies()] == [c.assembly]
    assert await client.proofs() == []
    assert await client.health()


async def test_refusals_raise_api_errors_with_details(live) -> None:
    client, c = live
    a = c.citizens[0]
    first = a.delegate("area", c.area, [])
    await client.submit(first)
    a.seq, a.prev = 0, None
    with pytest.raises(ApiError) as info:
        await client.submit(a.delegate("area", c.area, [c.citizens[1].pk]))
    assert (info.value.status, info.value.code) == (409, "seq_used")
    assert info.value.details["head"] == {"seq": 1, "event_id": first.id}
    with pytest.raises(ApiError) as info:
        await client.tally(c.issue)
    assert info.value.code == "not_sealed"


async def test_unreachable_node_is_a_peer_error() -> None:
    async with NodeClient("http://127.0.0.1:9/") as client:
        with pytest.raises(PeerError, match=r"127\.0\.0\.1:9"):
            await client.logs()
        assert not await client.health()


async def test_answers_beyond_the_bound_are_refused(live, aiohttp_server) -> None:
    client, _c = live
    url = client.transport.base_url  # type: ignore[attr-defined]
    async with NodeClient(url, max_response_bytes=64) as small:
        with pytest.raises(PeerError, match="exceeds the bound"):
            await small.logs()


class _Garbage:
    def __init__(self, resp: Response) -> None:
        self.resp = resp

    async def request(self, method, path, *, params=None, body=None, content_type=None) -> Response:
        return self.resp

    async def close(self) -> None:
        return None


async def test_injected_transports_and_malformed_answers() -> None:
    async with NodeClient(_Garbage(Response(200, b"not json"))) as client:
        with pytest.raises(PeerError, match="not JSON"):
            await client.logs()
    async with NodeClient(_Garbage(Response(500, b"<html>"))) as client:
        with pytest.raises(PeerError, match="HTTP 500 without an error body"):
            await client.logs()
    async with NodeClient(_Garbage(Response(200, b"a\nb"))) as client:
        with pytest.raises(PeerError, match="newline"):
            await client.entries("x", 0, 5)
    async with NodeClient(_Garbage(Response(200, b"a\nb\nc\n"))) as client:
        with pytest.raises(PeerError, match="3 lines for 2 asked"):
            await client.entries("x", 0, 2)
    async with NodeClient(_Garbage(Response(200, b'{"proof": ["***"]}'))) as client:
        with pytest.raises(PeerError, match="base64"):
            await client.inclusion_proof("x", 0, 1)
