"""The single-writer append pipeline of the city's own log.

Every write to the own log goes through here, in one thread, one group at a time:

1. **Prepare** each submission: decode the canonical bytes (``Event.decode``) and verify the
   signature (in bulk, on a process pool, for large batches), or build and sign a city-authored
   event (admin commands, seals) with the next ``seq`` of the city's chain.
2. **Decide**: a repeated event gets its original receipt (idempotent); otherwise ingest policy
   (the author is this city or a citizen it enrolled; the claimed time is within the clock-skew
   bound; a ballot is inside its voting window) and the protocol's checks (the author's chain,
   then :meth:`protocol.state.State.check`) must pass. A refusal raises a
   :class:`~node.errors.RejectedError` or a protocol error, and nothing is stored.
3. **Append** everything accepted in the group in *one* transaction: leaves, Merkle nodes and
   peaks, chain heads and governance indexes. ``synchronous=FULL`` makes it durable at commit.
4. **Receipts** are signed only after the commit returned, so a receipt never promises an entry
   that a crash could lose. A receipt is a deterministic signature over stored facts, so a
   repeated event gets byte-identical receipts without storing them. A batch (``events:batch``)
   gets one signature over the Merkle root of its new leaves instead (docs/PROTOCOL.md §6.4.1),
   stored in its own transaction before any of its receipts is handed out; each event's receipt
   is that statement and its path.

:class:`Writer` is the synchronous core (used directly by offline admin commands);
:class:`Ingest` runs it on a dedicated thread with group commit for the HTTP server: while one
group commits, the next one gathers, so many concurrent clients share each fsync.

Checkpoints are signed by :meth:`Writer.sign_checkpoint` only over committed entries, and only
after checking (with a consistency proof from the stored tree) that they extend the last signed
checkpoint; at start :meth:`Writer.open` recomputes the tree from the leaf bytes and refuses to
run if it disagrees with any checkpoint signed before.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import nacl.bindings
import nacl.exceptions

from crypto import LiquideError, SecretKey
from protocol.chain import check_next
from protocol.checkpoint import BATCH_RECEIPT_CONTEXT, BatchReceipt
from protocol.encoding import encode
from protocol.errors import ChainError, ProofError
from protocol.events import CITIZEN_TYPES, Event
from protocol.merkle import verify_consistency
from protocol.state import State

from . import _compat
from .config import NodeConfig
from .errors import (
    ClockSkewError,
    IntegrityError,
    OutsideWindowError,
    SeqUsedError,
    StoreError,
    UnavailableError,
    UnknownAuthorError,
)
from .store import BatchRow, CheckpointRow, LeafRow, Store

__all__ = [
    "Accepted",
    "AppendHook",
    "Ingest",
    "Submission",
    "VerifyPool",
    "Writer",
]

log = logging.getLogger("liquide.node.ingest")
T = TypeVar("T")

AppendHook = Callable[[Store, Sequence[tuple[int, Event]]], None]
"""Called inside the append transaction with ``(index, event)`` of every accepted event."""

_SNAPSHOT_EVERY = 50_000


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event in the own log: its id, leaf index, the signed receipt, and whether it was new."""

    event_id: str
    index: int
    receipt: dict[str, Any]
    new: bool = True
    time: int = 0
    """When the node appended the event (the time its receipt carries)."""


@dataclass(slots=True)
class Submission:
    """One thing to append: client bytes, a decoded event, or a city event to build."""

    leaf: bytes | None = None
    event: Event | None = None
    verified: bool = False
    own: tuple[str, dict[str, Any]] | None = None
    error: LiquideError | None = None
    verdict: tuple[concurrent.futures.Future[list[bool]], int] | None = None
    """The signature check running on the pool: (future of a chunk's verdicts, offset)."""


# Signature verification on a process pool ---------------------------------------------------


def check_signed(keys: Sequence[bytes], signed: Sequence[bytes]) -> list[int]:
    """Verify each ``signed[i]`` (signature ‖ domain message) under the raw key ``keys[i]``;
    return the positions that fail. The inner loop of every verify pool: libsodium directly,
    on two lists of bytes (which pickle in C at little more than a copy)."""
    open_ = nacl.bindings.crypto_sign_open
    bad: list[int] = []
    for i, (k, m) in enumerate(zip(keys, signed, strict=True)):
        try:
            open_(m, k)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            bad.append(i)
    return bad


_PAIR_MIN: Final = 8
"""Decoded submissions from which a group's signatures are checked on two threads at once."""
_PAIR: Final = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="liquide-verify")
"""The helper thread of :func:`_verify_on_two_threads` (started on first use)."""


def _verify_on_two_threads(subs: Sequence[Submission]) -> None:
    """Mark the decoded ``subs`` whose signatures verify, half of them checked on a helper
    thread while this one checks the other half.

    libsodium runs without the GIL, so the two halves take both cores without a process pool's
    round trip: a group of single POSTs is verified in half the time while the event loop waits
    for it. A failure is left unmarked, for :meth:`Writer._prepare` to check again and report.
    """
    keys = [cast("Event", s.event).author_raw for s in subs]
    signed = [cast("Event", s.event).signed_message() for s in subs]
    half = len(subs) // 2
    other = _PAIR.submit(check_signed, keys[half:], signed[half:])
    bad = set(check_signed(keys[:half], signed[:half]))
    bad.update(half + i for i in other.result())
    for i, sub in enumerate(subs):
        if i not in bad:
            sub.verified = True


