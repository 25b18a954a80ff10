"""The node's public HTTP server (aiohttp): app factory, middlewares, metrics, serving.

:func:`create_app` builds the ``/v1`` application around a :class:`~node._node.Node`:

* the error middleware turns every failure into ``{"error": {"code", "message", …}}`` with a
  fitting status (4xx for the client's faults, see :func:`node.errors.http_status`), including
  aiohttp's own 404/405/413;
* the rate-limit middleware applies per-client-address token buckets: one to POSTs, and a
  separate, more generous one to reads (every other method: pages, API reads, static files;
  not ``/healthz``, ``/readyz`` and ``/metrics``, which probes poll). Beyond either, 429 with
  ``Retry-After`` (a short HTML page for a browser asking for a page, the JSON error body
  otherwise). Configured peers and ``rate_limit_exempt`` networks are exempt from both;
* metrics live in a :class:`prometheus_client.CollectorRegistry` of the app's own, so several
  nodes can run in one process (tests, simulated federations);
* the node's start and graceful stop are tied to the app's lifecycle (``cleanup_ctx``);
* *extensions* add their routes and lifecycles after the core: by default the public web pages
  (:mod:`node.web`) and federation (:mod:`node._federation`).

There is no admin endpoint here: admin commands use the Unix socket of
:mod:`node._admin_socket`. :func:`serve` runs both until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import ipaddress
import json
import logging
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from crypto import LiquideError
from protocol.errors import EncodingError

from . import _api
from ._api import NODE_KEY
from ._node import Node
from .config import NodeConfig
from .errors import RateLimitedError, http_status

__all__ = [
    "DEFAULT_EXTENSIONS",
    "METRICS_KEY",
    "NODE_KEY",
    "Extension",
    "Metrics",
    "create_app",
    "federation",
    "runner_kwargs",
    "serve",
    "web_pages",
]

log = logging.getLogger("liquide.node.server")


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; any other token a client sends is counted as ``other``."""


@dataclass
class Metrics:
    """The node's prometheus metrics, in a registry of their own."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "liquide_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "liquide_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.events = Counter(
            "liquide_events_appended", "Events appended to the own log", registry=r
        )
        self.rejected = Counter(
            "liquide_events_rejected", "Events refused, by error code", ["code"], registry=r
        )
        self.groups = Histogram(
            "liquide_ingest_group_size",
            "Submissions per writer transaction",
            registry=r,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20000),
        )
        self.log_size = Gauge("liquide_log_size", "Entries per log held", ["origin"], registry=r)
        self.checkpoint_size = Gauge(
            "liquide_checkpoint_size",
            "Size of the latest signed checkpoint per log",
            ["origin"],
            registry=r,
        )
        self.rate_limited = Counter(
            "liquide_rate_limited", "POSTs refused by the rate limit", registry=r
        )
        self.read_rate_limited = Counter(
            "liquide_read_rate_limited",
            "Reads (GET and other methods but POST) refused by the read rate limit",
            registry=r,
        )
        # Labelled children by label values: ``labels()`` validates and locks on every call.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its latency."""
        key = (method if method in _METHODS else "other", route, str(status))
        counted = self._counted.get(key)
        if counted is None:
            counted = self._counted[key] = self.requests.labels(*key)
        counted.inc()
        timed = self._timed.get(route)
        if timed is None:
            timed = self._timed[route] = self.latency.labels(route)
        timed.observe(seconds)


METRICS_KEY = web.AppKey("metrics", Metrics)


class RateLimiter:
    """Token buckets per client address: ``rate`` per second, up to ``burst`` at once.

    At most ``max_clients`` buckets are kept, least recently used first out: a bucket idle long
    enough to be full again is dropped at no cost (a new one starts full), and beyond the bound
    the oldest goes, so many addresses cannot grow the map without bound.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        exempt: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
        *,
        max_clients: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.exempt_networks = tuple(exempt)
        self.exempt_hosts: set[str] = set()
        self.max_clients = max_clients
        # Insertion order is recency order: every take moves the address to the end.
        self._buckets: dict[str, tuple[float, float]] = {}
        # Whether an address lies in an exempt network, remembered: parsing it is most of the
        # limiter's cost per request. Bounded like the buckets (emptied when full).
        self._in_networks: dict[str, bool] = {}

    def is_exempt(self, addr: str) -> bool:
        """True for peers' addresses and the configured exempt networks."""
        if addr in self.exempt_hosts:
            return True
        known = self._in_networks.get(addr)
        if known is None:
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                known = False
            else:
                known = any(ip in net for net in self.exempt_networks)
            if len(self._in_networks) >= self.max_clients:
                self._in_networks.clear()
            self._in_networks[addr] = known
        return known

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, addr: str, now: float) -> float:
        """Take one token for ``addr``; return 0 if allowed, else seconds until the next token."""
        tokens, last = self._buckets.pop(addr, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        self._buckets[addr] = (tokens - 1 if allowed else tokens, now)
        self._prune(now)
        return 0.0 if allowed else (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = self.burst / self.rate
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets))
            if len(buckets) <= self.max_clients and now - buckets[oldest][1] < full:
                return
            del buckets[oldest]


