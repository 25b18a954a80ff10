"""The handlers of the node's public ``/v1`` HTTP API (docs/PROTOCOL.md, HTTP section).

Writes go to the single writer (:class:`~node.ingest.Ingest`); reads use the node's reader
connection, which only sees committed, durable data. Every parameter is validated here and
every page is bounded by the config's ``page_size``. Errors are raised as Liquide errors and
turned into JSON bodies by the server's middleware.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from crypto import LiquideError

from . import _compat
from ._node import Node
from .errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RequestError,
    RequestTimeoutError,
    UnavailableError,
)
from .ingest import Accepted, Submission

__all__ = ["add_routes"]

NDJSON = "application/x-ndjson"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ORIGIN = "{origin:[!-~]+?}"


NODE_KEY = web.AppKey("node", Node)
"""The application's :class:`Node` (defined here, where the handlers use it on every request)."""


def _node(request: web.Request) -> Node:
    return request.app[NODE_KEY]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _int_param(
    request: web.Request, name: str, *, lo: int = 0, hi: int = 2**63 - 1, default: int | None = None
) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise RequestError(f"query parameter {name!r} is required", code="bad_param")
        return default
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", raw):
        raise RequestError(
            f"query parameter {name}={raw!r} is not a non-negative integer", code="bad_param"
        )
    value = int(raw)
    if not lo <= value <= hi:
        raise RequestError(
            f"query parameter {name}={value} must lie within [{lo}, {hi}]", code="bad_param"
        )
    return value


def _hex_id(value: str, what: str) -> str:
    if not _HEX64.match(value):
        raise RequestError(f"{what} {value!r} is not a lower-case hex SHA-256 id", code="bad_param")
    return value


def _page(request: web.Request, node: Node) -> tuple[int, int]:
    limit = _int_param(
        request, "limit", lo=1, hi=node.config.page_size, default=node.config.page_size
    )
    offset = _int_param(request, "offset", default=0)
    return offset, limit


async def _read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLargeError(f"the body of {length} bytes exceeds the bound of {limit} bytes")
    content = request.content
    if length is not None and content.is_eof():
        # The whole body is already buffered (the usual case for a small POST): nothing to
        # wait for, so no deadline to arm. The parser delivers exactly Content-Length bytes,
        # which is within the bound.
        return content.read_nowait()
    timeout = _node(request).config.read_timeout_s
    try:
        # A deadline for the whole body: a client trickling bytes cannot hold a handler.
        async with asyncio.timeout(timeout):
            data = await request.content.read(limit + 1)
            while len(data) <= limit:
                more = await request.content.read(limit + 1 - len(data))
                if not more:
                    break
                data += more
    except TimeoutError:
        raise RequestTimeoutError(
            f"the body did not arrive within {timeout:g} s (read_timeout_s)"
        ) from None
    if len(data) > limit:
        raise PayloadTooLargeError(f"the body exceeds the bound of {limit} bytes")
    return data


def _ingest(node: Node) -> Any:
    if node.ingest is None or not node.ready:
        raise UnavailableError("the node is not accepting writes (starting or stopping)")
    return node.ingest


def _accepted_json(acc: Accepted) -> dict[str, Any]:
    return {"receipt": acc.receipt, "event_id": acc.event_id, "index": acc.index, "new": acc.new}


# Writes -----------------------------------------------------------------------------------------


async def post_event(request: web.Request) -> web.Response:
    """``POST /v1/events``: one event's canonical signed bytes; answers its signed receipt."""
    node = _node(request)
    body = await _read_body(request, node.config.max_body_bytes)
    try:
        acc = await _ingest(node).submit(body)
    except LiquideError as exc:
        _rejected(request, exc)
        raise
    return web.json_response(_accepted_json(acc), status=201 if acc.new else 200)


def _rejected(request: web.Request, exc: LiquideError) -> None:
    from .server import METRICS_KEY

    request.app[METRICS_KEY].rejected.labels(exc.code).inc()


