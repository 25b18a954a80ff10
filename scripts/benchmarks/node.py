"""The city node under load: POST /v1/events with 50 clients, batch ingest, crash trials.

A real ``liquide node serve`` subprocess runs on loopback; the load comes from this process
through a lean keep-alive HTTP/1.1 client on raw asyncio streams, so that the client's own cost
(it shares the two cores with the node) stays small. Events are signed before the clock starts.

How the ratio is measured (as in the verify section). The load is sent in rounds; between two
rounds, with no request in flight, the node's processes are frozen (SIGSTOP) while this process
times raw single-core PyNaCl verification of a fixed set of signed messages, then resumed
(SIGCONT). So each round has a raw rate measured right before it and right after it, while
nothing else of the benchmark runs, and the ratio of a run is

    sum over rounds (events in the round / mean raw rate around it)  /  time of the rounds,

the time raw verification would have needed for the same events over the time the node took.
On a machine whose speed drifts (steal time, frequency, other tenants) both sides drift
together. The rounds' median ratio and quartiles show the spread. A bare aiohttp handler doing
one verify per request, driven by the same client in the same way, gives the reference figure
of a single POST on this machine. The ratio against the opening raw figure is shown too, and the
CPU time per event of the batch run (node and client) in raw verifies' CPU time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nacl.bindings

from benchmarks import Context, Row, interleaved_ratios, signed_messages

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crypto import SecretKey  # noqa: E402
from protocol.events import Event  # noqa: E402

ORIGIN = "bench.example/liquide"


def _init(data: Path, citizens: list[SecretKey], **settings: object) -> str:
    """A data directory with an assembly and area, and ``citizens`` enrolled in one go."""
    from node._datadir import init_data_dir
    from node._node import Node
    from node.ingest import Submission

    init_data_dir(data, ORIGIN, rate_limit_exempt=("127.0.0.1",), log_level="WARNING", **settings)
    from node.config import load_config

    # Set-up runs in this process: no verify pool here (the served node has its own).
    node = Node.open(data, config=load_config(data).replace(verify_workers=0))
    try:
        w = node.writer
        members = [{"origin": ORIGIN, "key": w.city}]
        asm = w.append_own(
            "assembly", {"name": "B", "members": members, "witnesses": [], "k": 0, "grace": 0}
        ).event_id
        area = w.append_own("area", {"assembly": asm, "name": "A"}).event_id
        for i in range(0, len(citizens), 5000):
            w.process(
                [
                    Submission(own=("enrol", {"key": sk.public_key.to_text(), "ref": "b"}))
                    for sk in citizens[i : i + 5000]
                ]
            )
        w.sign_checkpoint()
        return area
    finally:
        node.close()


def _serve(data: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from node.cli import main; main()", "node", "serve",
         "--data", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip()
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    return proc, host, int(port)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the node, its forkserver and the verify workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, IndexError):
                continue
            parents[int(entry.name)] = int(stat[1])
    out = [pid]
    for p in out:
        out.extend(c for c, parent in parents.items() if parent == p)
    return out


def _idle_tree(pid: int, timeout: float = 20.0) -> list[int]:
    """The node's processes once its start-up work (replay, warming the pool) is over: when
    they used under 5 ms of CPU in 0.2 s."""
    deadline = time.monotonic() + timeout
    pids = _tree(pid)
    before = sum(_cpu_s(p) for p in pids)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        pids = _tree(pid)
        now = sum(_cpu_s(p) for p in pids)
        if now - before < 0.005:
            break
        before = now
    return pids


def _verify_cpu_s(n: int = 4000) -> float:
    """CPU seconds of one raw PyNaCl verify (as in ``benchmarks.raw_verify_rate``), in this
    process's CPU time, so that waiting for a core under other load does not count."""
    pk, signed = signed_messages(n)
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for m in signed:
            nacl.bindings.crypto_sign_open(m, pk)
        best = min(best, (time.process_time() - t0) / n)
    return best


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _chains(keys: list[SecretKey], per_key: int, area: str) -> list[list[bytes]]:
    """For each key, ``per_key`` signed events forming its chain."""
    now = int(time.time())
    out = []
    for sk in keys:
        prev = None
        chain = []
        for seq in range(1, per_key + 1):
            body = (
                {"scope": "area", "target": area, "trustees": []}
                if seq % 2
                else {"scope": "area", "target": area}
            )
            ev = Event.create(sk, "delegate" if seq % 2 else "revoke", body, seq, prev, now)
            prev = ev.id
            chain.append(ev.encode())
        out.append(chain)
    return out


