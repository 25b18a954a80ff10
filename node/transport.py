"""How a node reaches its peers: the :class:`~node.client.Transport` protocol, a bounded aiohttp
implementation for federation, and an in-memory network for simulated federations.

Everything a peer sends is untrusted and bounded. :func:`peer_transport` builds the real
transport used by the sync and witness loops: an aiohttp session with a connect timeout, a
per-read timeout *and* a total deadline per request (so a peer trickling one byte at a time is cut
off, not waited for), and a cap on the size of every answer.

:class:`MemoryNetwork` is the injectable fake of STYLE §6 (after httpx's ``MockTransport``): every
node registers a handler under its base URL, and each node talks to the others through a
:class:`MemoryTransport` that knows who is calling. Tests cut and heal links, partition the
network, and wrap a node's handler with faults (garbage, oversized or rewritten answers) without
any socket. :class:`AppHandler` serves requests straight from a node's aiohttp application, with
its middlewares, so the in-memory federation exercises the real handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import streams, web
from aiohttp.http import HttpVersion11, RawRequestMessage
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .client import HttpTransport, Response, Transport
from .errors import PeerError

__all__ = [
    "AppHandler",
    "Handler",
    "MemoryNetwork",
    "MemoryTransport",
    "PeerRequest",
    "Response",
    "Transport",
    "peer_transport",
]


def peer_transport(
    base_url: str,
    *,
    timeout_s: float = 10.0,
    connect_timeout_s: float = 3.0,
    max_response_bytes: int = 32 << 20,
    session: aiohttp.ClientSession | None = None,
) -> HttpTransport:
    """A :class:`~node.client.HttpTransport` bounded for talking to an untrusted peer.

    ``timeout_s`` is the total deadline of one request, body included: a peer that sends a
    trickle of bytes fails with :class:`~node.errors.PeerError` once it passes.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s, sock_read=timeout_s)
    return HttpTransport(
        base_url, session=session, timeout=timeout, max_response_bytes=max_response_bytes
    )


@dataclass(frozen=True, slots=True)
class PeerRequest:
    """One request on the in-memory network: who sent it, and what."""

    source: str
    method: str
    path: str
    params: Mapping[str, str]
    body: bytes | None
    content_type: str | None


Handler = Callable[[PeerRequest], Awaitable[Response]]
"""Answers one request (a node's app, or a test's malicious peer)."""


class AppHandler:
    """Serve :class:`PeerRequest` objects from an aiohttp application, in process.

    The request goes through the app's router and middlewares exactly as over HTTP (the remote
    address is the loopback one). Call :meth:`start` (runs the app's startup, which starts the
    node) and :meth:`stop`.
    """

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._started = False

    async def start(self) -> None:
        """Freeze the app and run its startup (``cleanup_ctx`` included)."""
        self.app.freeze()
        await self.app.startup()
        self._started = True

    async def stop(self) -> None:
        """Run the app's shutdown and cleanup (stopping the node)."""
        if self._started:
            self._started = False
            await self.app.shutdown()
            await self.app.cleanup()

    async def __call__(self, req: PeerRequest) -> Response:
        loop = asyncio.get_running_loop()
        path = req.path
        if req.params:
            path += "?" + urlencode(dict(req.params))
        headers = CIMultiDict[str]()
        payload: streams.StreamReader = streams.EMPTY_PAYLOAD
        if req.body is not None:
            payload = streams.StreamReader(_Protocol(), 2**16, loop=loop)  # type: ignore[arg-type]
            payload.feed_data(req.body)
            payload.feed_eof()
            headers["Content-Length"] = str(len(req.body))
            if req.content_type:
                headers["Content-Type"] = req.content_type
        message = RawRequestMessage(
            method=req.method.upper(),
            path=path,
            version=HttpVersion11,
            headers=CIMultiDictProxy(headers),
            raw_headers=tuple((k.encode(), v.encode()) for k, v in headers.items()),
            should_close=False,
            compression=None,
            upgrade=False,
            chunked=False,
            url=URL(path),
        )
        proto = _Protocol()
        request = web.Request(
            message,
            payload,
            proto,  # type: ignore[arg-type]
            proto.writer,  # type: ignore[arg-type]
            _Task(),  # type: ignore[arg-type]
            loop,
            client_max_size=self.app._client_max_size,
        )
        resp = await self.app._handle(request)
        if not isinstance(resp, web.Response):  # pragma: no cover (streamed answers)
            raise PeerError(f"{req.path}: streamed answers are not supported in process")
        body = resp.body
        data = bytes(body) if isinstance(body, bytes | bytearray) else b""
        return Response(resp.status, data, {k.lower(): v for k, v in resp.headers.items()})