def _verify_chunk(keys: list[bytes], signed: list[bytes]) -> list[bool]:
    """Worker: True for each signed message that verifies under its key."""
    out = [True] * len(keys)
    for i in check_signed(keys, signed):
        out[i] = False
    return out


def _sign_chunk(seed: bytes, context: str, messages: list[bytes]) -> list[bytes]:
    """Worker: sign ``messages`` under the Liquide ``context`` with the key of ``seed``."""
    sk = SecretKey(seed)
    return [sk.sign(context, m) for m in messages]


def _watch_parent(pid: int, interval: float = 1.0) -> None:
    """Worker initializer: exit when the node process ``pid`` is gone.

    Pool workers hold both ends of their own queues, so a node killed with SIGKILL never sends
    them the sentinel and they would wait forever (keeping the forkserver alive too). A daemon
    thread checks that the node still exists and ends the worker when it does not.
    """

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # pragma: no cover - a pid reused by another user's process
                os._exit(0)

    threading.Thread(target=watch, name="liquide-parent-watch", daemon=True).start()


class VerifyPool:
    """A lazily started process pool that verifies signatures (and signs receipts) on every core.

    Work is cut into chunks submitted at once, so that the writer thread can go on deciding the
    first chunk's events while the workers verify the next ones.
    """

    def __init__(self, workers: int, chunk: int = 256) -> None:
        self.workers = workers
        self.chunk = chunk
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=ctx, initializer=_watch_parent, initargs=(os.getpid(),)
            )
        return self._pool

    def warm(self) -> None:
        """Start the workers now (they import the verifier), so the first batch does not wait."""
        pool = self._executor()
        for f in [pool.submit(_verify_chunk, [], []) for _ in range(self.workers)]:
            f.result()

    def _step(self, n: int) -> int:
        return max(self.chunk, n // (self.workers * 4) + 1)

    def submit_verify(self, events: Sequence[Event]) -> concurrent.futures.Future[list[bool]]:
        """Start verifying ``events`` on a worker; the future gives one verdict per event.

        Only the signed bytes travel (no pickled objects) and only a boolean comes back.
        """
        keys = [e.author_raw for e in events]
        signed = [e.signed_message() for e in events]
        return self._executor().submit(_verify_chunk, keys, signed)

    def verify(self, events: Sequence[Event]) -> list[bool]:
        """Return, for each event, whether its signature verifies (order kept)."""
        step = self._step(len(events))
        futures = [self.submit_verify(events[i : i + step]) for i in range(0, len(events), step)]
        out: list[bool] = []
        for f in futures:
            out.extend(f.result())
        return out

    def sign(self, key: SecretKey, context: str, messages: Sequence[bytes]) -> list[bytes]:
        """Sign ``messages`` with ``key`` on the workers (order kept)."""
        pool = self._executor()
        step = self._step(len(messages))
        futures = [
            pool.submit(_sign_chunk, key.seed, context, list(messages[i : i + step]))
            for i in range(0, len(messages), step)
        ]
        out: list[bytes] = []
        for f in futures:
            out.extend(f.result())
        return out

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# The synchronous core -----------------------------------------------------------------------


class Writer:
    """The only writer of the own log: decides, appends, indexes, signs. Not thread-safe.

    It keeps the log's replay :class:`protocol.state.State` in memory (chain heads, enrolments,
    issues and seals come from there), advanced as events are accepted, and reloaded from the
    database if a transaction ever fails.
    """

    def __init__(
        self,
        store: Store,
        key: SecretKey,
        config: NodeConfig,
        clock: Callable[[], float],
        *,
        pool: VerifyPool | None = None,
        keys: Sequence[SecretKey] = (),
    ) -> None:
        if not store.writer:
            raise StoreError("the writer needs the writer store")
        self.store = store
        # ``key`` is the key the log was created with; ``keys`` its successors (handovers): the
        # writer signs with the one in effect in its log (:meth:`_use_key_in_effect`).
        self.anchor = key.public_key.to_text()
        self.keyring = {k.public_key.to_text(): k for k in (key, *keys)}
        self.key = key
        self.config = config
        self.clock = clock
        self.pool = pool
        self.origin = config.origin
        self.city = key.public_key.to_text()
        self.receipts = _compat.ReceiptSigner(key, self.origin)
        self.hooks: list[AppendHook] = []
        #: Called on the writer thread with the events of each committed append, in order: a
        #: reader of the own log (the federation's replay) takes them instead of decoding the
        #: stored leaves again.
        self.committed: list[Callable[[Sequence[tuple[int, Event]]], None]] = []
        self._since_snapshot = 0
        self._seal_failed: set[str] = set()
        self.open()

    # Initialisation and loading ---------------------------------------------------------------

    @staticmethod
    def initialise(store: Store, origin: str, key: SecretKey, now: int = 0) -> None:
        """Record the own origin and key in a new store and sign the empty checkpoint."""
        vkey = key.public_key.to_vkey(origin)
        with store.atomic():
            existing = store.get_meta("origin")
            if existing is not None and existing != origin:
                raise StoreError(f"{store.path} already holds the log of {existing}")
            store.set_meta("origin", origin)
            store.set_meta("key", key.public_key.to_text())
            info = store.ensure_log(origin, own=True, vkey=vkey)
            if store.latest_checkpoint(origin) is None:
                note = _compat.sign_checkpoint(key, origin, 0, info.root())
                store.add_checkpoint(origin, 0, info.root(), note, now)

    def open(self) -> None:
        """Check the stored log against its signed checkpoints and load the replay state.

        Raises :class:`IntegrityError` if the leaves do not recompute to the stored tree or do
        not extend every checkpoint signed before: the node then refuses to sign anything.
        """
        store = self.store
        own = store.own_origin()
        if own != self.origin:
            raise StoreError(f"the data directory holds the log of {own}, not {self.origin}")
        if store.get_meta("key") != self.anchor:
            raise IntegrityError("node.key is not the key this log was created with")
        info = store.verify_log(self.origin)
        self.size = info.size
        self.state = _compat.load_state(store, self.origin, self.anchor)
        if self.state.size != self.size:
            raise IntegrityError(
                f"replay reached {self.state.size} leaves, the log has {self.size}"
            )
        self._use_key_in_effect()

    def _use_key_in_effect(self) -> None:
        """Sign with the city key in effect in the own log (it changes at a handover)."""
        text = self.state.city_key
        key = self.keyring.get(text)
        if key is None:
            raise IntegrityError(f"the own log's key in effect {text} is in no key file here")
        self.key, self.city = key, text
        self.receipts = _compat.ReceiptSigner(key, self.origin)

    def reload(self) -> None:
        """Forget the in-memory state and load it again from the database (after a failure)."""
        self.open()

    # Deciding ---------------------------------------------------------------------------------

    def process(
        self, subs: Sequence[Submission], *, defer_receipts: bool = False, batch: bool = False
    ) -> list[Accepted | LiquideError]:
        """Decide and append ``subs`` in one transaction; return one outcome per submission.

        A refused submission's outcome is its error; nothing of it is stored. Raises
        :class:`StoreError` if the transaction itself fails (then nothing of the group is
        stored and the state is reloaded). With ``defer_receipts`` the new events' receipts are
        left empty for :meth:`sign_receipts` to fill (after the commit, off the writer thread).
        With ``batch`` the new events get receipts of the batch form (docs/PROTOCOL.md §6.4.1):
        one signature over the Merkle root of the group's new leaves, stored once the leaves
        are durable, and each event's path to that root.
        """
        now = int(self.clock())
        self.prepare(subs)
        results: list[Accepted | LiquideError | int | None] = [None] * len(subs)
        accepted: list[tuple[int, Event]] = []
        in_group: dict[str, int] = {}
        trees: dict[int, _BatchTree] = {}
        base = self.size
        for pos, sub in enumerate(subs):
            try:
                ev = self._prepare(sub, now)
                if ev.id in in_group:
                    results[pos] = in_group[ev.id]
                    continue
                try:
                    self._decide(ev, now)
                except LiquideError:
                    # An event already in the log always fails the checks (its seq is used):
                    # a repeat is answered with its receipt, not refused. Looked up only here,
                    # off the hot path.
                    found = self.store.locate(self.origin, ev.id)
                    if found is None:
                        raise
                    index, time = found
                    receipt = self.receipt_at(self.store, ev.id, index, time, trees)
                    results[pos] = Accepted(ev.id, index, receipt, new=False, time=time)
                    continue
            except LiquideError as exc:
                results[pos] = exc
                continue
            index = base + len(accepted)
            for f in self.state.apply_event(index, ev, verified=True):
                log.error("accepted leaf %d has a replay finding: %s", index, f.message)
            if ev.type == "handover":
                self._use_key_in_effect()
            in_group[ev.id] = index
            results[pos] = index
            accepted.append((index, ev))
        batched = self._commit(accepted, now, batch=batch) if accepted else None
        out: list[Accepted | LiquideError] = []
        seen: set[int] = set()
        for r in results:
            if isinstance(r, int):
                ev = accepted[r - base][1]
                receipt = {} if batched is None else batched[r - base]
                out.append(Accepted(ev.id, r, receipt, r not in seen, now))
                seen.add(r)
            else:
                assert r is not None
                out.append(r)
        return out if defer_receipts else self.sign_receipts(out)

    def _batch_row(self, first: int, hashes: list[bytes], now: int) -> tuple[_BatchTree, BatchRow]:
        """The tree and signed batch statement of the group's new leaves ``first…``."""
        tree = _BatchTree(hashes)
        unsigned = BatchReceipt.unsigned(self.origin, first, len(hashes), tree.root, now)
        sig = self.key.sign(BATCH_RECEIPT_CONTEXT, encode(unsigned))
        return tree, BatchRow(self.origin, first, len(hashes), tree.root, now, sig)

    def receipt_at(
        self,
        store: Store,
        event_id: str,
        index: int,
        time: int,
        trees: dict[int, _BatchTree] | None = None,
    ) -> dict[str, Any]:
        """The receipt of the event at ``index`` of the own log, as first issued: the batch form
        if a stored batch receipt covers ``index``, else the single form (signed again: Ed25519
        is deterministic). Reads ``store`` (the writer's or a reader); ``trees`` caches batch
        trees across calls."""
        row = store.batch_at(self.origin, index)
        if row is None:
            return self.receipts.sign(event_id, index, time)
        tree = None if trees is None else trees.get(row.first)
        if tree is None:
            hashes = store.leaf_hashes(self.origin, row.first, row.first + row.count)
            if len(hashes) != row.count:
                raise IntegrityError(
                    f"the batch receipt of leaves {row.first}.. covers {row.count} leaves, "
                    f"{len(hashes)} are stored"
                )
            tree = _BatchTree(hashes)
            if trees is not None:
                trees[row.first] = tree
        return tree.receipt(row, event_id, index - row.first)

    def sign_receipts(
        self, outcomes: list[Accepted | LiquideError]
    ) -> list[Accepted | LiquideError]:
        """Fill the receipts that :meth:`process` deferred (on the pool for many of them).

        Thread-safe: it reads nothing but the outcomes and the key.
        """
        todo = [i for i, o in enumerate(outcomes) if isinstance(o, Accepted) and not o.receipt]
        if not todo:
            return outcomes
        items = []
        for i in todo:
            o = outcomes[i]
            assert isinstance(o, Accepted)
            items.append((o.event_id, o.index, o.time))
        if self.pool is not None and len(items) >= self.config.pool_threshold:
            receipts = self.receipts.sign_many(items, self.pool.sign)
        else:
            receipts = [self.receipts.sign(e, i, t) for e, i, t in items]
        out = list(outcomes)
        for i, receipt in zip(todo, receipts, strict=True):
            o = out[i]
            assert isinstance(o, Accepted)
            out[i] = Accepted(o.event_id, o.index, receipt, o.new, o.time)
        return out

    def prepare(self, subs: Sequence[Submission]) -> None:
        """Decode client bytes here; for a large batch also start verifying their signatures
        on the pool, chunk by chunk, as soon as each chunk is decoded.

        Decoding stays in this process, whose key caches are warm (a worker would decode each
        author's key text again), and costs less than unpickling decoded events; the workers
        only verify: the signed bytes go out, one boolean per event comes back. Thread-safe (it
        touches neither the store nor the state), so the server runs it before handing a batch
        to the writer: the pool then works on one batch while the writer commits the previous
        one.
        """
        pending = [s for s in subs if s.leaf is not None and s.event is None and s.error is None]
        pool = self.pool if len(pending) >= self.config.pool_threshold else None
        decode = Event.decode
        if pool is None:
            decoded: list[Submission] = []
            for sub in pending:
                try:
                    sub.event = decode(sub.leaf or b"")
                except LiquideError as exc:
                    sub.error = exc
                    continue
                decoded.append(sub)
            if len(decoded) >= _PAIR_MIN:
                _verify_on_two_threads(decoded)
            return
        step = pool.chunk
        for start in range(0, len(pending), step):
            chunk: list[Submission] = []
            events: list[Event] = []
            for sub in pending[start : start + step]:
                try:
                    ev = decode(sub.leaf or b"")
                except LiquideError as exc:
                    sub.error = exc
                    continue
                sub.event = ev
                chunk.append(sub)
                events.append(ev)
            if events:
                future = pool.submit_verify(events)
                for offset, sub in enumerate(chunk):
                    sub.verdict = (future, offset)

    def _prepare(self, sub: Submission, now: int) -> Event:
        if sub.error is not None:
            raise sub.error
        if sub.own is not None:
            type_, body = sub.own
            head = self.state.head(self.city)
            seq, prev = (1, None) if head is None else (head.seq + 1, head.id)
            return Event.create(self.key, type_, body, seq, prev, now)
        ev = sub.event
        if ev is None:
            ev = sub.event = Event.decode(sub.leaf or b"")
        if sub.verdict is not None:
            future, offset = sub.verdict
            sub.verdict = None
            # A refusal by the pool is checked again here, which raises the verifier's own error.
            sub.verified = future.result()[offset]
        if not sub.verified:
            ev.verify()
            sub.verified = True
        return ev

    def _decide(self, ev: Event, now: int) -> None:
        """Ingest policy, then the protocol's checks; raise the first refusal."""
        author = ev.author
        state = self.state
        if ev.type in CITIZEN_TYPES:
            if author not in state.enrolled:
                raise UnknownAuthorError(
                    f"{author} is not enrolled at {self.origin}: a citizen's events go to the "
                    "node of the city that enrolled them"
                )
            skew = self.config.clock_skew_s
            if abs(ev.ts - now) > skew:
                raise ClockSkewError(
                    f"the event claims time {ev.ts}, but the node's clock says {now} "
                    f"(allowed skew: {skew} s)"
                )
            if ev.type in ("ballot", "withdraw"):
                self._check_window(getattr(ev.body, "issue", ""), now)
        elif author != self.city:
            raise UnknownAuthorError(
                f"a {ev.type} event must be signed by this city's key ({self.city}), "
                f"not by {author}"
            )
        elif ev.type == "handover" and getattr(ev.body, "key", "") not in self.keyring:
            raise UnknownAuthorError(
                "a handover must name a key whose secret key this node holds "
                "(use: liquide admin handover)"
            )
        head = state.head(author)
        try:
            check_next(head, ev)
        except ChainError as exc:
            if exc.code in ("seq_reused", "duplicate_event") and head is not None:
                raise SeqUsedError(
                    f"seq {ev.seq} of {author} is already used; the chain head is seq "
                    f"{head.seq}, event {head.id}",
                    head_seq=head.seq,
                    head_id=head.id,
                ) from None
            raise
        state.check(ev, verified=True)

    def _check_window(self, issue_id: str, now: int) -> None:
        issue = self.state.issue(issue_id)
        if issue is None:
            return  # the protocol's check names the unknown issue
        if issue_id in self.state.seals:
            raise OutsideWindowError(f"issue {issue_id} is sealed at {self.origin}")
        if now < issue.opens:
            raise OutsideWindowError(
                f"issue {issue_id} opens for voting at {issue.opens}; the node's clock says {now}"
            )
        if now >= issue.closes:
            raise OutsideWindowError(
                f"issue {issue_id} closed for voting at {issue.closes}; the node's clock says {now}"
            )

    # Appending ----------------------------------------------------------------------------------

    def _commit(
        self, accepted: list[tuple[int, Event]], now: int, *, batch: bool = False
    ) -> list[dict[str, Any]] | None:
        """Append ``accepted`` in one durable transaction; with ``batch``, return each event's
        receipt of the batch form (docs/PROTOCOL.md §6.4.1), else None.

        The batch statement is signed inside the transaction and stored with the leaves it
        covers, so the two are durable together; the receipts leave this method (and reach
        anyone) only once the commit has returned. A signature lost with an unfinished
        transaction was never shown to anyone and promises nothing.
        """
        rows = [LeafRow(ev.id, ev.leaf, ev.author, ev.seq, ev.type, now) for _, ev in accepted]
        heads = {ev.author: (ev.seq, ev.id) for _, ev in accepted}
        hashes: list[bytes] = []
        signed: tuple[_BatchTree, BatchRow] | None = None
        try:
            with self.store.atomic():
                self.store.append_leaves(self.origin, rows, hashes=hashes)
                self.store.set_heads(self.origin, [(a, s, i) for a, (s, i) in heads.items()])
                _index(self.store, self.state, accepted)
                for hook in self.hooks:
                    hook(self.store, accepted)
                if batch:
                    signed = self._batch_row(accepted[0][0], hashes, now)
                    self.store.add_batch(signed[1])
        except BaseException as exc:
            log.exception("append of %d events failed; reloading the state", len(accepted))
            self.reload()
            if isinstance(exc, LiquideError):
                raise
            raise StoreError(f"the append failed: {exc}") from exc
        self.size += len(accepted)
        for listener in self.committed:
            listener(accepted)
        self._since_snapshot += len(accepted)
        if self._since_snapshot >= _SNAPSHOT_EVERY:
            self.save_snapshot()
        if signed is None:
            return None
        tree, row = signed
        return tree.receipts(row, [ev.id for _, ev in accepted])

    def append_own(self, type_: str, body: dict[str, Any]) -> Accepted:
        """Build, sign and append one city event; return it accepted or raise its refusal."""
        out = self.process([Submission(own=(type_, body))])[0]
        if isinstance(out, LiquideError):
            raise out
        return out

    def handover(self, new: SecretKey) -> Accepted:
        """Append a handover to ``new`` (its secret key already stored durably); from the next
        leaf on, the writer signs with it. Raises the refusal if replay would refuse it."""
        text = new.public_key.to_text()
        self.keyring[text] = new
        return self.append_own("handover", {"key": text})

    def receipt(self, event_id: str) -> Accepted | None:
        """The receipt of an event of the own log, or None."""
        found = self.store.locate(self.origin, event_id)
        if found is None:
            return None
        index, time = found
        receipt = self.receipt_at(self.store, event_id, index, time)
        return Accepted(event_id, index, receipt, new=False, time=time)

    # Checkpoints, seals, snapshots --------------------------------------------------------------

    def sign_checkpoint(self) -> CheckpointRow | None:
        """Sign and store a checkpoint of the committed log if it grew; return it (or None).

        Raises :class:`IntegrityError` (and signs nothing) if the stored tree does not extend
        the last signed checkpoint.
        """
        info = self.store.log(self.origin)
        assert info is not None
        last = self.store.latest_checkpoint(self.origin)
        if last is not None and last.size >= info.size:
            if last.size > info.size:
                raise IntegrityError(
                    f"a checkpoint of size {last.size} was signed but the log has {info.size}"
                )
            return None
        root = info.root()
        if last is not None:
            try:
                proof = self.store.consistency_proof(self.origin, last.size, info.size)
                verify_consistency(last.size, info.size, last.root, root, proof)
            except ProofError as exc:
                raise IntegrityError(
                    f"refusing to sign: the log does not extend checkpoint {last.size}: {exc}"
                ) from None
        note = _compat.sign_checkpoint(self.key, self.origin, info.size, root)
        now = int(self.clock())
        with self.store.atomic():
            self.store.add_checkpoint(self.origin, info.size, root, note, now)
        return self.store.checkpoint(self.origin, info.size)

    def due_seals(self) -> list[str]:
        """Issues of the own log whose voting window has closed and that are not sealed yet."""
        now = int(self.clock())
        out = []
        for issue_id in self.state.issues:
            if issue_id in self.state.seals or issue_id in self._seal_failed:
                continue
            issue = self.state.issue(issue_id)
            if issue is not None and issue.closes <= now:
                out.append(issue_id)
        return sorted(out)

    def seal_due(self) -> list[Accepted]:
        """Append a seal for every issue whose window closed; return the accepted seals."""
        out = []
        for issue_id in self.due_seals():
            try:
                out.append(self.append_own("seal", {"issue": issue_id}))
            except LiquideError as exc:
                log.warning("cannot seal issue %s: %s", issue_id, exc.message)
                self._seal_failed.add(issue_id)  # do not retry forever
        return out

    def save_snapshot(self) -> None:
        """Persist the replay state at the current size, so that a restart replays less."""
        with self.store.atomic():
            _compat.save_state(self.store, self.origin, self.state)
        self._since_snapshot = 0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _BatchTree:
    """The RFC 9162 tree of a batch's leaf hashes: its root and every leaf's inclusion path.

    The tree is hashed level by level: pairing neighbours and carrying a level's odd last node
    up unchanged builds exactly RFC 9162's tree (whose left subtree is always the largest
    perfect one), and a leaf's path is then its neighbour at each level where it has one. Each
    node is hashed and base64-encoded once, shared by the paths that need it.
    """

    __slots__ = ("leaves", "levels", "root")

    def __init__(self, hashes: Sequence[bytes]) -> None:
        if not hashes:
            raise ValueError("a batch has at least one leaf")
        sha = hashlib.sha256
        level = list(hashes)
        self.leaves = [_b64(h) for h in level]
        #: The base64 text of every node, level by level from the leaves up (the root's level
        #: excluded: it is no one's sibling).
        self.levels: list[list[str]] = []
        texts = self.leaves
        while len(level) > 1:
            self.levels.append(texts)
            pairs = len(level) // 2 * 2
            up = [
                sha(b"\x01" + a + b).digest()
                for a, b in zip(level[:pairs:2], level[1:pairs:2], strict=True)
            ]
            if pairs < len(level):
                up.append(level[-1])
            level = up
            texts = [_b64(h) for h in level]
        self.root = level[0]

    def path(self, k: int) -> list[str]:
        """Leaf ``k``'s inclusion path, bottom-up (RFC 9162 §2.1.3)."""
        out = []
        for texts in self.levels:
            j = k ^ 1
            if j < len(texts):
                out.append(texts[j])
            k >>= 1
        return out

    def receipt(
        self, row: BatchRow, event_id: str, k: int, batch: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The receipt (:meth:`protocol.checkpoint.BatchedReceipt.to_dict`) of leaf ``k``."""
        if batch is None:
            batch = _batch_dict(row)
        return {
            "v": 1,
            "origin": row.origin,
            "event_id": event_id,
            "index": row.first + k,
            "time": row.time,
            "leaf_hash": self.leaves[k],
            "batch": batch,
            "path": self.path(k),
        }

    def receipts(self, row: BatchRow, event_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The receipts of every leaf, in order (they share the batch part)."""
        batch = _batch_dict(row)
        return [self.receipt(row, e, k, batch) for k, e in enumerate(event_ids)]


def _batch_dict(row: BatchRow) -> dict[str, Any]:
    return {"first": row.first, "count": row.count, "root": _b64(row.root), "sig": _b64(row.sig)}


def _index(store: Store, state: State, accepted: Sequence[tuple[int, Event]]) -> None:
    """Update the governance indexes for the accepted events (inside the transaction).

    Delegations and ballots are written from the replay state *after* the group, one row per
    touched (author, target), so a group needs one ``executemany`` per table whatever the order
    of its events.
    """
    conn = store.conn
    delegations: dict[tuple[str, str], int] = {}
    ballots: dict[tuple[str, str], int] = {}
    for idx, ev in accepted:
        t = ev.type
        body: Any = ev.body
        if t in ("delegate", "revoke"):
            delegations[(ev.author, body.target)] = idx
        elif t in ("ballot", "withdraw"):
            ballots[(ev.author, body.issue)] = idx
        elif t == "enrol":
            conn.execute(
                "INSERT OR REPLACE INTO enrolments (key, ref, active, idx) VALUES (?, ?, 1, ?)",
                (body.key, body.ref, idx),
            )
        elif t == "unenrol":
            conn.execute("UPDATE enrolments SET active = 0, idx = ? WHERE key = ?", (idx, body.key))
        elif t == "assembly":
            conn.execute(
                "INSERT OR IGNORE INTO assemblies (id, idx, body) VALUES (?, ?, ?)",
                (ev.id, idx, json.dumps(body.to_dict(), sort_keys=True)),
            )
        elif t == "assembly.join":
            a = body.assembly
            conn.execute(
                "INSERT OR IGNORE INTO assemblies (id, idx, body) VALUES (?, ?, ?)",
                (a.id, idx, json.dumps(a.body.to_dict(), sort_keys=True)),
            )
        elif t == "area":
            _index_area(conn, ev.id, idx, body)
        elif t == "issue":
            _index_issue(conn, ev.id, idx, body)
        elif t == "issue.adopt":
            _index_area(conn, body.area.id, idx, body.area.body, ignore=True)
            _index_issue(conn, body.issue.id, idx, body.issue.body)
        elif t == "seal":
            conn.execute(
                "UPDATE issues SET sealed_idx = ? WHERE id = ? AND sealed_idx IS NULL",
                (idx, body.issue),
            )
    if delegations:
        upserts, deletes = [], []
        for (author, target), idx in delegations.items():
            row = state.delegation(author, target)
            if row is None:
                deletes.append((author, target))
            else:
                upserts.append((author, row[0], target, json.dumps(list(row[1])), idx))
        conn.executemany("DELETE FROM delegations WHERE author = ? AND scope_id = ?", deletes)
        conn.executemany(
            "INSERT OR REPLACE INTO delegations (author, scope, scope_id, trustees, idx)"
            " VALUES (?, ?, ?, ?, ?)",
            upserts,
        )
    if ballots:
        b_upserts: list[tuple[str, str, str, int]] = []
        deletes = []
        for (author, issue), idx in ballots.items():
            grades = state.ballot(issue, author)
            if grades is None:
                deletes.append((author, issue))
            else:
                b_upserts.append((author, issue, json.dumps(dict(grades), sort_keys=True), idx))
        conn.executemany("DELETE FROM ballots WHERE author = ? AND issue = ?", deletes)
        conn.executemany(
            "INSERT OR REPLACE INTO ballots (author, issue, grades, idx) VALUES (?, ?, ?, ?)",
            b_upserts,
        )


def _index_area(conn: Any, area_id: str, idx: int, body: Any, *, ignore: bool = False) -> None:
    verb = "INSERT OR IGNORE" if ignore else "INSERT OR REPLACE"
    conn.execute(
        f"{verb} INTO areas (id, assembly, idx, body) VALUES (?, ?, ?, ?)",
        (area_id, body.assembly, idx, json.dumps(body.to_dict(), sort_keys=True)),
    )


def _index_issue(conn: Any, issue_id: str, idx: int, body: Any) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO issues (id, area, assembly, idx, opens, closes, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            issue_id,
            body.area,
            body.assembly,
            idx,
            body.opens,
            body.closes,
            json.dumps(body.to_dict(), sort_keys=True),
        ),
    )


# The asynchronous single writer ---------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    subs: list[Submission] | None
    call: Callable[[], Any] | None
    future: asyncio.Future[Any]
    batch: bool = False
    """From ``events:batch``: receipts of the batch form; grouped only with other batches."""


class Ingest:
    """Runs a :class:`Writer` on its own thread; groups concurrent submissions per commit.

    The writer thread takes its work straight from a thread-safe queue: once a group is
    committed, the next one (everything queued meanwhile) starts at once, without waiting for
    the event loop, which is busy answering the previous group's clients. Outcomes go back to
    the loop in one callback per group.
    """

    def __init__(self, writer: Writer, *, max_group: int = 4096) -> None:
        self.writer = writer
        self.max_group = max_group
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Decoding, pool dispatch and receipt signing of large batches happen here, off the
        # writer thread, so that they overlap with other groups' commits.
        self._prep = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="liquide-prep")
        self._closing = False
        # Refusing new work and queueing it exclude each other: nothing lands in the queue
        # after a writer that stopped has emptied it.
        self._gate = threading.Lock()
        self.groups = 0
        self.on_group: Callable[[int, int], None] | None = None
        """Called with (group size, events appended) after each group (metrics), on the
        writer thread."""

    def start(self) -> None:
        """Start the writer thread; outcomes are delivered on the running loop."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name="liquide-writer", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        """Finish queued work, refuse new work, and stop the writer thread."""
        with self._gate:
            self._closing = True
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        self._prep.shutdown(wait=True)

    def _enqueue(
        self, subs: list[Submission] | None, call: Callable[[], Any] | None, *, batch: bool = False
    ) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._gate:
            if self._closing or self._thread is None:
                raise UnavailableError("the node is not accepting writes (starting or stopping)")
            self._queue.put(_Job(subs, call, fut, batch))
        return fut

    async def _signed(
        self, outcomes: list[Accepted | LiquideError]
    ) -> list[Accepted | LiquideError]:
        """Sign the receipts the writer deferred (it already committed these events)."""
        if len(outcomes) < self.writer.config.pool_threshold:
            return self.writer.sign_receipts(outcomes)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._prep, self.writer.sign_receipts, outcomes)

    async def submit(self, leaf: bytes) -> Accepted:
        """Append one client event; return it accepted, or raise its refusal."""
        out = (await self._signed(await self._enqueue([Submission(leaf=leaf)], None)))[0]
        if isinstance(out, LiquideError):
            raise out
        assert isinstance(out, Accepted)
        return out

    async def submit_batch(self, subs: list[Submission]) -> list[Accepted | LiquideError]:
        """Append many submissions in one transaction; return one outcome per submission.

        A large batch is decoded, and its signatures sent to the verify pool, before it queues
        for the writer, so that the pool works while the writer commits the previous group.
        New events get receipts of the batch form (one signature per group of batches).
        """
        if len(subs) >= self.writer.config.pool_threshold:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._prep, self.writer.prepare, subs)
        return await self._signed(await self._enqueue(subs, None, batch=True))

    async def append_own(self, type_: str, body: dict[str, Any]) -> Accepted:
        """Build, sign and append one city event through the single writer."""
        own = [Submission(own=(type_, body))]
        out = (await self._signed(await self._enqueue(own, None)))[0]
        if isinstance(out, LiquideError):
            raise out
        assert isinstance(out, Accepted)
        return out

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread, between groups; return its result."""
        result: T = await self._enqueue(None, fn)
        return result

    def _run(self) -> None:
        """The writer thread: groups in queue order until the stop mark."""
        carry: _Job | None = None
        stopping = False
        while True:
            if carry is not None:
                job, carry = carry, None
            elif stopping and self._queue.empty():
                return
            else:
                got = self._queue.get()
                if got is None:
                    stopping = True
                    continue
                job = got
            if job.call is not None:
                if not self._finish([job], job.call):
                    self._refuse_queued()
                    return
                continue
            jobs = [job]
            count = len(job.subs or ())
            # Small submissions share a commit. Large batches are not merged: the pool verifies
            # the next batch while the writer commits this one, and both cores stay busy.
            limit = self.writer.config.pool_threshold if job.batch else self.max_group
            while count < limit:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    continue
                if nxt.call is not None or nxt.batch != job.batch:
                    carry = nxt
                    break
                jobs.append(nxt)
                count += len(nxt.subs or ())
            subs = [s for j in jobs for s in (j.subs or ())]
            fn = functools.partial(self.writer.process, subs, defer_receipts=True, batch=job.batch)
            if not self._finish(jobs, fn):
                self._refuse_queued(carry)
                return

    def _finish(self, jobs: list[_Job], fn: Callable[[], Any]) -> bool:
        """Run ``fn`` for ``jobs`` and hand the outcomes to the loop; False if the writer
        must stop (``fn`` raised a BaseException; new work is refused from then on)."""
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 (the awaiting clients get the group's error)
            self._deliver(jobs, exc)
            return True
        except BaseException as exc:  # noqa: BLE001 (as above; then the writer stops)
            with self._gate:
                self._closing = True
            self._deliver(jobs, StoreError(f"the writer stopped: {exc!r}"))
            return False
        self.groups += 1
        if len(jobs) == 1 and jobs[0].call is not None:
            self._deliver(jobs, None, [result])
            return True
        parts = []
        pos = 0
        appended = 0
        for j in jobs:
            n = len(j.subs or ())
            part = result[pos : pos + n]
            pos += n
            appended += sum(1 for r in part if isinstance(r, Accepted) and r.new)
            parts.append(part)
        self._deliver(jobs, None, parts)
        if self.on_group is not None:
            with contextlib.suppress(Exception):
                self.on_group(pos, appended)
        return True

    def _refuse_queued(self, carry: _Job | None = None) -> None:
        """(Writer thread, stopping) Fail ``carry`` and every job still queued."""
        left = [] if carry is None else [carry]
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                left.append(job)
        if left:
            self._deliver(left, UnavailableError("the node's writer has stopped"))

    def _deliver(
        self, jobs: list[_Job], error: Exception | None, results: list[Any] | None = None
    ) -> None:
        """Settle the jobs' futures on the loop (one callback for the whole group)."""

        def settle() -> None:
            for i, j in enumerate(jobs):
                if j.future.done():  # the client went away meanwhile
                    continue
                if error is not None:
                    j.future.set_exception(error)
                else:
                    assert results is not None
                    j.future.set_result(results[i])

        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits these
            self._loop.call_soon_threadsafe(settle)
