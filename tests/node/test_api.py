"""The public HTTP API (pytest-aiohttp): every endpoint, its errors, and nothing stored on refusal."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from crypto import PublicKey
from node.server import create_app
from protocol.checkpoint import BatchedReceipt, Receipt, SignedCheckpoint, parse_receipt
from protocol.errors import CheckpointError
from protocol.events import Event
from protocol.merkle import leaf_hash, verify_consistency, verify_inclusion


@pytest.fixture
async def served(civic, aiohttp_client):
    """``served(**settings)``: (client, civic) for a started node with an open issue."""

    async def make(citizens: int = 3, **settings: Any):
        c = civic(citizens, **settings)
        client = await aiohttp_client(create_app(c.node))
        return client, c

    return make


def city_pk(c) -> PublicKey:
    return c.node.key.public_key


def size(c) -> int:
    return c.node.reader.log(c.node.origin).size


async def post(client, ev: Event | bytes, path: str = "/v1/events"):
    data = ev if isinstance(ev, bytes) else ev.encode()
    resp = await client.post(path, data=data)
    return resp.status, await resp.json()


async def wait_checkpoint(client, c, at_least: int) -> SignedCheckpoint:
    for _ in range(200):
        resp = await client.get(f"/v1/logs/{c.node.origin}/checkpoint")
        sc = SignedCheckpoint.parse(await resp.text())
        if sc.checkpoint.size >= at_least:
            return sc
        await asyncio.sleep(0.02)
    raise AssertionError("no checkpoint")


async def test_receipt_and_inclusion_verify_with_protocol_code(served) -> None:
    client, c = await served()
    alice = c.citizens[0]
    ev = alice.delegate("area", c.area, [c.citizens[1].pk])
    status, body = await post(client, ev)
    assert status == 201
    receipt = Receipt.from_dict(body["receipt"])
    receipt.verify(city_pk(c))
    assert (receipt.event_id, receipt.index, receipt.origin) == (
        ev.id,
        body["index"],
        c.node.origin,
    )
    await wait_checkpoint(client, c, receipt.index + 1)
    resp = await client.get(f"/v1/receipts/{ev.id}")
    assert resp.status == 200
    got = await resp.json()
    assert got["receipt"] == body["receipt"]
    cp = SignedCheckpoint.parse(got["checkpoint"]).verify(c.node.origin, city_pk(c))
    proof = [base64.b64decode(h) for h in got["proof"]]
    verify_inclusion(leaf_hash(ev.encode()), receipt.index, cp.size, proof, cp.root)
    assert got["leaf"].encode() == ev.encode()


async def test_repeated_event_gets_the_same_receipt(served) -> None:
    client, c = await served()
    ev = c.citizens[0].delegate("assembly", c.assembly, [c.citizens[2].pk])
    s1, b1 = await post(client, ev)
    n = size(c)
    s2, b2 = await post(client, ev)
    assert (s1, s2) == (201, 200)
    assert b1["receipt"] == b2["receipt"]
    assert b2["new"] is False
    assert size(c) == n


def _resign_broken(ev: Event) -> bytes:
    d = ev.to_dict()
    sig = bytearray(base64.b64decode(d["sig"]))
    sig[0] ^= 1
    d["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


async def test_refusals_name_the_problem_and_store_nothing(served, author, clock) -> None:
    client, c = await served()
    alice, bob = c.citizens[0], c.citizens[1]
    good = alice.delegate("area", c.area, [bob.pk])
    assert (await post(client, good))[0] == 201
    cases: list[tuple[str, bytes, int, str]] = [
        ("malformed JSON", b'{"v":1,', 400, "malformed_json"),
        (
            "non-canonical",
            json.dumps(
                alice.delegate("area", c.area, [], advance=False).to_dict(), sort_keys=True
            ).encode(),
            400,
            "non_canonical",
        ),
        (
            "bad signature",
            _resign_broken(alice.delegate("area", c.area, [], advance=False)),
            422,
            "bad_signature",
        ),
        ("unknown field", b'{"a":1}', 422, "invalid"),
        (
            "unknown author",
            author("stranger").delegate("area", c.area, []).encode(),
            403,
            "unknown_author",
        ),
        (
            "chain gap",
            alice.event(
                "delegate", {"scope": "area", "target": c.area, "trustees": []}, advance=False
            )
            .__class__.create(
                alice.sk,
                "revoke",
                {"scope": "area", "target": c.area},
                alice.seq + 2,
                alice.prev,
                int(clock()),
            )
            .encode(),
            422,
            "chain_gap",
        ),
        (
            "chain prev",
            Event.create(
                alice.sk,
                "revoke",
                {"scope": "area", "target": c.area},
                alice.seq + 1,
                "00" * 32,
                int(clock()),
            ).encode(),
            422,
            "chain_prev",
        ),
        (
            "clock skew",
            alice.event(
                "revoke",
                {"scope": "area", "target": c.area},
                ts=int(clock()) - 10_000,
                advance=False,
            ).encode(),
            422,
            "clock_skew",
        ),
        (
            "unknown option",
            alice.ballot(c.issue, {"maybe": 1}, advance=False).encode(),
            422,
            "unknown_option",
        ),
        (
            "unknown target",
            alice.delegate("issue", "ab" * 32, [], advance=False).encode(),
            422,
            "unknown_target",
        ),
    ]
    before = size(c)
    for name, data, status, code in cases:
        got_status, body = await post(client, data)
        assert (got_status, body["error"]["code"]) == (status, code), (name, body)
        assert body["error"]["message"], name
    assert size(c) == before


async def test_used_seq_is_a_409_naming_the_head(served) -> None:
    client, c = await served()
    alice = c.citizens[0]
    first = alice.delegate("area", c.area, [c.citizens[1].pk])
    await post(client, first)
    alice.seq, alice.prev = 0, None  # a wallet that lost its chain state
    status, body = await post(client, alice.delegate("area", c.area, []))
    assert status == 409
    assert body["error"]["code"] == "seq_used"
    assert body["error"]["head"] == {"seq": 1, "event_id": first.id}


async def test_ballot_outside_its_window(served, clock) -> None:
    client, c = await served()
    alice = c.citizens[0]
    assert (await post(client, alice.ballot(c.issue, {"yes": 1})))[0] == 201
    clock.advance(3600)  # the issue closes
    status, body = await post(client, alice.ballot(c.issue, {"no": 1}, advance=False))
    assert (status, body["error"]["code"]) == (422, "outside_window")
    assert "closed" in body["error"]["message"] or "sealed" in body["error"]["message"]


async def test_oversized_bodies_are_413(served) -> None:
    client, c = await served(max_body_bytes=2048, max_batch_events=3)
    n = size(c)
    resp = await client.post("/v1/events", data=b"x" * 4096)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    evs = [c.citizens[i].delegate("area", c.area, []) for i in range(3)]
    resp = await client.post("/v1/events:batch", data=b"\n".join(e.encode() for e in evs * 2))
    assert resp.status == 413
    assert size(c) == n


async def test_rate_limit_is_429_and_exempt_addresses_pass(served) -> None:
    client, _c = await served(rate_limit_per_s=0.1, rate_limit_burst=2)
    statuses = [(await client.post("/v1/events", data=b"{}")).status for _ in range(3)]
    assert statuses[:2] == [422, 422]
    resp = await client.post("/v1/events", data=b"{}")
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "rate_limited"
    assert (await client.get("/v1/logs")).status == 200  # reads are not limited
    client2, _ = await served(
        rate_limit_per_s=0.1, rate_limit_burst=1, rate_limit_exempt=("127.0.0.0/8", "::1")
    )
    assert {(await client2.post("/v1/events", data=b"{}")).status for _ in range(5)} == {422}


async def test_batch_appends_the_valid_and_names_the_rest(served) -> None:
    client, c = await served(citizens=4)
    lines = [c.citizens[i].delegate("area", c.area, []).encode() for i in range(4)]
    lines.insert(2, b"garbage")
    n = size(c)
    resp = await client.post("/v1/events:batch", data=b"\n".join(lines) + b"\n")
    assert resp.status == 200
    body = await resp.json()
    assert (body["accepted"], body["rejected"]) == (4, 1)
    assert body["results"][2]["error"]["code"] == "malformed_json"
    good = lines[:2] + lines[3:]
    receipts = [r["receipt"] for r in body["results"][:2] + body["results"][3:]]
    for line, doc in zip(good, receipts, strict=True):
        receipt = parse_receipt(doc)
        assert isinstance(receipt, BatchedReceipt)
        receipt.verify(city_pk(c), leaf=line)
        assert (receipt.batch.first, receipt.batch.count) == (n, 4)
    assert [r["index"] for r in receipts] == list(range(n, n + 4))
    assert size(c) == n + 4
    resp = await client.post("/v1/events:batch", data=b"")
    assert resp.status == 400


async def test_batch_receipts_are_stable_and_bind_their_leaves(served) -> None:
    """A repeated batch, a single POST of a batched event and ``GET /v1/receipts`` all give the
    receipt first issued; a receipt does not verify for another leaf or with its path altered."""
    client, c = await served(citizens=3)
    lines = [c.citizens[i].delegate("area", c.area, []).encode() for i in range(3)]
    first = await (await client.post("/v1/events:batch", data=b"\n".join(lines))).json()
    again = await (await client.post("/v1/events:batch", data=b"\n".join(lines))).json()
    assert [r["new"] for r in again["results"]] == [False] * 3
    assert [r["receipt"] for r in again["results"]] == [r["receipt"] for r in first["results"]]
    status, single = await post(client, lines[1])
    assert (status, single["receipt"]) == (200, first["results"][1]["receipt"])
    ev = Event.decode(lines[2])
    got = await (await client.get(f"/v1/receipts/{ev.id}")).json()
    assert got["receipt"] == first["results"][2]["receipt"]
    receipt = BatchedReceipt.from_dict(got["receipt"])
    with pytest.raises(CheckpointError, match="another leaf"):
        receipt.verify(city_pk(c), leaf=lines[0])
    doc = dict(got["receipt"], path=[base64.b64encode(bytes(32)).decode()])
    with pytest.raises(CheckpointError, match="path"):
        BatchedReceipt.from_dict(doc).verify(city_pk(c))
    # A single POST still gets the single form.
    status, body = await post(
        client, c.citizens[0].event("revoke", {"scope": "area", "target": c.area})
    )
    assert status == 201
    Receipt.from_dict(body["receipt"]).verify(city_pk(c))


async def test_large_batch_uses_the_pool_and_refuses_a_bad_signature(served) -> None:
    """Above ``pool_threshold`` signatures are checked by the worker processes: a forged one
    is refused by name and the rest of the batch is appended with verifying receipts."""
    client, c = await served(citizens=6, verify_workers=2, pool_threshold=4)
    evs = [c.citizens[i].delegate("area", c.area, []) for i in range(6)]
    lines = [e.encode() for e in evs]
    forged = json.loads(lines[3])
    forged["sig"] = base64.b64encode(bytes(64)).decode()
    lines[3] = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    n = size(c)
    body = await (await client.post("/v1/events:batch", data=b"\n".join(lines))).json()
    assert (body["accepted"], body["rejected"]) == (5, 1)
    assert body["results"][3]["error"]["code"] == "bad_signature"
    for i in (0, 1, 2, 4, 5):
        parse_receipt(body["results"][i]["receipt"]).verify(city_pk(c), leaf=lines[i])
    assert size(c) == n + 5


async def test_log_endpoints(served) -> None:
    client, c = await served()
    origin = c.node.origin
    logs = (await (await client.get("/v1/logs")).json())["logs"]
    assert logs[0]["origin"] == origin
    assert logs[0]["own"] is True
    name, pk = PublicKey.from_vkey(logs[0]["vkey"])
    assert name == origin
    assert pk == city_pk(c)
    sc = await wait_checkpoint(client, c, size(c))
    cp = sc.verify(origin, pk)
    resp = await client.get(
        f"/v1/logs/{origin}/entries", params={"start": "0", "end": str(cp.size)}
    )
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    leaves = (await resp.read()).split(b"\n")[:-1]
    assert len(leaves) == cp.size
    for leaf in leaves:
        Event.decode(leaf).verify()
    resp = await client.get(
        f"/v1/logs/{origin}/proof/consistency", params={"old": "2", "new": str(cp.size)}
    )
    body = await resp.json()
    old_root = base64.b64decode(body["old_root"])
    verify_consistency(2, cp.size, old_root, cp.root, [base64.b64decode(h) for h in body["proof"]])
    resp = await client.get(f"/v1/logs/{origin}/proof/inclusion", params={"index": "1"})
    body = await resp.json()
    verify_inclusion(
        leaf_hash(leaves[1]), 1, body["size"], [base64.b64decode(h) for h in body["proof"]], cp.root
    )
    ev = Event.decode(leaves[1])
    resp = await client.get(f"/v1/logs/{origin}/proof/inclusion", params={"event_id": ev.id})
    assert (await resp.json())["index"] == 1
    resp = await client.get(f"/v1/logs/{origin}/checkpoint", params={"size": "0"})
    assert SignedCheckpoint.parse(await resp.text()).verify(origin, pk).size == 0


async def test_entries_pages_are_bounded(served) -> None:
    client, c = await served(citizens=4, page_size=3)
    origin = c.node.origin
    resp = await client.get(f"/v1/logs/{origin}/entries", params={"start": "1", "end": "100"})
    assert resp.status == 200
    assert int(resp.headers["Liquide-Count"]) == 3
    assert len((await resp.read()).split(b"\n")) == 4


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/logs/test.example/liquide/entries?start=-1", 400, "bad_param"),
        ("/v1/logs/test.example/liquide/entries?start=x", 400, "bad_param"),
        ("/v1/logs/test.example/liquide/entries?start=999", 400, "bad_param"),
        ("/v1/logs/test.example/liquide/entries?start=2&end=1", 400, "bad_param"),
        ("/v1/logs/test.example/liquide/entries", 400, "bad_param"),
        ("/v1/logs/nowhere.example/checkpoint", 404, "not_found"),
        ("/v1/logs/test.example/liquide/checkpoint?size=3", 404, "not_found"),
        ("/v1/logs/test.example/liquide/proof/inclusion?index=99", 400, "bad_param"),
        ("/v1/logs/test.example/liquide/proof/consistency?old=5&new=2", 400, "bad_param"),
        ("/v1/receipts/xyz", 400, "bad_param"),
        ("/v1/receipts/" + "ab" * 32, 404, "not_found"),
        ("/v1/issues/" + "ab" * 32, 404, "not_found"),
        ("/v1/issues?state=maybe", 400, "bad_param"),
        ("/v1/issues?limit=0", 400, "bad_param"),
        ("/v1/issues?limit=100000", 400, "bad_param"),
        ("/v1/areas?assembly=nope", 400, "bad_param"),
        ("/v1/voters/lqpk1nope", 400, "bad_param"),
        ("/v1/nothing-here", 404, "not_found"),
    ],
)
async def test_read_errors(served, path: str, status: int, code: str) -> None:
    client, _ = await served(citizens=1)
    resp = await client.get(path)
    assert resp.status == status
    body = await resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_method_not_allowed_is_json(served) -> None:
    client, _ = await served(citizens=0)
    resp = await client.delete("/v1/logs")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_governance_reads_and_tally_once_sealed(served, clock) -> None:
    client, c = await served(citizens=3)
    a, b, d = c.citizens
    for ev in (
        a.ballot(c.issue, {"yes": 1, "no": -1}),
        b.delegate("area", c.area, [a.pk]),
        d.delegate("issue", c.issue, [b.pk]),
    ):
        assert (await post(client, ev))[0] == 201
    assemblies = (await (await client.get("/v1/assemblies")).json())["assemblies"]
    assert [x["id"] for x in assemblies] == [c.assembly]
    areas = (await (await client.get("/v1/areas", params={"assembly": c.assembly})).json())["areas"]
    assert [x["id"] for x in areas] == [c.area]
    issues = (await (await client.get("/v1/issues", params={"state": "open"})).json())["issues"]
    assert [x["id"] for x in issues] == [c.issue]
    issue = await (await client.get(f"/v1/issues/{c.issue}")).json()
    assert (issue["state"], issue["ballots"], issue["delegations"]) == ("open", 1, 1)
    voter = await (await client.get(f"/v1/voters/{b.pk}")).json()
    assert voter["enrolled"] is True
    assert voter["delegations"][0]["trustees"] == [a.pk]
    assert voter["head"]["seq"] == 1
    assert (await client.get(f"/v1/voters/{c.citizens[0].sk.public_key.to_text()}")).status == 200
    resp = await client.get(f"/v1/issues/{c.issue}/tally")
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "not_sealed"
    clock.advance(3600)  # the window closes: the ticker seals automatically
    for _ in range(200):
        issue = await (await client.get(f"/v1/issues/{c.issue}")).json()
        if issue["state"] == "sealed":
            break
        await asyncio.sleep(0.02)
    assert issue["state"] == "sealed"
    tally = await (await client.get(f"/v1/issues/{c.issue}/tally")).json()
    assert len(tally["result"]["digest"]) == 64
    assert tally["result"]["voters"][a.pk]["weight"] == 3
    explained = await (await client.get(f"/v1/voters/{d.pk}/explain/{c.issue}")).json()
    assert explained["status"] == "delegated"
    assert explained["scope"] == "issue"
    again = await (await client.get(f"/v1/issues/{c.issue}/tally")).json()
    assert again["result"]["digest"] == tally["result"]["digest"]


async def test_operations_endpoints(served) -> None:
    client, _c = await served(citizens=1)
    assert (await client.get("/healthz")).status == 200
    ready = await (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    await client.post("/v1/events", data=b"{}")
    for method in ("PROPFIND", "MKCOL", "LOCK"):  # methods the node has no use for: one series
        await client.request(method, "/v1/logs")
    text = await (await client.get("/metrics")).text()
    assert 'liquide_http_requests_total{method="POST",route="/v1/events",status="422"} 1.0' in text
    assert 'liquide_http_requests_total{method="other",route="unmatched",status="405"} 3.0' in text
    assert "PROPFIND" not in text
    assert "liquide_log_size" in text
    assert 'liquide_events_rejected_total{code="invalid"} 1.0' in text
    assert (await (await client.get("/v1/proofs")).json()) == {"proofs": []}
