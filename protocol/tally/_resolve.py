"""Delegation resolution: who casts whose weight (docs/TALLY.md, "Resolution").

Voters are numbered in sorted id order. Each voter's *effective row* is its narrowest row (issue >
area > assembly); an empty list blocks the broader scopes. Voters with a ballot cast their own
weight and their own rows are ignored. Every other voter with an effective row follows a path
chosen by the delegation rule among *feasible* paths: simple paths through delegating voters that
end at a casting voter. Ranks are positions in a trustee list after skipping trustees who are not
voters.

How each rule is computed, in O(V + E) unless noted:

* **BFD** (shortest, then lexicographically smallest ranks): a BFS from the casting voters over
  the reversed graph gives each voter's distance; the chosen first hop is the best-ranked trustee
  one step closer. A shortest walk is a simple path, and the lexicographic tie-break makes every
  path the first hop followed by that trustee's own path, so the paths form a tree.
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

A path is stored as a segment: ``mid[v]`` (the vertices between ``v`` and ``nxt[v]``, empty for
tree-like hops) followed by ``nxt[v]``'s own path. Weights are then pushed along segments in the
reverse of the order in which paths were fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ._input import TallyInput

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

_PRIORITY = {"assembly": 1, "area": 2, "issue": 3}
_INF = 1 << 62


@dataclass(slots=True)
class Resolution:
    """The resolved electorate, in voter-index arrays (index = position in sorted ids)."""

    ids: list[str]
    index: dict[str, int]
    own: list[int]
    #: ABSENT, DIRECT, DELEGATED, LOST_CYCLE or LOST_DEAD_END per voter.
    status: bytearray
    #: Priority (1 assembly, 2 area, 3 issue) of the voter's effective row, 0 if none.
    scope: bytearray
    #: Trustees of each voter's effective row as given (None: no row).
    rows: list[tuple[str, ...] | None]
    #: Effective trustee list after skipping (None: no row, a blocking row, or a casting voter).
    trustees: list[tuple[int, ...] | None]
    #: Weight of direct and delegated voters (0 for the others).
    weight: list[int]
    #: Last vertex of each delegated voter's segment, -1 otherwise.
    nxt: list[int]
    #: Intermediate vertices of the segments that are longer than one hop.
    mid: dict[int, tuple[int, ...]]
    #: Casting voters, in index order.
    casting: list[int]
    #: Delegated voters in the order their paths were fixed (a segment's end comes first).
    order: list[int]

    def path(self, v: int) -> list[int]:
        """Return the path of delegated voter ``v``: first trustee first, casting voter last."""
        out: list[int] = []
        nxt, mid, status = self.nxt, self.mid, self.status
        while True:
            seg = mid.get(v)
            if seg:
                out.extend(seg)
            v = nxt[v]
            out.append(v)
            if status[v] == DIRECT:
                return out

    def first_chain(self, v: int) -> list[int]:
        """Return the chain of first remaining trustees from ``v`` (used to explain a loss).

        It stops before a voter is revisited, or at a voter with no trustee to follow.
        """
        seen = {v}
        out: list[int] = []
        while True:
            tl = self.trustees[v]
            if not tl:
                return out
            v = tl[0]
            out.append(v)
            if v in seen:
                return out
            seen.add(v)

    def iter_paths(self) -> Iterator[tuple[int, list[int]]]:
        """Yield ``(voter, path)`` for every delegated voter, in index order."""
        for v, s in enumerate(self.status):
            if s == DELEGATED:
                yield v, self.path(v)


def resolve(inp: TallyInput) -> Resolution:
    """Resolve the delegations of a validated ``inp`` under its policy's delegation rule."""
    voters = inp.voters
    ids = sorted(voters)
    n = len(ids)
    index = {v: i for i, v in enumerate(ids)}
    own = [voters[v] for v in ids]

    # Effective rows: the narrowest scope wins.
    prio = bytearray(n)
    rows: list[tuple[str, ...] | None] = [None] * n
    for truster, scope, names in inp.delegations:
        i = index[truster]
        p = _PRIORITY[scope]
        if prio[i] < p:
            prio[i] = p
            rows[i] = names

    status = bytearray(n)
    casting = sorted(index[v] for v in inp.ballots)
    for c in casting:
        status[c] = DIRECT

    # Trustee lists after skipping, and the reversed graph as flat codes (voter << 3 | rank-1).
    trustees: list[tuple[int, ...] | None] = [None] * n
    rev: list[list[int] | None] = [None] * n
    get = index.get
    for i in range(n):
        row = rows[i]
        if not row or status[i] == DIRECT:
            continue
        if len(row) == 1:
            t = get(row[0])
            tl: tuple[int, ...] = () if t is None else (t,)
        else:
            tl = tuple(t for t in map(get, row) if t is not None)
        trustees[i] = tl
        code = i << 3
        for t in tl:
            lst = rev[t]
            if lst is None:
                rev[t] = [code]
            else:
                lst.append(code)
            code += 1

    nxt = [-1] * n
    mid: dict[int, tuple[int, ...]] = {}
    rule = inp.policy.delegation_rule
    if rule == "minsum":
        order = _minsum(casting, trustees, rev, nxt)
    else:
        order, dist = _bfs(casting, rev, n)
        if rule == "dfd":
            order = _dfd(casting, trustees, dist, nxt, mid)
        else:
            _choose_bfd(order, trustees, dist, nxt)

    # Push weights along segments, latest-fixed first (its carried weight is then complete).
    carried = own[:]
    if mid:
        passing: dict[int, int] = {}
        for u in reversed(order):
            m = carried[u]
            seg = mid.get(u)
            if seg:
                for x in seg:
                    passing[x] = passing.get(x, 0) + m
            carried[nxt[u]] += m
        for x, extra in passing.items():
            carried[x] += extra
    else:
        for u in reversed(order):
            carried[nxt[u]] += carried[u]
    weight = [0] * n
    for c in casting:
        weight[c] = carried[c]
    for u in order:
        status[u] = DELEGATED
        weight[u] = carried[u]

    _classify_lost(trustees, status)
    return Resolution(
        ids=ids,
        index=index,
        own=own,
        status=status,
        scope=prio,
        rows=rows,
        trustees=trustees,
        weight=weight,
        nxt=nxt,
        mid=mid,
        casting=casting,
        order=order,
    )


