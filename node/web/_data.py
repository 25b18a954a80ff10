"""The data of each web page, as the JSON-able dict that its ``.json`` twin serves.

Every page is ``render(data(…), translator)``: the HTML shows exactly what the twin holds, and
the twin is language-independent. The data functions read through :mod:`node.web._sources`.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from crypto import LiquideError, PublicKey
from node._node import Node
from node.errors import NotFoundError

from . import _sources as src
from ._tallyview import TallyView, ViewCache

__all__ = [
    "areas_data",
    "assemblies_data",
    "explain_data",
    "home_data",
    "issue_data",
    "issues_data",
    "tally_view",
    "voter_data",
]


VOTER_ISSUES = 20
"""How many of the most recent sealed issues a voter page explains."""


def _witness_name(line: str) -> str:
    # A signature line is "— <name> <base64>"; the name has no spaces.
    fields = line.strip().split(" ")
    return fields[1] if len(fields) >= 3 else line.strip()


async def home_data(node: Node) -> dict[str, Any]:
    """The city and its log, the logs held, peers with sync status, proofs, counts."""
    cp = node.reader.latest_checkpoint(node.origin)
    own_size = node.reader.log(node.origin)
    cosigs = [] if cp is None else node.reader.cosignatures(node.origin, cp.size)
    logs = src.logs(node)
    found = await src.findings(node)
    return {
        "origin": node.origin,
        "key": node.key.public_key.to_text(),
        "fingerprint": node.key.public_key.fingerprint(),
        "vkey": node.vkey,
        "size": 0 if own_size is None else own_size.size,
        "checkpoint": None
        if cp is None
        else {
            "size": cp.size,
            "root": base64.b64encode(cp.root).decode("ascii"),
            "time": cp.time,
            "note": cp.note,
        },
        "cosignatures": [{"witness": _witness_name(line), "line": line} for line in cosigs],
        "logs": [
            {
                "origin": lg["origin"],
                "own": lg["own"],
                "size": lg["size"],
                "checkpoint_size": lg["checkpoint_size"],
                "cosignatures": len(lg["cosignatures"]),
                "frozen": lg["frozen"],
            }
            for lg in logs
        ],
        "peers": await src.peers(node),
        "proofs": src.proofs(node),
        "equivocations": [f for f in found if f.get("proof") is not None],
        "findings": len(found),
        "counts": {k: v for k, v in src.counts(node).items() if type(v) is int},
    }


def assemblies_data(node: Node) -> dict[str, Any]:
    """Every assembly with its members, witnesses and areas."""
    out = [
        {**a, "areas": [{"id": r["id"], "name": r["name"]} for r in src.areas(node, a["id"])]}
        for a in src.assemblies(node)
    ]
    return {"assemblies": out}


def areas_data(node: Node, assembly_id: str | None) -> dict[str, Any]:
    """Every area (of one assembly, if given) with its assembly's name."""
    names = {a["id"]: a["name"] for a in src.assemblies(node)}
    items = [{**r, "assembly_name": names.get(r["assembly"])} for r in src.areas(node, assembly_id)]
    return {"assembly": assembly_id, "areas": items}


def issues_data(
    node: Node, area_id: str | None, state: str | None, offset: int, limit: int
) -> dict[str, Any]:
    """A page of issues, newest first, with their area's name; ``next`` is the next offset."""
    rows = src.issues(node, area_id=area_id, state=state, offset=offset, limit=limit + 1)
    more = len(rows) > limit
    areas = {r["id"]: r["name"] for r in src.areas(node)}
    items = [{**r, "area_name": areas.get(r["area"])} for r in rows[:limit]]
    return {
        "area": area_id,
        "state": state,
        "offset": offset,
        "limit": limit,
        "next": offset + limit if more else None,
        "issues": items,
    }


async def tally_view(node: Node, issue: dict[str, Any], cache: ViewCache) -> TallyView:
    """The :class:`TallyView` of a sealed issue, from the cache by record id when possible.

    Raises what the node's tally raises (ConflictError while the record is incomplete here).
    """
    record = await src.record_id(node, issue["id"])
    if record is not None:
        view = cache.get(record)
        if view is not None:
            return view
    doc = await src.tally(node, issue["id"])
    # Off the event loop: for a city-sized record this walks every voter once.
    view = await asyncio.to_thread(TallyView.build, issue, doc)
    cache.put(view.record, view)
    return view


def _members(node: Node, issue: dict[str, Any]) -> list[str]:
    a = src.assembly(node, issue.get("assembly", ""))
    return [] if a is None else [m["origin"] for m in a.get("members", [])]


