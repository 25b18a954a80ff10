"""The node's durable store: one SQLite database per data directory, through sqlite-utils.

What it holds, per origin (the city's own log and the mirrors of other cities' logs):

* ``logs``: one row per origin — whether it is ours, its verifier key, its size and the peaks of
  its compact range, and the reason it is frozen if a split view was proven;
* ``entries``: every leaf (the event's canonical signed bytes) with its index, leaf hash, event
  id, author and ``seq``;
* ``nodes``: every complete interior subtree hash that :meth:`protocol.merkle.CompactRange.append`
  produced, so that any inclusion or consistency proof needs O(log n) lookups (level 0 is read
  from ``entries``);
* ``checkpoints`` with their ``cosignatures``, misbehaviour ``proofs``, ``peers`` with their
  sync cursors, governance indexes of the own log (``enrolments``, ``assemblies``, ``areas``,
  ``issues``, ``delegations``, ``ballots``, chain ``heads``), ``snapshots`` of the replay state
  and cached ``tallies``. Receipts of the single form are not stored: they are deterministic
  signatures over a leaf's index and append time, signed again on demand. Each signed batch
  receipt is (``batches``: its first index, count, root, time and signature), so that an event
  of a batch gets back the receipt first issued, its path rebuilt from the stored leaf hashes.

Durability and writers:

* WAL mode with ``synchronous=FULL``: a transaction is on disk when ``COMMIT`` returns, so the
  node signs checkpoints and receipts only over durable entries.
* Exactly one writer per data directory: :meth:`Store.open` with ``writer=True`` takes an
  exclusive ``fcntl.flock`` on ``writer.lock`` and raises :class:`~node.errors.LockedError`
  naming the holder's pid when another process has it. Readers (the HTTP handlers' own
  connection, ``node status``) take no lock and set ``query_only``.
* Multi-row writes happen inside :meth:`Store.atomic` (sqlite-utils ``db.atomic()``), so a crash
  leaves either all or none of an append: leaves, tree nodes, peaks and indexes together.

Schema changes are sqlite-utils migrations, in code, below (:data:`MIGRATIONS`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils
from sqlite_utils.migrations import Migrations

from protocol.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_at,
)

from .config import DB_FILE, LOCK_FILE
from .errors import IntegrityError, LockedError, NotFoundError, StoreError

__all__ = [
    "MIGRATIONS",
    "BatchRow",
    "CheckpointRow",
    "LeafRow",
    "LogInfo",
    "Store",
    "WriterLock",
    "event_key",
]

MIGRATIONS = Migrations("liquide.node")


@MIGRATIONS()
def m001_logs(db: sqlite_utils.Database) -> None:
    """Logs, leaves, tree nodes, checkpoints, cosignatures, proofs, peers and chain heads."""
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE logs (
            origin TEXT PRIMARY KEY,
            own INTEGER NOT NULL,
            vkey TEXT,
            size INTEGER NOT NULL,
            peaks BLOB NOT NULL,
            frozen TEXT
        );
        CREATE TABLE entries (
            origin TEXT NOT NULL,
            idx INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            leaf BLOB NOT NULL,
            leaf_hash BLOB NOT NULL,
            author TEXT,
            seq INTEGER,
            type TEXT,
            time INTEGER NOT NULL,
            PRIMARY KEY (origin, idx)
        ) WITHOUT ROWID;
        CREATE INDEX entries_event ON entries (event_id);
        CREATE TABLE nodes (
            origin TEXT NOT NULL,
            level INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY (origin, level, idx)
        ) WITHOUT ROWID;
        CREATE TABLE checkpoints (
            origin TEXT NOT NULL,
            size INTEGER NOT NULL,
            root BLOB NOT NULL,
            note TEXT NOT NULL,
            time INTEGER NOT NULL,
            PRIMARY KEY (origin, size)
        ) WITHOUT ROWID;
        CREATE TABLE cosignatures (
            origin TEXT NOT NULL,
            size INTEGER NOT NULL,
            witness TEXT NOT NULL,
            line TEXT NOT NULL,
            time INTEGER NOT NULL,
            PRIMARY KEY (origin, size, witness)
        ) WITHOUT ROWID;
        CREATE TABLE proofs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            origin TEXT,
            body TEXT NOT NULL,
            time INTEGER NOT NULL
        );
        CREATE TABLE peers (
            url TEXT PRIMARY KEY,
            origin TEXT NOT NULL,
            vkey TEXT NOT NULL,
            cursor TEXT NOT NULL DEFAULT '{}',
            last_ok INTEGER,
            last_error TEXT
        );
        CREATE TABLE heads (
            origin TEXT NOT NULL,
            author TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (origin, author)
        ) WITHOUT ROWID;
        """
    )


