"""The public web pages: every page and its .json twin, languages, caching and accessibility.

The pages run on a real node (store, single writer, tally) built by :func:`build_city`: one
assembly, two areas, a sealed issue with direct ballots, delegations at every scope (a chain, a
ranked fallback, a dead end and a cycle) and the city's attestation, plus an open issue.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from crypto import SecretKey
from node import _compat
from node import _registrar as admin
from node._datadir import init_data_dir
from node._node import Node
from node.ingest import Submission
from node.server import create_app
from node.store import LeafRow
from node.web import WEB_KEY
from node.web._html import Markup, h
from node.web._i18n import CATALOG, REASONS_FR, Translator, negotiate
from node.web._pages import _findings
from protocol.events import Event
from protocol.state import REASONS

T0 = 1_800_000_000
ORIGIN = "lyon.example/liquide"


@dataclass
class City:
    """A built data directory and the ids and keys in it."""

    path: Path
    now: int
    assembly: str
    areas: list[str]
    sealed: str
    open: str
    keys: list[SecretKey]
    digest: str = ""
    record: str = ""
    roles: dict[str, list[int]] = field(default_factory=dict)

    def pk(self, i: int) -> str:
        return self.keys[i].public_key.to_text()


def _key(seed: str, i: int) -> SecretKey:
    return SecretKey(hashlib.sha256(f"liquide-web/{seed}/{i}".encode()).digest())


def build_city(
    path: Path, voters: int = 40, *, seed: str = "lyon", attest: bool = True, **settings: Any
) -> City:
    """Create a node in ``path`` with a sealed issue of ``voters`` voters (see the module doc).

    Voter roles by ``i % 7`` (i ≥ 5; voters 0..4 are leaders who vote): 0 votes, 1 delegates
    for the assembly to a leader, 2 for the area, 3 for the issue to voter i-2, 4 a ranked area
    list whose first trustee is absent, 5 stays absent, 6 delegates for the issue to the absent
    i-1 (a dead end). The last two voters delegate to each other (a cycle).
    """
    assert voters >= 20
    settings.setdefault("verify_workers", 0)
    init_data_dir(path, ORIGIN, **settings)
    clock = [T0]
    node = Node.open(path, clock=lambda: clock[0])
    w = node.writer
    try:
        asm = admin.assembly_create(w, name="Métropole de Lyon")["event_id"]
        areas = [
            admin.area_create(w, asm, "Transports & mobilité")["event_id"],
            admin.area_create(w, asm, "Culture")["event_id"],
        ]
        sealed = admin.issue_create(
            w,
            area=areas[0],
            title="Tramway T10 : quel tracé ?",
            options=[["nord", "Tracé nord <via Gerland>"], ["sud", "Tracé sud"], ["bus", "Un bus"]],
            opens=T0,
            closes=T0 + 3600,
        )["event_id"]
        still_open = admin.issue_create(
            w,
            area=areas[1],
            title="Horaires des bibliothèques",
            options=[["tard", "Ouvrir plus tard"]],
            opens=T0,
            closes=T0 + 10 * 86400,
        )["event_id"]
        keys = [_key(seed, i) for i in range(voters)]
        pks = [k.public_key.to_text() for k in keys]
        chunk = 2000
        for s in range(0, voters, chunk):
            subs = [
                Submission(own=("enrol", {"key": pk, "ref": f"ref-{s + j}"}))
                for j, pk in enumerate(pks[s : s + chunk])
            ]
            out = w.process(subs)
            assert all(not isinstance(o, Exception) for o in out), out[:3]
        clock[0] = T0 + 60
        now = clock[0]
        leaders = [
            {"nord": 2, "sud": 1, "bus": -1},
            {"nord": -1, "sud": 2, "bus": 1},
            {"nord": 1, "sud": -1},
            {"nord": 1, "bus": 2},
            {"sud": -2, "nord": 1},
        ]
        events: list[Event] = []
        roles: dict[str, list[int]] = {
            k: []
            for k in (
                "leader",
                "vote",
                "assembly",
                "area",
                "issue",
                "ranked",
                "absent",
                "dead_end",
                "cycle",
            )
        }

        def ev(i: int, type_: str, body: dict[str, Any]) -> None:
            events.append(Event.create(keys[i], type_, body, 1, None, now))

        for i in range(voters):
            if i < 5:
                roles["leader"].append(i)
                ev(i, "ballot", {"issue": sealed, "grades": leaders[i]})
            elif i >= voters - 2:
                roles["cycle"].append(i)
                other = voters - 1 if i == voters - 2 else voters - 2
                ev(i, "delegate", {"scope": "issue", "target": sealed, "trustees": [pks[other]]})
            else:
                r = i % 7
                if r == 0:
                    roles["vote"].append(i)
                    ev(i, "ballot", {"issue": sealed, "grades": leaders[i % 5]})
                elif r == 1:
                    roles["assembly"].append(i)
                    ev(
                        i,
                        "delegate",
                        {"scope": "assembly", "target": asm, "trustees": [pks[i % 5]]},
                    )
                elif r == 2:
                    roles["area"].append(i)
                    ev(
                        i,
                        "delegate",
                        {"scope": "area", "target": areas[0], "trustees": [pks[(i + 1) % 5]]},
                    )
                elif r == 3:
                    roles["issue"].append(i)
                    ev(
                        i,
                        "delegate",
                        {"scope": "issue", "target": sealed, "trustees": [pks[i - 2]]},
                    )
                elif r == 4:
                    roles["ranked"].append(i)
                    ev(
                        i,
                        "delegate",
                        {"scope": "area", "target": areas[0], "trustees": [pks[i + 1], pks[0]]},
                    )
                elif r == 5:
                    roles["absent"].append(i)
                else:
                    roles["dead_end"].append(i)
                    ev(
                        i,
                        "delegate",
                        {"scope": "issue", "target": sealed, "trustees": [pks[i - 1]]},
                    )
        # Leader 1 also votes on the open issue (the second event of its chain).
        first = next(e for e in events if e.author == pks[1])
        events.append(
            Event.create(
                keys[1], "ballot", {"issue": still_open, "grades": {"tard": 1}}, 2, first.id, now
            )
        )
        for s in range(0, len(events), chunk):
            out = w.process([Submission(leaf=e.encode()) for e in events[s : s + chunk]])
            bad = [o for o in out if isinstance(o, Exception)]
            assert not bad, bad[:3]
        clock[0] = T0 + 3601
        assert len(w.seal_due()) == 1
        city = City(path, clock[0], asm, areas, sealed, still_open, keys, roles=roles)
        doc = asyncio.run(_compat.tally(node, sealed))
        city.digest = doc["result"]["digest"]
        city.record = doc.get("record_id") or doc.get("parts_id") or ""
        if attest:
            w.append_own("attest", {"record": city.record, "digest": city.digest, "issue": sealed})
        w.sign_checkpoint()
    finally:
        node.close()
    return city


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> City:
    return build_city(tmp_path_factory.mktemp("web") / "lyon")


@pytest.fixture
def city(built: City, tmp_path: Path) -> City:
    """A fresh copy of the built city (tests may let the node cache its tally)."""
    dst = tmp_path / "lyon"
    shutil.copytree(built.path, dst)
    (dst / "writer.lock").unlink(missing_ok=True)
    return City(**{**built.__dict__, "path": dst})


@pytest.fixture
async def client(city: City, aiohttp_client: Any) -> Any:
    node = Node.open(city.path, clock=lambda: city.now)
    app = create_app(node)
    cl = await aiohttp_client(app)
    cl.node = node
    cl.city = city
    return cl


# Accessibility checks ----------------------------------------------------------------------------


class _Audit(HTMLParser):
    """Collects what the accessibility checks look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.headings: list[int] = []
        self.svgs = 0
        self.svg_titles = 0
        self.focusable_in_svg = 0
        self._svg_depth = 0
        self._svg_titled = False
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "html":
            self.lang = a.get("lang")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "svg":
            self.svgs += 1
            self._svg_depth += 1
            self._svg_titled = False
            self._first_child = True
        elif self._svg_depth and tag == "title" and getattr(self, "_first_child", False):
            self.svg_titles += 1
        if self._svg_depth and tag != "svg":
            self._first_child = False
        if self._svg_depth and tag == "a" and a.get("tabindex") != "-1":
            self.focusable_in_svg += 1
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a)
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg_depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def audit(html: str) -> _Audit:
    """Parse a page and assert the accessibility rules; return the audit for more checks."""
    a = _Audit()
    a.feed(html)
    assert html.startswith("<!doctype html>")
    assert a.lang in CATALOG, a.lang
    assert a.headings[:1] == [1], a.headings
    assert a.headings.count(1) == 1, a.headings
    for prev, cur in zip(a.headings, a.headings[1:], strict=False):
        assert cur <= prev + 1, f"heading level skipped: h{prev} then h{cur} in {a.headings}"
    assert a.svg_titles == a.svgs, "every <svg> starts with a <title>"
    assert a.focusable_in_svg == 0, "a chart (role=img) holds no keyboard stop"
    for c in a.controls:
        assert c.get("id") in a.labels or c.get("aria-label"), f"control without a label: {c}"
    assert len(a.ids) == len(set(a.ids)), "duplicate ids"
    return a


