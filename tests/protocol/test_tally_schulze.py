"""Battles, Schulze ranking, tie-breaking, majorities and eligibility."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import schulze_condorcet
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol.tally import Majority, TallyInput, tally
from protocol.tally._schulze import count_ballots

from .test_tally_lf import FILES, to_input


def run(
    ballots: list[dict[str, int]],
    options: tuple[str, ...] = ("A", "B"),
    weights: list[int] | None = None,
    **policy: Any,
) -> dict[str, Any]:
    weights = weights or [1] * len(ballots)
    doc = {
        "version": 1,
        "voters": {f"v{i}": w for i, w in enumerate(weights)},
        "options": list(options),
        "ballots": {f"v{i}": b for i, b in enumerate(ballots)},
        "policy": policy,
    }
    return tally(TallyInput.from_dict(doc)).to_dict()


def summary(result: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        k: (
            o["schulze_rank"],
            o["reverse_beat_path"],
            o["multistage_majority"],
            o["eligible"],
            o["winner"],
            o["rank"],
        )
        for k, o in result["options"].items()
    }


# A Condorcet cycle A > SQ > B > A, every defeat 2:1: only the secondary strengths decide.
CYCLE = [{"A": 1, "B": -1}, {"B": 2, "A": 1}, {"A": -2, "B": -1}]


def test_cycle_variant1() -> None:
    # variant1 favours links from lower numbers: d[SQ][B] > d[A][SQ] > d[B][A], so A beats SQ
    # (its best path back, SQ→B→A, is as weak as B→A), SQ beats B, and A beats B.
    r = run(CYCLE, tie_breaking="variant1")
    assert r["status_quo_schulze_rank"] == 2
    assert summary(r) == {
        "A": (1, True, False, True, True, 1),
        "B": (3, True, True, False, False, 2),
    }
    assert r["winner"] == "A"


def test_cycle_variant2() -> None:
    # variant2 orders the same-direction links the other way: d[SQ][B] > d[B][A] > d[A][SQ].
    r = run(CYCLE, tie_breaking="variant2")
    assert r["status_quo_schulze_rank"] == 1
    assert summary(r) == {
        "A": (3, True, True, False, False, 2),
        "B": (2, True, True, False, False, 1),
    }
    assert r["winner"] is None


def test_cycle_simple_ties_fall_back_to_order() -> None:
    r = run(CYCLE, tie_breaking="simple")
    assert r["status_quo_schulze_rank"] == 1
    assert [r["options"][o]["schulze_rank"] for o in "AB"] == [2, 3]


def test_no_reverse_beat_path_makes_a_winner_ineligible() -> None:
    r = run(CYCLE, no_reverse_beat_path=True)
    assert summary(r)["A"] == (1, True, False, False, False, 1)
    assert r["winner"] is None


def test_simple_defeat_strength() -> None:
    r = run(CYCLE, defeat_strength="simple")
    assert all(o["reverse_beat_path"] is None for o in r["options"].values())
    # Same order as tuple here: the primary strengths are all 2.
    assert r["winner"] == "A"


def test_battles_rows_and_first_preferences() -> None:
    r = run([{"A": 2, "B": 2}, {"B": 1}, {}, {"A": -1, "B": 0}], weights=[3, 1, 5, 2])
    assert r["battles"] == [
        [None, "A", 2],
        [None, "B", 0],
        ["A", None, 3],
        ["A", "B", 0],
        ["B", None, 4],
        ["B", "A", 3],
    ]
    assert r["options"]["A"]["first_preference_votes"] == 3
    assert r["options"]["B"]["first_preference_votes"] == 4
    assert r["options"]["A"]["positive_votes"] == 3
    assert r["options"]["A"]["negative_votes"] == 2


def test_no_voters() -> None:
    doc = {"version": 1, "voters": {"a": 1}, "options": ["x", "y"]}
    r = tally(TallyInput.from_dict(doc)).to_dict()
    assert r["status_quo_schulze_rank"] == 1
    assert [r["options"][o]["schulze_rank"] for o in "xy"] == [2, 3]
    assert r["winner"] is None
    assert all(not o["eligible"] for o in r["options"].values())


@pytest.mark.parametrize(
    ("majority", "votes", "expected"),
    [
        ({}, (2, 1, 4), True),
        ({}, (1, 1, 2), False),
        ({}, (0, 0, 0), False),
        ({"strict": False}, (1, 1, 2), True),
        ({"num": 2, "den": 3}, (2, 1, 3), False),
        ({"num": 2, "den": 3, "strict": False}, (2, 1, 3), True),
        ({"positive": 3}, (2, 1, 4), False),
        ({"positive": 2}, (2, 1, 4), True),
        ({"non_negative": 3}, (2, 1, 4), True),
        ({"non_negative": 4}, (2, 1, 4), False),
        ({"num": 0, "den": 1, "strict": False}, (0, 5, 5), True),
    ],
)
def test_majority_formula(
    majority: dict[str, Any], votes: tuple[int, int, int], expected: bool
) -> None:
    assert Majority.from_dict(majority).met(*votes) is expected


def test_indirect_majority_with_its_own_policy() -> None:
    # A: 2 for, 1 against. Direct majority needs more than 2/3; the indirect one, 1/2.
    ballots = [{"A": 1}, {"A": 1}, {"A": -1}]
    r = run(
        ballots,
        options=("A",),
        direct_majority={"num": 2, "den": 3},
        indirect_majority={"num": 1, "den": 2},
    )
    a = r["options"]["A"]
    assert (a["direct_majority"], a["indirect_majority"], a["eligible"]) == (False, True, False)


# --- LiquidFeedback's policy conditions, applied to the LF vectors -------------------------


def lf_ranks(
    options: dict[str, dict[str, Any]], order: list[str]
) -> tuple[str | None, dict[str, int]]:
    """Winner and rank as LiquidFeedback's calculate_ranks writes them."""
    eligible = [o for o in order if options[o]["eligible"]]
    winner = min(eligible, key=lambda o: (options[o]["schulze_rank"], order.index(o)), default=None)
    ranked = sorted(
        order,
        key=lambda o: (
            o != winner,
            not options[o]["eligible"],
            options[o]["schulze_rank"],
            order.index(o),
        ),
    )
    return winner, {o: n for n, o in enumerate(ranked, 1)}