async def post_batch(request: web.Request) -> web.Response:
    """``POST /v1/events:batch``: NDJSON, one canonical event per line; one result per line."""
    node = _node(request)
    body = await _read_body(request, node.config.max_batch_bytes)
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) > node.config.max_batch_events:
        raise PayloadTooLargeError(
            f"the batch holds {len(lines)} events; the bound is {node.config.max_batch_events}"
        )
    if not lines:
        raise RequestError("the batch is empty: send one canonical event per line", code="empty")
    subs = [Submission(leaf=line) for line in lines]
    results = await _ingest(node).submit_batch(subs)
    # The answer is joined from per-result JSON texts; receipts of the batch form (hex ids,
    # base64 hashes, integers, and one origin encoded once) are written without the encoder.
    origin = json.dumps(node.origin)
    batch_text: dict[int, str] = {}
    parts: list[str] = []
    accepted = 0
    for r in results:
        if isinstance(r, Accepted):
            receipt = _batched_text(r.receipt, origin, batch_text) or json.dumps(r.receipt)
            new = "true" if r.new else "false"
            parts.append(
                f'{{"receipt":{receipt},"event_id":"{r.event_id}","index":{r.index},"new":{new}}}'
            )
            accepted += 1
        else:
            from .server import error_for

            _rejected(request, r)
            parts.append(error_for(r).text or "")
    text = (
        f'{{"results":[{",".join(parts)}],"accepted":{accepted},'
        f'"rejected":{len(parts) - accepted}}}'
    )
    return web.Response(text=text, content_type="application/json")


def _batched_text(receipt: dict[str, Any], origin: str, batches: dict[int, str]) -> str | None:
    """The JSON text of a receipt of the batch form, or None for another form."""
    batch = receipt.get("batch")
    if batch is None:
        return None
    b = batches.get(id(batch))
    if b is None:
        b = batches[id(batch)] = json.dumps(batch, separators=(",", ":"))
    path = '","'.join(receipt["path"])
    path = f'["{path}"]' if path else "[]"
    return (
        f'{{"v":1,"origin":{origin},"event_id":"{receipt["event_id"]}",'
        f'"index":{receipt["index"]},"time":{receipt["time"]},'
        f'"leaf_hash":"{receipt["leaf_hash"]}","batch":{b},"path":{path}}}'
    )


# Receipts and logs ------------------------------------------------------------------------------


def _note_with_cosignatures(node: Node, origin: str, size: int, note: str) -> str:
    lines = node.reader.cosignatures(origin, size)
    return _compat.add_signature_lines(note, lines)


async def get_receipt(request: web.Request) -> web.Response:
    """``GET /v1/receipts/{id}``: receipt, index, and a checkpoint with an inclusion proof."""
    node = _node(request)
    event_id = _hex_id(request.match_info["event_id"], "event id")
    reader = node.reader
    found = reader.locate(node.origin, event_id)
    if found is None:
        raise NotFoundError(f"event {event_id} is not in the log of {node.origin}")
    idx, time = found
    receipt = node.writer.receipt_at(reader, event_id, idx, time)
    out: dict[str, Any] = {
        "event_id": event_id,
        "index": idx,
        "receipt": receipt,
        "leaf": reader.leaf(node.origin, idx).decode("utf-8"),
        "checkpoint": None,
        "proof": None,
    }
    cp = reader.latest_checkpoint(node.origin)
    if cp is not None and cp.size > idx:
        out["size"] = cp.size
        out["checkpoint"] = _note_with_cosignatures(node, node.origin, cp.size, cp.note)
        out["proof"] = [_b64(h) for h in reader.inclusion_proof(node.origin, idx, cp.size)]
    return web.json_response(out)


def _log_json(node: Node, info: Any) -> dict[str, Any]:
    cp = node.reader.latest_checkpoint(info.origin)
    return {
        "origin": info.origin,
        "own": info.own,
        "vkey": info.vkey,
        "size": info.size,
        "frozen": info.frozen,
        "checkpoint": None
        if cp is None
        else _note_with_cosignatures(node, info.origin, cp.size, cp.note),
        "checkpoint_size": None if cp is None else cp.size,
        "cosignatures": [] if cp is None else node.reader.cosignatures(info.origin, cp.size),
    }


async def get_logs(request: web.Request) -> web.Response:
    """``GET /v1/logs``: every origin held with its latest checkpoint and cosignatures."""
    node = _node(request)
    return web.json_response({"logs": [_log_json(node, info) for info in node.reader.logs()]})


def _origin(request: web.Request, node: Node) -> Any:
    origin = request.match_info["origin"]
    info = node.reader.log(origin)
    if info is None:
        raise NotFoundError(f"this node holds no log {origin!r}")
    return info


