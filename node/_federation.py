"""Federation: what ties a node to the other cities (DESIGN invariants 4–10).

:class:`Federation` hangs on a :class:`~node._node.Node` (``node.extra["federation"]``) and runs:

* the **pins** — which logs this node trusts and with which key: its own, the configured peers
  (origin + C2SP verifier key), and, transitively, the member cities that an assembly defined in a
  trusted log pins. Witness keys come from the peers (a node witnesses under its origin) and from
  the witnesses assemblies pin. Nothing is ever trusted because a peer offered it;
* **replay** of every trusted log (own and mirrors) on a thread of its own, into
  :class:`protocol.state.State` objects, findings, and snapshots at each seal;
* the **sync loops** (:mod:`node.sync`), the **witness** endpoint and **pushes**
  (:mod:`node.witness`);
* **adoption**: an issue defined by another member city of an assembly this city joined is
  adopted automatically (an ``issue.adopt`` event carrying its signed definition and area);
* **records and attestations**: once every member city's part of an issue's record is settled
  (its seal, or after close + grace the largest prefix that k witnesses vouched for before the
  close), the node tallies the record and appends an ``attest`` event (record id, result digest);
* the **HTTP routes** of the federation: ``/v1/witness/add-checkpoint``, ``/v1/cosignatures``,
  ``/v1/issues/{id}/attestations``, ``/v1/issues/{id}/record``, ``/v1/findings`` and
  ``/v1/federation``, and the admin operations ``assembly.join``, ``issue.adopt`` and
  ``peer.add/list/remove``.

The writer thread is the only writer: every store change goes through ``node.ingest.call``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
from aiohttp import web
from sqlite_utils.migrations import Migrations

from crypto import KeyFormatError, LiquideError, PublicKey
from protocol._sync import CosignFact, standin_size, witnessed_at
from protocol.checkpoint import Checkpoint, Cosignature, SignedCheckpoint, SplitViewProof
from protocol.errors import CheckpointError, ProtocolError, TallyInputError
from protocol.events import AreaBody, AssemblyBody, Event, IssueBody
from protocol.record import Record, RecordPart
from protocol.state import Finding, State, replay, tally_input
from protocol.tally import tally

from ._node import Node
from .client import Transport
from .config import CONFIG_FILE
from .errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PeerError,
    RequestError,
    UnavailableError,
)
from .ingest import VerifyPool, Writer
from .store import LeafRow, Store
from .sync import PeerPin, PeerSync, RoundReport, run_peer_loop
from .transport import peer_transport
from .witness import Pusher, add_checkpoint_handler

__all__ = [
    "FEDERATION_MIGRATIONS",
    "OPERATIONS",
    "Federation",
    "FederationConfig",
    "install",
    "load_federation_config",
]

log = logging.getLogger("liquide.node.federation")
T = TypeVar("T")

# Store tables of the federation ---------------------------------------------------------------

FEDERATION_MIGRATIONS = Migrations("liquide.federation")


@FEDERATION_MIGRATIONS()
def f001_witness(db: sqlite_utils.Database) -> None:
    """The witness's last cosigned checkpoint per origin, and the feed of cosignatures."""
    db.executescript(
        """
        CREATE TABLE fed_witness (
            origin TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            time INTEGER NOT NULL
        );
        CREATE TABLE fed_cosigs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            origin TEXT NOT NULL,
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            witness TEXT NOT NULL,
            line TEXT NOT NULL,
            note TEXT NOT NULL,
            time INTEGER NOT NULL,
            UNIQUE (origin, size, witness)
        );
        CREATE INDEX fed_cosigs_origin ON fed_cosigs (origin, size);
        """
    )


def apply_migrations(store: Store) -> None:
    """Create or upgrade the federation's tables in the writer ``store``."""
    FEDERATION_MIGRATIONS.apply(store.db)


# Config ------------------------------------------------------------------------------------------

_FED_BOUNDS: dict[str, tuple[float, float]] = {
    "sync_interval_s": (0.01, 3600),
    "tick_interval_s": (0.01, 3600),
    "backoff_max_s": (0.1, 3600),
    "peer_timeout_s": (0.1, 600),
    "connect_timeout_s": (0.1, 600),
    "max_response_bytes": (1024, 1 << 30),
    "max_logs": (1, 100_000),
    "max_proofs": (1, 100_000),
    "max_feed": (1, 100_000),
    "page_size": (1, 10_000),
    "chunk_leaves": (1, 1_000_000),
    "max_investigate": (0, 100_000_000),
}


@dataclass(frozen=True, slots=True)
class FederationConfig:
    """The federation's settings: the ``[federation]`` table of ``liquide.toml``.

    ``LIQUIDE_FED_<SETTING>`` environment variables override the file.
    """

    auto: bool = True
    """Run the sync, push and tick loops (tests of simulated federations step them by hand)."""
    sync_interval_s: float = 2.0
    """Time between two rounds with one peer (jittered)."""
    tick_interval_s: float = 1.0
    """Time between two federation ticks: replay, adoption, attestation, witness pushes."""
    backoff_max_s: float = 60.0
    """Longest wait after failed rounds with a peer (exponential backoff with jitter)."""
    peer_timeout_s: float = 10.0
    """Total deadline of one request to a peer, body included (a trickle of bytes times out)."""
    connect_timeout_s: float = 3.0
    max_response_bytes: int = 32 << 20
    """Largest answer read from a peer."""
    max_logs: int = 1000
    """Most logs accepted in one ``/v1/logs`` answer."""
    max_proofs: int = 1000
    """Most proofs accepted in one ``/v1/proofs`` answer."""
    max_feed: int = 1000
    """Most cosignatures asked for and accepted per feed page."""
    page_size: int = 1000
    """Entries asked for per page."""
    chunk_leaves: int = 5000
    """Leaves verified together (one consistency proof) before they are appended."""
    max_investigate: int = 1_000_000
    """Most leaves compared with a peer's when looking for where two views differ."""

    def __post_init__(self) -> None:
        for name, (lo, hi) in _FED_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"federation.{name} must be a number, got {value!r}")
            if not lo <= value <= hi:
                raise ConfigError(f"federation.{name} = {value} is outside [{lo:g}, {hi:g}]")
        if not isinstance(self.auto, bool):
            raise ConfigError("federation.auto must be true or false")

    def replace(self, **changes: Any) -> FederationConfig:
        return dataclasses.replace(self, **changes)


