"""The ``TallyResult`` document and its digest (docs/TALLY.md, "TallyResult").

Nodes attest the digest of a result, so every byte of its canonical form is fixed: the digest is
the hex SHA-256 of ``protocol.encoding.encode(result without "digest")``.

A result computed by the engine keeps its per-voter part in the engine's lists indexed by voter
number (:class:`VoterTable`, a read-only mapping that builds :class:`VoterResult` objects on
access) and writes that part of the canonical bytes directly, in voter number order, instead of
building a million small dicts for ``encode`` to walk. It can do so because the input was
validated: every id is printable ASCII without ``"`` or ``\\`` (so ``"id"`` is exactly its
canonical string), every integer is below 2^31, and voters are numbered in sorted id order, which
is the canonical key order for ASCII keys. ``tests/protocol/test_tally_result.py`` checks the
fast bytes against ``encode(result.to_dict())`` byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, repeat
from operator import add, getitem
from typing import Any

from protocol.encoding import encode
from protocol.errors import ValidationError

from ._input import SCOPES, TALLY_VERSION
from ._resolve import ABSENT, DELEGATED, DIRECT, LOST_CYCLE, LOST_DEAD_END, Resolution, scatter

__all__ = ["OptionResult", "TallyResult", "VoterResult", "VoterTable"]

_STATUSES = ("direct", "delegated", "lost", "absent")
_REASONS = ("cycle", "dead_end")
_OPTION_INT_FIELDS = (
    "positive_votes",
    "negative_votes",
    "schulze_rank",
    "rank",
    "first_preference_votes",
)
_OPTION_BOOL_FIELDS = (
    "direct_majority",
    "indirect_majority",
    "better_than_status_quo",
    "worse_than_status_quo",
    "multistage_majority",
    "eligible",
    "winner",
)
_TOP_KEYS = frozenset(
    {"version", "voters", "options", "status_quo_schulze_rank", "battles", "winner", "digest"}
)


def _bad(where: str, message: str) -> ValidationError:
    return ValidationError(f"{where}: {message}")


def _int(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise _bad(where, "must be a non-negative integer")
    return value


@dataclass(frozen=True, slots=True)
class VoterResult:
    """How one voter's weight was counted.

    ``status`` is ``direct`` (``weight``), ``delegated`` (``scope`` of the voter's own effective
    row, ``path`` from the first trustee to the casting voter, and ``weight``: the voter's own
    weight plus everything whose path passes through it), ``lost`` (``reason``: ``cycle`` or
    ``dead_end``) or ``absent``.
    """

    status: str
    weight: int | None = None
    scope: str | None = None
    path: tuple[str, ...] = ()
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (only the keys of its status)."""
        if self.status == "direct":
            return {"status": "direct", "weight": self.weight}
        if self.status == "delegated":
            return {
                "status": "delegated",
                "scope": self.scope,
                "path": list(self.path),
                "weight": self.weight,
            }
        if self.status == "lost":
            return {"status": "lost", "reason": self.reason}
        return {"status": "absent"}

    @classmethod
    def from_dict(cls, d: Any, where: str = "voter") -> VoterResult:
        """Parse the JSON form; raise ValidationError naming the field."""
        if type(d) is not dict:
            raise _bad(where, "must be an object")
        status = d.get("status")
        keys = {
            "direct": {"status", "weight"},
            "delegated": {"status", "scope", "path", "weight"},
            "lost": {"status", "reason"},
            "absent": {"status"},
        }.get(status if type(status) is str else "")
        if keys is None:
            raise _bad(f"{where}.status", f"unknown status {status!r}")
        if d.keys() != keys:
            raise _bad(where, f"a {status} voter has exactly the keys {', '.join(sorted(keys))}")
        if status == "direct":
            return cls("direct", weight=_int(d["weight"], f"{where}.weight"))
        if status == "delegated":
            path = d["path"]
            if type(path) is not list or not path or any(type(x) is not str for x in path):
                raise _bad(f"{where}.path", "must be a non-empty array of voter ids")
            if d["scope"] not in SCOPES:
                raise _bad(f"{where}.scope", f"unknown scope {d['scope']!r}")
            return cls(
                "delegated",
                weight=_int(d["weight"], f"{where}.weight"),
                scope=d["scope"],
                path=tuple(path),
            )
        if status == "lost":
            if d["reason"] not in _REASONS:
                raise _bad(f"{where}.reason", f"unknown reason {d['reason']!r}")
            return cls("lost", reason=d["reason"])
        return cls("absent")


