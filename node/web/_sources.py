"""Where the web pages get their data: thin wrappers over the node's API helpers and store.

The pages show what the JSON API (:mod:`node._api`) serves, so they read it through the same
helpers (``_issue_json``, ``_log_json``, ``_compat.tally``…). Each wrapper sits here, in one
place, so that a change of those helpers' shape is absorbed by one function. Nothing here
writes: the pages are read-only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from node import _api, _compat
from node._node import Node
from node.errors import RequestError
from protocol.events import AttestBody, Event

__all__ = [
    "AttestationIndex",
    "area",
    "areas",
    "assemblies",
    "assembly",
    "counts",
    "federation",
    "findings",
    "issue",
    "issue_titles",
    "issues",
    "logs",
    "node_of",
    "peers",
    "proofs",
    "record_id",
    "tally",
    "voter",
    "voter_elsewhere",
]

ISSUE_STATES = ("upcoming", "open", "closed", "sealed")


def node_of(request: web.Request) -> Node:
    """The node that serves ``request``."""
    return _api._node(request)


def _rows(node: Node, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return node.reader.conn.execute(sql, params).fetchall()


# Governance ----------------------------------------------------------------------------------


def assemblies(node: Node, offset: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """The assemblies defined or joined in the own log (as ``GET /v1/assemblies`` lists them)."""
    rows = _rows(
        node,
        "SELECT id, idx, body FROM assemblies ORDER BY idx, id LIMIT ? OFFSET ?",
        (limit, offset),
    )
    return [{"id": r[0], "index": r[1], **json.loads(r[2])} for r in rows]


def assembly(node: Node, assembly_id: str) -> dict[str, Any] | None:
    """One assembly's definition, or None."""
    rows = _rows(node, "SELECT id, idx, body FROM assemblies WHERE id = ?", (assembly_id,))
    return None if not rows else {"id": rows[0][0], "index": rows[0][1], **json.loads(rows[0][2])}


