"""The observer's trust file: the pins an independent verification starts from.

A trust file pins an assembly (its id, and optionally its full signed definition) or, directly,
the member cities (log origin and key), the witnesses (name and key), the number ``k`` of
witness cosignatures required and the grace period. It may also pin further logs (a witness
city's own log, say) whose attestations should be compared. Nothing in it ever comes from the
node being checked: the observer obtains it out of band (``liquide trust export`` prints the
fingerprints to compare).

The JSON need not be canonical (it is a configuration file), but it is validated strictly: an
unknown field, a malformed key, a key ID that does not match its name, or a definition whose id
or signature is wrong raises :class:`~protocol.errors.ValidationError` naming the field
(docs/PROTOCOL.md, section "observer").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from crypto import BadSignatureError, KeyFormatError, PublicKey
from protocol.checkpoint import parse_cosigner_vkey
from protocol.encoding import encode
from protocol.errors import CheckpointError, ProtocolError, ValidationError
from protocol.events import VERSION, AssemblyBody, Event, HandoverBody, parse_key

__all__ = ["TRUST_FORMAT", "PinnedLog", "PinnedWitness", "Trust", "handover_keys"]

TRUST_FORMAT: Final = "liquide-trust/v1"
_HEX_ID = re.compile(r"[0-9a-f]{64}")
_MAX_GRACE = 2**53 - 1


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(f"{where}: {message}")


def _obj(d: Any, where: str, required: frozenset[str], optional: frozenset[str]) -> dict[str, Any]:
    if type(d) is not dict:
        raise _fail(where, "must be an object")
    unknown = sorted(d.keys() - required - optional)
    if unknown:
        raise _fail(where, f"unknown field {unknown[0]!r}")
    missing = sorted(required - d.keys())
    if missing:
        raise _fail(where, f"missing field {missing[0]!r}")
    return d


def _key_text(value: Any, where: str) -> PublicKey:
    parse_key(value, where)
    return PublicKey.from_text(value)


@dataclass(frozen=True, slots=True)
class PinnedLog:
    """A log the observer trusts to be the one signed by ``key`` under the name ``origin``."""

    origin: str
    key: PublicKey

    KEYS: ClassVar[frozenset[str]] = frozenset({"origin"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"vkey", "key"})

    @property
    def key_text(self) -> str:
        return self.key.to_text()

    def vkey(self) -> str:
        """The C2SP verifier key ``origin+keyid+base64(0x01 ‖ key)``."""
        return self.key.to_vkey(self.origin)

    @classmethod
    def from_dict(cls, d: Any, where: str) -> PinnedLog:
        """Parse ``{"origin", "vkey"}`` or ``{"origin", "key"}`` (or both, which must agree)."""
        d = _obj(d, where, cls.KEYS, cls.OPTIONAL)
        origin = d["origin"]
        if type(origin) is not str or not re.fullmatch(r"[!-*,-~]{1,255}", origin):
            raise _fail(f"{where}.origin", "must be a log origin (printable ASCII, no '+')")
        key: PublicKey | None = None
        if "vkey" in d:
            if type(d["vkey"]) is not str:
                raise _fail(f"{where}.vkey", "must be a C2SP verifier key string")
            try:
                name, key = PublicKey.from_vkey(d["vkey"])
            except KeyFormatError as exc:
                raise _fail(f"{where}.vkey", exc.message) from None
            if name != origin:
                raise _fail(f"{where}.vkey", f"is for the name {name!r}, not the origin {origin!r}")
        if "key" in d:
            k2 = _key_text(d["key"], f"{where}.key")
            if key is not None and k2 != key:
                raise _fail(f"{where}.key", "does not match the vkey")
            key = k2
        if key is None:
            raise _fail(where, "needs a 'vkey' (C2SP verifier key) or a 'key' (lqpk1…)")
        return cls(origin, key)

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "vkey": self.vkey(), "key": self.key_text}


@dataclass(frozen=True, slots=True)
class PinnedWitness:
    """A witness: its cosigner name and key (C2SP ``cosignature/v1``)."""

    name: str
    key: PublicKey

    KEYS: ClassVar[frozenset[str]] = frozenset({"name"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"vkey", "key"})

    @property
    def key_text(self) -> str:
        return self.key.to_text()

    @classmethod
    def from_dict(cls, d: Any, where: str) -> PinnedWitness:
        """Parse ``{"name", "vkey"}`` (a cosigner vkey, type 0x04) or ``{"name", "key"}``."""
        d = _obj(d, where, cls.KEYS, cls.OPTIONAL)
        name = d["name"]
        if type(name) is not str or not re.fullmatch(r"[!-*,-~]{1,255}", name):
            raise _fail(f"{where}.name", "must be a signed-note key name (printable, no '+')")
        key: PublicKey | None = None
        if "vkey" in d:
            if type(d["vkey"]) is not str:
                raise _fail(f"{where}.vkey", "must be a cosigner verifier key string")
            try:
                vname, key = parse_cosigner_vkey(d["vkey"])
            except CheckpointError as exc:
                raise _fail(f"{where}.vkey", exc.message) from None
            if vname != name:
                raise _fail(f"{where}.vkey", f"is for the name {vname!r}, not {name!r}")
        if "key" in d:
            k2 = _key_text(d["key"], f"{where}.key")
            if key is not None and k2 != key:
                raise _fail(f"{where}.key", "does not match the vkey")
            key = k2
        if key is None:
            raise _fail(where, "needs a 'vkey' (cosigner verifier key) or a 'key' (lqpk1…)")
        return cls(name, key)

    def to_dict(self) -> dict[str, Any]:
        from protocol.checkpoint import cosigner_vkey

        return {"name": self.name, "vkey": cosigner_vkey(self.name, self.key), "key": self.key_text}


@dataclass(frozen=True, slots=True)
class Trust:
    """What the observer trusts, independently of every node.

    ``assembly_id`` (when pinned) is the id of the assembly's signed definition, and
    ``definition`` (when pinned) that definition itself. ``cities`` are the member cities,
    ``witnesses`` and ``k`` the cosignature requirement, ``grace`` the sealing grace period, and
    ``logs`` further logs whose attestations count. When only an assembly id is pinned, the
    cities come from the definition found in the logs, accepted only if its id is the pinned
    one (:meth:`with_definition`).
    """

    assembly_id: str | None
    definition: Event | None
    cities: tuple[PinnedLog, ...]
    witnesses: tuple[PinnedWitness, ...]
    k: int
    grace: int
    logs: tuple[PinnedLog, ...] = ()

    KEYS: ClassVar[frozenset[str]] = frozenset({"format"})
    OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"assembly", "cities", "witnesses", "k", "grace", "logs", "comment"}
    )

    # --- reading ---------------------------------------------------------------------------

    @property
    def resolved(self) -> bool:
        """True when the member cities are known (pinned directly or by a definition)."""
        return bool(self.cities)

    def city(self, origin: str) -> PinnedLog | None:
        """The member city pinned under ``origin``, or None."""
        return next((c for c in self.cities if c.origin == origin), None)

    def log(self, origin: str) -> PinnedLog | None:
        """Any pinned log (member city or extra log) under ``origin``, or None."""
        return self.city(origin) or next((g for g in self.logs if g.origin == origin), None)

    def all_logs(self) -> tuple[PinnedLog, ...]:
        """Member cities first, then the extra logs."""
        return self.cities + tuple(g for g in self.logs if self.city(g.origin) is None)

    def digest(self) -> str:
        """Hex SHA-256 of the canonical form: ties saved incremental state to these pins."""
        return hashlib.sha256(encode(self.to_dict())).hexdigest()

    # --- building --------------------------------------------------------------------------

    @classmethod
    def of_definition(cls, definition: Event, logs: tuple[PinnedLog, ...] = ()) -> Trust:
        """The trust pinned by a signed assembly definition; raise :class:`ValidationError`."""
        _check_definition(definition, "assembly.definition")
        body = definition.body
        assert isinstance(body, AssemblyBody)
        return cls(
            definition.id,
            definition,
            tuple(PinnedLog(m.origin, PublicKey.from_text(m.key)) for m in body.members),
            tuple(PinnedWitness(w.name, PublicKey.from_text(w.key)) for w in body.witnesses),
            body.k,
            body.grace,
            logs,
        )

    def with_definition(self, definition: Event) -> Trust:
        """Resolve a trust that pins only an assembly id with the definition found in a log.

        Raises :class:`ValidationError` unless ``definition`` is a validly signed assembly whose
        id is the pinned one.
        """
        if self.assembly_id is None or definition.id != self.assembly_id:
            raise ValidationError(
                f"assembly definition {definition.id} is not the pinned assembly {self.assembly_id}"
            )
        return Trust.of_definition(definition, self.logs)

    @classmethod
    def from_dict(cls, d: Any) -> Trust:
        """Parse and validate a trust file's JSON value; raise :class:`ValidationError`."""
        d = _obj(d, "trust", cls.KEYS, cls.OPTIONAL)
        if d["format"] != TRUST_FORMAT:
            raise _fail("trust.format", f"must be {TRUST_FORMAT!r}")
        if "comment" in d and type(d["comment"]) is not str:
            raise _fail("trust.comment", "must be a string")
        logs = tuple(
            PinnedLog.from_dict(g, f"trust.logs[{i}]") for i, g in enumerate(_arr(d, "logs"))
        )
        if len({g.origin for g in logs}) != len(logs):
            raise _fail("trust.logs", "origins must be unique")
        assembly_id: str | None = None
        definition: Event | None = None
        if "assembly" in d:
            a = _obj(d["assembly"], "trust.assembly", frozenset(), frozenset({"id", "definition"}))
            if "id" in a:
                if type(a["id"]) is not str or not _HEX_ID.fullmatch(a["id"]):
                    raise _fail("trust.assembly.id", "must be a lower-case hex SHA-256 id")
                assembly_id = a["id"]
            if "definition" in a:
                try:
                    definition = Event.from_dict(a["definition"], "trust.assembly.definition")
                except ProtocolError as exc:
                    raise ValidationError(exc.message) from None
                if assembly_id is not None and definition.id != assembly_id:
                    raise _fail(
                        "trust.assembly.definition",
                        f"has id {definition.id}, not the pinned id {assembly_id}",
                    )
            if assembly_id is None and definition is None:
                raise _fail("trust.assembly", "must pin an 'id' or a 'definition' (or both)")
        cities = tuple(
            PinnedLog.from_dict(c, f"trust.cities[{i}]") for i, c in enumerate(_arr(d, "cities"))
        )
        witnesses = tuple(
            PinnedWitness.from_dict(w, f"trust.witnesses[{i}]")
            for i, w in enumerate(_arr(d, "witnesses"))
        )
        if len({c.origin for c in cities}) != len(cities):
            raise _fail("trust.cities", "origins must be unique")
        if len({w.name for w in witnesses}) != len(witnesses):
            raise _fail("trust.witnesses", "names must be unique")
        k = d.get("k")
        grace = d.get("grace")
        if k is not None and (type(k) is not int or not 0 <= k <= len(witnesses)):
            raise _fail("trust.k", f"must be an integer within [0, {len(witnesses)}]")
        if grace is not None and (type(grace) is not int or not 0 <= grace <= _MAX_GRACE):
            raise _fail("trust.grace", "must be a non-negative integer (seconds)")
        if definition is not None:
            trust = cls.of_definition(definition, logs)
            given = {
                "cities": (cities, trust.cities),
                "witnesses": (witnesses, trust.witnesses),
            }
            for name, (mine, theirs) in given.items():
                if mine and set(mine) != set(theirs):
                    raise _fail(f"trust.{name}", "differ from the pinned assembly definition")
            if k is not None and k != trust.k:
                raise _fail("trust.k", f"differs from the definition's k ({trust.k})")
            if grace is not None and grace != trust.grace:
                raise _fail("trust.grace", f"differs from the definition's grace ({trust.grace})")
            return trust
        if cities:
            if k is None or grace is None:
                raise _fail("trust", "pinning cities directly needs 'k' and 'grace' as well")
            return cls(assembly_id, None, cities, witnesses, k, grace, logs)
        if assembly_id is None:
            raise _fail("trust", "must pin an assembly (id or definition) or the member cities")
        if witnesses or k is not None or grace is not None:
            raise _fail(
                "trust", "witnesses, k and grace come from the definition when only an id is pinned"
            )
        return cls(assembly_id, None, (), (), 0, 0, logs)

    def to_dict(self) -> dict[str, Any]:
        """The trust file's JSON value (what :meth:`from_dict` reads back)."""
        d: dict[str, Any] = {"format": TRUST_FORMAT}
        if self.assembly_id is not None or self.definition is not None:
            a: dict[str, Any] = {}
            if self.assembly_id is not None:
                a["id"] = self.assembly_id
            if self.definition is not None:
                a["definition"] = self.definition.to_dict()
            d["assembly"] = a
        if self.cities:
            # With a definition these are redundant, but they are what a human compares.
            d["cities"] = [c.to_dict() for c in self.cities]
            d["witnesses"] = [w.to_dict() for w in self.witnesses]
            d["k"] = self.k
            d["grace"] = self.grace
        if self.logs:
            d["logs"] = [g.to_dict() for g in self.logs]
        return d

    def fingerprints(self) -> list[tuple[str, str, str]]:
        """``(role, name, fingerprint)`` of every pinned key, for a human to compare."""
        out = [("city", c.origin, c.key.fingerprint()) for c in self.cities]
        out += [("witness", w.name, w.key.fingerprint()) for w in self.witnesses]
        out += [("log", g.origin, g.key.fingerprint()) for g in self.logs]
        return out


