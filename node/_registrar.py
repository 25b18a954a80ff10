"""Registrar and city-admin operations, acting with the city's key through the single writer.

Each operation is a plain function of the :class:`~node.ingest.Writer` and JSON-able
arguments, returning a JSON-able result. The same functions run

* on the writer thread of a serving node, called through the admin Unix socket
  (:mod:`node._admin_socket`), so that the log keeps a single writer; or
* directly on an offline data directory, by the CLI, when no node is serving it.

Arguments are checked here (and again by the protocol's body validation); a refusal raises a
Liquide error naming the problem, and nothing is appended.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from crypto import KeyFormatError, PublicKey
from protocol.events import DEFAULT_POLICY, Event, HandoverBody, Policy

from .errors import ConflictError, NotFoundError, RequestError
from .ingest import Accepted, Writer
from .store import Store

__all__ = ["OPERATIONS", "run_operation", "status_of"]


def _key(text: Any, what: str = "key") -> str:
    try:
        if "+" in str(text):  # a C2SP verifier key (name+keyid+base64), as peers are pinned
            return PublicKey.from_vkey(str(text))[1].to_text()
        return PublicKey.from_text(str(text)).to_text()
    except KeyFormatError as exc:
        raise RequestError(f"{what} {text!r} is not a public key: {exc.message}") from None


def _result(acc: Accepted) -> dict[str, Any]:
    return {"event_id": acc.event_id, "index": acc.index, "receipt": acc.receipt}


def enrol(w: Writer, key: str, ref: str | None = None) -> dict[str, Any]:
    """Enrol a citizen's key (after an identity check); ``ref`` is the registrar's reference."""
    key = _key(key)
    if key in w.state.enrolled:
        raise ConflictError(f"{key} is already enrolled at {w.origin}", code="already_enrolled")
    return _result(w.append_own("enrol", {"key": key, "ref": ref or "-"}))


def unenrol(w: Writer, key: str, ref: str | None = None) -> dict[str, Any]:
    """Remove a citizen's key (lost key, moved away); delegations to it become dead ends."""
    key = _key(key)
    if key not in w.state.enrolled:
        raise NotFoundError(f"{key} is not enrolled at {w.origin}")
    return _result(w.append_own("unenrol", {"key": key, "ref": ref or "-"}))


def assembly_create(
    w: Writer,
    *,
    name: str,
    members: list[list[str]] | None = None,
    witnesses: list[list[str]] | None = None,
    k: int = 0,
    grace: int = 0,
) -> dict[str, Any]:
    """Define an assembly; this city is always a member. Returns its id (the event id)."""
    pinned = [{"origin": o, "key": _key(key, f"member {o}")} for o, key in members or []]
    if not any(m["origin"] == w.origin for m in pinned):
        pinned.insert(0, {"origin": w.origin, "key": w.city})
    wits = [{"name": n, "key": _key(key, f"witness {n}")} for n, key in witnesses or []]
    body = {"name": name, "members": pinned, "witnesses": wits, "k": k, "grace": grace}
    return _result(w.append_own("assembly", body))


def area_create(w: Writer, assembly: str, name: str) -> dict[str, Any]:
    """Open an area of an assembly defined or joined in this log."""
    row = w.store.conn.execute("SELECT 1 FROM assemblies WHERE id = ?", (assembly,)).fetchone()
    if row is None:
        raise NotFoundError(f"assembly {assembly} is not defined or joined at {w.origin}")
    return _result(w.append_own("area", {"assembly": assembly, "name": name}))