def areas(
    node: Node, assembly_id: str | None = None, offset: int = 0, limit: int = 1000
) -> list[dict[str, Any]]:
    """The areas known here, optionally of one assembly (as ``GET /v1/areas``)."""
    if assembly_id is None:
        rows = _rows(
            node,
            "SELECT id, idx, body FROM areas ORDER BY idx, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
    else:
        rows = _rows(
            node,
            "SELECT id, idx, body FROM areas WHERE assembly = ? ORDER BY idx, id LIMIT ? OFFSET ?",
            (assembly_id, limit, offset),
        )
    return [{"id": r[0], "index": r[1], **json.loads(r[2])} for r in rows]


def area(node: Node, area_id: str) -> dict[str, Any] | None:
    """One area's definition, or None."""
    rows = _rows(node, "SELECT id, idx, body FROM areas WHERE id = ?", (area_id,))
    return None if not rows else {"id": rows[0][0], "index": rows[0][1], **json.loads(rows[0][2])}


def issues(
    node: Node,
    *,
    area_id: str | None = None,
    state: str | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Issues known here with their state, filtered as ``GET /v1/issues`` filters them."""
    where: list[str] = []
    params: list[Any] = []
    if area_id is not None:
        where.append("area = ?")
        params.append(area_id)
    now = int(node.clock())
    if state is not None:
        clauses: dict[str, tuple[str, tuple[int, ...]]] = {
            "sealed": ("sealed_idx IS NOT NULL", ()),
            "open": ("sealed_idx IS NULL AND opens <= ? AND ? < closes", (now, now)),
            "closed": ("sealed_idx IS NULL AND closes <= ?", (now,)),
            "upcoming": ("sealed_idx IS NULL AND ? < opens", (now,)),
        }
        if state not in clauses:
            raise RequestError(
                f"state={state!r}: use upcoming, open, closed or sealed", code="bad_param"
            )
        clause, extra = clauses[state]
        where.append(clause)
        params.extend(extra)
    sql = f"SELECT {_api._ISSUE_COLS} FROM issues"  # noqa: S608 (fixed column list)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY idx DESC, id LIMIT ? OFFSET ?"
    return [_api._issue_json(node, r) for r in _rows(node, sql, (*params, limit, offset))]


def issue_titles(node: Node, issue_ids: list[str]) -> dict[str, str]:
    """The titles of the given issues that are known here."""
    out: dict[str, str] = {}
    for iid in issue_ids:
        rows = _rows(node, "SELECT body FROM issues WHERE id = ?", (iid,))
        if rows:
            out[iid] = str(json.loads(rows[0][0]).get("title", iid))
    return out


def issue(node: Node, issue_id: str) -> dict[str, Any]:
    """One issue as ``GET /v1/issues/{id}`` serves it (state, counts); NotFoundError if unknown."""
    out = _api._issue_json(node, _api._issue_row(node, issue_id))
    out["ballots"] = _rows(node, "SELECT COUNT(*) FROM ballots WHERE issue = ?", (issue_id,))[0][0]
    out["delegations"] = _rows(
        node,
        "SELECT COUNT(*) FROM delegations WHERE scope = 'issue' AND scope_id = ?",
        (issue_id,),
    )[0][0]
    return out


def counts(node: Node) -> dict[str, Any]:
    """Governance counts of the node (as ``liquide node status`` shows them)."""
    from node._registrar import status_of

    return status_of(node.reader, node.origin)


# Logs, peers, proofs ---------------------------------------------------------------------------


def logs(node: Node) -> list[dict[str, Any]]:
    """Every log held, with its latest checkpoint and cosignatures (as ``GET /v1/logs``)."""
    return [_api._log_json(node, info) for info in node.reader.logs()]


def federation(node: Node) -> Any | None:
    """The node's federation (sync, witnessing, attestations), or None when it has none."""
    return node.extra.get("federation")


async def peers(node: Node) -> list[dict[str, Any]]:
    """The configured peers with their sync status and lag.

    ``status`` is ``ok`` (the last round succeeded), ``behind`` (a mirror holds entries that its
    checkpoints do not cover yet), ``error`` (the last round failed) or ``never``;
    ``lag_entries`` is that shortfall and ``lag_s`` the time since the last successful round.
    The federation's in-memory round counters take precedence over the store's cursors.
    """
    now = int(node.clock())
    live: dict[str, dict[str, Any]] = {}
    fed = federation(node)
    if fed is not None:
        status = await fed.query(fed.status)
        live = {p["url"]: p for p in status.get("peers", [])}
    out = []
    for p in node.reader.peers():
        st = live.get(p["url"], {})
        mirror = node.reader.log(p["origin"])
        held = 0 if mirror is None else mirror.size
        cp = node.reader.latest_checkpoint(p["origin"])
        covered = 0 if cp is None else cp.size
        lag_entries = None if mirror is None else max(0, held - covered)
        last_ok = st.get("last_ok", p.get("last_ok"))
        last_error = st.get("last_error", p.get("last_error"))
        if last_error:
            state = "error"
        elif last_ok is None:
            state = "never"
        elif lag_entries:
            state = "behind"
        else:
            state = "ok"
        out.append(
            {
                "url": p["url"],
                "origin": p["origin"],
                "vkey": p["vkey"],
                "status": state,
                "rounds": st.get("rounds", 0),
                "failed": st.get("failed", 0),
                "last_ok": last_ok,
                "last_error": last_error,
                "held": held,
                "checkpoint": None if cp is None else cp.size,
                "lag_entries": lag_entries,
                "lag_s": None if last_ok is None else max(0, now - int(last_ok)),
            }
        )
    return out


async def findings(node: Node) -> list[dict[str, Any]]:
    """Replay findings of every log held (as ``GET /v1/findings``); empty without a federation."""
    fed = federation(node)
    if fed is None:
        return []
    out: list[dict[str, Any]] = await fed.query(fed.findings)
    return out


def proofs(node: Node) -> list[dict[str, Any]]:
    """The proofs of misbehaviour this node holds (as ``GET /v1/proofs``)."""
    return node.reader.proofs()


# Voters --------------------------------------------------------------------------------------


def voter(node: Node, key: str) -> dict[str, Any]:
    """A voter as ``GET /v1/voters/{key}`` serves it; NotFoundError if the key is unknown here."""
    return _api.voter_json(node, key)


async def voter_elsewhere(node: Node, key: str) -> dict[str, Any] | None:
    """A voter of another city, as the federation's replay of that city's mirrored log knows
    them (same shape as :func:`voter`, with ``origin`` their home city), or None.

    This reads the federation's replayed states on its replay thread; without a federation,
    or when no trusted log enrolled the key, it returns None.
    """
    fed = federation(node)
    if fed is None:
        return None

    def find() -> dict[str, Any] | None:
        for origin, rep in sorted(getattr(fed, "_logs", {}).items()):
            st = rep.state
            if origin == node.origin or (key not in st.enrolled and st.head(key) is None):
                continue
            e = st.enrolled.get(key)
            head = st.head(key)
            rows = st.delegations.get(key, {})
            return {
                "key": key,
                "origin": origin,
                "enrolled": e is not None,
                "enrolment": None if e is None else {"ref": e.ref, "index": e.index},
                "delegations": [
                    {"scope": sc, "target": tgt, "trustees": list(tr), "index": None}
                    for tgt, (sc, tr) in sorted(rows.items(), key=lambda x: (x[1][0], x[0]))
                ],
                "ballots": [
                    {"issue": iid, "grades": dict(b[key]), "index": None}
                    for iid, b in sorted(st.ballots.items())
                    if key in b
                ],
                "head": None if head is None else {"seq": head.seq, "event_id": head.id},
            }
        return None

    found: dict[str, Any] | None = await fed.query(find)
    if found is not None:
        found["home"] = next(
            (p["url"] for p in node.reader.peers() if p["origin"] == found["origin"]), None
        )
    return found


# Tallies -------------------------------------------------------------------------------------


async def record_id(node: Node, issue_id: str) -> str | None:
    """The id of the record of ``issue_id`` whose tally this node holds, or None (not yet)."""
    fed = federation(node)
    if fed is not None:
        doc = await fed.query(lambda: fed.attestations(issue_id))
        ours = doc.get("ours")
        if ours:
            return str(ours["record"])
    row = node.reader.conn.execute(
        "SELECT record_id FROM tallies WHERE issue = ? ORDER BY rowid DESC LIMIT 1", (issue_id,)
    ).fetchone()
    return None if row is None else str(row[0])


async def tally(node: Node, issue_id: str) -> dict[str, Any]:
    """This node's tally of a sealed issue: ``{record, parts, flags, findings, result}``.

    ``record`` is the record id, ``parts`` the record's parts (origin, size, root, basis) and
    ``flags`` each part's flags. The federation's settled record answers first (it is what the
    node attests, as ``GET /v1/issues/{id}/record``, and it is in memory); without one the
    node's tally (``GET /v1/issues/{id}/tally``) does, raising a ConflictError while the record
    is incomplete here.
    """
    fed = federation(node)
    if fed is not None:
        rec = await fed.query(lambda: fed.record(issue_id))
        if rec is not None:
            return {
                "record": rec["record_id"],
                "parts": rec["record"]["parts"],
                "flags": rec.get("flags", {}),
                "findings": rec.get("findings", []),
                "result": rec["result"],
            }
    out = await _compat.tally(node, issue_id)
    rec = out.get("record")
    parts = rec.get("parts", []) if isinstance(rec, dict) else out.get("parts", [])
    record = out.get("record_id") or out.get("parts_id") or (rec if isinstance(rec, str) else None)
    return {**out, "record": record, "parts": parts, "flags": out.get("flags", {})}


# Attestations --------------------------------------------------------------------------------


@dataclass
class AttestationIndex:
    """Attestations found in every log held, scanned incrementally as the logs grow.

    Each ``attest`` leaf is decoded once; a page asks :meth:`of` for one issue and gets every
    node's attestation of it (one per origin and record: the first in its log counts).
    """

    scanned: dict[str, int] = field(default_factory=dict)
    found: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    def refresh(self, node: Node) -> None:
        """Scan the entries appended since the last call."""
        for info in node.reader.logs():
            start = self.scanned.get(info.origin, 0)
            if info.size <= start:
                continue
            rows = node.reader.conn.execute(
                "SELECT idx, leaf FROM entries WHERE origin = ? AND idx >= ? AND type = 'attest'"
                " ORDER BY idx",
                (info.origin, start),
            ).fetchall()
            for idx, leaf in rows:
                try:
                    ev = Event.decode(bytes(leaf))
                except Exception:  # noqa: BLE001,S112 (replay reports bad leaves, not the pages)
                    continue
                body = ev.body
                if not isinstance(body, AttestBody):
                    continue
                per_issue = self.found.setdefault(body.issue, {})
                per_issue.setdefault(
                    (info.origin, body.record),
                    {
                        "origin": info.origin,
                        "record": body.record,
                        "digest": body.digest,
                        "index": int(idx),
                        "author": ev.author,
                    },
                )
            self.scanned[info.origin] = info.size

    async def lookup(self, node: Node, issue_id: str) -> tuple[str | None, list[dict[str, Any]]]:
        """The record this node attests for ``issue_id`` (None if it has none yet, or has no
        federation) and every attestation of the issue in the logs held, by origin.

        The federation's replayed states answer when the node has a federation (as
        ``GET /v1/issues/{id}/attestations``), in one call; otherwise the logs are scanned here.
        """
        fed = federation(node)
        ours = None
        if fed is not None:
            doc = await fed.query(lambda: fed.attestations(issue_id))
            items = [dict(a) for a in doc.get("attestations", [])]
            if doc.get("ours"):
                ours = str(doc["ours"]["record"])
        else:
            self.refresh(node)
            items = list(self.found.get(issue_id, {}).values())
        return ours, sorted(items, key=lambda a: (a["origin"], a["index"]))

    async def of(self, node: Node, issue_id: str) -> list[dict[str, Any]]:
        """Every attestation of ``issue_id`` in the logs held, by origin (see :meth:`lookup`)."""
        return (await self.lookup(node, issue_id))[1]
