"""Tallies of sealed issues as this node holds their record (``GET /v1/issues/{id}/tally``).

An issue's record is each member city's log prefix up to its seal of the issue. This node holds
its own log and whatever mirrors federation keeps. For each member it replays that prefix
(``protocol.state.replay``), builds the ``TallyInput`` (``protocol.state.tally_input``) and
runs the engine (``protocol.tally``). A member whose log or seal this node does not hold yet
makes the record incomplete: a 409 that names it. (Stand-in parts for members that did not
seal by close + grace are the federation layer's to choose.) Results are cached in the ``tallies`` table
(through the single writer), keyed by the record id (``protocol.record``).

Replay and tally are CPU work on a thread of their own, over a connection of their own.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from protocol.events import AssemblyBody, Event
from protocol.record import Record, RecordPart
from protocol.state import State, replay, tally_input
from protocol.tally import TallyEngine, TallyInput

from .errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from ._node import Node
    from .store import Store

__all__ = ["explain_of", "tally_of"]


def _own_state_at_seal(store: Store, origin: str, key: str, issue_id: str) -> State:
    state = State(origin, key, leaves=lambda i: store.leaf(origin, i))
    for index, leaf in enumerate(store.iter_leaves(origin)):
        state.apply_event(index, Event.decode(leaf), verified=True)
        if state.seals.get(issue_id) == index:
            return state
    raise ConflictError(f"{origin} has not sealed issue {issue_id}", code="not_sealed")


def _record(store: Store, node_origin: str, node_key: str, issue_id: str) -> dict[str, Any]:
    own = _own_state_at_seal(store, node_origin, node_key, issue_id)
    issue = own.issue(issue_id)
    if issue is None:
        raise NotFoundError(f"issue {issue_id} is not known at {node_origin}")
    assembly: AssemblyBody | None = own.assembly(issue.assembly)
    if assembly is None:  # pragma: no cover (adoption requires the joined assembly)
        raise NotFoundError(f"the assembly of issue {issue_id} is not joined here")
    parts: dict[str, State] = {node_origin: own}
    for member in assembly.members:
        if member.origin == node_origin:
            continue
        info = store.log(member.origin)
        if info is None:
            raise ConflictError(
                f"the record of {issue_id} is incomplete here: no mirror of {member.origin}",
                code="record_incomplete",
            )
        leaves = store.leaves(member.origin, 0, info.size)
        rep = replay(member.origin, member.key, leaves, snapshot=[issue_id])
        at = rep.at_seal.get(issue_id)
        if at is None:
            raise ConflictError(
                f"the record of {issue_id} is incomplete here: {member.origin} has not sealed it",
                code="record_incomplete",
            )
        parts[member.origin] = at
    record = Record.of(
        issue_id,
        [
            RecordPart(o, st.size, store.root_at(o, st.size), "seal", seal=st.size - 1)
            for o, st in parts.items()
        ],
    )
    built = tally_input(issue_id, parts)
    inp = built.prepared
    result = TallyEngine(inp).result.to_dict()
    return {
        "issue": issue_id,
        "record": record.to_dict(),
        "record_id": record.id,
        "input": built.input,
        "findings": [f.to_dict() for f in built.findings],
        "result": result,
    }


async def _compute(node: Node, issue_id: str) -> dict[str, Any]:
    cached = node.reader.conn.execute(
        "SELECT result FROM tallies WHERE issue = ? ORDER BY rowid DESC LIMIT 1", (issue_id,)
    ).fetchone()
    if cached is not None:
        out: dict[str, Any] = json.loads(cached[0])
        return out

    def work() -> dict[str, Any]:
        store = node.reader.reader()
        try:
            return _record(store, node.origin, node.key.public_key.to_text(), issue_id)
        finally:
            store.close()

    out = await asyncio.to_thread(work)
    body = json.dumps(out, sort_keys=True)

    def save() -> None:
        node.store.conn.execute(
            "INSERT OR IGNORE INTO tallies (issue, record_id, result) VALUES (?, ?, ?)",
            (issue_id, out["record_id"], body),
        )

    if node.ingest is not None:
        await node.ingest.call(save)
    return out


async def tally_of(node: Node, issue_id: str) -> dict[str, Any]:
    """The tally of a sealed issue: its record's parts, findings, and the result with digest."""
    out = await _compute(node, issue_id)
    return {k: v for k, v in out.items() if k != "input"}


async def explain_of(node: Node, issue_id: str, key: str) -> dict[str, Any]:
    """How ``key``'s weight was counted in the tally of ``issue_id``."""
    from protocol.errors import TallyInputError

    out = await _compute(node, issue_id)
    engine = TallyEngine(TallyInput.from_dict(out["input"]))
    try:
        explanation = engine.explain(key)
    except TallyInputError:
        raise NotFoundError(f"{key} is not a voter in the tally of {issue_id}") from None
    return {"issue": issue_id, "digest": out["result"]["digest"], **explanation.to_dict()}
