"""The verification engine: trust + material in, a :class:`Report` (and resumable state) out.

:func:`verify` runs the eight numbered steps of docs/PROTOCOL.md ("observer"). It is pure: no
clock (``now`` is passed in), no I/O. Signature checking may be handed to a
:class:`SignatureBatcher` (the CLI's uses a process pool); without one, replay checks each
signature itself.

How the work is organised (the report is by step; the computation streams each log once):

* step 1 verifies every checkpoint a node served for a pinned origin, and its cosignatures;
* for each origin, the *primary view* is the node's copy with the longest verified prefix that
  comes with its entries. One streaming pass over it decodes every leaf, checks its signature,
  hashes it into a compact range (roots at every checkpoint size any node served: step 4) and
  replays it (steps 3 and 5: the replay's findings are routed by reason);
* every other view is compared with it (step 2): byte-identical prefixes need no more work;
  a checkpoint whose root differs from the primary history at its size is a split view, proven
  portably (:class:`~protocol.checkpoint.SplitViewProof`) whenever the material allows;
* the issues of the pinned assembly whose record is complete are tallied (step 6) and compared
  with every attestation in every pinned log (step 7); the nodes' proofs are checked (step 8).
"""

from __future__ import annotations

import base64
import gc
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final, Protocol, cast

from crypto import PublicKey
from protocol.chain import EquivocationProof
from protocol.checkpoint import (
    Checkpoint,
    Cosignature,
    SignedCheckpoint,
    SplitViewProof,
    cosigner_key_id,
)
from protocol.errors import CheckpointError, ProofError, ProtocolError, ValidationError
from protocol.events import AssemblyJoinBody, Event, IssueBody, SealBody
from protocol.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    leaf_hash,
    leaf_hashes,
    node_hash,
    verify_consistency,
)
from protocol.record import RecordPart, record_id
from protocol.state import Finding as ReplayFinding
from protocol.state import State, tally_input
from protocol.tally import tally

from ._material import LogMaterial, NodeMaterial, SavedLog, SavedState, SealedPart
from ._report import Finding, IssueResult, OptionBar, Report
from ._trust import PinnedLog, Trust, handover_keys

__all__ = ["STEP3_REASONS", "SignatureBatcher", "Verification", "verify"]

#: Replay reasons reported at step 3 (the entry itself: encoding, signature, chain); every other
#: replay reason is a step 5 finding (governance validity).
STEP3_REASONS: Final = frozenset(
    {
        "non_canonical",
        "invalid",
        "unknown_type",
        "too_large",
        "trustees_too_long",
        "duplicate_trustee",
        "self_delegation",
        "bad_signature",
        "chain_gap",
        "chain_prev",
        "duplicate_event",
        "equivocation",
        "seq_reused",
    }
)
_CHUNK: Final = 4096
_DEPTH: Final = 3
#: The bytes each type's signed message starts with (``domain_message(type, b"")``).
_type_of: Final = attrgetter("type")


class SignatureBatcher(Protocol):
    """Checks many Ed25519 signatures at once (possibly in other processes)."""

    def submit(self, keys: Sequence[bytes], signed: Sequence[bytes]) -> Callable[[], Sequence[int]]:
        """Start checking ``signed[i]`` (64-byte signature ‖ message) under the raw key
        ``keys[i]``; return a function that waits and returns the positions that failed."""
        ...


_Part = tuple[int, bytes, State, "str | None"]
"""A record part being assembled: size, root, replay state at it, stand-in note (or None)."""

Progress = Callable[[str, int, int], None]
"""Called as ``progress(origin, leaves_done, leaves_total)`` while a log streams."""


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of :func:`verify`: the report and the state to resume from next time."""

    report: Report
    state: SavedState


# --- internal structures ---------------------------------------------------------------------


@dataclass(slots=True)
class _Cp:
    node: str
    signed: SignedCheckpoint
    cp: Checkpoint
    cosigs: dict[str, int]
    signer: str = ""
    """The key of the origin (pinned or handed over to) whose signature verified."""


@dataclass(slots=True)
class _View:
    node: str
    mat: LogMaterial
    cps: list[_Cp] = field(default_factory=list)

    def usable(self) -> int | None:
        """The largest verified checkpoint size this view's entries cover, or None."""
        if self.mat.entries is None:
            return None
        sizes = [c.cp.size for c in self.cps if self.mat.start <= c.cp.size <= self.mat.end]
        return max(sizes, default=None)


@dataclass(slots=True)
class _Log:
    pin: PinnedLog
    member: bool
    optional: bool
    views: list[_View] = field(default_factory=list)
    primary: _View | None = None
    saved: SavedLog | None = None
    roots: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    state: State | None = None
    range: CompactRange | None = None
    primary_ok: bool = True
    replayed: bool = False
    seal_parts: dict[str, SealedPart] = field(default_factory=dict)
    broken: bool = False
    keys: list[PublicKey] = field(default_factory=list)
    """The pinned key and the keys its handovers name (step 1; replay says which is in effect)."""

    @property
    def origin(self) -> str:
        return self.pin.origin

    def all_cps(self) -> list[_Cp]:
        return [c for v in self.views for c in v.cps]


class _Ctx:
    """One verification run's shared pieces."""

    def __init__(
        self,
        trust: Trust,
        report: Report,
        *,
        now: int | None,
        issue: str | None,
        batcher: SignatureBatcher | None,
        progress: Progress | None,
        chunk: int,
    ) -> None:
        self.trust = trust
        self.report = report
        self.now = now
        self.issue = issue
        self.batcher = batcher
        self.progress = progress
        self.chunk = chunk
        self._ours: dict[str, bool] = {}

    def add(self, step: int, severity: str, code: str, message: str, **where: Any) -> None:
        self.report.add(Finding(step, severity, code, message, **where))

    def ours(self, state: State, assembly_id: str) -> bool:
        """True when ``assembly_id`` is the pinned assembly (by id, or by its member pins)."""
        if self.trust.assembly_id is not None:
            return assembly_id == self.trust.assembly_id
        cached = self._ours.get(assembly_id)
        if cached is None:
            body = state.assembly(assembly_id)
            pins = {(c.origin, c.key_text) for c in self.trust.cities}
            cached = body is not None and {(m.origin, m.key) for m in body.members} == pins
            self._ours[assembly_id] = cached
        return cached

    def wanted_issue(self, issue_id: str) -> bool:
        return self.issue is None or issue_id == self.issue


