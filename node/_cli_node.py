"""``liquide node …``: create, run and inspect a city node.

* ``node init --origin NAME`` creates the data directory: the city key, ``liquide.toml`` and the
  database with a signed empty checkpoint.
* ``node serve`` runs the public HTTP API and the admin socket until SIGTERM/SIGINT. Its first
  line on stdout is exactly the bound base URL, ``http://HOST:PORT/`` (``--port 0`` picks a free
  port); logs go to stderr.
* ``node status`` shows the log, its checkpoint and governance counts (``--json`` for scripts).

Every command takes ``--data DIR`` (``$LIQUIDE_DATA``; default ``node/`` under ``$LIQUIDE_HOME``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
from pathlib import Path
from typing import Any

import click

from .config import default_data_dir, load_config

__all__ = ["data_option", "node_group"]


def _default_data() -> str:
    return str(default_data_dir())


data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LIQUIDE_DATA",
    default=_default_data,
    show_default="node/ under $LIQUIDE_HOME",
    help="The node's data directory ($LIQUIDE_DATA).",
)


@click.group("node")
def node_group() -> None:
    """Run a city node: init, serve, status."""


@node_group.command("init")
@click.option("--origin", required=True, help="The log origin, such as lyon.example/liquide.")
@data_option
@click.option("--host", default=None, help="Address serve binds by default (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port serve binds by default (8470).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init_cmd(
    origin: str, data_dir: Path, host: str | None, port: int | None, as_json: bool
) -> None:
    """Create the city key, the config and the database in --data."""
    from ._datadir import init_data_dir

    settings: dict[str, Any] = {}
    if host is not None:
        settings["host"] = host
    if port is not None:
        settings["port"] = port
    _config, key = init_data_dir(data_dir, origin, **settings)
    vkey = key.public_key.to_vkey(origin)
    if as_json:
        out = {
            "origin": origin,
            "data": str(data_dir),
            "key": key.public_key.to_text(),
            "vkey": vkey,
        }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"initialised {origin} in {data_dir}")
    click.echo(f"city key:     {key.public_key.to_text()}  ({key.public_key.fingerprint()})")
    click.echo(f"verifier key: {vkey}")
    click.echo(f"next: liquide node serve --data {data_dir}")


@node_group.command("serve")
@data_option
@click.option("--host", default=None, help="Address to bind (default: the config's host).")
@click.option("--port", type=int, default=None, help="Port to bind; 0 picks a free port.")
def serve_cmd(data_dir: Path, host: str | None, port: int | None) -> None:
    """Serve the public HTTP API and the admin socket until SIGTERM or SIGINT.

    The first line on stdout is the bound base URL, http://HOST:PORT/.
    """
    from ._node import Node
    from .server import configure_logging, serve

    config = load_config(data_dir)
    configure_logging(config.log_format, config.log_level)
    node = Node.open(data_dir, config=config)
    _tune_gc()
    bind_host = host or config.host
    bind_port = config.port if port is None else port

    def bound(url: str) -> None:
        sys.stdout.write(url + "\n")
        sys.stdout.flush()

    try:
        asyncio.run(serve(node, bind_host, bind_port, on_bound=bound))
    except BaseException:
        # serve() stops the node on every path once the app started; close what may remain.
        if node.ingest is None:
            with contextlib.suppress(Exception):  # already failing: keep the first error
                node.close()
        raise


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running node.

    The node allocates many short-lived objects per event (decoded events, rows, receipts),
    which are freed by reference counting, and keeps a large replay state alive. With the
    default thresholds the collector runs every 700 allocations and its older generations
    rescan that whole state again and again: several microseconds per ingested event. The
    state loaded at start-up is moved out of the collector's sight (``gc.freeze``), and the
    young generation is collected every 50,000 allocations instead.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _status_offline(data_dir: Path) -> dict[str, Any]:
    from .store import Store

    config = load_config(data_dir)
    store = Store.open(data_dir, writer=False)
    try:
        from ._registrar import status_of

        return status_of(store, config.origin)
    finally:
        store.close()


@node_group.command("status")
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(data_dir: Path, as_json: bool) -> None:
    """Show the log size, latest checkpoint and governance counts."""
    from ._admin_socket import call

    out = call(data_dir, "status", {})
    serving = out is not None
    if out is None:
        out = _status_offline(data_dir)
    out = {**out, "serving": serving, "data": str(data_dir)}
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    cp = out["checkpoint"]
    click.echo(f"origin:     {out['origin']}  ({'serving' if serving else 'stopped'})")
    click.echo(f"data:       {data_dir}")
    click.echo(f"verifier:   {out['vkey']}")
    click.echo(f"log size:   {out['size']}")
    click.echo(f"checkpoint: {'none' if cp is None else cp['size']}")
    click.echo(
        f"enrolled {out['enrolled']}, assemblies {out['assemblies']}, areas {out['areas']}, "
        f"issues {out['issues']} ({out['sealed']} sealed), mirrors {out['mirrors']}, "
        f"peers {out['peers']}, proofs {out['proofs']}"
    )
