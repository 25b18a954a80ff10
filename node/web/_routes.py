"""The web pages' routes: HTML pages and their ``.json`` twins, language, caching, headers.

=====================================  ====================================================
``/``, ``/index.json``                 the city, its log, logs held, peers, proofs
``/assemblies[.json]``                 assemblies with members, witnesses and areas
``/areas[.json][?assembly=]``          areas
``/issues[.json][?area=&state=]``      issues, newest first, paged (``offset``, ``limit``)
``/issues/{id}[.json]``                an issue; after the seal its results and attestations
``/issues/{id}/explain[.json]?voter=``  the "explain a voter" box's answer
``/voters/{key}[.json]``               a voter's delegations, ballots and explanations
``/static/liquide.css``                the stylesheet
=====================================  ====================================================

Pages of sealed issues are cached: the tally view in memory by record id, and the whole page
(bytes and a strong ``ETag``) by record, language and the attestations seen, with
``Cache-Control: public`` and ``304 Not Modified`` on ``If-None-Match``. Other pages are
rendered per request with ``Cache-Control: no-cache``.

HTML handlers answer a missing id with an HTML 404 page; the ``.json`` twins raise, so the
server's middleware answers the usual JSON error body.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from node import _api
from node.errors import NotFoundError, RequestError

from . import _data
from . import _sources as src
from ._i18n import Translator, negotiate
from ._pages import (
    Page,
    render_areas,
    render_assemblies,
    render_error,
    render_explain,
    render_home,
    render_issue,
    render_issues,
    render_voter,
)
from ._tallyview import ViewCache

__all__ = ["WEB_KEY", "WebState", "add_routes"]

_STATIC = Path(__file__).with_name("static")
_CSS_PATH = _STATIC / "liquide.css"
_ICON = (_STATIC / "favicon.svg").read_bytes()
_HEX = "[0-9a-f]{64}"
_KEY = "lqpk1[0-9a-z]{20,120}"
_HTML_LIMIT = 50
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
#: Bumped when the pages' HTML changes, so that cached ETags change with it.
RENDER_VERSION = "1"


@dataclass
class WebState:
    """Per-app state of the pages: tally views, attestations and rendered sealed pages."""

    views: ViewCache = field(default_factory=ViewCache)
    attestations: src.AttestationIndex = field(default_factory=src.AttestationIndex)
    pages: OrderedDict[str, tuple[bytes, str, str, str]] = field(default_factory=OrderedDict)
    page_slots: int = 256
    css: bytes = b""
    css_etag: str = ""

    def __post_init__(self) -> None:
        self.css = _CSS_PATH.read_bytes()
        self.css_etag = '"' + hashlib.sha256(self.css).hexdigest()[:20] + '"'

    @property
    def css_href(self) -> str:
        """The stylesheet's URL, versioned by its content (so it can be cached for a year)."""
        return f"/static/liquide.css?v={self.css_etag.strip(chr(34))[:10]}"

    def remember(self, key: str, value: tuple[bytes, str, str, str]) -> None:
        """Keep a rendered page (LRU)."""
        self.pages[key] = value
        self.pages.move_to_end(key)
        while len(self.pages) > self.page_slots:
            self.pages.popitem(last=False)

    def recall(self, key: str) -> tuple[bytes, str, str, str] | None:
        """A rendered page kept under ``key``, or None."""
        hit = self.pages.get(key)
        if hit is not None:
            self.pages.move_to_end(key)
        return hit

    def clear(self) -> None:
        """Forget every cached view and page (benchmarks measure the cold path with this)."""
        self.views.clear()
        self.pages.clear()


