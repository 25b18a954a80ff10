"""The federation's commands: peers, joining assemblies, adopting issues, and the demo.

* ``liquide node peer add URL --origin NAME --key VKEY`` pins a peer (its log origin and its C2SP
  verifier key; ``--key-file`` reads the key from a file, such as the JSON that
  ``node init --json`` or ``node status --json`` prints), ``peer list [--json]``,
  ``peer remove URL``;
* ``liquide admin assembly join ID [--from URL]`` joins an assembly defined by another member
  city: the definition is looked up in the logs this node holds, or fetched from ``--from`` (any
  node: the id is the hash of the definition, so the source need not be trusted);
* ``liquide admin issue adopt ID`` adopts an issue of a joined assembly (automatic while the
  node serves; this is for an offline node or to force it);
* ``liquide demo`` (:mod:`node._demo`).

Like the other admin commands they go through the serving node's admin socket, or act on the
data directory directly when no node serves it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from ._cli_admin import _report, admin_group, assembly_group, issue_group, json_option, run_admin
from ._cli_node import data_option, node_group
from .errors import RequestError

__all__ = ["peer_group", "register_federation"]


def _load_federation() -> None:
    # Registers the federation's admin operations with the admin socket's table.
    from . import _federation  # noqa: F401


def _read_key_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise click.BadParameter(f"{path} is not JSON") from None
        vkey = doc.get("vkey") if isinstance(doc, dict) else None
        if not isinstance(vkey, str):
            raise click.BadParameter(f'{path} has no "vkey" field')
        return vkey
    return text.splitlines()[0].strip() if text else ""


@click.group("peer")
def peer_group() -> None:
    """Peers: the neighbouring nodes this node pulls from and pushes checkpoints to."""


@peer_group.command("add")
@click.argument("url")
@click.option("--origin", required=True, help="The peer's log origin.")
@click.option("--key", "key", default=None, help="The peer's C2SP verifier key (or lqpk1…).")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='Read the key from a file: a verifier key, or JSON with a "vkey" field.',
)
@data_option
@json_option
def peer_add_cmd(  # noqa: PLR0917 (click passes one argument per option)
    url: str, origin: str, key: str | None, key_file: Path | None, data_dir: Path, as_json: bool
) -> None:
    """Pin the peer at URL with its origin and key; trust comes from this pin only."""
    _load_federation()
    if (key is None) == (key_file is None):
        raise click.UsageError("give exactly one of --key and --key-file")
    vkey = key if key is not None else _read_key_file(key_file)  # type: ignore[arg-type]
    out = run_admin(data_dir, "peer.add", {"url": url, "origin": origin, "key": vkey})
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
    else:
        click.echo(f"peer {out['url']} pinned as {out['origin']} ({out['vkey']})")


@peer_group.command("list")
@data_option
@json_option
def peer_list_cmd(data_dir: Path, as_json: bool) -> None:
    """List the pinned peers and how the last sync with each went."""
    _load_federation()
    out = run_admin(data_dir, "peer.list", {})
    peers: list[dict[str, Any]] = out["peers"]
    if as_json:
        click.echo(json.dumps(peers, indent=2, sort_keys=True))
        return
    if not peers:
        click.echo("no peers")
    for p in peers:
        state = f"error: {p['last_error']}" if p.get("last_error") else "ok"
        click.echo(f"{p['url']}  {p['origin']}  {p['vkey']}  {state}")


@peer_group.command("remove")
@click.argument("url")
@data_option
@json_option
def peer_remove_cmd(url: str, data_dir: Path, as_json: bool) -> None:
    """Forget the peer at URL."""
    _load_federation()
    out = run_admin(data_dir, "peer.remove", {"url": url})
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
    else:
        click.echo(f"peer {out['url']} removed")


async def _fetch_event(url: str, event_id: str) -> dict[str, Any]:
    from .client import NodeClient

    async with NodeClient(url) as client:
        got = await client.get_json(f"/v1/events/{event_id}")
    event = got.get("event") if isinstance(got, dict) else None
    if not isinstance(event, dict):
        raise RequestError(f"{url} answered without an event")
    return event


@assembly_group.command("join")
@click.argument("assembly")
@click.option(
    "--from",
    "source",
    default=None,
    metavar="URL",
    help="Fetch the definition from this node (any node holding it; it is checked by its id).",
)
@data_option
@json_option
def assembly_join_cmd(assembly: str, source: str | None, data_dir: Path, as_json: bool) -> None:
    """Join ASSEMBLY (its id), defined by another member city."""
    _load_federation()
    args: dict[str, Any] = {"assembly": assembly}
    if source is not None:
        args["definition"] = asyncio.run(_fetch_event(source, assembly))
    _report(run_admin(data_dir, "assembly.join", args), as_json, f"joined assembly {assembly}")


@issue_group.command("adopt")
@click.argument("issue")
@data_option
@json_option
def issue_adopt_cmd(issue: str, data_dir: Path, as_json: bool) -> None:
    """Adopt ISSUE of a joined assembly (automatic while the node serves)."""
    _load_federation()
    _report(run_admin(data_dir, "issue.adopt", {"issue": issue}), as_json, f"adopted {issue}")


def register_federation(main: click.Group) -> None:
    """Add the federation's commands to the CLI tree."""
    from ._demo import demo_cmd

    node_group.add_command(peer_group)
    main.add_command(demo_cmd)
    _ = admin_group  # the join and adopt commands are attached to its subgroups above
