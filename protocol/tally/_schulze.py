"""Battles, the Schulze ranking and LiquidFeedback's majorities (docs/TALLY.md, "Ranking").

Participants are numbered as LiquidFeedback numbers them: 0 is the status quo (grade 0), then
the options in their fixed order. Identical ballots are aggregated first, so the battles cost
O(distinct ballots × K²). Link strengths are ``(primary, secondary)`` pairs compared
lexicographically, exactly LiquidFeedback's ``link_strength`` type; the widest paths are the
Floyd–Warshall closure; the tie-breaking repeatedly forbids the weakest link shared by the best
paths of a tied pair. Everything here works on a few dozen participants at most.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter, or_

from ._input import Policy
from ._result import OptionResult

__all__ = ["Counted", "count_ballots", "rank_options"]

#: The strength LiquidFeedback gives a forbidden link: lower than every real one.
_FORBIDDEN = (-(1 << 63), 0)

Link = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Counted:
    """Aggregated ballots: the battle matrix, voter count and first preferences."""

    battles: list[list[int]]  # battles[x][y]: weight preferring x to y (0 = status quo)
    voter_count: int
    first_preference: list[int]  # per option (index 0 = first option)


def count_ballots(
    options: Sequence[str], grades: Iterable[Mapping[str, int]], weights: Iterable[int]
) -> Counted:
    """Aggregate ballots (grades) with their casting weights into battles.

    A missing grade counts as 0. Ballots are grouped by their grades in option order and their
    weight, in C-level passes; only the distinct groups are handled one by one.
    """
    weights = list(weights)
    grades = list(grades)
    # Each ballot's grades in option order, in C: ``zeros | ballot`` fills the missing grades
    # with 0 (validated ballots grade only known options) and one itemgetter reads them all.
    # Counter then counts the distinct (grades, weight) pairs in C: only those few thousand
    # pairs are summed in Python.
    zeros = dict.fromkeys(options, 0)
    norms: Iterable[tuple[int, ...]] = map(itemgetter(*options), map(or_, repeat(zeros), grades))
    if len(options) == 1:  # itemgetter of one key gives the grade itself, not a 1-tuple
        norms = zip(map(itemgetter(options[0]), map(or_, repeat(zeros), grades)))
    groups: dict[tuple[int, ...], int] = {}
    for (norm, weight), times in Counter(zip(norms, weights, strict=True)).items():
        groups[norm] = groups.get(norm, 0) + weight * times
    k = len(options)
    a = [[0] * (k + 1) for _ in range(k + 1)]
    first = [0] * k
    for norm, weight in groups.items():
        if not weight:
            continue
        g = (0, *norm)
        for x in range(k + 1):
            gx = g[x]
            row = a[x]
            for y in range(k + 1):
                if gx > g[y]:
                    row[y] += weight
        top = max(norm)
        if top > 0:
            for i, grade in enumerate(norm):
                if grade == top:
                    first[i] += weight
    return Counted(a, sum(weights), first)


def _strength(win: int, lose: int, tuple_strength: bool) -> int:
    # LiquidFeedback's defeat_strength(): tuple packs (winning, -losing) into one integer, exact
    # because every count is below 2^31 (MAX_TOTAL_WEIGHT).
    if tuple_strength:
        if win > lose:
            return (win << 31) - lose
        return 0 if win == lose else -1
    return win if win > lose else 0


def _secondary(i: int, j: int, tie_breaking: str) -> int:
    # LiquidFeedback's secondary_link_strength() on 1-based participant numbers: unique values
    # that favour lower numbers (the status quo, then older options).
    if tie_breaking == "simple":
        return 0
    base = 1 << 62 if i < j else 0
    if tie_breaking == "variant2":
        return base + (j << 31) - i
    return base + j - (i << 31)


def _widest(d: list[list[Link]]) -> list[list[Link]]:
    """Return the strengths of the strongest (widest) paths between every two participants."""
    n = len(d)
    p = [row[:] for row in d]
    for i in range(n):
        pi = p[i]
        for j in range(n):
            if j == i:
                continue
            pj = p[j]
            pji = pj[i]
            for k in range(n):
                if k in (i, j):
                    continue
                pj[k] = max(pj[k], min(pji, pi[k]))
    return p


def _beats(d: list[list[Link]], p: list[list[Link]], tie_breaking: str) -> list[list[bool | None]]:
    """Return who beats whom: the Schulze order, completed by LiquidFeedback's tie-breaking."""
    n = len(d)
    b: list[list[bool | None]] = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if p[i][j] != p[j][i]:
                b[i][j] = p[i][j] > p[j][i]
                b[j][i] = not b[i][j]
    if tie_breaking == "simple":
        return b  # ties stay, and the ranking falls back to participant order
    for m in range(n):
        for k in range(m + 1, n):
            if b[m][k] is not None:
                continue
            forbidden: set[tuple[int, int]] = set()
            t = p
            while t[m][k] == t[k][m]:
                # The secondary strengths make every link unique, so exactly one link has the
                # strength shared by both best paths: their common weakest link. Forbid it.
                target = t[m][k]
                link = next(
                    ((i, j) for i in range(n) for j in range(n) if i != j and d[i][j] == target),
                    None,
                )
                if link is None:  # no path left in either direction: stay tied
                    break
                forbidden.add(link)
                t = _widest(
                    [
                        [_FORBIDDEN if (i, j) in forbidden else d[i][j] for j in range(n)]
                        for i in range(n)
                    ]
                )
            if t[m][k] != t[k][m]:
                b[m][k] = t[m][k] > t[k][m]
                b[k][m] = not b[m][k]
    return b


