"""``liquide submit FILE``: hand an event signed offline (``wallet … --offline FILE``) to a node.

The event is checked first (canonical form, fields, the author's signature), then posted to the
home node of the wallet (``--name``), or to ``--node URL``. The receipt is verified against the
node key pinned by ``wallet use`` (or ``--node-key``, or the key the node announces, whose
fingerprint is then shown) or a key its handovers named (docs/SECURITY.md §3.3), printed on
stdout, and, when the wallet holds the event's author
key, recorded for ``liquide wallet check``.

Exit codes: 0 accepted, 1 refused or unverifiable, 2 usage.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from protocol.events import Event

from ._cli_wallet import (
    Wallet,
    WalletConfig,
    WalletConfigError,
    _client,
    _current_wallet,
    _name_option,
    _node_key_option,
    _pin_of,
    _say,
    validate_node_url,
)
from ._wallet_ops import (
    NodePin,
    ReceiptError,
    Record,
    VerifiedLog,
    WalletOpsError,
    describe_event,
    explain_node_error,
    load_event_file,
    submit_signed,
    verify_receipt_following,
)
from ._wallet_state import ChainHead
from .errors import ApiError, PeerError

__all__ = ["submit_cmd"]


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read(2 << 20)
    try:
        with Path(file).open("rb") as f:
            return f.read(2 << 20)
    except OSError as exc:
        raise WalletOpsError(f"cannot read {file}: {exc.strerror}") from None


def _wallet_config(w: Wallet) -> WalletConfig:
    try:
        return w.config()
    except WalletConfigError:
        return WalletConfig()


def _record(w: Wallet, ev: Event, pin: NodePin, receipt: dict[str, Any]) -> None:
    """Keep the receipt in the wallet that holds the author's key, and advance its chain head."""
    if not w.has_key():
        return
    me = w.keystore().public
    if me.to_text() != ev.author:
        return
    w.events().put(Record(ev, pin.origin, receipt))
    state = w.chain_state()
    if state.head(me).seq < ev.seq:
        w.save_chain_state(state.with_head(me, ChainHead(ev.seq, ev.id)))


@click.command("submit")
@click.argument("file", metavar="FILE")
@_name_option
@click.option(
    "--node",
    "node_url",
    metavar="URL",
    envvar="LIQUIDE_SUBMIT_NODE",
    show_envvar=True,
    help="The node to send it to (default: the wallet's home node).",
)
@_node_key_option("LIQUIDE_SUBMIT_NODE_KEY")
def submit_cmd(file: str, name: str, node_url: str | None, node_key: str | None) -> None:
    """Send an event signed with `--offline FILE` to the home node and print its receipt.

    FILE is the file written by `liquide wallet delegate|block|revoke|vote|withdraw --offline`
    (or - for stdin). The receipt on stdout is the node's signed promise to publish the event.
    """
    ev = load_event_file(_read(file), "stdin" if file == "-" else file)
    w = _current_wallet(name)
    config = _wallet_config(w)
    if node_url is not None:
        try:
            url = validate_node_url(node_url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--node") from None
    elif config.node is not None:
        url = config.node
    else:
        raise WalletOpsError(
            f"no node to send to: wallet {name!r} has no home node",
            hint="give --node URL, or run `liquide wallet use NODE_URL`",
        )
    pinned = config.pin() if url == config.node and node_key is None else None

    async def go() -> tuple[NodePin, dict[str, Any], VerifiedLog | None, ReceiptError | None]:
        async with _client(url) as client:
            pin = pinned
            if pin is None:
                pin = await _pin_of(client, url, node_key)
                if node_key is None:
                    _say(
                        f"the node announces the key of {pin.origin}, fingerprint"
                        f" {pin.fingerprint}: compare it with the one your city publishes"
                    )
            try:
                receipt = await submit_signed(client, ev)
            except ApiError as exc:
                if exc.code in ("seq_used", "seq_reused", "chain_gap", "chain_prev"):
                    head = exc.details.get("head")
                    named = (
                        f" (its chain head is seq {head.get('seq')})"
                        if isinstance(head, dict)
                        else ""
                    )
                    raise WalletOpsError(
                        f"the node refused the event at seq {ev.seq}: your chain moved on since it"
                        f" was signed{named}",
                        hint="sign the act again with the wallet (the node keeps only one event"
                        " per seq); `liquide wallet status` recovers the chain state",
                        code=exc.code,
                    ) from None
                raise
            # Verified here (following the node's handovers if need be), raised once recorded.
            keys = w.city_keys(pin).keys
            try:
                _, log = await verify_receipt_following(client, receipt, pin, keys, event_id=ev.id)
            except ReceiptError as exc:
                return pin, receipt, None, exc
            return pin, receipt, log, None

    try:
        pin, receipt, log, bad = asyncio.run(go())
    except PeerError as exc:
        raise explain_node_error(exc, url) from None
    if pin.origin == config.origin or config.pin() is None:
        _record(w, ev, pin, receipt)
    if bad is not None:
        raise bad
    if log is not None and pin == config.pin():
        w.follow(pin, log.chain(), log.size)
    _say(
        f"{describe_event(ev)}: accepted at index {receipt.get('index')} of {pin.origin};"
        " receipt signature verified"
    )
    click.echo(json.dumps(receipt, indent=2))
