"""Delegation resolution: who casts whose weight (docs/TALLY.md, "Resolution").

Each voter's *effective row* is its narrowest row (issue > area > assembly); an empty list blocks
the broader scopes. Voters with a ballot cast their own weight and their own rows are ignored.
Every other voter with an effective row follows a path chosen by the delegation rule among
*feasible* paths: simple paths through delegating voters that end at a casting voter. Ranks are
positions in a trustee list after skipping trustees who are not voters.

How each rule is computed, in O(V + E) unless noted:

* **BFD** (shortest, then lexicographically smallest ranks): a breadth-first search from the
  casting voters over the reversed graph, level by level (see :func:`_bfs`); the chosen first
  hop is the best-ranked trustee in the previous level. A shortest walk is a simple path, and
  the lexicographic tie-break makes every path the first hop followed by that trustee's own
  path, so the paths form a tree.
* **MinSum** (smallest rank sum, then lexicographically smallest ranks): the same with Dial's
  bucket queue, as ranks are small positive integers. Positive weights again make the optimal walks
  simple and the chosen paths a tree.
* **DFD** (lexicographically smallest rank sequence among simple paths) is not tree-like: a
  voter's best simple path may avoid a vertex that its trustee's own path uses. Voters whose rank-1
  chain reaches a casting voter take that chain. The rest are split into strongly connected
  components (Tarjan), processed downstream first. A path leaving a component never returns to it,
  so only the part inside a component needs a search: a depth-first search in rank order that
  marks fully explored vertices dead (sound: a dead vertex cannot reach a casting voter avoiding
  the current prefix) and stops at the first exit, or at a vertex whose already known path avoids
  the prefix. That is O(component size + edges) per voter of a non-trivial component.

Skipping trustees who are not voters never needs a pass of its own: such a trustee is never at
any distance from a casting voter, so it is never chosen, and dropping it keeps the order of the
others, which is all that BFD's and DFD's comparisons use. Only MinSum adds rank numbers, so only
MinSum renumbers the lists that hold an unknown trustee.

A path is stored as a segment: ``mid[v]`` (the voters between ``v`` and ``nxt[v]``, empty for
tree-like hops) followed by ``nxt[v]``'s own path. Weights are then pushed along segments in the
reverse of the order in which paths were fixed.

Everything is keyed by voter id, and the per-voter work is written as C-level passes (``map``,
``filter``, ``compress``, ``dict.update`` over iterators) wherever it can be: at a million voters
the cost is the interpreter's per-item overhead and memory latency, not the algorithms.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, compress, repeat, tee
from operator import add, not_

from ._input import SCOPES, TallyInput

__all__ = [
    "ABSENT",
    "DELEGATED",
    "DIRECT",
    "LOST_CYCLE",
    "LOST_DEAD_END",
    "Resolution",
    "resolve",
]

ABSENT = 0
DIRECT = 1
DELEGATED = 2
LOST_CYCLE = 3
LOST_DEAD_END = 4

_INF = 1 << 62

Names = tuple[str, ...]


@dataclass(slots=True)
class Resolution:
    """The resolved electorate, keyed by voter id."""

    #: Every voter, in sorted order (the canonical key order).
    ids: list[str]
    #: Each voter's own weight (the input's ``voters``).
    own: Mapping[str, int]
    #: The casting voters (the input's ``ballots``).
    casting: Mapping[str, Mapping[str, int]]
    #: The rows of each scope: scope → truster → trustees as given.
    rows: dict[str, Mapping[str, Names]]
    #: Delegating voters (no ballot, a non-empty effective row) → that row's trustees as given.
    trustees: dict[str, Names]
    #: Weight of every direct and delegated voter (the others keep their own weight here).
    weight: dict[str, int]
    #: Last voter of each delegated voter's segment.
    nxt: dict[str, str]
    #: Intermediate voters of the segments that are longer than one hop.
    mid: dict[str, Names]
    #: Delegated voters in the order their paths were fixed (a segment's end comes first).
    order: list[str]
    #: Lost voters → LOST_CYCLE or LOST_DEAD_END.
    lost: dict[str, int]
    #: ``nxt`` of each voter of ``order``, aligned with it.
    ends: list[str]
    #: ``weight`` of each voter of ``order``, aligned with it.
    order_weight: list[int]
    #: ``weight`` of each casting voter, in the order of ``casting``.
    casting_weight: list[int]

    def status(self, v: str) -> int:
        """Return ABSENT, DIRECT, DELEGATED, LOST_CYCLE or LOST_DEAD_END."""
        if v in self.casting:
            return DIRECT
        if v in self.nxt:
            return DELEGATED
        return self.lost.get(v, ABSENT)

    def scope(self, v: str) -> str | None:
        """Return the scope of ``v``'s effective row (None if it has none)."""
        return next((s for s in reversed(SCOPES) if v in self.rows[s]), None)

    def row(self, v: str) -> Names:
        """Return the trustees of ``v``'s effective row as given (empty if none)."""
        return next((self.rows[s][v] for s in reversed(SCOPES) if v in self.rows[s]), ())

    def remaining(self, v: str) -> Names:
        """Return the trustees of ``v``'s effective row who are voters, in rank order."""
        own = self.own
        return tuple(t for t in self.trustees.get(v, ()) if t in own)

    def path(self, v: str) -> list[str]:
        """Return the path of delegated voter ``v``: first trustee first, casting voter last."""
        out: list[str] = []
        nxt, mid, casting = self.nxt, self.mid, self.casting
        while True:
            seg = mid.get(v)
            if seg:
                out.extend(seg)
            v = nxt[v]
            out.append(v)
            if v in casting:
                return out

    def first_chain(self, v: str) -> list[str]:
        """Return the chain of first remaining trustees from ``v`` (used to explain a loss).

        It stops after a voter is revisited, or at a voter with no trustee to follow.
        """
        seen = {v}
        out: list[str] = []
        while True:
            tl = self.remaining(v)
            if not tl:
                return out
            v = tl[0]
            out.append(v)
            if v in seen:
                return out
            seen.add(v)