def _bfs(casting: list[int], rev: list[list[int] | None], n: int) -> tuple[list[int], list[int]]:
    """Return the voters that can reach a casting voter, in BFS order, and their distances."""
    dist = [-1] * n
    queue = list(casting)
    for c in casting:
        dist[c] = 0
    for u in queue:  # the list grows while it is read: a FIFO queue
        lst = rev[u]
        if lst is not None:
            du = dist[u] + 1
            for code in lst:
                v = code >> 3
                if dist[v] < 0:
                    dist[v] = du
                    queue.append(v)
    return queue[len(casting) :], dist


def _choose_bfd(
    order: list[int], trustees: list[tuple[int, ...] | None], dist: list[int], nxt: list[int]
) -> None:
    """Give each reached voter its best-ranked trustee one step closer to a casting voter."""
    for v in order:
        closer = dist[v] - 1
        for t in trustees[v]:  # type: ignore[union-attr]
            if dist[t] == closer:
                nxt[v] = t
                break


def _minsum(
    casting: list[int],
    trustees: list[tuple[int, ...] | None],
    rev: list[list[int] | None],
    nxt: list[int],
) -> list[int]:
    """Minimum rank-sum delegation (Dial's algorithm); return the reached voters in order."""
    dist = [_INF] * len(trustees)
    for c in casting:
        dist[c] = 0
    buckets: list[list[int]] = [list(casting)]
    order: list[int] = []
    d = 0
    while d < len(buckets):
        for u in buckets[d]:
            if dist[u] != d:  # superseded by a shorter distance found later
                continue
            order.append(u)
            lst = rev[u]
            if lst is None:
                continue
            for code in lst:
                v = code >> 3
                nd = d + (code & 7) + 1
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
        for r, t in enumerate(trustees[v], 1):  # type: ignore[arg-type]
            if dist[t] + r == dv:
                nxt[v] = t
                break
    return order


def _dfd(
    casting: list[int],
    trustees: list[tuple[int, ...] | None],
    dist: list[int],
    nxt: list[int],
    mid: dict[int, tuple[int, ...]],
) -> list[int]:
    """Depth-first delegation; ``dist`` (from BFD) marks the voters that can reach a caster.

    Return the delegated voters in the order their paths were fixed (dependencies first).
    """
    n = len(trustees)
    known = bytearray(n)  # 1 once a voter's path is fixed (casting voters: the empty path)
    for c in casting:
        known[c] = 1
    order: list[int] = []

    # 1. Voters whose rank-1 chain reaches a casting voter take it (all ranks 1 is the minimum).
    state = bytearray(n)  # 0 unseen, 1 on the current walk, 2 done
    for c in casting:
        state[c] = 2
    for v in range(n):
        if state[v] or dist[v] < 0:
            continue
        walk: list[int] = []
        x = v
        while x >= 0 and state[x] == 0:
            state[x] = 1
            walk.append(x)
            tl = trustees[x]
            x = tl[0] if tl else -1
        ok = x >= 0 and known[x]
        for w in walk:
            state[w] = 2
        if ok:
            for w in reversed(walk):
                nxt[w] = trustees[w][0]  # type: ignore[index]
                known[w] = 1
                order.append(w)

    # 2. The others that can reach a caster, by strongly connected components, downstream first.
    hard = [v for v in range(n) if dist[v] > 0 and not known[v]]
    if not hard:
        return order
    comp = [-1] * n
    in_hard = bytearray(n)
    for v in hard:
        in_hard[v] = 1
    search = _DepthFirst(trustees, comp, known, nxt, mid)
    for cid, members in enumerate(_components(hard, trustees, in_hard)):
        if len(members) == 1:
            v = members[0]
            for t in trustees[v]:  # type: ignore[union-attr]
                if known[t]:
                    nxt[v] = t
                    break
            known[v] = 1
            order.append(v)
            continue
        for v in members:
            comp[v] = cid
        members.sort(key=lambda u: (dist[u], u))
        for v in members:
            search.run(v, cid)
            known[v] = 1
            order.append(v)
    return order