def _arr(d: Mapping[str, Any], name: str) -> list[Any]:
    v = d.get(name, [])
    if type(v) is not list:
        raise _fail(f"trust.{name}", "must be an array")
    return v


def _check_definition(ev: Event, where: str) -> None:
    if ev.type != "assembly" or not isinstance(ev.body, AssemblyBody):
        raise _fail(where, "must be a signed 'assembly' event")
    try:
        ev.verify()
    except BadSignatureError:
        raise _fail(where, "its signature does not verify") from None
    if ev.body.member_by_key(ev.author) is None:
        raise _fail(where, "is not signed by one of its member cities")


_HANDOVER_END: Final = b'"type":"handover","v":%d}' % VERSION


def handover_keys(keys: Sequence[str], views: Iterable[Sequence[bytes]]) -> list[PublicKey]:
    """The keys a pinned log may sign with: ``keys`` (the pinned key, then the keys already
    followed), and every key a handover names, in any of ``views`` (sequences of leaves that
    continue where ``keys`` stops), that is signed by the key it succeeds.

    A first pass before the checkpoints are verified (their roots are only known after replay):
    a thief cannot add a key here without the secret key it succeeds, and replay then decides
    which key was in effect at each size (:meth:`protocol.state.State.key_at`), against which
    every checkpoint is compared.
    """
    found = list(keys)
    for entries in views:
        current = keys[-1]
        for leaf in entries:
            # Keys are sorted in the canonical form, so it ends with the type and the version: a
            # leaf that ends otherwise does not decode to a handover (and a suffix test is a
            # third of the cost of a substring search, on every leaf of the log).
            if not leaf.endswith(_HANDOVER_END):
                continue
            try:
                ev = Event.decode(leaf)
            except ProtocolError:
                continue
            body = ev.body
            if not isinstance(body, HandoverBody) or ev.author != current:
                continue
            try:
                ev.verify()
            except BadSignatureError:
                continue
            current = body.key
            if current not in found:
                found.append(current)
    return [PublicKey.from_text(k) for k in found]
