"""Web pages benchmark: latency of the issue page of a sealed city-sized issue, cold and cached.

A real node is built in a temporary directory: N enrolled voters (100,000; 10,000 with
``--quick``), 30 % of whom vote on the issue while most of the others delegate (per assembly,
area or issue, to Zipf-popular trustees, so a few casting voters carry much weight), then the
issue is sealed. The node's app (``node.server.create_app``, web pages included) is served
in-process and requested over loopback HTTP by an aiohttp client, one request at a time.

* **settle**: from the app's start until the federation has replayed the log, tallied the
  record and attested it (what a restarted node does before the page shows results);
* **cold**: the web layer's caches are emptied before each request, so the page fetches the
  record's result from the federation, rebuilds the view (ranking, flow) and renders the HTML;
* **cached**: a repeated request served from the in-process page cache;
* **304**: a revalidation with ``If-None-Match``.

The p50 and p99 are over the samples of each kind. There is no raw limit to divide by, so the
ratio column holds the cold-to-cached speed-up on that row only.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[:0] = [
        str(Path(__file__).resolve().parents[2]),
        str(Path(__file__).resolve().parents[1]),
    ]

from benchmarks import Context, Row

T0 = 1_800_000_000


def build(path: Path, n: int, seed: int = 7) -> tuple[Any, str, float]:
    """Build the node; return it (opened, not started), the sealed issue id and build seconds."""
    import hashlib

    from crypto import SecretKey
    from node import _registrar as admin
    from node._datadir import init_data_dir
    from node._node import Node
    from node.ingest import Submission
    from protocol.events import Event

    t0 = time.perf_counter()
    init_data_dir(path, "bench.example/liquide", verify_workers=2)
    clock = [T0]
    node = Node.open(path, clock=lambda: clock[0])
    w = node.writer
    asm = admin.assembly_create(w, name="Métropole")["event_id"]
    area = admin.area_create(w, asm, "Transports")["event_id"]
    issue = admin.issue_create(
        w,
        area=area,
        title="Tramway T10",
        options=[[f"o{i}", f"Option {i}"] for i in range(1, 6)],
        opens=T0,
        closes=T0 + 3600,
    )["event_id"]
    keys = [SecretKey(hashlib.sha256(f"bench-web/{seed}/{i}".encode()).digest()) for i in range(n)]
    pks = [k.public_key.to_text() for k in keys]
    chunk = 5000
    for s in range(0, n, chunk):
        w.process([Submission(own=("enrol", {"key": pk, "ref": "-"})) for pk in pks[s : s + chunk]])
    clock[0] = T0 + 60
    rng = random.Random(seed)
    order = pks[:]
    rng.shuffle(order)
    logn = n.bit_length()
    events = []
    for i, sk in enumerate(keys):
        r = rng.random()
        if r < 0.3:
            grades = {f"o{j}": rng.randint(-2, 2) for j in range(1, 6)}
            body: dict[str, Any] = {"issue": issue, "grades": grades}
            events.append(Event.create(sk, "ballot", body, 1, None, clock[0]))
            continue
        if r > 0.95:
            continue  # absent
        scope, target = (
            ("assembly", asm) if r < 0.65 else ("area", area) if r < 0.88 else ("issue", issue)
        )
        trustee = order[int(2 ** (rng.random() * logn)) % n]
        if trustee == pks[i]:
            continue
        body = {"scope": scope, "target": target, "trustees": [trustee]}
        events.append(Event.create(sk, "delegate", body, 1, None, clock[0]))
    for s in range(0, len(events), chunk):
        w.process([Submission(leaf=e.encode()) for e in events[s : s + chunk]])
    clock[0] = T0 + 3601
    w.seal_due()
    w.sign_checkpoint()
    return node, issue, time.perf_counter() - t0


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def measure(node: Any, issue: str, cold_n: int, warm_n: int) -> dict[str, list[float]]:
    """Request the issue page: first, cold (caches emptied), cached, and 304 revalidations."""
    from aiohttp.test_utils import TestClient, TestServer

    from node.server import create_app
    from node.web import WEB_KEY

    app = create_app(node)
    out: dict[str, list[float]] = {"settle": [], "cold": [], "cached": [], "304": []}
    t0 = time.perf_counter()
    async with TestClient(TestServer(app)) as client:
        path = f"/issues/{issue}"
        fed = node.extra["federation"]

        async def attested() -> bool:
            doc = await fed.query(lambda: fed.attestations(issue))
            return bool(doc["attestations"])

        deadline = time.monotonic() + 900
        while not await attested():
            assert time.monotonic() < deadline, "the federation did not attest the record"
            await asyncio.sleep(0.2)
        out["settle"].append(time.perf_counter() - t0)

        async def get(headers: dict[str, str] | None = None) -> tuple[float, Any]:
            t = time.perf_counter()
            resp = await client.get(path, headers=headers)
            await resp.read()
            dt = time.perf_counter() - t
            assert resp.status in (200, 304), resp.status
            return dt, resp

        _, resp = await get()
        etag = resp.headers["ETag"]
        state = app[WEB_KEY]
        for _ in range(cold_n):
            state.clear()
            out["cold"].append((await get())[0])
        for _ in range(warm_n):
            out["cached"].append((await get())[0])
        for _ in range(warm_n // 2):
            dt, resp = await get({"If-None-Match": etag})
            assert resp.status == 304
            out["304"].append(dt)
    return out


def run(ctx: Context) -> list[Row]:
    n = 10_000 if ctx.quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="liquide-bench-web-"))
    try:
        node, issue, built = build(tmp / "node", n)
        times = asyncio.run(measure(node, issue, cold_n=10 if ctx.quick else 20, warm_n=400))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ms = 1000.0
    cold50, cached50 = _pct(times["cold"], 0.5), _pct(times["cached"], 0.5)
    label = f"{n:,} voters"
    return [
        Row(f"build a node with a sealed issue of {label}", built, "s"),
        Row(
            f"node start until the record is tallied and attested, {label}", times["settle"][0], "s"
        ),
        Row(f"issue page cold p50, {label}", cold50 * ms, "ms"),
        Row(f"issue page cold p99, {label}", _pct(times["cold"], 0.99) * ms, "ms"),
        Row(
            f"issue page cached p50, {label} (ratio: cold/cached)",
            cached50 * ms,
            "ms",
            ratio=cold50 / cached50,
        ),
        Row(f"issue page cached p99, {label}", _pct(times["cached"], 0.99) * ms, "ms"),
        Row(
            f"issue page 304 revalidation p50, {label}", statistics.median(times["304"]) * ms, "ms"
        ),
    ]


if __name__ == "__main__":
    from benchmarks import measure_raw

    for row in run(Context(quick="--quick" in sys.argv, raw=measure_raw())):
        print(row.format("web"))
