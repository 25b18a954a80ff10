"""An in-memory federation built directly with protocol code, for the observer's tests.

Two member cities A and C, a witness W (whose own city log is B), one assembly, one area, one
issue with two options, citizens who enrol, delegate and vote, seals after the close, witness
cosignatures and each city's attestation of the tally. Every piece is real: signed events,
RFC 9162 trees, C2SP checkpoints and cosignatures. Tests then tamper with copies of it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from crypto import SecretKey
from protocol.checkpoint import Checkpoint, SignedCheckpoint, cosign, sign_checkpoint
from protocol.events import DEFAULT_POLICY, Event
from protocol.merkle import MemoryTree, leaf_hash
from protocol.record import RecordPart, record_id
from protocol.state import State, replay, tally_input
from protocol.tally import TallyInput, tally
from protocol.verify import LogMaterial, NodeMaterial, Trust

from ._events_factory import key

T0 = 1_700_000_000
OPENS = T0 + 100
CLOSES = T0 + 1000
GRACE = 3600
AFTER_GRACE = CLOSES + GRACE + 60
A = "a.example/liquide"
C = "c.example/liquide"
B = "b.example/liquide"
WITNESS = B  # the witness cosigns under its city's origin, with its city key


@dataclass
class Log:
    """A city's log: its key, leaves and chain head, and the checkpoints it signed."""

    origin: str
    sk: SecretKey
    leaves: list[bytes] = field(default_factory=list)
    seq: int = 0
    prev: str | None = None
    checkpoints: dict[int, SignedCheckpoint] = field(default_factory=dict)
    pinned: str = ""
    """The key the log started with (its pin), when a handover replaced :attr:`sk`."""

    @property
    def pk(self) -> str:
        return self.sk.public_key.to_text()

    @property
    def anchor(self) -> str:
        return self.pinned or self.pk

    def hand_over(self, new: SecretKey, ts: int) -> Event:
        """Append a handover signed by the current key; the new key then signs (its own chain)."""
        self.pinned = self.anchor
        ev = self.city("handover", {"key": new.public_key.to_text()}, ts)
        self.sk, self.seq, self.prev = new, 0, None
        return ev

    def city(self, type_: str, body: dict[str, Any], ts: int) -> Event:
        ev = Event.create(self.sk, type_, body, self.seq + 1, self.prev, ts)
        self.seq, self.prev = ev.seq, ev.id
        self.leaves.append(ev.encode())
        return ev

    def add(self, ev: Event) -> int:
        self.leaves.append(ev.encode())
        return len(self.leaves) - 1

    def root(self, size: int | None = None) -> bytes:
        n = len(self.leaves) if size is None else size
        return MemoryTree(leaf_hash(x) for x in self.leaves[:n]).root()

    def checkpoint(self, size: int | None = None, cosigned_at: int | None = CLOSES + 20) -> str:
        """Sign (and have the witness cosign at ``cosigned_at``) a checkpoint; return its note."""
        n = len(self.leaves) if size is None else size
        sc = sign_checkpoint(Checkpoint(self.origin, n, self.root(n)), self.sk)
        if cosigned_at is not None:
            sc = sc.with_signature(cosign(sc.checkpoint, WITNESS, witness_key(), cosigned_at))
        self.checkpoints[n] = sc
        return sc.to_text()


@dataclass
class Citizen:
    sk: SecretKey
    seq: int = 0
    prev: str | None = None

    @property
    def pk(self) -> str:
        return self.sk.public_key.to_text()

    def sign(self, type_: str, body: dict[str, Any], ts: int) -> Event:
        ev = Event.create(self.sk, type_, body, self.seq + 1, self.prev, ts)
        self.seq, self.prev = ev.seq, ev.id
        return ev


def witness_key() -> SecretKey:
    return key("city-b")


@dataclass
class Federation:
    a: Log
    c: Log
    b: Log
    assembly: Event
    area: Event
    issue: Event
    citizens: dict[str, Citizen]
    record: str = ""
    digest: str = ""

    def logs(self) -> dict[str, Log]:
        return {A: self.a, C: self.c, B: self.b}

    def trust(self) -> Trust:
        return Trust.of_definition(self.assembly)

    def trust_dict(self) -> dict[str, Any]:
        return self.trust().to_dict()

    def material(self, url: str, origins: tuple[str, ...] = (A, C, B)) -> NodeMaterial:
        """What one node serves: every log it holds, with all the checkpoints signed so far."""
        logs = {}
        for o in origins:
            log = self.logs()[o]
            notes = tuple(sc.to_text() for _, sc in sorted(log.checkpoints.items()))
            logs[o] = LogMaterial(o, notes, list(log.leaves))
        return NodeMaterial(url, logs)