@pytest.mark.parametrize(("no_rbp", "no_msm"), [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_policy_conditions_on_lf_vectors(path: Path, no_rbp: bool, no_msm: bool) -> None:
    vec = json.loads(path.read_text())
    doc = to_input(vec)
    doc["policy"]["no_reverse_beat_path"] = no_rbp
    doc["policy"]["no_multistage_majority"] = no_msm
    got = tally(TallyInput.from_dict(doc)).to_dict()
    want = {k: dict(v) for k, v in vec["expected"]["initiatives"].items()}
    for o in want.values():
        o["eligible"] = (
            o["eligible"]
            and not (no_rbp and o["reverse_beat_path"])
            and not (no_msm and o["multistage_majority"])
        )
    winner, ranks = lf_ranks(want, list(vec["input"]["initiatives"]))
    for k, o in want.items():
        o["winner"] = k == winner
        o["rank"] = ranks[k]
    assert got["options"] == want
    assert got["winner"] == winner


# --- an independent Schulze implementation as the oracle --------------------------------------


@st.composite
def profiles(draw: Any) -> tuple[list[str], list[tuple[dict[str, int], int]]]:
    k = draw(st.integers(1, 4))
    options = [f"o{i}" for i in range(k)]
    ballots = draw(
        st.lists(
            st.tuples(
                st.fixed_dictionaries({o: st.integers(-2, 2) for o in options}),
                st.integers(1, 4),
            ),
            min_size=1,
            max_size=9,
        )
    )
    return options, ballots


def vote_string(grades: dict[str, int]) -> str:
    levels: dict[int, list[str]] = {0: ["sq"]}
    for o, g in grades.items():
        levels.setdefault(g, []).append(o)
    return ">".join("=".join(levels[g]) for g in sorted(levels, reverse=True))


@settings(max_examples=200, deadline=None)
@given(profile=profiles(), tie_breaking=st.sampled_from(["variant1", "variant2", "simple"]))
def test_schulze_agrees_with_schulze_condorcet(profile: Any, tie_breaking: str) -> None:
    options, ballots = profile
    r = run(
        [b for b, _ in ballots], tuple(options), [w for _, w in ballots], tie_breaking=tie_breaking
    )
    battles = {(w, lose): n for w, lose, n in r["battles"]}
    assume(
        all(battles[x, y] != battles[y, x] for x, y in itertools.permutations([None, *options], 2))
    )
    votes = [vote_string(b) for b, w in ballots for _ in range(w)]
    theirs = schulze_condorcet.schulze_evaluate(votes, ["sq", *options])
    levels = [level.split("=") for level in theirs.split(">")]
    # schulze_condorcet ranks by repeatedly taking the Schulze winners of the *remaining*
    # candidates, which below the top may differ from LF's ranking by the full beat-path
    # matrix; the top is the Schulze winner in both, and must be unique without ties.
    assume(len(levels[0]) == 1)
    top = levels[0][0]
    assert rank_of(r, top) == 1
    if top != "sq" and r["options"][top]["direct_majority"]:
        assert r["winner"] == top
    if r["winner"] is not None:
        assert rank_of(r, r["winner"]) < r["status_quo_schulze_rank"]


def rank_of(r: dict[str, Any], o: str) -> int:
    return r["status_quo_schulze_rank"] if o == "sq" else r["options"][o]["schulze_rank"]


@settings(max_examples=150, deadline=None)
@given(
    k=st.integers(1, 4),
    data=st.lists(
        st.tuples(
            st.lists(st.integers(-2, 2), min_size=4, max_size=4),
            st.integers(0, 3),
            st.lists(st.booleans(), min_size=4, max_size=4),
        ),
        max_size=30,
    ),
)
def test_count_ballots_equals_one_ballot_at_a_time(
    k: int, data: list[tuple[list[int], int, list[bool]]]
) -> None:
    """The grouped count equals adding every ballot, one by one, to the battles."""
    options = [f"o{i}" for i in range(k)]
    ballots = [
        {o: g for o, g, keep in zip(options, grades, given, strict=False) if keep}
        for grades, _, given in data
    ]
    weights = [w for _, w, _ in data]
    counted = count_ballots(options, ballots, weights)
    a = [[0] * (k + 1) for _ in range(k + 1)]
    first = [0] * k
    for ballot, w in zip(ballots, weights, strict=True):
        g = [0, *(ballot.get(o, 0) for o in options)]
        for x in range(k + 1):
            for y in range(k + 1):
                if g[x] > g[y]:
                    a[x][y] += w
        top = max(g[1:])
        for i in range(k):
            if top > 0 and g[i + 1] == top:
                first[i] += w
    assert counted.battles == a
    assert counted.first_preference == first
    assert counted.voter_count == sum(weights)
