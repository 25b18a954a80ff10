"""Pull replication: one loop per configured peer (DESIGN invariant 6, docs/PROTOCOL.md
"federation").

A *round* with one peer does, in this order:

1. **Proofs first.** ``GET /v1/proofs``: every split-view proof about an origin we trust is
   verified with the pinned key, stored, and the origin's mirror is frozen. Our own
   ``/v1/proofs`` then serves it to our peers, so proofs spread one hop per round.
2. **Logs.** ``GET /v1/logs``: for each origin we trust (a pin: a configured peer, or a member
   city pinned by an assembly we know), verify the checkpoint's signature with the key in effect
   at its size: the pinned key followed through the handovers our replica holds (never a key the
   peer offers). A checkpoint signed by another key is either by a key a handover retired (a
   finding against the log, not stored) or, if it lies beyond our replica, follows a handover we
   have not replicated: the entries up to its size are fetched and checked against its root, a
   copy of our replica replays them (the handover is signed by the key we trust), and the
   checkpoint must then verify with the key in effect at its size. A newer checkpoint is followed by a consistency proof from
   our mirror's size, then the entries in pages; each chunk of pages is appended only once a
   consistency proof from its end to the checkpoint (or, for the last one, the root) verifies, so
   the mirror keeps every verifiable leaf and never has a hole.
3. **Cosignatures.** ``GET /v1/cosignatures?after=`` (the peer's feed of verified cosignatures):
   those by pinned witnesses on checkpoints of trusted origins are kept (they decide the clock
   of records) and served on.

A checkpoint that disagrees with what we hold is investigated, never trusted: same size and
another root, or a leaf that differs at one index under two checkpoints, is a
:class:`~protocol.checkpoint.SplitViewProof`; a consistency proof that merely fails proves nothing
about the log (the peer may be lying) and is recorded against the peer only.

Everything the peer sends is bounded: the transport caps sizes and time, and each answer's
shape and counts are checked here (:class:`~node.errors.PeerError` otherwise). A failed round
backs off exponentially with jitter; nothing stored is lost by a failed round.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crypto import LiquideError, PublicKey
from protocol._sync import compare
from protocol.checkpoint import SignedCheckpoint, SplitViewProof
from protocol.errors import CheckpointError, ProofError, ValidationError
from protocol.merkle import CompactRange, leaf_hash, verify_consistency, verify_inclusion

from .client import NodeClient, Transport
from .errors import ApiError, PeerError

if TYPE_CHECKING:
    from ._federation import Federation

__all__ = ["PeerPin", "PeerSync", "RoundReport", "run_peer_loop"]

log = logging.getLogger("liquide.node.sync")


@dataclass(frozen=True, slots=True)
class PeerPin:
    """A configured peer: its base URL, and the log origin and key it is pinned with."""

    url: str
    origin: str
    key: PublicKey

    @property
    def vkey(self) -> str:
        return self.key.to_vkey(self.origin)


@dataclass(slots=True)
class RoundReport:
    """What one round with one peer did."""

    peer: str
    appended: dict[str, int] = field(default_factory=dict)
    proofs: int = 0
    cosignatures: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.appended or self.proofs or self.cosignatures)


def _bounded_list(value: Any, key: str, limit: int, what: str) -> list[Any]:
    items = value.get(key) if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise PeerError(f"{what}: the answer has no {key!r} array")
    if len(items) > limit:
        raise PeerError(f"{what}: {len(items)} items exceed the bound of {limit}")
    return items


class PeerSync:
    """Rounds of pull replication with one peer. See the module docstring."""

    def __init__(self, fed: Federation, pin: PeerPin, transport: Transport) -> None:
        self.fed = fed
        self.pin = pin
        self.client = NodeClient(transport)
        self.feed_cursor = 0
        self.rounds = 0

    async def close(self) -> None:
        await self.client.close()

    def _problem(self, report: RoundReport, origin: str | None, kind: str, message: str) -> None:
        report.problems.append(f"{kind}: {message}")
        self.fed.peer_finding(self.pin.url, origin, kind, message)

    async def round(self) -> RoundReport:
        """Sync once with the peer; return what changed. Raises PeerError if unreachable."""
        report = RoundReport(self.pin.url)
        await self.fed.refresh_trust()
        await self._proofs(report)
        await self._logs(report)
        await self._cosignatures(report)
        self.rounds += 1
        return report

    # 1. proofs -------------------------------------------------------------------------------

    async def _proofs(self, report: RoundReport) -> None:
        data = await self.client.get_json("/v1/proofs")
        items = _bounded_list(data, "proofs", self.fed.config.max_proofs, "/v1/proofs")
        known = self.fed.known_proof_ids()
        for item in items:
            body = item.get("proof") if isinstance(item, dict) else None
            if not isinstance(body, dict) or body.get("type") != "split-view":
                continue
            try:
                proof = SplitViewProof.from_dict(body)
            except ValidationError as exc:
                self._problem(report, None, "bad_proof", f"unparsable split-view proof: {exc}")
                continue
            if proof.id in known:
                continue
            keys = self.fed.trusted_keys(proof.origin)
            if not keys:
                continue  # about a log we do not pin: nothing we can check
            try:
                proof.verify(*keys)
            except ProofError as exc:
                self._problem(report, proof.origin, "bad_proof", exc.message)
                continue
            if await self.fed.store_split_view(proof):
                report.proofs += 1

    # 2. logs ---------------------------------------------------------------------------------

    async def _logs(self, report: RoundReport) -> None:
        data = await self.client.get_json("/v1/logs")
        items = _bounded_list(data, "logs", self.fed.config.max_logs, "/v1/logs")
        own = self.fed.origin
        for item in items:
            if not isinstance(item, dict):
                raise PeerError("/v1/logs: an item is not an object")
            origin = item.get("origin")
            note = item.get("checkpoint")
            if not isinstance(origin, str) or origin == own or not isinstance(note, str):
                continue
            key = self.fed.pinned_key(origin)
            sched = self.fed.schedule(origin)
            if key is None or sched is None:
                continue
            try:
                sc = SignedCheckpoint.parse(note)
            except CheckpointError as exc:
                self._problem(report, origin, "bad_checkpoint", exc.message)
                continue
            try:
                sc.verify(origin, PublicKey.from_text(sched.key_at(sc.checkpoint.size)))
            except CheckpointError as exc:
                try:
                    added = await self._follow(origin, key, sc, report, exc.message)
                except ApiError as exc2:
                    self._problem(report, origin, "peer_refused", exc2.message)
                    continue
                if added:
                    report.appended[origin] = added
                continue
            try:
                added = await self._sync_origin(origin, key, sc, report)
            except ApiError as exc:
                self._problem(report, origin, "peer_refused", exc.message)
                continue
            if added:
                report.appended[origin] = added

    async def _sync_origin(
        self, origin: str, key: PublicKey, sc: SignedCheckpoint, report: RoundReport
    ) -> int:
        """Bring our mirror of ``origin`` up to the peer's verified checkpoint ``sc``."""
        fed = self.fed
        info = fed.reader.log(origin)
        if info is not None and info.frozen:
            return 0
        ours = 0 if info is None else info.size
        cp = sc.checkpoint
        await fed.keep_cosignatures(origin, sc)
        if info is None and cp.size == 0:
            await fed.append_mirror(origin, key, 0, [], sc)
            return 0
        if cp.size <= ours:
            mine = fed.reader.root_at(origin, cp.size)
            if compare(ours, mine, cp.size, cp.root) == "conflict":
                await self._investigate(origin, key, sc, report)
            else:
                await fed.keep_checkpoint(origin, key, sc)
            return 0
        cr = CompactRange(0) if info is None else info.compact_range()
        if ours > 0:
            proof = await self.client.consistency_proof(origin, ours, cp.size)
            try:
                verify_consistency(ours, cp.size, cr.root(), cp.root, proof)
            except ProofError:
                await self._investigate(origin, key, sc, report)
                return 0
        return await self._fetch(origin, key, sc, cr, report)

    async def _follow(
        self, origin: str, key: PublicKey, sc: SignedCheckpoint, report: RoundReport, why: str
    ) -> int:
        """A checkpoint not signed by the key in effect at its size as our replica knows it:
        refuse a retired key's, or follow a handover in the entries up to its size."""
        fed = self.fed
        cp = sc.checkpoint
        sched = fed.schedule(origin)
        assert sched is not None
        want = sched.key_at(cp.size)
        keys = [k.to_text() for k in sched.public_keys()]
        for k in sched.public_keys():
            text = k.to_text()
            if text == want:
                continue
            try:
                sc.verify(origin, k)
            except CheckpointError:
                continue
            what = (
                "that a handover retired"
                if keys.index(text) < keys.index(want)
                else "not yet in effect at that size"
            )
            self._problem(
                report,
                origin,
                "retired_key",
                f"checkpoint {cp.size} of {origin} is signed by {text}, a key {what} (the key "
                f"in effect is {want}): not kept",
            )
            return 0
        info = fed.reader.log(origin)
        if info is not None and info.frozen:
            return 0
        ours = 0 if info is None else info.size
        if cp.size <= ours:
            # Our mirror holds the leaves; the replica had not replayed them yet.
            held = await fed.query(lambda: fed.key_after(origin, ours, [], cp.size))
            if held is not None and held != want:
                try:
                    sc.verify(origin, PublicKey.from_text(held))
                except CheckpointError:
                    pass
                else:
                    await fed.refresh_origin(origin)
                    return await self._sync_origin(origin, key, sc, report)
            self._problem(
                report,
                origin,
                "bad_checkpoint",
                f"checkpoint {cp.size} of {origin} is not signed by the key in effect at that "
                f"size ({held or want}): {why}",
            )
            return 0
        if cp.size - ours > fed.config.max_investigate:
            self._problem(
                report,
                origin,
                "bad_checkpoint",
                f"checkpoint {cp.size} is not signed by the key in effect at our replica ({why}); "
                f"following a handover would need {cp.size - ours} entries, beyond "
                f"max_investigate ({fed.config.max_investigate})",
            )
            return 0
        leaves: list[bytes] = []
        page = fed.config.page_size
        while ours + len(leaves) < cp.size:
            pos = ours + len(leaves)
            got = await self.client.entries(origin, pos, min(cp.size, pos + page))
            if not got:
                break
            leaves.extend(got[: cp.size - pos])
        cr = CompactRange(0) if info is None else info.compact_range()
        for leaf in leaves:
            cr.append(leaf_hash(leaf))
        if cr.size != cp.size or cr.root() != cp.root:
            self._problem(
                report,
                origin,
                "bad_checkpoint",
                f"checkpoint {cp.size} is not signed by the key in effect at our replica "
                f"({why}), and the entries [{ours}, {cp.size}) served with it do not lead to "
                "its root: no handover can be followed",
            )
            return 0
        found = await fed.query(lambda: fed.key_after(origin, ours, leaves, cp.size))
        if found is not None and found != want:
            try:
                sc.verify(origin, PublicKey.from_text(found))
            except CheckpointError:
                pass
            else:
                await fed.keep_cosignatures(origin, sc, keys=[PublicKey.from_text(found)])
                if leaves and not await fed.append_mirror(origin, key, ours, leaves, sc):
                    return 0
                await fed.refresh_origin(origin)
                return len(leaves)
        self._problem(
            report,
            origin,
            "bad_checkpoint",
            f"checkpoint {cp.size} of {origin} is not signed by the key in effect at that size "
            f"({found or want}), after replaying the entries up to it: {why}",
        )
        return 0

    async def _fetch(
        self,
        origin: str,
        key: PublicKey,
        sc: SignedCheckpoint,
        cr: CompactRange,
        report: RoundReport,
    ) -> int:
        """Fetch entries ``[cr.size, cp.size)`` in pages, appending verified chunks."""
        fed = self.fed
        cp = sc.checkpoint
        start = cr.size
        page = fed.config.page_size
        chunk_max = fed.config.chunk_leaves
        while cr.size < cp.size:
            chunk: list[bytes] = []
            work = cr.copy()
            while cr.size + len(chunk) < cp.size and len(chunk) < chunk_max:
                pos = cr.size + len(chunk)
                end = min(cp.size, pos + page)
                leaves = await self.client.entries(origin, pos, end)
                if not leaves:
                    self._problem(
                        report, origin, "truncated", f"no entries from {pos} below size {cp.size}"
                    )
                    break
                for leaf in leaves:
                    work.append(leaf_hash(leaf))
                chunk.extend(leaves)
            if not chunk:
                break
            size = cr.size + len(chunk)
            problem = None
            if size < cp.size:
                proof = await self.client.consistency_proof(origin, size, cp.size)
                try:
                    verify_consistency(size, cp.size, work.root(), cp.root, proof)
                except ProofError as exc:
                    problem = exc.message
            elif work.root() != cp.root:
                problem = "the entries do not hash to the checkpoint's root"
            if problem is not None:
                self._problem(
                    report,
                    origin,
                    "bad_entries",
                    f"entries [{cr.size}, {size}) do not verify against checkpoint "
                    f"{cp.size}: {problem}",
                )
                break
            ok = await fed.append_mirror(
                origin, key, cr.size, chunk, sc if size == cp.size else None
            )
            if not ok:
                break
            cr = work
        return cr.size - start

    async def _investigate(
        self, origin: str, key: PublicKey, theirs: SignedCheckpoint, report: RoundReport
    ) -> None:
        """A verified checkpoint disagrees with our mirror: find a proof, or blame the peer."""
        fed = self.fed
        cp = theirs.checkpoint
        stored = fed.reader.checkpoint(origin, cp.size)
        if stored is not None and stored.root != cp.root:
            proof = SplitViewProof.of_roots(SignedCheckpoint.parse(stored.note), theirs)
            proof.verify(key, *fed.trusted_keys(origin))
            if await fed.store_split_view(proof):
                report.proofs += 1
            return
        latest = fed.reader.latest_checkpoint(origin)
        info = fed.reader.log(origin)
        if latest is None or info is None:
            return
        limit = min(latest.size, cp.size, fed.config.max_investigate)
        pos = 0
        page = fed.config.page_size
        while pos < limit:
            theirs_page = await self.client.entries(origin, pos, min(limit, pos + page))
            if not theirs_page:
                break
            mine = fed.reader.leaves(origin, pos, pos + len(theirs_page))
            for i, (a, b) in enumerate(zip(mine, theirs_page, strict=False)):
                if a != b:
                    await self._split_at(
                        origin, key, pos + i, (a, b), (latest.note, theirs), report
                    )
                    return
            pos += len(theirs_page)
        self._problem(
            report,
            origin,
            "bad_consistency_proof",
            f"checkpoint {cp.size} came with a consistency proof that fails, but the entries "
            f"agree with ours up to {pos}: nothing is proven against {origin}",
        )

    async def _split_at(  # noqa: PLR0917 (the two views of one leaf)
        self,
        origin: str,
        key: PublicKey,
        index: int,
        leaves: tuple[bytes, bytes],
        views: tuple[str, SignedCheckpoint],
        report: RoundReport,
    ) -> None:
        """Leaf ``index`` differs: ours (under our checkpoint) against theirs (under theirs)."""
        fed = self.fed
        our_leaf, their_leaf = leaves
        our_note, theirs = views
        ours = SignedCheckpoint.parse(our_note)
        their_hash = leaf_hash(their_leaf)
        their_proof = await self.client.inclusion_proof(origin, index, theirs.checkpoint.size)
        try:
            verify_inclusion(
                their_hash, index, theirs.checkpoint.size, their_proof, theirs.checkpoint.root
            )
        except ProofError as exc:
            self._problem(report, origin, "bad_inclusion_proof", f"leaf {index}: {exc.message}")
            return
        our_proof = fed.reader.inclusion_proof(origin, index, ours.checkpoint.size)
        proof = SplitViewProof.of_inclusions(
            index,
            (ours, leaf_hash(our_leaf), our_proof),
            (theirs, their_hash, their_proof),
        )
        proof.verify(key, *fed.trusted_keys(origin))
        if await fed.store_split_view(proof):
            report.proofs += 1

    # 3. cosignatures ---------------------------------------------------------------------------

    async def _cosignatures(self, report: RoundReport) -> None:
        limit = self.fed.config.max_feed
        data = await self.client.get_json(
            "/v1/cosignatures", {"after": str(self.feed_cursor), "limit": str(limit)}
        )
        items = _bounded_list(data, "cosignatures", limit, "/v1/cosignatures")
        best = self.feed_cursor
        for item in items:
            seq = item.get("seq") if isinstance(item, dict) else None
            note = item.get("note") if isinstance(item, dict) else None
            witness = item.get("witness") if isinstance(item, dict) else None
            if type(seq) is not int or not isinstance(note, str) or not isinstance(witness, str):
                raise PeerError("/v1/cosignatures: an item lacks seq, witness or note")
            best = max(best, seq)
            try:
                sc = SignedCheckpoint.parse(note)
            except CheckpointError:
                continue
            if await self.fed.keep_cosignatures(sc.checkpoint.origin, sc, only=witness):
                report.cosignatures += 1
        self.feed_cursor = best


def _jitter(delay: float, rng: random.Random) -> float:
    return delay * (0.5 + rng.random())


async def run_peer_loop(
    sync: PeerSync,
    interval: float,
    backoff_max: float,
    *,
    on_round: Callable[[RoundReport], None] | None = None,
    rng: random.Random | None = None,
) -> None:
    """Sync with one peer forever: every ``interval`` (jittered), backing off on failure."""
    rng = rng or random.Random()
    failures = 0
    while True:
        try:
            report = await sync.round()
        except (LiquideError, ValueError, json.JSONDecodeError) as exc:
            failures += 1
            message = getattr(exc, "message", str(exc))
            sync.fed.peer_failed(sync.pin.url, message)
            delay = min(backoff_max, interval * 2**failures)
            log.info("sync with %s failed (%s); retrying in ~%.1fs", sync.pin.url, message, delay)
            await asyncio.sleep(_jitter(delay, rng))
            continue
        failures = 0
        sync.fed.peer_ok(sync.pin.url)
        if on_round is not None:
            on_round(report)
        await asyncio.sleep(_jitter(interval, rng))
