"""Witnessing (DESIGN invariant 5): the witness side of C2SP tlog-witness, and the log side that
pushes every new checkpoint of the own log to its witnesses.

**Witness side.** ``POST /v1/witness/add-checkpoint`` takes the C2SP body (old size, consistency
proof lines, blank line, signed checkpoint). The log keys it trusts are its pins: configured peers
and the member cities of assemblies it knows (never the key a request offers). On the writer
thread, in one transaction, it reads the last checkpoint of that origin it cosigned, decides
(:func:`protocol._witness.decide`), and stores the new one; only after the commit does it sign
the ``cosignature/v1`` line (with its clock's time) and answer. So it never cosigns a checkpoint
inconsistent with one it cosigned before, even across a crash, and two concurrent requests cannot
roll its state back. A stale ``old`` gets 409 with the size it last cosigned
(``text/x.tlog.size``). It witnesses other cities' logs only, as they push them: it never cosigns
its own log or a copy it mirrored.

A node witnesses under its origin as the cosigner name, with its city key (cosigner key ID =
SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4], so it never collides with its note key ID). Assemblies pin a
witness as ``{"name": origin, "key": lqpk…}``.

**Log side.** :class:`Pusher` sends the latest own checkpoint, with a consistency proof from the
size the witness last cosigned, to every witness: configured peers. A 409 tells the size to
prove from, and the push is retried once with it. Cosignatures that verify with the witness's
pinned key are stored beside the checkpoint, where ``/v1/logs`` and the checkpoint endpoint
publish them, and in the cosignature feed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from crypto import PublicKey
from protocol._witness import (
    MAX_ADD_CHECKPOINT_BYTES,
    decide,
    format_add_checkpoint,
    parse_add_checkpoint,
)
from protocol.checkpoint import Checkpoint, SignedCheckpoint, cosign
from protocol.errors import CheckpointError

from .client import Transport
from .errors import PeerError

if TYPE_CHECKING:
    from ._federation import Federation, KeySchedule
    from .store import Store
    from .sync import PeerPin

__all__ = ["Pusher", "WitnessPush", "add_checkpoint_handler", "last_cosigned"]

log = logging.getLogger("liquide.node.witness")

SIZE_TYPE = "text/x.tlog.size"


def last_cosigned(store: Store, origin: str) -> Checkpoint | None:
    """The checkpoint of ``origin`` this node last cosigned as a witness, or None."""
    row = store.conn.execute(
        "SELECT size, root FROM fed_witness WHERE origin = ?", (origin,)
    ).fetchone()
    return None if row is None else Checkpoint(origin, int(row[0]), bytes(row[1]))


def _text(status: int, text: str, content_type: str = "text/plain") -> web.Response:
    return web.Response(status=status, text=text, content_type=content_type, charset="utf-8")


async def add_checkpoint_handler(request: web.Request, fed: Federation) -> web.Response:
    """``POST /v1/witness/add-checkpoint`` (C2SP tlog-witness)."""
    length = request.content_length
    if length is not None and length > MAX_ADD_CHECKPOINT_BYTES:
        return _text(413, f"body exceeds {MAX_ADD_CHECKPOINT_BYTES} bytes\n")
    # read(n) returns what has arrived so far: loop, or a body split across packets (a slow
    # link) is cut short; and bound the time, so that a slow sender cannot hold the handler.
    timeout = fed.node.config.read_timeout_s
    body = b""
    try:
        async with asyncio.timeout(timeout):
            while len(body) <= MAX_ADD_CHECKPOINT_BYTES:
                more = await request.content.read(MAX_ADD_CHECKPOINT_BYTES + 1 - len(body))
                if not more:
                    break
                body += more
    except TimeoutError:
        return _text(408, f"the body did not arrive within {timeout:g} s\n")
    if len(body) > MAX_ADD_CHECKPOINT_BYTES:
        return _text(413, f"body exceeds {MAX_ADD_CHECKPOINT_BYTES} bytes\n")
    try:
        req = parse_add_checkpoint(body)
    except CheckpointError as exc:
        return _text(400, exc.message + "\n")
    origin = req.checkpoint.checkpoint.origin
    if origin != fed.origin and fed.trusted_key(origin) is None:
        await fed.refresh_trust()  # a peer pinned since the last round
    sched = None if origin == fed.origin else fed.schedule(origin)
    keys = None
    if sched is not None:
        # The key in effect at the checkpoint's size, as this witness's replica knows it.
        size = req.checkpoint.checkpoint.size
        want = sched.key_at(size)
        keys = [PublicKey.from_text(want)]
        refused, later = _handover_refusal(req.checkpoint, sched, want)
        if refused is not None:
            resp = _text(403, refused + "\n")
            if later:  # not the log's fault: the pusher tries again after our next sync
                resp.headers["Retry-After"] = str(math.ceil(fed.config.sync_interval_s))
            return resp
    node = fed.node
    now = int(node.clock())

    def check_and_store() -> tuple[int, str, str | None, int | None]:
        store = node.store
        with store.atomic():
            last = last_cosigned(store, origin)
            d = decide(req, keys, last)
            if d.status != 200 or d.checkpoint is None:
                return d.status, d.message, None, d.stale_size
            cp = d.checkpoint
            store.conn.execute(
                "INSERT INTO fed_witness (origin, size, root, time) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (origin) DO UPDATE SET size = excluded.size,"
                " root = excluded.root, time = excluded.time",
                (origin, cp.size, cp.root, now),
            )
        # Durable (synchronous=FULL) before the cosignature exists.
        line = cosign(cp, fed.origin, node.key, now)
        note = SignedCheckpoint(
            cp, tuple(s for s in req.checkpoint.signatures if s.name == origin)
        ).with_signature(line)
        fed.record_cosignature(
            store, note=note.to_text(), witness=fed.origin, cp=cp, line=line, time_=now
        )
        return 200, "cosigned", line, None

    status, message, line, stale = await fed.write(check_and_store)
    if status == 200 and line is not None:
        return _text(200, line)
    if status == 409 and stale is not None:
        return _text(409, f"{stale}\n", SIZE_TYPE)
    return _text(status, message + "\n")


def _handover_refusal(
    sc: SignedCheckpoint, sched: KeySchedule, want: str
) -> tuple[str | None, bool]:
    """Why a checkpoint not signed by the key in effect ``want`` is refused, naming the
    handover problem, and whether to retry later; None if it is signed by ``want`` (or by no
    key of the schedule at a size replicated here, which :func:`protocol._witness.decide`
    refuses in the standard words)."""
    cp = sc.checkpoint
    try:
        sc.verify(cp.origin, PublicKey.from_text(want))
    except CheckpointError:
        pass
    else:
        return None, False
    for key in sched.public_keys():
        try:
            sc.verify(cp.origin, key)
        except CheckpointError:
            continue
        return (
            f"checkpoint {cp.size} of {cp.origin} is signed by {key.to_text()}, which is not "
            f"the key in effect at that size ({want}): a handover retired it"
        ), False
    if cp.size > sched.size:
        return (
            f"this witness has not replicated the handover that checkpoint {cp.size} of "
            f"{cp.origin} may follow: no signature on it verifies with the key in effect after "
            f"the {sched.size} leaves replicated here ({want}); retry once it has synced"
        ), True
    return None, False


@dataclass(slots=True)
class WitnessPush:
    """The push state towards one witness."""

    pin: PeerPin
    transport: Transport
    cosigned: int | None = None
    """The size the witness last cosigned, once known."""
    last_error: str | None = None
    refused: int | None = None
    """The checkpoint size the witness refused (404/403/422): not pushed again until it grows."""
    pushes: int = 0
    stats: dict[str, int] = field(default_factory=dict)


_SIZE_RE = re.compile(r"(0|[1-9][0-9]{0,18})\n")


class Pusher:
    """Pushes the latest own checkpoint to every witness (see the module docstring)."""

    def __init__(self, fed: Federation) -> None:
        self.fed = fed
        self.witnesses: dict[str, WitnessPush] = {}

    def ensure(self, pin: PeerPin, transport: Transport) -> WitnessPush:
        wp = self.witnesses.get(pin.url)
        if wp is None or wp.pin != pin:
            wp = WitnessPush(pin, transport)
            self.witnesses[pin.url] = wp
        return wp

    async def push(self, wp: WitnessPush) -> bool:
        """Push the latest own checkpoint to one witness; return True if it cosigned it now."""
        fed = self.fed
        reader = fed.reader
        cp = reader.latest_checkpoint(fed.origin)
        if cp is None or (wp.cosigned is not None and wp.cosigned >= cp.size):
            return False
        if wp.refused == cp.size:
            return False
        for _ in range(2):
            old = 0 if wp.cosigned is None else wp.cosigned
            if old > cp.size:
                wp.last_error = f"the witness cosigned size {old}, beyond our {cp.size}"
                return False
            proof = [] if old == 0 else reader.consistency_proof(fed.origin, old, cp.size)
            body = format_add_checkpoint(old, proof, cp.note)
            try:
                resp = await wp.transport.request(
                    "POST", "/v1/witness/add-checkpoint", body=body, content_type="text/plain"
                )
            except PeerError as exc:
                wp.last_error = exc.message
                raise
            wp.pushes += 1
            wp.stats[str(resp.status)] = wp.stats.get(str(resp.status), 0) + 1
            if resp.status == 409:
                m = _SIZE_RE.fullmatch(resp.body.decode("ascii", "replace"))
                if m is None:
                    wp.last_error = "409 without a size"
                    return False
                size = int(m.group(1))
                if size == (wp.cosigned or 0):
                    wp.last_error = "409 for the size it names (another root?)"
                    return False
                wp.cosigned = size
                continue
            if resp.status != 200:
                wp.last_error = f"HTTP {resp.status}: {resp.body[:200].decode('utf-8', 'replace')}"
                if resp.status in (403, 404, 422) and "retry-after" not in resp.headers:
                    wp.refused = cp.size
                return False
            return await self._accept(wp, cp.note, resp.body)
        return False

    async def _accept(self, wp: WitnessPush, note: str, body: bytes) -> bool:
        fed = self.fed
        try:
            text = body.decode("utf-8")
            sc = SignedCheckpoint.parse(note + text)
        except (UnicodeDecodeError, CheckpointError) as exc:
            wp.last_error = f"unparsable cosignature: {exc}"
            return False
        try:
            cosig = sc.verify_cosignature(wp.pin.origin, wp.pin.key)
        except CheckpointError as exc:
            wp.last_error = exc.message
            return False
        cp = sc.checkpoint
        line = cosig.line()
        full = SignedCheckpoint(
            cp, tuple(s for s in sc.signatures if s.name == cp.origin)
        ).with_signature(line)

        def store(st: Store) -> None:
            fed.record_cosignature(
                st, note=full.to_text(), witness=wp.pin.origin, cp=cp, line=line, time_=cosig.time
            )

        await fed.write_store(store)
        wp.cosigned = cp.size
        wp.last_error = None
        return True

    def status(self) -> list[dict[str, Any]]:
        """One line per witness: URL, name, size cosigned, last error."""
        return [
            {
                "url": wp.pin.url,
                "name": wp.pin.origin,
                "cosigned": wp.cosigned,
                "pushes": wp.pushes,
                "last_error": wp.last_error,
            }
            for wp in self.witnesses.values()
        ]