class _Transport:
    """The little of an asyncio transport that aiohttp's request reads."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in ("peername", "sockname"):
            return ("127.0.0.1", 40000)
        return default

    def is_closing(self) -> bool:
        return False


class _Writer:
    def __init__(self, transport: _Transport) -> None:
        self.transport = transport
        self.buffer_size = 0
        self.output_size = 0

    async def write_headers(self, *args: Any) -> None:  # pragma: no cover (not streamed)
        return None

    async def write(self, *args: Any) -> None:  # pragma: no cover
        return None

    async def write_eof(self, *args: Any) -> None:  # pragma: no cover
        return None

    async def drain(self) -> None:
        return None


class _Protocol:
    max_field_size = 8190
    max_line_length = 8190
    max_headers = 128
    ssl_context = None

    def __init__(self) -> None:
        self.transport = _Transport()
        self.writer = _Writer(self.transport)
        self.peername = self.transport.get_extra_info("peername")
        self.sockname = self.peername

    def __getattr__(self, name: str) -> Any:  # pragma: no cover (flow control hooks)
        def noop(*args: Any, **kwargs: Any) -> None:
            return None

        return noop


class _Task:
    def cancel(self, *args: Any) -> bool:  # pragma: no cover
        return False


@dataclass
class _Stats:
    requests: int = 0
    bytes_in: int = 0


@dataclass
class MemoryNetwork:
    """Nodes by base URL, the links between them, and per-node faults.

    Links are undirected: :meth:`cut` drops every request between two nodes, both ways, with
    :class:`~node.errors.PeerError` (as an unreachable host would), until :meth:`heal`.
    """

    handlers: dict[str, Handler] = field(default_factory=dict)
    _cut: set[frozenset[str]] = field(default_factory=set)
    stats: dict[str, _Stats] = field(default_factory=dict)

    @staticmethod
    def _norm(url: str) -> str:
        return url.rstrip("/") + "/"

    def register(self, url: str, handler: Handler) -> None:
        """Serve ``url`` with ``handler`` (replacing any earlier one)."""
        self.handlers[self._norm(url)] = handler

    def wrap(self, url: str, wrapper: Callable[[Handler], Handler]) -> None:
        """Replace the handler of ``url`` by ``wrapper(handler)`` (inject a fault)."""
        url = self._norm(url)
        self.handlers[url] = wrapper(self.handlers[url])

    def cut(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b``."""
        self._cut.add(frozenset((self._norm(a), self._norm(b))))

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Heal the link between ``a`` and ``b``, or every link when called without arguments."""
        if a is None or b is None:
            self._cut.clear()
        else:
            self._cut.discard(frozenset((self._norm(a), self._norm(b))))

    def partition(self, *groups: list[str]) -> None:
        """Cut every link between nodes of different ``groups``."""
        for i, ga in enumerate(groups):
            for gb in groups[i + 1 :]:
                for a in ga:
                    for b in gb:
                        self.cut(a, b)

    def connected(self, a: str, b: str) -> bool:
        """True unless the link between ``a`` and ``b`` is cut."""
        return frozenset((self._norm(a), self._norm(b))) not in self._cut

    def transport(self, source: str, target: str) -> MemoryTransport:
        """A transport from node ``source`` to the node at ``target``."""
        return MemoryTransport(self, self._norm(source), self._norm(target))


class MemoryTransport:
    """A :class:`~node.client.Transport` over a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, source: str, target: str) -> None:
        self.network = network
        self.source = source
        self.target = target

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Response:
        """Deliver the request to the target's handler; PeerError if the link is cut."""
        net = self.network
        if not net.connected(self.source, self.target):
            raise PeerError(f"{self.target}: unreachable (link cut)")
        handler = net.handlers.get(self.target)
        if handler is None:
            raise PeerError(f"{self.target}: no such node")
        req = PeerRequest(self.source, method, path, dict(params or {}), body, content_type)
        resp = await handler(req)
        st = net.stats.setdefault(self.source, _Stats())
        st.requests += 1
        st.bytes_in += len(resp.body)
        if not net.connected(self.source, self.target):
            raise PeerError(f"{self.target}: connection lost (link cut)")
        return resp

    async def close(self) -> None:
        """Nothing to release."""