def resolve(inp: TallyInput) -> Resolution:
    """Resolve the delegations of a validated ``inp`` under its policy's delegation rule."""
    voters = inp.voters
    ballots = inp.ballots
    ids = sorted(voters)  # linear when the input came from a canonical (sorted) document

    # Effective rows: merge the scopes broadest first, so that a narrower row overwrites; then
    # drop the casting voters' rows (ignored) and the blocking empty rows.
    rows = {s: inp.delegations.get(s, {}) for s in SCOPES}
    trustees = {**rows["assembly"], **rows["area"], **rows["issue"]}
    deque(map(trustees.pop, ballots, repeat(None)), maxlen=0)
    for v in list(compress(trustees, map(not_, trustees.values()))):
        del trustees[v]

    nxt: dict[str, str] = {}
    mid: dict[str, Names] = {}
    rule = inp.policy.delegation_rule
    if rule == "minsum":
        order = _minsum(ballots, trustees, voters, nxt)
    else:
        levels, chosen = _bfs(ballots, trustees, nxt)
        if rule == "dfd":
            dist: dict[str, int] = {}
            for d, level in enumerate(levels):
                dist.update(zip(level, repeat(d)))
            nxt.clear()
            order = _dfd(ballots, trustees=trustees, voters=voters, dist=dist, nxt=nxt, mid=mid)
        else:
            order = list(chain.from_iterable(levels[1:]))
            ends = list(chain.from_iterable(chosen))
    if rule != "bfd":
        ends = list(map(nxt.__getitem__, order))

    # Push weights along segments, latest-fixed first (its carried weight is then complete).
    # Starting from a copy of every own weight is cheaper than picking the voters concerned.
    carried = dict(voters)
    if mid:
        passing: dict[str, int] = {}
        for u in reversed(order):
            m = carried[u]
            seg = mid.get(u)
            if seg:
                for x in seg:
                    passing[x] = passing.get(x, 0) + m
            carried[nxt[u]] += m
        for x, extra in passing.items():
            carried[x] += extra
        order_weight = list(map(carried.__getitem__, order))
    else:
        # carried[nxt[u]] += carried[u], latest first, as C-level maps: dict.update inserts
        # each sum before it computes the next, so a parent reads its children's totals. When
        # u's weight is read, all its children have been added, so it is final: tee keeps
        # those reads as the weights of ``order`` (reversed), with no second lookup.
        backwards = order[::-1]
        ends_back = ends[::-1]
        get = carried.__getitem__
        own_back, kept = tee(map(get, backwards))
        carried.update(zip(ends_back, map(add, map(get, ends_back), own_back), strict=True))
        order_weight = list(kept)
        order_weight.reverse()
        del backwards, ends_back

    lost = _classify_lost(trustees, nxt, voters)
    return Resolution(
        ids=ids,
        own=voters,
        casting=ballots,
        rows=rows,
        trustees=trustees,
        weight=carried,
        nxt=nxt,
        mid=mid,
        order=order,
        lost=lost,
        ends=ends,
        order_weight=order_weight,
        casting_weight=list(map(carried.__getitem__, ballots)),
    )


