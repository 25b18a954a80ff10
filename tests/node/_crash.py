"""Crash trials: a real ``liquide node serve`` fed events and SIGKILLed at random moments.

Used by tests/node/test_crash.py (20 short trials) and by scripts/benchmarks/node.py (more).
After every restart it checks, with ``protocol/`` code and the raw database only:

* every event that got a receipt is in the log, at the receipt's index, with the same bytes;
* the root recomputed from the stored leaves equals the stored root;
* the log is consistent with every checkpoint signed before the crash (each one's root is the
  root of the leaves up to its size), and every receipt and checkpoint signature verifies.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from crypto import PublicKey, SecretKey
from protocol.checkpoint import BatchedReceipt, SignedCheckpoint, parse_receipt
from protocol.events import DEFAULT_POLICY, Event
from protocol.merkle import CompactRange, leaf_hash, verify_inclusion

ORIGIN = "crash.example/liquide"


@dataclass
class Wallet:
    sk: SecretKey
    seq: int = 0
    prev: str | None = None

    @property
    def pk(self) -> str:
        return self.sk.public_key.to_text()


@dataclass
class Ledger:
    """What the clients were promised and what they saw, across all trials."""

    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    leaves: dict[str, bytes] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)
    trials: int = 0
    checked_events: int = 0


def setup(data: Path, citizens: int) -> tuple[list[Wallet], str, PublicKey]:
    """Initialise a data directory with an assembly, an area and enrolled citizens."""
    from node._datadir import init_data_dir
    from node._node import Node

    init_data_dir(
        data,
        ORIGIN,
        verify_workers=0,
        checkpoint_interval_s=0.05,
        rate_limit_exempt=("127.0.0.1",),
    )
    node = Node.open(data)
    try:
        w = node.writer
        members = [{"origin": ORIGIN, "key": w.city}]
        asm = w.append_own(
            "assembly", {"name": "C", "members": members, "witnesses": [], "k": 0, "grace": 0}
        ).event_id
        area = w.append_own("area", {"assembly": asm, "name": "A"}).event_id
        now = int(time.time())
        w.append_own(
            "issue",
            {
                "assembly": asm,
                "area": area,
                "title": "T",
                "options": [{"id": "yes", "title": "Y"}],
                "opens": now - 10,
                "closes": now + 86400,
                "policy": DEFAULT_POLICY.to_dict(),
            },
        )
        wallets = [Wallet(SecretKey(os.urandom(32))) for _ in range(citizens)]
        for wal in wallets:
            w.append_own("enrol", {"key": wal.pk, "ref": "r"})
        w.sign_checkpoint()
        return wallets, area, node.key.public_key
    finally:
        node.close()


def _next(w: Wallet, area: str, rng: random.Random, others: list[Wallet]) -> Event:
    trustees = [o.pk for o in rng.sample(others, rng.randint(0, 2)) if o is not w]
    return Event.create(
        w.sk,
        "delegate",
        {"scope": "area", "target": area, "trustees": trustees},
        w.seq + 1,
        w.prev,
        int(time.time()),
    )


async def _resync(session: aiohttp.ClientSession, url: str, wallets: list[Wallet]) -> None:
    """A wallet that lost track recovers its chain head from the home node."""
    for w in wallets:
        async with session.get(f"{url}v1/voters/{w.pk}") as resp:
            head = (await resp.json())["head"]
        w.seq, w.prev = (0, None) if head is None else (head["seq"], head["event_id"])


async def _feed(
    session: aiohttp.ClientSession,
    url: str,
    wallets: list[Wallet],
    area: str,
    ledger: Ledger,
    rng: random.Random,
) -> None:
    async def one(w: Wallet) -> None:
        while True:
            ev = _next(w, area, rng, wallets)
            try:
                async with session.post(f"{url}v1/events", data=ev.encode()) as resp:
                    body = await resp.json()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError, OSError):
                return  # the node died: this event's fate is unknown, which is allowed
            if status in (200, 201):
                ledger.receipts[ev.id] = body["receipt"]
                ledger.leaves[ev.id] = ev.encode()
                w.seq, w.prev = ev.seq, ev.id
            elif status == 409:
                head = body["error"]["head"]
                w.seq, w.prev = head["seq"], head["event_id"]
            else:
                raise AssertionError(f"unexpected refusal {status}: {body}")

    async def watch() -> None:
        while True:
            try:
                async with session.get(f"{url}v1/logs/{ORIGIN}/checkpoint") as resp:
                    note = await resp.text()
            except (TimeoutError, aiohttp.ClientError, OSError):
                return
            size = SignedCheckpoint.parse(note).checkpoint.size
            ledger.checkpoints[size] = note
            await asyncio.sleep(0.01)

    # Each wallet is driven by one task at a time, so its chain stays its own; batches use a
    # disjoint set of wallets.
    singles, batched = wallets[: len(wallets) - 3], wallets[len(wallets) - 3 :]
    tasks = [asyncio.create_task(one(w)) for w in singles]
    tasks.append(asyncio.create_task(batches_of(batched, session, url, area, ledger, rng, wallets)))
    tasks.append(asyncio.create_task(watch()))
    await asyncio.gather(*tasks)


async def batches_of(
    chosen: list[Wallet],
    session: aiohttp.ClientSession,
    url: str,
    area: str,
    ledger: Ledger,
    rng: random.Random,
    everyone: list[Wallet],
) -> None:
    while True:
        evs = [_next(w, area, rng, everyone) for w in chosen]
        try:
            async with session.post(
                f"{url}v1/events:batch", data=b"\n".join(e.encode() for e in evs)
            ) as resp:
                body = await resp.json()
        except (TimeoutError, aiohttp.ClientError, OSError):
            return
        for w, ev, r in zip(chosen, evs, body["results"], strict=True):
            if "receipt" in r:
                ledger.receipts[ev.id] = r["receipt"]
                ledger.leaves[ev.id] = ev.encode()
                w.seq, w.prev = ev.seq, ev.id
            elif r["error"]["code"] == "seq_used":
                head = r["error"]["head"]
                w.seq, w.prev = head["seq"], head["event_id"]
            else:
                raise AssertionError(f"unexpected refusal in a batch: {r}")


def check_database(data: Path, ledger: Ledger, city: PublicKey) -> int:
    """Check the stored log against everything promised; return its size."""
    conn = sqlite3.connect(f"file:{data / 'node.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT idx, event_id, leaf, leaf_hash FROM entries WHERE origin = ? ORDER BY idx",
            (ORIGIN,),
        ).fetchall()
        size, peaks = conn.execute(
            "SELECT size, peaks FROM logs WHERE origin = ?", (ORIGIN,)
        ).fetchone()
        signed = conn.execute(
            "SELECT size, root, note FROM checkpoints WHERE origin = ? ORDER BY size", (ORIGIN,)
        ).fetchall()
    finally:
        conn.close()
    assert [r[0] for r in rows] == list(range(len(rows))), "a hole in the log"
    assert size == len(rows)
    by_id = {r[1]: r for r in rows}
    for event_id, receipt in ledger.receipts.items():
        r = parse_receipt(receipt)
        if isinstance(r, BatchedReceipt):
            r.verify(city, leaf=ledger.leaves[event_id])  # the batch form (events:batch)
        else:
            r.verify(city)
        assert event_id in by_id, f"receipted event {event_id} is missing after the crash"
        assert by_id[event_id][0] == r.index, "the event is not at its receipt's index"
        assert bytes(by_id[event_id][2]) == ledger.leaves[event_id]
    cr = CompactRange()
    roots: dict[int, bytes] = {0: cr.root()}
    for _idx, _eid, leaf, stored in rows:
        h = leaf_hash(bytes(leaf))
        assert h == bytes(stored)
        cr.append(h)
        roots[cr.size] = cr.root()
    stored_peaks = [bytes(peaks)[i : i + 32] for i in range(0, len(peaks), 32)]
    assert list(cr.peaks) == stored_peaks, "the stored tree is not the tree of the leaves"
    notes = dict(ledger.checkpoints)
    for s, root, note in signed:
        notes.setdefault(s, note)
        assert roots[s] == bytes(root)
    for s, note in notes.items():
        cp = SignedCheckpoint.parse(note).verify(ORIGIN, city)
        assert s <= len(rows), f"a checkpoint of size {s} was signed but the log lost entries"
        assert roots[s] == cp.root, f"the log is not consistent with checkpoint {s}"
    ledger.checked_events = len(ledger.receipts)
    return len(rows)


async def check_receipts_online(
    url: str, ledger: Ledger, city: PublicKey, sample: int, rng: random.Random
) -> None:
    """``GET /v1/receipts`` inclusion proofs verify against their checkpoint (a sample)."""
    ids = rng.sample(sorted(ledger.receipts), min(sample, len(ledger.receipts)))
    async with aiohttp.ClientSession() as session:
        for event_id in ids:
            for _ in range(100):
                async with session.get(f"{url}v1/receipts/{event_id}") as resp:
                    body = await resp.json()
                if body["checkpoint"] is not None:
                    break
                await asyncio.sleep(0.02)
            assert body["receipt"] == ledger.receipts[event_id]
            cp = SignedCheckpoint.parse(body["checkpoint"]).verify(ORIGIN, city)
            proof = [base64.b64decode(h) for h in body["proof"]]
            verify_inclusion(
                leaf_hash(ledger.leaves[event_id]), body["index"], cp.size, proof, cp.root
            )


async def trial(
    data: Path,
    wallets: list[Wallet],
    area: str,
    city: PublicKey,
    ledger: Ledger,
    rng: random.Random,
    spawn,
) -> None:
    """One trial: start serve, check what the last crash left, feed, SIGKILL."""
    server = spawn(data)
    try:
        check_database(data, ledger, city)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await _resync(session, server.url, wallets)
            if ledger.receipts:
                await check_receipts_online(server.url, ledger, city, 3, rng)
            feeding = asyncio.create_task(_feed(session, server.url, wallets, area, ledger, rng))
            await asyncio.sleep(rng.uniform(0.0, 0.35))
            server.kill()
            await asyncio.wait_for(feeding, 10)
    finally:
        server.kill()
    ledger.trials += 1