WEB_KEY = web.AppKey("web", WebState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _state(request: web.Request) -> WebState:
    return request.app[WEB_KEY]


def _page(request: web.Request) -> tuple[Page, bool]:
    lang, set_cookie = negotiate(
        request.query.get("lang"),
        request.cookies.get("lang"),
        request.headers.get("Accept-Language"),
    )
    query = tuple((k, v) for k, v in request.query.items())
    return Page(Translator(lang), request.path, query, _state(request).css_href), set_cookie


def _headers(resp: web.StreamResponse, *, cache: str) -> None:
    resp.headers["Cache-Control"] = cache
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"


def _html(
    page: Page,
    body: str,
    *,
    set_cookie: bool,
    status: int = 200,
    cache: str = "no-cache",
    etag: str | None = None,
) -> web.Response:
    resp = web.Response(
        body=body.encode("utf-8"), status=status, content_type="text/html", charset="utf-8"
    )
    _finish_html(resp, page, set_cookie=set_cookie, cache=cache, etag=etag)
    return resp


def _finish_html(
    resp: web.StreamResponse, page: Page, *, set_cookie: bool, cache: str, etag: str | None
) -> None:
    _headers(resp, cache=cache)
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["Content-Language"] = page.t.lang
    resp.headers["Vary"] = "Accept-Language, Cookie"
    if etag is not None:
        resp.headers["ETag"] = etag
    if set_cookie:
        resp.set_cookie("lang", page.t.lang, max_age=365 * 86400, path="/", samesite="Lax")


_dumps = functools.partial(json.dumps, ensure_ascii=False, sort_keys=True)


def _json(data: Any, *, cache: str = "no-cache", etag: str | None = None) -> web.Response:
    resp = web.json_response(data, dumps=_dumps)
    _headers(resp, cache=cache)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    if etag is not None:
        resp.headers["ETag"] = etag
    return resp


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    page, set_cookie = _page(request)
    return _html(page, render_error(page, message), set_cookie=set_cookie, status=status)


def _html_errors(handler: Handler) -> Handler:
    """Answer NotFoundError and RequestError of an HTML handler with an HTML page."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except NotFoundError as exc:
            return _error_page(request, 404, exc.message)
        except RequestError as exc:
            return _error_page(request, 400, exc.message)

    return wrapped


def _optional_hex(request: web.Request, name: str) -> str | None:
    value = request.query.get(name) or None
    return None if value is None else _api._hex_id(value, name)


def _optional_state(request: web.Request) -> str | None:
    value = request.query.get("state") or None
    if value is not None and value not in src.ISSUE_STATES:
        raise RequestError(
            f"state={value!r}: use upcoming, open, closed or sealed", code="bad_param"
        )
    return value


# Handlers ----------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    """``/``: the city and its log, peers, proofs."""
    page, set_cookie = _page(request)
    data = await _data.home_data(src.node_of(request))
    return _html(page, render_home(data, page), set_cookie=set_cookie)


async def home_json(request: web.Request) -> web.Response:
    """``/index.json``."""
    return _json(await _data.home_data(src.node_of(request)))


async def assemblies(request: web.Request) -> web.Response:
    """``/assemblies``."""
    page, set_cookie = _page(request)
    data = _data.assemblies_data(src.node_of(request))
    return _html(page, render_assemblies(data, page), set_cookie=set_cookie)


async def assemblies_json(request: web.Request) -> web.Response:
    """``/assemblies.json``."""
    return _json(_data.assemblies_data(src.node_of(request)))


async def areas(request: web.Request) -> web.Response:
    """``/areas[?assembly=]``."""
    page, set_cookie = _page(request)
    data = _data.areas_data(src.node_of(request), _optional_hex(request, "assembly"))
    return _html(page, render_areas(data, page), set_cookie=set_cookie)


async def areas_json(request: web.Request) -> web.Response:
    """``/areas.json[?assembly=]``."""
    return _json(_data.areas_data(src.node_of(request), _optional_hex(request, "assembly")))


def _issues(request: web.Request) -> dict[str, Any]:
    node = src.node_of(request)
    limit = _api._int_param(request, "limit", lo=1, hi=node.config.page_size, default=_HTML_LIMIT)
    offset = _api._int_param(request, "offset", default=0)
    return _data.issues_data(
        node, _optional_hex(request, "area"), _optional_state(request), offset, limit
    )


async def issues(request: web.Request) -> web.Response:
    """``/issues[?area=&state=&offset=&limit=]``."""
    page, set_cookie = _page(request)
    return _html(page, render_issues(_issues(request), page), set_cookie=set_cookie)


async def issues_json(request: web.Request) -> web.Response:
    """``/issues.json``."""
    return _json(_issues(request))


def _page_key(
    st: WebState, variant: str, issue_id: str, record: str, seen: list[dict[str, Any]]
) -> tuple[str, str]:
    """The cache key and strong ETag of a sealed issue's page: what its bytes depend on."""
    sig = ";".join(f"{a['origin']}={a['record']}:{a['digest']}" for a in seen)
    raw = f"{RENDER_VERSION}|{variant}|{issue_id}|{record}|{sig}|{st.css_href}"
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    return digest, f'"{digest[:32]}"'


async def _sealed_key(request: web.Request, issue_id: str, variant: str) -> tuple[str, str] | None:
    """The cache key and ETag of a sealed issue's page, or None when it cannot be cached yet."""
    node = src.node_of(request)
    st = _state(request)
    record, seen = await st.attestations.lookup(node, issue_id)
    if record is None:
        record = await src.record_id(node, issue_id)
        if record is None:
            return None
    return _page_key(st, variant, issue_id, record, seen)


def _sealed_cache_control(data: dict[str, Any]) -> str:
    att = data["attestations"]
    settled = not att["pending"] and not att["disagreeing"] and att["items"]
    return "public, max-age=86400" if settled else "public, max-age=60"


def _not_modified(request: web.Request, etag: str) -> bool:
    inm = request.headers.get("If-None-Match", "")
    return etag in [x.strip().removeprefix("W/") for x in inm.split(",")]


async def _issue_response(request: web.Request, variant: str) -> web.StreamResponse:
    st = _state(request)
    node = src.node_of(request)
    issue_id = request.match_info["issue"]
    page, set_cookie = _page(request)
    # The page takes no query (but ?lang=), so that one cached copy serves every URL.
    page = Page(page.t, page.path, (), page.css)
    keyed = await _sealed_key(request, issue_id, variant)
    if keyed is not None:
        key, etag = keyed
        hit = st.recall(key)
        if hit is not None:
            body, ctype, cache, etag = hit
            return _cached(
                request, page, body=body, ctype=ctype, cache=cache, etag=etag, set_cookie=set_cookie
            )
    data, view = await _data.issue_data(node, issue_id, st.views, st.attestations)
    if variant == "json":
        text = _dumps(data)
        ctype = "application/json"
    else:
        text = render_issue(data, page)
        ctype = "text/html"
    cache = "no-cache"
    if view is not None:
        # Keyed by exactly what was rendered (the view's record, the attestations shown).
        key, etag = _page_key(st, variant, issue_id, view.record, data["attestations"]["items"])
        cache = _sealed_cache_control(data)
        st.remember(key, (text.encode("utf-8"), ctype, cache, etag))
        return _cached(
            request,
            page,
            body=text.encode("utf-8"),
            ctype=ctype,
            cache=cache,
            etag=etag,
            set_cookie=set_cookie,
        )
    if variant == "json":
        return _json(data)
    return _html(page, text, set_cookie=set_cookie)


def _cached(
    request: web.Request,
    page: Page,
    *,
    body: bytes,
    ctype: str,
    cache: str,
    etag: str,
    set_cookie: bool,
) -> web.StreamResponse:
    resp: web.StreamResponse
    if _not_modified(request, etag):
        resp = web.Response(status=304)
    else:
        resp = web.Response(body=body, content_type=ctype, charset="utf-8")
    if ctype == "text/html":
        _finish_html(resp, page, set_cookie=set_cookie, cache=cache, etag=etag)
    else:
        _headers(resp, cache=cache)
        resp.headers["ETag"] = etag
        resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


async def issue(request: web.Request) -> web.StreamResponse:
    """``/issues/{id}``."""
    page, _ = _page(request)
    return await _issue_response(request, page.t.lang)


async def issue_json(request: web.Request) -> web.StreamResponse:
    """``/issues/{id}.json``."""
    return await _issue_response(request, "json")


async def _explain(request: web.Request) -> dict[str, Any]:
    st = _state(request)
    voter = request.query.get("voter", "").strip()
    return await _data.explain_data(
        src.node_of(request), request.match_info["issue"], voter, st.views
    )


async def explain(request: web.Request) -> web.Response:
    """``/issues/{id}/explain?voter=``: the answer of the explain box."""
    page, set_cookie = _page(request)
    data = await _explain(request)
    status = 400 if data["error"] == "bad_key" else 200
    return _html(page, render_explain(data, page), set_cookie=set_cookie, status=status)


async def explain_json(request: web.Request) -> web.Response:
    """``/issues/{id}/explain.json?voter=``."""
    data = await _explain(request)
    if data["error"] == "bad_key":
        raise RequestError(
            f"voter {data['voter']!r} is not a public key (lqpk1…)", code="bad_param"
        )
    return _json(data)


async def _voter(request: web.Request) -> dict[str, Any]:
    key = _data.parse_voter(request.match_info["key"])
    if key is None:
        raise NotFoundError(f"{request.match_info['key']!r} is not a public key")
    return await _data.voter_data(src.node_of(request), key, _state(request).views)


async def voter(request: web.Request) -> web.Response:
    """``/voters/{key}``."""
    page, set_cookie = _page(request)
    data = await _voter(request)
    return _html(page, render_voter(data, page), set_cookie=set_cookie)


async def voter_json(request: web.Request) -> web.Response:
    """``/voters/{key}.json``."""
    return _json(await _voter(request))


async def css(request: web.Request) -> web.Response:
    """``/static/liquide.css``: cached for a year (its URL carries its version)."""
    st = _state(request)
    if _not_modified(request, st.css_etag):
        resp = web.Response(status=304)
    else:
        resp = web.Response(body=st.css, content_type="text/css", charset="utf-8")
    _headers(resp, cache="public, max-age=31536000, immutable")
    resp.headers["ETag"] = st.css_etag
    return resp


async def favicon(request: web.Request) -> web.Response:
    """``/static/favicon.svg``."""
    resp = web.Response(body=_ICON, content_type="image/svg+xml")
    _headers(resp, cache="public, max-age=604800")
    return resp


def add_routes(app: web.Application) -> None:
    """Mount the web pages and their ``.json`` twins on the node's ``app``."""
    app[WEB_KEY] = WebState()
    r = app.router
    r.add_get("/", _html_errors(home))
    r.add_get("/index.json", home_json)
    r.add_get("/assemblies", _html_errors(assemblies))
    r.add_get("/assemblies.json", assemblies_json)
    r.add_get("/areas", _html_errors(areas))
    r.add_get("/areas.json", areas_json)
    r.add_get("/issues", _html_errors(issues))
    r.add_get("/issues.json", issues_json)
    r.add_get(f"/issues/{{issue:{_HEX}}}", _html_errors(issue))
    r.add_get(f"/issues/{{issue:{_HEX}}}.json", issue_json)
    r.add_get(f"/issues/{{issue:{_HEX}}}/explain", _html_errors(explain))
    r.add_get(f"/issues/{{issue:{_HEX}}}/explain.json", explain_json)
    r.add_get(f"/voters/{{key:{_KEY}}}", _html_errors(voter))
    r.add_get(f"/voters/{{key:{_KEY}}}.json", voter_json)
    r.add_get("/static/liquide.css", css)
    r.add_get("/static/favicon.svg", favicon)
