"""Shared fuzzing material: valid objects of every kind, and hypothesis mutations of them.

The fuzz tests start from *valid* objects (an event of every type, a signed checkpoint, a
receipt, proofs, a tally input) and mutate them, because random bytes alone rarely get past the
first check. ``LIQUIDE_FUZZ_EXAMPLES`` raises every test's case count (``scripts/fuzz`` sets it);
the suite runs the modest defaults.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from crypto import SecretKey
from protocol.events import DEFAULT_POLICY, Event

T0 = 1_800_000_000

_ENV = "LIQUIDE_FUZZ_EXAMPLES"


def fuzz_settings(default: int) -> Callable[[Any], Any]:
    """Hypothesis settings: ``default`` cases in the suite, ``$LIQUIDE_FUZZ_EXAMPLES`` in a campaign."""
    wanted = int(os.environ.get(_ENV, "0") or 0)
    return settings(
        max_examples=wanted or default,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        database=None,
    )


def sk(name: str) -> SecretKey:
    """A deterministic key for a fuzzing party."""
    return SecretKey(hashlib.sha256(b"liquide-fuzz/" + name.encode()).digest())


def pk(name: str) -> str:
    return sk(name).public_key.to_text()


CITY = sk("city")
ORIGIN = "fuzz.example/liquide"


class _Chain:
    """Signs one author's events in chain order (seq from 1, prev the previous id)."""

    def __init__(self, key: SecretKey) -> None:
        self.key = key
        self.seq = 0
        self.prev: str | None = None

    def __call__(self, type_: str, body: dict[str, Any]) -> Event:
        ev = Event.create(self.key, type_, body, self.seq + 1, self.prev, T0)
        self.seq, self.prev = ev.seq, ev.id
        return ev


def valid_events() -> dict[str, Event]:
    """One valid signed event of every type of the protocol (city- and citizen-authored)."""
    city = CITY.public_key.to_text()
    c, a = _Chain(CITY), _Chain(sk("alice"))
    asm = c(
        "assembly",
        {
            "name": "Métropole",
            "members": [{"origin": ORIGIN, "key": city}],
            "witnesses": [{"name": "witness.example", "key": pk("witness")}],
            "k": 1,
            "grace": 3600,
        },
    )
    area = c("area", {"assembly": asm.id, "name": "Transport"})
    issue = c(
        "issue",
        {
            "assembly": asm.id,
            "area": area.id,
            "title": "Tram",
            "options": [{"id": "yes", "title": "Build"}, {"id": "no", "title": "Wait"}],
            "opens": T0,
            "closes": T0 + 3600,
            "policy": DEFAULT_POLICY.to_dict(),
        },
    )
    h = hashlib.sha256(b"x").hexdigest()
    out = {"assembly": asm, "area": area, "issue": issue}
    out["enrol"] = c("enrol", {"key": pk("alice"), "ref": "reg-0001"})
    out["assembly.join"] = c("assembly.join", {"assembly": asm.to_dict()})
    out["issue.adopt"] = c("issue.adopt", {"issue": issue.to_dict(), "area": area.to_dict()})
    out["seal"] = c("seal", {"issue": issue.id})
    out["attest"] = c("attest", {"record": h, "digest": h, "issue": issue.id})
    out["unenrol"] = c("unenrol", {"key": pk("alice"), "ref": "reg-0001"})
    out["handover"] = c("handover", {"key": pk("city-2")})
    out["delegate"] = a(
        "delegate", {"scope": "area", "target": area.id, "trustees": [pk("bob"), pk("carol")]}
    )
    out["revoke"] = a("revoke", {"scope": "area", "target": area.id})
    out["ballot"] = a("ballot", {"issue": issue.id, "grades": {"yes": 1, "no": -1}})
    out["withdraw"] = a("withdraw", {"issue": issue.id})
    return out


# JSON values and mutations ---------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.sampled_from([0, 1, -1, 2**53 - 1, 2**53, -(2**53), 2**31, 2**63])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    | st.sampled_from(["", "lqpk1", "a" * 64, "0" * 64, "é", "e\u0301", "\ud800", "\x00"])
)

json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
"""Python values a JSON parser might produce, and some it could not (floats, NaN, surrogates)."""


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_edits: int = 3) -> Any:
    """``doc`` (a JSON value) with 1 to ``max_edits`` random edits: replace, delete, add, copy."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, max_edits))):
        path = draw(st.sampled_from(list(_paths(doc))))
        op = draw(st.sampled_from(["replace", "delete", "add", "copy", "wrap"]))
        if not path:
            if op in ("replace", "delete"):
                doc = draw(json_values)
            elif op == "wrap":
                doc = [doc]
            continue
        parent, last = _get(doc, path[:-1]), path[-1]
        if op == "replace":
            parent[last] = draw(json_values)
        elif op == "delete":
            del parent[last]
        elif op == "wrap":
            parent[last] = {"x": parent[last]} if draw(st.booleans()) else [parent[last]]
        elif op == "add":
            if isinstance(parent, dict):
                parent[draw(st.text(max_size=8))] = draw(json_values)
            else:
                parent.insert(draw(st.integers(0, len(parent))), draw(json_values))
        else:  # copy a sibling's value (keeps types plausible)
            siblings = list(parent.values() if isinstance(parent, dict) else parent)
            parent[last] = copy.deepcopy(draw(st.sampled_from(siblings)))
    return doc


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with random byte flips, insertions, deletions or truncation."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and buf:
            del buf[pos]
        elif op == "truncate":
            del buf[pos:]
        elif op == "dup" and buf:
            end = draw(st.integers(pos, len(buf)))
            buf[pos:pos] = buf[pos:end]
    return bytes(buf)