async def fetch(client: Any, path: str, **headers: str) -> tuple[str, Any]:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, (path, resp.status, await resp.text())
    return await resp.text(), resp


def _pages(city: City) -> list[str]:
    return [
        "/",
        "/assemblies",
        "/areas",
        f"/areas?assembly={city.assembly}",
        "/issues",
        f"/issues?area={city.areas[0]}&state=sealed",
        f"/issues/{city.sealed}",
        f"/issues/{city.open}",
        f"/issues/{city.sealed}/explain?voter={city.pk(7)}",
        f"/voters/{city.pk(8)}",
    ]


# The tests -----------------------------------------------------------------------------------


def test_h_escapes_text_and_attributes() -> None:
    out = h(
        "a",
        {"href": 'x" onclick="y', "class_": "k", "aria_label": "<b>"},
        "<script>",
        Markup("<b>ok</b>"),
    )
    assert out == (
        '<a href="x&quot; onclick=&quot;y" class="k" aria-label="&lt;b&gt;">'
        "&lt;script&gt;<b>ok</b></a>"
    )
    assert h("input", {"required": True, "value": None}) == "<input required>"


def test_negotiate_language() -> None:
    assert negotiate("fr", None, "en") == ("fr", True)
    assert negotiate("de", "fr", None) == ("fr", False)
    assert negotiate(None, None, "de-DE, fr-CH;q=0.9, en;q=0.8") == ("fr", False)
    assert negotiate(None, None, "en-GB;q=0.5, fr;q=0.4") == ("en", False)
    assert negotiate(None, None, "fr;q=0, de") == ("en", False)
    assert negotiate(None, None, None) == ("en", False)