def _bfs(
    casting: Mapping[str, object], trustees: dict[str, Names], nxt: dict[str, str]
) -> tuple[list[list[str]], list[list[str]]]:
    """Return the voters that can reach a casting voter by distance (level 0: the casters),
    and the BFD choice of each voter of levels 1, 2, … (aligned with those levels).

    Also set each reached voter's BFD choice in ``nxt``: its best-ranked trustee in the level
    before its own. While a level is large, it is found by one C-level pass over the voters
    not reached yet: the first trustee of each in the previous level, if any, is both the test
    and the choice. Once a level is small next to what remains, the rest is an ordinary BFS over
    the reversed edges of the voters that remain. A pass runs only while the level it finds is
    at least a quarter of what it scans, so the passes cost O(V) in all.
    """
    levels: list[list[str]] = [list(casting)]
    chosen: list[list[str]] = []
    frontier: set[str] = set(casting)
    remaining = dict(trustees)
    while remaining:
        finders = map(filter, repeat(frontier.__contains__), remaining.values())
        firsts = list(map(next, finders, repeat(None)))
        hit = list(compress(remaining, firsts))
        if not hit:
            return levels, chosen
        picks = list(filter(None, firsts))
        nxt.update(zip(hit, picks, strict=True))
        levels.append(hit)
        chosen.append(picks)
        frontier = set(hit)
        deque(map(remaining.pop, hit), maxlen=0)
        if len(hit) * 4 < len(remaining):
            break
    else:
        return levels, chosen
    rev: dict[str, list[str]] = defaultdict(list)
    for v, names in remaining.items():
        for t in names:
            rev[t].append(v)
    get = rev.get
    while True:
        found: list[str] = []
        for u in levels[-1]:
            for v in get(u, ()):
                if v in remaining:
                    del remaining[v]
                    found.append(v)
        if not found:
            return levels, chosen
        closer = frontier.__contains__
        picks = list(map(next, map(filter, repeat(closer), map(trustees.__getitem__, found))))
        nxt.update(zip(found, picks, strict=True))
        levels.append(found)
        chosen.append(picks)
        frontier = set(found)


