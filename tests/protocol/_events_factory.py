"""Factories for signed events: deterministic keys and a per-author chain that fills seq/prev."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from crypto import SecretKey
from protocol.events import DEFAULT_POLICY, Event

T0 = 1_700_000_000


def key(name: str) -> SecretKey:
    """A secret key derived from ``name`` (tests only)."""
    return SecretKey(hashlib.sha256(b"liquide-test-key/" + name.encode()).digest())


def pk(name: str) -> str:
    return key(name).public_key.to_text()


@dataclass
class Author:
    """Signs events for one key, keeping its chain (seq, prev) as a well-behaved wallet would."""

    sk: SecretKey
    seq: int = 0
    prev: str | None = None
    ts: int = T0
    events: list[Event] = field(default_factory=list)

    @property
    def pk(self) -> str:
        return self.sk.public_key.to_text()

    def sign(self, type_: str, body: dict[str, Any], *, advance: bool = True, **over: Any) -> Event:
        seq = over.pop("seq", self.seq + 1)
        prev = over.pop("prev", self.prev)
        ts = over.pop("ts", self.ts)
        assert not over, over
        ev = Event.create(self.sk, type_, body, seq, prev, ts)
        if advance:
            self.seq, self.prev = ev.seq, ev.id
            self.events.append(ev)
        return ev


def policy() -> dict[str, Any]:
    return DEFAULT_POLICY.to_dict()


def assembly_body(
    members: list[tuple[str, str]],
    name: str = "Métropole",
    k: int = 1,
    witnesses: list[tuple[str, str]] | None = None,
    grace: int = 3600,
) -> dict[str, Any]:
    if witnesses is None:
        witnesses = [("witness.example", pk("witness"))]
    return {
        "name": name,
        "members": [{"origin": o, "key": k_} for o, k_ in members],
        "witnesses": [{"name": n, "key": k_} for n, k_ in witnesses],
        "k": k,
        "grace": grace,
    }


def issue_body(
    assembly: str,
    area: str,
    options: tuple[str, ...] = ("a", "b"),
    opens: int = T0,
    closes: int = T0 + 86400,
) -> dict[str, Any]:
    return {
        "assembly": assembly,
        "area": area,
        "title": "Tramway line 3",
        "options": [{"id": o, "title": f"Option {o}"} for o in options],
        "opens": opens,
        "closes": closes,
        "policy": policy(),
    }