def test_catalogs_have_the_same_keys() -> None:
    assert CATALOG["en"].keys() == CATALOG["fr"].keys()
    for key, text in CATALOG["en"].items():
        fields = set(re.findall(r"{(\w+)}", text))
        assert fields == set(re.findall(r"{(\w+)}", CATALOG["fr"][key])), key


def test_every_finding_reason_has_a_french_sentence() -> None:
    assert REASONS_FR.keys() == REASONS.keys()


def test_findings_speak_the_page_language_and_keep_the_detail() -> None:
    found = [{"reason": "bad_signature", "origin": "a.example/l", "message": "event 7: forged"}]
    fr = str(_findings(found, Translator("fr")))
    assert REASONS_FR["bad_signature"] in fr
    assert '<span lang="en">event 7: forged</span>' in fr
    en = str(_findings(found, Translator("en")))
    assert "event 7: forged" in en
    assert REASONS_FR["bad_signature"] not in en
    assert 'lang="en"' not in en


async def test_every_page_is_accessible_in_both_languages(client: Any) -> None:
    for path in _pages(client.city):
        for lang in ("en", "fr"):
            html, resp = await fetch(client, path, **{"Accept-Language": lang})
            assert resp.content_type == "text/html"
            assert resp.headers["Content-Language"] == lang
            a = audit(html)
            assert a.lang == lang, path


