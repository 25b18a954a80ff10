"""The bounded peer transport over real loopback HTTP: oversized answers and a trickle of bytes
fail with PeerError instead of exhausting or stalling the node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from node.client import NodeClient
from node.errors import PeerError
from node.transport import peer_transport


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * (3 << 20), content_type="application/json")


async def _trickle(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        for _ in range(100):
            await resp.write(b" ")
            await asyncio.sleep(0.1)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


async def _chunked_big(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        for _ in range(64):
            await resp.write(b"y" * 65536)
    except ConnectionResetError:
        pass
    return resp


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/v1/logs", _big)
    app.router.add_get("/v1/proofs", _trickle)
    app.router.add_get("/v1/cosignatures", _chunked_big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_oversized_answer_is_refused(server: str) -> None:
    async with NodeClient(peer_transport(server, max_response_bytes=1 << 20)) as client:
        with pytest.raises(PeerError, match="exceeds the bound"):
            await client.logs()


async def test_oversized_chunked_answer_is_refused(server: str) -> None:
    async with NodeClient(peer_transport(server, max_response_bytes=1 << 20)) as client:
        with pytest.raises(PeerError, match="exceeds the bound"):
            await client.get_json("/v1/cosignatures")


async def test_trickle_of_bytes_times_out(server: str) -> None:
    transport = peer_transport(server, timeout_s=0.5, connect_timeout_s=0.5)
    async with NodeClient(transport) as client:
        with pytest.raises(PeerError, match=r"timed out|Timeout"):
            await client.proofs()
