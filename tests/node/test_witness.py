"""The witness (C2SP tlog-witness add-checkpoint): the pure decision, the HTTP endpoint, and
its durable state across a restart."""

from __future__ import annotations

import base64

import pytest

from crypto import SecretKey
from node._node import Node
from node.client import Response
from node.server import create_app
from node.transport import AppHandler
from protocol._witness import (
    MAX_PROOF_LINES,
    decide,
    format_add_checkpoint,
    parse_add_checkpoint,
)
from protocol.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from protocol.errors import CheckpointError
from protocol.merkle import MemoryTree

from .test_federation_harness import Sim

ORIGIN = "log.example/liquide"
KEY = SecretKey(b"\x07" * 32)


def _tree(n: int) -> MemoryTree:
    t = MemoryTree()
    for i in range(n):
        t.append_data(f"leaf {i}".encode())
    return t


def _note(t: MemoryTree, size: int, key: SecretKey = KEY) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, t.root(size)), key).to_text()


def _req(t: MemoryTree, old: int, new: int, key: SecretKey = KEY) -> bytes:
    proof = t.consistency_proof(old, new) if old else []
    return format_add_checkpoint(old, proof, _note(t, new, key))


def test_parse_round_trip_and_rejections() -> None:
    t = _tree(10)
    body = _req(t, 4, 10)
    req = parse_add_checkpoint(body)
    assert req.old_size == 4
    assert list(req.proof) == t.consistency_proof(4, 10)
    assert req.checkpoint.checkpoint.size == 10
    for bad, why in [
        (b"old 01\n\n" + _note(t, 3).encode(), "old <size>"),
        (b"old 3\n", "blank line"),
        (b"old 3\nnot-base64\n\n" + _note(t, 3).encode(), "proof line 1"),
        (b"old 3\n" + b"".join(base64.b64encode(b"x" * 32) + b"\n"
                               for _ in range(MAX_PROOF_LINES + 1)) + b"\n" + _note(t, 3).encode(),
         "more than 63"),
        (b"\xff\xfe", "UTF-8"),
    ]:  # fmt: skip
        with pytest.raises(CheckpointError, match=why):
            parse_add_checkpoint(bad)


def test_decide_follows_the_spec_in_order() -> None:
    t = _tree(10)
    keys = [KEY.public_key]
    last = Checkpoint(ORIGIN, 4, t.root(4))
    ok = decide(parse_add_checkpoint(_req(t, 4, 10)), keys, last)
    assert ok.status == 200
    assert ok.checkpoint is not None
    assert ok.checkpoint.size == 10
    assert decide(parse_add_checkpoint(_req(t, 4, 10)), None, last).status == 404
    forged = parse_add_checkpoint(_req(t, 4, 10, SecretKey(b"\x08" * 32)))
    assert decide(forged, keys, last).status == 403
    stale = decide(parse_add_checkpoint(_req(t, 2, 10)), keys, last)
    assert (stale.status, stale.stale_size) == (409, 4)
    first = decide(parse_add_checkpoint(_req(t, 0, 10)), keys, None)
    assert first.status == 200
    assert decide(parse_add_checkpoint(_req(t, 0, 10)), keys, last).stale_size == 4
    bad_proof = parse_add_checkpoint(format_add_checkpoint(4, [b"\x00" * 32] * 3, _note(t, 10)))
    assert decide(bad_proof, keys, last).status == 422
    other = _tree(12)
    fork = SignedCheckpoint.parse(
        sign_checkpoint(Checkpoint(ORIGIN, 4, other.root(3)), KEY).to_text()
    )
    same_size = parse_add_checkpoint(format_add_checkpoint(4, [], fork.to_text()))
    assert decide(same_size, keys, last).status == 409
    too_old = parse_add_checkpoint(format_add_checkpoint(11, [], _note(t, 10)))
    assert decide(too_old, keys, Checkpoint(ORIGIN, 11, other.root(11))).status == 400


async def _post(sim: Sim, src: str, dst: str, body: bytes) -> Response:
    return await sim.net.transport(src, dst).request(
        "POST", "/v1/witness/add-checkpoint", body=body, content_type="text/plain"
    )


async def test_endpoint_cosigns_persists_and_answers_409_after_a_restart(sim: Sim) -> None:
    a, b = await sim.line(["a", "b"])
    await a.enrol_citizen("x")
    await sim.checkpoint()
    cp = a.node.reader.latest_checkpoint(a.origin)
    assert cp is not None
    # Unknown origin: 404; the own origin is never witnessed.
    stranger = sign_checkpoint(Checkpoint("z.example/liquide", 0, _tree(0).root()), KEY)
    assert (
        await _post(sim, a.url, b.url, format_add_checkpoint(0, [], stranger.to_text()))
    ).status == 404
    own = b.node.reader.latest_checkpoint(b.origin)
    assert own is not None
    assert (await _post(sim, a.url, b.url, format_add_checkpoint(0, [], own.note))).status == 404
    resp = await _post(sim, a.url, b.url, format_add_checkpoint(0, [], cp.note))
    assert resp.status == 200
    sc = SignedCheckpoint.parse(cp.note + resp.body.decode())
    sc.verify_cosignature(b.origin, b.node.key.public_key)
    # Stale old size after a restart of the witness: its state was durable.
    await b.handler.stop()
    sim.nodes.pop("b")
    node = Node.open(b.node.data_dir, clock=sim.clock)
    node.extra.update(federation_config=sim.fed_config)
    handler = AppHandler(create_app(node))
    await handler.start()
    sim.net.register(b.url, handler)
    try:
        again = await _post(sim, a.url, b.url, format_add_checkpoint(0, [], cp.note))
        assert again.status == 409
        assert again.body == f"{cp.size}\n".encode()
        assert again.headers["content-type"].startswith("text/x.tlog.size")
    finally:
        await handler.stop()


async def test_pusher_learns_the_size_from_409_and_keeps_cosignatures(sim: Sim) -> None:
    a, b = await sim.line(["a", "b"])
    await a.enrol_citizen("x")
    await sim.checkpoint()
    assert await a.fed.push_all() == 1
    wp = a.fed.pusher.witnesses[b.url]
    size = wp.cosigned
    await a.enrol_citizen("y")
    await sim.checkpoint()
    wp.cosigned = None  # forget: the witness's 409 says where to prove from
    assert await a.fed.push_all() == 1
    assert wp.cosigned is not None
    assert size is not None
    assert wp.cosigned > size
    assert wp.stats.get("409") == 1
    note = await a.client().checkpoint(a.origin)
    SignedCheckpoint.parse(note).verify_cosignature(b.origin, b.node.key.public_key)
