"""The HTTP client of a Liquide node's public API, used by the wallet, the observer and peers.

Two layers:

* :class:`Transport` — the small protocol through which every request goes: ``request(method,
  path, params, body, content_type) -> Response``. :class:`HttpTransport` is the real one
  (aiohttp, with timeouts and a bound on response size, so that a slow or hostile node cannot
  stall or exhaust its caller). Tests and simulated federations inject their own.
* :class:`NodeClient` — one method per endpoint of ``docs/PROTOCOL.md`` (HTTP section). Methods
  return plain values (dicts as the node sent them, leaf bytes, proof hashes as bytes, signed
  notes as text); the caller verifies them with ``protocol/`` code, because nothing a node says
  is trusted.

Errors: an HTTP error body ``{"error": {"code", "message", …}}`` raises
:class:`~node.errors.ApiError` with its status, code and extra details (a 409 ``seq_used``
carries ``details["head"] = {"seq", "event_id"}``, from which a wallet recovers its chain).
Unreachable nodes, timeouts, oversized or malformed answers raise :class:`~node.errors.PeerError`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import aiohttp

from .errors import ApiError, PeerError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "HttpTransport",
    "NodeClient",
    "Response",
    "Transport",
]

DEFAULT_MAX_RESPONSE_BYTES = 64 << 20
NDJSON = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class Response:
    """A node's answer: status, headers (lower-case names) and the whole body."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Transport(Protocol):
    """How a :class:`NodeClient` reaches a node; inject a fake for in-process tests."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Response:
        """Send one request to ``path`` (starting with ``/``); raise PeerError if unreachable."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class HttpTransport:
    """A :class:`Transport` over aiohttp with connect/read/total timeouts and a size bound."""

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        unix_socket: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None
        self._timeout = timeout or aiohttp.ClientTimeout(total=60, connect=10, sock_read=20)
        self._max = max_response_bytes
        self._unix = unix_socket

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector: aiohttp.BaseConnector | None = (
                aiohttp.UnixConnector(path=self._unix) if self._unix else None
            )
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Response:
        """Send the request; read at most ``max_response_bytes`` of the answer."""
        headers = {"Content-Type": content_type} if content_type else None
        url = self.base_url + path
        try:
            async with self._get_session().request(
                method, url, params=params, data=body, headers=headers
            ) as resp:
                length = resp.content_length
                if length is not None and length > self._max:
                    raise PeerError(
                        f"{url}: answer of {length} bytes exceeds the bound of {self._max}"
                    )
                data = await resp.content.read(self._max + 1)
                while len(data) <= self._max:
                    more = await resp.content.read(self._max + 1 - len(data))
                    if not more:
                        break
                    data += more
                if len(data) > self._max:
                    raise PeerError(f"{url}: answer exceeds the bound of {self._max} bytes")
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
                return Response(resp.status, data, hdrs)
        except (aiohttp.ClientError, OSError) as exc:
            raise PeerError(f"{url}: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise PeerError(f"{url}: timed out") from None

    async def close(self) -> None:
        """Close the session if this transport created it."""
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None


def _b64(s: object, what: str) -> bytes:
    if not isinstance(s, str):
        raise PeerError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise PeerError(f"{what} is not valid base64") from None


class NodeClient:
    """A client of one node's ``/v1`` API; use ``async with NodeClient(url) as c``.

    ``target`` is a base URL (``http://host:port/``) or any :class:`Transport`.
    """

    def __init__(self, target: str | Transport, **transport_options: Any) -> None:
        self.transport: Transport = (
            HttpTransport(target, **transport_options) if isinstance(target, str) else target
        )

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the transport."""
        await self.transport.close()

    # Plumbing ---------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Response:
        resp = await self.transport.request(
            method, path, params=params, body=body, content_type=content_type
        )
        if resp.status >= 400:
            raise _api_error(resp, path)
        return resp

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self._call(method, path, **kw)
        try:
            return json.loads(resp.body)
        except (ValueError, UnicodeDecodeError):
            raise PeerError(f"{path}: the answer is not JSON") from None

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET any JSON endpoint (for endpoints added by later modules)."""
        return await self._json("GET", path, params=params)

    async def post_json(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> Any:
        """POST raw bytes to any JSON endpoint."""
        return await self._json("POST", path, body=body, content_type=content_type)

    # Events -------------------------------------------------------------------------------------

    async def submit(self, event: bytes | Any) -> dict[str, Any]:
        """POST one event (its canonical signed bytes, or an object with ``encode()``).

        Returns the receipt dict the node signed. Raises :class:`ApiError` if refused (409
        ``seq_used`` names the chain head in ``details["head"]``).
        """
        data = event if isinstance(event, bytes) else event.encode()
        out = await self._json("POST", "/v1/events", body=data, content_type="application/json")
        return dict(out["receipt"])

    async def submit_batch(self, events: Sequence[bytes | Any]) -> list[dict[str, Any]]:
        """POST many events as NDJSON; return one result per event, in order.

        Each result is ``{"receipt": {...}, …}`` or ``{"error": {"code", "message", …}}``. A new
        event's receipt has the batch form (docs/PROTOCOL.md §6.4.1), a repeated one the form
        first issued: check either with :func:`protocol.checkpoint.parse_receipt` and its
        ``verify`` (a batch receipt also checks the event's own bytes, ``leaf=``).
        """
        lines = [e if isinstance(e, bytes) else e.encode() for e in events]
        out = await self._json(
            "POST", "/v1/events:batch", body=b"\n".join(lines) + b"\n", content_type=NDJSON
        )
        results = out.get("results") if isinstance(out, dict) else None
        if not isinstance(results, list) or len(results) != len(lines):
            raise PeerError("events:batch answered with the wrong number of results")
        return results

    async def receipt(self, event_id: str) -> dict[str, Any]:
        """``GET /v1/receipts/{id}``: receipt, index and, once checkpointed, checkpoint and proof."""
        return dict(await self._json("GET", f"/v1/receipts/{event_id}"))

    # Logs ---------------------------------------------------------------------------------------

    async def logs(self) -> list[dict[str, Any]]:
        """``GET /v1/logs``: every origin held with its latest checkpoint and cosignatures."""
        out = await self._json("GET", "/v1/logs")
        return list(out["logs"])

    async def checkpoint(self, origin: str, size: int | None = None) -> str:
        """The signed checkpoint note of ``origin`` (latest, or at ``size``) with cosignatures."""
        params = None if size is None else {"size": str(size)}
        resp = await self._call("GET", f"/v1/logs/{origin}/checkpoint", params=params)
        try:
            return resp.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PeerError("the checkpoint is not UTF-8 text") from None

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        """Leaves ``[start, end)`` of ``origin`` (possibly fewer: pages are bounded)."""
        resp = await self._call(
            "GET", f"/v1/logs/{origin}/entries", params={"start": str(start), "end": str(end)}
        )
        if not resp.body:
            return []
        lines = resp.body.split(b"\n")
        if lines[-1] != b"":
            raise PeerError("entries page does not end with a newline")
        lines.pop()
        if len(lines) > max(end - start, 0):
            raise PeerError(f"entries page has {len(lines)} lines for {end - start} asked")
        return lines

    async def inclusion_proof(self, origin: str, index: int, size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf ``index`` in ``origin``'s tree of ``size``."""
        out = await self._json(
            "GET",
            f"/v1/logs/{origin}/proof/inclusion",
            params={"index": str(index), "size": str(size)},
        )
        return [_b64(h, "proof hash") for h in out["proof"]]

    async def consistency_proof(self, origin: str, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 9162 consistency proof between two sizes of ``origin``'s log."""
        out = await self._json(
            "GET",
            f"/v1/logs/{origin}/proof/consistency",
            params={"old": str(old_size), "new": str(new_size)},
        )
        return [_b64(h, "proof hash") for h in out["proof"]]

    # Governance ---------------------------------------------------------------------------------

    async def assemblies(self) -> list[dict[str, Any]]:
        """``GET /v1/assemblies``."""
        return list((await self._json("GET", "/v1/assemblies"))["assemblies"])

    async def areas(self, assembly: str | None = None) -> list[dict[str, Any]]:
        """``GET /v1/areas`` (optionally of one assembly)."""
        params = None if assembly is None else {"assembly": assembly}
        return list((await self._json("GET", "/v1/areas", params=params))["areas"])

    async def issues(
        self, *, area: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /v1/issues`` (filters: ``area``, ``state`` = open|closed|sealed)."""
        params = {k: v for k, v in (("area", area), ("state", state)) if v is not None}
        return list((await self._json("GET", "/v1/issues", params=params or None))["issues"])

    async def issue(self, issue_id: str) -> dict[str, Any]:
        """``GET /v1/issues/{id}``."""
        return dict(await self._json("GET", f"/v1/issues/{issue_id}"))

    async def tally(self, issue_id: str) -> dict[str, Any]:
        """``GET /v1/issues/{id}/tally`` (409 until sealed)."""
        return dict(await self._json("GET", f"/v1/issues/{issue_id}/tally"))

    async def voter(self, key: str) -> dict[str, Any]:
        """``GET /v1/voters/{key}``: enrolment, delegations per scope, chain head."""
        return dict(await self._json("GET", f"/v1/voters/{key}"))

    async def explain(self, key: str, issue_id: str) -> dict[str, Any]:
        """``GET /v1/voters/{key}/explain/{issue}``: how the voter's weight went."""
        return dict(await self._json("GET", f"/v1/voters/{key}/explain/{issue_id}"))

    async def proofs(self) -> list[dict[str, Any]]:
        """``GET /v1/proofs``: the misbehaviour proofs the node holds."""
        return list((await self._json("GET", "/v1/proofs"))["proofs"])

    async def health(self) -> bool:
        """True if ``/healthz`` answers 200."""
        try:
            await self._call("GET", "/healthz")
        except PeerError:
            return False
        return True

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll ``/readyz`` until 200; raise :class:`PeerError` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await self._call("GET", "/readyz")
                return
            except PeerError:
                if loop.time() > deadline:
                    raise
            await asyncio.sleep(0.05)


def _api_error(resp: Response, path: str) -> PeerError:
    try:
        err = json.loads(resp.body)["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return PeerError(f"{path}: HTTP {resp.status} without an error body")
    details = {k: v for k, v in err.items() if k not in ("code", "message")}
    return ApiError(
        f"{message} (HTTP {resp.status})", status=resp.status, code=code, details=details
    )