@MIGRATIONS()
def m002_governance(db: sqlite_utils.Database) -> None:
    """Indexes of the own log's governance state, for the read API."""
    db.executescript(
        """
        CREATE TABLE enrolments (
            key TEXT PRIMARY KEY,
            ref TEXT,
            active INTEGER NOT NULL,
            idx INTEGER NOT NULL
        );
        CREATE TABLE assemblies (id TEXT PRIMARY KEY, idx INTEGER NOT NULL, body TEXT NOT NULL);
        CREATE TABLE areas (
            id TEXT PRIMARY KEY,
            assembly TEXT NOT NULL,
            idx INTEGER NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX areas_assembly ON areas (assembly);
        CREATE TABLE issues (
            id TEXT PRIMARY KEY,
            area TEXT NOT NULL,
            assembly TEXT,
            idx INTEGER NOT NULL,
            opens INTEGER NOT NULL,
            closes INTEGER NOT NULL,
            body TEXT NOT NULL,
            sealed_idx INTEGER
        );
        CREATE INDEX issues_closes ON issues (sealed_idx, closes);
        CREATE TABLE delegations (
            author TEXT NOT NULL,
            scope TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            trustees TEXT NOT NULL,
            idx INTEGER NOT NULL,
            PRIMARY KEY (author, scope, scope_id)
        ) WITHOUT ROWID;
        CREATE TABLE ballots (
            author TEXT NOT NULL,
            issue TEXT NOT NULL,
            grades TEXT NOT NULL,
            idx INTEGER NOT NULL,
            PRIMARY KEY (author, issue)
        ) WITHOUT ROWID;
        CREATE TABLE snapshots (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, state TEXT NOT NULL);
        CREATE TABLE tallies (
            issue TEXT NOT NULL,
            record_id TEXT NOT NULL,
            result TEXT NOT NULL,
            PRIMARY KEY (issue, record_id)
        );
        """
    )


def event_key(event_id: str) -> int:
    """The 60-bit integer prefix of an event id that ``entries`` indexes (cheaper than text)."""
    return int(event_id[:15], 16)


@MIGRATIONS()
def m003_event_key(db: sqlite_utils.Database) -> None:
    """Index entries by an integer prefix of the event id instead of the 64-character text."""
    db.conn.create_function("liquide_event_key", 1, event_key, deterministic=True)
    db.executescript(
        """
        ALTER TABLE entries ADD COLUMN event_key INTEGER NOT NULL DEFAULT 0;
        UPDATE entries SET event_key = liquide_event_key(event_id);
        DROP INDEX entries_event;
        CREATE INDEX entries_event_key ON entries (event_key);
        """
    )


@MIGRATIONS()
def m004_batches(db: sqlite_utils.Database) -> None:
    """Batch receipts: one signed statement per run of leaves appended from ``events:batch``."""
    db.executescript(
        """
        CREATE TABLE batches (
            origin TEXT NOT NULL,
            first INTEGER NOT NULL,
            count INTEGER NOT NULL,
            root BLOB NOT NULL,
            time INTEGER NOT NULL,
            sig BLOB NOT NULL,
            PRIMARY KEY (origin, first)
        ) WITHOUT ROWID;
        """
    )


# Rows ---------------------------------------------------------------------------------------


class LeafRow(NamedTuple):
    """One leaf to append: the event's canonical signed bytes and what indexes it.

    A named tuple: the writer builds one per ingested event, at a fifth of a dataclass's cost.
    """

    event_id: str
    leaf: bytes
    author: str | None = None
    seq: int | None = None
    type: str | None = None
    time: int = 0
    """When this node appended the leaf (its clock, Unix seconds); receipts carry it."""


