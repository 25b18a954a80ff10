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

**Data layout.** Voters are numbered once, in sorted id order (the canonical key order, so the
result's per-voter part comes out in number order), and everything after that works on lists
indexed by number: the trustee lists, the statuses (a ``bytearray``), the weights and the
segments. At a million voters the cost of resolution is memory latency and the interpreter's
per-item overhead: a lookup by a 63-character id touches the id's string, the table and the
stored key (a different string object, decoded from another place in the document), while
``list[i]`` touches one slot. Validation must look up every truster, trustee and casting voter
anyway, and it keeps the numbers it finds (:class:`~protocol.tally._input.Numbering`), so
resolution looks up no id at all: its per-voter passes are C-level ``map``/``compress``/scatter
passes over lists of numbers.

Trustees who are not voters are left out of the numbered lists: that keeps the order of the
others, which is all that BFD's and DFD's comparisons use, and it is exactly MinSum's
renumbering of ranks after skipping.

A path is stored as a segment: ``mid[v]`` (the voters between ``v`` and ``nxt[v]``, empty for
tree-like hops) followed by ``nxt[v]``'s own path. Weights are then pushed along segments in the
reverse of the order in which paths were fixed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, MutableSequence
from dataclasses import dataclass
from itertools import chain, compress, repeat
from operator import ne, not_
from typing import Any

from ._input import SCOPES, Numbers, TallyInput

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
#: "No voter" in the number lists (``nxt`` of a voter without a path, a missed search).
_NONE = -1

Names = tuple[str, ...]


def scatter(target: MutableSequence[Any], positions: Iterable[int], values: Iterable[Any]) -> None:
    """Set ``target[p] = value`` for each pair, in one C-level pass."""
    deque(map(target.__setitem__, positions, values), maxlen=0)


@dataclass(slots=True)
class Resolution:
    """The resolved electorate. Voter number ``i`` is ``ids[i]``; per-voter lists are by number."""

    #: Every voter, in sorted order (the canonical key order).
    ids: list[str]
    #: Voter id → number.
    index: dict[str, int]
    #: Each voter's own weight (the input's ``voters``).
    own: Mapping[str, int]
    #: The casting voters' numbers, in the order of the input's ``ballots``.
    casting: list[int]
    #: The rows of each scope as given: scope → truster → trustees.
    rows: dict[str, Mapping[str, Names]]
    #: Per voter: 1 + the index in SCOPES of its effective row's scope, 0 without a row.
    scope_of: bytearray
    #: Per voter: the remaining trustees of a delegating voter (no ballot, a non-empty effective
    #: row), empty for every other voter and when none of the trustees is a voter.
    trustees: list[Numbers]
    #: Per voter: ABSENT, DIRECT, DELEGATED, LOST_CYCLE or LOST_DEAD_END.
    status: bytearray
    #: Per voter: the weight of a direct or delegated voter (the others keep their own weight).
    weight: list[int]
    #: Per voter: the last voter of a delegated voter's segment (``_NONE`` for the others).
    nxt: list[int]
    #: Intermediate voters of the segments that are longer than one hop.
    mid: dict[int, Numbers]
    #: Delegated voters in the order their paths were fixed (a segment's end comes first).
    order: list[int]
    #: ``nxt`` of each voter of ``order``, aligned with it.
    ends: list[int]
    #: Lost voters, in the order they were classified.
    lost: list[int]
    #: ``weight`` of each casting voter, aligned with ``casting``.
    casting_weight: list[int]

    def status_of(self, v: str) -> int:
        """Return ABSENT, DIRECT, DELEGATED, LOST_CYCLE or LOST_DEAD_END for voter id ``v``."""
        return self.status[self.index[v]]

    def weight_of(self, v: str) -> int:
        """Return the weight of voter id ``v`` (see ``weight``)."""
        return self.weight[self.index[v]]

    def scope(self, v: str) -> str | None:
        """Return the scope of ``v``'s effective row (None if it has none)."""
        code = self.scope_of[self.index[v]]
        return SCOPES[code - 1] if code else None

    def row(self, v: str) -> Names:
        """Return the trustees of ``v``'s effective row as given (empty if none)."""
        scope = self.scope(v)
        return self.rows[scope][v] if scope else ()

    def remaining(self, v: str) -> Names:
        """Return the trustees of delegating voter ``v`` who are voters, in rank order."""
        ids = self.ids
        return tuple(ids[t] for t in self.trustees[self.index[v]])

    def path(self, v: str) -> list[str]:
        """Return the path of delegated voter ``v``: first trustee first, casting voter last."""
        out: list[int] = []
        nxt, mid, status = self.nxt, self.mid, self.status
        x = self.index[v]
        while True:
            out.extend(mid.get(x, ()))
            x = nxt[x]
            out.append(x)
            if status[x] == DIRECT:
                return list(map(self.ids.__getitem__, out))

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
    numbering = inp.numbering()  # kept from validation: no id is looked up again here
    ids, index, casting = numbering.ids, numbering.index, numbering.casting
    n = len(ids)

    # Effective rows: scatter the scopes broadest first, so that a narrower row overwrites; then
    # drop the casting voters' rows (ignored). A delegating voter is one left with a non-empty
    # row as given (``given``), even if none of its trustees is a voter (it is then lost).
    rows = {s: inp.delegations.get(s, {}) for s in SCOPES}
    scope_of = bytearray(n)
    given: list[Names] = [()] * n
    trustees: list[Numbers] = [()] * n
    for code, scope in enumerate(SCOPES, 1):
        trusters = numbering.trusters[scope]
        scatter(scope_of, trusters, repeat(code))
        scatter(given, trusters, rows[scope].values())
        scatter(trustees, trusters, numbering.trustees[scope])
    scatter(given, casting, repeat(()))
    scatter(trustees, casting, repeat(()))
    delegating = list(compress(range(n), given))
    del given

    nxt = [_NONE] * n
    mid: dict[int, Numbers] = {}
    rule = inp.policy.delegation_rule
    if rule == "minsum":
        order = _minsum(casting, delegating, trustees, nxt)
        ends = list(map(nxt.__getitem__, order))
    else:
        levels, chosen = _bfs(casting, delegating, trustees, nxt)
        if rule == "dfd":
            dist = [_NONE] * n
            for d, level in enumerate(levels):
                scatter(dist, level, repeat(d))
            nxt = [_NONE] * n
            order = _dfd(casting, delegating, trustees=trustees, dist=dist, nxt=nxt, mid=mid)
            ends = list(map(nxt.__getitem__, order))
        else:
            order = list(chain.from_iterable(levels[1:]))
            ends = list(chain.from_iterable(chosen))
        del levels, chosen

    # Push weights along segments, latest-fixed first (its carried weight is then complete).
    # A segment's intermediate voters report the weight passing through them, but it travels on
    # from the segment's end, not along their own paths: it is added to them only afterwards.
    # A canonical document lists the voters sorted already: then their weights are in order.
    weight = list(voters.values()) if ids == list(voters) else list(map(voters.__getitem__, ids))
    passing: dict[int, int] = {}
    for u, end in zip(reversed(order), reversed(ends), strict=True):
        m = weight[u]
        weight[end] += m
        for x in mid.get(u, ()):
            passing[x] = passing.get(x, 0) + m
    for x, extra in passing.items():
        weight[x] += extra

    status = bytearray(n)
    scatter(status, casting, repeat(DIRECT))
    scatter(status, order, repeat(DELEGATED))
    lost = _classify_lost(delegating, trustees, status)
    return Resolution(
        ids=ids,
        index=index,
        own=voters,
        casting=casting,
        rows=rows,
        scope_of=scope_of,
        trustees=trustees,
        status=status,
        weight=weight,
        nxt=nxt,
        mid=mid,
        order=order,
        ends=ends,
        lost=lost,
        casting_weight=list(map(weight.__getitem__, casting)),
    )


def _bfs(
    casting: list[int], delegating: list[int], trustees: list[Numbers], nxt: list[int]
) -> tuple[list[list[int]], list[list[int]]]:
    """Return the voters that can reach a casting voter by distance (level 0: the casters),
    and the BFD choice of each voter of levels 1, 2, … (aligned with those levels).

    Also set each reached voter's BFD choice in ``nxt``: its best-ranked trustee in the level
    before its own. While a level is large, it is found by one C-level pass over the voters
    not reached yet: the first trustee of each in the previous level, if any, is both the test
    and the choice. Once a level is small next to what remains, the rest is an ordinary BFS over
    the reversed edges of the voters that remain. A pass runs only while the level it finds is
    at least a quarter of what it scans, so the passes cost O(V) in all.
    """
    levels: list[list[int]] = [casting]
    chosen: list[list[int]] = []
    # The previous level, as a byte per voter: a test that touches 1 byte, not a hash table.
    frontier = bytearray(len(trustees))
    scatter(frontier, casting, repeat(1))
    closer = frontier.__getitem__
    remaining = delegating
    while remaining:
        finders = map(filter, repeat(closer), map(trustees.__getitem__, remaining))
        firsts = list(map(next, finders, repeat(_NONE)))
        found = list(map(ne, firsts, repeat(_NONE)))
        hit = list(compress(remaining, found))
        if not hit:
            return levels, chosen
        picks = list(compress(firsts, found))
        scatter(nxt, hit, picks)
        scatter(frontier, levels[-1], repeat(0))
        scatter(frontier, hit, repeat(1))
        levels.append(hit)
        chosen.append(picks)
        remaining = list(compress(remaining, map(not_, found)))
        if len(hit) * 4 < len(remaining):
            break
    else:
        return levels, chosen
    waiting = bytearray(len(trustees))
    scatter(waiting, remaining, repeat(1))
    rev: dict[int, list[int]] = {}
    for v in remaining:
        for t in trustees[v]:
            rev.setdefault(t, []).append(v)
    get = rev.get
    while True:
        level: list[int] = []
        for u in levels[-1]:
            for v in get(u, ()):
                if waiting[v]:
                    waiting[v] = 0
                    level.append(v)
        if not level:
            return levels, chosen
        picks = list(map(next, map(filter, repeat(closer), map(trustees.__getitem__, level))))
        scatter(nxt, level, picks)
        scatter(frontier, levels[-1], repeat(0))
        scatter(frontier, level, repeat(1))
        levels.append(level)
        chosen.append(picks)


def _minsum(
    casting: list[int], delegating: list[int], trustees: list[Numbers], nxt: list[int]
) -> list[int]:
    """Minimum rank-sum delegation (Dial's algorithm); return the reached voters in order."""
    rev: dict[int, list[tuple[int, int]]] = {}
    for v in delegating:
        for r, t in enumerate(trustees[v], 1):
            rev.setdefault(t, []).append((v, r))
    dist = [_INF] * len(trustees)
    scatter(dist, casting, repeat(0))
    buckets: list[list[int]] = [list(casting)]
    order: list[int] = []
    d = 0
    while d < len(buckets):
        for u in buckets[d]:
            if dist[u] != d:  # superseded by a shorter distance found later
                continue
            order.append(u)
            for v, r in rev.get(u, ()):
                nd = d + r
                if nd < dist[v]:
                    dist[v] = nd
                    while len(buckets) <= nd:
                        buckets.append([])
                    buckets[nd].append(v)
        buckets[d] = []
        d += 1
    order = order[len(casting) :]
    for v in order:
        dv = dist[v]
        for r, t in enumerate(trustees[v], 1):
            if dist[t] + r == dv:
                nxt[v] = t
                break
    return order


def _dfd(
    casting: list[int],
    delegating: list[int],
    *,
    trustees: list[Numbers],
    dist: list[int],
    nxt: list[int],
    mid: dict[int, Numbers],
) -> list[int]:
    """Depth-first delegation; ``dist`` (from the BFS, ``_NONE`` if unreached) says who can
    reach a caster.

    Return the delegated voters in the order their paths were fixed (dependencies first).
    """
    known: set[int] = set(casting)  # voters whose path is fixed (casting voters: the empty path)
    order: list[int] = []

    # 1. Voters whose rank-1 chain reaches a casting voter take it (all ranks 1 is the minimum).
    done: set[int] = set(casting)
    for v in delegating:
        if v in done or dist[v] == _NONE:
            continue
        walk: list[int] = []
        on_walk: set[int] = set()
        x: int | None = v
        while x is not None and x not in done and x not in on_walk:
            walk.append(x)
            on_walk.add(x)
            tl = trustees[x]
            x = tl[0] if tl else None
        ok = x is not None and x in known
        done.update(walk)
        if ok:
            for w in reversed(walk):
                nxt[w] = x  # type: ignore[assignment]
                x = w
                known.add(w)
                order.append(w)

    # 2. The others that can reach a caster, by strongly connected components, downstream first.
    hard = [v for v in delegating if dist[v] != _NONE and v not in known]
    if not hard:
        return order
    comp: dict[int, int] = {}
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
        trustees: list[Numbers],
        comp: dict[int, int],
        known: set[int],
        nxt: list[int],
        mid: dict[int, Numbers],
    ) -> None:
        self.trustees = trustees
        self.comp = comp
        self.known = known
        self.nxt = nxt
        self.mid = mid
        self.dead: set[int] = set()

    def avoids(self, y: int, on_path: set[int], cid: int) -> bool:
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

    def run(self, v: int, cid: int) -> None:
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
            y: int | None = None
            while k < len(tl):
                t = tl[k]
                k += 1
                if comp.get(t) != cid:
                    if t in known:  # leaves the component: the rest is t's own path
                        y = t
                        break
                    continue  # no way to a casting voter
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