# --- the entry point -------------------------------------------------------------------------


def verify(
    trust: Trust,
    nodes: Sequence[NodeMaterial],
    *,
    now: int | None = None,
    issue: str | None = None,
    saved: SavedState | None = None,
    batcher: SignatureBatcher | None = None,
    progress: Progress | None = None,
    chunk: int = _CHUNK,
) -> Verification:
    """Verify ``nodes``' material under ``trust``; return the report and the state to save.

    ``now`` (Unix seconds) decides whether a member city that has not sealed an issue has run
    out of grace (None: never). ``issue`` restricts steps 6 and 7 to one issue. ``saved`` resumes
    an incremental verification: only entries after the saved checkpoints are verified, and a log
    that does not extend them is refused. Raises :class:`ValidationError` only when ``saved`` was
    made under another trust; every problem of the material is a finding in the report.
    """
    if saved is not None and saved.trust != trust.digest():
        raise ValidationError("the saved verification state was made under another trust file")
    # Replay keeps most of what it builds (the state's maps grow with every event) and builds
    # no reference cycles, so the cyclic collector's passes, which grow with the live objects,
    # would free nothing and cost about a fifth of the work per event besides the signatures.
    # They are paused while verifying; reference counting frees everything as usual, and any
    # cycle left is collected once the collector is back.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _verify(trust, nodes, now, issue, saved, batcher, progress, chunk)
    finally:
        if collecting:
            gc.enable()


def _verify(  # noqa: PLR0917 (verify's arguments, in order)
    trust: Trust,
    nodes: Sequence[NodeMaterial],
    now: int | None,
    issue: str | None,
    saved: SavedState | None,
    batcher: SignatureBatcher | None,
    progress: Progress | None,
    chunk: int,
) -> Verification:
    report = Report(nodes=[n.node for n in nodes], incremental=saved is not None)
    ctx = _Ctx(
        trust, report, now=now, issue=issue, batcher=batcher, progress=progress, chunk=max(1, chunk)
    )
    resolved = _resolve_trust(ctx, nodes, saved)
    if resolved is None:
        return Verification(report, saved or SavedState(trust.digest()))
    ctx.trust = resolved
    report.assembly = resolved.assembly_id
    logs = _step1(ctx, nodes, saved)
    for log in logs.values():
        log.saved = None if saved is None else saved.logs.get(log.origin)
        _stream(ctx, log)
    for log in logs.values():
        _compare_views(ctx, log)
        _check_signers(ctx, log)
    _require_cities(ctx, logs)
    sealed_before = {} if saved is None else saved.sealed
    tallies_before = {} if saved is None else saved.tallies
    tallied, pending = _step6(ctx, logs, sealed_before, tallies_before)
    _step7(ctx, logs, tallied)
    _step8(ctx, nodes, logs)
    state = SavedState(trust.digest(), tallies=tallied, sealed=pending)
    for log in logs.values():
        if log.state is not None and log.range is not None:
            note = _note_at(log, log.size)
            if note is not None:
                state.logs[log.origin] = SavedLog(note, log.range, log.state)
        elif log.saved is not None:
            state.logs[log.origin] = log.saved
    return Verification(report, state)


# --- trust resolution ----------------------------------------------------------------------


def _resolve_trust(
    ctx: _Ctx, nodes: Sequence[NodeMaterial], saved: SavedState | None
) -> Trust | None:
    trust = ctx.trust
    if trust.resolved:
        return trust
    want = trust.assembly_id
    assert want is not None  # an unresolved trust pins an id
    candidates: list[Event] = []
    if saved is not None:
        for sl in saved.logs.values():
            d = sl.state.assemblies.get(want)
            if d is not None:
                candidates.append(d.event)
    for node in nodes:
        for mat in node.logs.values():
            found = _find_definition(mat.entries or (), want)
            if found is not None:
                candidates.append(found)
    for ev in candidates:
        try:
            return trust.with_definition(ev)
        except ValidationError as exc:
            ctx.add(1, "error", "bad_definition", exc.message)
    if not candidates:
        ctx.add(
            1,
            "error",
            "assembly_not_found",
            f"no log served holds the definition of the pinned assembly {want}",
        )
    return None


def _find_definition(entries: Sequence[bytes], want: str) -> Event | None:
    for leaf in entries:
        if b'"type":"assembly' not in leaf:
            continue
        try:
            ev = Event.decode(leaf)
        except ProtocolError:
            continue
        if ev.type == "assembly" and ev.id == want:
            return ev
        if isinstance(ev.body, AssemblyJoinBody) and ev.body.assembly.id == want:
            return ev.body.assembly
    return None


# --- step 1 ----------------------------------------------------------------------------------