async def test_every_page_has_a_json_twin(client: Any) -> None:
    city = client.city
    for path in _pages(city):
        base, _, query = path.partition("?")
        twin = ("/index" if base == "/" else base) + ".json" + (f"?{query}" if query else "")
        html, _resp = await fetch(client, path)
        assert f'href="{twin.replace("&", "&amp;")}"' in html, (path, twin)
        text, resp = await fetch(client, twin)
        assert resp.content_type == "application/json"
        json.loads(text)


async def test_home_shows_log_checkpoint_peers_and_proofs(client: Any) -> None:
    node, city = client.node, client.city
    data = json.loads((await fetch(client, "/index.json"))[0])
    info = node.reader.log(ORIGIN)
    assert data["origin"] == ORIGIN
    assert data["size"] == info.size
    assert data["checkpoint"]["size"] == info.size
    assert data["proofs"] == []
    assert data["peers"] == []
    html = (await fetch(client, "/"))[0]
    assert "No proof of misbehaviour" in html
    assert 'role="alert"' not in html
    # A pinned peer and a stored proof appear, the proof prominently.
    with node.store.atomic():
        node.store.add_peer("http://127.0.0.1:9/", "paris.example/liquide", "paris+abc")
        node.store.set_peer_cursor("http://127.0.0.1:9/", {}, error="connection refused")
        node.store.add_proof("f" * 64, "split_view", "paris.example/liquide", {"x": 1}, city.now)
    html = (await fetch(client, "/", **{"Accept-Language": "fr"}))[0]
    audit(html)
    assert 'role="alert"' in html
    assert "Preuves de malveillance" in html
    assert html.index("Preuves de malveillance") < html.index("Le journal de la ville")
    assert "paris.example/liquide" in html
    assert "connection refused" in html
    data = json.loads((await fetch(client, "/index.json"))[0])
    assert data["peers"][0]["status"] == "error"
    assert data["proofs"][0]["kind"] == "split_view"


async def test_lists(client: Any) -> None:
    city = client.city
    data = json.loads((await fetch(client, "/assemblies.json"))[0])
    assert [a["id"] for a in data["assemblies"]] == [city.assembly]
    assert len(data["assemblies"][0]["areas"]) == 2
    data = json.loads((await fetch(client, f"/areas.json?assembly={city.assembly}"))[0])
    assert {a["id"] for a in data["areas"]} == set(city.areas)
    data = json.loads((await fetch(client, "/issues.json"))[0])
    assert {i["id"]: i["state"] for i in data["issues"]} == {
        city.sealed: "sealed",
        city.open: "open",
    }
    data = json.loads((await fetch(client, "/issues.json?state=open&limit=1"))[0])
    assert [i["id"] for i in data["issues"]] == [city.open]
    assert data["next"] is None
    data = json.loads((await fetch(client, "/issues.json?limit=1"))[0])
    assert data["next"] == 1
    html = (await fetch(client, "/issues?limit=1"))[0]
    assert 'rel="next"' in html
    resp = await client.get("/issues?state=bogus")
    assert resp.status == 400
    assert "bogus" in await resp.text()
    resp = await client.get("/issues.json?state=bogus")
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_param"


