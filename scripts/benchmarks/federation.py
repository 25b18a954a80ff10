"""Federation: a fresh node catches up with a peer holding 200,000 events (20,000 with --quick).

The peer is a real ``liquide node serve`` subprocess on loopback; the fresh node runs in this
process with its sync and tick loops, pulling over real HTTP through the bounded peer transport.
The clock runs from the moment the peer is pinned until the fresh node has mirrored every leaf
(verified against the peer's signed checkpoint by consistency proofs) *and* replayed them all,
signatures included, into governance state. Both processes share the machine's two cores.

* events/s of the catch-up, against the raw single-core Ed25519 verify rate (target ≥ 0.6);
* bytes on the wire (requests and answers, HTTP status lines and headers included) against the
  raw bytes of the events (target ≤ 1.15).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks import Context, Row

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crypto import SecretKey  # noqa: E402
from protocol.events import Event  # noqa: E402

SRC = "bench-src.example/liquide"
DST = "bench-dst.example/liquide"
CITIZENS = 1000


def _build_source(data: Path, total: int) -> int:
    """A data directory whose log holds ``total`` events; returns the raw bytes of its leaves."""
    from node._datadir import init_data_dir
    from node._node import Node
    from node.config import load_config
    from node.ingest import Submission

    init_data_dir(data, SRC, log_level="WARNING", rate_limit_exempt=("127.0.0.1",))
    node = Node.open(data, config=load_config(data).replace(verify_workers=0))
    try:
        w = node.writer
        members = [{"origin": SRC, "key": w.city}]
        asm = w.append_own(
            "assembly", {"name": "B", "members": members, "witnesses": [], "k": 0, "grace": 0}
        ).event_id
        area = w.append_own("area", {"assembly": asm, "name": "A"}).event_id
        now = int(time.time())
        issue = w.append_own(
            "issue",
            {
                "assembly": asm,
                "area": area,
                "title": "T",
                "options": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
                "opens": now - 10,
                "closes": now + 10**6,
                "policy": {
                    "delegation_rule": "bfd",
                    "defeat_strength": "tuple",
                    "tie_breaking": "variant1",
                    "direct_majority": {
                        "num": 1,
                        "den": 2,
                        "strict": True,
                        "positive": 0,
                        "non_negative": 0,
                    },
                    "indirect_majority": {
                        "num": 1,
                        "den": 2,
                        "strict": True,
                        "positive": 0,
                        "non_negative": 0,
                    },
                    "no_reverse_beat_path": False,
                    "no_multistage_majority": False,
                },
            },
        ).event_id
        keys = [SecretKey.generate() for _ in range(CITIZENS)]
        subs = [
            Submission(own=("enrol", {"key": k.public_key.to_text(), "ref": f"r{i}"}))
            for i, k in enumerate(keys)
        ]
        for i in range(0, len(subs), 5000):
            w.process(subs[i : i + 5000])
        heads: dict[int, tuple[int, str | None]] = {}
        remaining = total - w.size
        batch: list[Submission] = []
        for j in range(remaining):
            c = j % CITIZENS
            seq, prev = heads.get(c, (0, None))
            grade = 1 if (j // CITIZENS) % 2 else -1
            ev = Event.create(
                keys[c], "ballot", {"issue": issue, "grades": {"yes": grade}}, seq + 1, prev, now
            )
            heads[c] = (seq + 1, ev.id)
            batch.append(Submission(event=ev, verified=True))
            if len(batch) == 5000:
                w.process(batch)
                batch = []
        if batch:
            w.process(batch)
        w.sign_checkpoint()
        assert w.size == total, (w.size, total)
        raw = sum(len(leaf) for leaf in node.store.iter_leaves(SRC))
    finally:
        node.close()
    return raw


class _Counting:
    """Wraps a transport; counts bytes both ways, HTTP status lines and headers included."""

    def __init__(self, inner: Any, counter: dict[str, int]) -> None:
        self.inner = inner
        self.counter = counter

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        # Request line and the headers aiohttp sends (Host, Accept, Accept-Encoding, User-Agent).
        sent = len(f"{method} {path}?{query} HTTP/1.1\r\n") + 120 + len(body or b"")
        resp = await self.inner.request(
            method, path, params=params, body=body, content_type=content_type
        )
        head = len("HTTP/1.1 200 OK\r\n") + sum(
            len(k) + len(v) + 4 for k, v in resp.headers.items()
        )
        self.counter["bytes"] += sent + head + 2 + len(resp.body)
        self.counter["requests"] += 1
        return resp

    async def close(self) -> None:
        await self.inner.close()


async def _catch_up(src_url: str, src_key: str, dst: Path, total: int) -> tuple[float, int, int]:
    from aiohttp import web

    from node._datadir import init_data_dir
    from node._federation import FederationConfig, peer_add
    from node._node import Node
    from node.server import create_app
    from node.transport import peer_transport

    init_data_dir(
        dst,
        DST,
        log_level="WARNING",
        checkpoint_interval_s=1.0,
        verify_workers=int(os.environ.get("LIQUIDE_BENCH_WORKERS", "2")),
    )
    node = Node.open(dst)
    counter = {"bytes": 0, "requests": 0}
    node.extra["federation_config"] = FederationConfig(
        sync_interval_s=0.05, tick_interval_s=0.05, page_size=1000, chunk_leaves=20_000
    )
    node.extra["transport_factory"] = lambda url: _Counting(
        peer_transport(url, timeout_s=60), counter
    )
    app = create_app(node)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        fed = node.extra["federation"]
        assert node.ingest is not None
        t0 = time.perf_counter()
        await node.ingest.call(lambda: peer_add(node.writer, src_url, SRC, src_key))
        mirrored_at = None
        while True:
            done = await fed.query(lambda: fed.status()["replayed"].get(SRC, 0))
            if done >= total:
                break
            info = node.reader.log(SRC)
            if mirrored_at is None and info is not None and info.size >= total:
                mirrored_at = time.perf_counter() - t0
            await asyncio.sleep(0.02)
        if os.environ.get("LIQUIDE_BENCH_DEBUG"):
            print(f"mirrored after {mirrored_at} s, replayed after {time.perf_counter() - t0} s")
        elapsed = time.perf_counter() - t0
        info = node.reader.log(SRC)
        assert info is not None
        assert info.size == total
    finally:
        await runner.cleanup()
    return elapsed, counter["bytes"], counter["requests"]


def run(ctx: Context) -> list[Row]:
    total = 20_000 if ctx.quick else 200_000
    with tempfile.TemporaryDirectory(prefix="liquide-bench-fed-") as tmp:
        src = Path(tmp) / "src"
        raw = _build_source(src, total)
        from node._datadir import load_key

        src_vkey = load_key(src).public_key.to_vkey(SRC)
        env = {**os.environ, "LIQUIDE_VERIFY_WORKERS": "0", "LIQUIDE_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from node.cli import main; sys.exit(main())",
                "node",
                "serve",
                "--data",
                str(src),
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().decode().strip()
            elapsed, wire, requests = asyncio.run(
                _catch_up(url, src_vkey, Path(tmp) / "dst", total)
            )
        finally:
            proc.terminate()
            proc.wait(30)
    rate = total / elapsed
    return [
        Row(
            f"catch-up of {total:,} events from a peer (events/s)",
            rate,
            "ev/s",
            rate / ctx.raw.verify_per_s,
            0.6,
        ),
        Row(
            f"bytes on the wire / raw event bytes ({requests} requests)",
            wire / 1e6,
            "MB",
            wire / raw,
            1.15,
            higher_is_better=False,
        ),
    ]