def issue_create(
    w: Writer,
    *,
    area: str,
    title: str,
    options: list[list[str]],
    opens: int,
    closes: int,
    policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Open an issue in an area: options (id, title), voting window, tally policy."""
    row = w.store.conn.execute("SELECT assembly FROM areas WHERE id = ?", (area,)).fetchone()
    if row is None:
        raise NotFoundError(f"area {area} is not known at {w.origin}")
    if not options:
        raise RequestError("an issue needs at least one option")
    pol = (
        DEFAULT_POLICY
        if policy is None
        else Policy.from_dict({**DEFAULT_POLICY.to_dict(), **policy})
    )
    body = {
        "assembly": row[0],
        "area": area,
        "title": title,
        "options": [{"id": i, "title": t} for i, t in options],
        "opens": opens,
        "closes": closes,
        "policy": pol.to_dict(),
    }
    return _result(w.append_own("issue", body))


def issue_seal(w: Writer, issue: str) -> dict[str, Any]:
    """Seal this city's part of an issue's record now (normally automatic at the close)."""
    if w.state.issue(issue) is None:
        raise NotFoundError(f"issue {issue} is not known at {w.origin}")
    if issue in w.state.seals:
        raise ConflictError(f"issue {issue} is already sealed at {w.origin}", code="already_sealed")
    return _result(w.append_own("seal", {"issue": issue}))


def handover(w: Writer) -> dict[str, Any]:
    """Rotate the city key: create a new key in the data directory (durable first), then append
    the handover signed by the key in effect; from the next leaf on, city events, receipts and
    checkpoints are signed by the new key (docs/SECURITY.md §3.3)."""
    from ._datadir import create_successor_key

    old = w.city
    key, path = create_successor_key(w.store.path.parent)
    out = _result(w.handover(key))
    out.update({"old_key": old, "new_key": key.public_key.to_text(), "key_file": path.name})
    return out


def status_of(store: Store, origin: str) -> dict[str, Any]:
    """The log size, latest checkpoint and governance counts of the node's store."""
    conn = store.conn
    info = store.log(origin)
    cp = store.latest_checkpoint(origin)

    def count(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    key = store.get_meta("key")
    return {
        "origin": origin,
        "key": key,
        "key_in_effect": _key_in_effect(store, origin, key),
        "vkey": None if info is None else info.vkey,
        "size": 0 if info is None else info.size,
        "checkpoint": None if cp is None else {"size": cp.size, "time": cp.time},
        "enrolled": count("SELECT COUNT(*) FROM enrolments WHERE active = 1"),
        "assemblies": count("SELECT COUNT(*) FROM assemblies"),
        "areas": count("SELECT COUNT(*) FROM areas"),
        "issues": count("SELECT COUNT(*) FROM issues"),
        "sealed": count("SELECT COUNT(*) FROM issues WHERE sealed_idx IS NOT NULL"),
        "mirrors": count("SELECT COUNT(*) FROM logs WHERE own = 0"),
        "peers": count("SELECT COUNT(*) FROM peers"),
        "proofs": count("SELECT COUNT(*) FROM proofs"),
    }


def _key_in_effect(store: Store, origin: str, key: str | None) -> str | None:
    """The own log's key after its handovers (the writer checked each one when appending)."""
    rows = store.conn.execute(
        "SELECT leaf FROM entries WHERE origin = ? AND type = 'handover' ORDER BY idx", (origin,)
    ).fetchall()
    for (leaf,) in rows:
        ev = Event.decode(bytes(leaf))
        if ev.author == key and isinstance(ev.body, HandoverBody):
            key = ev.body.key
    return key


def status(w: Writer) -> dict[str, Any]:
    """:func:`status_of` the writer's store."""
    return status_of(w.store, w.origin)


OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "enrol": enrol,
    "unenrol": unenrol,
    "assembly.create": assembly_create,
    "area.create": area_create,
    "issue.create": issue_create,
    "issue.seal": issue_seal,
    "handover": handover,
    "status": status,
}


def run_operation(w: Writer, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run the operation ``op`` with keyword ``args``; raise :class:`RequestError` if unknown."""
    fn = OPERATIONS.get(op)
    if fn is None:
        raise RequestError(f"unknown admin operation {op!r}")
    if not isinstance(args, dict):
        raise RequestError("admin arguments must be an object")
    try:
        inspect.signature(fn).bind(w, **args)
    except TypeError as exc:
        raise RequestError(f"bad arguments for {op}: {exc}") from None
    return fn(w, **args)