def build(
    *,
    seal: bool = True,
    attest: bool = True,
    voters: int = 3,
    sealers: tuple[str, ...] = (A, C),
    seal_cosigned_at: int = CLOSES + 20,
    rogue_ballot: bool = False,
    window_enrol: bool = False,
    digests: dict[str, str] | None = None,
    handover: bool = False,
) -> Federation:
    """The honest federation (sealed, attested and checkpointed unless told otherwise).

    ``sealers`` are the cities that seal; ``seal_cosigned_at`` is when the witness cosigns the
    checkpoint right after the seals; ``rogue_ballot`` has city A append a ballot by a key it
    never enrolled; ``window_enrol`` has A enrol a key inside the voting window; ``digests``
    overrides the digest a city attests; ``handover`` has A hand its key over to a new one
    after the votes (so its seal, attestation and later checkpoints are signed by the new key).
    """
    a = Log(A, key("city-a"))
    c = Log(C, key("city-c"))
    b = Log(B, witness_key())
    assembly_body = {
        "name": "Métropole",
        "members": [{"origin": A, "key": a.pk}, {"origin": C, "key": c.pk}],
        "witnesses": [{"name": WITNESS, "key": b.pk}],
        "k": 1,
        "grace": GRACE,
    }
    assembly = a.city("assembly", assembly_body, T0)
    c.city("assembly.join", {"assembly": assembly.to_dict()}, T0)
    area = a.city("area", {"assembly": assembly.id, "name": "Transport"}, T0)
    issue = a.city(
        "issue",
        {
            "assembly": assembly.id,
            "area": area.id,
            "title": "Tramway line 3",
            "options": [{"id": "yes", "title": "Build it"}, {"id": "no", "title": "Do not"}],
            "opens": OPENS,
            "closes": CLOSES,
            "policy": DEFAULT_POLICY.to_dict(),
        },
        T0,
    )
    c.city("issue.adopt", {"issue": issue.to_dict(), "area": area.to_dict()}, T0)
    b.city("enrol", {"key": key("b-citizen").public_key.to_text(), "ref": "b-1"}, T0)
    citizens: dict[str, Citizen] = {}
    for home, log in (("a", a), ("c", c)):
        for i in range(voters):
            name = f"{home}{i}"
            ctz = Citizen(key(f"citizen-{name}"))
            citizens[name] = ctz
            log.city("enrol", {"key": ctz.pk, "ref": f"ref-{name}"}, T0)
    # a0 votes yes; a1 delegates to a0 for the area; a2 votes no; c0 delegates to a0 across
    # cities for the assembly; c1 votes yes; c2 votes no.
    a.add(
        citizens["a0"].sign(
            "ballot", {"issue": issue.id, "grades": {"yes": 1, "no": -1}}, OPENS + 1
        )
    )
    a.add(
        citizens["a1"].sign(
            "delegate",
            {"scope": "area", "target": area.id, "trustees": [citizens["a0"].pk]},
            OPENS + 2,
        )
    )
    a.add(citizens["a2"].sign("ballot", {"issue": issue.id, "grades": {"no": 1}}, OPENS + 3))
    c.add(
        citizens["c0"].sign(
            "delegate",
            {"scope": "assembly", "target": assembly.id, "trustees": [citizens["a0"].pk]},
            OPENS + 4,
        )
    )
    c.add(citizens["c1"].sign("ballot", {"issue": issue.id, "grades": {"yes": 2}}, OPENS + 5))
    c.add(
        citizens["c2"].sign(
            "ballot", {"issue": issue.id, "grades": {"no": 1, "yes": -1}}, OPENS + 6
        )
    )
    if rogue_ballot:
        stranger = Citizen(key("never-enrolled"))
        citizens["stranger"] = stranger
        a.add(stranger.sign("ballot", {"issue": issue.id, "grades": {"no": 5}}, OPENS + 7))
    if window_enrol:
        late = Citizen(key("late-comer"))
        citizens["late"] = late
        a.city("enrol", {"key": late.pk, "ref": "ref-late"}, OPENS + 8)
    fed = Federation(a, c, b, assembly, area, issue, citizens)
    for log in (a, c, b):
        log.checkpoint(cosigned_at=OPENS + 50)
    if handover:
        a.hand_over(key("city-a-next"), OPENS + 60)
        a.checkpoint(cosigned_at=OPENS + 70)
    if not seal:
        return fed
    parts: dict[str, RecordPart] = {}
    states: dict[str, State] = {}
    for log in (a, c):
        if log.origin in sealers:
            log.city("seal", {"issue": issue.id}, CLOSES + 5)
            log.checkpoint(cosigned_at=seal_cosigned_at)
        rep = replay(log.origin, log.anchor, log.leaves, snapshot=[issue.id])
        assert rogue_ballot or not rep.findings, rep.findings
        if log.origin in sealers:
            st = rep.at_seal[issue.id]
            part = RecordPart(log.origin, st.size, log.root(st.size), "seal", st.size - 1)
        else:  # the stand-in: the checkpoint cosigned before the close
            size = max(n for n in log.checkpoints if n < len(log.leaves) or n == len(log.leaves))
            st = replay(log.origin, log.anchor, log.leaves[:size]).state
            part = RecordPart(
                log.origin,
                size,
                log.root(size),
                "checkpoint",
                None,
                log.checkpoints[size].to_text(),
            )
        states[log.origin] = st
        parts[log.origin] = part
    fed.record = record_id(parts.values())
    build_ = tally_input(issue.id, states)
    fed.digest = tally(TallyInput.from_dict(build_.input)).digest
    if attest:
        for log in (a, c, b):
            digest = (digests or {}).get(log.origin, fed.digest)
            log.city(
                "attest", {"record": fed.record, "digest": digest, "issue": issue.id}, CLOSES + 30
            )
            log.checkpoint(cosigned_at=max(CLOSES + 40, seal_cosigned_at + 20))
    return fed


def flip(leaf: bytes, at: int) -> bytes:
    """``leaf`` with the byte at ``at`` changed to another printable character."""
    b = bytearray(leaf)
    b[at] = ord("x") if b[at] != ord("x") else ord("y")
    return bytes(b)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def replay_ok(log: Log) -> State:
    rep = replay(log.origin, log.anchor, log.leaves)
    assert not rep.findings, rep.findings
    return rep.state
