"""node/server.py: graceful stop with requests in flight, peers exempt from the rate limit, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import aiohttp

from node.server import RateLimiter, configure_logging, create_app, serve, web_pages
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


async def test_reads_have_a_bucket_of_their_own(make_node, aiohttp_client) -> None:
    node = make_node(get_rate_limit_per_s=0.1, get_rate_limit_burst=2, rate_limit_burst=1)
    client = await aiohttp_client(create_app(node, extensions=()))
    assert [(await client.get("/v1/logs")).status for _ in range(2)] == [200, 200]
    resp = await client.get("/v1/logs")
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    error = (await resp.json())["error"]
    assert error["code"] == "rate_limited"
    assert "too many reads" in error["message"]
    assert "0.1 per second" in error["message"]
    # POSTs keep their own bucket: the reads did not use it up.
    assert (await client.post("/v1/events", data=b"{}")).status == 422
    assert (await client.post("/v1/events", data=b"{}")).status == 429
    # Probes are not counted, and the refusals are.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status in (200, 503), path
    text = await (await client.get("/metrics")).text()
    assert "liquide_read_rate_limited_total 1.0" in text
    assert "liquide_rate_limited_total 1.0" in text


async def test_a_rate_limited_page_is_a_short_html_answer(make_node, aiohttp_client) -> None:
    node = make_node(get_rate_limit_per_s=0.1, get_rate_limit_burst=1)
    client = await aiohttp_client(create_app(node, extensions=(web_pages,)))
    await client.get("/static/liquide.css")
    resp = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert resp.status == 429
    assert resp.content_type == "text/html"
    assert int(resp.headers["Retry-After"]) >= 1
    body = await resp.text()
    assert "<h1>Too many requests</h1>" in body
    assert "too many reads from 127.0.0.1" in body
    # A client of the JSON twin gets the JSON error body.
    resp = await client.get("/index.json", headers={"Accept": "text/html"})
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "rate_limited"


async def test_peers_and_exempt_networks_are_not_read_limited(make_node, aiohttp_client) -> None:
    node = make_node(get_rate_limit_per_s=0.1, get_rate_limit_burst=1)
    node.store.add_peer("http://127.0.0.1:9/", "peer.example", "peer.example+00000000+AA")
    client = await aiohttp_client(create_app(node, extensions=()))
    assert {(await client.get("/v1/logs")).status for _ in range(5)} == {200}
    other = make_node(
        get_rate_limit_per_s=0.1, get_rate_limit_burst=1, rate_limit_exempt=("127.0.0.0/8", "::1")
    )
    client2 = await aiohttp_client(create_app(other, extensions=()))
    assert {(await client2.get("/v1/logs")).status for _ in range(5)} == {200}


def test_exemption_memo_is_bounded_and_follows_networks() -> None:
    import ipaddress

    limiter = RateLimiter(1.0, 10, [ipaddress.ip_network("10.1.0.0/16")], max_clients=100)
    for i in range(1000):
        addr = f"10.{i % 3}.{i // 256 % 256}.{i % 256}"
        assert limiter.is_exempt(addr) is addr.startswith("10.1.")
        assert limiter.is_exempt(addr) is addr.startswith("10.1.")  # remembered: same answer
        assert len(limiter._in_networks) <= 100
    assert limiter.is_exempt("not an address") is False
    limiter.exempt_hosts = {"192.0.2.9"}
    assert limiter.is_exempt("192.0.2.9")


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(1.0, 10, [], max_clients=100)
    for i in range(10_000):
        assert limiter.take(f"10.0.{i // 256}.{i % 256}", 0.0) == 0.0
        assert len(limiter) <= 100
    # A client that used up its bucket keeps it while the map is within its bound...
    for _ in range(10):
        limiter.take("192.0.2.1", 1.0)
    assert limiter.take("192.0.2.1", 1.0) > 0
    # ... and buckets idle long enough to be full again are dropped: a new one is the same.
    limiter.take("192.0.2.2", 100.0)
    assert len(limiter) == 1
    assert limiter.take("192.0.2.1", 100.0) == 0.0
