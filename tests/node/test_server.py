"""node/server.py: graceful stop with requests in flight, peers exempt from the rate limit, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import aiohttp

from node.server import configure_logging, create_app, serve
from node.store import Store
from tests.conftest import open_civic


async def test_stop_finishes_requests_in_flight_then_signs(make_node, clock) -> None:
    c = open_civic(make_node(), clock, citizens=1)
    node = c.node
    entered, release = threading.Event(), threading.Event()
    node.writer.hooks.append(lambda store, accepted: (entered.set(), release.wait(10)))
    stop = asyncio.Event()
    bound: list[str] = []
    server = asyncio.create_task(serve(node, "127.0.0.1", 0, on_bound=bound.append, stop=stop))
    while not bound:
        if server.done():
            server.result()  # serve failed: raise its error
        await asyncio.sleep(0.01)
    ev = c.citizens[0].delegate("area", c.area, [])
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        post = asyncio.create_task(session.post(bound[0] + "v1/events", data=ev.encode()))
        assert await loop.run_in_executor(None, entered.wait, 10)
        stop.set()  # what SIGTERM does
        await asyncio.sleep(0.2)
        assert not post.done()  # the node waits for it
        release.set()
        resp = await post
        assert resp.status == 201
        receipt = (await resp.json())["receipt"]
    await asyncio.wait_for(server, 30)
    store = Store.open(node.data_dir, writer=True)  # the lock was released
    try:
        info = store.verify_log(node.origin)
        cp = store.latest_checkpoint(node.origin)
        assert cp is not None
        assert cp.size == info.size == receipt["index"] + 1  # the final checkpoint covers it
    finally:
        store.close()


async def test_configured_peers_are_not_rate_limited(make_node, aiohttp_client) -> None:
    node = make_node(rate_limit_per_s=0.1, rate_limit_burst=1)
    node.store.add_peer("http://127.0.0.1:9/", "peer.example", "peer.example+00000000+AA")
    client = await aiohttp_client(create_app(node, extensions=()))
    statuses = {(await client.post("/v1/events", data=b"{}")).status for _ in range(4)}
    assert statuses == {422}


async def test_bare_app_has_only_the_api(make_node, aiohttp_client) -> None:
    client = await aiohttp_client(create_app(make_node(), extensions=()))
    assert (await client.get("/")).status == 404
    assert (await client.get("/v1/logs")).status == 200


def test_json_logs_on_stderr(capsys) -> None:
    configure_logging("json", "INFO")
    try:
        logging.getLogger("liquide.node").info("hello %s", "city")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = json.loads(line)
        assert (record["level"], record["logger"], record["message"]) == (
            "INFO",
            "liquide.node",
            "hello city",
        )
    finally:
        root = logging.getLogger("liquide")
        root.handlers.clear()
        root.propagate = True
