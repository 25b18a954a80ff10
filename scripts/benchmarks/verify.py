"""Observer benchmark: verify an exported record of 1,000,000 events (100,000 with --quick).

The record is one member city's log, generated once into a temporary directory with protocol
code: the assembly, an area and an issue, then for each citizen an enrolment, an area
delegation and two ballots (the second replaces the first), then the seal, and one checkpoint
cosigned by the assembly's witness. It is written in the export layout of docs/PROTOCOL.md
("observer") and verified exactly as `liquide verify --trust FILE --record DIR` does: read the
directory, then all eight steps (decode, signature, chain, root, replay, the tally of the sealed
issue with every citizen a voter), through ``run_verify``, the CLI's own entry point.

How the ratio is measured. The raw rate is single-core PyNaCl ``crypto_sign_open`` over the
record's own signed messages (the same signatures, messages and keys the verifier checks), and
it is measured beside the verifier, interleaved with it: the verifier reports progress after
every chunk of leaves it has fully processed (decoded, verified, chained, hashed, replayed), and
at each report the benchmark freezes the verifier (the calling process is inside the callback;
pool workers, if any, get SIGSTOP), times raw verification of every other signed message of the
chunk just processed, then resumes it (SIGCONT). Only the time outside these pauses counts as
the verifier's. So each slice of the verifier's time has a raw rate measured right before it and
right after it, on the same messages, while nothing else of the benchmark runs. The verifier's
time covers everything from reading the directory to the report (steps 1 to 8), the raw time
only the signatures; the ratio of a run is

    sum over slices (events in the slice / mean raw rate around it)  /  verifier time,

that is the time raw verification would have needed for the same events at the rates measured
around them, over the time the verifier took. On a machine whose speed drifts (CPU frequency,
steal time, other work) both sides drift together. The per-slice ratios' median and range are
reported too, as the spread (quartiles), and the load average around each run: the raw rate
beside a run cannot show other work taking the second core from the two-worker run. The
two-worker row uses the same single-core raw rate, measured the same way (its workers frozen
meanwhile): its target asks for 1.6 times one core's raw rate.

Informative rows: the same runs against the opening raw figure of scripts/bench, and the
two-worker run against its opening two-process raw figure (what the hardware gives two processes
of raw verification); the CPU time per event of each run (the single-core one; the two-worker
one's main process, and its main process and workers together), in raw verifies' CPU time
measured in its own slices; and the costs of the single-core path's phases in CPU time per
event, as fractions of one raw verify (CPU time) of the same messages measured in between them,
over the first 100,000 leaves: reading the record, decode (``Event.decode``), building the
signed messages, the Merkle leaf hashes and compact range, and replay with the signature vouched
for (chain links and governance rules: ``State.apply_event(verified=True)``); then the
single-core run's time after its stream (steps 2, 4, 6 to 8, mostly the tally recomputation) per
event, in raw verifies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import nacl.bindings

from benchmarks import Context, Row, interleaved_ratios
from crypto import PublicKey, SecretKey, domain_message
from node._cli_observer import Progress, read_record, run_verify, write_record
from protocol.checkpoint import Checkpoint, cosign, sign_checkpoint
from protocol.events import DEFAULT_POLICY, Event
from protocol.merkle import CompactRange, leaf_hash
from protocol.state import State
from protocol.verify import LogMaterial, NodeMaterial, Trust

ORIGIN = "bench.example/liquide"
WITNESS = "witness.example/liquide"
T0 = 1_700_000_000
CLOSES = T0 + 10_000_000
NOW = CLOSES + 7200
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_Signed = list[tuple[bytes, bytes]]


class _Signer:
    """Signs chained events fast (the canonical form built directly, checked by decode below)."""

    def __init__(self, seed: bytes, signed: list[tuple[bytes, bytes]]) -> None:
        self.pk_raw, self.sk = nacl.bindings.crypto_sign_seed_keypair(seed)
        self.signed = signed
        self.pk = PublicKey(self.pk_raw).to_text()
        self.seq = 0
        self.prev: str | None = None

    def sign(self, type_: str, body: dict[str, Any], ts: int) -> bytes:
        self.seq += 1
        unsigned = {
            "author": self.pk,
            "body": body,
            "prev": self.prev,
            "seq": self.seq,
            "ts": ts,
            "type": type_,
            "v": 1,
        }
        u = _dumps(unsigned).encode()
        msg = b"liquide/v1/" + type_.encode() + b"\n" + u
        sm = nacl.bindings.crypto_sign(msg, self.sk)
        self.signed.append((sm, self.pk_raw))
        sig = sm[:64]
        unsigned["sig"] = base64.b64encode(sig).decode()
        self.prev = hashlib.sha256(u).hexdigest()
        return _dumps(unsigned).encode()


def generate(n: int, directory: Path) -> tuple[Trust, list[tuple[bytes, bytes]]]:
    """Write a record of about ``n`` events to ``directory``; return its trust and, per leaf, the
    signed message (signature ‖ domain message) and the raw key it verifies under."""
    signed: list[tuple[bytes, bytes]] = []
    city = _Signer(b"\x11" * 32, signed)
    witness = SecretKey(b"\x22" * 32)
    leaves: list[bytes] = []
    asm_body = {
        "name": "Bench",
        "members": [{"origin": ORIGIN, "key": city.pk}],
        "witnesses": [{"name": WITNESS, "key": witness.public_key.to_text()}],
        "k": 1,
        "grace": 3600,
    }
    leaves.append(city.sign("assembly", asm_body, T0))
    assembly = Event.decode(leaves[0])
    leaves.append(city.sign("area", {"assembly": assembly.id, "name": "Budget"}, T0))
    area = Event.decode(leaves[1]).id
    issue_body = {
        "assembly": assembly.id,
        "area": area,
        "title": "Participatory budget",
        "options": [{"id": "parks", "title": "Parks"}, {"id": "roads", "title": "Roads"}],
        "opens": T0,
        "closes": CLOSES,
        "policy": DEFAULT_POLICY.to_dict(),
    }
    leaves.append(city.sign("issue", issue_body, T0))
    issue = Event.decode(leaves[2]).id
    citizens = max(1, (n - 4) // 4)
    prev_pk = city.pk
    batch = 512
    for lo in range(0, citizens, batch):
        group = [
            _Signer(hashlib.sha256(b"citizen%d" % i).digest(), signed)
            for i in range(lo, min(lo + batch, citizens))
        ]
        leaves.extend(
            city.sign("enrol", {"key": c.pk, "ref": f"r{c.pk[5:17]}"}, T0 + 1) for c in group
        )
        for i, c in enumerate(group):
            trustee: str | None = prev_pk if i == 0 else group[i - 1].pk
            if trustee == c.pk or trustee == city.pk:
                trustee = group[(i + 1) % len(group)].pk if len(group) > 1 else None
            if trustee is not None:
                leaves.append(
                    c.sign(
                        "delegate", {"scope": "area", "target": area, "trustees": [trustee]}, T0 + 2
                    )
                )
            else:
                leaves.append(c.sign("ballot", {"issue": issue, "grades": {"parks": 1}}, T0 + 2))
            first = {"parks": 1, "roads": -1} if i % 3 else {"roads": 1}
            leaves.append(c.sign("ballot", {"issue": issue, "grades": first}, T0 + 3))
            second = {"roads": 2} if i % 5 == 0 else first
            leaves.append(c.sign("ballot", {"issue": issue, "grades": second}, T0 + 4))
        prev_pk = group[-1].pk
    leaves.append(city.sign("seal", {"issue": issue}, CLOSES + 5))
    for leaf, (sm, pk) in zip(leaves[:8], signed, strict=False):
        # the fast path above must produce what decode accepts, and the raw pairs its messages
        ev = Event.decode(leaf)
        ev.verify()
        assert sm == ev.sig + domain_message(ev.type, ev.unsigned_bytes())
        assert pk == ev.author_raw
    assert len(signed) == len(leaves)
    cr = CompactRange()
    for leaf in leaves:
        cr.append(leaf_hash(leaf))
    cp = sign_checkpoint(Checkpoint(ORIGIN, len(leaves), cr.root()), SecretKey(b"\x11" * 32))
    cp = cp.with_signature(cosign(cp.checkpoint, WITNESS, witness, CLOSES + 10))
    write_record(
        NodeMaterial("bench", {ORIGIN: LogMaterial(ORIGIN, (cp.to_text(),), leaves)}), directory
    )
    return Trust.of_definition(assembly), signed


def _raw_seconds(signed: Sequence[tuple[bytes, bytes]]) -> float:
    """Time of raw single-core verification of ``signed`` (signed message, raw key) pairs."""
    open_ = nacl.bindings.crypto_sign_open
    t0 = time.perf_counter()
    for sm, pk in signed:
        open_(sm, pk)
    return time.perf_counter() - t0


class _Interleaved(Progress):
    """The verifier's progress callback, used as the benchmark's clock (see the docstring)."""

    SLICE = 4096  # the raw slice when a report covers no leaf (before the start, after the end)

    def __init__(self, signed: _Signed, every: int = 2) -> None:
        super().__init__(enabled=False)
        self.signed = signed
        self.every = every
        self.done_before = 0
        self.events: list[int] = []
        self.seconds: list[float] = []
        self.rates: list[float] = []  # raw verifies/s before the first slice and after each
        self.raw_cpu = 0.0
        self.raw_count = 0
        self._mark = 0.0

    def start(self) -> None:
        self.rates.append(self._raw(0, min(self.SLICE, len(self.signed))))
        self._mark = time.perf_counter()

    def __call__(self, label: str, done: int, total: int) -> None:
        self._close(done)

    def done(self) -> None:
        """``run_verify`` calls this when the verification stops reporting (nothing to do)."""

    def finish(self) -> None:
        self._close(self.done_before)

    def _close(self, done: int) -> None:
        self.seconds.append(time.perf_counter() - self._mark)
        self.events.append(done - self.done_before)
        lo = self.done_before if done > self.done_before else max(0, done - self.SLICE)
        self.rates.append(self._raw(lo, done))
        self.done_before = done
        self._mark = time.perf_counter()

    def _raw(self, lo: int, hi: int) -> float:
        stop, cont = getattr(signal, "SIGSTOP", None), getattr(signal, "SIGCONT", None)
        kids = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
        if stop is not None:
            for pid in kids:
                os.kill(pid, stop)
        try:
            part = self.signed[lo : hi : self.every]
            cpu = time.process_time()
            rate = len(part) / _raw_seconds(part)
            self.raw_cpu += time.process_time() - cpu
            self.raw_count += len(part)
            return rate
        finally:
            if cont is not None:
                for pid in kids:
                    os.kill(pid, cont)

    def ratios(self) -> tuple[float, list[float]]:
        """The run's ratio, and the ratio of each slice that processed leaves."""
        return interleaved_ratios(self.events, self.seconds, self.rates)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class _Run:
    """One interleaved verification of the record (see the docstring)."""

    def __init__(self, trust: Trust, directory: Path, signed: _Signed, workers: int) -> None:
        load = os.getloadavg()[0]
        clock = _Interleaved(signed)
        cpu0, kids0 = time.process_time(), _children_cpu()
        clock.start()
        material = [read_record(directory)]
        report, _ = run_verify(trust, material, now=NOW, workers=workers, progress=clock)
        clock.finish()
        if not report.passed:
            raise RuntimeError(f"the generated record did not verify: {report.verdict}")
        self.size = len(signed)
        self.seconds = sum(clock.seconds)
        self.ratio, per = clock.ratios()
        q1, self.median, q3 = (
            statistics.quantiles(per, n=4, method="inclusive") if len(per) > 1 else per * 3
        )
        self.slices, self.quartiles = len(per), f"{q1:.2f} to {q3:.2f}"
        self.load = f"{load:.1f} to {os.getloadavg()[0]:.1f}"
        # one raw verify's CPU time, measured beside the run (the slices)
        self.verify_cpu = clock.raw_cpu / clock.raw_count
        self.raw = statistics.fmean(clock.rates)
        self.main_cpu = time.process_time() - cpu0 - clock.raw_cpu
        self.workers_cpu = _children_cpu() - kids0
        # CPU after the stream's last report: steps 2, 4, 6 to 8 (only meaningful on one core)
        self.tail_seconds = clock.seconds[-1]

    def rows(self, label: str, target: float, opening: float) -> list[Row]:
        rate = self.size / self.seconds
        return [
            Row(f"verify a {self.size:,}-event record, {label} (events/s)", rate, "ev/s",
                self.ratio, target),
            Row(f"  {label}: raw verifies/s beside it (load {self.load})", self.raw, "/s"),
            Row(f"  {label}: median slice ratio (quartiles {self.quartiles})", self.slices,
                "slices", self.median),
            Row(f"  {label}: against the opening raw figure", rate, "ev/s", rate / opening),
        ]  # fmt: skip