class _DepthFirst:
    """The DFD search inside one strongly connected component."""

    __slots__ = ("comp", "dead", "known", "mid", "nxt", "stamp", "trustees")

    def __init__(
        self,
        trustees: list[tuple[int, ...] | None],
        comp: list[int],
        known: bytearray,
        nxt: list[int],
        mid: dict[int, tuple[int, ...]],
    ) -> None:
        self.trustees = trustees
        self.comp = comp
        self.known = known
        self.nxt = nxt
        self.mid = mid
        self.dead = [0] * len(trustees)
        self.stamp = 0

    def avoids(self, y: int, on_path: set[int], cid: int) -> bool:
        """Return whether the known path of ``y`` stays off ``on_path`` inside component ``cid``."""
        comp, nxt, mid = self.comp, self.nxt, self.mid
        z = y
        while True:
            for m in mid.get(z, ()):
                if m in on_path:
                    return False
            z = nxt[z]
            if comp[z] != cid:
                return True
            if z in on_path:
                return False

    def run(self, v: int, cid: int) -> None:
        """Fix the lexicographically smallest feasible simple path of ``v`` (in component ``cid``).

        A depth-first search in rank order. A vertex whose trustees are all explored without
        success is dead for the rest of this search: it cannot reach a casting voter avoiding
        the current prefix, nor any later prefix of this search (those only add constraints
        or remove vertices it could not use anyway). The search cannot fail, since ``v`` can
        reach a casting voter at all.
        """
        trustees, comp, known, dead = self.trustees, self.comp, self.known, self.dead
        self.stamp += 1
        stamp = self.stamp
        path = [v]
        ptr = [0]
        on_path = {v}
        while True:
            x = path[-1]
            tl: tuple[int, ...] = trustees[x]  # type: ignore[assignment]
            k = ptr[-1]
            while k < len(tl):
                y = tl[k]
                k += 1
                if comp[y] != cid:
                    if known[y]:  # leaves the component: the rest is y's own path
                        break
                    continue
                if y in on_path or dead[y] == stamp:
                    continue
                if known[y] and self.avoids(y, on_path, cid):
                    break  # y's own path is the best one from y that avoids the prefix
                ptr[-1] = k
                path.append(y)
                ptr.append(0)
                on_path.add(y)
                y = -1
                break
            else:
                dead[x] = stamp
                path.pop()
                ptr.pop()
                on_path.discard(x)
                continue
            if y >= 0:
                self.nxt[v] = y
                if len(path) > 1:
                    self.mid[v] = tuple(path[1:])
                return


def _components(
    hard: list[int], trustees: list[tuple[int, ...] | None], in_hard: bytearray
) -> Iterator[list[int]]:
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
            tl: tuple[int, ...] = trustees[x]  # type: ignore[assignment]
            recursed = False
            while k < len(tl):
                y = tl[k]
                k += 1
                if not in_hard[y]:
                    continue
                if y not in num:
                    work.append((x, k))
                    work.append((y, 0))
                    recursed = True
                    break
                if y in on_stack and num[y] < low[x]:
                    low[x] = num[y]
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


def _classify_lost(trustees: list[tuple[int, ...] | None], status: bytearray) -> None:
    """Mark voters with a row but no feasible path as lost in a cycle or at a dead end.

    The reason follows the chain of first remaining trustees: ``cycle`` if it revisits a voter,
    ``dead_end`` if it stops at a voter with nothing to follow. Every voter on such a chain is
    itself lost or absent (a trustee with a feasible path would give the truster one).
    """
    n = len(trustees)
    for v in range(n):
        if status[v] != ABSENT or trustees[v] is None:
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
                break
            y = tl[0]
            if y in on_walk:
                reason = LOST_CYCLE
                break
            s = status[y]
            if s != ABSENT:  # already classified on an earlier walk
                reason = s
                break
            if trustees[y] is None:  # absent: nothing to follow
                break
            x = y
        for w in walk:
            status[w] = reason