def _step1(
    ctx: _Ctx, nodes: Sequence[NodeMaterial], saved: SavedState | None = None
) -> dict[str, _Log]:
    trust = ctx.trust
    s1 = ctx.report.step(1)
    logs: dict[str, _Log] = {}
    pins: dict[str, tuple[PinnedLog, bool, bool]] = {
        g.origin: (g, trust.city(g.origin) is not None, False) for g in trust.all_logs()
    }
    for w in trust.witnesses:
        # A witness that is also a city may publish its own log under its name with the same
        # key: its attestations then count. Such a log is optional: if its checkpoints do not
        # verify under the witness key, it is simply not the witness's log.
        pins.setdefault(w.name, (PinnedLog(w.name, w.key), False, True))
    for origin, (pin, member, optional) in pins.items():
        logs[origin] = _Log(pin, member, optional)
    served: list[tuple[_Log, _View]] = []
    for node in nodes:
        for origin, mat in node.logs.items():
            log = logs.get(origin)
            if log is None:
                s1.count("unpinned logs ignored")
                continue
            served.append((log, _View(node.node, mat)))
    for log in logs.values():
        # The keys checkpoints may be signed with: the pin, then the handovers it signed.
        before = None if saved is None else saved.logs.get(log.origin)
        start = [log.pin.key_text] if before is None else before.state.city_keys()
        if log.optional:
            log.keys = [log.pin.key]
        else:
            views = [v.mat.entries for g, v in served if g is log and v.mat.entries is not None]
            log.keys = handover_keys(start, views)
    for log, view in served:
        if _check_view(ctx, log, view):
            log.views.append(view)
    for origin, log in logs.items():
        if log.member and not any(v.cps for v in log.views):
            ctx.add(
                1,
                "error",
                "no_checkpoint",
                f"no node served a verified checkpoint of member city {origin}",
                origin=origin,
            )
    return logs


def _check_view(ctx: _Ctx, log: _Log, view: _View) -> bool:
    s1 = ctx.report.step(1)
    origin, keys = log.origin, log.keys
    severity = "info" if log.optional else "error"
    for text in view.mat.checkpoints:
        try:
            sc = SignedCheckpoint.parse(text)
        except CheckpointError as exc:
            ctx.add(1, severity, "malformed_checkpoint", exc.message, origin=origin, node=view.node)
            if log.optional:
                return False
            continue
        cp = sc.checkpoint
        try:
            signer = sc.signer(origin, keys).to_text()
        except CheckpointError as exc:
            if log.optional:
                s1.count("logs not signed by their witness key")
                return False
            ctx.add(
                1,
                "error",
                "bad_checkpoint_signature",
                f"checkpoint of size {cp.size}: {exc.message}",
                origin=origin,
                index=cp.size,
                node=view.node,
            )
            continue
        s1.count("checkpoints verified")
        cosigs: dict[str, int] = {}
        for w in ctx.trust.witnesses:
            kid = cosigner_key_id(w.name, w.key)
            for sig in sc.signatures:
                if sig.name != w.name or sig.key_id != kid:
                    continue
                try:
                    cosig = Cosignature.from_note_signature(sig)
                    cosig.verify(cp, w.key)
                except CheckpointError as exc:
                    ctx.add(
                        1,
                        "error",
                        "bad_cosignature",
                        f"checkpoint of size {cp.size}: {exc.message}",
                        origin=origin,
                        index=cp.size,
                        node=view.node,
                    )
                    continue
                cosigs[w.name] = min(cosig.time, cosigs.get(w.name, cosig.time))
        s1.count("cosignatures verified", len(cosigs))
        if len(cosigs) >= ctx.trust.k:
            s1.count("checkpoints with k cosignatures")
        view.cps.append(_Cp(view.node, sc, cp, cosigs, signer))
    return True


def _check_signers(ctx: _Ctx, log: _Log) -> None:
    """Step 1, after replay: each checkpoint within the verified history must be signed by the
    key in effect at its size (docs/PROTOCOL.md §6.2), not by a key a handover retired."""
    state = log.state
    if state is None or (not state.handovers and len(log.keys) == 1):
        return
    for c in log.all_cps():
        size = c.cp.size
        if size > state.size or log.roots.get(size) != c.cp.root:
            continue
        want = state.key_at(size)
        if c.signer == want:
            continue
        retired = c.signer in state.city_keys()[: state.city_keys().index(want)]
        ctx.add(
            1,
            "error",
            "retired_key" if retired else "checkpoint_key",
            f"checkpoint of size {size} is signed by {c.signer}, "
            + ("a key that a handover retired" if retired else "a key not in effect at that size")
            + f"; the key in effect is {want}",
            origin=log.origin,
            index=size,
            node=c.node,
        )


# --- streaming the primary view: steps 3, 4 (roots) and 5 --------------------------------------


def _stream(ctx: _Ctx, log: _Log) -> None:
    saved = log.saved
    start = 0 if saved is None else saved.range.size
    candidates = [v for v in log.views if v.mat.entries is not None and v.mat.start == start]
    best: _View | None = None
    best_size = -1
    for v in candidates:
        u = v.usable()
        if u is not None and u > best_size:
            best, best_size = v, u
    if saved is not None:
        log.roots[saved.range.size] = saved.range.root()
    if best is None or best_size <= start:
        if saved is not None:
            log.state = saved.state.copy()
            log.range = saved.range.copy()
            log.size = saved.range.size
        elif log.views and log.member and any(v.cps for v in log.views):
            ctx.add(
                4,
                "error",
                "no_entries",
                f"no node served the entries of {log.origin} up to a verified checkpoint",
                origin=log.origin,
            )
            log.broken = True
        return
    log.primary = best
    entries = best.mat.entries
    assert entries is not None
    end = best_size
    wanted = {c.cp.size for c in log.all_cps() if start < c.cp.size <= end}
    if saved is None:
        state = State(log.origin, log.pin.key_text, leaves=entries.__getitem__)
        cr = CompactRange()
        log.roots[0] = EMPTY_ROOT
    else:
        # Earlier leaves are not at hand: an old seq reused is reported as seq_reused.
        state = State.from_dict(saved.state.to_dict())
        cr = saved.range.copy()
    cr = _replay(ctx, log, best, entries, start=start, end=end, state=state, cr=cr, wanted=wanted)
    log.state, log.range, log.size, log.replayed = state, cr, end, True
    beyond = best.mat.end - end
    if beyond:
        ctx.report.step(4).count("entries beyond the latest checkpoint (not verified)", beyond)