async def test_sealed_issue_shows_ranking_flow_and_attestation(client: Any) -> None:
    city = client.city
    doc = await _compat.tally(client.node, city.sealed)
    result = doc["result"]
    data = json.loads((await fetch(client, f"/issues/{city.sealed}.json"))[0])
    tally = data["tally"]
    assert tally["digest"] == result["digest"] == city.digest
    assert tally["record"] == city.record
    assert [(x["origin"], x["basis"]) for x in tally["parts"]] == [(ORIGIN, "seal")]
    assert tally["winner"] == result["winner"]
    assert [o["schulze_rank"] for o in tally["options"]] == sorted(
        o["schulze_rank"] for o in tally["options"]
    )
    for o in tally["options"]:
        assert o["positive_votes"] == result["options"][o["id"]]["positive_votes"]
    counts = tally["voters"]
    roles = city.roles
    assert counts["absent"] == len(roles["absent"])
    assert counts["lost"] == len(roles["dead_end"]) + len(roles["cycle"])
    assert counts["direct"] == len(roles["leader"]) + len(roles["vote"])
    # The flow adds up: every casting voter's weight is their own vote plus delegations.
    for f in tally["flow"]:
        assert f["weight"] == f["own"] + f["assembly"] + f["area"] + f["issue"]
        assert result["voters"][f["voter"]]["weight"] == f["weight"]
    shown = sum(f["weight"] for f in tally["flow"]) + tally["others"]["weight"]
    assert (
        shown
        == tally["total_weight"]
        == sum(v["weight"] for v in result["voters"].values() if v["status"] == "direct")
    )
    leader0 = next(f for f in tally["flow"] if f["voter"] == city.pk(0))
    assert leader0["assembly"] > 0
    assert leader0["area"] > 0
    assert leader0["issue"] > 0
    att = data["attestations"]
    assert [(a["origin"], a["agreement"]) for a in att["items"]] == [(ORIGIN, "agrees")]
    assert att["pending"] == []
    html = (await fetch(client, f"/issues/{city.sealed}"))[0]
    a = audit(html)
    assert a.svgs == 2
    assert "Tracé nord &lt;via Gerland&gt;" in html
    assert "✓ agrees" in html
    assert "its seal (entry " in html
    assert f'action="/issues/{city.sealed}/explain"' in html


def _mirror(city: City, origin: str, sk: SecretKey, events: list[Event]) -> Node:
    """Open the city's node with a pinned peer ``origin`` whose mirrored log holds ``events``."""
    node = Node.open(city.path, clock=lambda: city.now)
    vkey = sk.public_key.to_vkey(origin)
    rows = [LeafRow(e.id, e.encode(), e.author, e.seq, e.type) for e in events]
    with node.store.atomic():
        node.store.add_peer("http://127.0.0.1:9/", origin, vkey)
        node.store.ensure_log(origin, own=False, vkey=vkey)
        node.store.append_leaves(origin, rows)
    return node


async def test_disagreeing_attestation_is_flagged(city: City, aiohttp_client: Any) -> None:
    # A pinned peer's mirrored log attests another digest for the same record.
    paris = _key("paris", 0)
    origin = "paris.example/liquide"
    body = {"record": city.record, "digest": "0" * 64, "issue": city.sealed}
    att = Event.create(paris, "attest", body, 1, None, city.now)
    client = await aiohttp_client(create_app(_mirror(city, origin, paris, [att])))
    data = json.loads((await fetch(client, f"/issues/{city.sealed}.json"))[0])
    marks = {a["origin"]: a["agreement"] for a in data["attestations"]["items"]}
    assert marks == {ORIGIN: "agrees", origin: "disagrees"}
    assert data["attestations"]["disagreeing"] == 1
    html = (await fetch(client, f"/issues/{city.sealed}", **{"Accept-Language": "fr"}))[0]
    assert "DÉSACCORD" in html
    assert 'role="alert"' in html


async def test_home_shows_equivocation_proofs(city: City, aiohttp_client: Any) -> None:
    # In a pinned peer's log, a citizen signed two different events at seq 1.
    paris, citizen = _key("paris", 0), _key("paris", 1)
    origin = "paris.example/liquide"
    pk = citizen.public_key.to_text()
    enrol = Event.create(paris, "enrol", {"key": pk, "ref": "-"}, 1, None, city.now)
    one = Event.create(citizen, "withdraw", {"issue": city.sealed}, 1, None, city.now)
    two = Event.create(citizen, "withdraw", {"issue": city.open}, 1, None, city.now)
    client = await aiohttp_client(create_app(_mirror(city, origin, paris, [enrol, one, two])))
    data = json.loads((await fetch(client, "/index.json"))[0])
    [eq] = data["equivocations"]
    assert eq["reason"] == "equivocation"
    assert eq["origin"] == origin
    assert eq["index"] == 2
    assert data["findings"] >= 1
    html = (await fetch(client, "/"))[0]
    audit(html)
    assert 'role="alert"' in html
    assert "<code>equivocation</code>" in html
    assert "entry 2" in html