def _minsum(
    casting: Mapping[str, object],
    trustees: dict[str, Names],
    voters: Mapping[str, int],
    nxt: dict[str, str],
) -> list[str]:
    """Minimum rank-sum delegation (Dial's algorithm); return the reached voters in order."""
    ranked: dict[str, Names] = {}
    rev: dict[str, list[tuple[str, int]]] = {}
    for v, names in trustees.items():
        if not all(map(voters.__contains__, names)):
            names = tuple(t for t in names if t in voters)  # noqa: PLW2901  (ranks after skipping)
        ranked[v] = names
        for r, t in enumerate(names, 1):
            rev.setdefault(t, []).append((v, r))
    dist = dict.fromkeys(casting, 0)
    buckets: list[list[str]] = [list(casting)]
    order: list[str] = []
    d = 0
    while d < len(buckets):
        for u in buckets[d]:
            if dist[u] != d:  # superseded by a shorter distance found later
                continue
            order.append(u)
            for v, r in rev.get(u, ()):
                nd = d + r
                if nd < dist.get(v, _INF):
                    dist[v] = nd
                    while len(buckets) <= nd:
                        buckets.append([])
                    buckets[nd].append(v)
        buckets[d] = []
        d += 1
    order = order[len(casting) :]
    get = dist.get
    for v in order:
        dv = dist[v]
        for r, t in enumerate(ranked[v], 1):
            if get(t, _INF) + r == dv:
                nxt[v] = t
                break
    return order


def _dfd(
    casting: Mapping[str, object],
    *,
    trustees: dict[str, Names],
    voters: Mapping[str, int],
    dist: dict[str, int],
    nxt: dict[str, str],
    mid: dict[str, Names],
) -> list[str]:
    """Depth-first delegation; ``dist`` (from the BFS) holds the voters that reach a caster.

    Return the delegated voters in the order their paths were fixed (dependencies first).
    """
    known: set[str] = set(casting)  # voters whose path is fixed (casting voters: the empty path)
    order: list[str] = []

    def first(x: str) -> str | None:
        names = trustees.get(x)
        if not names:
            return None
        t = names[0]
        return t if t in voters else next(filter(voters.__contains__, names), None)

    # 1. Voters whose rank-1 chain reaches a casting voter take it (all ranks 1 is the minimum).
    done: set[str] = set(casting)
    for v in trustees:
        if v in done or v not in dist:
            continue
        walk: list[str] = []
        on_walk: set[str] = set()
        x: str | None = v
        while x is not None and x not in done and x not in on_walk:
            walk.append(x)
            on_walk.add(x)
            x = first(x)
        ok = x is not None and x in known
        done.update(walk)
        if ok:
            for w in reversed(walk):
                nxt[w] = x  # type: ignore[assignment]
                x = w
                known.add(w)
                order.append(w)

    # 2. The others that can reach a caster, by strongly connected components, downstream first.
    hard = [v for v in trustees if v in dist and v not in known]
    if not hard:
        return order
    comp: dict[str, int] = {}
    search = _DepthFirst(trustees, comp, known, nxt, mid)
    for cid, members in enumerate(_components(hard, trustees, set(hard))):
        if len(members) == 1:
            v = members[0]
            nxt[v] = next(filter(known.__contains__, trustees[v]))
        else:
            comp.update(zip(members, repeat(cid)))
            members.sort(key=lambda u: (dist[u], u))
            for v in members:
                search.run(v, cid)
                known.add(v)
                order.append(v)
            continue
        known.add(v)
        order.append(v)
    return order