def _replay(
    ctx: _Ctx,
    log: _Log,
    view: _View,
    entries: Sequence[bytes],
    *,
    start: int,
    end: int,
    state: State,
    cr: CompactRange,
    wanted: set[int],
) -> CompactRange:
    """Stream ``entries[start:end]`` into ``state``; return the compact range grown over them.

    Chunks are pipelined: while the batcher checks the signatures of the next chunks (in other
    processes, for a pool), this process hashes and replays the current one. Each leaf is decoded
    once, here; the batcher gets the raw keys and signed messages and answers with the positions
    that failed, which replay then re-checks itself (and reports).
    """
    s3, s5 = ctx.report.step(3), ctx.report.step(5)
    batcher = ctx.batcher
    origin, node = log.origin, view.node
    roots = log.roots
    chunk = ctx.chunk
    base = view.mat.start

    def prepare(lo: int) -> tuple[int, Sequence[bytes], list[Event | None], Callable[[], set[int]]]:
        hi = min(lo + chunk, end)
        leaves = entries[lo - base : hi - base]
        events, complete = _decode_all(leaves)
        if batcher is None:
            return lo, leaves, events, set
        # The signed message is the type's prefix followed by the unsigned form (§2).
        good = cast("list[Event]", events) if complete else [e for e in events if e is not None]
        wait = batcher.submit(
            [ev.author_raw for ev in good],
            [ev.signed_message() for ev in good],
        )
        if complete:
            return lo, leaves, events, lambda: set(wait())
        pos = [j for j, ev in enumerate(events) if ev is not None]
        return lo, leaves, events, lambda: {pos[b] for b in wait()}

    pending: deque[tuple[int, Sequence[bytes], list[Event | None], Callable[[], set[int]]]] = (
        deque()
    )
    apply, apply_event = state.apply, state.apply_event
    checked = batcher is not None
    depth = _DEPTH if checked else 1
    seal_parts = log.seal_parts
    # The seal part that holds the live state: copied only if another leaf follows it.
    held: str | None = None
    next_lo = start
    while next_lo < end or pending:
        while next_lo < end and len(pending) < depth:
            pending.append(prepare(next_lo))
            next_lo = min(next_lo + chunk, end)
        lo, leaves, events, wait = pending.popleft()
        hi = lo + len(leaves)
        # The roots this chunk must yield: at checkpoint sizes, and after each seal.
        cuts = {s for s in wanted if lo < s <= hi}
        if "seal" in map(_type_of, filter(None, events)):  # seals are rare: one C-driven scan
            cuts.update(
                lo + j + 1 for j, ev in enumerate(events) if ev is not None and ev.type == "seal"
            )
        cr, at = _grow(cr, leaf_hashes(leaves), cuts)
        for size in wanted.intersection(at):
            roots[size] = at[size]
        bad = wait()
        vouched = checked and not bad  # every signature of the chunk verified
        idx = lo
        for leaf, ev in zip(leaves, events, strict=True):
            if held is not None:
                seal_parts[held] = SealedPart(seal_parts[held].root, state.copy())
                held = None
            if ev is None:
                found = apply(idx, leaf)
            else:
                found = apply_event(idx, ev, verified=vouched or (checked and idx - lo not in bad))
            idx += 1
            if found:
                _route(ctx, found, node)
            elif ev is not None and ev.type == "seal":
                body = ev.body
                assert isinstance(body, SealBody)
                iss = state.issue(body.issue)
                if iss is not None and ctx.ours(state, iss.assembly):
                    seal_parts[body.issue] = SealedPart(at[idx], state)
                    held = body.issue
        s3.count("entries checked", len(leaves))
        s5.count("events replayed", len(leaves))
        if ctx.progress is not None:
            ctx.progress(origin, hi, end)
    return cr


def _decode_all(leaves: Sequence[bytes]) -> tuple[list[Event | None], bool]:
    """Each leaf decoded, or None where it does not decode; and whether all of them did."""
    decode = Event.decode
    try:
        return list(map(decode, leaves)), True  # the common case, in one C-driven loop
    except ProtocolError:
        pass
    events: list[Event | None] = []
    for leaf in leaves:
        try:
            events.append(decode(leaf))
        except ProtocolError:
            events.append(None)
    return events, False


def _grow(
    cr: CompactRange, hashes: Sequence[bytes], cuts: Iterable[int]
) -> tuple[CompactRange, dict[int, bytes]]:
    """Append leaf ``hashes`` to ``cr``; return the grown range and its roots at the sizes of
    ``cuts`` that fall within the appended span.

    The result is that of appending one hash at a time, but each aligned perfect subtree is
    hashed level by level (a list comprehension per level) and joined to the peaks at once.
    """
    size = cr.size
    end = size + len(hashes)
    peaks = list(cr.peaks)
    wanted = {c for c in cuts if size < c <= end}
    roots: dict[int, bytes] = {}
    i = 0
    for stop in sorted(wanted | {end}):
        while size < stop:
            # The largest perfect subtree that starts at `size` and ends by `stop`.
            span = min(size & -size or 1 << 63, 1 << ((stop - size).bit_length() - 1))
            level = hashes[i : i + span]
            while len(level) > 1:
                level = [node_hash(a, b) for a, b in zip(level[::2], level[1::2], strict=True)]
            h = level[0]
            index = size // span
            while index & 1:
                h = node_hash(peaks.pop(), h)
                index >>= 1
            peaks.append(h)
            size += span
            i += span
        if stop in wanted:
            roots[stop] = CompactRange(size, peaks).root()
    return CompactRange(size, peaks), roots


def _route(ctx: _Ctx, found: Sequence[ReplayFinding], node: str) -> None:
    for f in found:
        step = 3 if f.reason in STEP3_REASONS else 5
        ctx.add(
            step,
            "error",
            f.reason,
            f.message,
            origin=f.origin,
            index=f.index,
            event_id=f.event_id,
            node=node,
            proof=None if f.proof is None else f.proof.to_dict(),
        )


# --- steps 2 and 4: every checkpoint against the primary history ------------------------------


