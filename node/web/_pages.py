"""The HTML of each page: ``render_*(data, page)`` over the dicts of :mod:`node.web._data`.

Pages are built with :func:`node.web._html.h`, so every value is escaped. Structure is kept
accessible on purpose: one ``<h1>`` per page and no skipped heading level, a skip link, a
labelled ``<nav>``, every form control with a ``<label>``, tables with captions or headers,
charts with a ``<title>`` and a data table next to them, and the ``lang`` attribute of the
page's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ._html import Child, Markup, h, join
from ._i18n import Translator
from ._svg import flow_svg, ranking_svg, short_key

__all__ = [
    "Page",
    "render_areas",
    "render_assemblies",
    "render_error",
    "render_explain",
    "render_home",
    "render_issue",
    "render_issues",
    "render_voter",
]


@dataclass(frozen=True, slots=True)
class Page:
    """What every page's frame needs: the language, the path, the query and the CSS URL."""

    t: Translator
    path: str
    query: tuple[tuple[str, str], ...]
    css: str

    def url(self, path: str, **query: str | int | None) -> str:
        """``path`` with the given query parameters (None values left out)."""
        q = {k: str(v) for k, v in query.items() if v is not None}
        return path + ("?" + urlencode(q) if q else "")

    def switch_href(self) -> str:
        """This page in the other language (``?lang=``, which also sets the cookie)."""
        q = [(k, v) for k, v in self.query if k != "lang"]
        q.append(("lang", self.t("lang.other")))
        return self.path + "?" + urlencode(q)

    def json_href(self) -> str:
        """This page's ``.json`` twin."""
        base = "/index.json" if self.path == "/" else self.path + ".json"
        q = [(k, v) for k, v in self.query if k != "lang"]
        return base + ("?" + urlencode(q) if q else "")


def voter_href(key: str) -> str:
    """The voter page of ``key``."""
    return f"/voters/{key}"


