"""Tally engine benchmark: a city-sized synthetic issue, resolved, ranked and digested.

The input is generated deterministically from a seeded RNG: N voters with realistic 63-character
key ids, a power-law (Zipf) delegation graph over 20 areas (the issue's area, the assembly scope
and the issue scope each have their own popularity order; rows of the other 19 areas never reach
a TallyInput), ranked lists of 1 to 3 trustees, a few blocking empty rows, 30 % casting voters
and 5 options graded -2..2. The document goes through JSON text and back, and its object keys
come in canonical (sorted) order, as in a document decoded by ``protocol.encoding.decode``.

Each size is written to a JSON file by one subprocess and tallied by a fresh one, so that the
peak resident memory (``ru_maxrss``) is that of reading the document and tallying it.
The tally time is ``tally(TallyInput)`` including the result's digest, as wall-clock time (the
target applies to it) and as the process's CPU time (less sensitive to other work sharing the
machine's two cores); the JSON decoding and the input validation (``TallyInput.from_dict``) are
reported on rows of their own, and so is their sum with the tally, end to end (validation keeps
the voter numbers it looks up for the engine, so the tally alone does not tell the whole cost).
Freeing the decoded document is outside every timing. A
second tally of the same input, after the peak memory was read, gives the CPU time of each phase:
resolution, counting and Schulze, the result with its digest (checked equal to the first one).
LiquidFeedback's core needs 33 s here to close voting on one issue with 10,000 members
(DESIGN.md); the ratio row compares against that.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a child process: make the repo and scripts importable
    sys.path[:0] = [
        str(Path(__file__).resolve().parents[2]),
        str(Path(__file__).resolve().parents[1]),
    ]

from benchmarks import Context, Row

TARGET_SECONDS = 5.0
TARGET_BYTES = 1.5e9
LF_SECONDS_10K = 33.0
AREAS = 20
OPTIONS = [f"option-{i}" for i in range(1, 6)]


def synthetic_input(n: int, seed: int = 1, rule: str = "bfd") -> dict[str, Any]:
    """Return a TallyInput document for ``n`` voters (deterministic for a given seed)."""
    rng = random.Random(seed)
    ids = [
        "lqpk1" + hashlib.blake2b(i.to_bytes(8, "big"), digest_size=29).hexdigest()
        for i in range(n)
    ]
    # One popularity order per scope: the assembly, the area (1 of AREAS), the issue.
    orders = []
    for _ in range(3):
        perm = ids[:]
        rng.shuffle(perm)
        orders.append(perm)
    logn = n.bit_length()

    def popular(order: list[str]) -> str:
        # Zipf-like: P(rank ≤ r) ≈ log(r) / log(n).
        return order[int(2 ** (rng.random() * logn)) % n]

    rows: list[dict[str, Any]] = []
    # Probability of a row per scope; an area row exists for one area in AREAS per delegator.
    chances = (("assembly", 0.55, orders[0]), ("area", 0.35, orders[1]), ("issue", 0.08, orders[2]))
    for v in ids:
        for scope, chance, order in chances:
            if rng.random() >= chance:
                continue
            if scope != "assembly" and rng.random() < 0.05:
                rows.append({"truster": v, "scope": scope, "trustees": []})
                continue
            k = rng.randint(1, 3)
            trustees: list[str] = []
            while len(trustees) < k:
                t = popular(order)
                if t != v and t not in trustees:
                    trustees.append(t)
            rows.append({"truster": v, "scope": scope, "trustees": trustees})
    ballots = {}
    for v in ids:
        if rng.random() < 0.3:
            ballots[v] = {o: g for o in OPTIONS if (g := rng.randint(-2, 2))}
    # Object keys in canonical order, as protocol.encoding.decode returns a canonical document.
    return {
        "version": 1,
        "voters": dict.fromkeys(sorted(ids), 1),
        "ballots": dict(sorted(ballots.items())),
        "options": OPTIONS,
        "delegations": rows,
        "policy": {"delegation_rule": rule},
    }


def _child(path: str) -> dict[str, float]:
    from protocol.tally import TallyInput, tally

    # Read as a node reads a document: JSON text decoded into distinct string objects.
    # One expression, so the file's bytes are freed as soon as they are decoded: a name holding
    # them through json.loads would add their 350 MB (at 1M voters) to the peak.
    j0, k0 = time.perf_counter(), time.process_time()
    doc = json.loads(Path(path).read_bytes())
    j1, k1 = time.perf_counter(), time.process_time()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0, c0 = time.perf_counter(), time.process_time()
    inp = TallyInput.from_dict(doc)
    t1, c1 = time.perf_counter(), time.process_time()
    rows = sum(len(r) for r in inp.delegations.values())
    del doc  # as a node does: the validated TallyInput holds what the tally needs
    # Only tally(), digest included, is inside the tally timing (not freeing the document).
    t2, c2 = time.perf_counter(), time.process_time()
    result = tally(inp)
    t3, c3 = time.perf_counter(), time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    statuses: dict[str, int] = {}
    for r in result.voters.values():
        statuses[r.status] = statuses.get(r.status, 0) + 1
    digest = result.digest
    del result
    phases = _phases(inp)
    if phases.pop("digest") != digest:
        raise AssertionError("the tally by phases disagrees with tally()")
    return {
        **phases,
        "json_s": j1 - j0,
        "json_cpu_s": k1 - k0,
        "parse_s": t1 - t0,
        "parse_cpu_s": c1 - c0,
        "tally_s": t3 - t2,
        "tally_cpu_s": c3 - c2,
        "peak_bytes": peak,
        "doc_bytes": base,
        "rows": rows,
        **{f"n_{k}": v for k, v in statuses.items()},
    }


def _phases(inp: Any) -> dict[str, Any]:
    """Tally ``inp`` again phase by phase (CPU time of each), as ``TallyEngine`` composes them.

    Runs after the peak memory was read, so it does not add to it.
    """
    from protocol.tally._engine import ranked, with_digest
    from protocol.tally._resolve import resolve

    c0 = time.process_time()
    res = resolve(inp)
    c1 = time.process_time()
    draft = ranked(inp, res)
    c2 = time.process_time()
    digest = with_digest(draft).digest
    c3 = time.process_time()
    return {
        "resolve_cpu_s": c1 - c0,
        "rank_cpu_s": c2 - c1,
        "digest_cpu_s": c3 - c2,
        "digest": digest,
    }


def measure(n: int, rule: str = "bfd") -> dict[str, float]:
    """Write the input for one size to a file, tally it in a fresh interpreter, return figures."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "input.json")
        subprocess.run([sys.executable, __file__, "write", str(n), rule, path], check=True)
        out = subprocess.run(
            [sys.executable, __file__, "tally", path], capture_output=True, text=True, check=True
        )
    return dict(json.loads(out.stdout))