async def get_checkpoint(request: web.Request) -> web.Response:
    """``GET /v1/logs/{origin}/checkpoint[?size=]``: the signed note with cosignature lines."""
    node = _node(request)
    info = _origin(request, node)
    if "size" in request.query:
        size = _int_param(request, "size")
        cp = node.reader.checkpoint(info.origin, size)
        if cp is None:
            raise NotFoundError(f"no checkpoint of {info.origin} at size {size} is stored")
    else:
        cp = node.reader.latest_checkpoint(info.origin)
        if cp is None:
            raise NotFoundError(f"no checkpoint of {info.origin} is stored yet")
    text = _note_with_cosignatures(node, info.origin, cp.size, cp.note)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def get_entries(request: web.Request) -> web.Response:
    """``GET /v1/logs/{origin}/entries?start=&end=``: leaves as NDJSON, at most a page."""
    node = _node(request)
    info = _origin(request, node)
    start = _int_param(request, "start", hi=info.size)
    end = _int_param(request, "end", lo=start, default=start + node.config.page_size)
    end = min(end, info.size, start + node.config.page_size)
    leaves = node.reader.leaves(info.origin, start, end)
    body = b"".join(leaf + b"\n" for leaf in leaves)
    resp = web.Response(body=body, content_type=NDJSON)
    resp.headers["Liquide-Start"] = str(start)
    resp.headers["Liquide-Count"] = str(len(leaves))
    resp.headers["Liquide-Size"] = str(info.size)
    return resp


async def get_inclusion(request: web.Request) -> web.Response:
    """``GET /v1/logs/{origin}/proof/inclusion?index=&size=`` (or ``event_id=``)."""
    node = _node(request)
    info = _origin(request, node)
    cp = node.reader.latest_checkpoint(info.origin)
    default_size = cp.size if cp is not None else info.size
    size = _int_param(request, "size", lo=1, hi=info.size, default=default_size or None)
    if "event_id" in request.query:
        event_id = _hex_id(request.query["event_id"], "event_id")
        found = node.reader.find_event(info.origin, event_id)
        if found is None:
            raise NotFoundError(f"event {event_id} is not in the log of {info.origin}")
        index = found
    else:
        index = _int_param(request, "index")
    if index >= size:
        raise RequestError(f"index {index} is not below the tree size {size}", code="bad_param")
    proof = node.reader.inclusion_proof(info.origin, index, size)
    return web.json_response(
        {
            "origin": info.origin,
            "index": index,
            "size": size,
            "root": _b64(node.reader.root_at(info.origin, size)),
            "proof": [_b64(h) for h in proof],
        }
    )


async def get_consistency(request: web.Request) -> web.Response:
    """``GET /v1/logs/{origin}/proof/consistency?old=&new=``."""
    node = _node(request)
    info = _origin(request, node)
    cp = node.reader.latest_checkpoint(info.origin)
    default_new = cp.size if cp is not None else info.size
    new = _int_param(request, "new", hi=info.size, default=default_new)
    old = _int_param(request, "old", hi=new)
    proof = node.reader.consistency_proof(info.origin, old, new)
    return web.json_response(
        {
            "origin": info.origin,
            "old": old,
            "new": new,
            "old_root": _b64(node.reader.root_at(info.origin, old)),
            "new_root": _b64(node.reader.root_at(info.origin, new)),
            "proof": [_b64(h) for h in proof],
        }
    )


# Governance -------------------------------------------------------------------------------------