def _wants_html(request: web.Request) -> bool:
    """A browser asking for a page (not the API, not a ``.json`` twin)."""
    path = request.path
    if path.startswith("/v1/") or path.endswith(".json"):
        return False
    return "text/html" in request.headers.get("Accept", "")


def _rate_page(message: str, retry_after: float) -> web.Response:
    """The short HTML answer a browser gets when its reads are rate-limited."""
    text = html.escape(message)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Too many requests</title></head><body><h1>Too many requests</h1>"
        f"<p>{text}</p><p>Wait a moment, then reload the page.</p></body></html>"
    )
    resp = web.Response(status=429, text=body, content_type="text/html")
    resp.headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    return resp


RATE_KEY = web.AppKey("rate", RateLimiter)
READ_RATE_KEY = web.AppKey("read_rate", RateLimiter)
#: Probes poll these; they read nothing a client could use to load the node.
UNCOUNTED_READS = frozenset({"/healthz", "/readyz", "/metrics"})
_PEER_REFRESH_S = 60.0

_REASONS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, **details: Any) -> web.Response:
    """The JSON error body every failure gets."""
    body = {"error": {"code": code, "message": message, **details}}
    return web.json_response(body, status=status)


def error_for(exc: LiquideError) -> web.Response:
    """Map a Liquide error to its HTTP response."""
    status = http_status(exc)
    code = exc.code
    if isinstance(exc, EncodingError) and exc.message.startswith(
        ("malformed JSON", "invalid UTF-8")
    ):
        code = "malformed_json"
    details_fn = getattr(exc, "details", None)
    details = details_fn() if callable(details_fn) else {}
    resp = error_response(status, code, exc.message, **details)
    if isinstance(exc, RateLimitedError):
        resp.headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    return resp


def _route_name(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS_KEY]
    t0 = time.perf_counter()
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            message = f"the body exceeds the node's bound ({request.app._client_max_size} bytes)"
        else:
            message = exc.reason or exc.text or "HTTP error"
        resp = error_response(exc.status, _REASONS.get(exc.status, "http_error"), message)
    except LiquideError as exc:
        resp = error_for(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        resp = error_response(500, "internal", "internal error; see the node's log")
    metrics.request_done(
        request.method, _route_name(request), resp.status, time.perf_counter() - t0
    )
    return resp


@web.middleware
async def _rate_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    post = request.method == "POST"
    if not post and request.path in UNCOUNTED_READS:
        return await handler(request)
    addr = request.remote or ""
    # Exemptions (peers, configured networks) live on the POST limiter and cover both.
    if request.app[RATE_KEY].is_exempt(addr):
        return await handler(request)
    limiter = request.app[RATE_KEY] if post else request.app[READ_RATE_KEY]
    wait = limiter.take(addr, time.monotonic())
    if wait <= 0:
        return await handler(request)
    metrics = request.app[METRICS_KEY]
    (metrics.rate_limited if post else metrics.read_rate_limited).inc()
    what = "POSTs" if post else "reads"
    message = (
        f"too many {what} from {addr}: at most {limiter.rate:g} per second "
        f"(bursts of {limiter.burst:g}); retry in {max(wait, 0.1):.1f} s"
    )
    if not post and _wants_html(request):
        return _rate_page(message, wait)
    raise RateLimitedError(message, retry_after=wait)


async def _peer_hosts(node: Node) -> set[str]:
    """The addresses of the configured peers (exempt from the rate limit)."""
    hosts: set[str] = set()
    loop = asyncio.get_running_loop()
    for peer in node.reader.peers():
        host = urlsplit(peer["url"]).hostname
        if not host:
            continue
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), 2)
        except (OSError, TimeoutError):
            continue
        hosts.update(str(i[4][0]) for i in infos)
    return hosts


Extension = Callable[[web.Application, Node], object]
"""Adds routes (and lifecycle hooks) to the app after the core API: the web pages, federation."""