def _compare_views(ctx: _Ctx, log: _Log) -> None:
    s2, s4 = ctx.report.step(2), ctx.report.step(4)
    origin = log.origin
    primary = log.primary
    roots = log.roots
    low = 0 if log.saved is None else log.saved.range.size
    # Step 4 on the primary view's own checkpoints.
    if primary is not None:
        for c in primary.cps:
            size = c.cp.size
            if size in roots and c.cp.root != roots[size]:
                log.primary_ok = False
                log.broken = True
                ctx.add(
                    4,
                    "error",
                    "root_mismatch",
                    f"the signed root of size {size} is not the root of the {size} entries "
                    "served with it",
                    origin=origin,
                    index=size,
                    node=c.node,
                )
            elif size in roots:
                s4.count("checkpoint roots recomputed")
            elif size > log.size and primary.mat.end < size:
                ctx.add(
                    4,
                    "error",
                    "entries_missing",
                    f"checkpoint of size {size}, but only {primary.mat.end} entries were served",
                    origin=origin,
                    index=size,
                    node=c.node,
                )
    if log.saved is not None:
        _check_extends(ctx, log)
    for view in log.views:
        if view is primary:
            continue
        conflicts = [
            c
            for c in view.cps
            if c.cp.size in roots and c.cp.root != roots[c.cp.size] and c.cp.size != low
        ]
        for c in view.cps:
            if c.cp.size in roots and c.cp.root == roots[c.cp.size]:
                s2.count("checkpoints consistent")
            elif c.cp.size > log.size:
                _beyond(ctx, log, view, c)
            elif c.cp.size < low:
                s2.count("older checkpoints not rechecked")
        own_ok = _own_roots_ok(ctx, log, view)
        if not conflicts:
            if not own_ok:
                # The node's checkpoints agree with the history, its entries do not.
                continue
            if view.mat.entries is not None and primary is not None:
                _compare_bytes(ctx, log, view)
            continue
        if not log.primary_ok:
            s2.count("checkpoints not compared (the primary history is itself broken)")
            continue
        _split_view(ctx, log, view, conflicts[0], own_ok)


def _own_roots_ok(ctx: _Ctx, log: _Log, view: _View) -> bool:
    """Step 4 for a secondary view that came with entries: do they match its checkpoints?"""
    entries = view.mat.entries
    if entries is None or view.mat.start != (0 if log.saved is None else log.saved.range.size):
        return True
    sizes = {c.cp.size: c for c in view.cps if view.mat.start < c.cp.size <= view.mat.end}
    if not sizes:
        return True
    cr = CompactRange() if log.saved is None else log.saved.range.copy()
    primary = log.primary
    same = (
        primary is not None
        and primary.mat.entries is not None
        and primary.mat.start == view.mat.start
    )
    top = max(sizes)
    if same and primary is not None and primary.mat.entries is not None:
        n = min(top, log.size) - view.mat.start
        if n > 0 and entries[:n] == primary.mat.entries[:n] and top <= log.size:
            return True  # byte-identical to the verified history: its roots are known
    ok = True
    base = view.mat.start
    for i in range(base, top):
        cr.append(leaf_hash(entries[i - base]))
        c = sizes.get(cr.size)
        if c is not None and cr.root() != c.cp.root:
            ok = False
            ctx.add(
                4,
                "error",
                "root_mismatch",
                f"the signed root of size {cr.size} is not the root of the entries served with it",
                origin=log.origin,
                index=cr.size,
                node=view.node,
            )
    return ok


def _compare_bytes(ctx: _Ctx, log: _Log, view: _View) -> None:
    primary = log.primary
    assert primary is not None
    assert primary.mat.entries is not None
    mine, theirs = primary.mat.entries, view.mat.entries
    assert theirs is not None
    if view.mat.start != primary.mat.start:
        return
    n = min(len(mine), len(theirs), log.size - primary.mat.start)
    if mine[:n] == theirs[:n]:
        ctx.report.step(2).count("views byte-identical to the primary history")


def _beyond(ctx: _Ctx, log: _Log, view: _View, c: _Cp) -> None:
    """A checkpoint larger than the verified history: consistent only if a proof shows it."""
    for p in view.mat.consistency:
        old_root = log.roots.get(p.old)
        if p.new != c.cp.size or old_root is None:
            continue
        try:
            verify_consistency(p.old, p.new, old_root, c.cp.root, list(p.proof))
        except ProofError:
            continue
        ctx.report.step(2).count("larger checkpoints proven consistent")
        return
    ctx.add(
        2,
        "warning",
        "not_shown_consistent",
        f"checkpoint of size {c.cp.size} is beyond the verified history ({log.size}) and no "
        "consistency proof shows it extends it (a failing proof proves nothing)",
        origin=log.origin,
        index=c.cp.size,
        node=view.node,
    )


def _check_extends(ctx: _Ctx, log: _Log) -> None:
    """Incremental mode: every checkpoint must extend the saved one."""
    saved = log.saved
    assert saved is not None
    old = SignedCheckpoint.parse(saved.checkpoint)
    size, root = saved.range.size, saved.range.root()
    for c in log.all_cps():
        if c.cp.size == size and c.cp.root != root:
            try:
                proof = SplitViewProof.of_roots(old, c.signed)
            except ProofError as exc:  # pragma: no cover (both notes were verified)
                ctx.add(2, "error", "not_extending", exc.message, origin=log.origin, node=c.node)
                continue
            _report_split(ctx, log, proof, c.node, "the saved checkpoint")
        elif c.cp.size < size:
            ctx.report.step(2).count("older checkpoints not rechecked")
    if log.primary is not None and not log.primary_ok:
        # The new entries do not lead from the saved range to the new roots. If no proof shows
        # the new checkpoint extends the saved one, refuse the log.
        for c in log.primary.cps:
            if c.cp.size <= size:
                continue
            shown = False
            for p in log.primary.mat.consistency:
                if p.old == size and p.new == c.cp.size:
                    try:
                        verify_consistency(size, c.cp.size, root, c.cp.root, list(p.proof))
                        shown = True
                    except ProofError:
                        pass
            if not shown:
                ctx.add(
                    2,
                    "error",
                    "not_extending",
                    f"checkpoint of size {c.cp.size} does not extend the saved checkpoint of "
                    f"size {size}: refused",
                    origin=log.origin,
                    index=c.cp.size,
                    node=c.node,
                )