class _Conn:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class _Rounds:
    """The benchmark's clock: rounds of load with raw verification between them, the node's
    processes frozen meanwhile (see the module docstring)."""

    RAW = 3000  # signed messages timed between two rounds

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.pk, self.signed = signed_messages(self.RAW)
        self.rates: list[float] = []  # before the first round and after each
        self.events: list[int] = []
        self.seconds: list[float] = []
        self.raw_cpu = 0.0  # this process's CPU time in the raw slices
        self.raw()

    def raw(self) -> None:
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            open_, pk = nacl.bindings.crypto_sign_open, self.pk
            cpu, t0 = time.process_time(), time.perf_counter()
            for m in self.signed:
                open_(m, pk)
            self.rates.append(len(self.signed) / (time.perf_counter() - t0))
            self.raw_cpu += time.process_time() - cpu
        finally:
            for pid in self.pids:
                os.kill(pid, signal.SIGCONT)

    def round(self, events: int, seconds: float) -> None:
        self.events.append(events)
        self.seconds.append(seconds)
        self.raw()

    def rate(self) -> float:
        return sum(self.events) / sum(self.seconds)

    def ratios(self) -> tuple[float, list[float]]:
        """The run's ratio, and each round's."""
        return interleaved_ratios(self.events, self.seconds, self.rates)

    def rows(self, name: str, short: str, ctx: Context, target: float | None) -> list[Row]:
        ratio, per = self.ratios()
        q1, median, q3 = statistics.quantiles(per, n=4, method="inclusive")
        rate = self.rate()
        raw = statistics.fmean(self.rates)
        return [
            Row(f"{name}: events/s", rate, "ev/s", ratio, target),
            Row(f"  {short}: raw verifies/s beside it ({min(self.rates):,.0f} to "
                f"{max(self.rates):,.0f})", raw, "/s"),
            Row(f"  {short}: median round ratio (quartiles {q1:.2f} to {q3:.2f})",
                float(len(per)), "rounds", median),
            Row(f"  {short}: against the opening raw figure", rate, "ev/s",
                rate / ctx.raw.verify_per_s),
        ]  # fmt: skip


async def _open(host: str, port: int, n: int) -> list[_Conn]:
    conns = [_Conn(host, port) for _ in range(n)]
    for c in conns:
        await c.open()
    return conns


async def _singles(
    host: str, port: int, chains: list[list[bytes]], rounds: int, clock: _Rounds
) -> list[float]:
    """Each client sends its chain one event at a time, ``1/rounds`` of it per round."""
    conns = await _open(host, port, len(chains))
    latencies: list[float] = []

    async def client(conn: _Conn, part: list[bytes]) -> None:
        for data in part:
            t0 = time.perf_counter()
            status, body = await conn.post("/v1/events", data)
            latencies.append(time.perf_counter() - t0)
            if status not in (200, 201):
                raise RuntimeError(f"refused: {status} {body[:200]!r}")

    per = len(chains[0]) // rounds
    for r in range(rounds):
        parts = [ch[r * per : (r + 1) * per] for ch in chains]
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, p) for c, p in zip(conns, parts, strict=True)))
        clock.round(sum(map(len, parts)), time.perf_counter() - t0)
    for c in conns:
        c.close()
    return latencies


