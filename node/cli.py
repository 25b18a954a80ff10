"""The ``liquide`` command: one console script with a group per role.

Errors are mapped to ``liquide: error: …`` (and ``liquide: hint: …``) on stderr here, at the
edge, with exit codes 0 ok, 1 failure, 2 usage. Each role's commands live in their own module and
are registered below.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Any

import click

from crypto import LiquideError

__all__ = ["main"]


class _Group(click.Group):
    """A click group that turns Liquide errors into one clear line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LiquideError as exc:
            click.echo(f"liquide: error: {exc.message}", err=True)
            hint = getattr(exc, "hint", None)
            if hint:
                click.echo(f"liquide: hint: {hint}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("liquide"), prog_name="liquide")
def main() -> None:
    """Liquide: a federated, verifiable liquid-democracy node for cities.

    Municipality: `node` (run a city node, peers), `admin` (registrar and city admin).
    Citizen: `wallet` (keys, delegations, ballots, checks), `submit`.
    Observer: `trust`, `verify`, `export`, `tally`. Try it all: `demo`.
    """


def _register() -> None:
    # Each role's module adds its commands; imported here so `liquide --help` lists them all.
    # One block per role module, each adding its group or command to `main`.
    from node._cli_submit import submit_cmd
    from node._cli_wallet import wallet

    main.add_command(wallet)
    main.add_command(submit_cmd)

    from node._cli_admin import admin_group
    from node._cli_node import node_group

    main.add_command(node_group)
    main.add_command(admin_group)

    from node._cli_observer import export_cmd, trust_group, verify_cmd

    main.add_command(verify_cmd)
    main.add_command(export_cmd)
    main.add_command(trust_group)

    from node._cli_peer import register_federation

    register_federation(main)

    from node._cli_tally import tally_cmd

    main.add_command(tally_cmd)


_register()