def _split_view(ctx: _Ctx, log: _Log, view: _View, bad: _Cp, own_ok: bool) -> None:
    size = bad.cp.size
    good = next(
        (c for c in log.all_cps() if c.cp.size == size and c.cp.root == log.roots[size]), None
    )
    if good is not None:
        proof = SplitViewProof.of_roots(good.signed, bad.signed)
        _report_split(ctx, log, proof, view.node, good.node)
        return
    primary = log.primary
    if own_ok and view.mat.entries is not None and primary is not None and log.saved is None:
        proof2 = _inclusion_split(log, primary, view, bad)
        if proof2 is not None:
            _report_split(ctx, log, proof2, view.node, primary.node)
            return
    ctx.add(
        2,
        "error",
        "checkpoint_conflict",
        f"the signed checkpoint of size {size} does not match the verified history at that size",
        origin=log.origin,
        index=size,
        node=view.node,
    )


def _inclusion_split(log: _Log, primary: _View, view: _View, bad: _Cp) -> SplitViewProof | None:
    mine, theirs = primary.mat.entries, view.mat.entries
    assert mine is not None
    assert theirs is not None
    n = min(len(mine), len(theirs), bad.cp.size)
    first = next((i for i in range(n) if mine[i] != theirs[i]), None)
    if first is None:
        return None
    good = min(
        (c for c in primary.cps if c.cp.size > first and log.roots.get(c.cp.size) == c.cp.root),
        key=lambda c: c.cp.size,
        default=None,
    )
    if good is None:
        return None
    ta = MemoryTree(leaf_hash(x) for x in mine[: good.cp.size])
    tb = MemoryTree(leaf_hash(x) for x in theirs[: bad.cp.size])
    return SplitViewProof.of_inclusions(
        first,
        (good.signed, ta.leaf(first), ta.inclusion_proof(first)),
        (bad.signed, tb.leaf(first), tb.inclusion_proof(first)),
    )


def _report_split(ctx: _Ctx, log: _Log, proof: SplitViewProof, node: str, other: str) -> None:
    try:
        proof.verify(*log.keys)
    except ProofError as exc:  # pragma: no cover (both halves were verified at step 1)
        ctx.add(2, "error", "checkpoint_conflict", exc.message, origin=log.origin, node=node)
        return
    if proof.kind == "inclusion":
        where, index = f" at leaf {proof.index}", proof.index
    else:
        index = proof.checkpoints[0].checkpoint.size
        where = f" of size {index}"
    ctx.add(
        2,
        "error",
        "split_view",
        f"{log.origin} signed two different histories{where}: one served by {node}, the other "
        f"by {other}",
        origin=log.origin,
        index=index,
        node=node,
        proof=proof.to_dict(),
    )


def _require_cities(ctx: _Ctx, logs: Mapping[str, _Log]) -> None:
    for log in logs.values():
        if log.member and log.state is None and not log.broken and any(v.cps for v in log.views):
            log.broken = True


# --- steps 5 (record-level findings) and 6: the tallies ----------------------------------------


def _note_at(log: _Log, size: int) -> str | None:
    root = log.roots.get(size)
    for c in log.all_cps():
        if c.cp.size == size and c.cp.root == root:
            return c.signed.to_text()
    if log.saved is not None and log.saved.range.size == size:
        return log.saved.checkpoint
    return None


def _witness_times(log: _Log, size: int) -> dict[str, int]:
    """Per witness, its earliest cosignature of a consistent checkpoint covering ``size``."""
    out: dict[str, int] = {}
    for c in log.all_cps():
        if c.cp.size >= size and log.roots.get(c.cp.size) == c.cp.root:
            for name, t in c.cosigs.items():
                out[name] = min(t, out.get(name, t))
    return out


def _kth(times: Iterable[int], k: int) -> int | None:
    ordered = sorted(times)
    return ordered[k - 1] if 0 < k <= len(ordered) else None


def _issues(
    ctx: _Ctx, logs: Mapping[str, _Log], sealed_before: Mapping[str, Any]
) -> dict[str, IssueBody]:
    found: dict[str, IssueBody] = {}
    for log in logs.values():
        if not log.member or log.state is None:
            continue
        st = log.state
        for issue_id in st.issues:
            body = st.issue(issue_id)
            if body is not None and ctx.ours(st, body.assembly) and ctx.wanted_issue(issue_id):
                found.setdefault(issue_id, body)
    for issue_id, parts in sealed_before.items():
        if issue_id not in found and ctx.wanted_issue(issue_id):
            for part in parts.values():
                body = part.state.issue(issue_id)
                if body is not None:
                    found[issue_id] = body
                    break
    return found