async def _batches(
    host: str, port: int, rounds: list[list[list[bytes]]], clients: int, clock: _Rounds
) -> None:
    """``clients`` connections share each round's batches, a batch at a time each."""
    conns = await _open(host, port, clients)

    async def client(conn: _Conn, queue: list[list[bytes]]) -> None:
        while queue:
            lines = queue.pop()
            status, body = await conn.post("/v1/events:batch", b"\n".join(lines))
            if status != 200 or json.loads(body)["rejected"]:
                raise RuntimeError(f"batch refused: {status} {body[:300]!r}")

    for batches in rounds:
        queue = list(reversed(batches))
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, queue) for c in conns))
        clock.round(sum(map(len, batches)), time.perf_counter() - t0)
    for c in conns:
        c.close()


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def _bare(clients: int, chains: list[list[bytes]], rounds: int) -> _Rounds:
    """The reference: a bare aiohttp handler doing one verify per request, same client."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_handler.py"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        clock = _Rounds(_idle_tree(proc.pid) if sys.platform == "linux" else [])
        asyncio.run(_singles(host, int(port), chains, rounds, clock))
    finally:
        _stop(proc)
    return clock


def bench_singles(ctx: Context, tmp: Path) -> list[Row]:
    clients = 50
    per_client = 40 if ctx.quick else 200
    rounds = 4 if ctx.quick else 10
    keys = [SecretKey(os.urandom(32)) for _ in range(clients)]
    area = _init(tmp / "single", keys, verify_workers=0)
    chains = _chains(keys, per_client, area)
    proc, host, port = _serve(tmp / "single")
    try:
        clock = _Rounds(_idle_tree(proc.pid) if sys.platform == "linux" else [])
        lat = asyncio.run(_singles(host, port, chains, rounds, clock))
    finally:
        _stop(proc)
    bare = _bare(clients, chains, rounds)
    ratio, _ = clock.ratios()
    bare_ratio, _ = bare.ratios()
    return [
        *clock.rows("POST /v1/events, 50 clients", "single", ctx, 0.2),
        Row("POST /v1/events, 50 clients: p50 latency", _pct(lat, 0.5) * 1000, "ms"),
        Row("POST /v1/events, 50 clients: p99 latency", _pct(lat, 0.99) * 1000, "ms"),
        Row("  reference: bare aiohttp handler, one verify per request", bare.rate(), "ev/s",
            bare_ratio),
        Row("  single: the node's rate over the bare handler's", ratio / bare_ratio * 100, "%"),
    ]  # fmt: skip


def bench_batches(ctx: Context, tmp: Path) -> list[Row]:
    citizens = 5000 if ctx.quick else 10_000
    per_key = 4 if ctx.quick else 5
    # Rounds of 5 or 10 batches (20 or 50 in all): two clients keep the pipeline full within a
    # round, and only its first and last batch see it fill and drain.
    size, per_round = 1000, 5 if ctx.quick else 10
    keys = [SecretKey(os.urandom(32)) for _ in range(citizens)]
    area = _init(tmp / "batch", keys, verify_workers=2, pool_threshold=256)
    chains = _chains(keys, per_key, area)
    # Round r of every chain goes in batch r (chains stay in order across batches).
    flat = [ch[r] for r in range(per_key) for ch in chains]
    batches = [flat[i : i + size] for i in range(0, len(flat), size)]
    rounds = [batches[i : i + per_round] for i in range(0, len(batches), per_round)]
    proc, host, port = _serve(tmp / "batch")
    try:
        pids = _idle_tree(proc.pid) if sys.platform == "linux" else []
        clock = _Rounds(pids)
        node0 = sum(_cpu_s(p) for p in pids)
        client0, raw0 = time.process_time(), clock.raw_cpu
        asyncio.run(_batches(host, port, rounds, 2, clock))
        # the client's CPU time, without this process's raw slices
        client_cpu = time.process_time() - client0 - (clock.raw_cpu - raw0)
        node_cpu = sum(_cpu_s(p) for p in pids) - node0
    finally:
        _stop(proc)
    rows = clock.rows(f"POST /v1/events:batch ({size}/batch)", "batch", ctx, 0.7)
    if pids:
        # CPU per event in raw verifies, both in CPU time (the raw verify's CPU measured here,
        # around the run): what the two cores must do per event, whatever else runs on the
        # machine (the wall-clock ratio above also measures the other load).
        per_verify = _verify_cpu_s()
        rows += [
            Row(
                "events:batch: node CPU per event (main + verify workers)",
                node_cpu / len(flat) * 1e6,
                "µs",
                node_cpu / len(flat) / per_verify,
            ),
            Row(
                "events:batch: client CPU per event",
                client_cpu / len(flat) * 1e6,
                "µs",
                client_cpu / len(flat) / per_verify,
            ),
        ]
    return rows


def bench_crash(ctx: Context, tmp: Path) -> list[Row]:
    from tests.conftest import ServeProcess
    from tests.node import _crash

    trials = 10 if ctx.quick else 60
    data = tmp / "crash"
    wallets, area, city = _crash.setup(data, citizens=10)
    ledger = _crash.Ledger()
    rng = random.Random()

    async def run() -> None:
        for _ in range(trials):
            await _crash.trial(data, wallets, area, city, ledger, rng, ServeProcess)

    asyncio.run(run())
    _crash.check_database(data, ledger, city)
    return [
        Row("SIGKILL crash trials passed", float(ledger.trials), "trials"),
        Row(
            "acknowledged events checked after the last crash",
            float(len(ledger.receipts)),
            "events",
        ),
    ]


def run(ctx: Context) -> list[Row]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        return [*bench_singles(ctx, tmp), *bench_batches(ctx, tmp), *bench_crash(ctx, tmp)]