def _rows(node: Node, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return node.reader.conn.execute(sql, params).fetchall()


async def get_assemblies(request: web.Request) -> web.Response:
    """``GET /v1/assemblies``: the assemblies defined or joined in the own log."""
    node = _node(request)
    offset, limit = _page(request, node)
    rows = _rows(
        node,
        "SELECT id, idx, body FROM assemblies ORDER BY idx, id LIMIT ? OFFSET ?",
        (limit, offset),
    )
    items = [{"id": r[0], "index": r[1], **json.loads(r[2])} for r in rows]
    return web.json_response({"assemblies": items, "offset": offset, "limit": limit})


async def get_areas(request: web.Request) -> web.Response:
    """``GET /v1/areas[?assembly=]``."""
    node = _node(request)
    offset, limit = _page(request, node)
    if "assembly" in request.query:
        assembly = _hex_id(request.query["assembly"], "assembly")
        rows = _rows(
            node,
            "SELECT id, idx, body FROM areas WHERE assembly = ? ORDER BY idx, id LIMIT ? OFFSET ?",
            (assembly, limit, offset),
        )
    else:
        rows = _rows(
            node,
            "SELECT id, idx, body FROM areas ORDER BY idx, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
    items = [{"id": r[0], "index": r[1], **json.loads(r[2])} for r in rows]
    return web.json_response({"areas": items, "offset": offset, "limit": limit})


def _issue_json(node: Node, row: Any) -> dict[str, Any]:
    issue_id, idx, opens, closes, sealed_idx, body = row
    now = int(node.clock())
    if sealed_idx is not None:
        state = "sealed"
    elif now < opens:
        state = "upcoming"
    elif now < closes:
        state = "open"
    else:
        state = "closed"
    return {
        "id": issue_id,
        "index": idx,
        "state": state,
        "sealed_index": sealed_idx,
        **json.loads(body),
    }


_ISSUE_COLS = "id, idx, opens, closes, sealed_idx, body"


async def get_issues(request: web.Request) -> web.Response:
    """``GET /v1/issues[?area=][&state=open|closed|sealed|upcoming]``."""
    node = _node(request)
    offset, limit = _page(request, node)
    where: list[str] = []
    params: list[Any] = []
    if "area" in request.query:
        where.append("area = ?")
        params.append(_hex_id(request.query["area"], "area"))
    state = request.query.get("state")
    now = int(node.clock())
    if state is not None:
        clauses = {
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
    sql = f"SELECT {_ISSUE_COLS} FROM issues"  # noqa: S608 (fixed columns, bound parameters)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY idx, id LIMIT ? OFFSET ?"
    rows = _rows(node, sql, (*params, limit, offset))
    return web.json_response(
        {"issues": [_issue_json(node, r) for r in rows], "offset": offset, "limit": limit}
    )


def _issue_row(node: Node, issue_id: str) -> Any:
    rows = _rows(node, f"SELECT {_ISSUE_COLS} FROM issues WHERE id = ?", (issue_id,))  # noqa: S608
    if not rows:
        raise NotFoundError(f"issue {issue_id} is not known at {node.origin}")
    return rows[0]


async def get_issue(request: web.Request) -> web.Response:
    """``GET /v1/issues/{id}``: definition, state and counts."""
    node = _node(request)
    issue_id = _hex_id(request.match_info["issue"], "issue id")
    out = _issue_json(node, _issue_row(node, issue_id))
    out["ballots"] = _rows(node, "SELECT COUNT(*) FROM ballots WHERE issue = ?", (issue_id,))[0][0]
    out["delegations"] = _rows(
        node, "SELECT COUNT(*) FROM delegations WHERE scope = 'issue' AND scope_id = ?", (issue_id,)
    )[0][0]
    return web.json_response(out)


async def get_tally(request: web.Request) -> web.Response:
    """``GET /v1/issues/{id}/tally``: the tally of the issue's record, once sealed."""
    node = _node(request)
    issue_id = _hex_id(request.match_info["issue"], "issue id")
    settled = _settled_record(request, issue_id)
    if settled is not None:  # witnesses and observers hold it too, without the issue's row
        return web.json_response(
            {k: settled[k] for k in ("issue", "record", "record_id", "findings", "result")}
            | {"flags": settled["flags"], "standins": settled["standins"]}
        )
    row = _issue_row(node, issue_id)
    if row[4] is None:
        raise ConflictError(
            f"issue {issue_id} is not sealed at {node.origin} yet; its tally exists once sealed",
            code="not_sealed",
        )
    result = await _compat.tally(node, issue_id)
    return web.json_response(result)


def _settled_record(request: web.Request, issue_id: str) -> dict[str, Any] | None:
    """The federation's settled record of ``issue_id`` (with stand-ins and seal flags), if any.

    When the federation is mounted it is the one record this node attests, so the tally and
    the explanations served here must come from it; a bare node falls back to its seal-only
    record (``node/_tally.py``).
    """
    from ._federation import FED_KEY

    fed = request.app.get(FED_KEY)
    return None if fed is None else fed.record(issue_id)


async def get_voter(request: web.Request) -> web.Response:
    """``GET /v1/voters/{key}``: enrolment, public delegations per scope, ballots, chain head."""
    node = _node(request)
    key = request.match_info["key"]
    try:
        from protocol.events import parse_key

        parse_key(key, "key")
    except Exception as exc:
        raise RequestError(f"{key!r} is not a public key (lqpk1…)", code="bad_param") from exc
    return web.json_response(voter_json(node, key))


def voter_json(node: Node, key: str) -> dict[str, Any]:
    """A voter as ``GET /v1/voters/{key}`` serves it (the web pages use it too).

    Raises :class:`NotFoundError` when the key is neither enrolled nor an author here.
    """
    enrol = _rows(node, "SELECT ref, active, idx FROM enrolments WHERE key = ?", (key,))
    head = node.reader.head(node.origin, key)
    if not enrol and head is None:
        raise NotFoundError(f"{key} is not known at {node.origin}")
    delegations = [
        {"scope": r[0], "target": r[1], "trustees": json.loads(r[2]), "index": r[3]}
        for r in _rows(
            node,
            "SELECT scope, scope_id, trustees, idx FROM delegations WHERE author = ?"
            " ORDER BY scope, scope_id",
            (key,),
        )
    ]
    ballots = [
        {"issue": r[0], "grades": json.loads(r[1]), "index": r[2]}
        for r in _rows(
            node, "SELECT issue, grades, idx FROM ballots WHERE author = ? ORDER BY idx", (key,)
        )
    ]
    return {
        "key": key,
        "origin": node.origin,
        "enrolled": bool(enrol and enrol[0][1]),
        "enrolment": None if not enrol else {"ref": enrol[0][0], "index": enrol[0][2]},
        "delegations": delegations,
        "ballots": ballots,
        "head": None if head is None else {"seq": head[0], "event_id": head[1]},
    }


async def get_explain(request: web.Request) -> web.Response:
    """``GET /v1/voters/{key}/explain/{issue}``: where the voter's weight went in the tally."""
    node = _node(request)
    key = request.match_info["key"]
    issue_id = _hex_id(request.match_info["issue"], "issue id")
    from ._federation import FED_KEY

    fed = request.app.get(FED_KEY)
    inp = None if fed is None else fed.record_input(issue_id)
    if inp is not None:
        return web.json_response(await asyncio.to_thread(_explain_input, inp, issue_id, key))
    row = _issue_row(node, issue_id)
    if row[4] is None:
        raise ConflictError(f"issue {issue_id} is not sealed yet", code="not_sealed")
    return web.json_response(await _compat.explain(node, issue_id, key))


def _explain_input(inp: dict[str, Any], issue_id: str, key: str) -> dict[str, Any]:
    """Explain ``key`` in the tally of ``inp`` (CPU work: run off the event loop)."""
    from protocol.errors import TallyInputError
    from protocol.tally import TallyEngine, TallyInput

    engine = TallyEngine(TallyInput.from_dict(inp))
    try:
        explanation = engine.explain(key)
    except TallyInputError:
        raise NotFoundError(f"{key} is not a voter in the tally of {issue_id}") from None
    return {"issue": issue_id, "digest": engine.result.digest, **explanation.to_dict()}


async def get_proofs(request: web.Request) -> web.Response:
    """``GET /v1/proofs``: the misbehaviour proofs this node holds."""
    node = _node(request)
    return web.json_response({"proofs": node.reader.proofs()})


# Operations -------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 while the node accepts writes, 503 when starting or stopping."""
    node = _node(request)
    if not node.ready:
        raise UnavailableError("the node is not ready")
    return web.json_response({"status": "ready", "origin": node.origin, "size": node.writer.size})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: prometheus text exposition of this app's registry."""
    from .server import METRICS_KEY

    node = _node(request)
    m = request.app[METRICS_KEY]
    for info in node.reader.logs():
        m.log_size.labels(info.origin).set(info.size)
        cp = node.reader.latest_checkpoint(info.origin)
        if cp is not None:
            m.checkpoint_size.labels(info.origin).set(cp.size)
    resp = web.Response(body=generate_latest(m.registry))
    resp.content_type = "text/plain"
    resp.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    return resp


def add_routes(app: web.Application) -> None:
    """Register every public route on ``app``."""
    app.router.add_post("/v1/events", post_event)
    app.router.add_post("/v1/events:batch", post_batch)
    app.router.add_get("/v1/receipts/{event_id}", get_receipt)
    app.router.add_get("/v1/logs", get_logs)
    app.router.add_get(f"/v1/logs/{_ORIGIN}/checkpoint", get_checkpoint)
    app.router.add_get(f"/v1/logs/{_ORIGIN}/entries", get_entries)
    app.router.add_get(f"/v1/logs/{_ORIGIN}/proof/inclusion", get_inclusion)
    app.router.add_get(f"/v1/logs/{_ORIGIN}/proof/consistency", get_consistency)
    app.router.add_get("/v1/assemblies", get_assemblies)
    app.router.add_get("/v1/areas", get_areas)
    app.router.add_get("/v1/issues", get_issues)
    app.router.add_get("/v1/issues/{issue}", get_issue)
    app.router.add_get("/v1/issues/{issue}/tally", get_tally)
    app.router.add_get("/v1/voters/{key}", get_voter)
    app.router.add_get("/v1/voters/{key}/explain/{issue}", get_explain)
    app.router.add_get("/v1/proofs", get_proofs)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