@dataclass(frozen=True, slots=True)
class OptionResult:
    """LiquidFeedback's result fields of one option (initiative), under LiquidFeedback's names.

    ``reverse_beat_path`` is None with the "simple" defeat strength, as in LiquidFeedback.
    """

    positive_votes: int
    negative_votes: int
    direct_majority: bool
    indirect_majority: bool
    schulze_rank: int
    better_than_status_quo: bool
    worse_than_status_quo: bool
    reverse_beat_path: bool | None
    multistage_majority: bool
    eligible: bool
    winner: bool
    rank: int
    first_preference_votes: int

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "positive_votes": self.positive_votes,
            "negative_votes": self.negative_votes,
            "direct_majority": self.direct_majority,
            "indirect_majority": self.indirect_majority,
            "schulze_rank": self.schulze_rank,
            "better_than_status_quo": self.better_than_status_quo,
            "worse_than_status_quo": self.worse_than_status_quo,
            "reverse_beat_path": self.reverse_beat_path,
            "multistage_majority": self.multistage_majority,
            "eligible": self.eligible,
            "winner": self.winner,
            "rank": self.rank,
            "first_preference_votes": self.first_preference_votes,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "option") -> OptionResult:
        """Parse the JSON form; raise ValidationError naming the field."""
        fields = {*_OPTION_INT_FIELDS, *_OPTION_BOOL_FIELDS, "reverse_beat_path"}
        if type(d) is not dict or d.keys() != fields:
            raise _bad(
                where, f"must be an object with exactly the keys {', '.join(sorted(fields))}"
            )
        for name in _OPTION_INT_FIELDS:
            _int(d[name], f"{where}.{name}")
        for name in _OPTION_BOOL_FIELDS:
            if type(d[name]) is not bool:
                raise _bad(f"{where}.{name}", "must be true or false")
        if d["reverse_beat_path"] is not None and type(d["reverse_beat_path"]) is not bool:
            raise _bad(f"{where}.reverse_beat_path", "must be true, false or null")
        return cls(**d)


class VoterTable(Mapping[str, VoterResult]):
    """The ``voters`` part of an engine-computed result, read-only, in sorted id order."""

    __slots__ = ("_res",)

    def __init__(self, res: Resolution) -> None:
        self._res = res

    def __getitem__(self, voter: str) -> VoterResult:
        res = self._res
        if voter not in res.index:
            raise KeyError(voter)
        s = res.status_of(voter)
        if s == DIRECT:
            return VoterResult("direct", weight=res.weight_of(voter))
        if s == DELEGATED:
            return VoterResult(
                "delegated",
                weight=res.weight_of(voter),
                scope=res.scope(voter),
                path=tuple(res.path(voter)),
            )
        if s == ABSENT:
            return VoterResult("absent")
        return VoterResult("lost", reason="cycle" if s == LOST_CYCLE else "dead_end")

    def __iter__(self) -> Iterator[str]:
        return iter(self._res.ids)

    def __len__(self) -> int:
        return len(self._res.ids)

    def __contains__(self, voter: object) -> bool:
        return voter in self._res.index

    def canonical_chunks(self, chunk: int = 65536) -> Iterator[str]:
        """Yield, in pieces, the canonical text of the map's members: ``"id":{…}`` by commas.

        Ids are printable ASCII without ``"`` or ``\\`` (TallyInput's id rule), so ``"id"`` is
        their canonical JSON string. Voter numbers follow the sorted ids, so ``body[i]``, the
        text after voter ``i``'s id up to the next id (``'":{…},"'``), is a list filled by
        C-level scatters and then joined in number order, with no lookup by id.
        """
        res = self._res
        ids = res.ids
        if not ids:
            return
        # Only delegated voters need their own text; the others share one per weight or status.
        body = ['":{"status":"absent"},"'] * len(ids)
        cast = res.casting_weight
        direct = {w: f'":{{"status":"direct","weight":{w}}},"' for w in set(cast)}
        scatter(body, res.casting, map(direct.__getitem__, cast))
        lost = {
            LOST_CYCLE: '":{"reason":"cycle","status":"lost"},"',
            LOST_DEAD_END: '":{"reason":"dead_end","status":"lost"},"',
        }
        scatter(body, res.lost, map(lost.__getitem__, map(res.status.__getitem__, res.lost)))
        # A delegated voter's path text is '"' + head + suffix[nxt], where head is its segment
        # ('a","b","t' for a segment a, b, t; just 't' for one hop) and suffix[t] is '"' for a
        # casting voter, else '","' + head(t) + suffix[nxt(t)]. ``order`` puts every segment's
        # end first, so one scatter over C-level maps builds them all: each item is stored
        # before the next one is computed. suffix[v][2:] is then v's own path text.
        order, ends = res.order, res.ends
        heads: Iterator[str] = map(ids.__getitem__, ends)
        if res.mid:
            joined = {
                v: '","'.join(map(ids.__getitem__, (*seg, res.nxt[v])))
                for v, seg in res.mid.items()
            }
            heads = map(joined.get, order, heads)
        suffix = [""] * len(ids)
        scatter(suffix, res.casting, repeat('"'))
        tails = map(suffix.__getitem__, ends)
        scatter(suffix, order, map(add, map(add, repeat('","'), heads), tails))
        paths: Iterator[str] = map(getitem, map(suffix.__getitem__, order), repeat(slice(2, None)))
        # The rest of a delegated voter's text: scope and status, then the weight and '},"'.
        after = [f'],"scope":"{s}","status":"delegated","weight":' for s in ("", *SCOPES)]
        pieces: Iterator[tuple[str, ...]] = zip(
            repeat('":{"path":['),
            paths,
            map(after.__getitem__, map(res.scope_of.__getitem__, order)),
            map(str, map(res.weight.__getitem__, order)),
            repeat('},"'),
            strict=False,  # the repeats are endless; the others have one item per voter
        )
        scatter(body, order, map("".join, pieces))
        del suffix
        yield '"'
        for start in range(0, len(ids), chunk):
            pairs = zip(ids[start : start + chunk], body[start : start + chunk], strict=True)
            piece = "".join(chain.from_iterable(pairs))
            # Every body ends with ',"', the opening of the next id; the last one must not.
            yield piece if start + chunk < len(ids) else piece[:-2]


