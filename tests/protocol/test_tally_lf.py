"""Every LiquidFeedback reference vector is reproduced exactly, under all three delegation rules.

The vectors (tests/protocol/lf_vectors/, copied from shared/lf-vectors/) were computed by
LiquidFeedback core 4.2.2 itself; FORMAT.md there says how they map onto a TallyInput.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol.tally import TallyEngine, TallyInput, explain, tally

VECTORS = Path(__file__).parent / "lf_vectors"
FILES = sorted(VECTORS.glob("lf-*.json"))
MANIFEST = {s["file"]: s for s in json.loads((VECTORS / "manifest.json").read_text())["scenarios"]}
SCOPE = {"unit": "assembly", "area": "area", "issue": "issue"}


def to_input(vec: dict[str, Any], rule: str = "bfd") -> dict[str, Any]:
    """Map an LF vector's input onto the interchange format (FORMAT.md)."""
    inp = vec["input"]
    rows = []
    for row in inp["delegations"]:
        if row["scope"] == "area" and row["area"] != inp["issue_area"]:
            continue
        trustees = [] if row["trustee"] is None else [row["trustee"]]
        rows.append({"truster": row["truster"], "scope": SCOPE[row["scope"]], "trustees": trustees})
    pol = inp["policy"]

    def majority(name: str) -> dict[str, Any]:
        num, den, strict = pol[name]
        return {
            "num": num,
            "den": den,
            "strict": strict == "strict",
            "positive": pol[f"{name}_positive"],
            "non_negative": pol[f"{name}_non_negative"],
        }

    return {
        "version": 1,
        "voters": dict.fromkeys(inp["members"], 1),
        "options": list(inp["initiatives"]),
        "delegations": rows,
        "ballots": {b["voter"]: dict(b["grades"]) for b in inp["ballots"]},
        "policy": {
            "delegation_rule": rule,
            "defeat_strength": pol["defeat_strength"],
            "tie_breaking": pol["tie_breaking"],
            "direct_majority": majority("direct_majority"),
            "indirect_majority": majority("indirect_majority"),
            "no_reverse_beat_path": pol["no_reverse_beat_path"],
            "no_multistage_majority": pol["no_multistage_majority"],
        },
    }


def test_vectors_present() -> None:
    assert len(FILES) == 40
    assert {f.name for f in FILES} == set(MANIFEST)


@pytest.mark.parametrize("rule", ["bfd", "dfd", "minsum"])
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_lf_vector(path: Path, rule: str) -> None:
    vec = json.loads(path.read_text())
    exp = vec["expected"]
    doc = to_input(vec, rule)
    result = tally(TallyInput.from_dict(doc))
    got = result.to_dict()

    # Weights and delegation chains.
    direct = {v: r["weight"] for v, r in got["voters"].items() if r["status"] == "direct"}
    assert direct == exp["direct_voters"]
    delegating = {
        v: {"weight": r["weight"], "scope": r["scope"], "chain": r["path"]}
        for v, r in got["voters"].items()
        if r["status"] == "delegated"
    }
    want = {
        v: {"weight": d["weight"], "scope": SCOPE[d["scope"]], "chain": d["chain"]}
        for v, d in exp["delegating_voters"].items()
    }
    assert delegating == want
    assert sum(direct.values()) == exp["voter_count"]

    # Lost and absent voters: LF lists neither; the manifest counts the losses.
    info = MANIFEST[path.name]
    reasons = [r.get("reason") for r in got["voters"].values() if r["status"] == "lost"]
    assert reasons.count("cycle") == info["lost_in_cycle"]
    assert reasons.count("dead_end") == info["lost_at_dead_end"]

    # Options, battles, ranks.
    assert got["options"] == exp["initiatives"]
    assert got["battles"] == exp["battles"]
    assert got["status_quo_schulze_rank"] == exp["status_quo_schulze_rank"]
    winners = [i for i, o in exp["initiatives"].items() if o["winner"]]
    assert got["winner"] == (winners[0] if winners else None)
    assert (exp["status"] == "finished_with_winner") == (got["winner"] is not None)


@pytest.mark.parametrize("path", FILES[:8], ids=[f.stem for f in FILES[:8]])
def test_lf_vector_explain_agrees(path: Path) -> None:
    vec = json.loads(path.read_text())
    engine = TallyEngine(TallyInput.from_dict(to_input(vec)))
    for voter, vr in engine.result.voters.items():
        plain = explain(engine.result, voter)
        rich = explain(engine, voter)
        assert plain.status == rich.status == vr.status
        assert plain.weight == rich.weight == vr.weight
        if vr.status == "delegated":
            assert rich.path == plain.path == vr.path
            assert rich.path[-1] in exp_direct(vec)
        if vr.status == "lost":
            assert rich.reason == plain.reason == vr.reason


def exp_direct(vec: dict[str, Any]) -> set[str]:
    return set(vec["expected"]["direct_voters"])