def _components(hard: list[int], trustees: list[Numbers], in_hard: set[int]) -> Iterator[list[int]]:
    """Tarjan's strongly connected components of the subgraph on ``hard`` (iterative).

    Components are yielded in reverse topological order: each after every one it can reach.
    """
    low: dict[int, int] = {}
    num: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
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
                members: list[int] = []
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


def _classify_lost(delegating: list[int], trustees: list[Numbers], status: bytearray) -> list[int]:
    """Mark the delegating voters without a feasible path (status still ABSENT) as lost in a
    cycle or at a dead end, in ``status``; return them.

    The reason follows the chain of first remaining trustees: ``cycle`` if it revisits a voter,
    ``dead_end`` if it stops at a voter with nothing to follow. Every voter on such a chain is
    itself lost or absent (a trustee with a feasible path would give the truster one).
    """
    unresolved = list(compress(delegating, map(not_, map(status.__getitem__, delegating))))
    for v in unresolved:
        if status[v]:  # already classified on an earlier walk
            continue
        walk: list[int] = []
        on_walk: set[int] = set()
        x = v
        reason = LOST_DEAD_END
        while True:
            walk.append(x)
            on_walk.add(x)
            tl = trustees[x]
            if not tl:
                break  # nothing to follow
            y = tl[0]
            if not trustees[y]:  # y does not delegate, or none of its trustees is a voter
                break
            if y in on_walk:
                reason = LOST_CYCLE
                break
            if status[y]:  # already classified on an earlier walk
                reason = status[y]
                break
            x = y
        scatter(status, walk, repeat(reason))
    return unresolved