@dataclass(frozen=True, slots=True)
class LogInfo:
    """The stored state of one log (own or mirror)."""

    origin: str
    own: bool
    vkey: str | None
    size: int
    peaks: tuple[bytes, ...]
    frozen: str | None

    def compact_range(self) -> CompactRange:
        """The log's compact range (its size and peaks)."""
        return CompactRange(self.size, self.peaks)

    def root(self) -> bytes:
        """The root of the whole stored log."""
        return self.compact_range().root() if self.size else EMPTY_ROOT


@dataclass(frozen=True, slots=True)
class BatchRow:
    """A stored batch receipt: leaves ``[first, first + count)`` with their batch root, signed."""

    origin: str
    first: int
    count: int
    root: bytes
    time: int
    sig: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A stored signed checkpoint: its size, root, full signed-note text and when it was stored."""

    origin: str
    size: int
    root: bytes
    note: str
    time: int


def _peaks_blob(peaks: Sequence[bytes]) -> bytes:
    return b"".join(peaks)


def _peaks_of(blob: bytes) -> tuple[bytes, ...]:
    return tuple(blob[i : i + 32] for i in range(0, len(blob), 32))


# Locking ------------------------------------------------------------------------------------


class WriterLock:
    """An exclusive, non-blocking ``flock`` on ``writer.lock``; released when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockedError` naming the pid that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(
                f"another process (pid {holder}) is the writer of {self.path.parent}; "
                "stop it first, or run admin commands while it serves (they use its socket)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# The store ----------------------------------------------------------------------------------


class _Reader:
    """A :class:`protocol.merkle.NodeReader` over one origin's stored nodes."""

    __slots__ = ("_conn", "_origin")

    def __init__(self, conn: sqlite3.Connection, origin: str) -> None:
        self._conn = conn
        self._origin = origin

    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._conn.execute(
                "SELECT leaf_hash FROM entries WHERE origin = ? AND idx = ?", (self._origin, index)
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT hash FROM nodes WHERE origin = ? AND level = ? AND idx = ?",
                (self._origin, level, index),
            ).fetchone()
        if row is None:
            raise IntegrityError(f"{self._origin}: tree node ({level}, {index}) is missing")
        return bytes(row[0])


class Store:
    """One connection to a data directory's database; see the module docstring.

    Methods are synchronous and not thread-safe: a store belongs to one thread at a time (the
    server gives the writer its own store and thread, and readers their own connection).
    """

    def __init__(
        self, path: Path, conn: sqlite3.Connection, lock: WriterLock | None, *, writer: bool
    ) -> None:
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.writer = writer
        self._lock = lock

    # Opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path, *, writer: bool = True, create: bool = False) -> Store:
        """Open ``data_dir/node.db``; as the writer, take the lock and apply migrations.

        Returns the store. Raises :class:`LockedError` if another process writes there,
        :class:`StoreError` if the database is missing (unless ``create``) or unreadable.
        """
        data_dir = Path(data_dir)
        path = data_dir / DB_FILE
        if not create and not path.exists():
            raise StoreError(f"{path} does not exist", code="not_initialised")
        lock: WriterLock | None = None
        if writer:
            lock = WriterLock(data_dir / LOCK_FILE)
            lock.acquire()
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            if writer:
                conn.execute("PRAGMA journal_mode = WAL")
                # The WAL is copied back into the database every 20,000 pages (about 80 MB at
                # 4 KiB), not SQLite's default 1,000: one commit of a 1,000-event batch writes
                # more than that, so every such commit also ran a checkpoint on the writer
                # thread, copying the pages it had just written with a second fsync. At 20,000
                # the copy runs every few batches, and pages that several commits rewrite (chain
                # heads, index pages) are copied once. Durability is the WAL's and does not
                # change: a commit is on disk when it returns (synchronous=FULL).
                conn.execute("PRAGMA wal_autocheckpoint = 20000")
            conn.execute("PRAGMA synchronous = FULL")
            if writer:
                MIGRATIONS.apply(sqlite_utils.Database(conn))
            else:
                conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            if lock is not None:
                lock.release()
            raise StoreError(f"cannot open {path}: {exc}") from None
        return cls(path, conn, lock, writer=writer)

    def reader(self) -> Store:
        """A new read-only connection to the same database (for another thread)."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA query_only = ON")
        return Store(self.path, conn, None, writer=False)

    def close(self) -> None:
        """Close the connection and release the writer lock."""
        with contextlib.suppress(sqlite3.Error):
            if self.writer:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def pragma(self, name: str) -> Any:
        """The value of ``PRAGMA name`` (tests assert ``synchronous`` is 2, FULL)."""
        if not name.isidentifier():
            raise ValueError(name)
        return self.conn.execute(f"PRAGMA {name}").fetchone()[0]

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction (a savepoint when nested); all or nothing of what happens inside."""
        with self.db.atomic():
            yield

    # Meta -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table (the own origin, the schema's creation), or None."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value."""
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # Logs ---------------------------------------------------------------------------------------

    def ensure_log(self, origin: str, *, own: bool, vkey: str | None) -> LogInfo:
        """Create the log row for ``origin`` if absent; return its info.

        Raises :class:`StoreError` if ``origin`` exists with a different ownership or key.
        """
        info = self.log(origin)
        if info is None:
            self.conn.execute(
                "INSERT INTO logs (origin, own, vkey, size, peaks) VALUES (?, ?, ?, 0, x'')",
                (origin, int(own), vkey),
            )
            return LogInfo(origin, own, vkey, 0, (), None)
        if info.own != own or (vkey is not None and info.vkey not in (None, vkey)):
            raise StoreError(f"log {origin} is already held with another key or role")
        return info

    def own_origin(self) -> str:
        """The origin of this node's own log; :class:`StoreError` if not initialised."""
        value = self.get_meta("origin")
        if value is None:
            raise StoreError(f"{self.path} has no own log", code="not_initialised")
        return value

    def log(self, origin: str) -> LogInfo | None:
        """The stored state of ``origin``'s log, or None."""
        row = self.conn.execute(
            "SELECT origin, own, vkey, size, peaks, frozen FROM logs WHERE origin = ?", (origin,)
        ).fetchone()
        if row is None:
            return None
        return LogInfo(row[0], bool(row[1]), row[2], row[3], _peaks_of(bytes(row[4])), row[5])

    def logs(self) -> list[LogInfo]:
        """Every log held (own first, then mirrors by origin)."""
        rows = self.conn.execute(
            "SELECT origin, own, vkey, size, peaks, frozen FROM logs ORDER BY own DESC, origin"
        ).fetchall()
        return [LogInfo(r[0], bool(r[1]), r[2], r[3], _peaks_of(bytes(r[4])), r[5]) for r in rows]

    def freeze(self, origin: str, reason: str) -> None:
        """Stop extending ``origin``'s mirror (a split view was proven); keep its prefix."""
        self.conn.execute("UPDATE logs SET frozen = ? WHERE origin = ?", (reason, origin))

    def _require(self, origin: str) -> LogInfo:
        info = self.log(origin)
        if info is None:
            raise NotFoundError(f"this node holds no log {origin!r}")
        return info

    # Entries and the tree ---------------------------------------------------------------------

    def append_leaves(
        self, origin: str, rows: Sequence[LeafRow], *, hashes: list[bytes] | None = None
    ) -> CompactRange:
        """Append ``rows`` to ``origin``'s log with their tree nodes; return the new range.

        Must run inside :meth:`atomic` together with whatever else belongs to the append. The
        rows' leaf hashes are added to ``hashes`` if given (batch receipts are built on them).
        """
        if not self.conn.in_transaction:
            raise StoreError("append_leaves must run inside a transaction")
        info = self._require(origin)
        cr = info.compact_range()
        start = cr.size
        entry_rows = []
        node_rows = []
        append = cr.append
        for i, r in enumerate(rows):
            h = leaf_hash(r.leaf)
            for level, index, value in append(h)[1:]:
                node_rows.append((origin, level, index, value))
            if hashes is not None:
                hashes.append(h)
            entry_rows.append(
                (
                    origin,
                    start + i,
                    r.event_id,
                    r.leaf,
                    h,
                    r.author,
                    r.seq,
                    r.type,
                    r.time,
                    int(r.event_id[:15], 16),
                )
            )
        self.conn.executemany(
            "INSERT INTO entries (origin, idx, event_id, leaf, leaf_hash, author, seq, type, time,"
            " event_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            entry_rows,
        )
        self.conn.executemany(
            "INSERT INTO nodes (origin, level, idx, hash) VALUES (?, ?, ?, ?)", node_rows
        )
        self.conn.execute(
            "UPDATE logs SET size = ?, peaks = ? WHERE origin = ?",
            (cr.size, _peaks_blob(cr.peaks), origin),
        )
        return cr

    def leaf(self, origin: str, index: int) -> bytes:
        """The leaf bytes at ``index``; :class:`NotFoundError` beyond the log."""
        row = self.conn.execute(
            "SELECT leaf FROM entries WHERE origin = ? AND idx = ?", (origin, index)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"{origin} has no entry {index}")
        return bytes(row[0])

    def leaves(self, origin: str, start: int, end: int) -> list[bytes]:
        """Leaf bytes of ``[start, end)`` (fewer if the log is shorter)."""
        rows = self.conn.execute(
            "SELECT leaf FROM entries WHERE origin = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (origin, start, end),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def iter_leaves(self, origin: str, start: int = 0, chunk: int = 5000) -> Iterator[bytes]:
        """Every leaf from ``start`` on, read in chunks."""
        pos = start
        while True:
            batch = self.leaves(origin, pos, pos + chunk)
            yield from batch
            if len(batch) < chunk:
                return
            pos += chunk

    def leaf_hashes(self, origin: str, start: int, end: int) -> list[bytes]:
        """The stored leaf hashes of ``[start, end)`` (fewer if the log is shorter)."""
        rows = self.conn.execute(
            "SELECT leaf_hash FROM entries WHERE origin = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (origin, start, end),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def find_event(self, origin: str, event_id: str) -> int | None:
        """The index of ``event_id`` in ``origin``'s log (its first occurrence), or None."""
        found = self.locate(origin, event_id)
        return None if found is None else found[0]

    def locate(self, origin: str, event_id: str) -> tuple[int, int] | None:
        """``(index, append time)`` of ``event_id``'s first occurrence in ``origin``, or None."""
        try:
            key = event_key(event_id)
        except ValueError:
            return None
        row = self.conn.execute(
            "SELECT idx, time FROM entries WHERE event_key = ? AND event_id = ? AND origin = ?"
            " ORDER BY idx LIMIT 1",
            (key, event_id, origin),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def node_reader(self, origin: str) -> _Reader:
        """A :class:`protocol.merkle.NodeReader` over ``origin``'s stored tree."""
        return _Reader(self.conn, origin)

    def root_at(self, origin: str, size: int) -> bytes:
        """The root of ``origin``'s first ``size`` leaves (O(log n) lookups)."""
        self._check_size(origin, size)
        return root_at(self.node_reader(origin), size)

    def inclusion_proof(self, origin: str, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        self._check_size(origin, size)
        if not 0 <= index < size:
            raise NotFoundError(f"index {index} is not below the tree size {size}")
        return inclusion_proof(self.node_reader(origin), index, size)

    def consistency_proof(self, origin: str, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes of ``origin``'s log."""
        self._check_size(origin, new_size)
        if not 0 <= old_size <= new_size:
            raise NotFoundError(f"old size {old_size} is not within [0, {new_size}]")
        return consistency_proof(self.node_reader(origin), old_size, new_size)

    def _check_size(self, origin: str, size: int) -> None:
        info = self._require(origin)
        if not 0 <= size <= info.size:
            raise NotFoundError(f"{origin} holds {info.size} entries, not {size}")

    # Checkpoints and cosignatures -------------------------------------------------------------

    def add_checkpoint(self, origin: str, size: int, root: bytes, note: str, time: int) -> None:
        """Store a signed checkpoint (idempotent for the same size and root).

        Raises :class:`IntegrityError` if a checkpoint of that size with another root is stored:
        the caller is about to hold a split view.
        """
        row = self.conn.execute(
            "SELECT root FROM checkpoints WHERE origin = ? AND size = ?", (origin, size)
        ).fetchone()
        if row is not None:
            if bytes(row[0]) != root:
                raise IntegrityError(f"{origin}: a checkpoint of size {size} with another root")
            return
        self.conn.execute(
            "INSERT INTO checkpoints (origin, size, root, note, time) VALUES (?, ?, ?, ?, ?)",
            (origin, size, root, note, time),
        )

    def latest_checkpoint(self, origin: str) -> CheckpointRow | None:
        """The largest stored checkpoint of ``origin``, or None."""
        row = self.conn.execute(
            "SELECT origin, size, root, note, time FROM checkpoints WHERE origin = ?"
            " ORDER BY size DESC LIMIT 1",
            (origin,),
        ).fetchone()
        return None if row is None else CheckpointRow(row[0], row[1], bytes(row[2]), row[3], row[4])

    def checkpoint(self, origin: str, size: int) -> CheckpointRow | None:
        """The stored checkpoint of ``origin`` at exactly ``size``, or None."""
        row = self.conn.execute(
            "SELECT origin, size, root, note, time FROM checkpoints WHERE origin = ? AND size = ?",
            (origin, size),
        ).fetchone()
        return None if row is None else CheckpointRow(row[0], row[1], bytes(row[2]), row[3], row[4])

    def checkpoints(self, origin: str) -> list[CheckpointRow]:
        """Every stored checkpoint of ``origin``, smallest first."""
        rows = self.conn.execute(
            "SELECT origin, size, root, note, time FROM checkpoints WHERE origin = ? ORDER BY size",
            (origin,),
        ).fetchall()
        return [CheckpointRow(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def add_cosignature(self, origin: str, size: int, witness: str, line: str, time: int) -> None:
        """Store (or replace) ``witness``'s cosignature line on ``origin``'s checkpoint ``size``."""
        self.conn.execute(
            "INSERT OR REPLACE INTO cosignatures (origin, size, witness, line, time)"
            " VALUES (?, ?, ?, ?, ?)",
            (origin, size, witness, line, time),
        )

    def cosignatures(self, origin: str, size: int) -> list[str]:
        """The cosignature lines collected for ``origin``'s checkpoint ``size``, by witness."""
        rows = self.conn.execute(
            "SELECT line FROM cosignatures WHERE origin = ? AND size = ? ORDER BY witness",
            (origin, size),
        ).fetchall()
        return [str(r[0]) for r in rows]

    # Batch receipts -----------------------------------------------------------------------------

    def add_batch(self, row: BatchRow) -> None:
        """Store a signed batch receipt (in the transaction that appends its leaves)."""
        self.conn.execute(
            "INSERT INTO batches (origin, first, count, root, time, sig) VALUES (?, ?, ?, ?, ?, ?)",
            (row.origin, row.first, row.count, row.root, row.time, row.sig),
        )

    def batch_at(self, origin: str, index: int) -> BatchRow | None:
        """The stored batch receipt covering leaf ``index`` of ``origin``, or None."""
        row = self.conn.execute(
            "SELECT first, count, root, time, sig FROM batches WHERE origin = ? AND first <= ?"
            " ORDER BY first DESC LIMIT 1",
            (origin, index),
        ).fetchone()
        if row is None or not row[0] <= index < row[0] + row[1]:
            return None
        return BatchRow(origin, int(row[0]), int(row[1]), bytes(row[2]), int(row[3]), bytes(row[4]))

    # Chain heads --------------------------------------------------------------------------------

    def head(self, origin: str, author: str) -> tuple[int, str] | None:
        """``(seq, event_id)`` of ``author``'s last event in ``origin``'s log, or None."""
        row = self.conn.execute(
            "SELECT seq, event_id FROM heads WHERE origin = ? AND author = ?", (origin, author)
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def set_heads(self, origin: str, heads: Sequence[tuple[str, int, str]]) -> None:
        """Record ``(author, seq, event_id)`` chain heads."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO heads (origin, author, seq, event_id) VALUES (?, ?, ?, ?)",
            [(origin, a, s, e) for a, s, e in heads],
        )

    # Proofs of misbehaviour -----------------------------------------------------------------------

    def add_proof(
        self, proof_id: str, kind: str, origin: str | None, body: dict[str, Any], time: int
    ) -> bool:
        """Store a misbehaviour proof (by its id); return True if it was new."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO proofs (id, kind, origin, body, time) VALUES (?, ?, ?, ?, ?)",
            (proof_id, kind, origin, json.dumps(body, sort_keys=True), time),
        )
        return cur.rowcount == 1

    def proofs(self) -> list[dict[str, Any]]:
        """Every stored proof as ``{"id", "kind", "origin", "proof", "time"}``, oldest first."""
        rows = self.conn.execute(
            "SELECT id, kind, origin, body, time FROM proofs ORDER BY time, id"
        ).fetchall()
        return [
            {"id": r[0], "kind": r[1], "origin": r[2], "proof": json.loads(r[3]), "time": r[4]}
            for r in rows
        ]

    # Peers ------------------------------------------------------------------------------------

    def add_peer(self, url: str, origin: str, vkey: str) -> None:
        """Pin a peer by URL with its origin and verifier key (replacing an earlier pin)."""
        self.conn.execute(
            "INSERT INTO peers (url, origin, vkey) VALUES (?, ?, ?) ON CONFLICT (url)"
            " DO UPDATE SET origin = excluded.origin, vkey = excluded.vkey",
            (url, origin, vkey),
        )

    def remove_peer(self, url: str) -> bool:
        """Forget a peer; return True if it was pinned."""
        return self.conn.execute("DELETE FROM peers WHERE url = ?", (url,)).rowcount == 1

    def peers(self) -> list[dict[str, Any]]:
        """Every pinned peer: url, origin, vkey, cursor (dict), last_ok, last_error."""
        rows = self.conn.execute(
            "SELECT url, origin, vkey, cursor, last_ok, last_error FROM peers ORDER BY url"
        ).fetchall()
        return [
            {
                "url": r[0],
                "origin": r[1],
                "vkey": r[2],
                "cursor": json.loads(r[3]),
                "last_ok": r[4],
                "last_error": r[5],
            }
            for r in rows
        ]

    def set_peer_cursor(
        self,
        url: str,
        cursor: dict[str, Any],
        *,
        ok_at: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record a peer's sync cursor (per-origin sizes) and the outcome of the last round."""
        self.conn.execute(
            "UPDATE peers SET cursor = ?, last_ok = COALESCE(?, last_ok), last_error = ?"
            " WHERE url = ?",
            (json.dumps(cursor, sort_keys=True), ok_at, error, url),
        )

    # Integrity ----------------------------------------------------------------------------------

    def verify_log(self, origin: str) -> LogInfo:
        """Recompute ``origin``'s tree from its leaf bytes and check it against what is stored.

        Checks every leaf hash, the stored peaks, and the root of every stored checkpoint.
        Returns the log info; raises :class:`IntegrityError` naming the first disagreement.
        """
        info = self._require(origin)
        wanted = {c.size: c.root for c in self.checkpoints(origin)}
        cr = CompactRange()
        if 0 in wanted and wanted[0] != EMPTY_ROOT:
            raise IntegrityError(f"{origin}: the checkpoint of size 0 has a wrong root")
        rows = self.conn.execute(
            "SELECT idx, leaf, leaf_hash FROM entries WHERE origin = ? ORDER BY idx", (origin,)
        )
        for idx, leaf, stored_hash in rows:
            if idx != cr.size:
                raise IntegrityError(f"{origin}: entry {cr.size} is missing")
            h = leaf_hash(bytes(leaf))
            if h != bytes(stored_hash):
                raise IntegrityError(f"{origin}: entry {idx} does not match its leaf hash")
            cr.append(h)
            want = wanted.get(cr.size)
            if want is not None and want != cr.root():
                raise IntegrityError(
                    f"{origin}: the leaves do not extend the checkpoint of size {cr.size}"
                )
        if cr.size != info.size or cr.peaks != info.peaks:
            raise IntegrityError(
                f"{origin}: the stored tree (size {info.size}) disagrees with its {cr.size} leaves"
            )
        beyond = [s for s in wanted if s > cr.size]
        if beyond:
            raise IntegrityError(
                f"{origin}: a checkpoint of size {max(beyond)} was signed but only "
                f"{cr.size} entries are stored"
            )
        return info