class _DepthFirst:
    """The DFD search inside one strongly connected component."""

    __slots__ = ("comp", "dead", "known", "mid", "nxt", "trustees")

    def __init__(
        self,
        trustees: dict[str, Names],
        comp: dict[str, int],
        known: set[str],
        nxt: dict[str, str],
        mid: dict[str, Names],
    ) -> None:
        self.trustees = trustees
        self.comp = comp
        self.known = known
        self.nxt = nxt
        self.mid = mid
        self.dead: set[str] = set()

    def avoids(self, y: str, on_path: set[str], cid: int) -> bool:
        """Return whether the known path of ``y`` stays off ``on_path`` inside component ``cid``."""
        comp, nxt, mid = self.comp, self.nxt, self.mid
        z = y
        while True:
            for m in mid.get(z, ()):
                if m in on_path:
                    return False
            z = nxt[z]
            if comp.get(z) != cid:
                return True
            if z in on_path:
                return False

    def run(self, v: str, cid: int) -> None:
        """Fix the lexicographically smallest feasible simple path of ``v`` (in component ``cid``).

        A depth-first search in rank order. A voter whose trustees are all explored without
        success is dead for the rest of this search: it cannot reach a casting voter avoiding
        the current prefix, nor any later prefix of this search (those only add constraints
        or remove voters it could not use anyway). The search cannot fail, since ``v`` can
        reach a casting voter at all.
        """
        trustees, comp, known = self.trustees, self.comp, self.known
        dead = self.dead
        dead.clear()
        path = [v]
        ptr = [0]
        on_path = {v}
        while True:
            x = path[-1]
            tl = trustees[x]
            k = ptr[-1]
            y: str | None = None
            while k < len(tl):
                t = tl[k]
                k += 1
                if comp.get(t) != cid:
                    if t in known:  # leaves the component: the rest is t's own path
                        y = t
                        break
                    continue  # not a voter, or no way to a casting voter
                if t in on_path or t in dead:
                    continue
                if t in known and self.avoids(t, on_path, cid):
                    y = t  # t's own path is the best one from t that avoids the prefix
                    break
                ptr[-1] = k
                path.append(t)
                ptr.append(0)
                on_path.add(t)
                break
            else:
                dead.add(x)
                path.pop()
                ptr.pop()
                on_path.discard(x)
                continue
            if y is not None:
                self.nxt[v] = y
                if len(path) > 1:
                    self.mid[v] = tuple(path[1:])
                return


def _components(
    hard: list[str], trustees: dict[str, Names], in_hard: set[str]
) -> Iterator[list[str]]:
    """Tarjan's strongly connected components of the subgraph on ``hard`` (iterative).

    Components are yielded in reverse topological order: each after every one it can reach.
    """
    low: dict[str, int] = {}
    num: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for root in hard:
        if root in num:
            continue
        work = [(root, 0)]
        while work:
            x, k = work.pop()
            if k == 0:
                num[x] = low[x] = counter
                counter += 1
                stack.append(x)
                on_stack.add(x)
            tl = trustees[x]
            recursed = False
            while k < len(tl):
                y = tl[k]
                k += 1
                if y not in in_hard:
                    continue
                if y not in num:
                    work.append((x, k))
                    work.append((y, 0))
                    recursed = True
                    break
                if y in on_stack:
                    low[x] = min(low[x], num[y])
            if recursed:
                continue
            if low[x] == num[x]:
                members: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    members.append(w)
                    if w == x:
                        break
                yield members
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[x])


def _classify_lost(
    trustees: dict[str, Names], nxt: dict[str, str], voters: Mapping[str, int]
) -> dict[str, int]:
    """Return the delegating voters without a feasible path, lost in a cycle or at a dead end.

    The reason follows the chain of first remaining trustees: ``cycle`` if it revisits a voter,
    ``dead_end`` if it stops at a voter with nothing to follow. Every voter on such a chain is
    itself lost or absent (a trustee with a feasible path would give the truster one).
    """
    lost: dict[str, int] = {}
    for v in list(compress(trustees, map(not_, map(nxt.__contains__, trustees)))):
        if v in lost:
            continue
        walk: list[str] = []
        on_walk: set[str] = set()
        x = v
        reason = LOST_DEAD_END
        while True:
            walk.append(x)
            on_walk.add(x)
            y = next(filter(voters.__contains__, trustees.get(x, ())), None)
            if y is None or y not in trustees:  # nothing to follow, or an absent voter
                break
            if y in on_walk:
                reason = LOST_CYCLE
                break
            if y in lost:  # already classified on an earlier walk
                reason = lost[y]
                break
            x = y
        lost.update(zip(walk, repeat(reason)))
    return lost