def web_pages(app: web.Application, node: Node) -> None:
    """Mount the public HTML pages (:mod:`node.web`)."""
    from . import web as pages

    pages.add_routes(app)


def federation(app: web.Application, node: Node) -> None:
    """Attach federation (sync, witnessing, attestations: ``node._federation.install``)."""
    try:
        from ._federation import install
    except ImportError:  # a build without the federation layer serves its own log only
        log.warning("federation is not available: serving the own log only")
        return
    install(app, node)


DEFAULT_EXTENSIONS: tuple[Extension, ...] = (web_pages, federation)
"""What :func:`create_app` adds unless told otherwise (``extensions=()``: the bare ``/v1``)."""


def create_app(
    node: Node, *, manage: bool = True, extensions: Sequence[Extension] = DEFAULT_EXTENSIONS
) -> web.Application:
    """Build the node's public aiohttp application: ``/v1``, then ``extensions``.

    With ``manage`` (the default) the app starts the node when it starts and stops it
    gracefully (final checkpoint) when it is cleaned up; extensions' lifecycle hooks run
    after the node started and before it stops. Returns the application.
    """
    cfg = node.config
    app = web.Application(
        middlewares=[_errors_middleware, _rate_middleware],
        client_max_size=max(cfg.max_batch_bytes, cfg.max_body_bytes),
    )
    app[NODE_KEY] = node
    metrics = Metrics()
    app[METRICS_KEY] = metrics
    exempt = [ipaddress.ip_network(n, strict=False) for n in cfg.rate_limit_exempt]
    app[RATE_KEY] = RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst, exempt)
    app[READ_RATE_KEY] = RateLimiter(cfg.get_rate_limit_per_s, cfg.get_rate_limit_burst, exempt)
    _api.add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[RATE_KEY].exempt_hosts = await _peer_hosts(node)
        if manage:
            await node.start()
        if node.ingest is not None:

            def on_group(size: int, appended: int) -> None:
                metrics.groups.observe(size)
                metrics.events.inc(appended)

            node.ingest.on_group = on_group

        async def refresh_peers() -> None:
            # Peers pinned while serving (``peer add``) become exempt within a minute.
            while True:
                await asyncio.sleep(_PEER_REFRESH_S)
                with contextlib.suppress(Exception):
                    app[RATE_KEY].exempt_hosts = await _peer_hosts(node)

        refresher = asyncio.get_running_loop().create_task(refresh_peers())
        yield
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        if manage:
            await node.stop()

    app.cleanup_ctx.append(lifecycle)
    # After the node's lifecycle, so that extensions start after the node and stop before it.
    for extend in extensions:
        extend(app, node)
    return app


# Serving --------------------------------------------------------------------------------------


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(fmt: str, level: str) -> None:
    """Send the node's logs to stderr as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("liquide")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    aio = logging.getLogger("aiohttp")
    aio.handlers[:] = [handler]
    aio.setLevel(logging.WARNING)


def runner_kwargs(config: NodeConfig) -> dict[str, Any]:
    """aiohttp request-handler settings that bound slow senders (``read_timeout_s``).

    aiohttp closes a connection that has not sent a complete request head within its keep-alive
    timeout (counted from the connection's start or the previous response); its default of an
    hour would let a client trickling header bytes hold connections open. The body has its own
    deadline in :func:`node._api._read_body`.
    """
    return {"keepalive_timeout": config.read_timeout_s}


async def serve(
    node: Node,
    host: str,
    port: int,
    *,
    on_bound: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``node`` on ``host:port`` and its admin socket until SIGTERM/SIGINT (or ``stop``).

    ``on_bound`` receives the bound base URL (``http://HOST:PORT/``) once listening. On stop:
    refuse new connections, finish the requests in flight (up to ``shutdown_timeout_s``),
    then sign the final checkpoint and release the data directory.
    """
    from ._admin_socket import socket_path, start_admin

    app = create_app(node)
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=node.config.shutdown_timeout_s,
        handle_signals=False,
        **runner_kwargs(node.config),
    )
    await runner.setup()
    admin_runner = None
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound_port = sockets[0].getsockname()[1] if sockets else port
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound_port}/"
        admin_runner = await start_admin(node)
        log.info("serving %s at %s", node.origin, url)
        if on_bound is not None:
            on_bound(url)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("stopping: finishing requests in flight, then signing a final checkpoint")
    finally:
        if admin_runner is not None:
            await admin_runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                socket_path(node.data_dir).unlink()
        await runner.cleanup()
    log.info("stopped")
