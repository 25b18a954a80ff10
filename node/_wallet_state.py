"""The wallet's local chain state: for each of the citizen's keys, the head of its event chain.

Every citizen-authored event carries ``seq`` (from 1) and ``prev`` (the id of the author's
previous event, null at seq 1). The wallet remembers, per key, the ``seq`` and id of the last
event the home node accepted, so that the next event can be built offline. If the file is lost
or stale, the home node's answer to a used ``seq`` names the current head, and the wallet
adopts it with :meth:`ChainState.with_head` (the online commands do that).

File (``<wallet dir>/<name>.state.json``, JSON, written atomically with mode 0600)::

    {"version": 1, "chains": {"lqpk1…": {"seq": 3, "prev": "<64 hex>"}}}

The wallet also remembers the home node's key chain it followed (:class:`CityKeys`,
``<wallet dir>/<name>.keys.json``, same writing rules): the pinned key, then each key a
``handover`` named, as the replay of a log verified up to a signed checkpoint of ``size`` leaves
found them (docs/SECURITY.md §3.3)::

    {"version": 1, "origin": "city.example/log", "keys": ["lqpk1…pinned", "lqpk1…"], "size": 42}

The chain is derived from the pin and the verified log only, so a lost file is rebuilt (the
wallet follows the handovers from the pin again); a file started from another pin is ignored.
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
    "CityKeys",
    "WalletStateError",
    "load_chain_state",
    "load_city_keys",
    "save_chain_state",
    "save_city_keys",
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


# The followed key chain of the home node --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CityKeys:
    """The home log's keys the wallet followed from its pin: ``keys[0]`` is the pinned key and
    each later one the key a handover by its predecessor named, as replay of the log up to a
    checkpoint of ``size`` leaves (verified with the last key) found them. Immutable."""

    origin: str
    keys: tuple[str, ...]
    size: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise WalletStateError("origin must be a non-empty string")
        if not isinstance(self.keys, tuple) or not self.keys:
            raise WalletStateError("keys must list the pinned key first")
        if not all(isinstance(k, str) for k in self.keys):
            raise WalletStateError("keys must be lqpk1… strings")
        keys = tuple(_author(k) for k in self.keys)
        if len(set(keys)) != len(keys):
            raise WalletStateError("keys must not repeat (a handover never names a used key)")
        object.__setattr__(self, "keys", keys)
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise WalletStateError(f"size must be an integer >= 0, got {self.size!r}")

    @property
    def pinned(self) -> str:
        """The pinned key the chain starts from."""
        return self.keys[0]

    @property
    def in_effect(self) -> str:
        """The last key followed: the key in effect at :attr:`size`."""
        return self.keys[-1]

    def followed(self, keys: tuple[str, ...], size: int) -> CityKeys:
        """The chain after a verified log of ``size`` leaves showed ``keys`` (pinned first).

        The longer chain is kept when one extends the other (an older checkpoint shows a prefix
        of the chain). Raises :class:`WalletStateError` (code ``split_view``) when they diverge:
        the city then signed two different handovers from one key.
        """
        new = CityKeys(self.origin, keys, size)
        if new.keys[: len(self.keys)] == self.keys:
            return new if (len(new.keys), new.size) >= (len(self.keys), self.size) else self
        if self.keys[: len(new.keys)] == new.keys:
            return self
        raise WalletStateError(
            f"the log of {self.origin} names the key chain {', '.join(new.keys)}, but this"
            f" wallet followed {', '.join(self.keys)} before: two different handovers from one"
            " key (a split view)",
            hint="keep this wallet's files (they hold both views) and report it to an observer",
            code="split_view",
        )

    def to_dict(self) -> dict[str, Any]:
        """The file document."""
        return {
            "version": STATE_VERSION,
            "origin": self.origin,
            "keys": list(self.keys),
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, doc: object) -> CityKeys:
        """Validate a file document; raise :class:`WalletStateError` naming what is wrong."""
        if not isinstance(doc, dict) or set(doc) != {"version", "origin", "keys", "size"}:
            raise WalletStateError(
                'the key chain must be {"version": 1, "origin": …, "keys": […], "size": …}'
            )
        if doc["version"] != STATE_VERSION or isinstance(doc["version"], bool):
            raise WalletStateError(f"unsupported key chain version {doc['version']!r}")
        if not isinstance(doc["keys"], list):
            raise WalletStateError("keys must be a JSON array")
        return cls(doc["origin"], tuple(doc["keys"]), doc["size"])


_KEYS_HINT = "move the file aside; the wallet follows the handovers again from the pinned key"


def load_city_keys(path: str | os.PathLike[str], origin: str, pinned: PublicKey) -> CityKeys:
    """The key chain followed from ``pinned``: the file's, if it starts from that pin for that
    origin, else the pinned key alone (a missing file, or one of an earlier pin).

    Raises :class:`WalletStateError` naming the file when it cannot be parsed.
    """
    target = Path(path)
    start = CityKeys(origin, (pinned.to_text(),))
    try:
        with target.open("rb") as f:
            data = f.read(_MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return start
    if len(data) > _MAX_STATE_BYTES:
        raise WalletStateError(f"{target}: file too large for a key chain", hint=_KEYS_HINT)
    try:
        chain = CityKeys.from_dict(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WalletStateError(f"{target}: not valid JSON ({exc})", hint=_KEYS_HINT) from None
    except WalletStateError as exc:
        raise WalletStateError(f"{target}: {exc.message}", hint=_KEYS_HINT) from None
    if chain.origin != origin or chain.pinned != start.pinned:
        return start
    return chain


def save_city_keys(path: str | os.PathLike[str], chain: CityKeys) -> None:
    """Write the key chain file atomically (mode 0600), replacing the previous one."""
    data = (json.dumps(chain.to_dict(), indent=2) + "\n").encode("utf-8")
    write_private_file(path, data, overwrite=True)
