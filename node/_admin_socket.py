"""The admin Unix socket: how admin commands reach a serving node, keeping one writer.

While ``liquide node serve`` runs it listens on ``<data dir>/admin.sock`` (mode 0600, inside the
0700 data directory), never on the network. A request is ``POST /admin/<op>`` with a JSON object
of arguments; the operation (:mod:`node._registrar`) runs on the writer thread between append
groups and the answer is its JSON result, or ``{"error": {"code", "message"}}``.

:func:`call` is the client side. It returns None when no node is serving the directory (no
socket, or a stale one), and the CLI then acts on the database directly, taking the writer
lock itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from crypto import LiquideError

from ._node import Node
from ._registrar import run_operation
from .config import SOCKET_FILE
from .errors import AdminError, ApiError

__all__ = ["call", "socket_path", "start_admin"]

_NODE = web.AppKey("admin_node", Node)


def socket_path(data_dir: Path) -> Path:
    """Where the admin socket of ``data_dir`` lives."""
    return Path(data_dir) / SOCKET_FILE


async def _handle(request: web.Request) -> web.Response:
    from .server import error_for, error_response

    node = request.app[_NODE]
    op = request.match_info["op"]
    try:
        args = json.loads(await request.read() or b"{}")
    except ValueError:
        return error_response(400, "malformed_json", "admin arguments are not JSON")
    if node.ingest is None:
        return error_response(503, "unavailable", "the node is stopping")
    try:
        result = await node.ingest.call(lambda: run_operation(node.writer, op, args))
    except LiquideError as exc:
        return error_for(exc)
    return web.json_response(result)


async def start_admin(node: Node) -> web.AppRunner:
    """Listen on the data directory's admin socket; return the runner (``cleanup()`` to stop)."""
    app = web.Application(client_max_size=1 << 20)
    app[_NODE] = node
    app.router.add_post("/admin/{op}", _handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    path = socket_path(node.data_dir)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # stale: we hold the writer lock, so no live node owns it
    old = os.umask(0o177)
    try:
        site = web.UnixSite(runner, str(path))
        await site.start()
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return runner


def _alive(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1)
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


async def _post(path: Path, op: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    connector = aiohttp.UnixConnector(path=str(path))
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session,
        session.post(f"http://admin/admin/{op}", json=args) as resp,
    ):
        body = await resp.read()
    try:
        data = json.loads(body)
    except ValueError:
        raise AdminError(f"the node answered HTTP {resp.status} without JSON") from None
    if resp.status >= 400:
        err = data.get("error", {}) if isinstance(data, dict) else {}
        raise ApiError(
            str(err.get("message", f"HTTP {resp.status}")),
            status=resp.status,
            code=str(err.get("code", "admin_error")),
        )
    if not isinstance(data, dict):
        raise AdminError("the node's answer is not a JSON object")
    return data


def call(
    data_dir: Path, op: str, args: dict[str, Any], *, timeout: float = 30.0
) -> dict[str, Any] | None:
    """Run ``op`` on the node serving ``data_dir``; None if no node serves it.

    Raises the node's refusal as :class:`~node.errors.ApiError`, and :class:`AdminError` if the
    socket answers but the exchange fails.
    """
    path = socket_path(data_dir)
    if not path.exists() or not _alive(path):
        return None
    try:
        return asyncio.run(_post(path, op, args, timeout))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise AdminError(f"the admin socket {path} failed: {exc}") from None