def _layout(p: Page, title: str, *body: Child) -> Markup:
    t = p.t
    nav = [
        ("/", t("nav.home")),
        ("/assemblies", t("nav.assemblies")),
        ("/areas", t("nav.areas")),
        ("/issues", t("nav.issues")),
    ]
    items = [
        h(
            "li",
            None,
            h("a", {"href": href, "aria_current": "page" if href == p.path else None}, label),
        )
        for href, label in nav
    ]
    other = t("lang.other")
    doc = h(
        "html",
        {"lang": t.lang},
        h(
            "head",
            None,
            h("meta", {"charset": "utf-8"}),
            h("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            h("title", None, f"{title} · {t('site')}"),
            h("link", {"rel": "stylesheet", "href": p.css}),
            h("link", {"rel": "icon", "type": "image/svg+xml", "href": "/static/favicon.svg"}),
            h("link", {"rel": "alternate", "type": "application/json", "href": p.json_href()}),
        ),
        h(
            "body",
            None,
            h("a", {"class_": "skip", "href": "#main"}, t("skip")),
            h(
                "header",
                {"class_": "site"},
                h(
                    "nav",
                    {"aria_label": t("nav.main")},
                    h("a", {"class_": "brand", "href": "/"}, t("site")),
                    h("ul", None, *items),
                ),
                h(
                    "a",
                    {"class_": "lang", "href": p.switch_href(), "hreflang": other, "lang": other},
                    t("lang.switch"),
                ),
            ),
            h("main", {"id": "main"}, *body),
            h(
                "footer",
                None,
                h("p", None, t("footer"), " ", h("a", {"href": p.json_href()}, t("json"))),
            ),
        ),
    )
    return Markup("<!doctype html>\n" + doc)


def _table(attrs: dict[str, object] | None, *children: Child) -> Markup:
    """A table in a box that scrolls sideways on narrow screens (the page itself does not)."""
    return h("div", {"class_": "scroll"}, h("table", attrs, *children))


@dataclass(frozen=True, slots=True)
class _Num:
    """The heading of a column of numbers (right-aligned)."""

    label: Child


def _thead(*columns: Child | _Num) -> Markup:
    """A header row of column headings."""
    cells = [
        h("th", {"scope": "col", "class_": "num"}, c.label)
        if isinstance(c, _Num)
        else h("th", {"scope": "col"}, c)
        for c in columns
    ]
    return h("thead", None, h("tr", None, *cells))


def _grid(columns: Sequence[Child], rows: Iterable[Sequence[Child]]) -> Markup:
    """A scrolling table: one header row, and rows whose first cell heads the row."""
    return _table(
        None,
        _thead(*columns),
        h(
            "tbody",
            None,
            *[
                h("tr", None, h("th", {"scope": "row"}, r[0]), *[h("td", None, c) for c in r[1:]])
                for r in rows
            ],
        ),
    )


def _dl(*pairs: tuple[str, Child]) -> Markup:
    return h(
        "dl", {"class_": "facts"}, *[join(h("dt", None, k), h("dd", None, v)) for k, v in pairs]
    )


def _code(text: str, cls: str = "") -> Markup:
    return h("code", {"class_": cls or None}, text)


def _short_id(text: str) -> str:
    return text[:12] + "…" if len(text) > 13 else text


def _badge(kind: str, label: str) -> Markup:
    return h("span", {"class_": f"badge {kind}"}, label)


def _voter_link(key: str) -> Markup:
    return h("a", {"href": voter_href(key), "class_": "key", "title": key}, short_key(key))


def render_error(p: Page, message: str) -> Markup:
    """A 404-style page naming what was not found."""
    t = p.t
    return _layout(
        p,
        t("error.title"),
        h("h1", None, t("error.title")),
        h("p", None, t("error.lead", message=message)),
    )


# Home ------------------------------------------------------------------------------------------


def render_home(d: dict[str, Any], p: Page) -> Markup:
    """The city, its log and checkpoint, logs held, peers, proofs of misbehaviour."""
    t = p.t
    body: list[Child] = [
        h("h1", None, t("home.title", origin=d["origin"])),
        h("p", {"class_": "lead"}, t("home.lead")),
        _stats(d["counts"], t),
    ]
    proofs = [
        (str(x["kind"]), str(x.get("origin") or "—"), t.time(x.get("time"))) for x in d["proofs"]
    ] + [
        (str(f["reason"]), str(f["origin"]), t("home.proofs.entry", index=t.num(f["index"])))
        for f in d.get("equivocations", [])
    ]
    if proofs:
        body.append(
            h(
                "section",
                {"class_": "alert", "role": "alert", "aria_labelledby": "proofs-h"},
                h("h2", {"id": "proofs-h"}, "⚠ " + t("home.proofs")),
                h("p", None, t("home.proofs.lead", n=len(proofs))),
                _table(
                    None,
                    _thead(t("home.proofs.kind"), t("home.proofs.origin"), t("home.proofs.where")),
                    h(
                        "tbody",
                        None,
                        *[
                            h(
                                "tr",
                                None,
                                h("td", None, _code(kind)),
                                h("td", None, origin),
                                h("td", None, where),
                            )
                            for kind, origin, where in proofs
                        ],
                    ),
                ),
                h("p", None, h("a", {"href": "/v1/proofs"}, "/v1/proofs")),
            )
        )
    cp = d["checkpoint"]
    cp_block: Child
    if cp is None:
        cp_block = h("p", None, t("home.checkpoint.none"))
    else:
        cp_block = _dl(
            (t("home.cp.size"), t.num(cp["size"])),
            (t("home.cp.root"), _code(cp["root"])),
            (t("home.cp.time"), t.time(cp["time"])),
        )
    cosigs = d["cosignatures"]
    body.append(
        h(
            "section",
            {"aria_labelledby": "log-h"},
            h("h2", {"id": "log-h"}, t("home.log")),
            _dl(
                (t("home.key"), join(_code(d["fingerprint"]), " ", _code(d["key"], "long"))),
                (t("home.size"), t.num(d["size"])),
            ),
            h("h3", None, t("home.checkpoint")),
            cp_block,
            h("h3", None, t("home.cosignatures")),
            h("ul", None, *[h("li", None, _code(c["witness"])) for c in cosigs])
            if cosigs
            else h("p", None, t("home.cosignatures.none")),
        )
    )
    body.append(
        h(
            "section",
            {"aria_labelledby": "logs-h"},
            h("h2", {"id": "logs-h"}, t("home.logs")),
            _table(
                None,
                h("caption", None, t("home.logs.caption")),
                _thead(
                    t("home.logs.origin"),
                    t("home.logs.kind"),
                    _Num(t("home.size")),
                    _Num(t("home.checkpoint")),
                    _Num(t("home.cosignatures")),
                ),
                h(
                    "tbody",
                    None,
                    *[
                        h(
                            "tr",
                            {"class_": "frozen" if lg["frozen"] else None},
                            h("th", {"scope": "row"}, lg["origin"]),
                            h(
                                "td",
                                None,
                                t("home.logs.own") if lg["own"] else t("home.logs.mirror"),
                                " ",
                                _badge("bad", t("home.logs.frozen", reason=lg["frozen"]))
                                if lg["frozen"]
                                else None,
                            ),
                            h("td", {"class_": "num"}, t.num(lg["size"])),
                            h(
                                "td",
                                {"class_": "num"},
                                "—"
                                if lg["checkpoint_size"] is None
                                else t.num(lg["checkpoint_size"]),
                            ),
                            h("td", {"class_": "num"}, t.num(lg["cosignatures"])),
                        )
                        for lg in d["logs"]
                    ],
                ),
            ),
        )
    )
    body.append(_peers(d["peers"], t))
    if d.get("findings"):
        body.append(
            h(
                "p",
                {"class_": "notice"},
                t("home.findings", n=t.num(d["findings"])),
                " ",
                h("a", {"href": "/v1/findings"}, "/v1/findings"),
            )
        )
    if not proofs:
        body.append(
            h(
                "section",
                {"aria_labelledby": "proofs-h"},
                h("h2", {"id": "proofs-h"}, t("home.proofs")),
                h("p", None, _badge("ok", "✓"), " ", t("home.proofs.none")),
            )
        )
    return _layout(p, d["origin"], *body)


def _stats(c: dict[str, int], t: Translator) -> Markup:
    def item(href: str | None, label: str, value: Child) -> Markup:
        text = h("a", {"href": href}, label) if href else label
        return h("li", None, h("span", {"class_": "stat"}, value), " ", text)

    sealed = f" ({t.num(c.get('sealed', 0))} {t('home.stats.sealed')})"
    return h(
        "ul",
        {"class_": "stats", "aria_label": t("home.stats")},
        item("/assemblies", t("nav.assemblies"), t.num(c.get("assemblies", 0))),
        item("/areas", t("nav.areas"), t.num(c.get("areas", 0))),
        item("/issues", t("nav.issues") + sealed, t.num(c.get("issues", 0))),
        item(None, t("home.stats.enrolled"), t.num(c.get("enrolled", 0))),
    )


def _peers(peers: Sequence[dict[str, Any]], t: Translator) -> Markup:
    if not peers:
        return h(
            "section",
            {"aria_labelledby": "peers-h"},
            h("h2", {"id": "peers-h"}, t("home.peers")),
            h("p", None, t("home.peers.none")),
        )
    kinds = {"ok": "ok", "behind": "warn", "error": "bad", "never": "warn"}
    rows = []
    for x in peers:
        status = x["status"]
        label = t(f"home.peers.{status}" if status != "ok" else "home.peers.ok")
        lag_parts = []
        if x.get("lag_entries") is not None:
            lag_parts.append(
                t("home.peers.lag.entries", n=t.num(x["lag_entries"]))
                if x["lag_entries"]
                else t("home.peers.lag.none")
            )

        rows.append(
            h(
                "tr",
                None,
                h("th", {"scope": "row"}, x["origin"], h("br"), h("small", None, x["url"])),
                h(
                    "td",
                    None,
                    _badge(kinds.get(status, "warn"), label),
                    h("br") if x.get("last_error") else None,
                    h("small", None, x["last_error"]) if x.get("last_error") else None,
                ),
                h(
                    "td",
                    None,
                    t.time(x.get("last_ok")),
                    [h("br"), h("small", None, t("time.ago", n=t.num(x["lag_s"])))]
                    if x.get("lag_s") is not None
                    else None,
                ),
                h("td", None, ", ".join(lag_parts) or "—"),
            )
        )
    return h(
        "section",
        {"aria_labelledby": "peers-h"},
        h("h2", {"id": "peers-h"}, t("home.peers")),
        _table(
            None,
            _thead(
                t("home.peers.url"),
                t("home.peers.status"),
                t("home.peers.last"),
                t("home.peers.lag"),
            ),
            h("tbody", None, *rows),
        ),
    )


# Lists -------------------------------------------------------------------------------------------


def _assembly_card(a: dict[str, Any], p: Page) -> Markup:
    t = p.t
    return h(
        "section",
        {"class_": "card", "aria_labelledby": f"a-{a['id'][:16]}"},
        h("h2", {"id": f"a-{a['id'][:16]}"}, a["name"]),
        h(
            "p",
            None,
            _code(a["id"], "long"),
            " · ",
            t("assemblies.grace", grace=f"{t.num(a.get('grace', 0))} s"),
        ),
        h("h3", None, t("assemblies.members")),
        h(
            "ul",
            None,
            *[
                h("li", None, m["origin"], " ", _code(short_key(m["key"])))
                for m in a.get("members", [])
            ],
        ),
        h("h3", None, t("assemblies.witnesses", k=a.get("k", 0))),
        h(
            "ul",
            None,
            *[
                h("li", None, w["name"], " ", _code(short_key(w["key"])))
                for w in a.get("witnesses", [])
            ],
        )
        if a.get("witnesses")
        else h("p", None, "—"),
        h("h3", None, t("assemblies.areas")),
        h(
            "ul",
            None,
            *[
                h("li", None, h("a", {"href": p.url("/issues", area=r["id"])}, r["name"]))
                for r in a["areas"]
            ],
        )
        if a["areas"]
        else h("p", None, "—"),
    )


def render_assemblies(d: dict[str, Any], p: Page) -> Markup:
    """Every assembly with members, witnesses and areas."""
    t = p.t
    body: list[Child] = [
        h("h1", None, t("assemblies.title")),
        h("p", {"class_": "lead"}, t("assemblies.lead")),
    ]
    if not d["assemblies"]:
        body.append(h("p", None, t("assemblies.none")))
    body.extend(_assembly_card(a, p) for a in d["assemblies"])
    return _layout(p, t("assemblies.title"), *body)


def render_areas(d: dict[str, Any], p: Page) -> Markup:
    """Every area with its assembly."""
    t = p.t
    body: list[Child] = [h("h1", None, t("areas.title"))]
    if not d["areas"]:
        body.append(h("p", None, t("areas.none")))
    else:
        body.append(
            _grid(
                [t("areas.title"), t("areas.assembly")],
                (
                    [
                        h("a", {"href": p.url("/issues", area=r["id"])}, r["name"]),
                        h(
                            "a",
                            {"href": p.url("/areas", assembly=r["assembly"])},
                            r.get("assembly_name") or _short_id(r["assembly"]),
                        ),
                    ]
                    for r in d["areas"]
                ),
            )
        )
    return _layout(p, t("areas.title"), *body)


_STATE_KIND = {"upcoming": "warn", "open": "info", "closed": "warn", "sealed": "ok"}


def _state(state: str, t: Translator) -> Markup:
    return _badge(_STATE_KIND.get(state, "info"), t(f"state.{state}"))


def render_issues(d: dict[str, Any], p: Page) -> Markup:
    """A filterable, paged list of issues."""
    t = p.t
    states = ("upcoming", "open", "closed", "sealed")
    form = h(
        "form",
        {"method": "get", "action": "/issues", "class_": "filter"},
        h("input", {"type": "hidden", "name": "area", "value": d["area"]}) if d["area"] else None,
        h("label", {"for": "state"}, t("issues.state")),
        " ",
        h(
            "select",
            {"id": "state", "name": "state"},
            h("option", {"value": "", "selected": d["state"] is None}, t("issues.state.any")),
            *[
                h("option", {"value": s, "selected": d["state"] == s}, t(f"state.{s}"))
                for s in states
            ],
        ),
        " ",
        h("button", {"type": "submit"}, t("issues.apply")),
    )
    body: list[Child] = [h("h1", None, t("issues.title")), form]
    if not d["issues"]:
        body.append(h("p", None, t("issues.none")))
    else:
        body.append(
            _grid(
                [t("issues.col.title"), t("issues.col.state"), t("issues.window"), t("issue.area")],
                (
                    [
                        h("a", {"href": f"/issues/{i['id']}"}, i["title"]),
                        _state(i["state"], t),
                        t(
                            "issue.window.value",
                            opens=t.time(i["opens"]),
                            closes=t.time(i["closes"]),
                        ),
                        h(
                            "a",
                            {"href": p.url("/issues", area=i["area"])},
                            i.get("area_name") or _short_id(i["area"]),
                        ),
                    ]
                    for i in d["issues"]
                ),
            )
        )
    if d["next"] is not None:
        body.append(
            h(
                "p",
                None,
                h(
                    "a",
                    {
                        "rel": "next",
                        "href": p.url(
                            "/issues", area=d["area"], state=d["state"], offset=d["next"]
                        ),
                    },
                    t("issues.more"),
                ),
            )
        )
    return _layout(p, t("issues.title"), *body)


# Issue -------------------------------------------------------------------------------------------


def _yes(flag: bool, t: Translator) -> Markup:
    return _badge("ok", "✓ " + t("issue.yes")) if flag else _badge("muted", "✗ " + t("issue.no"))


def _ranking_table(tally: dict[str, Any], t: Translator) -> Markup:
    rows = [
        h(
            "tr",
            {"class_": "winner" if o.get("winner") else None},
            h("td", {"class_": "num"}, t.num(o["schulze_rank"])),
            h(
                "th",
                {"scope": "row"},
                o["title"],
                " ",
                _code(o["id"]),
                " ",
                _badge("ok", "★ " + t("issue.winner.badge")) if o.get("winner") else None,
            ),
            h("td", {"class_": "num"}, t.num(o["positive_votes"])),
            h("td", {"class_": "num"}, t.num(o["negative_votes"])),
            h("td", None, _yes(o["direct_majority"], t)),
            h("td", None, _yes(o["indirect_majority"], t)),
            h("td", None, _yes(o["better_than_status_quo"], t)),
        )
        for o in tally["options"]
    ]
    return _table(
        {"class_": "ranking"},
        h("caption", None, t("issue.ranking.caption")),
        _thead(
            _Num(t("issue.col.rank")),
            t("issue.col.option"),
            _Num(t("issue.col.for")),
            _Num(t("issue.col.against")),
            t("issue.col.direct"),
            t("issue.col.indirect"),
            t("issue.col.sq"),
        ),
        h("tbody", None, *rows),
    )


def _flow_table(tally: dict[str, Any], t: Translator) -> Markup:
    parts = ("own", "assembly", "area", "issue")
    return _table(
        {"class_": "flow"},
        h("caption", None, t("issue.flow.lead")),
        _thead(
            t("issue.flow.voter"),
            *[
                _Num(
                    [
                        h("span", {"class_": f"swatch sw-{x}", "aria_hidden": "true"}),
                        t(f"scope.{x}"),
                    ]
                )
                for x in parts
            ],
            _Num(t("issue.flow.total")),
        ),
        h(
            "tbody",
            None,
            *[
                h(
                    "tr",
                    None,
                    h("th", {"scope": "row"}, _voter_link(f["voter"])),
                    *[h("td", {"class_": "num"}, t.num(f[x])) for x in parts],
                    h("td", {"class_": "num"}, h("strong", None, t.num(f["weight"]))),
                )
                for f in tally["flow"]
            ],
        ),
    )


def explain_form(p: Page, issue_id: str, value: str = "") -> Markup:
    """The "explain a voter" box: a plain GET form."""
    t = p.t
    return h(
        "form",
        {"method": "get", "action": f"/issues/{issue_id}/explain", "class_": "explain"},
        h("label", {"for": "voter"}, t("explain.label")),
        h(
            "input",
            {
                "id": "voter",
                "name": "voter",
                "type": "text",
                "value": value,
                "required": True,
                "spellcheck": "false",
                "autocomplete": "off",
                "pattern": "\\s*lqpk1[0-9a-z]+\\s*",
                "size": "66",
            },
        ),
        h("button", {"type": "submit"}, t("explain.submit")),
    )


def _attestations(att: dict[str, Any], t: Translator) -> Markup:
    items = att["items"]
    body: list[Child] = [
        h("h2", {"id": "att-h"}, t("issue.attestations")),
        h("p", None, t("issue.attestations.lead")),
    ]
    if not items:
        body.append(h("p", None, t("issue.attestations.none")))
    else:
        n, bad = len(items), att["disagreeing"]
        if bad:
            body.append(
                h(
                    "p",
                    {"class_": "alert", "role": "alert"},
                    "⚠ " + t("issue.att.summary.bad", bad=bad, n=n),
                )
            )
        elif all(a["agreement"] == "agrees" for a in items):
            body.append(h("p", None, _badge("ok", "✓"), " ", t("issue.att.summary.ok", n=n)))
        kinds = {"agrees": "ok", "disagrees": "bad", "unknown": "muted"}
        body.append(
            _table(
                None,
                _thead(t("issue.att.node"), t("issue.att.digest"), t("issue.att.agreement")),
                h(
                    "tbody",
                    None,
                    *[
                        h(
                            "tr",
                            None,
                            h("th", {"scope": "row"}, a["origin"]),
                            h(
                                "td",
                                None,
                                _code(_short_id(a["digest"])),
                                h("span", {"class_": "sr"}, a["digest"][12:]),
                            ),
                            h(
                                "td",
                                None,
                                _badge(
                                    kinds[a["agreement"]],
                                    ("✓ " if a["agreement"] == "agrees" else "✗ ")
                                    + t(f"issue.att.{a['agreement']}")
                                    if a["agreement"] != "unknown"
                                    else "?",
                                ),
                            ),
                        )
                        for a in items
                    ],
                ),
            )
        )
    if att["pending"]:
        body.append(
            h(
                "ul",
                {"class_": "pending"},
                *[
                    h("li", None, m, " ", _badge("muted", t("issue.att.pending")))
                    for m in att["pending"]
                ],
            )
        )
    return h("section", {"aria_labelledby": "att-h"}, *body)


def _parts(tally: dict[str, Any], t: Translator) -> Child:
    parts = tally.get("parts") or []
    if not parts:
        return None
    flags = tally.get("flags") or {}
    rows = []
    for x in parts:
        basis = x.get("basis", "seal")
        if basis == "seal" and x.get("seal") is not None:
            up_to = t("basis.seal", seal=t.num(x["seal"]))
        else:
            up_to = t("basis.checkpoint") if basis == "checkpoint" else str(basis)
        marks = flags.get(x["origin"]) or []
        rows.append(
            h(
                "tr",
                None,
                h("th", {"scope": "row"}, x["origin"]),
                h("td", {"class_": "num"}, t.num(x["size"])),
                h("td", None, up_to),
                h(
                    "td",
                    None,
                    [_badge("warn", str(f)) for f in marks] if marks else t("issue.parts.noflags"),
                ),
            )
        )
    return _table(
        {"class_": "parts"},
        h("caption", None, t("issue.parts")),
        _thead(
            t("issue.parts.origin"),
            _Num(t("issue.parts.size")),
            t("issue.parts.basis"),
            t("issue.parts.flags"),
        ),
        h("tbody", None, *rows),
    )


def _findings(found: Sequence[dict[str, Any]], t: Translator) -> Child:
    if not found:
        return None
    return join(
        h("h3", None, t("issue.findings")),
        h(
            "ul",
            {"class_": "findings"},
            *[_finding(f, t) for f in found],
        ),
    )


def _waiting(items: Sequence[dict[str, str]], t: Translator) -> Markup:
    """The member cities whose signed evidence the record still waits for, and what it is."""
    english: dict[str, object] | None = {"lang": "en"} if t.lang != "en" else None
    return h(
        "section",
        {"class_": "notice", "aria_labelledby": "waiting-h"},
        h("h2", {"id": "waiting-h"}, t("issue.waiting")),
        h("p", None, t("issue.waiting.lead")),
        h(
            "ul",
            {"class_": "pending"},
            *[
                h("li", None, w["origin"] or "—", ": ", h("span", english, w["reason"]))
                for w in items
            ],
        ),
    )


def _finding(f: dict[str, Any], t: Translator) -> Markup:
    """One finding: its reason code, the city, and what it means in the page's language."""
    sentence, detail = t.reason(str(f.get("reason")), str(f.get("message", "")))
    return h(
        "li",
        None,
        _code(str(f.get("reason"))),
        " ",
        str(f.get("origin", "")),
        ": ",
        sentence,
        None if detail is None else [" (", h("span", {"lang": "en"}, detail), ")"],
    )


def render_issue(d: dict[str, Any], p: Page) -> Markup:
    """An issue: definition and state; after the seal, results, flow, attestations, explain."""
    t = p.t
    i = d["issue"]
    pol = i.get("policy", {})
    body: list[Child] = [
        h("h1", None, i["title"]),
        _dl(
            (t("issue.status"), _state(i["state"], t)),
            (
                t("issue.window"),
                t("issue.window.value", opens=t.time(i["opens"]), closes=t.time(i["closes"])),
            ),
            (
                t("issue.area"),
                h(
                    "a",
                    {"href": p.url("/issues", area=i["area"])},
                    i.get("area_name") or _short_id(i["area"]),
                ),
            ),
            (
                t("issue.assembly"),
                h(
                    "a",
                    {"href": p.url("/areas", assembly=i["assembly"])},
                    i.get("assembly_name") or _short_id(i["assembly"]),
                ),
            ),
            (
                t("issue.policy.label"),
                t(
                    "issue.policy",
                    rule=pol.get("delegation_rule", "?").upper(),
                    strength=pol.get("defeat_strength", "?"),
                    tie=pol.get("tie_breaking", "?"),
                ),
            ),
            (
                t("issue.received"),
                t(
                    "issue.counts",
                    ballots=t.num(i.get("ballots", 0)),
                    delegations=t.num(i.get("delegations", 0)),
                ),
            ),
        ),
        h("h2", None, t("issue.options")),
        h(
            "ol",
            {"class_": "options"},
            *[h("li", None, o["title"], " ", _code(o["id"])) for o in i.get("options", [])],
        ),
    ]
    tally = d["tally"]
    if tally is not None:
        titles = {o["id"]: o["title"] for o in tally["options"]}
        v = tally["voters"]
        winner = (
            h(
                "p",
                {"class_": "winner"},
                "★ ",
                t("issue.winner", title=titles.get(tally["winner"], tally["winner"])),
            )
            if tally["winner"] is not None
            else h("p", {"class_": "winner none"}, t("issue.nowinner"))
        )
        flow: list[Child] = [h("h3", {"id": "flow-h"}, t("issue.flow"))]
        if tally["flow"]:
            flow += [
                h("figure", {"class_": "scroll"}, flow_svg(tally["flow"], t, voter_href)),
                _flow_table(tally, t),
            ]
            if tally["others"]["count"]:
                flow.append(
                    h(
                        "p",
                        None,
                        t(
                            "issue.flow.others",
                            n=t.num(tally["others"]["count"]),
                            weight=t.num(tally["others"]["weight"]),
                        ),
                    )
                )
        else:
            flow.append(h("p", None, t("issue.flow.none")))
        body.append(
            h(
                "section",
                {"aria_labelledby": "res-h"},
                h("h2", {"id": "res-h"}, t("issue.results")),
                winner,
                h(
                    "p",
                    None,
                    t(
                        "issue.voters",
                        direct=t.num(v["direct"]),
                        delegated=t.num(v["delegated"]),
                        lost=t.num(v["lost"]),
                        absent=t.num(v["absent"]),
                    ),
                ),
                h("h3", None, t("issue.ranking")),
                h(
                    "figure",
                    {"class_": "scroll"},
                    ranking_svg(tally["options"], tally["status_quo_schulze_rank"], t),
                ),
                _ranking_table(tally, t),
                h("p", None, t("issue.statusquo.rank", rank=tally["status_quo_schulze_rank"])),
                *flow,
                _dl(
                    (t("issue.digest"), _code(tally["digest"], "long")),
                    (t("issue.record"), _code(str(tally["record"]), "long")),
                ),
                _parts(tally, t),
                _findings(tally.get("findings") or [], t),
            )
        )
    elif d["tally_error"] is not None:
        body.append(
            h("p", {"class_": "notice"}, t("issue.unavailable", reason=d["tally_error"]["message"]))
        )
    else:
        body.append(h("p", {"class_": "notice"}, t("issue.notyet")))
    if d.get("waiting"):
        body.append(_waiting(d["waiting"], t))
    if i["state"] == "sealed":
        body.append(_attestations(d["attestations"], t))
        body.append(
            h(
                "section",
                {"aria_labelledby": "explain-h"},
                h("h2", {"id": "explain-h"}, t("explain.title")),
                h("p", None, t("explain.lead")),
                explain_form(p, i["id"]),
            )
        )
    return _layout(p, i["title"], *body)


# Explanations ------------------------------------------------------------------------------------


def explanation_block(e: dict[str, Any], t: Translator) -> Markup:
    """One voter's explanation: a sentence in the page's language and the delegation path."""
    status = e["status"]
    scope = t(f"scope.{e['scope']}.one") if e.get("scope") else ""
    weight = t.num(e["weight"]) if e.get("weight") is not None else ""
    parts: list[Child] = []
    if status == "direct":
        key = (
            "explain.direct.override"
            if e.get("reason") == "overrides_delegation"
            else "explain.direct"
        )
        parts.append(h("p", None, t(key, weight=weight, scope=scope)))
        split = e.get("split")
        if split:
            parts.append(
                h(
                    "ul",
                    {"class_": "split"},
                    *[
                        h(
                            "li",
                            None,
                            h("span", {"class_": f"swatch sw-{x}", "aria_hidden": "true"}),
                            f"{t(f'scope.{x}')}: {t.num(split[x])}",
                        )
                        for x in ("own", "assembly", "area", "issue")
                        if split.get(x)
                    ],
                )
            )
    elif status == "delegated":
        parts.append(h("p", None, t("explain.delegated", weight=weight, scope=scope)))
        chain = [e["voter"], *e.get("path", [])]
        parts.append(
            h(
                "ol",
                {"class_": "path", "aria_label": t("explain.path")},
                *[h("li", None, _voter_link(k)) for k in chain],
            )
        )
    elif status == "lost":
        parts.append(h("p", None, t(f"explain.lost.{e.get('reason') or 'dead_end'}")))
        if e.get("path"):
            parts.append(
                h(
                    "ol",
                    {"class_": "path lost", "aria_label": t("explain.path")},
                    *[h("li", None, _voter_link(k)) for k in [e["voter"], *e["path"]]],
                )
            )
    else:
        key = "explain.absent.blocked" if e.get("reason") == "blocked" else "explain.absent"
        parts.append(h("p", None, t(key, scope=scope)))
    return join(*parts)


def render_explain(d: dict[str, Any], p: Page) -> Markup:
    """The answer of the explain box, with the box again."""
    t = p.t
    issue = d["issue"]
    body: list[Child] = [
        h("h1", None, t("explain.title")),
        h(
            "p",
            None,
            h("a", {"href": f"/issues/{issue['id']}"}, "← ", issue.get("title") or issue["id"]),
        ),
        explain_form(p, issue["id"], d["voter"]),
    ]
    e = d["explanation"]
    if e is not None:
        body.append(
            h(
                "section",
                {"class_": "card", "aria_labelledby": "exp-h"},
                h("h2", {"id": "exp-h"}, t("explain.heading", voter=short_key(d["voter"]))),
                h("p", None, _code(d["voter"], "long")),
                explanation_block(e, t),
            )
        )
    elif d["error"] not in (None, "no_voter"):
        messages = {
            "bad_key": t("explain.badkey", voter=d["voter"]),
            "not_sealed": t("explain.notsealed"),
            "not_a_voter": t("explain.unknown", voter=d["voter"]),
        }
        text = messages.get(d["error"]) or t(
            "issue.unavailable", reason=d.get("message", d["error"])
        )
        body.append(h("p", {"class_": "notice", "role": "status"}, text))
    return _layout(p, t("explain.title"), *body)


def render_voter(d: dict[str, Any], p: Page) -> Markup:
    """A voter's public delegations per scope, ballots, and explanations per sealed issue."""
    t = p.t
    short = short_key(d["key"])
    enrol = d["enrolment"]
    enrolled = (
        t("voter.enrolled.yes", ref=enrol["ref"], index=t.num(enrol["index"]))
        if d["enrolled"] and enrol is not None
        else t("voter.enrolled.no")
    )
    head = d["head"]
    body: list[Child] = [
        h("h1", None, t("voter.title", short=short)),
        _dl(
            (t("voter.key"), _code(d["key"], "long")),
            (
                t("voter.city"),
                join(
                    d["origin"],
                    [
                        " · ",
                        h(
                            "a",
                            {"href": d["home"].rstrip("/") + voter_href(d["key"])},
                            t("voter.home"),
                        ),
                    ]
                    if d.get("home")
                    else None,
                ),
            ),
            (t("voter.enrolled"), enrolled),
            (
                t("voter.head"),
                "—"
                if head is None
                else join(f"seq {head['seq']} ", _code(_short_id(head["event_id"]))),
            ),
        ),
        h("h2", None, t("voter.delegations")),
    ]
    if not d["delegations"]:
        body.append(h("p", None, t("voter.delegations.none")))
    else:
        rows = []
        for x in d["delegations"]:
            target: Child = x.get("target_name") or _short_id(x["target"])
            if x["scope"] == "issue":
                target = h("a", {"href": f"/issues/{x['target']}"}, target)
            elif x["scope"] == "area":
                target = h("a", {"href": p.url("/issues", area=x["target"])}, target)
            trustees: Child = (
                h(
                    "ol",
                    {"class_": "trustees"},
                    *[h("li", None, _voter_link(k)) for k in x["trustees"]],
                )
                if x["trustees"]
                else h("em", None, t("voter.blocks"))
            )
            rows.append(
                h(
                    "tr",
                    None,
                    h("td", None, t(f"scope.{x['scope']}.one")),
                    h("th", {"scope": "row"}, target),
                    h("td", None, trustees),
                )
            )
        body.append(
            _table(
                None,
                _thead(t("voter.col.scope"), t("voter.col.target"), t("voter.col.trustees")),
                h("tbody", None, *rows),
            )
        )
    body.append(h("h2", None, t("voter.ballots")))
    if d["ballots"]:
        body.append(
            h(
                "ul",
                None,
                *[
                    h(
                        "li",
                        None,
                        h(
                            "a",
                            {"href": f"/issues/{b['issue']}"},
                            b.get("title") or _short_id(b["issue"]),
                        ),
                        ": ",
                        ", ".join(f"{k} {v:+d}" for k, v in sorted(b["grades"].items())) or "—",
                    )
                    for b in d["ballots"]
                ],
            )
        )
    else:
        body.append(h("p", None, t("voter.ballots.none")))
    body.append(h("h2", None, t("voter.explanations")))
    if not d["explanations"]:
        body.append(h("p", None, t("voter.explanations.none")))
    body.extend(
        h(
            "section",
            {"class_": "card"},
            h("h3", None, h("a", {"href": f"/issues/{x['issue']}"}, x["title"])),
            explanation_block({**x["explanation"], "voter": d["key"]}, t),
        )
        for x in d["explanations"]
    )
    return _layout(p, t("voter.title", short=short), *body)