async def test_voter_of_another_city(city: City, aiohttp_client: Any) -> None:
    # A citizen enrolled by a pinned peer city is known here through the mirrored log.
    paris, citizen = _key("paris", 0), _key("paris", 2)
    origin = "paris.example/liquide"
    pk = citizen.public_key.to_text()
    enrol = Event.create(paris, "enrol", {"key": pk, "ref": "p-7"}, 1, None, city.now)
    client = await aiohttp_client(create_app(_mirror(city, origin, paris, [enrol])))
    data = json.loads((await fetch(client, f"/voters/{pk}.json"))[0])
    assert data["origin"] == origin
    assert data["enrolled"] is True
    assert data["enrolment"] == {"ref": "p-7", "index": 0}
    assert data["home"] == "http://127.0.0.1:9/"
    html = (await fetch(client, f"/voters/{pk}"))[0]
    audit(html)
    assert f'href="http://127.0.0.1:9/voters/{pk}"' in html


async def test_pages_without_a_federation(city: City, aiohttp_client: Any) -> None:
    # The web pages alone: the node's own tally and a scan of the logs for attestations.
    from node.server import web_pages

    node = Node.open(city.path, clock=lambda: city.now)
    client = await aiohttp_client(create_app(node, extensions=(web_pages,)))
    data = json.loads((await fetch(client, f"/issues/{city.sealed}.json"))[0])
    assert data["tally"]["digest"] == city.digest
    assert data["tally"]["record"] == city.record
    assert [(a["origin"], a["agreement"]) for a in data["attestations"]["items"]] == [
        (ORIGIN, "agrees")
    ]
    home = json.loads((await fetch(client, "/index.json"))[0])
    assert home["findings"] == 0
    assert home["equivocations"] == []
    _html_text, resp = await fetch(client, f"/issues/{city.sealed}")
    assert resp.headers["ETag"]


async def test_open_issue_has_no_results(client: Any) -> None:
    city = client.city
    data = json.loads((await fetch(client, f"/issues/{city.open}.json"))[0])
    assert data["issue"]["state"] == "open"
    assert data["tally"] is None
    html, resp = await fetch(client, f"/issues/{city.open}")
    assert "once the issue is sealed" in html
    assert "<svg" not in html
    assert resp.headers["Cache-Control"] == "no-cache"
    assert "ETag" not in resp.headers


async def test_explain_box(client: Any) -> None:
    city = client.city
    # A chain: voter 10 (issue scope) -> voter 8 (assembly scope) -> leader 3.
    k = city.pk(10)
    data = json.loads((await fetch(client, f"/issues/{city.sealed}/explain.json?voter={k}"))[0])
    e = data["explanation"]
    assert e["status"] == "delegated"
    assert e["scope"] == "issue"
    assert e["path"] == [city.pk(8), city.pk(8 % 5)]
    html = (await fetch(client, f"/issues/{city.sealed}/explain?voter=%20{k}%20&lang=fr"))[0]
    audit(html)
    assert "A délégué à la portée question" in html
    assert f'href="/voters/{city.pk(8)}"' in html
    assert f'value="{k}"' in html
    lost = city.pk(city.roles["cycle"][0])
    data = json.loads((await fetch(client, f"/issues/{city.sealed}/explain.json?voter={lost}"))[0])
    assert data["explanation"]["status"] == "lost"
    assert data["explanation"]["reason"] == "cycle"
    leader = json.loads(
        (await fetch(client, f"/issues/{city.sealed}/explain.json?voter={city.pk(0)}"))[0]
    )
    assert leader["explanation"]["status"] == "direct"
    assert leader["explanation"]["split"]["own"] == 1
    stranger = _key("nobody", 0).public_key.to_text()
    data = json.loads(
        (await fetch(client, f"/issues/{city.sealed}/explain.json?voter={stranger}"))[0]
    )
    assert data["error"] == "not_a_voter"
    assert data["explanation"] is None
    resp = await client.get(f"/issues/{city.sealed}/explain?voter=hello&lang=en")
    assert resp.status == 400
    assert "is not a public key" in await resp.text()
    resp = await client.get(f"/issues/{city.sealed}/explain.json?voter=hello")
    assert resp.status == 400
    data = json.loads((await fetch(client, f"/issues/{city.open}/explain.json?voter={k}"))[0])
    assert data["error"] == "not_sealed"


