"""Fuzzing of every HTTP endpoint of a served node: hostile paths, queries and bodies.

The route table is read from the app itself, so an endpoint added later is fuzzed too. Every
answer must be below 500; an API error is ``{"error": {"code", "message"}}`` naming the
problem; and a refused write changes nothing stored (log size, chain heads, indexes).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from node.server import create_app

from ._gen import fuzz_settings, json_values, mutated, mutated_bytes

_PARAM = re.compile(r"\{([a-z_]+)(?::[^}]*)?\}")
_QUERY_NAMES = [
    "start", "end", "size", "index", "old", "new", "limit", "offset", "after", "state",
    "area", "assembly", "event_id", "lang", "voter", "issue", "q",
]  # fmt: skip
# Endpoints whose errors are not JSON by their standard (C2SP tlog-witness answers text/plain).
_TEXT_ERRORS = ("/v1/witness/add-checkpoint",)


@dataclass
class Served:
    runner: asyncio.Runner
    client: TestClient
    civic: Any
    routes: list[tuple[str, str]]
    events: list[bytes]
    """One signed delegation per citizen, fixed when the node starts (so that generation does
    not depend on what earlier examples stored: hypothesis replays must draw the same)."""

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


def _routes(app: web.Application) -> list[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path and route.method in ("GET", "POST"):
            out.add((route.method, path))
    return sorted(out)


@pytest.fixture
def served(civic) -> Iterator[Served]:
    """A started node (real aiohttp server on loopback) with an open issue and citizens."""
    c = civic(3, rate_limit_exempt=("127.0.0.0/8", "::1"))
    runner = asyncio.Runner()
    app = create_app(c.node)
    client = TestClient(TestServer(app), loop=runner.get_loop())
    runner.run(client.start_server())
    try:
        events = [
            a.delegate("issue", c.issue, [c.citizens[(i + 1) % 3].pk], advance=False).encode()
            for i, a in enumerate(c.citizens)
        ]
        yield Served(runner, client, c, _routes(app), events)
    finally:
        runner.run(client.close())
        runner.close()


def fingerprint(c: Any) -> tuple[Any, ...]:
    """What a refused request must not change: the log, chain heads and governance indexes."""
    node = c.node
    conn = node.reader.conn
    counts = tuple(
        conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("enrolments", "delegations", "ballots", "issues", "areas", "assemblies")
    )
    return (node.reader.log(node.origin).size, counts, node.writer.state.to_dict()["chains"])


def _param_value(name: str, c: Any) -> st.SearchStrategy[str]:
    known = {
        "origin": [c.node.origin, "nobody.example/liquide"],
        "issue": [c.issue, c.area, "0" * 64],
        "event_id": [c.issue, c.assembly, "f" * 64],
        "key": [c.citizens[0].pk, c.node.writer.city],
    }.get(name, [])
    fuzz = st.text(max_size=80).map(lambda s: quote(s, safe="")) | st.sampled_from(
        ["..", "%2e%2e", "%2F", "%00", "A" * 5000, "0" * 65, "%ff%fe", "lqpk1" + "q" * 58]
    )
    return st.sampled_from(known) | fuzz if known else fuzz


_query_values = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "0", "1", "-1", "00", "1e3", "0x10", " 1", "9" * 40, "NaN"]),
    st.text(max_size=40),
)


@st.composite
def requests(draw: st.DrawFn, s: Served) -> tuple[str, str, dict[str, str], bytes | None]:
    method, template = draw(st.sampled_from(s.routes))
    path = _PARAM.sub(lambda m: draw(_param_value(m.group(1), s.civic)), template)
    if draw(st.integers(0, 9)) == 0:
        # Off the route table: an unknown path, or a known one with another method.
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", method]))
        path = draw(
            st.just(path)
            | st.text(max_size=30).map(lambda t: "/v1/" + quote(t, safe="/"))
            | st.text(max_size=30).map(lambda t: "/" + quote(t, safe="/"))
        )
    query = draw(st.dictionaries(st.sampled_from(_QUERY_NAMES), _query_values, max_size=4))
    body: bytes | None = None
    if method != "GET":
        body = draw(_bodies(s.events))
    return method, path, query, body


def _bodies(events: list[bytes]) -> st.SearchStrategy[bytes]:
    one = st.sampled_from(events)
    return st.one_of(
        one,
        one.flatmap(mutated_bytes),
        one.map(json.loads)
        .flatmap(mutated)
        .map(lambda d: json.dumps(d, sort_keys=True, separators=(",", ":")).encode()),
        st.lists(one | one.flatmap(mutated_bytes), min_size=0, max_size=5).map(b"\n".join),
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v, default=str).encode()),
    )


def _check_answer(status: int, ctype: str, data: bytes, path: str) -> None:
    assert status < 500, (status, path, data[:300])
    if status < 400:
        return
    api = (
        path.startswith("/v1/")
        or path.split("?", maxsplit=1)[0].endswith(".json")
        or path
        in (
            "/healthz",
            "/readyz",
        )
    )
    if status == 400 and data.startswith(b"400, message:"):
        # Refused by aiohttp's HTTP parser before routing (a request line or header beyond
        # its 8190-byte bound): a plain-text 400, bounded and harmless.
        return
    if not api or path.startswith(_TEXT_ERRORS):
        assert data, (status, path)
        return
    assert ctype == "application/json", (status, path, ctype, data[:200])
    err = json.loads(data)["error"]
    assert isinstance(err["code"], str), err
    assert err["code"], err
    assert isinstance(err["message"], str), err
    assert len(err["message"]) >= 8, err


async def _send(s: Served, method: str, path: str, query: dict[str, str], body: bytes | None):
    resp = await s.client.request(method, path, params=query, data=body)
    data = await resp.read()
    return resp.status, resp.content_type, data


@fuzz_settings(150)
@given(data=st.data())
def test_every_endpoint_answers_hostile_requests_below_500(served: Served, data: st.DataObject):
    method, path, query, body = data.draw(requests(served))
    before = fingerprint(served.civic)
    status, ctype, answer = served.run(_send(served, method, path, query, body))
    _check_answer(status, ctype, answer, path)
    if method != "GET" and (status >= 400 or _accepted(answer) == 0):
        assert fingerprint(served.civic) == before, (path, status, answer[:200])


def _accepted(answer: bytes) -> int | None:
    """How many events a batch answer says were accepted (None if it is no batch answer)."""
    try:
        doc = json.loads(answer)
    except ValueError:
        return None
    return doc.get("accepted") if isinstance(doc, dict) else None


@fuzz_settings(120)
@given(data=st.data())
def test_posted_events_are_accepted_or_refused_without_trace(served: Served, data: st.DataObject):
    """Mutated events of enrolled citizens: a refusal names the problem and stores nothing."""
    c = served.civic
    good = data.draw(st.sampled_from(served.events))
    raw = data.draw(st.just(good) | mutated_bytes(good))
    path = data.draw(st.sampled_from(["/v1/events", "/v1/events:batch"]))
    before = fingerprint(c)
    status, ctype, answer = served.run(_send(served, "POST", path, {}, raw))
    _check_answer(status, ctype, answer, path)
    body = json.loads(answer)
    accepted = status in (200, 201) and ("receipt" in body or body.get("accepted", 0) > 0)
    if accepted:
        assert raw == good or b"\n" in raw  # only the genuine signed bytes are ever accepted
        return
    assert fingerprint(c) == before
    if path == "/v1/events:batch" and status == 200:
        for r in body["results"]:
            assert r["error"]["code"]
            assert r["error"]["message"]


def test_the_route_table_is_fuzzed_whole(served: Served) -> None:
    """The fuzzer draws from every GET and POST route the app registers (no hidden endpoint)."""
    paths = {p for _m, p in served.routes}
    for needed in ("/v1/events", "/v1/events:batch", "/v1/witness/add-checkpoint", "/"):
        assert needed in paths
    assert len(served.routes) >= 30
    # Admin operations are not on the network: they go through the data directory's socket.
    assert not [p for p in paths if p.startswith("/admin") or "admin" in p.split("/")[1:2]]