def _step6(
    ctx: _Ctx,
    logs: Mapping[str, _Log],
    sealed_before: Mapping[str, Mapping[str, SealedPart]],
    tallies_before: Mapping[str, tuple[str, str]],
) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, SealedPart]]]:
    s6 = ctx.report.step(6)
    trust = ctx.trust
    tallied: dict[str, tuple[str, str]] = dict(tallies_before)
    pending: dict[str, dict[str, SealedPart]] = {}
    members = [logs[c.origin] for c in trust.cities if c.origin in logs]
    issues = _issues(ctx, logs, sealed_before)
    for issue_id, body in sorted(issues.items(), key=lambda kv: (kv[1].closes, kv[0])):
        if issue_id in tallies_before:
            s6.count("issues tallied before (incremental)")
            continue
        parts: dict[str, _Part] = {}
        missing: list[_Log] = []
        for log in members:
            part = log.seal_parts.get(issue_id) or sealed_before.get(issue_id, {}).get(log.origin)
            if part is not None:
                parts[log.origin] = (part.state.size, part.root, part.state, None)
            else:
                missing.append(log)
        _seal_flags(ctx, issue_id, body, parts, logs)
        _window_changes(ctx, issue_id, body, members, parts)
        if any(log.broken or (log.member and log.state is None) for log in members):
            ctx.report.issues.append(IssueResult(issue_id, body.title, "unverifiable", body.closes))
            s6.count("issues not tallied (an earlier step failed)")
            continue
        grace_over = ctx.now is not None and ctx.now >= body.closes + trust.grace
        # Without witnesses (k = 0) no time can be established: the record waits for the seals.
        if missing and (not grace_over or trust.k == 0):
            pending[issue_id] = {o: SealedPart(r, st) for o, (_, r, st, _) in parts.items()}
            ctx.report.issues.append(IssueResult(issue_id, body.title, "open", body.closes))
            s6.count("issues open (not sealed by every member yet)")
            continue
        unverifiable = False
        for log in missing:
            fallback = _fallback(ctx, log, issue_id, body)
            if fallback is None:
                unverifiable = True
                continue
            parts[log.origin] = fallback
        if unverifiable:
            ctx.report.issues.append(IssueResult(issue_id, body.title, "unverifiable", body.closes))
            continue
        result = _tally(ctx, issue_id, body, parts)
        if result is not None:
            tallied[issue_id] = (result.record or "", result.digest or "")
            ctx.report.issues.append(result)
    return tallied, pending


def _seal_flags(
    ctx: _Ctx,
    issue_id: str,
    body: IssueBody,
    parts: Mapping[str, _Part],
    logs: Mapping[str, _Log],
) -> None:
    k = ctx.trust.k
    if k == 0:
        return
    for origin, (size, _root, _st, _note) in parts.items():
        log = logs[origin]
        if log.broken:
            continue  # its roots do not match its checkpoints: already reported at step 4
        t = _kth(_witness_times(log, size).values(), k)
        where = {"origin": origin, "index": size - 1, "issue": issue_id}
        if t is None:
            if ctx.now is not None and ctx.now > body.closes + ctx.trust.grace:
                ctx.add(
                    5,
                    "warning",
                    "seal_late",
                    f"the seal is unwitnessed: no checkpoint covering it (size {size}) carries "
                    f"{k} witness cosignatures, and the grace period is over",
                    **where,
                )
        elif t < body.closes:
            ctx.add(
                5,
                "warning",
                "seal_early",
                f"the seal was cosigned by {k} witnesses at {t}, before the close at {body.closes}",
                **where,
            )
        elif t > body.closes + ctx.trust.grace:
            ctx.add(
                5,
                "warning",
                "seal_late",
                f"the seal was first cosigned by {k} witnesses at {t}, after the close plus "
                f"grace ({body.closes + ctx.trust.grace})",
                **where,
            )
        else:
            ctx.report.step(5).count("seals on time")


def _window_changes(
    ctx: _Ctx,
    issue_id: str,
    body: IssueBody,
    members: Sequence[_Log],
    parts: Mapping[str, _Part],
) -> None:
    for log in members:
        st = parts[log.origin][2] if log.origin in parts else log.state
        if st is None:
            continue
        if issue_id not in st.issues:
            ctx.add(
                5,
                "warning",
                "not_adopted",
                f"member city {log.origin} has not adopted the issue: its citizens cannot vote on it",
                origin=log.origin,
                issue=issue_id,
            )
            continue
        changes = st.enrolment_changes(issue_id)
        if not changes:
            continue
        step = ctx.report.step(5)
        step.count("enrolment changes inside voting windows", len(changes))
        # One finding per change: a city may enrol thousands while a vote is open.
        step.findings += Finding.many(
            5,
            "info",
            log.origin,
            issue_id,
            (
                (
                    f"window_{c.kind}",
                    f"{c.kind} of {c.key} (ref {c.ref}) inside the voting window",
                    c.index,
                )
                for c in changes
            ),
        )


def _fallback(ctx: _Ctx, log: _Log, issue_id: str, body: IssueBody) -> _Part | None:
    """A member that did not seal: its largest checkpoint k witnesses cosigned before the close."""
    k = ctx.trust.k
    best: _Cp | None = None
    for c in log.all_cps():
        if log.roots.get(c.cp.size) != c.cp.root or c.cp.size > log.size:
            continue
        early = [t for t in c.cosigs.values() if t < body.closes]
        if len(early) >= k and (best is None or c.cp.size > best.cp.size):
            best = c
    if best is None or best.cp.size == 0:
        ctx.add(
            5,
            "warning",
            "seal_missing",
            f"{log.origin} did not seal by the close plus grace, and no checkpoint of its log "
            f"was cosigned by {k} witnesses before the close: the record cannot be formed",
            origin=log.origin,
            issue=issue_id,
        )
        return None
    size, root = best.cp.size, best.cp.root
    ctx.add(
        5,
        "warning",
        "seal_missing",
        f"{log.origin} did not seal by the close plus grace; its part of the record is the "
        f"checkpoint of size {size} that {k} witnesses cosigned before the close",
        origin=log.origin,
        index=size,
        issue=issue_id,
    )
    primary = log.primary
    if primary is None or primary.mat.entries is None or primary.mat.start != 0:
        ctx.report.step(6).count("fallback parts not replayable (incremental)")
        return None
    st = State(log.origin, log.pin.key_text, leaves=primary.mat.entries.__getitem__)
    for i in range(size):
        st.apply(i, primary.mat.entries[i])
    return size, root, st, best.signed.to_text()


