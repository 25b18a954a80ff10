"""The reference server of the node benchmark: a bare aiohttp handler doing one verify per request.

It reads the body, verifies one Ed25519 signature with PyNaCl and answers a small JSON object,
on 127.0.0.1 and an ephemeral port, whose address it prints first. Nothing else: no decoding,
no storage, no receipt. The node benchmark drives it with the same client as the node.
"""

from __future__ import annotations

import socket

import nacl.bindings
from aiohttp import web

_PK, _SK = nacl.bindings.crypto_sign_seed_keypair(b"\x02" * 32)
_SIGNED = nacl.bindings.crypto_sign(b"\x00" * 300, _SK)


async def _handle(request: web.Request) -> web.Response:
    await request.read()
    nacl.bindings.crypto_sign_open(_SIGNED, _PK)
    return web.json_response({"ok": True}, status=201)


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/events", _handle)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