async def test_voter_page(client: Any) -> None:
    city = client.city
    i = city.roles["ranked"][0]
    data = json.loads((await fetch(client, f"/voters/{city.pk(i)}.json"))[0])
    assert data["enrolled"] is True
    [d] = data["delegations"]
    assert d["scope"] == "area"
    assert d["trustees"] == [city.pk(i + 1), city.pk(0)]
    assert d["target_name"] == "Transports & mobilité"
    [x] = data["explanations"]
    assert x["issue"] == city.sealed
    assert x["explanation"]["status"] == "delegated"
    assert x["explanation"]["path"] == [city.pk(0)]
    html = (await fetch(client, f"/voters/{city.pk(i)}"))[0]
    audit(html)
    assert "Transports &amp; mobilité" in html
    data = json.loads((await fetch(client, f"/voters/{city.pk(1)}.json"))[0])
    titles = {b["issue"]: b["title"] for b in data["ballots"]}
    assert titles == {
        city.sealed: "Tramway T10 : quel tracé ?",
        city.open: "Horaires des bibliothèques",
    }
    assert [x["explanation"]["status"] for x in data["explanations"]] == ["direct"]
    resp = await client.get(f"/voters/{_key('nobody', 1).public_key.to_text()}")
    assert resp.status == 404
    assert "<h1>Not found</h1>" in await resp.text()
    resp = await client.get(f"/voters/{_key('nobody', 1).public_key.to_text()}.json")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_unknown_issue_is_a_404_page(client: Any) -> None:
    resp = await client.get("/issues/" + "a" * 64, headers={"Accept-Language": "fr"})
    assert resp.status == 404
    html = await resp.text()
    audit(html)
    assert "Introuvable" in html
    resp = await client.get("/issues/" + "a" * 64 + ".json")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_language_switch_sets_a_cookie(client: Any) -> None:
    html, resp = await fetch(client, "/?lang=fr")
    assert '<html lang="fr">' in html
    assert "Accueil" in html
    assert resp.cookies["lang"].value == "fr"
    assert 'href="/?lang=en"' in html
    html, _ = await fetch(client, "/assemblies")  # the cookie jar now says fr
    assert '<html lang="fr">' in html
    assert "Assemblées" in html
    html, _ = await fetch(client, "/assemblies?lang=en")
    assert '<html lang="en">' in html


async def test_sealed_pages_are_cached_by_record(client: Any) -> None:
    city = client.city
    st = client.app[WEB_KEY]
    path = f"/issues/{city.sealed}"
    first, resp = await fetch(client, path)
    etag = resp.headers["ETag"]
    assert resp.headers["Cache-Control"].startswith("public, max-age=")
    assert len(st.pages) == 1
    assert st.views.get(city.record) is not None
    again, resp2 = await fetch(client, path)
    assert again == first
    assert resp2.headers["ETag"] == etag
    # Another URL of the same page is the same cached copy (its links carry no query).
    other, resp_q = await fetch(client, path + "?utm=x")
    assert other == first
    assert resp_q.headers["ETag"] == etag
    assert "utm" not in first
    resp3 = await client.get(path, headers={"If-None-Match": etag})
    assert resp3.status == 304
    assert await resp3.read() == b""
    # Another language is another page and another ETag, over the same cached view.
    _fr, resp4 = await fetch(client, path, **{"Accept-Language": "fr"})
    assert resp4.headers["ETag"] != etag
    assert len(st.pages) == 2
    _json_text, resp5 = await fetch(client, path + ".json")
    assert resp5.headers["ETag"] not in (etag, resp4.headers["ETag"])


async def test_stylesheet_is_versioned_and_cached(client: Any) -> None:
    html, _ = await fetch(client, "/")
    found = re.search(r'href="(/static/liquide\.css\?v=\w+)"', html)
    assert found is not None
    href = found.group(1)
    text, resp = await fetch(client, href)
    assert "immutable" in resp.headers["Cache-Control"]
    assert ":root" in text
    resp = await client.get(href, headers={"If-None-Match": resp.headers["ETag"]})
    assert resp.status == 304