def _tally(
    ctx: _Ctx, issue_id: str, body: IssueBody, parts: Mapping[str, _Part]
) -> IssueResult | None:
    s6 = ctx.report.step(6)
    try:
        rid = record_id(
            RecordPart(o, size, root, "seal", size - 1)
            if note is None
            else RecordPart(o, size, root, "checkpoint", None, note)
            for o, (size, root, _, note) in parts.items()
        )
        build = tally_input(issue_id, {o: st for o, (_, _, st, _) in parts.items()})
        result = tally(build.prepared)
    except ProtocolError as exc:
        ctx.add(
            6, "error", exc.code, f"the record cannot be tallied: {exc.message}", issue=issue_id
        )
        return None
    for f in build.findings:
        ctx.add(
            5,
            "warning",
            f.reason,
            f.message,
            origin=f.origin,
            index=f.index,
            event_id=f.event_id,
            issue=issue_id,
        )
    s6.count("issues tallied")
    titles = {o.id: o.title for o in body.options}
    bars = tuple(
        OptionBar(
            o,
            titles.get(o, o),
            r.positive_votes,
            r.negative_votes,
            r.rank,
            r.winner,
        )
        for o, r in result.options.items()
    )
    return IssueResult(
        issue_id,
        body.title,
        "tallied",
        body.closes,
        record=rid,
        digest=result.digest,
        winner=result.winner,
        parts=tuple(
            (o, size, base64.b64encode(root).decode("ascii"))
            for o, (size, root, _, _) in sorted(parts.items())
        ),
        options=bars,
        voters=len(build.prepared.voters),
    )


# --- step 7: attestations ---------------------------------------------------------------------


def _step7(ctx: _Ctx, logs: Mapping[str, _Log], tallied: Mapping[str, tuple[str, str]]) -> None:
    s7 = ctx.report.step(7)
    by_record: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for log in logs.values():
        st = log.state
        if st is None:
            continue
        node = None if log.primary is None else log.primary.node
        for rec, att in st.attestations.items():
            if not ctx.wanted_issue(att.issue):
                continue
            if log.saved is not None and att.index < log.saved.range.size:
                continue  # compared when it was new
            by_record.setdefault(rec, {}).setdefault(att.digest, []).append((log.origin, att.index))
            ours = tallied.get(att.issue)
            where = {"origin": log.origin, "index": att.index, "issue": att.issue, "node": node}
            if ours is None:
                s7.count("attestations of issues not tallied here")
            elif rec == ours[0] and att.digest == ours[1]:
                s7.count("attestations agreeing")
            elif rec == ours[0]:
                ctx.add(
                    7,
                    "error",
                    "wrong_digest",
                    f"{log.origin} attests digest {att.digest} for record {rec}; the recomputed "
                    f"tally's digest is {ours[1]}",
                    **where,
                )
            else:
                ctx.add(
                    7,
                    "warning",
                    "other_record",
                    f"{log.origin} attests record {rec}, not the record verified here ({ours[0]})",
                    **where,
                )
    for rec, digests in by_record.items():
        if len(digests) > 1:
            who = "; ".join(
                f"{d[:12]}… by {', '.join(o for o, _ in who)}" for d, who in sorted(digests.items())
            )
            ctx.add(
                7,
                "error",
                "attestations_disagree",
                f"record {rec} is attested with different digests: {who}",
            )


# --- step 8: the proofs the nodes hold ----------------------------------------------------------


def _step8(ctx: _Ctx, nodes: Sequence[NodeMaterial], logs: Mapping[str, _Log]) -> None:
    s8 = ctx.report.step(8)
    seen: set[str] = set()
    for node in nodes:
        for item in node.proofs:
            kind = item.get("kind") if isinstance(item, Mapping) else None
            body = item.get("proof") if isinstance(item, Mapping) else None
            if kind in ("split-view", "split_view"):
                _check_split_proof(ctx, node.node, body, logs, seen)
            elif kind == "equivocation":
                _check_equivocation(ctx, node.node, body, seen)
            else:
                s8.count("proofs of unknown kinds")
                ctx.add(
                    8,
                    "warning",
                    "unknown_proof",
                    f"a proof of unknown kind {kind!r}",
                    node=node.node,
                )


def _check_split_proof(
    ctx: _Ctx, node: str, body: Any, logs: Mapping[str, _Log], seen: set[str]
) -> None:
    s8 = ctx.report.step(8)
    try:
        proof = SplitViewProof.from_dict(body)
    except ValidationError as exc:
        ctx.add(
            8, "warning", "invalid_proof", f"a malformed split-view proof: {exc.message}", node=node
        )
        return
    if proof.id in seen:
        return
    seen.add(proof.id)
    log = logs.get(proof.origin)
    if log is None:
        s8.count("proofs about unpinned logs (not checked)")
        return
    try:
        proof.verify(*(log.keys or [log.pin.key]))
    except ProofError as exc:
        ctx.add(
            8,
            "warning",
            "invalid_proof",
            f"a split-view proof against {proof.origin} that does not verify: {exc.message}",
            origin=proof.origin,
            node=node,
        )
        return
    s8.count("valid split-view proofs")
    ctx.add(
        8,
        "error",
        "split_view",
        f"{proof.origin} signed two different histories (a valid proof held by {node})",
        origin=proof.origin,
        node=node,
        proof=proof.to_dict(),
    )


def _check_equivocation(ctx: _Ctx, node: str, body: Any, seen: set[str]) -> None:
    try:
        proof = EquivocationProof.from_dict(body)
        proof.verify()
    except (ValidationError, ProofError) as exc:
        ctx.add(
            8,
            "warning",
            "invalid_proof",
            f"an equivocation proof that does not hold: {exc.message}",
            node=node,
        )
        return
    key = f"{proof.first.id}:{proof.second.id}"
    if key in seen:
        return
    seen.add(key)
    ctx.report.step(8).count("valid equivocation proofs")
    ctx.add(
        8,
        "warning",
        "equivocation",
        f"{proof.author} signed two events at seq {proof.seq} (the first in a log wins)",
        event_id=proof.second.id,
        node=node,
        proof=proof.to_dict(),
    )