@dataclass(frozen=True, slots=True)
class TallyResult:
    """The outcome of a tally (docs/TALLY.md, "TallyResult").

    ``voters`` maps every voter to a :class:`VoterResult`; ``options`` maps every option to an
    :class:`OptionResult`; ``battles`` are ``(winner, loser, count)`` rows with None for the
    status quo, the status quo first and then the options in order; ``winner`` is an option id
    or None; ``digest`` is the hex SHA-256 of the canonical encoding of all the rest.
    """

    voters: Mapping[str, VoterResult]
    options: Mapping[str, OptionResult]
    status_quo_schulze_rank: int
    battles: tuple[tuple[str | None, str | None, int], ...]
    winner: str | None
    digest: str
    version: int = TALLY_VERSION

    def _head_tail(self) -> tuple[str, str]:
        head = encode(
            {
                "battles": [list(b) for b in self.battles],
                "options": {k: o.to_dict() for k, o in self.options.items()},
                "status_quo_schulze_rank": self.status_quo_schulze_rank,
                "version": self.version,
            }
        ).decode()
        return head[:-1] + ',"voters":{', "}," + encode({"winner": self.winner}).decode()[1:]

    def canonical_chunks(self) -> Iterator[bytes]:
        """Yield the canonical encoding of the result without its digest, in pieces."""
        voters = self.voters
        if isinstance(voters, VoterTable):
            head, tail = self._head_tail()
            yield head.encode()
            for text in voters.canonical_chunks():
                yield text.encode()
            yield tail.encode()
        else:
            yield encode(self.unsigned_dict())

    def canonical_bytes(self) -> bytes:
        """Return ``protocol.encoding.encode`` of the result without its digest."""
        return b"".join(self.canonical_chunks())

    def compute_digest(self) -> str:
        """Return the hex SHA-256 of :meth:`canonical_bytes` (what ``digest`` must equal)."""
        h = hashlib.sha256()
        for piece in self.canonical_chunks():
            h.update(piece)
        return h.hexdigest()

    def unsigned_dict(self) -> dict[str, Any]:
        """Return the JSON form without ``digest``."""
        return {
            "version": self.version,
            "voters": {k: v.to_dict() for k, v in self.voters.items()},
            "options": {k: o.to_dict() for k, o in self.options.items()},
            "status_quo_schulze_rank": self.status_quo_schulze_rank,
            "battles": [list(b) for b in self.battles],
            "winner": self.winner,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, ``digest`` included."""
        d = self.unsigned_dict()
        d["digest"] = self.digest
        return d

    @classmethod
    def from_dict(cls, d: Any) -> TallyResult:
        """Parse a result document and check its digest.

        Raises :class:`~protocol.errors.ValidationError` naming the field, or when ``digest``
        is not the digest of the rest.
        """
        if type(d) is not dict or d.keys() != _TOP_KEYS:
            raise _bad("result", f"must be an object with exactly the keys {sorted(_TOP_KEYS)}")
        if d["version"] != TALLY_VERSION or type(d["version"]) is not int:
            raise _bad("version", f"unsupported version {d['version']!r}")
        if type(d["voters"]) is not dict or type(d["options"]) is not dict:
            raise _bad("result", "voters and options must be objects")
        voters = {k: VoterResult.from_dict(v, f"voters.{k}") for k, v in d["voters"].items()}
        options = {k: OptionResult.from_dict(v, f"options.{k}") for k, v in d["options"].items()}
        battles: list[tuple[str | None, str | None, int]] = []
        if type(d["battles"]) is not list:
            raise _bad("battles", "must be an array")
        for n, row in enumerate(d["battles"]):
            if (
                type(row) is not list
                or len(row) != 3
                or any(x is not None and x not in options for x in row[:2])
            ):
                raise _bad(f"battles[{n}]", "must be [winner, loser, count] with option ids")
            battles.append((row[0], row[1], _int(row[2], f"battles[{n}][2]")))
        winner = d["winner"]
        if winner is not None and winner not in options:
            raise _bad("winner", f"unknown option {winner!r}")
        result = cls(
            voters=voters,
            options=options,
            status_quo_schulze_rank=_int(d["status_quo_schulze_rank"], "status_quo_schulze_rank"),
            battles=tuple(battles),
            winner=winner,
            digest=str(d["digest"]),
        )
        if result.compute_digest() != d["digest"]:
            raise _bad("digest", "does not match the canonical encoding of the result")
        return result