def _phases(trust: Trust, directory: Path, signed: _Signed, limit: int) -> dict[str, float]:
    """CPU seconds per event of the single-core path's phases, over the record's first
    ``limit`` leaves, with the raw verify CPU time of the same messages measured between them."""
    cpu = time.process_time
    c = cpu()
    material = read_record(directory)
    read = (cpu() - c) / len(signed)
    log = material.logs[ORIGIN]
    assert log.entries is not None
    leaves = log.entries[:limit]
    n = len(leaves)
    pairs = signed[:n]
    verify: list[float] = []

    def raw() -> None:
        c = cpu()
        _raw_seconds(pairs)
        verify.append((cpu() - c) / n)

    raw()
    c = cpu()
    events = [Event.decode(leaf) for leaf in leaves]
    decode = (cpu() - c) / n
    raw()
    c = cpu()
    prefixes = {t: domain_message(t, b"") for t in {ev.type for ev in events}}
    keys, msgs = [], []
    for ev in events:
        keys.append(ev.author_raw)
        msgs.append(ev.sig + prefixes[ev.type] + ev.unsigned_bytes())
    message = (cpu() - c) / n
    raw()
    c = cpu()
    cr = CompactRange()
    append = cr.append
    for leaf in leaves:
        append(leaf_hash(leaf))
    merkle = (cpu() - c) / n
    raw()
    state = State(ORIGIN, trust.cities[0].key_text, leaves=leaves.__getitem__)
    apply = state.apply_event
    c = cpu()
    for i, ev in enumerate(events):
        apply(i, ev, verified=True)
    replay = (cpu() - c) / n
    raw()
    return {
        "verify": statistics.fmean(verify),
        "read the record": read,
        "decode": decode,
        "signed messages": message,
        "Merkle leaves and range": merkle,
        "replay (chain, rules)": replay,
    }