def load_federation_config(data_dir: Path, env: dict[str, str] | None = None) -> FederationConfig:
    """Read the ``[federation]`` table of ``data_dir/liquide.toml`` and ``LIQUIDE_FED_*``.

    Raises :class:`ConfigError` naming a bad or unknown setting.
    """
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    path = Path(data_dir) / CONFIG_FILE
    with contextlib.suppress(FileNotFoundError):
        with path.open("rb") as fh:
            try:
                raw = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        table = raw.get("federation", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [federation] must be a table")
        values.update(table)
    fields = {f.name: f for f in dataclasses.fields(FederationConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{path}: unknown federation setting(s) {', '.join(unknown)}")
    for name in fields:
        text = env.get(f"LIQUIDE_FED_{name.upper()}")
        if text is None:
            continue
        default = getattr(FederationConfig(), name)
        try:
            if isinstance(default, bool):
                values[name] = text.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[name] = int(text)
            else:
                values[name] = float(text)
        except ValueError:
            raise ConfigError(f"LIQUIDE_FED_{name.upper()}={text!r} is not valid") from None
    for name, value in list(values.items()):
        if isinstance(getattr(FederationConfig(), name), float) and type(value) is int:
            values[name] = float(value)
    return FederationConfig(**values)


# Replay ------------------------------------------------------------------------------------------


@dataclass
class _Replayed:
    """One log's replay: state, findings and a snapshot right after each seal."""

    state: State
    findings: list[Finding] = field(default_factory=list)
    at_seal: dict[str, State] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeySchedule:
    """A trusted log's city keys as its replica here knows them (a snapshot, safe to share).

    ``handovers`` are the accepted handovers (leaf index, new key) among the first ``size``
    leaves replayed; the pinned key comes first (docs/PROTOCOL.md §6.2).
    """

    pinned: str
    handovers: tuple[tuple[int, str], ...] = ()
    size: int = 0

    def key_at(self, size: int) -> str:
        """The key that signs a checkpoint of ``size`` leaves; beyond the replicated size, the
        key in effect at that size (a handover the replica has not seen yet is not known)."""
        key = self.pinned
        for index, new in self.handovers:
            if index < size:
                key = new
        return key

    @property
    def current(self) -> str:
        return self.handovers[-1][1] if self.handovers else self.pinned

    def public_keys(self) -> list[PublicKey]:
        return [_key_of(k) for k in (self.pinned, *(k for _, k in self.handovers))]


@dataclass(frozen=True, slots=True)
class _Trust:
    logs: dict[str, PublicKey]
    witnesses: dict[str, PublicKey]
    conflicts: tuple[str, ...] = ()
    schedules: dict[str, KeySchedule] = field(default_factory=dict)


@dataclass
class _Record:
    """This node's record of an issue, the flags of each part, and the tally."""

    record: Record
    digest: str
    flags: dict[str, tuple[str, ...]]
    findings: list[Finding]
    result: dict[str, Any]
    #: The TallyInput the result was computed from, kept for explanations (not served whole).
    input: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.record.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "issue": self.record.issue,
            "record_id": self.record.id,
            "record": self.record.to_dict(),
            "flags": {o: list(f) for o, f in sorted(self.flags.items())},
            "standins": list(self.record.standins()),
            "digest": self.digest,
            "findings": [f.to_dict() for f in self.findings],
            "result": self.result,
        }


@dataclass(frozen=True, slots=True)
class PartRule:
    """How a member city's part of a record settles (``basis``), or what it waits for."""

    basis: str | None
    """``seal``, ``checkpoint`` (a stand-in), or None while the part waits for evidence."""
    flags: tuple[str, ...] = ()
    waiting: str = ""
    """While waiting: the evidence that would settle the part."""


def settle_part(
    facts: Sequence[CosignFact],
    *,
    seal: int | None,
    deadline_witnesses: Collection[str],
    close: int,
    grace: int,
    k: int,
) -> PartRule:
    """Settle one member's part from signed facts only (docs/PROTOCOL.md §8.6).

    ``facts`` are the verified cosignatures of the member's checkpoints by the assembly's
    witnesses; ``seal`` the index of the member's seal of the issue among the leaves held (None
    if they hold none); ``deadline_witnesses`` the witnesses that cosigned, with a time at or
    after ``close + grace``, a checkpoint whose leaves are held and contain no seal of the issue.

    The node's own clock plays no part, so every node holding the same facts decides the same:

    * the seal is **timely** when ``k`` witnesses covered it before ``close + grace``: the seal;
    * ``k`` deadline witnesses are the evidence that no timely seal exists (honest witnesses
      never cosign a smaller checkpoint after a larger one): the stand-in, flagged ``no_seal``;
    * a seal first covered at or after ``close + grace``, with no such evidence: the seal,
      flagged ``late_seal`` (a member seals before it pushes anything after a close, so an
      honest member never produces both);
    * otherwise the part waits, whatever the time: guessing is how two nodes come to attest
      different records.
    """
    deadline = close + grace
    if k <= 0:
        if seal is not None:
            return PartRule("seal")
        return PartRule(None, waiting="its seal (the assembly pins no witness threshold)")
    no_timely_seal = len(set(deadline_witnesses)) >= k
    if seal is not None:
        at = witnessed_at(facts, seal, k)
        if at is not None and at < deadline:
            return PartRule("seal", ("early_seal",) if at < close else ())
        if no_timely_seal:
            return PartRule("checkpoint", ("no_seal",))
        if at is not None:
            return PartRule("seal", ("late_seal",))
        return PartRule(
            None,
            waiting=f"a checkpoint covering its seal (leaf {seal}) cosigned by {k} witness(es)",
        )
    if no_timely_seal:
        return PartRule("checkpoint", ("no_seal",))
    return PartRule(
        None,
        waiting=(
            f"its seal, or a checkpoint without it cosigned by {k} witness(es) at or after "
            "close + grace"
        ),
    )


class RecordPendingError(ConflictError):
    """The record of an issue is not settled here yet; ``waiting`` names whom it waits for."""

    code = "open"

    def __init__(self, message: str, waiting: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.waiting = waiting

    def details(self) -> dict[str, Any]:
        """Extra fields for the HTTP error body: the members waited for, and the evidence."""
        return {"waiting": self.waiting}


def _key_of(text: str) -> PublicKey:
    return PublicKey.from_text(text)


_URL = re.compile(r"^https?://[^\s/?#]+/?$")
# At most this many committed own events wait for the replay (about 1 KB each; the replay
# takes them every tick, so this bound is met only when it is stalled).
_FRESH_MAX = 50_000


def pin_from_row(row: dict[str, Any]) -> PeerPin | None:
    """A :class:`PeerPin` from a stored peer row, or None if its key does not parse."""
    try:
        name, key = PublicKey.from_vkey(str(row["vkey"]))
    except KeyFormatError:
        return None
    if name != row["origin"]:
        return None
    return PeerPin(str(row["url"]), str(row["origin"]), key)


class Federation:
    """The federation of one node; see the module docstring."""

    def __init__(
        self,
        node: Node,
        config: FederationConfig,
        transport_factory: Callable[[str], Transport] | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self.origin = node.origin
        self.city = node.key.public_key.to_text()
        self.reader = node.reader
        self._factory = transport_factory or self._http_transport
        self._replay_exec = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="liquide-replay"
        )
        self._replay_store: Store | None = None
        self._logs: dict[str, _Replayed] = {}
        self._trust = _Trust({self.origin: node.key.public_key}, {})
        self._records: dict[str, _Record] = {}
        #: Unsettled records: issue → the members whose part waits, and for what evidence.
        self._pending: dict[str, list[dict[str, str]]] = {}
        self._attested: set[str] = set()
        self._adopted: set[str] = set()
        self._syncs: dict[str, PeerSync] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.pusher = Pusher(self)
        self.peer_findings: list[dict[str, Any]] = []
        self.peer_state: dict[str, dict[str, Any]] = {}
        # The node's own pool: one set of workers per process, started and closed by the node.
        self._verify_pool: VerifyPool | None = node.writer.pool
        # Own events the writer committed, by leaf index, until the replay takes them.
        self._fresh: dict[int, Event] = {}
        self._fresh_lock = threading.Lock()
        node.writer.committed.append(self._committed)
        self._rng = random.Random()
        self.rounds: dict[str, int] = {}

    def _http_transport(self, url: str) -> Transport:
        cfg = self.config
        return peer_transport(
            url,
            timeout_s=cfg.peer_timeout_s,
            connect_timeout_s=cfg.connect_timeout_s,
            max_response_bytes=cfg.max_response_bytes,
        )

    # Store access ------------------------------------------------------------------------------

    async def write(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread (the only writer); return its result."""
        ingest = self.node.ingest
        if ingest is None:
            raise UnavailableError("the node is not running")
        return await ingest.call(fn)

    async def write_store(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(writer store)`` on the writer thread."""
        return await self.write(lambda: fn(self.node.store))

    async def query(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the replay thread (where the replayed states live)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._replay_exec, fn)

    def now(self) -> int:
        return int(self.node.clock())

    # Pins ----------------------------------------------------------------------------------------

    def peers(self, store: Store | None = None) -> list[PeerPin]:
        """The configured peers whose pins parse."""
        pins = [pin_from_row(r) for r in (store or self.reader).peers()]
        return [p for p in pins if p is not None]

    def trusted_key(self, origin: str) -> PublicKey | None:
        """The key in effect for ``origin``'s log: its pinned key followed through the handovers
        replicated here; None if this node does not trust the log."""
        sched = self.schedule(origin)
        return None if sched is None else _key_of(sched.current)

    def pinned_key(self, origin: str) -> PublicKey | None:
        """The pinned key of ``origin``'s log (the key it started with), or None."""
        return self._trust.logs.get(origin)

    def trusted_keys(self, origin: str) -> list[PublicKey]:
        """Every key of ``origin``'s schedule known here, the pinned key first ([] if untrusted)."""
        sched = self.schedule(origin)
        return [] if sched is None else sched.public_keys()

    def schedule(self, origin: str) -> KeySchedule | None:
        """The key schedule of a trusted log as replicated here, or None if untrusted."""
        pin = self._trust.logs.get(origin)
        if pin is None:
            return None
        sched = self._trust.schedules.get(origin)
        if sched is None or sched.pinned != pin.to_text():
            return KeySchedule(pin.to_text())
        return sched

    def witness_key(self, name: str) -> PublicKey | None:
        """The pinned key of witness ``name``, or None."""
        return self._trust.witnesses.get(name)

    def _compute_trust(self) -> _Trust:
        own = self.node.key.public_key
        logs: dict[str, PublicKey] = {self.origin: own}
        witnesses: dict[str, PublicKey] = {}
        conflicts: list[str] = []
        for pin in self.peers(self._rs()):
            if pin.origin in logs and logs[pin.origin] != pin.key:
                conflicts.append(f"peer {pin.url} pins {pin.origin} with another key")
                continue
            logs[pin.origin] = pin.key
            witnesses.setdefault(pin.origin, pin.key)
        changed = True
        seen: set[tuple[str, str]] = set()
        while changed:
            changed = False
            for origin in list(logs):
                rep = self._logs.get(origin)
                if rep is None:
                    continue
                for aid, d in rep.state.assemblies.items():
                    if (origin, aid) in seen:
                        continue
                    seen.add((origin, aid))
                    body = d.event.body
                    assert isinstance(body, AssemblyBody)
                    for m in body.members:
                        key = _key_of(m.key)
                        if m.origin not in logs:
                            logs[m.origin] = key
                            changed = True
                        elif logs[m.origin] != key:
                            conflicts.append(
                                f"assembly {aid} pins {m.origin} with another key than "
                                "an earlier pin"
                            )
                    for w in body.witnesses:
                        witnesses.setdefault(w.name, _key_of(w.key))
        schedules = {}
        for origin, pkey in logs.items():
            rep = self._logs.get(origin)
            if rep is not None and rep.state.key == pkey.to_text():
                st = rep.state
                schedules[origin] = KeySchedule(st.key, tuple(st.handovers), st.size)
        return _Trust(logs, witnesses, tuple(conflicts), schedules)

    # Replay (replay thread) --------------------------------------------------------------------

    def _refresh_trust(self) -> None:
        self._trust = self._compute_trust()

    async def refresh_trust(self) -> None:
        """Recompute the pins from the peers and the replayed logs (cheap; before a round)."""
        await self.query(self._refresh_trust)

    async def refresh_origin(self, origin: str) -> None:
        """Replay what is stored of ``origin``'s log, then recompute the pins (after a mirror
        followed a handover, so that its new key is trusted at once)."""

        def fn() -> None:
            pin = self._trust.logs.get(origin)
            if pin is not None:
                self._catch_up(origin, pin)
            self._refresh_trust()

        await self.query(fn)

    def _rs(self) -> Store:
        if self._replay_store is None:
            self._replay_store = self.node.store.reader()
        return self._replay_store

    def _leaf_reader(self, origin: str) -> Callable[[int], bytes]:
        def leaf(index: int) -> bytes:
            return self._rs().leaf(origin, index)

        return leaf

    def _committed(self, accepted: Sequence[tuple[int, Event]]) -> None:
        """(Writer thread) Keep the events just committed to the own log for the replay."""
        with self._fresh_lock:
            if len(self._fresh) >= _FRESH_MAX:
                # The replay is far behind (or not running): it decodes from the store instead.
                return
            self._fresh.update(accepted)

    def _take_fresh(self, start: int, leaves: Sequence[bytes]) -> list[Event | None]:
        """The writer's decoded events for own leaves ``start…`` (None where it has none).

        The writer verified and committed them; the stored bytes are compared all the same.
        """
        with self._fresh_lock:
            pop = self._fresh.pop
            got = [pop(start + i, None) for i in range(len(leaves))]
            if self._fresh and min(self._fresh) < start:
                # Left over from before a restart of the replay: never asked for again.
                self._fresh = {i: e for i, e in self._fresh.items() if i >= start}
        return [
            e if e is not None and e.leaf == leaf else None
            for e, leaf in zip(got, leaves, strict=True)
        ]

    def _catch_up(self, origin: str, key: PublicKey) -> None:
        rs = self._rs()
        info = rs.log(origin)
        if info is None:
            return
        rep = self._logs.get(origin)
        key_text = key.to_text()
        if rep is None or rep.state.key != key_text:
            rep = _Replayed(State(origin, key_text, leaves=self._leaf_reader(origin)))
            self._logs[origin] = rep
        st = rep.state
        # Leaves of the own log were verified by the writer before it appended them (as the
        # writer's own replay at start-up assumes): only other cities' leaves are verified here.
        own = origin == self.origin
        pool = None if own else self._verify_pool
        while st.size < info.size:
            start = st.size
            leaves = rs.leaves(origin, start, min(info.size, start + 20_000))
            if not leaves:
                break
            if pool is not None and len(leaves) >= self.node.config.pool_threshold:
                # This thread decodes while the workers verify the chunks decoded before; the
                # events are applied in order as their verdicts come back.
                step = 1000
                pending: list[tuple[int, list[bytes], list[Event | None], Any]] = []
                for i in range(0, len(leaves), step):
                    part = leaves[i : i + step]
                    events: list[Event | None] = []
                    for leaf in part:
                        try:
                            events.append(Event.decode(leaf))
                        except ProtocolError:
                            events.append(None)
                    decoded = [e for e in events if e is not None]
                    pending.append((start + i, part, events, pool.submit_verify(decoded)))
                for base, part, events, fut in pending:
                    verdicts = iter(fut.result())
                    for j, (leaf, ev) in enumerate(zip(part, events, strict=True)):
                        if ev is None:
                            rep.findings += st.apply(base + j, leaf)
                        else:  # a bad signature is re-checked, and reported, by replay
                            self._apply(rep, base + j, ev, leaf, verified=next(verdicts))
                continue
            fresh = self._take_fresh(start, leaves) if own else [None] * len(leaves)
            for i, (leaf, taken) in enumerate(zip(leaves, fresh, strict=True)):
                idx = start + i
                ev = taken
                if ev is None:
                    try:
                        ev = Event.decode(leaf)
                    except ProtocolError:
                        rep.findings += st.apply(idx, leaf)
                        continue
                self._apply(rep, idx, ev, leaf, verified=own)

    def key_after(self, origin: str, start: int, extra: Sequence[bytes], size: int) -> str | None:
        """(Replay thread) The key in effect at ``size`` if ``origin``'s mirror of ``start``
        leaves went on with ``extra`` (leaves the caller checked against a root): a copy of the
        replicated state, caught up with the mirror, replays them. None if the log is untrusted,
        the mirror is no longer ``start`` leaves long, or ``size`` is beyond them."""
        pin = self._trust.logs.get(origin)
        if pin is None:
            return None
        self._catch_up(origin, pin)
        rep = self._logs.get(origin)
        held = self._leaf_reader(origin)
        base = 0 if rep is None else rep.state.size
        if base != start:
            return None

        def leaf(i: int) -> bytes:
            return held(i) if i < base else extra[i - base]

        st = State(origin, pin.to_text()) if rep is None else rep.state.copy()
        st.leaves = leaf
        for data in extra:
            if st.size >= size:
                break
            st.apply(st.size, data)
        return st.key_at(size) if st.size >= size else None

    @staticmethod
    def _apply(rep: _Replayed, idx: int, ev: Event, leaf: bytes, *, verified: bool) -> None:
        st = rep.state
        rep.findings += st.apply_event(idx, ev, verified=verified)
        if ev.type == "seal":
            issue = getattr(ev.body, "issue", "")
            if st.seals.get(issue) == idx:
                rep.at_seal[issue] = st.copy()

    def replay_all(self) -> _Trust:
        """Catch every trusted log's replay up with the store and recompute the pins."""
        for _ in range(8):  # pins grow through assemblies; a few passes reach the fixpoint
            trust = self._compute_trust()
            for origin, key in trust.logs.items():
                self._catch_up(origin, key)
            again = self._compute_trust()
            self._trust = again
            if again.logs.keys() == trust.logs.keys():
                break
        return self._trust

    # Adoption and records (replay thread) --------------------------------------------------------

    def _own(self) -> State | None:
        rep = self._logs.get(self.origin)
        return None if rep is None else rep.state

    def _adoptions(self) -> list[tuple[str, dict[str, Any]]]:
        own = self._own()
        if own is None:
            return []
        out = []
        for aid, d in own.assemblies.items():
            body = d.event.body
            assert isinstance(body, AssemblyBody)
            for m in body.members:
                if m.origin == self.origin:
                    continue
                rep = self._logs.get(m.origin)
                if rep is None:
                    continue
                for iid, idef in rep.state.issues.items():
                    ib = idef.event.body
                    assert isinstance(ib, IssueBody)
                    if ib.assembly != aid or idef.event.author != m.key:
                        continue
                    if iid in own.issues or iid in self._adopted:
                        continue
                    area = rep.state.areas.get(ib.area)
                    if area is None:
                        continue
                    out.append((iid, {"issue": idef.event.to_dict(), "area": area.event.to_dict()}))
        return out

    def _issue_defs(self) -> dict[str, tuple[Event, Event]]:
        """Every issue known in a replayed log, with its assembly's definition."""
        out: dict[str, tuple[Event, Event]] = {}
        for rep in self._logs.values():
            st = rep.state
            for iid, d in st.issues.items():
                if iid in out:
                    continue
                ib = d.event.body
                assert isinstance(ib, IssueBody)
                asm = st.assemblies.get(ib.assembly)
                if asm is not None:
                    out[iid] = (d.event, asm.event)
        return out

    def _cosigs(self, origin: str, witnesses: dict[str, PublicKey]) -> list[tuple[CosignFact, str]]:
        """Verified cosignatures of ``origin``'s checkpoints by the given witnesses, with lines."""
        rows = self._rs().conn.execute(
            "SELECT size, root, witness, line FROM fed_cosigs WHERE origin = ?", (origin,)
        )
        out = []
        for size, root, witness, line in rows.fetchall():
            key = witnesses.get(witness)
            if key is None:
                continue
            try:
                cosig = Cosignature.from_line(line)
                cosig.verify(Checkpoint(origin, int(size), bytes(root)), key)
            except CheckpointError:
                continue
            out.append((CosignFact(witness, int(size), cosig.time), str(line)))
        return out

    def _standin(
        self, origin: str, size: int, cosigs: list[tuple[CosignFact, str]], close: int
    ) -> str | None:
        """The stand-in checkpoint text: the log's signed note with the early cosignatures."""
        row = (
            self._rs()
            .conn.execute(
                "SELECT note FROM fed_cosigs WHERE origin = ? AND size = ? LIMIT 1", (origin, size)
            )
            .fetchone()
        )
        stored = self._rs().checkpoint(origin, size)
        text = stored.note if stored is not None else (None if row is None else str(row[0]))
        if text is None:
            return None
        sc = SignedCheckpoint.parse(text)
        signed = SignedCheckpoint(
            sc.checkpoint, tuple(s for s in sc.signatures if s.name == origin)
        )
        for fact, line in cosigs:
            if fact.size == size and fact.time < close:
                signed = signed.with_signature(line)
        return signed.to_text()

    def _deadline_witnesses(
        self, origin: str, witnesses: dict[str, PublicKey], limit: int, deadline: int
    ) -> set[str]:
        """Witnesses that cosigned, at or after ``deadline``, a checkpoint of ``origin`` of size
        at most ``limit`` whose root is the root of the leaves held here."""
        rs = self._rs()
        rows = rs.conn.execute(
            "SELECT size, root, witness, line FROM fed_cosigs"
            " WHERE origin = ? AND size <= ? AND time >= ?",
            (origin, limit, deadline),
        )
        out: set[str] = set()
        roots: dict[int, bytes] = {}
        for raw_size, root, witness, line in rows.fetchall():
            key = witnesses.get(witness)
            if key is None or witness in out:
                continue
            size = int(raw_size)
            if size not in roots:
                roots[size] = rs.root_at(origin, size)
            if bytes(root) != roots[size]:
                continue  # not the leaves held here: a split view is proven elsewhere, not here
            try:
                cosig = Cosignature.from_line(line)
                cosig.verify(Checkpoint(origin, size, bytes(root)), key)
            except CheckpointError:
                continue
            if cosig.time >= deadline:
                out.add(witness)
        return out

    def _compute_record(
        self, iid: str, issue_ev: Event, asm_ev: Event
    ) -> _Record | list[dict[str, str]]:
        """The settled record of ``iid``, or the members whose part still waits (and why)."""
        ib = issue_ev.body
        ab = asm_ev.body
        assert isinstance(ib, IssueBody)
        assert isinstance(ab, AssemblyBody)
        deadline = ib.closes + ab.grace
        witnesses = {w.name: _key_of(w.key) for w in ab.witnesses}
        rs = self._rs()
        parts: list[RecordPart] = []
        flags: dict[str, tuple[str, ...]] = {}
        states: dict[str, State] = {}
        waiting: list[dict[str, str]] = []
        for m in ab.members:
            rep = self._logs.get(m.origin)
            if rep is None or rep.state.key != m.key:
                waiting.append({"origin": m.origin, "reason": "its log (not mirrored here yet)"})
                continue
            cosigs = self._cosigs(m.origin, witnesses)
            facts = [f for f, _ in cosigs]
            seal = rep.state.seals.get(iid)
            limit = rep.state.size if seal is None else seal
            late = self._deadline_witnesses(m.origin, witnesses, limit, deadline)
            rule = settle_part(
                facts, seal=seal, deadline_witnesses=late, close=ib.closes, grace=ab.grace, k=ab.k
            )
            if rule.basis == "seal" and seal is not None:
                snap = rep.at_seal.get(iid)
                if snap is None:
                    waiting.append({"origin": m.origin, "reason": "the replay of its seal"})
                    continue
                root = rs.root_at(m.origin, seal + 1)
                parts.append(RecordPart(m.origin, seal + 1, root, "seal", seal=seal))
                flags[m.origin] = rule.flags
                states[m.origin] = snap
                continue
            if rule.basis != "checkpoint":
                waiting.append({"origin": m.origin, "reason": rule.waiting})
                continue
            size = standin_size(facts, ib.closes, ab.k)
            if size is None or size > limit:
                # Without a checkpoint witnessed before the close nothing can stand in for it.
                waiting.append(
                    {
                        "origin": m.origin,
                        "reason": f"its seal: no checkpoint of it was cosigned by {ab.k} "
                        "witness(es) before the close, so none can stand in for it",
                    }
                )
                continue
            text = self._standin(m.origin, size, cosigs, ib.closes)
            if text is None:
                waiting.append({"origin": m.origin, "reason": f"its signed checkpoint {size}"})
                continue
            parts.append(
                RecordPart(
                    m.origin, size, rs.root_at(m.origin, size), "checkpoint", checkpoint=text
                )
            )
            flags[m.origin] = rule.flags
            states[m.origin] = replay(m.origin, m.key, rs.leaves(m.origin, 0, size)).state
        if waiting:
            return waiting
        try:
            built = tally_input(iid, states)
            result = tally(built.prepared)
        except TallyInputError as exc:
            log.warning("cannot tally issue %s: %s", iid, exc.message)
            return [{"origin": "", "reason": f"a tally input that loads: {exc.message}"}]
        record = Record.of(iid, parts)
        return _Record(
            record, result.digest, flags, list(built.findings), result.to_dict(), built.input
        )

    def _settle(self) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
        """Replay, then what to append: adoptions, and attestations of settled records."""
        self.replay_all()
        adoptions = self._adoptions()
        attests = []
        own = self._own()
        for iid, (issue_ev, asm_ev) in self._issue_defs().items():
            rec = self._records.get(iid)
            if rec is None:
                got = self._compute_record(iid, issue_ev, asm_ev)
                if not isinstance(got, _Record):
                    self._pending[iid] = got
                    continue
                rec = got
                self._records[iid] = rec
                self._pending.pop(iid, None)
            attested = own is None or rec.id in own.attestations
            if not attested and rec.id not in self._attested:
                attests.append({"record": rec.id, "digest": rec.digest, "issue": iid})
        return adoptions, attests

    # Ticks -------------------------------------------------------------------------------------

    async def tick(self) -> dict[str, int]:
        """Replay, adopt, attest, push to witnesses; return counts of what was done."""
        adoptions, attests = await self.query(self._settle)
        done = {"adopted": 0, "attested": 0, "cosigned": 0}
        ingest = self.node.ingest
        if ingest is None:
            return done
        for iid, body in adoptions:
            self._adopted.add(iid)
            try:
                await ingest.append_own("issue.adopt", body)
                done["adopted"] += 1
                log.info("adopted issue %s", iid)
            except LiquideError as exc:
                log.warning("cannot adopt issue %s: %s", iid, exc.message)
        for body in attests:
            self._attested.add(body["record"])
            try:
                await ingest.append_own("attest", body)
                done["attested"] += 1
                log.info("attested record %s of issue %s: %s", body["record"][:16],
                         body["issue"][:16], body["digest"][:16])  # fmt: skip
            except LiquideError as exc:
                log.warning("cannot attest issue %s: %s", body["issue"], exc.message)
        # A member seals every closed issue before it pushes a checkpoint (after a restart past
        # a close, say): a checkpoint without the seal cosigned after close + grace is evidence
        # that no timely seal exists (§8.6), which an honest member must never produce.
        await ingest.call(self._seal_before_push)
        done["cosigned"] = await self.push_all()
        return done

    def _seal_before_push(self) -> None:
        """(Writer thread) Seal the issues whose window closed, and sign, if any is due."""
        if self.node.writer.due_seals():
            self.node.tick()

    async def push_all(self) -> int:
        """Push the latest own checkpoint to every witness; return how many cosigned it."""
        n = 0
        for pin in self.peers():
            wp = self.pusher.ensure(pin, self._transport(pin.url))
            try:
                if await self.pusher.push(wp):
                    n += 1
            except PeerError as exc:
                log.info("push to witness %s failed: %s", pin.url, exc.message)
        return n

    def _transport(self, url: str) -> Transport:
        sync = self._syncs.get(url)
        if sync is not None:
            return sync.client.transport
        return self._factory(url)

    def _sync_for(self, pin: PeerPin) -> PeerSync:
        sync = self._syncs.get(pin.url)
        if sync is None or sync.pin != pin:
            sync = PeerSync(self, pin, self._factory(pin.url))
            self._syncs[pin.url] = sync
        return sync

    async def sync_peer(self, url: str) -> RoundReport:
        """One round with the configured peer at ``url``; raises PeerError on failure."""
        pin = next((p for p in self.peers() if p.url == url), None)
        if pin is None:
            raise NotFoundError(f"{url} is not a configured peer")
        report = await self._sync_for(pin).round()
        self.rounds[url] = self.rounds.get(url, 0) + 1
        return report

    async def sync_all(self) -> list[RoundReport | LiquideError]:
        """One round with every configured peer (failures are returned, not raised)."""
        out: list[RoundReport | LiquideError] = []
        for pin in self.peers():
            try:
                out.append(await self.sync_peer(pin.url))
                self.peer_ok(pin.url)
            except LiquideError as exc:
                self.peer_failed(pin.url, exc.message)
                out.append(exc)
        return out

    # Called by sync and witness --------------------------------------------------------------

    def known_proof_ids(self) -> set[str]:
        return {str(p["id"]) for p in self.reader.proofs()}

    async def store_split_view(self, proof: SplitViewProof) -> bool:
        """Store a verified split-view proof and freeze its origin's mirror; True if new."""
        now = self.now()
        reason = f"split view proven ({proof.kind}): proof {proof.id}"

        def fn(store: Store) -> bool:
            with store.atomic():
                # One proof convicts a log. Keeping every one would let a city that signs split
                # views by the thousand push honest nodes' /v1/proofs past what their peers
                # accept (max_proofs), and so stop replication.
                held = store.conn.execute(
                    "SELECT 1 FROM proofs WHERE kind = 'split-view' AND origin = ? LIMIT 1",
                    (proof.origin,),
                ).fetchone()
                new = held is None and store.add_proof(
                    proof.id, "split-view", proof.origin, proof.to_dict(), now
                )
                if store.log(proof.origin) is not None and proof.origin != self.origin:
                    store.freeze(proof.origin, reason)
            return new

        new = await self.write_store(fn)
        if new:
            log.warning("%s: %s", proof.origin, reason)
        return new

    async def keep_checkpoint(self, origin: str, key: PublicKey, sc: SignedCheckpoint) -> None:
        """Store a verified checkpoint of a size our mirror holds with the same root."""
        cp = sc.checkpoint
        if self.reader.checkpoint(origin, cp.size) is not None:
            return
        note = SignedCheckpoint(cp, tuple(s for s in sc.signatures if s.name == origin)).to_text()
        now = self.now()

        def fn(store: Store) -> None:
            info = store.log(origin)
            if info is None or info.size < cp.size or store.root_at(origin, cp.size) != cp.root:
                return
            with store.atomic():
                store.add_checkpoint(origin, cp.size, cp.root, note, now)

        await self.write_store(fn)

    async def keep_cosignatures(
        self,
        origin: str,
        sc: SignedCheckpoint,
        *,
        only: str | None = None,
        keys: Sequence[PublicKey] | None = None,
    ) -> bool:
        """Keep the cosignatures on ``sc`` by pinned witnesses; True if one was new.

        The checkpoint must carry ``origin``'s signature by a key of its schedule (the pinned
        key or one its handovers named): cosignatures are about the (origin, size, root).
        """
        keys = list(keys or ()) + self.trusted_keys(origin)
        if not keys:
            return False
        try:
            sc.signer(origin, keys)
        except CheckpointError:
            return False
        cp = sc.checkpoint
        lines = []
        for sig in sc.signatures:
            if sig.name == origin or (only is not None and sig.name != only):
                continue
            wkey = self.witness_key(sig.name)
            if wkey is None:
                continue
            try:
                cosig = sc.verify_cosignature(sig.name, wkey)
            except CheckpointError:
                continue
            lines.append((sig.name, cosig))
        if not lines:
            return False
        base = SignedCheckpoint(cp, tuple(s for s in sc.signatures if s.name == origin))

        def fn(store: Store) -> bool:
            new = False
            for name, cosig in lines:
                line = cosig.line()
                note = base.with_signature(line).to_text()
                new |= self.record_cosignature(
                    store, note=note, witness=name, cp=cp, line=line, time_=cosig.time
                )
            return new

        return await self.write_store(fn)

    def record_cosignature(
        self, store: Store, *, note: str, witness: str, cp: Checkpoint, line: str, time_: int
    ) -> bool:
        """(Writer thread) add a verified cosignature to the feed and beside the checkpoint."""
        cur = store.conn.execute(
            "INSERT OR IGNORE INTO fed_cosigs (origin, size, root, witness, line, note, time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cp.origin, cp.size, cp.root, witness, line.rstrip("\n"), note, time_),
        )
        if cur.rowcount == 1:
            store.add_cosignature(cp.origin, cp.size, witness, line.rstrip("\n"), time_)
            return True
        return False

    async def append_mirror(
        self,
        origin: str,
        key: PublicKey,
        start: int,
        leaves: list[bytes],
        sc: SignedCheckpoint | None,
    ) -> bool:
        """Append verified leaves at ``start`` of ``origin``'s mirror (and its checkpoint)."""
        vkey = key.to_vkey(origin)
        rows = [leaf_row(leaf) for leaf in leaves]
        note = None
        if sc is not None:
            note = SignedCheckpoint(
                sc.checkpoint, tuple(s for s in sc.signatures if s.name == origin)
            ).to_text()
        now = self.now()

        def fn(store: Store) -> bool:
            with store.atomic():
                info = store.ensure_log(origin, own=False, vkey=vkey)
                if info.frozen is None:
                    proven = store.conn.execute(
                        "SELECT id FROM proofs WHERE origin = ? AND kind = 'split-view' LIMIT 1",
                        (origin,),
                    ).fetchone()
                    if proven is not None:  # a proof arrived before the mirror: freeze it now
                        store.freeze(origin, f"split view proven: proof {proven[0]}")
                        return False
                if info.frozen or info.size != start:
                    return False
                store.append_leaves(origin, rows)
                if sc is not None and note is not None:
                    cp = sc.checkpoint
                    store.add_checkpoint(origin, cp.size, cp.root, note, now)
            return True

        return await self.write_store(fn)

    def peer_finding(self, url: str, origin: str | None, kind: str, message: str) -> None:
        """Record a misbehaviour of a peer (not of the log it relayed)."""
        item = {"peer": url, "origin": origin, "kind": kind, "message": message, "time": self.now()}
        self.peer_findings.append(item)
        del self.peer_findings[:-1000]
        log.warning("peer %s: %s: %s", url, kind, message)

    def peer_failed(self, url: str, message: str) -> None:
        st = self.peer_state.setdefault(url, {"ok": 0, "failed": 0})
        st["failed"] += 1
        st["last_error"] = message

    def peer_ok(self, url: str) -> None:
        st = self.peer_state.setdefault(url, {"ok": 0, "failed": 0})
        st["ok"] += 1
        st["last_ok"] = self.now()
        st["last_error"] = None

    # Lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay what is stored; with ``auto``, start the sync and tick loops."""
        await self.query(self.replay_all)
        if self.config.auto:
            self._tasks.append(asyncio.create_task(self._tick_loop(), name="federation-tick"))

    async def _tick_loop(self) -> None:
        while True:
            try:
                self._refresh_loops()
                await self.tick()
            except asyncio.CancelledError:
                raise
            except LiquideError as exc:
                log.warning("federation tick failed: %s", exc.message)
            except Exception:
                log.exception("federation tick failed")
            await asyncio.sleep(self.config.tick_interval_s)

    def _refresh_loops(self) -> None:
        pins = {p.url: p for p in self.peers()}
        for url in list(self._loops):
            sync = self._syncs.get(url)
            if url not in pins or sync is None or sync.pin != pins[url]:
                self._loops.pop(url).cancel()
        for url, pin in pins.items():
            if url not in self._loops:
                sync = self._sync_for(pin)

                def counted(report: RoundReport, url: str = url) -> None:
                    self.rounds[url] = self.rounds.get(url, 0) + 1

                self._loops[url] = asyncio.create_task(
                    run_peer_loop(
                        sync,
                        self.config.sync_interval_s,
                        self.config.backoff_max_s,
                        on_round=counted,
                        rng=self._rng,
                    ),
                    name=f"sync {url}",
                )

    async def stop(self) -> None:
        """Stop the loops, close the transports and the replay thread."""
        tasks = [*self._tasks, *self._loops.values()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        self._loops.clear()
        for sync in self._syncs.values():
            with contextlib.suppress(Exception):
                await sync.close()
        self._syncs.clear()
        for wp in self.pusher.witnesses.values():
            with contextlib.suppress(Exception):
                await wp.transport.close()
        self.pusher.witnesses.clear()
        self._replay_exec.shutdown(wait=True)
        if self._replay_store is not None:
            self._replay_store.close()
            self._replay_store = None

    # Reads for the HTTP API (replay thread) --------------------------------------------------

    def attestations(self, issue: str) -> dict[str, Any]:
        """Every attestation of ``issue`` known from every replayed log, and whether they agree."""
        items: list[dict[str, Any]] = []
        for origin, rep in sorted(self._logs.items()):
            for rid, att in rep.state.attestations.items():
                if att.issue == issue:
                    items.append(
                        {"origin": origin, "record": rid, "digest": att.digest, "index": att.index}
                    )
        records: list[str] = sorted({str(i["record"]) for i in items})
        by_record = {
            r: sorted({str(i["digest"]) for i in items if i["record"] == r}) for r in records
        }
        disagreements = [{"record": r, "digests": d} for r, d in by_record.items() if len(d) > 1]
        digests = sorted({str(i["digest"]) for i in items})
        mine = self._records.get(issue)
        return {
            "issue": issue,
            "attestations": items,
            "records": records,
            "agree": bool(items) and len(records) == 1 and len(digests) == 1,
            "disagreements": disagreements,
            "split_records": len(records) > 1,
            "ours": None if mine is None else {"record": mine.id, "digest": mine.digest},
            "waiting": self.waiting(issue),
        }

    def record(self, issue: str) -> dict[str, Any] | None:
        rec = self._records.get(issue)
        return None if rec is None else rec.to_dict()

    def waiting(self, issue: str) -> list[dict[str, str]]:
        """The members whose part of ``issue``'s record waits for evidence, and for what."""
        return list(self._pending.get(issue, []))

    def record_input(self, issue: str) -> dict[str, Any] | None:
        """The TallyInput of the settled record of ``issue`` (None if not settled here)."""
        rec = self._records.get(issue)
        return None if rec is None else rec.input

    def findings(self) -> list[dict[str, Any]]:
        out = []
        for _origin, rep in sorted(self._logs.items()):
            out += [f.to_dict() for f in rep.findings]
        for rec in self._records.values():
            out += [f.to_dict() for f in rec.findings]
        return out

    def status(self) -> dict[str, Any]:
        trust = self._trust
        return {
            "origin": self.origin,
            "trusted": {o: k.to_text() for o, k in sorted(trust.logs.items())},
            "witnesses": {n: k.to_text() for n, k in sorted(trust.witnesses.items())},
            "pin_conflicts": list(trust.conflicts),
            "peers": [
                {
                    "url": p.url,
                    "origin": p.origin,
                    "rounds": self.rounds.get(p.url, 0),
                    **self.peer_state.get(p.url, {}),
                }
                for p in self.peers(self._rs())
            ],
            "pushes": self.pusher.status(),
            "peer_findings": self.peer_findings[-100:],
            "replayed": {o: r.state.size for o, r in sorted(self._logs.items())},
            "pending_records": {i: list(w) for i, w in sorted(self._pending.items())},
        }


_SIG_MARK = b',"sig":"'
_AUTHOR = b'{"author":"'


def leaf_row(leaf: bytes) -> LeafRow:
    """The store row of a mirrored leaf, its index columns read without a full decode.

    For a canonical event the id is exactly :attr:`Event.id` (the SHA-256 of the leaf without its
    ``sig`` member, which in canonical form is the last ``,"sig":"…",``; the envelope's keys are
    sorted, so ``author`` comes first and ``seq`` just before ``sig``). A leaf that does not have
    that shape is indexed by the SHA-256 of its bytes; replay judges every leaf in full anyway.
    """
    start = leaf.rfind(_SIG_MARK)
    end = start + len(_SIG_MARK) + 88
    if start > 0 and leaf.startswith(_AUTHOR) and leaf[end : end + 2] == b'",':
        unsigned = leaf[: start + 1] + leaf[end + 2 :]
        seq_at = leaf.rfind(b',"seq":', 0, start)
        type_at = leaf.find(b',"type":"', end)
        type_end = leaf.find(b'"', type_at + 9)
        seq_text = leaf[seq_at + 7 : start]
        if (
            seq_at > 0
            and type_at > 0
            and type_end > 0
            and seq_text.isdigit()
            and len(seq_text) < 17
        ):
            return LeafRow(
                hashlib.sha256(unsigned).hexdigest(),
                leaf,
                leaf[11:74].decode("ascii", "replace"),
                int(seq_text),
                leaf[type_at + 9 : type_end].decode("ascii", "replace"),
            )
    return LeafRow(hashlib.sha256(leaf).hexdigest(), leaf)


# HTTP routes ----------------------------------------------------------------------------------------

FED_KEY = web.AppKey("federation", Federation)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _fed(request: web.Request) -> Federation:
    return request.app[FED_KEY]


def _issue_param(request: web.Request) -> str:
    issue = request.match_info["issue"]
    if not _HEX64.match(issue):
        raise RequestError(f"issue id {issue!r} is not a lower-case hex SHA-256 id")
    return issue


def _int_query(request: web.Request, name: str, default: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"0|[1-9][0-9]{0,15}", raw) or int(raw) > hi:
        raise RequestError(f"query parameter {name}={raw!r} must be an integer in [0, {hi}]")
    return int(raw)


async def _add_checkpoint(request: web.Request) -> web.Response:
    return await add_checkpoint_handler(request, _fed(request))


async def _cosignatures(request: web.Request) -> web.Response:
    """``GET /v1/cosignatures?after=SEQ&limit=N``: the feed of verified cosignatures."""
    fed = _fed(request)
    after = _int_query(request, "after", 0, 2**53)
    limit = max(1, _int_query(request, "limit", fed.config.max_feed, fed.config.max_feed))
    rows = fed.reader.conn.execute(
        "SELECT seq, origin, size, witness, note, time FROM fed_cosigs WHERE seq > ?"
        " ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    items = [
        {"seq": r[0], "origin": r[1], "size": r[2], "witness": r[3], "note": r[4], "time": r[5]}
        for r in rows
    ]
    return web.json_response({"cosignatures": items})


async def _attestations(request: web.Request) -> web.Response:
    """``GET /v1/issues/{id}/attestations``: every attestation known, flagged if they differ."""
    fed = _fed(request)
    issue = _issue_param(request)
    return web.json_response(await fed.query(lambda: fed.attestations(issue)))


async def _record(request: web.Request) -> web.Response:
    """``GET /v1/issues/{id}/record``: this node's record of the issue, its parts and flags."""
    fed = _fed(request)
    issue = _issue_param(request)
    rec, waiting = await fed.query(lambda: (fed.record(issue), fed.waiting(issue)))
    if rec is None:
        message = f"the record of issue {issue} is not complete here yet"
        if waiting:
            message += ": waiting for " + "; ".join(
                f"{w['reason']} from {w['origin']}" if w["origin"] else w["reason"] for w in waiting
            )
        raise RecordPendingError(message, waiting)
    return web.json_response(rec)


async def _findings(request: web.Request) -> web.Response:
    """``GET /v1/findings``: replay findings of every log held (bounded pages)."""
    fed = _fed(request)
    offset = _int_query(request, "offset", 0, 2**53)
    limit = max(1, _int_query(request, "limit", 1000, 10_000))
    items = await fed.query(fed.findings)
    return web.json_response(
        {"findings": items[offset : offset + limit], "total": len(items), "offset": offset}
    )


async def _event(request: web.Request) -> web.Response:
    """``GET /v1/events/{id}``: an event of any log held here, by id (definitions to join)."""
    fed = _fed(request)
    event_id = request.match_info["event_id"]
    if not _HEX64.match(event_id):
        raise RequestError(f"event id {event_id!r} is not a lower-case hex SHA-256 id")
    row = fed.reader.conn.execute(
        "SELECT origin, idx, leaf FROM entries WHERE event_id = ? ORDER BY origin, idx LIMIT 1",
        (event_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no log held here contains event {event_id}")
    leaf = bytes(row[2])
    try:
        event = Event.decode(leaf).to_dict()
    except ProtocolError as exc:
        raise NotFoundError(f"event {event_id} does not decode: {exc.message}") from None
    return web.json_response({"origin": row[0], "index": row[1], "event": event})


async def _status(request: web.Request) -> web.Response:
    """``GET /v1/federation``: pins, peers, witnesses and peer findings."""
    fed = _fed(request)
    return web.json_response(await fed.query(fed.status))


def install(app: web.Application, node: Node) -> Federation:
    """Attach the federation to ``node`` and its app: tables, routes and lifecycle.

    The federation starts after the node (it needs the writer) and stops before it.
    ``node.extra`` may carry ``federation_config`` and ``transport_factory`` (simulations).
    """
    config = node.extra.get("federation_config")
    if not isinstance(config, FederationConfig):
        config = load_federation_config(node.data_dir)
    apply_migrations(node.store)
    fed = Federation(node, config, node.extra.get("transport_factory"))
    node.extra["federation"] = fed
    app[FED_KEY] = fed
    app.router.add_post("/v1/witness/add-checkpoint", _add_checkpoint)
    app.router.add_get("/v1/cosignatures", _cosignatures)
    app.router.add_get("/v1/issues/{issue}/attestations", _attestations)
    app.router.add_get("/v1/issues/{issue}/record", _record)
    app.router.add_get("/v1/findings", _findings)
    app.router.add_get("/v1/federation", _status)
    app.router.add_get("/v1/events/{event_id}", _event)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await fed.start()
        yield
        await fed.stop()

    app.cleanup_ctx.append(lifecycle)
    return fed


# Admin operations (run on the writer thread, through the admin socket or offline) ------------------


def _find_event(store: Store, event_id: str, type_: str) -> Event:
    if not _HEX64.match(event_id or ""):
        raise RequestError(f"{event_id!r} is not a lower-case hex event id")
    rows = store.conn.execute(
        "SELECT leaf FROM entries WHERE event_id = ? AND type = ?", (event_id, type_)
    ).fetchall()
    for (leaf,) in rows:
        try:
            ev = Event.decode(bytes(leaf))
            ev.verify()
        except LiquideError:
            continue
        if ev.id == event_id:
            return ev
    raise NotFoundError(
        f"no {type_} event {event_id} in any log held here; sync with a peer that holds it first"
    )


def _given_event(d: Any, event_id: str, type_: str) -> Event:
    """A signed event handed in (fetched from any node): it must be the one with that id."""
    try:
        ev = Event.from_dict(d)
        ev.verify()
    except LiquideError as exc:
        raise RequestError(
            f"the given {type_} definition is not a valid signed event: {exc}"
        ) from None
    if ev.id != event_id or ev.type != type_:
        raise RequestError(f"the given definition is not the {type_} event {event_id}")
    return ev


def assembly_join(w: Writer, assembly: str, definition: Any = None) -> dict[str, Any]:
    """Join an assembly defined in another member city's log (carrying its signed definition).

    The definition is looked up in the logs held here, or taken from ``definition`` (the signed
    event, fetched from any node: its id is the assembly id, so where it came from is moot).
    """
    if definition is not None:
        ev = _given_event(definition, assembly, "assembly")
    else:
        ev = _find_event(w.store, assembly, "assembly")
    body = ev.body
    assert isinstance(body, AssemblyBody)
    if body.member(w.origin) is None:
        raise ConflictError(f"{w.origin} is not a member city of assembly {assembly}")
    acc = w.append_own("assembly.join", {"assembly": ev.to_dict()})
    return {"event_id": acc.event_id, "index": acc.index, "receipt": acc.receipt}


def issue_adopt(w: Writer, issue: str) -> dict[str, Any]:
    """Adopt an issue defined by another member city (carrying its signed issue and area)."""
    ev = _find_event(w.store, issue, "issue")
    body = ev.body
    assert isinstance(body, IssueBody)
    area = _find_event(w.store, body.area, "area")
    assert isinstance(area.body, AreaBody)
    acc = w.append_own("issue.adopt", {"issue": ev.to_dict(), "area": area.to_dict()})
    return {"event_id": acc.event_id, "index": acc.index, "receipt": acc.receipt}


def check_peer(url: str, origin: str, key: str) -> tuple[str, str, str]:
    """Validate a peer pin; return ``(url, origin, vkey)``. Raises :class:`RequestError`."""
    if not isinstance(url, str) or not _URL.match(url):
        raise RequestError(f"peer URL {url!r} must be http(s)://HOST[:PORT]/")
    url = url.rstrip("/") + "/"
    try:
        if "+" in key:
            name, pk = PublicKey.from_vkey(key)
            if name != origin:
                raise RequestError(
                    f"the verifier key is named {name!r}, not the peer's origin {origin!r}"
                )
        else:
            pk = PublicKey.from_text(key)
    except KeyFormatError as exc:
        raise RequestError(f"peer key {key!r}: {exc.message}") from None
    try:
        vkey = pk.to_vkey(origin)
    except KeyFormatError as exc:
        raise RequestError(f"peer origin {origin!r}: {exc.message}") from None
    return url, origin, vkey


def peer_add(w: Writer, url: str, origin: str, key: str) -> dict[str, Any]:
    """Pin a peer by URL with its origin and key (a C2SP verifier key or lqpk1…)."""
    url, origin, vkey = check_peer(url, origin, key)
    if origin == w.origin:
        raise RequestError(f"{origin} is this node's own origin")
    with w.store.atomic():
        w.store.add_peer(url, origin, vkey)
    return {"url": url, "origin": origin, "vkey": vkey}


def peer_remove(w: Writer, url: str) -> dict[str, Any]:
    """Forget a peer."""
    url = url.rstrip("/") + "/"
    with w.store.atomic():
        removed = w.store.remove_peer(url)
    if not removed:
        raise NotFoundError(f"{url} is not a configured peer")
    return {"url": url, "removed": True}


def peer_list(w: Writer) -> dict[str, Any]:
    """Every configured peer with its pin and the outcome of the last round."""
    return {"peers": w.store.peers()}


OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "assembly.join": assembly_join,
    "issue.adopt": issue_adopt,
    "peer.add": peer_add,
    "peer.remove": peer_remove,
    "peer.list": peer_list,
}


def register_operations() -> None:
    """Make the federation's admin operations available to the admin socket."""
    from . import _registrar

    for name, fn in OPERATIONS.items():
        _registrar.OPERATIONS.setdefault(name, fn)


register_operations()


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.1
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