def run(ctx: Context) -> list[Row]:
    sizes = [2_000, 20_000, 100_000] if ctx.quick else [10_000, 100_000, 1_000_000]
    rows: list[Row] = []
    for n in sizes:
        m = measure(n)
        label = f"{n:,} voters"
        rows.append(
            Row(
                f"{label}: read + json.loads of the document (CPU {m['json_cpu_s']:.2f} s)",
                m["json_s"],
                "s",
            )
        )
        rows.append(
            Row(
                f"{label}: validate TallyInput.from_dict ({m['rows']:,.0f} rows; "
                f"CPU {m['parse_cpu_s']:.2f} s)",
                m["parse_s"],
                "s",
            )
        )
        rows.append(
            Row(
                f"{label}: tally incl. digest (BFD) vs 5 s",
                m["tally_s"],
                "s",
                ratio=m["tally_s"] / TARGET_SECONDS,
                target=1.0,
                higher_is_better=False,
            )
        )
        rows.append(Row(f"{label}: same, CPU time of the process", m["tally_cpu_s"], "s"))
        cpu = m["json_cpu_s"] + m["parse_cpu_s"] + m["tally_cpu_s"]
        rows.append(
            Row(
                f"{label}: end to end: read + json.loads + validate + tally (CPU {cpu:.2f} s)",
                m["json_s"] + m["parse_s"] + m["tally_s"],
                "s",
            )
        )
        rows.append(
            Row(
                f"{label}: CPU by phase: resolve {m['resolve_cpu_s']:.2f} s, count + "
                f"Schulze {m['rank_cpu_s']:.2f} s, result + digest",
                m["digest_cpu_s"],
                "s",
            )
        )
        rows.append(
            Row(
                f"{label}: peak RSS incl. input document vs 1.5 GB",
                m["peak_bytes"] / 1e6,
                "MB",
                ratio=m["peak_bytes"] / TARGET_BYTES,
                target=1.0,
                higher_is_better=False,
            )
        )
        rows.append(
            Row(
                f"{label}: peak RSS above the input document",
                (m["peak_bytes"] - m["doc_bytes"]) / 1e6,
                "MB",
            )
        )
        if n == 10_000:
            rows.append(
                Row(
                    "10,000 voters: speed-up over LiquidFeedback core (33 s)",
                    LF_SECONDS_10K / m["tally_s"],
                    "x",
                )
            )
    big = sizes[1]
    for rule in ("dfd", "minsum"):
        m = measure(big, rule)
        rows.append(
            Row(
                f"{big:,} voters: tally incl. digest ({rule.upper()}; CPU {m['tally_cpu_s']:.2f} s)",
                m["tally_s"],
                "s",
            )
        )
    return rows


if __name__ == "__main__":
    if sys.argv[1] == "write":
        Path(sys.argv[4]).write_text(
            json.dumps(synthetic_input(int(sys.argv[2]), rule=sys.argv[3]))
        )
    else:
        print(json.dumps(_child(sys.argv[2])))
