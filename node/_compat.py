"""Thin wrappers between the node and the protocol core's checkpoint, receipt, replay and tally
APIs: the node's hot paths call these, so each protocol call sits in one place.

* :func:`sign_checkpoint` — ``protocol.checkpoint.sign_checkpoint`` to note text;
* :class:`ReceiptSigner` — ``protocol.checkpoint.Receipt`` signed with a fast canonical encoding
  of its (fixed, ASCII) fields; ``tests/node`` checks that ``Receipt.from_dict`` parses and
  verifies the result;
* :func:`load_state` / :func:`save_state` — the replay :class:`protocol.state.State` of the own
  log, from its latest snapshot plus the leaves after it;
* :func:`tally` / :func:`explain` — the tally of a sealed issue's record, once
  ``protocol.tally`` provides the engine.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from crypto import LiquideError, SecretKey
from protocol.checkpoint import RECEIPT_CONTEXT, Checkpoint, Receipt
from protocol.checkpoint import sign_checkpoint as _sign_checkpoint
from protocol.events import Event
from protocol.state import State

if TYPE_CHECKING:
    from ._node import Node
    from .store import Store

__all__ = [
    "ReceiptSigner",
    "add_signature_lines",
    "load_state",
    "save_state",
    "sign_checkpoint",
]

log = logging.getLogger("liquide.node")

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


# Checkpoints ---------------------------------------------------------------------------------


def sign_checkpoint(key: SecretKey, origin: str, size: int, root: bytes) -> str:
    """The C2SP signed note of checkpoint ``(origin, size, root)``, signed by the city key."""
    return _sign_checkpoint(Checkpoint(origin, size, root), key).to_text()


def add_signature_lines(note: str, lines: list[str]) -> str:
    """``note`` with extra signature lines (witness cosignatures) appended."""
    if not lines:
        return note
    return note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# Receipts --------------------------------------------------------------------------------------


class ReceiptSigner:
    """Signs receipts (:class:`protocol.checkpoint.Receipt`) as dicts.

    A receipt covers ``(origin, event_id, index, time)`` where ``time`` is when the node
    appended the leaf; Ed25519 is deterministic, so the same stored facts always give the same
    receipt, byte for byte, and a repeated event gets exactly its first receipt.
    """

    def __init__(self, key: SecretKey, origin: str) -> None:
        self.key = key
        self.origin = origin

    def sign(self, event_id: str, index: int, time: int) -> dict[str, Any]:
        """The receipt as :meth:`protocol.checkpoint.Receipt.to_dict` writes it."""
        unsigned = Receipt.unsigned(self.origin, event_id, index, time)
        # The fields are a fixed set of ASCII strings and small integers: json.dumps with sorted
        # keys is their canonical encoding (protocol/encoding.py), without the profile walk.
        sig = self.key.sign(RECEIPT_CONTEXT, _dumps(unsigned).encode("utf-8"))
        unsigned["sig"] = base64.b64encode(sig).decode("ascii")
        return unsigned

    def sign_many(
        self,
        items: Sequence[tuple[str, int, int]],
        signer: Callable[[SecretKey, str, Sequence[bytes]], list[bytes]],
    ) -> list[dict[str, Any]]:
        """Receipts for ``(event_id, index, time)``, the signatures made by ``signer`` (a pool)."""
        unsigned = [Receipt.unsigned(self.origin, e, i, t) for e, i, t in items]
        sigs = signer(self.key, RECEIPT_CONTEXT, [_dumps(u).encode("utf-8") for u in unsigned])
        for u, sig in zip(unsigned, sigs, strict=True):
            u["sig"] = base64.b64encode(sig).decode("ascii")
        return unsigned


# Replay state ------------------------------------------------------------------------------------


def load_state(store: Store, origin: str, city: str) -> State:
    """The replay state of the own log: the latest snapshot, then every leaf after it.

    Leaves of the own log were verified when appended and are covered by the checkpoints the
    node signed (checked by :meth:`Store.verify_log` first), so they are replayed without
    verifying their signatures again.
    """
    info = store.log(origin)
    size = 0 if info is None else info.size

    def leaves(i: int) -> bytes:
        return store.leaf(origin, i)

    state: State | None = None
    row = store.conn.execute(
        "SELECT size, state FROM snapshots WHERE origin = ?", (origin,)
    ).fetchone()
    if row is not None and row[0] <= size:
        try:
            state = State.from_dict(json.loads(row[1]), leaves=leaves)
        except (ValueError, LiquideError):  # an unreadable snapshot only costs a full replay
            log.warning("ignoring the replay snapshot of %s; replaying the whole log", origin)
            state = None
    if state is None:
        state = State(origin, city, leaves=leaves)
    for index, leaf in enumerate(store.iter_leaves(origin, state.size), start=state.size):
        findings = state.apply_event(index, Event.decode(leaf), verified=True)
        for f in findings:
            log.warning("own log leaf %d: %s (%s)", f.index, f.message, f.reason)
    return state


def save_state(store: Store, origin: str, state: State) -> None:
    """Persist a snapshot of ``state`` (at its size)."""
    store.conn.execute(
        "INSERT OR REPLACE INTO snapshots (origin, size, state) VALUES (?, ?, ?)",
        (origin, state.size, json.dumps(state.to_dict(), sort_keys=True)),
    )


# Tally ----------------------------------------------------------------------------------------


async def tally(node: Node, issue_id: str) -> dict[str, Any]:
    """The tally of ``issue_id``'s record as held by ``node``."""
    from ._tally import tally_of

    return await tally_of(node, issue_id)


async def explain(node: Node, issue_id: str, key: str) -> dict[str, Any]:
    """How ``key``'s weight went in the tally of ``issue_id``."""
    from ._tally import explain_of

    return await explain_of(node, issue_id, key)
