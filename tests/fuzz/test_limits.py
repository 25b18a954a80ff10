"""Resource limits of a served node: slow senders, oversized bodies and pages, SQL and paths.

These are the bounds docs/SECURITY.md relies on. The network tests run a real aiohttp server on
loopback with raw sockets, because a slow sender is a transport-level attack.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import time
from pathlib import Path

import pytest

from node.server import create_app

ROOT = Path(__file__).resolve().parents[2]


async def _serve(node, aiohttp_server):
    return await aiohttp_server(create_app(node), **_runner_kwargs(node))


def _runner_kwargs(node) -> dict:
    # The same handler settings `liquide node serve` uses (node.server.runner_kwargs).
    from node.server import runner_kwargs

    return runner_kwargs(node.config)


async def _closed_within(
    port: int, payload: bytes, seconds: float, *, first_chunk: bool = False
) -> tuple[bool, bytes]:
    """Send ``payload``; True (with what came back) if the server answered or closed in time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if payload:
            writer.write(payload)
            await writer.drain()
        try:
            read = reader.read(65536) if first_chunk else reader.read()
            data = await asyncio.wait_for(read, seconds)
        except TimeoutError:
            return False, b""
        return True, data
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def test_a_silent_connection_is_closed_after_the_read_timeout(civic, aiohttp_server) -> None:
    c = civic(1, read_timeout_s=1.0)
    server = await _serve(c.node, aiohttp_server)
    t0 = time.monotonic()
    closed, _ = await _closed_within(server.port, b"", 10)
    assert closed
    assert time.monotonic() - t0 < 8


async def test_headers_trickled_slowly_are_cut_off(civic, aiohttp_server) -> None:
    c = civic(1, read_timeout_s=1.0)
    server = await _serve(c.node, aiohttp_server)
    closed, _ = await _closed_within(server.port, b"GET /v1/logs HTTP/1.1\r\nHost: x\r\n", 10)
    assert closed


async def test_a_body_that_stalls_gets_408_and_stores_nothing(civic, aiohttp_server) -> None:
    c = civic(1, read_timeout_s=1.0)
    server = await _serve(c.node, aiohttp_server)
    before = c.node.reader.log(c.node.origin).size
    head = b'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"v":1'
    closed, data = await _closed_within(server.port, head, 10, first_chunk=True)
    assert closed
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b'"code":"timeout"' in data.replace(b" ", b"")
    assert c.node.reader.log(c.node.origin).size == before


async def test_oversized_bodies_are_413_before_reading_them(civic, aiohttp_client) -> None:
    c = civic(1, max_body_bytes=2048)
    client = await aiohttp_client(create_app(c.node))
    before = c.node.reader.log(c.node.origin).size
    resp = await client.post("/v1/events", data=b"x" * 5000)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    assert c.node.reader.log(c.node.origin).size == before


async def test_pages_are_cut_to_the_page_size(civic, aiohttp_client) -> None:
    c = civic(3, page_size=2)
    client = await aiohttp_client(create_app(c.node))
    origin = c.node.origin
    resp = await client.get(f"/v1/logs/{origin}/entries", params={"start": "0", "end": "1000"})
    assert resp.status == 200
    assert int(resp.headers["Liquide-Count"]) == 2
    resp = await client.get("/v1/issues", params={"limit": "3"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_param"


# Static checks ----------------------------------------------------------------------------------

_SQL_CALLS = {"execute", "executemany", "executescript"}
# Names that may appear inside an f-string SQL text: fixed column lists and fixed verbs chosen
# by code, never by input (each was read when this list was written).
_SQL_FIXED_NAMES = {"_ISSUE_COLS", "_api._ISSUE_COLS", "verb", "name", "t"}


@functools.cache
def _trees() -> tuple[tuple[Path, ast.Module], ...]:
    """Every module of node/ and protocol/ with its syntax tree (parsed once)."""
    files = sorted((ROOT / "node").rglob("*.py")) + sorted((ROOT / "protocol").rglob("*.py"))
    return tuple((p, ast.parse(p.read_text(encoding="utf-8"))) for p in files)


def test_sql_text_is_never_built_from_values() -> None:
    """Every SQL call passes values as bound parameters; f-strings only splice fixed names."""
    offenders = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _SQL_CALLS
                and node.args
            ):
                continue
            sql = node.args[0]
            if isinstance(sql, ast.BinOp | ast.Call) or (
                isinstance(sql, ast.JoinedStr)
                and any(
                    isinstance(v, ast.FormattedValue)
                    and ast.unparse(v.value) not in _SQL_FIXED_NAMES
                    for v in sql.values
                )
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(sql)[:80]}")
    assert not offenders, offenders


def test_the_pragma_helper_takes_only_fixed_names() -> None:
    """The one f-string in the store (``PRAGMA {name}``) is called with literals only."""
    tree = dict(_trees())[ROOT / "node" / "store.py"]
    helper = next(
        n for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and "PRAGMA {name}" in ast.unparse(n)
    )  # fmt: skip
    callers = [
        n for _p, t in _trees() for n in ast.walk(t)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == helper.name
    ]  # fmt: skip
    assert all(isinstance(c.args[0], ast.Constant) for c in callers if c.args)


def test_export_paths_stay_inside_the_export_directory(tmp_path: Path) -> None:
    """An origin is data from a log: ``.``, ``..`` or a slash never escapes ``logs/``."""
    from node._cli_observer import _origin_dir

    for origin in ("..", ".", "../../etc", "a/../../b", "x\\..\\y", "%2e%2e"):
        name = _origin_dir(origin)
        assert "/" not in name, origin
        assert "\\" not in name, origin
        assert name not in (".", "..", ""), origin
        target = (tmp_path / "logs" / name).resolve()
        assert target.parent == (tmp_path / "logs").resolve(), origin


@pytest.mark.parametrize(
    "field", ["max_body_bytes", "max_batch_bytes", "page_size", "read_timeout_s"]
)
def test_every_bound_is_itself_bounded(field: str) -> None:
    """An operator cannot configure a bound away (0, or beyond its ceiling)."""
    from node.config import NodeConfig
    from node.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        NodeConfig(origin="x.example/liquide", **{field: 10**12})


def test_a_city_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    """The node will not run with a secret key that group or others can read (mode 0600)."""
    import os

    from node._datadir import init_data_dir, load_key
    from node.config import KEY_FILE
    from node.errors import ConfigError

    init_data_dir(tmp_path / "n", "x.example/liquide")
    key_file = tmp_path / "n" / KEY_FILE
    assert key_file.stat().st_mode & 0o077 == 0
    load_key(tmp_path / "n")
    os.chmod(key_file, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(tmp_path / "n")


async def test_a_witness_request_split_across_packets_is_read_whole(civic, aiohttp_server) -> None:
    """A slow link delivers an add-checkpoint body in pieces: the witness reads all of it (here,
    to answer 404 for an origin it does not know), not a 400 for the first piece alone."""
    from protocol._witness import format_add_checkpoint
    from protocol.checkpoint import Checkpoint, sign_checkpoint
    from protocol.merkle import MemoryTree

    from ._gen import sk

    c = civic(1)
    server = await _serve(c.node, aiohttp_server)
    tree = MemoryTree([])
    note = sign_checkpoint(Checkpoint("nobody.example/log", 0, tree.root()), sk("nobody"))
    body = format_add_checkpoint(0, [], note.to_text())
    head = (
        f"POST /v1/witness/add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: text/plain\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + body[:20])
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(body[20:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 404"), answer[:300]
