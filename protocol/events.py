"""Signed events: the envelope, every event type's body, and their validation.

Every leaf of a city log is one event (docs/PROTOCOL.md §3). An event is canonical JSON::

    {"author": <lqpk key>, "body": {...}, "prev": <hex id | null>, "seq": <int ≥ 1>,
     "sig": <base64 of 64 bytes>, "ts": <int seconds>, "type": <type name>, "v": 1}

* The *unsigned form* is that object without ``sig``; the event id is the lower-case hex SHA-256
  of its canonical bytes.
* ``sig`` is the author's Ed25519 signature over ``b"liquide/v1/" + type + b"\\n" + unsigned``.
* The Merkle leaf data is the canonical encoding of the whole signed event.

:meth:`Event.decode` checks that the bytes are canonical and that every field, in the envelope
and in the body, has the right type, size and form (a :class:`ValidationError` names the field;
unknown fields are rejected). It does not check the signature: :meth:`Event.verify` does, on the
raw bytes kept from decoding. Ballots, delegations, revocations, withdrawals and enrolments in
their plain form are recognised by one regular expression per type (the layout of the canonical
bytes) plus the checks no pattern can make; any other leaf takes one C parse and one re-encode
compared with the input. Either way decode costs a small fraction of the Ed25519 verification,
which stays the floor. A value outside the encoding profile (an integer beyond ±(2^53−1), a
non-NFC string) is an :class:`EncodingError`, exactly as :func:`protocol.encoding.decode` says.
Governance rules that depend on a log (who is enrolled, which issues exist) live in
:mod:`protocol.state`.

Rules that depend on the event alone, and that replay reports with their own finding reason, raise
a :class:`ValidationError` whose ``code`` is that reason: ``trustees_too_long``,
``duplicate_trustee``, ``self_delegation``, ``unknown_type``, ``too_large``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import json.encoder
import json.scanner
import re
import unicodedata
from binascii import a2b_base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, ClassVar, Final, TypeAlias, cast

from crypto import KeyFormatError, PublicKey, SecretKey, domain_message, public_key_raw, verify

from . import encoding
from ._drafts import draft, new
from .encoding import MAX_INT
from .errors import EncodingError, ValidationError

__all__ = [
    "CITIZEN_TYPES",
    "CITY_TYPES",
    "DEFAULT_POLICY",
    "EVENT_TYPES",
    "MAX_COUNT",
    "MAX_EVENT_BYTES",
    "MAX_GRADE",
    "MAX_MEMBERS",
    "MAX_NAME",
    "MAX_OPTIONS",
    "MAX_REF",
    "MAX_TRUSTEES",
    "MAX_WITNESSES",
    "SCOPES",
    "VERSION",
    "AreaBody",
    "AssemblyBody",
    "AssemblyJoinBody",
    "AttestBody",
    "BallotBody",
    "Body",
    "DelegateBody",
    "EnrolBody",
    "Event",
    "HandoverBody",
    "IssueAdoptBody",
    "IssueBody",
    "Majority",
    "Member",
    "Option",
    "Policy",
    "RevokeBody",
    "SealBody",
    "UnenrolBody",
    "WithdrawBody",
    "Witness",
    "parse_key",
]

# --- protocol constants (docs/PROTOCOL.md, section "constants") ----------------------------------

VERSION: Final = 1
MAX_EVENT_BYTES: Final = 65536
"""Largest canonical signed event, in bytes (a join carrying a 64-member definition fits)."""
MAX_TRUSTEES: Final = 8
"""Longest ranked trustee list in a delegation; the tally engine uses the same bound."""
MAX_OPTIONS: Final = 32
"""Most options of one issue (the status quo comes on top); the tally engine uses the same."""
MAX_MEMBERS: Final = 64
MAX_WITNESSES: Final = 64
MAX_NAME: Final = 200
"""Longest name or title, in code points."""
MAX_REF: Final = 128
"""Longest registrar reference, in ASCII characters."""
MAX_GRADE: Final = 2**31 - 1
"""Grades lie within ±MAX_GRADE (LiquidFeedback's INT4), as in the tally engine."""
MAX_COUNT: Final = 2**31 - 1
"""Bound of the integer fields of a majority requirement (the tally's total-weight bound)."""

SCOPES: Final = ("assembly", "area", "issue")

CITY_TYPES: Final = frozenset(
    {"assembly", "assembly.join", "area", "issue", "issue.adopt", "enrol", "unenrol", "seal",
     "attest", "handover"}
)  # fmt: skip
CITIZEN_TYPES: Final = frozenset({"delegate", "revoke", "ballot", "withdraw"})
EVENT_TYPES: Final = CITY_TYPES | CITIZEN_TYPES

_HEX_ID = re.compile(r"[0-9a-f]{64}")
_hex_match = _HEX_ID.fullmatch
# C2SP origins and signed-note key names: printable ASCII without space or '+'.
_NOTE_NAME = re.compile(r"[!-*,-~]{1,255}")
_OPTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_REF = re.compile(rf"[!-~]{{1,{MAX_REF}}}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ENVELOPE_KEYS: Final = frozenset({"v", "type", "author", "seq", "prev", "ts", "body", "sig"})
_SIG_MARK: Final = b',"sig":"'


# --- field helpers ----------------------------------------------------------------------------


def _fail(where: str, message: str, code: str | None = None) -> ValidationError:
    return ValidationError(f"{where}: {message}", code=code)


def _obj(value: Any, where: str, keys: frozenset[str]) -> dict[str, Any]:
    if type(value) is not dict:
        raise _fail(where, "must be an object")
    if value.keys() != keys:
        unknown = sorted(value.keys() - keys)
        if unknown:
            raise _fail(where, f"unknown field {unknown[0]!r}")
        missing = sorted(keys - value.keys())
        raise _fail(where, f"missing field {missing[0]!r}")
    return value


def _int(value: Any, where: str, lo: int = 0, hi: int = MAX_INT) -> int:
    if type(value) is not int:
        raise _fail(where, "must be an integer")
    if not lo <= value <= hi:
        raise _fail(where, f"must lie within [{lo}, {hi}]")
    return value


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if name else where


def _hex_id(value: Any, where: str, name: str = "") -> str:
    if type(value) is not str or _HEX_ID.fullmatch(value) is None:
        raise _fail(_at(where, name), "must be a lower-case hex SHA-256 id (64 characters)")
    return value


def _text(value: Any, where: str, limit: int = MAX_NAME) -> str:
    if type(value) is not str:
        raise _fail(where, "must be a string")
    if not 1 <= len(value) <= limit:
        raise _fail(where, f"must be 1 to {limit} characters long")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(where, "contains a lone surrogate") from None
        if not unicodedata.is_normalized("NFC", value):
            raise _fail(where, "must be NFC-normalised")
    if _CONTROL.search(value):
        raise _fail(where, "contains a control character")
    return value


def _name(value: Any, where: str) -> str:
    if type(value) is not str or not _NOTE_NAME.fullmatch(value):
        raise _fail(where, "must be 1 to 255 printable ASCII characters without space or '+'")
    return value


def _list(value: Any, where: str, lo: int, hi: int, code: str | None = None) -> list[Any]:
    if type(value) is not list:
        raise _fail(where, "must be an array")
    if not lo <= len(value) <= hi:
        raise _fail(where, f"must hold {lo} to {hi} items", code if len(value) > hi else None)
    return value


def parse_key(value: Any, where: str, name: str = "") -> bytes:
    """Return the raw 32 bytes of a public key's canonical ``lqpk1…`` text.

    Raises :class:`ValidationError` naming ``where`` (``where.name`` if ``name`` is given) when
    ``value`` is not such a text.
    """
    raw = public_key_raw(value) if type(value) is str else None
    if raw is None:
        where = _at(where, name)
        detail = "must be a public key in canonical lqpk1… text"
        if type(value) is str:
            try:
                PublicKey.from_text(value)
            except KeyFormatError as exc:
                detail = f"{detail} ({exc.message})"
            else:
                detail = f"{detail} (lower case)"
        raise _fail(where, detail)
    return raw


# --- bodies -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """A member city pinned by an assembly: its log origin and its key."""

    origin: str
    key: str

    KEYS: ClassVar[frozenset[str]] = frozenset({"origin", "key"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "member") -> Member:
        d = _obj(d, where, cls.KEYS)
        origin = _name(d["origin"], f"{where}.origin")
        parse_key(d["key"], f"{where}.key")
        return cls(origin, d["key"])

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "key": self.key}


@dataclass(frozen=True, slots=True)
class Witness:
    """A witness pinned by an assembly: its signed-note key name and its key."""

    name: str
    key: str

    KEYS: ClassVar[frozenset[str]] = frozenset({"name", "key"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "witness") -> Witness:
        d = _obj(d, where, cls.KEYS)
        name = _name(d["name"], f"{where}.name")
        parse_key(d["key"], f"{where}.key")
        return cls(name, d["key"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key}


@dataclass(frozen=True, slots=True)
class AssemblyBody:
    """``assembly``: an assembly's definition. Its id is the id of the event."""

    name: str
    members: tuple[Member, ...]
    witnesses: tuple[Witness, ...]
    k: int
    grace: int

    TYPE: ClassVar[str] = "assembly"
    KEYS: ClassVar[frozenset[str]] = frozenset({"name", "members", "witnesses", "k", "grace"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> AssemblyBody:
        d = _obj(d, where, cls.KEYS)
        name = _text(d["name"], f"{where}.name")
        members = tuple(
            Member.from_dict(m, f"{where}.members[{i}]")
            for i, m in enumerate(_list(d["members"], f"{where}.members", 1, MAX_MEMBERS))
        )
        witnesses = tuple(
            Witness.from_dict(w, f"{where}.witnesses[{i}]")
            for i, w in enumerate(_list(d["witnesses"], f"{where}.witnesses", 0, MAX_WITNESSES))
        )
        if len({m.origin for m in members}) != len(members):
            raise _fail(f"{where}.members", "origins must be unique")
        if len({m.key for m in members}) != len(members):
            raise _fail(f"{where}.members", "keys must be unique")
        if len({w.name for w in witnesses}) != len(witnesses):
            raise _fail(f"{where}.witnesses", "names must be unique")
        if len({w.key for w in witnesses}) != len(witnesses):
            raise _fail(f"{where}.witnesses", "keys must be unique")
        k = _int(d["k"], f"{where}.k", 0, len(witnesses))
        grace = _int(d["grace"], f"{where}.grace")
        return cls(name, members, witnesses, k, grace)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "members": [m.to_dict() for m in self.members],
            "witnesses": [w.to_dict() for w in self.witnesses],
            "k": self.k,
            "grace": self.grace,
        }

    def member(self, origin: str) -> Member | None:
        """The member pinned under ``origin``, or None."""
        return next((m for m in self.members if m.origin == origin), None)

    def member_by_key(self, key: str) -> Member | None:
        """The member pinned with ``key``, or None."""
        return next((m for m in self.members if m.key == key), None)


@dataclass(frozen=True, slots=True)
class AssemblyJoinBody:
    """``assembly.join``: a member city joins; carries the signed ``assembly`` event."""

    assembly: Event

    TYPE: ClassVar[str] = "assembly.join"
    KEYS: ClassVar[frozenset[str]] = frozenset({"assembly"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> AssemblyJoinBody:
        d = _obj(d, where, cls.KEYS)
        return cls(_carried(d["assembly"], f"{where}.assembly", "assembly"))

    def to_dict(self) -> dict[str, Any]:
        return {"assembly": self.assembly.to_dict()}


@dataclass(frozen=True, slots=True)
class AreaBody:
    """``area``: an area of an assembly. Its id is the id of the event."""

    assembly: str
    name: str

    TYPE: ClassVar[str] = "area"
    KEYS: ClassVar[frozenset[str]] = frozenset({"assembly", "name"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> AreaBody:
        d = _obj(d, where, cls.KEYS)
        return cls(_hex_id(d["assembly"], f"{where}.assembly"), _text(d["name"], f"{where}.name"))

    def to_dict(self) -> dict[str, Any]:
        return {"assembly": self.assembly, "name": self.name}


@dataclass(frozen=True, slots=True)
class Majority:
    """A majority requirement in the tally policy (LiquidFeedback's fields)."""

    num: int
    den: int
    strict: bool
    positive: int
    non_negative: int

    KEYS: ClassVar[frozenset[str]] = frozenset({"num", "den", "strict", "positive", "non_negative"})

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Majority:
        d = _obj(d, where, cls.KEYS)
        den = _int(d["den"], f"{where}.den", 1, MAX_COUNT)
        num = _int(d["num"], f"{where}.num", 0, den)
        if type(d["strict"]) is not bool:
            raise _fail(f"{where}.strict", "must be true or false")
        return cls(
            num,
            den,
            d["strict"],
            _int(d["positive"], f"{where}.positive", 0, MAX_COUNT),
            _int(d["non_negative"], f"{where}.non_negative", 0, MAX_COUNT),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "num": self.num,
            "den": self.den,
            "strict": self.strict,
            "positive": self.positive,
            "non_negative": self.non_negative,
        }


_RULES: Final = ("dfd", "bfd", "minsum")
_STRENGTHS: Final = ("tuple", "simple")
_TIE_BREAKING: Final = ("variant1", "variant2", "simple")


@dataclass(frozen=True, slots=True)
class Policy:
    """An issue's tally policy, in the TallyInput ``policy`` format (docs/TALLY.md)."""

    delegation_rule: str = "bfd"
    defeat_strength: str = "tuple"
    tie_breaking: str = "variant1"
    direct_majority: Majority = Majority(1, 2, strict=True, positive=0, non_negative=0)
    indirect_majority: Majority = Majority(1, 2, strict=True, positive=0, non_negative=0)
    no_reverse_beat_path: bool = False
    no_multistage_majority: bool = False

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"delegation_rule", "defeat_strength", "tie_breaking", "direct_majority",
         "indirect_majority", "no_reverse_beat_path", "no_multistage_majority"}
    )  # fmt: skip

    @classmethod
    def from_dict(cls, d: Any, where: str = "policy") -> Policy:
        d = _obj(d, where, cls.KEYS)
        for name, allowed in (
            ("delegation_rule", _RULES),
            ("defeat_strength", _STRENGTHS),
            ("tie_breaking", _TIE_BREAKING),
        ):
            if d[name] not in allowed or type(d[name]) is not str:
                raise _fail(f"{where}.{name}", f"must be one of {', '.join(allowed)}")
        for name in ("no_reverse_beat_path", "no_multistage_majority"):
            if type(d[name]) is not bool:
                raise _fail(f"{where}.{name}", "must be true or false")
        if d["no_reverse_beat_path"] and d["defeat_strength"] != "tuple":
            # As in LiquidFeedback: a reverse beat path is undefined for "simple" strengths.
            raise _fail(f"{where}.no_reverse_beat_path", 'requires defeat_strength "tuple"')
        return cls(
            d["delegation_rule"],
            d["defeat_strength"],
            d["tie_breaking"],
            Majority.from_dict(d["direct_majority"], f"{where}.direct_majority"),
            Majority.from_dict(d["indirect_majority"], f"{where}.indirect_majority"),
            d["no_reverse_beat_path"],
            d["no_multistage_majority"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "delegation_rule": self.delegation_rule,
            "defeat_strength": self.defeat_strength,
            "tie_breaking": self.tie_breaking,
            "direct_majority": self.direct_majority.to_dict(),
            "indirect_majority": self.indirect_majority.to_dict(),
            "no_reverse_beat_path": self.no_reverse_beat_path,
            "no_multistage_majority": self.no_multistage_majority,
        }


DEFAULT_POLICY: Final = Policy()


@dataclass(frozen=True, slots=True)
class Option:
    """An option of an issue: an id fixed by the definition, and a title."""

    id: str
    title: str

    KEYS: ClassVar[frozenset[str]] = frozenset({"id", "title"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "option") -> Option:
        d = _obj(d, where, cls.KEYS)
        if type(d["id"]) is not str or not _OPTION_ID.fullmatch(d["id"]):
            raise _fail(f"{where}.id", "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}")
        return cls(d["id"], _text(d["title"], f"{where}.title"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title}


@dataclass(frozen=True, slots=True)
class IssueBody:
    """``issue``: an issue of an area. Its id is the id of the event."""

    assembly: str
    area: str
    title: str
    options: tuple[Option, ...]
    opens: int
    closes: int
    policy: Policy
    _option_ids: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The option ids in definition order, kept: replay checks every ballot against them."""

    TYPE: ClassVar[str] = "issue"
    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"assembly", "area", "title", "options", "opens", "closes", "policy"}
    )

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> IssueBody:
        d = _obj(d, where, cls.KEYS)
        options = tuple(
            Option.from_dict(o, f"{where}.options[{i}]")
            for i, o in enumerate(_list(d["options"], f"{where}.options", 1, MAX_OPTIONS))
        )
        if len({o.id for o in options}) != len(options):
            raise _fail(f"{where}.options", "option ids must be unique")
        opens = _int(d["opens"], f"{where}.opens")
        closes = _int(d["closes"], f"{where}.closes")
        if closes <= opens:
            raise _fail(f"{where}.closes", "must be later than opens")
        return cls(
            _hex_id(d["assembly"], f"{where}.assembly"),
            _hex_id(d["area"], f"{where}.area"),
            _text(d["title"], f"{where}.title"),
            options,
            opens,
            closes,
            Policy.from_dict(d["policy"], f"{where}.policy"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "assembly": self.assembly,
            "area": self.area,
            "title": self.title,
            "options": [o.to_dict() for o in self.options],
            "opens": self.opens,
            "closes": self.closes,
            "policy": self.policy.to_dict(),
        }

    def __post_init__(self) -> None:
        object.__setattr__(self, "_option_ids", tuple(o.id for o in self.options))

    def option_ids(self) -> tuple[str, ...]:
        """The option ids in definition order."""
        return self._option_ids


@dataclass(frozen=True, slots=True)
class IssueAdoptBody:
    """``issue.adopt``: carries the signed ``issue`` event and its signed ``area`` event."""

    issue: Event
    area: Event

    TYPE: ClassVar[str] = "issue.adopt"
    KEYS: ClassVar[frozenset[str]] = frozenset({"issue", "area"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> IssueAdoptBody:
        d = _obj(d, where, cls.KEYS)
        return cls(
            _carried(d["issue"], f"{where}.issue", "issue"),
            _carried(d["area"], f"{where}.area", "area"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"issue": self.issue.to_dict(), "area": self.area.to_dict()}


@dataclass(frozen=True, slots=True)
class EnrolBody:
    """``enrol``: a citizen's key and an opaque registrar reference (no personal data)."""

    key: str
    ref: str

    TYPE: ClassVar[str] = "enrol"
    KEYS: ClassVar[frozenset[str]] = frozenset({"key", "ref"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> EnrolBody:
        d = _obj(d, where, cls.KEYS)
        parse_key(d["key"], f"{where}.key")
        if type(d["ref"]) is not str or not _REF.fullmatch(d["ref"]):
            raise _fail(f"{where}.ref", f"must be 1 to {MAX_REF} printable ASCII characters")
        return cls(d["key"], d["ref"])

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class UnenrolBody(EnrolBody):
    """``unenrol``: removes a citizen's key; ``ref`` is the registrar's reference for it."""

    TYPE: ClassVar[str] = "unenrol"

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> UnenrolBody:
        e = EnrolBody.from_dict(d, where)
        return cls(e.key, e.ref)


@dataclass(frozen=True, slots=True)
class SealBody:
    """``seal``: the city closes its part of an issue's record at this leaf."""

    issue: str

    TYPE: ClassVar[str] = "seal"
    KEYS: ClassVar[frozenset[str]] = frozenset({"issue"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> SealBody:
        d = _obj(d, where, cls.KEYS)
        return cls(_hex_id(d["issue"], f"{where}.issue"))

    def to_dict(self) -> dict[str, Any]:
        return {"issue": self.issue}


@dataclass(frozen=True, slots=True)
class AttestBody:
    """``attest``: the tally result digest this city computed for a record of an issue."""

    record: str
    digest: str
    issue: str

    TYPE: ClassVar[str] = "attest"
    KEYS: ClassVar[frozenset[str]] = frozenset({"record", "digest", "issue"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> AttestBody:
        d = _obj(d, where, cls.KEYS)
        return cls(
            _hex_id(d["record"], f"{where}.record"),
            _hex_id(d["digest"], f"{where}.digest"),
            _hex_id(d["issue"], f"{where}.issue"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "digest": self.digest, "issue": self.issue}


@dataclass(frozen=True, slots=True)
class HandoverBody:
    """``handover``: the city key in effect names its successor (docs/PROTOCOL.md §3).

    Signed by the key in effect at its leaf; from the next leaf on, every city event and every
    checkpoint of the log is signed by ``key``. Which keys may be named is a replay rule
    (:mod:`protocol.state`): never a key this city used before, nor an enrolled citizen's.
    """

    key: str

    TYPE: ClassVar[str] = "handover"
    KEYS: ClassVar[frozenset[str]] = frozenset({"key"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> HandoverBody:
        d = _obj(d, where, cls.KEYS)
        parse_key(d["key"], f"{where}.key")
        return cls(d["key"])

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key}


def _scope(value: Any, where: str) -> str:
    if type(value) is not str or value not in SCOPES:
        raise _fail(f"{where}.scope", "must be assembly, area or issue")
    return value


@dataclass(frozen=True, slots=True)
class DelegateBody:
    """``delegate``: a ranked trustee list for one scope; an empty list blocks broader scopes."""

    scope: str
    target: str
    trustees: tuple[str, ...]

    TYPE: ClassVar[str] = "delegate"
    KEYS: ClassVar[frozenset[str]] = frozenset({"scope", "target", "trustees"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> DelegateBody:
        if type(d) is not dict or d.keys() != cls.KEYS:
            d = _obj(d, where, cls.KEYS)
        scope = _scope(d["scope"], where)
        target = _hex_id(d["target"], where, "target")
        trustees = d["trustees"]
        if type(trustees) is not list or len(trustees) > MAX_TRUSTEES:
            _list(trustees, f"{where}.trustees", 0, MAX_TRUSTEES, "trustees_too_long")
        for i, t in enumerate(trustees):
            if type(t) is not str or public_key_raw(t) is None:
                parse_key(t, f"{where}.trustees[{i}]")
        if len(set(trustees)) != len(trustees):
            raise _fail(f"{where}.trustees", "lists a trustee twice", "duplicate_trustee")
        return cls(scope, target, tuple(trustees))

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "target": self.target, "trustees": list(self.trustees)}


@dataclass(frozen=True, slots=True)
class RevokeBody:
    """``revoke``: removes the author's delegation for one scope."""

    scope: str
    target: str

    TYPE: ClassVar[str] = "revoke"
    KEYS: ClassVar[frozenset[str]] = frozenset({"scope", "target"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> RevokeBody:
        d = _obj(d, where, cls.KEYS)
        return cls(_scope(d["scope"], where), _hex_id(d["target"], where, "target"))

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "target": self.target}


@dataclass(frozen=True, slots=True)
class BallotBody:
    """``ballot``: integer grades per option id; a missing grade means 0 (the status quo's)."""

    issue: str
    grades: Mapping[str, int]

    TYPE: ClassVar[str] = "ballot"
    KEYS: ClassVar[frozenset[str]] = frozenset({"issue", "grades"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> BallotBody:
        if type(d) is not dict or d.keys() != cls.KEYS:
            d = _obj(d, where, cls.KEYS)
        issue = d["issue"]
        if type(issue) is not str or _hex_match(issue) is None:
            _hex_id(issue, where, "issue")
        grades = d["grades"]
        if type(grades) is not dict:
            raise _fail(f"{where}.grades", "must be an object")
        if len(grades) > MAX_OPTIONS:
            raise _fail(f"{where}.grades", f"must hold at most {MAX_OPTIONS} grades")
        option_id = _OPTION_ID.fullmatch
        for k, v in grades.items():
            if type(k) is not str or option_id(k) is None:
                raise _fail(f"{where}.grades", f"{k!r} is not an option id")
            if type(v) is not int or not -MAX_GRADE <= v <= MAX_GRADE:
                _int(v, f"{where}.grades.{k}", -MAX_GRADE, MAX_GRADE)
        return cls(issue, dict(grades))

    def to_dict(self) -> dict[str, Any]:
        return {"issue": self.issue, "grades": dict(self.grades)}


@dataclass(frozen=True, slots=True)
class WithdrawBody:
    """``withdraw``: removes the author's ballot on an issue (they delegate again)."""

    issue: str

    TYPE: ClassVar[str] = "withdraw"
    KEYS: ClassVar[frozenset[str]] = frozenset({"issue"})

    @classmethod
    def from_dict(cls, d: Any, where: str = "body") -> WithdrawBody:
        d = _obj(d, where, cls.KEYS)
        return cls(_hex_id(d["issue"], where, "issue"))

    def to_dict(self) -> dict[str, Any]:
        return {"issue": self.issue}


Body: TypeAlias = (
    AssemblyBody
    | AssemblyJoinBody
    | AreaBody
    | IssueBody
    | IssueAdoptBody
    | EnrolBody
    | UnenrolBody
    | SealBody
    | AttestBody
    | HandoverBody
    | DelegateBody
    | RevokeBody
    | BallotBody
    | WithdrawBody
)

_BODIES: Final[dict[str, Any]] = {
    cls.TYPE: cls
    for cls in (
        AssemblyBody,
        AssemblyJoinBody,
        AreaBody,
        IssueBody,
        IssueAdoptBody,
        EnrolBody,
        UnenrolBody,
        SealBody,
        AttestBody,
        HandoverBody,
        DelegateBody,
        RevokeBody,
        BallotBody,
        WithdrawBody,
    )
}
assert _BODIES.keys() == EVENT_TYPES

# The domain prefix of each type's signed message (§2), built once.
_DOMAIN_PREFIXES: Final = {t: domain_message(t, b"") for t in EVENT_TYPES}


def _sig(value: Any, where: str) -> bytes:
    # 64 bytes are 88 characters ending in "=="; the last data character then carries 2 bits
    # and 4 zero bits, so it is one of A, Q, g, w: exactly the canonical encodings.
    if type(value) is str and len(value) == 88 and value[85:] in _SIG_ENDS:
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            pass
    raise _fail(f"{where}.sig", "must be the padded base64 of 64 bytes")


_SIG_ENDS: Final = frozenset({"A==", "Q==", "g==", "w=="})


def _carried(value: Any, where: str, type_: str) -> Event:
    """A signed event of another log carried inside a body (a definition); signature unchecked."""
    if type(value) is not dict:
        raise _fail(where, "must be a signed event object")
    try:
        ev = Event.from_dict(value, where)
    except ValidationError as exc:
        # The reason codes of decoding describe the outer event: a defect of a carried one is
        # just an invalid field of its body.
        raise ValidationError(exc.message) from None
    if ev.type != type_:
        raise _fail(f"{where}.type", f"must be {type_!r}")
    return ev


# --- the envelope ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Event:
    """A decoded, field-validated signed event.

    Build one with :meth:`create` (signing), :meth:`decode` (leaf bytes) or :meth:`from_dict`.
    Two events are equal when their canonical signed bytes are.
    """

    type: str
    author: str
    seq: int
    prev: str | None
    ts: int
    body: Body
    sig: bytes
    id: str
    leaf: bytes = field(repr=False)
    """The canonical signed encoding: the Merkle leaf data."""
    author_raw: bytes = field(repr=False)
    _unsigned: bytes = field(repr=False)

    v: ClassVar[int] = VERSION

    # construction ---------------------------------------------------------------------------

    @classmethod
    def create(  # noqa: PLR0917 (the order of the envelope's fields)
        cls,
        sk: SecretKey,
        type: str,  # noqa: A002 (the protocol's field name)
        body: Body | Mapping[str, Any],
        seq: int,
        prev: str | None,
        ts: int,
    ) -> Event:
        """Sign a new event by ``sk``; return it. Raises :class:`ValidationError`."""
        body_dict = body if isinstance(body, Mapping) else body.to_dict()
        unsigned = {
            "v": VERSION,
            "type": type,
            "author": sk.public_key.to_text(),
            "seq": seq,
            "prev": prev,
            "ts": ts,
            "body": body_dict,
        }
        try:
            message = encoding.encode(unsigned)
        except EncodingError as exc:
            raise ValidationError(f"event: {exc.message}") from None
        if type not in EVENT_TYPES:
            raise ValidationError(f"type: unknown event type {type!r}", code="unknown_type")
        sig = sk.sign(type, message)
        return cls.from_dict({**unsigned, "sig": base64.b64encode(sig).decode("ascii")})

    @classmethod
    def from_dict(cls, d: Any, where: str = "event") -> Event:
        """Validate a signed event given as a JSON value; raise :class:`ValidationError`."""
        try:
            leaf = encoding.encode(d)
        except EncodingError as exc:
            raise ValidationError(f"{where}: {exc.message}") from None
        return cls._from_leaf(leaf, json.loads(leaf), where)

    @classmethod
    def decode(cls, leaf: bytes | bytearray | memoryview) -> Event:
        """Decode and validate leaf bytes (no signature check).

        Raises :class:`EncodingError` when the bytes are not canonical JSON of the profile and
        :class:`ValidationError` (its ``code`` the finding reason) when a field breaks a rule.
        """
        if type(leaf) is not bytes:
            leaf = bytes(leaf)
        if len(leaf) > MAX_EVENT_BYTES:
            raise ValidationError(
                f"event: {len(leaf)} bytes exceed MAX_EVENT_BYTES ({MAX_EVENT_BYTES})",
                code="too_large",
            )
        try:
            text = leaf.decode("utf-8")
        except UnicodeDecodeError:
            encoding.decode(leaf)  # raises EncodingError naming the byte
            raise  # pragma: no cover (encoding.decode refuses invalid UTF-8)
        # The hot types in their plain form are recognised by one regular expression each;
        # anything else (other types, escapes in a reference, a field out of range) is left to
        # the general path, which gives the precise error.
        ev = _decode_fast(leaf, text)
        if ev is not None:
            return ev
        return cls._decode_general(leaf, text)

    @classmethod
    def _decode_general(cls, leaf: bytes, text: str) -> Event:
        """Decode any leaf: the C parser, one re-encode compared with the input, the validators."""
        try:
            obj, end = _scan(text, 0)
            same = end == len(text) and _canonical_text(obj) == text
        except (ValueError, RecursionError, StopIteration, EncodingError):
            same = False
        if not same:
            encoding.decode(leaf)  # raises EncodingError with the precise defect
            raise EncodingError("event bytes are not in canonical form")  # pragma: no cover
        try:
            return cls._from_leaf(leaf, obj, "event")
        except ValidationError:
            # Equal bytes after a re-encode prove the layout (no whitespace, sorted unique keys,
            # canonical escapes and numbers), not the profile's value rules: an integer beyond
            # ±(2^53−1) or a non-NFC string re-encodes unchanged. The validators refuse every
            # such value, and the profile comes first (§3.1), so a refusal is re-examined here.
            encoding.decode(leaf)
            raise

    @classmethod
    def _from_leaf(cls, leaf: bytes, d: Any, where: str) -> Event:
        if type(d) is not dict:
            raise _fail(where, "must be an object")
        if d.keys() != _ENVELOPE_KEYS:
            _obj(d, where, _ENVELOPE_KEYS)
        if d["v"] != VERSION or type(d["v"]) is not int:
            raise _fail(f"{where}.v", f"must be {VERSION}")
        type_ = d["type"]
        body_cls = _BODIES.get(type_) if type(type_) is str else None
        if body_cls is None:
            raise _fail(f"{where}.type", f"unknown event type {type_!r}", "unknown_type")
        author = d["author"]
        author_raw = public_key_raw(author) if type(author) is str else None
        if author_raw is None:
            author_raw = parse_key(author, where, "author")
        seq = d["seq"]
        if type(seq) is not int or not 1 <= seq <= MAX_INT:
            raise _fail(f"{where}.seq", f"must be an integer within [1, {MAX_INT}]")
        prev = d["prev"]
        if seq == 1:
            if prev is not None:
                raise _fail(f"{where}.prev", "must be null at seq 1")
        elif type(prev) is not str or _hex_match(prev) is None:
            _hex_id(prev, where, "prev")
        ts = d["ts"]
        if type(ts) is not int or not 0 <= ts <= MAX_INT:
            raise _fail(f"{where}.ts", f"must be an integer within [0, {MAX_INT}]")
        sig = _sig(d["sig"], where)
        body = body_cls.from_dict(d["body"], "event.body" if where == "event" else f"{where}.body")
        if type_ == "delegate" and author in body.trustees:
            raise _fail(f"{where}.body.trustees", "delegates to its own author", "self_delegation")
        # The unsigned form is the signed one without `"sig":"…",`. Keys are sorted, so the
        # envelope's sig is followed only by ts (an integer), type (a known name) and v: the last
        # occurrence of `,"sig":"` is the envelope's, whatever the body carries.
        start = leaf.rfind(_SIG_MARK)
        end = start + len(_SIG_MARK) + 88
        if start < 0 or leaf[end : end + 2] != b'",':  # pragma: no cover (canonical layout)
            raise _fail(f"{where}.sig", "not where the canonical form puts it")
        unsigned = leaf[: start + 1] + leaf[end + 2 :]
        return cls(
            type_,
            author,
            seq,
            prev,
            ts,
            body,
            sig,
            hashlib.sha256(unsigned).hexdigest(),
            leaf,
            author_raw,
            unsigned,
        )

    # wire forms -----------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The canonical signed encoding (the Merkle leaf data)."""
        return self.leaf

    def unsigned_bytes(self) -> bytes:
        """The canonical unsigned encoding: what the id hashes and the signature covers."""
        return self._unsigned

    def to_dict(self) -> dict[str, Any]:
        """The signed event as a JSON value (``from_dict(to_dict())`` round-trips)."""
        return {
            "v": VERSION,
            "type": self.type,
            "author": self.author,
            "seq": self.seq,
            "prev": self.prev,
            "ts": self.ts,
            "body": self.body.to_dict(),
            "sig": base64.b64encode(self.sig).decode("ascii"),
        }

    # checks ---------------------------------------------------------------------------------

    def verify(self) -> None:
        """Check the author's signature; raise :class:`crypto.BadSignatureError`."""
        verify(self.author_raw, self.type, self._unsigned, self.sig)

    def signed_message(self) -> bytes:
        """The signature followed by the domain message it covers: what libsodium's
        ``crypto_sign_open`` checks under :attr:`author_raw` (for batch verification)."""
        return self.sig + _DOMAIN_PREFIXES[self.type] + self._unsigned

    def is_city_type(self) -> bool:
        """True when this type is authored by a city (False: by a citizen)."""
        return self.type in CITY_TYPES

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.leaf == self.leaf

    def __hash__(self) -> int:
        return hash(self.leaf)


def _no_float(text: str) -> Any:
    raise EncodingError(f"number {text} is not an integer (floats are not allowed)")


def _no_constant(text: str) -> Any:
    raise EncodingError(f"{text} is not allowed")


# The C scanner only calls these hooks when it meets a float or a NaN/Infinity constant. The
# scanner and the encoder are the C ones that json.loads and json.dumps(sort_keys=True,
# separators=(",", ":"), ensure_ascii=False) use, built once instead of per call.
_scan: Any = json.scanner.make_scanner(
    cast(Any, json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant))
)
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    # c_make_encoder(markers, default, encoder, indent, key_sep, item_sep, sort_keys, skipkeys,
    # allow_nan) takes positional arguments only.
    _SORT_KEYS, _SKIP_KEYS, _ALLOW_NAN = True, False, False
    _c_encode = _c_make_encoder(
        None, None, json.encoder.encode_basestring, None, ":", ",", _SORT_KEYS, _SKIP_KEYS,
        _ALLOW_NAN,
    )  # fmt: skip

    def _canonical_text(obj: Any) -> str:
        return "".join(_c_encode(obj, 0))

else:  # pragma: no cover (Pythons without the C accelerator)
    _py_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def _canonical_text(obj: Any) -> str:
        return _py_encode.encode(obj)


# --- the fast path of decode ------------------------------------------------------------------
#
# Ballots, delegations, revocations, withdrawals and enrolments are nearly every leaf of a log.
# Their canonical form is regular: fixed keys in sorted order, and values that are hex ids, keys,
# base64, option ids, integers or escape-free ASCII. A regular expression per type that matches
# exactly those bytes proves the layout (no whitespace, sorted unique keys, no escape, canonical
# integers, ASCII, hence NFC and no surrogate); what remains is checked below (key checksums,
# integer ranges, grade keys sorted and unique, trustee rules, seq/prev). Whatever falls outside
# returns None, and the general path decides. tests/protocol/test_events.py checks with
# hypothesis that the fast path accepts exactly what the general path accepts, with equal events.
#
# A key's pattern only fixes its length and that it holds no quote: the checksum check that
# follows (public_key_raw) accepts nothing but the canonical lower-case text, whose characters
# the bech32 alphabet already restricts, and it tests each character faster than the pattern
# engine's character classes. The signature's characters are likewise left to strict base64
# decoding. Both checks come before any use of the match's offsets.


def _at_most(limit: int) -> str:
    """A pattern of the decimal integers 1 to ``limit`` in canonical form (no leading zero)."""
    digits = str(limit)
    n = len(digits)
    shorter = [f"[1-9][0-9]{{0,{n - 2}}}"] if n > 1 else []
    below = [
        f"{digits[:i]}[{int(i == 0)}-{int(d) - 1}][0-9]{{{n - 1 - i}}}"
        for i, d in enumerate(digits)
        if int(d) - 1 >= int(i == 0)
    ]
    return "(?:" + "|".join([*shorter, *below, digits]) + ")"


_F_KEY = 'lqpk1[^"]{58}'
_F_HEX = "[0-9a-f]{64}"
# A grade's pattern proves its range, ±MAX_GRADE.
_F_GRADE = f'"[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}":(?:0|-?{_at_most(MAX_GRADE)})'
_F_SCOPE = '"scope":"(?P<scope>assembly|area|issue)","target":"(?P<target>' + _F_HEX + ')"'
_F_BODIES: Final = {
    "ballot": f'"grades":\\{{(?P<grades>(?:{_F_GRADE}(?:,{_F_GRADE})*)?)\\}},'
    f'"issue":"(?P<issue>{_F_HEX})"',
    "delegate": f'{_F_SCOPE},"trustees":\\[(?P<trustees>(?:"{_F_KEY}"(?:,"{_F_KEY}")*)?)\\]',
    "revoke": _F_SCOPE,
    "withdraw": f'"issue":"(?P<issue>{_F_HEX})"',
    # A reference with '"' or '\\' is escaped in JSON: the general path takes those.
    "enrol": f'"key":"(?P<key>{_F_KEY})","ref":"(?P<ref>[!#-\\[\\]-~]{{1,{MAX_REF}}})"',
}
_F_BODIES["unenrol"] = _F_BODIES["enrol"]


def _fast_pattern(type_: str, body: str) -> re.Pattern[str]:
    return re.compile(
        f'\\{{"author":"(?P<author>{_F_KEY})","body":\\{{{body}\\}},'
        f'"prev":(?:null|"(?P<prev>{_F_HEX})"),"seq":(?P<seq>[1-9][0-9]{{0,15}}),'
        f'"sig":"(?P<sig>[^"]{{85}}[AQgw]==)","ts":(?P<ts>0|[1-9][0-9]{{0,15}}),'
        f'"type":"{re.escape(type_)}","v":1\\}}'
    )


_TYPE_MARK: Final = '"type":"'
_TYPE_MARK_LEN: Final = len(_TYPE_MARK)


def _decode_fast(leaf: bytes, text: str) -> Event | None:
    """The event of a plain hot-type leaf, or None when the general path must decide."""
    # A canonical leaf ends with `"type":"<type>","v":1}`; for any other text this slice is no
    # fast type (or the pattern below does not match).
    fast = _FAST.get(text[text.rfind(_TYPE_MARK) + _TYPE_MARK_LEN : -8])
    if fast is None:
        return None
    pattern, body_of = fast
    m = pattern.fullmatch(text)
    if m is None:
        return None
    author, prev, seq, sig, ts = m.group("author", "prev", "seq", "sig", "ts")
    author_raw = public_key_raw(author)
    seq = int(seq)
    ts = int(ts)
    if author_raw is None or seq > MAX_INT or ts > MAX_INT or (seq == 1) is (prev is not None):
        return None
    # The pattern fixed the signature's length, its padding and the canonical last character;
    # strict decoding refuses any other character than base64's (a non-ASCII one included).
    try:
        raw_sig = a2b_base64(sig, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    body = body_of(m, author)
    if body is None:
        return None
    # The keys and the signature are now proven ASCII, as is the rest of the match: string
    # offsets are byte offsets. The unsigned bytes are the leaf without `"sig":"<88>",` (§3.1).
    start, end = m.span("sig")
    unsigned = leaf[: start - 7] + leaf[end + 2 :]
    ev = new(_EventDraft)
    ev.type = body.TYPE
    ev.author = author
    ev.seq = seq
    ev.prev = prev
    ev.ts = ts
    ev.body = body
    ev.sig = raw_sig
    ev.id = sha256(unsigned).hexdigest()
    ev.leaf = leaf
    ev.author_raw = author_raw
    ev._unsigned = unsigned
    ev.__class__ = Event
    done: Event = ev  # a draft is typed Any
    return done


def _fast_ballot(m: re.Match[str], author: str) -> BallotBody | None:
    issue, text = m.group("issue", "grades")
    if not text:
        grades: dict[str, int] = {}
    elif "," not in text:
        # One grade: the pattern proved `"<option id>":<integer within ±MAX_GRADE>`.
        key, value = text.split(":")
        grades = {key[1:-1]: int(value)}
    else:
        # The pattern proved the object's layout; the C scanner builds it from its opening brace.
        grades = _scan(m.string, m.start("grades") - 1)[0]
        keys = list(grades)
        if (
            len(keys) != text.count(",") + 1  # a repeated key
            or keys != sorted(keys)
            or len(keys) > MAX_OPTIONS
        ):
            return None
    body = new(_BallotDraft)
    body.issue = issue
    body.grades = grades
    body.__class__ = BallotBody
    done: BallotBody = body
    return done


def _fast_delegate(m: re.Match[str], author: str) -> DelegateBody | None:
    scope, target, text = m.group("scope", "target", "trustees")
    trustees = tuple(text[1:-1].split('","')) if text else ()
    if (
        len(trustees) > MAX_TRUSTEES
        or len(set(trustees)) != len(trustees)
        or author in trustees
        or None in map(public_key_raw, trustees)
    ):
        return None
    body = new(_DelegateDraft)
    body.scope = scope
    body.target = target
    body.trustees = trustees
    body.__class__ = DelegateBody
    done: DelegateBody = body
    return done


def _fast_revoke(m: re.Match[str], author: str) -> RevokeBody:
    scope, target = m.group("scope", "target")
    body = new(_RevokeDraft)
    body.scope = scope
    body.target = target
    body.__class__ = RevokeBody
    done: RevokeBody = body
    return done


def _fast_withdraw(m: re.Match[str], author: str) -> WithdrawBody:
    body = new(_WithdrawDraft)
    body.issue = m.group("issue")
    body.__class__ = WithdrawBody
    done: WithdrawBody = body
    return done


def _fast_enrol(cls: type[EnrolBody], cls_draft: Any) -> Any:
    def enrol(m: re.Match[str], author: str) -> EnrolBody | None:
        key, ref = m.group("key", "ref")
        if public_key_raw(key) is None:
            return None
        body = new(cls_draft)
        body.key = key
        body.ref = ref
        body.__class__ = cls
        done: EnrolBody = body
        return done

    return enrol


# Events and the hot bodies are built as drafts (protocol/_drafts.py): less than half the time of
# their frozen dataclass __init__, a tenth of the fast path. tests/protocol/test_events.py compares
# the fast path's events with the general path's, field by field.
_EventDraft = draft(Event)
_BallotDraft = draft(BallotBody)
_DelegateDraft = draft(DelegateBody)
_RevokeDraft = draft(RevokeBody)
_WithdrawDraft = draft(WithdrawBody)
_EnrolDraft = draft(EnrolBody)
_UnenrolDraft = draft(UnenrolBody, _EnrolDraft)


_FAST: Final[dict[str, tuple[re.Pattern[str], Any]]] = {
    t: (_fast_pattern(t, _F_BODIES[t]), f)
    for t, f in (
        ("ballot", _fast_ballot),
        ("delegate", _fast_delegate),
        ("revoke", _fast_revoke),
        ("withdraw", _fast_withdraw),
        ("enrol", _fast_enrol(EnrolBody, _EnrolDraft)),
        ("unenrol", _fast_enrol(UnenrolBody, _UnenrolDraft)),
    )
}