async def attestations_of(
    node: Node, issue: dict[str, Any], view: TallyView | None, index: src.AttestationIndex
) -> dict[str, Any]:
    """Every node's attestation of the issue with its agreement with this node's tally."""
    found = await index.of(node, issue["id"])
    items = []
    for a in found:
        if view is None:
            agreement = "unknown"
        else:
            agreement = "agrees" if a["digest"] == view.digest else "disagrees"
        items.append({**a, "agreement": agreement})
    attested = {a["origin"] for a in found}
    pending = [m for m in _members(node, issue) if m not in attested]
    bad = sum(1 for a in items if a["agreement"] == "disagrees")
    return {"items": items, "pending": pending, "disagreeing": bad}


async def issue_data(
    node: Node, issue_id: str, cache: ViewCache, index: src.AttestationIndex
) -> tuple[dict[str, Any], TallyView | None]:
    """An issue: definition, state, counts; once sealed, its tally view and attestations.

    Returns the JSON twin's data and the view (None before the seal or while the record is
    incomplete here). Raises NotFoundError for an unknown issue.
    """
    issue = src.issue(node, issue_id)
    area = src.area(node, issue["area"])
    asm = src.assembly(node, issue["assembly"])
    issue["area_name"] = None if area is None else area["name"]
    issue["assembly_name"] = None if asm is None else asm["name"]
    out: dict[str, Any] = {"issue": issue, "tally": None, "tally_error": None}
    view = None
    if issue["state"] == "sealed":
        try:
            view = await tally_view(node, issue, cache)
        except LiquideError as exc:
            out["tally_error"] = {"code": exc.code, "message": exc.message}
        else:
            out["tally"] = view.to_dict()
    out["attestations"] = await attestations_of(node, issue, view, index)
    out["waiting"] = await waiting_for(node, issue)
    return out, view


async def waiting_for(node: Node, issue: dict[str, Any]) -> list[dict[str, str]]:
    """The members whose signed evidence the federation still waits for to settle the record.

    Each item is ``{"origin", "reason"}`` (the reason is the federation's English phrase). Empty
    before the seal, once settled, and on a node without a federation.
    """
    fed = src.federation(node)
    if fed is None or issue["state"] != "sealed":
        return []
    waiting: list[dict[str, str]] = await fed.query(lambda: fed.waiting(issue["id"]))
    return waiting


def parse_voter(text: str) -> str | None:
    """The canonical ``lqpk1…`` text of a key, or None if ``text`` is not one."""
    try:
        return PublicKey.from_text(text.strip()).to_text()
    except LiquideError:
        return None


async def explain_data(node: Node, issue_id: str, voter: str, cache: ViewCache) -> dict[str, Any]:
    """How ``voter`` was counted in a sealed issue; ``error`` says why there is no answer."""
    issue = src.issue(node, issue_id)
    out: dict[str, Any] = {
        "issue": {"id": issue_id, "title": issue.get("title"), "state": issue["state"]},
        "voter": voter,
        "explanation": None,
        "error": None,
    }
    key = parse_voter(voter) if voter else None
    if not voter:
        out["error"] = "no_voter"
    elif key is None:
        out["error"] = "bad_key"
    elif issue["state"] != "sealed":
        out["error"] = "not_sealed"
    else:
        out["voter"] = key
        try:
            view = await tally_view(node, issue, cache)
        except LiquideError as exc:
            out["error"] = exc.code
            out["message"] = exc.message
        else:
            out["explanation"] = view.explain(key)
            out["digest"] = view.digest
            if out["explanation"] is None:
                out["error"] = "not_a_voter"
    return out


async def voter_data(node: Node, key: str, cache: ViewCache) -> dict[str, Any]:
    """A voter: enrolment, public delegations per scope with their targets' names, ballots,
    and the explanation of their weight in each of the :data:`VOTER_ISSUES` most recent
    sealed issues that count them.

    Raises NotFoundError if the key is unknown here.
    """
    try:
        out = src.voter(node, key)
        out["home"] = None
    except NotFoundError:
        found = await src.voter_elsewhere(node, key)
        if found is None:
            raise
        out = found
    names: dict[str, str] = {}
    for a in src.assemblies(node):
        names[a["id"]] = a["name"]
    for r in src.areas(node):
        names[r["id"]] = r["name"]
    sealed = src.issues(node, state="sealed", limit=VOTER_ISSUES)
    wanted = {b["issue"] for b in out["ballots"]}
    wanted |= {d["target"] for d in out["delegations"] if d["scope"] == "issue"}
    titles = src.issue_titles(node, sorted(wanted))
    for d in out["delegations"]:
        d["target_name"] = names.get(d["target"]) or titles.get(d["target"])
    for b in out["ballots"]:
        b["title"] = titles.get(b["issue"])
    explanations = []
    for iss in sealed:
        try:
            view = await tally_view(node, iss, cache)
        except LiquideError:  # an incomplete record: nothing to explain there yet
            continue
        e = view.explain(key)
        if e is not None:
            explanations.append({"issue": iss["id"], "title": iss["title"], "explanation": e})
    out["explanations"] = explanations
    return out
