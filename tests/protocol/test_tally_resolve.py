"""Delegation resolution against brute force, a reference DFD, and the invariants."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.tally import SCOPES, TallyEngine, TallyInput, explain, tally

RULES = ("dfd", "bfd", "minsum")


# --- random electorates ---------------------------------------------------------------------


@st.composite
def electorates(draw: Any, max_voters: int = 9, max_list: int = 3) -> dict[str, Any]:
    n = draw(st.integers(2, max_voters))
    names = [f"v{i}" for i in range(n)]
    voters = {v: draw(st.integers(0, 3)) for v in names}
    casting = draw(st.lists(st.sampled_from(names), max_size=n, unique=True))
    rows = []
    for v in names:
        for scope in SCOPES:
            if not draw(st.booleans()):
                continue
            pool = [u for u in names if u != v] + ["ghost"]
            trustees = draw(st.lists(st.sampled_from(pool), max_size=max_list, unique=True))
            rows.append({"truster": v, "scope": scope, "trustees": trustees})
    ballots = {v: {"o1": draw(st.integers(-1, 1))} for v in casting}
    return {
        "version": 1,
        "voters": voters,
        "options": ["o1"],
        "delegations": rows,
        "ballots": ballots,
    }


def with_rule(doc: dict[str, Any], rule: str) -> dict[str, Any]:
    return {**doc, "policy": {"delegation_rule": rule}}


# --- brute force -----------------------------------------------------------------------------


def effective(doc: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    best: dict[str, tuple[str, list[str]]] = {}
    for row in doc["delegations"]:
        v = row["truster"]
        if v not in best or SCOPES.index(row["scope"]) > SCOPES.index(best[v][0]):
            best[v] = (row["scope"], row["trustees"])
    return best


def brute_paths(doc: dict[str, Any], rule: str) -> dict[str, list[str] | None]:
    """For every delegating voter, the path the rule picks among all feasible simple paths."""
    eff = effective(doc)
    casting = set(doc["ballots"])
    lists = {
        v: [t for t in ts if t in doc["voters"]]
        for v, (_, ts) in eff.items()
        if ts and v not in casting
    }
    out: dict[str, list[str] | None] = {}

    def walk(x: str, seen: list[str], ranks: list[int], found: list[Any]) -> None:
        for r, t in enumerate(lists.get(x, []), 1):
            if t in seen:
                continue
            if t in casting:
                found.append(([*ranks, r], [*seen, t]))
            elif t in lists:
                walk(t, [*seen, t], [*ranks, r], found)

    for v in lists:
        found: list[tuple[list[int], list[str]]] = []
        walk(v, [v], [], found)
        if not found:
            out[v] = None
            continue
        if rule == "dfd":
            key = lambda f: f[0]  # noqa: E731
        elif rule == "bfd":
            key = lambda f: (len(f[0]), f[0])  # noqa: E731
        else:
            key = lambda f: (sum(f[0]), f[0])  # noqa: E731
        out[v] = min(found, key=key)[1][1:]
    return out


def brute_reason(doc: dict[str, Any], v: str) -> str:
    eff = effective(doc)
    seen = {v}
    x = v
    while True:
        ts = [t for t in eff.get(x, ("", []))[1] if t in doc["voters"]]
        if not ts:
            return "dead_end"
        x = ts[0]
        if x in seen:
            return "cycle"
        seen.add(x)


@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=150, deadline=None)
@given(doc=electorates())
def test_paths_match_brute_force(doc: dict[str, Any], rule: str) -> None:
    doc = with_rule(doc, rule)
    result = tally(TallyInput.from_dict(doc)).to_dict()["voters"]
    expected = brute_paths(doc, rule)
    eff = effective(doc)
    weights = dict(doc["voters"])
    for v, path in expected.items():
        if path is not None:
            for x in path:
                weights[x] += doc["voters"][v]
    for v, r in result.items():
        if v in doc["ballots"]:
            assert r == {"status": "direct", "weight": weights[v]}
        elif v in expected and expected[v] is not None:
            assert r == {
                "status": "delegated",
                "scope": eff[v][0],
                "path": expected[v],
                "weight": weights[v],
            }
        elif v in expected:
            assert r == {"status": "lost", "reason": brute_reason(doc, v)}
        else:
            assert r == {"status": "absent"}


@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=100, deadline=None)
@given(doc=electorates(max_voters=12, max_list=4))
def test_invariants(doc: dict[str, Any], rule: str) -> None:
    doc = with_rule(doc, rule)
    inp = TallyInput.from_dict(doc)
    voters = tally(inp).voters
    casting_weight = sum(r.weight or 0 for r in voters.values() if r.status == "direct")
    lost_absent = sum(doc["voters"][v] for v, r in voters.items() if r.status in ("lost", "absent"))
    assert casting_weight + lost_absent == sum(doc["voters"].values())
    eff = effective(doc)
    for v, r in voters.items():
        if r.status != "delegated":
            continue
        hops = [v, *r.path]
        assert len(set(hops)) == len(hops), "path is not simple"
        assert voters[r.path[-1]].status == "direct"
        for a, b in itertools.pairwise(hops):
            assert b in eff[a][1]
            if a != v:
                assert voters[a].status == "delegated"


@settings(max_examples=100, deadline=None)
@given(doc=electorates(max_voters=12, max_list=1))
def test_single_trustee_lists_give_one_result(doc: dict[str, Any]) -> None:
    # The result does not include the policy: equal results have equal digests.
    digests = {tally(TallyInput.from_dict(with_rule(doc, r))).digest for r in RULES}
    assert len(digests) == 1


# --- a reference DFD on graphs too big for brute force ----------------------------------------


def reference_dfd(doc: dict[str, Any]) -> dict[str, list[str] | None]:
    """Greedy lexicographic search with a full reachability check at every step."""
    eff = effective(doc)
    casting = set(doc["ballots"])
    lists = {
        v: [t for t in ts if t in doc["voters"]]
        for v, (_, ts) in eff.items()
        if ts and v not in casting
    }

    def reaches(x: str, banned: set[str]) -> bool:
        stack, seen = [x], {x}
        while stack:
            y = stack.pop()
            if y in casting:
                return True
            for t in lists.get(y, []):
                if t not in banned and t not in seen:
                    seen.add(t)
                    stack.append(t)
        return False

    out: dict[str, list[str] | None] = {}
    for v in lists:
        if not reaches(v, set()):
            out[v] = None
            continue
        path = [v]
        while path[-1] not in casting:
            for t in lists[path[-1]]:
                if t not in path and reaches(t, set(path)):
                    path.append(t)
                    break
        out[v] = path[1:]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_dfd_against_reference_on_dense_graphs(seed: int) -> None:
    # Few casting voters and long lists: large strongly connected components, where the
    # component search, its dead marks and its shortcuts all matter.
    rng = random.Random(seed)
    n = 150
    names = [f"v{i:03d}" for i in range(n)]
    rows = []
    for v in names:
        k = rng.randint(1, 4)
        rows.append(
            {
                "truster": v,
                "scope": "assembly",
                "trustees": rng.sample([u for u in names if u != v], k),
            }
        )
    casting = rng.sample(names, 3 + seed)
    doc = {
        "version": 1,
        "voters": dict.fromkeys(names, 1),
        "options": ["o1"],
        "delegations": rows,
        "ballots": {v: {"o1": 1} for v in casting},
        "policy": {"delegation_rule": "dfd"},
    }
    got = tally(TallyInput.from_dict(doc)).voters
    want = reference_dfd(doc)
    for v, path in want.items():
        if path is None:
            assert got[v].status == "lost"
        else:
            assert got[v].path == tuple(path), v


# --- hand-made cases --------------------------------------------------------------------------


def doc_of(rows: list[tuple[str, str, list[str]]], casting: list[str], n: int, rule: str = "bfd"):
    names = [chr(ord("a") + i) for i in range(n)]
    return {
        "version": 1,
        "voters": dict.fromkeys(names, 1),
        "options": ["o1"],
        "delegations": [{"truster": t, "scope": s, "trustees": ts} for t, s, ts in rows],
        "ballots": {v: {"o1": 1} for v in casting},
        "policy": {"delegation_rule": rule},
    }


def test_dfd_paths_need_not_form_a_tree() -> None:
    # a → b first, b → a first; a's fallback is d, b's fallback is c.
    doc = doc_of(
        [("a", "issue", ["b", "d"]), ("b", "issue", ["a", "c"])],
        casting=["c", "d"],
        n=4,
        rule="dfd",
    )
    v = tally(TallyInput.from_dict(doc)).voters
    assert v["a"].path == ("b", "c")
    assert v["b"].path == ("a", "d")
    # Each of a and b is the other's intermediate: weights come from the chosen paths.
    assert v["a"].weight == 2
    assert v["b"].weight == 2
    assert v["c"].weight == 2
    assert v["d"].weight == 2


def test_rules_differ_on_ranked_lists() -> None:
    # a: [b, e]; b: [c]; c: [d]; d votes; e votes.  DFD a→b→c→d, BFD a→e (1 hop),
    # MinSum: via b costs 1+1+1 = 3, via e costs 2: a→e.
    rows = [("a", "issue", ["b", "e"]), ("b", "area", ["c"]), ("c", "assembly", ["d"])]
    paths = {
        r: tally(TallyInput.from_dict(doc_of(rows, ["d", "e"], 5, r))).voters["a"].path
        for r in RULES
    }
    assert paths == {"dfd": ("b", "c", "d"), "bfd": ("e",), "minsum": ("e",)}
    rows = [("a", "issue", ["b", "c", "e"]), ("b", "area", ["d"]), ("c", "area", ["d"])]
    # MinSum: via b = 1+1 = 2, via e = 3; BFD: e in 1 hop.
    paths = {
        r: tally(TallyInput.from_dict(doc_of(rows, ["d", "e"], 5, r))).voters["a"].path
        for r in RULES
    }
    assert paths == {"dfd": ("b", "d"), "bfd": ("e",), "minsum": ("b", "d")}


def test_precedence_blocking_and_override() -> None:
    rows = [
        ("a", "assembly", ["b"]),
        ("a", "area", []),  # blocks the assembly row
        ("c", "area", []),
        ("c", "issue", ["b"]),  # an issue row with a trustee overrides an area block
        ("b", "issue", ["d"]),  # b votes: its own row is ignored
        ("d", "assembly", ["b"]),
    ]
    engine = TallyEngine(TallyInput.from_dict(doc_of(rows, ["b"], 5)))
    v = engine.result.voters
    assert v["a"].status == "absent"
    assert v["c"].path == ("b",)
    assert v["c"].scope == "issue"
    assert v["d"].path == ("b",)
    assert v["b"].weight == 3
    assert v["e"].status == "absent"
    assert explain(engine, "a").reason == "blocked"
    assert explain(engine, "a").scope == "area"
    assert explain(engine, "e").reason == "no_delegation"
    assert explain(engine, "b").reason == "overrides_delegation"
    assert "3 (1 own, 2 delegated)" in explain(engine, "b").message


def test_lost_reasons_and_explanations() -> None:
    rows = [
        ("a", "issue", ["b"]),
        ("b", "issue", ["c"]),
        ("c", "issue", ["b"]),  # b ↔ c cycle; a feeds into it
        ("d", "issue", ["e"]),  # e has no delegation: dead end
        ("f", "issue", ["ghost"]),  # the only trustee is not a voter
    ]
    engine = TallyEngine(TallyInput.from_dict(doc_of(rows, [], 6)))
    v = engine.result.voters
    assert [v[x].reason for x in "abcdf"] == ["cycle", "cycle", "cycle", "dead_end", "dead_end"]
    ea = explain(engine, "a")
    assert ea.path == ("b", "c", "b")
    assert "comes back to b" in ea.message
    ed = explain(engine, "d")
    assert ed.path == ("e",)
    assert "ends at e" in ed.message
    ef = explain(engine, "f")
    assert ef.skipped == ("ghost",)
    assert "none of its trustees" in ef.message
    assert explain(engine.result, "a").reason == "cycle"
    assert "lost" in explain(engine.result, "a").message
    assert explain(engine.result, "e").status == "absent"


def test_skipped_trustees_shift_ranks() -> None:
    rows = [("a", "issue", ["ghost", "b", "c"]), ("b", "issue", ["d"])]
    engine = TallyEngine(TallyInput.from_dict(doc_of(rows, ["c", "d"], 4, "minsum")))
    # After skipping, b has rank 1 and c rank 2: via b costs 1+1, via c costs 2; the tie goes
    # to the lexicographically smaller rank sequence (1, 1) < (2).
    assert engine.result.voters["a"].path == ("b", "d")
    e = engine.explain("a")
    assert e.skipped == ("ghost",)
    assert e.to_dict()["path"] == ["b", "d"]
    assert "b → d" in e.message


def test_explain_unknown_voter() -> None:
    from protocol.errors import TallyInputError

    engine = TallyEngine(TallyInput.from_dict(doc_of([], ["a"], 2)))
    with pytest.raises(TallyInputError, match="not in this tally"):
        explain(engine, "zz")
    with pytest.raises(TallyInputError, match="not in this tally"):
        explain(engine.result, "zz")
    assert explain(engine.result, "a").message == "a voted and cast a weight of 1."
    assert "a voted" in explain(engine, "a").message
