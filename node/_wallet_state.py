"""The wallet's local chain state: for each of the citizen's keys, the head of its event chain.

Every citizen-authored event carries ``seq`` (from 1) and ``prev`` (the id of the author's
previous event, null at seq 1). The wallet remembers, per key, the ``seq`` and id of the last
event the home node accepted, so that the next event can be built offline. If the file is lost
or stale, the home node's answer to a used ``seq`` names the current head, and the wallet
adopts it with :meth:`ChainState.with_head` (the online commands do that).

File (``<wallet dir>/<name>.state.json``, JSON, written atomically with mode 0600)::

    {"version": 1, "chains": {"lqpk1…": {"seq": 3, "prev": "<64 hex>"}}}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crypto import KeyFormatError, LiquideError, PublicKey, write_private_file

__all__ = [
    "STATE_VERSION",
    "ChainHead",
    "ChainState",
    "WalletStateError",
    "load_chain_state",
    "save_chain_state",
]

STATE_VERSION = 1
_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_STATE_BYTES = 16 * 1024 * 1024


class WalletStateError(LiquideError):
    """The chain-state file is unreadable, or an update does not extend the chain."""

    code = "wallet_state"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last accepted event of one author: its ``seq`` (0: none yet) and id ``prev``."""

    seq: int = 0
    prev: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 0:
            raise WalletStateError(f"seq must be an integer >= 0, got {self.seq!r}")
        if self.seq == 0 and self.prev is not None:
            raise WalletStateError("prev must be null when seq is 0")
        if self.seq > 0 and not (isinstance(self.prev, str) and _ID_RE.match(self.prev)):
            raise WalletStateError(f"prev must be a 64-digit lower-case hex id, got {self.prev!r}")

    @property
    def next_seq(self) -> int:
        """The ``seq`` the author's next event must carry."""
        return self.seq + 1

    def advance(self, event_id: str) -> ChainHead:
        """The head after the event at :attr:`next_seq` with id ``event_id`` was accepted."""
        return ChainHead(self.next_seq, event_id)

    def to_dict(self) -> dict[str, Any]:
        """``{"seq", "prev"}``."""
        return {"seq": self.seq, "prev": self.prev}

    @classmethod
    def from_dict(cls, doc: object) -> ChainHead:
        """Validate ``{"seq", "prev"}``; raise :class:`WalletStateError` naming the field."""
        if not isinstance(doc, dict) or set(doc) != {"seq", "prev"}:
            raise WalletStateError('a chain head must be {"seq": …, "prev": …}')
        return cls(doc["seq"], doc["prev"])


def _author(text: str) -> str:
    try:
        return PublicKey.from_text(text).to_text()
    except KeyFormatError as exc:
        raise WalletStateError(
            f"chain author {text!r} is not a public key: {exc.message}"
        ) from None


@dataclass(frozen=True, slots=True)
class ChainState:
    """The chain heads of every key of one wallet, keyed by ``lqpk1…`` text. Immutable."""

    heads: Mapping[str, ChainHead] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "heads", MappingProxyType({_author(k): v for k, v in self.heads.items()})
        )

    def head(self, author: PublicKey) -> ChainHead:
        """The head of ``author``'s chain (``seq`` 0 when nothing was sent yet)."""
        return self.heads.get(author.to_text(), ChainHead())

    def with_head(self, author: PublicKey, head: ChainHead) -> ChainState:
        """A copy with ``author``'s head set to ``head`` (for recovery from the home node)."""
        return ChainState({**self.heads, author.to_text(): head})

    def accepted(self, author: PublicKey, seq: int, event_id: str) -> ChainState:
        """A copy recording that the event ``event_id`` at ``seq`` was accepted.

        Raises :class:`WalletStateError` (code ``chain_gap``) unless ``seq`` is the next one:
        the local state is then stale and must be recovered from the home node first.
        """
        current = self.head(author)
        if seq != current.next_seq:
            raise WalletStateError(
                f"event seq {seq} does not follow the local chain head (seq {current.seq})",
                code="chain_gap",
                hint="the local chain state is stale; it is recovered from the home node",
            )
        return self.with_head(author, current.advance(event_id))

    def to_dict(self) -> dict[str, Any]:
        """The file document."""
        return {
            "version": STATE_VERSION,
            "chains": {k: self.heads[k].to_dict() for k in sorted(self.heads)},
        }

    @classmethod
    def from_dict(cls, doc: object) -> ChainState:
        """Validate a file document; raise :class:`WalletStateError` naming what is wrong."""
        if not isinstance(doc, dict) or set(doc) != {"version", "chains"}:
            raise WalletStateError('chain state must be {"version": 1, "chains": {…}}')
        if doc["version"] != STATE_VERSION or isinstance(doc["version"], bool):
            raise WalletStateError(f"unsupported chain state version {doc['version']!r}")
        chains = doc["chains"]
        if not isinstance(chains, dict):
            raise WalletStateError("chains must be a JSON object")
        heads: dict[str, ChainHead] = {}
        for author, head in chains.items():
            try:
                heads[author] = ChainHead.from_dict(head)
            except WalletStateError as exc:
                raise WalletStateError(f"chains[{author!r}]: {exc.message}") from None
        return cls(heads)


def load_chain_state(path: str | os.PathLike[str]) -> ChainState:
    """Read the chain-state file; a missing file is an empty state.

    Raises :class:`WalletStateError` naming the file when it cannot be parsed.
    """
    target = Path(path)
    try:
        with target.open("rb") as f:
            data = f.read(_MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return ChainState()
    if len(data) > _MAX_STATE_BYTES:
        raise WalletStateError(f"{target}: file too large for a chain state", hint=_STALE_HINT)
    try:
        return ChainState.from_dict(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WalletStateError(f"{target}: not valid JSON ({exc})", hint=_STALE_HINT) from None
    except WalletStateError as exc:
        raise WalletStateError(f"{target}: {exc.message}", hint=_STALE_HINT) from None


_STALE_HINT = "move the file aside; the chain heads are recovered from the home node"


def save_chain_state(path: str | os.PathLike[str], state: ChainState) -> None:
    """Write the chain-state file atomically (mode 0600), replacing the previous one."""
    data = (json.dumps(state.to_dict(), indent=2) + "\n").encode("utf-8")
    write_private_file(path, data, overwrite=True)