def run(ctx: Context) -> list[Row]:
    n = 100_000 if ctx.quick else 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="liquide-bench-verify-"))
    try:
        trust, signed = generate(n, tmp / "record")
        one = _Run(trust, tmp / "record", signed, workers=1)
        two = _Run(trust, tmp / "record", signed, workers=2)
        phases = _phases(trust, tmp / "record", signed, min(len(signed), 100_000))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    opening = ctx.raw.verify_per_s
    v = phases.pop("verify")
    rows = [*one.rows("1 core", 0.8, opening), *two.rows("2 workers", 1.6, opening)]
    # what two raw processes reached at the opening: the two-worker run's hardware ceiling
    two_rate = two.size / two.seconds
    rows.append(Row("  2 workers: against the opening 2-process raw figure", two_rate, "ev/s",
                    two_rate / ctx.raw.verify2_per_s))  # fmt: skip
    # CPU time per event, in raw verifies' CPU time measured beside the same run
    for run_, label, cpu in (
        (one, "1 core, whole run", one.main_cpu),
        (two, "2 workers: main process", two.main_cpu),
        (two, "2 workers: main + workers", two.main_cpu + two.workers_cpu),
    ):
        per = cpu / run_.size
        rows.append(Row(f"  CPU per event, {label} (in verifies)", per * 1e6, "µs",
                        per / run_.verify_cpu, higher_is_better=False))  # fmt: skip
    rows.append(Row("  phases, CPU per event: one raw verify", v * 1e6, "µs", 1.0))
    for name, seconds in phases.items():
        rows.append(Row(f"  phases, CPU per event: {name}", seconds * 1e6, "µs", seconds / v,
                        higher_is_better=False))  # fmt: skip
    after = one.tail_seconds / one.size
    rows.append(Row("  1 core, after the stream (steps 2, 4, 6-8), per event", after * 1e6, "µs",
                    after * one.raw, higher_is_better=False))  # fmt: skip
    return rows