def _schulze_ranks(b: list[list[bool | None]]) -> list[int]:
    """Unique ranks 1..n: the next rank goes to the lowest-numbered participant nobody beats."""
    n = len(b)
    rank = [0] * n
    unranked = list(range(n))
    for r in range(1, n + 1):
        best = next(
            (
                i
                for i in unranked
                if not any(j != i and (b[j][i] or (b[j][i] is None and j < i)) for j in unranked)
            ),
            unranked[0],  # unreachable: the completed Schulze order is acyclic
        )
        rank[best] = r
        unranked.remove(best)
    return rank


def rank_options(
    options: Sequence[str], counted: Counted, policy: Policy
) -> tuple[int, list[OptionResult]]:
    """Return the status quo's Schulze rank and LiquidFeedback's fields for each option."""
    a = counted.battles
    n = len(options) + 1
    tuple_strength = policy.defeat_strength == "tuple"
    d: list[list[Link]] = [
        [
            (0, 0)
            if i == j
            else (
                _strength(a[i][j], a[j][i], tuple_strength),
                _secondary(i + 1, j + 1, policy.tie_breaking),
            )
            for j in range(n)
        ]
        for i in range(n)
    ]
    p = _widest(d)
    schulze = _schulze_ranks(_beats(d, p, policy.tie_breaking))
    sq_rank = schulze[0]
    vc = counted.voter_count
    dm, im = policy.direct_majority, policy.indirect_majority

    positive = [a[i][0] for i in range(n)]
    negative = [a[0][i] for i in range(n)]
    direct = [False] + [dm.met(positive[i], negative[i], vc) for i in range(1, n)]
    indirect = [False] + [im.met(positive[i], negative[i], vc) for i in range(1, n)]
    changed = True
    while changed:  # indirect majorities along beat paths, to a fixed point
        changed = False
        for x in range(1, n):
            if indirect[x]:
                continue
            if any(indirect[y] and im.met(a[x][y], a[y][x], vc) for y in range(1, n) if y != x):
                indirect[x] = True
                changed = True
    multistage = [schulze[i] >= sq_rank for i in range(n)]
    for loser in range(1, n):
        for w in range(1, n):
            if (
                w != loser
                and schulze[w] < schulze[loser]
                and a[w][loser] > a[loser][w]
                and (a[w][loser] > positive[w] or a[loser][w] < negative[loser])
            ):
                multistage[loser] = True
    reverse: list[bool | None] = [p[0][i][0] >= 0 if tuple_strength else None for i in range(n)]
    eligible = [
        i > 0
        and direct[i]
        and indirect[i]
        and schulze[i] < sq_rank
        and not (policy.no_multistage_majority and multistage[i])
        and not (policy.no_reverse_beat_path and reverse[i])
        for i in range(n)
    ]
    winner = min((i for i in range(1, n) if eligible[i]), key=lambda i: schulze[i], default=0)
    final = sorted(range(1, n), key=lambda i: (i != winner, not eligible[i], schulze[i], i))
    rank = [0] * n
    for r, i in enumerate(final, 1):
        rank[i] = r
    return sq_rank, [
        OptionResult(
            positive_votes=positive[i],
            negative_votes=negative[i],
            direct_majority=direct[i],
            indirect_majority=indirect[i],
            schulze_rank=schulze[i],
            better_than_status_quo=schulze[i] < sq_rank,
            worse_than_status_quo=schulze[i] > sq_rank,
            reverse_beat_path=reverse[i],
            multistage_majority=multistage[i],
            eligible=eligible[i],
            winner=i == winner,
            rank=rank[i],
            first_preference_votes=counted.first_preference[i - 1],
        )
        for i in range(1, n)
    ]
