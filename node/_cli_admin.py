"""``liquide admin …``: the registrar and city-admin commands, acting with the city's key.

While ``node serve`` runs on the data directory, each command goes through its admin Unix
socket, so that the log keeps a single writer; when no node serves it, the command opens the
database itself (taking the writer lock), appends, signs a checkpoint, and closes.

Times (``--opens``, ``--closes``) are ``now``, ``+DURATION`` (``+30m``, ``+2h``, ``+7d``),
Unix seconds, or ISO 8601 (UTC unless an offset is given). Durations are ``90``, ``45s``,
``30m``, ``2h`` or ``7d``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ._cli_node import data_option

__all__ = ["admin_group", "area_group", "assembly_group", "issue_group", "run_admin"]

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``90``, ``45s``, ``30m``, ``2h`` or ``7d``; click's BadParameter otherwise."""
    m = _DURATION.match(text.strip())
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration such as 90, 45s, 30m, 2h or 7d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parse_time(text: str, now: int) -> int:
    """Unix seconds for ``now``, ``+DURATION``, Unix seconds or ISO 8601."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("+"):
        return now + parse_duration(text[1:])
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use now, +2h, Unix seconds or ISO 8601"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _pair(text: str, what: str) -> list[str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise click.BadParameter(f"{text!r}: use {what}")
    return [name, value]


def run_admin(data_dir: Path, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run an admin operation on the node serving ``data_dir``, or offline if none serves it."""
    from ._admin_socket import call

    out = call(data_dir, op, args)
    if out is not None:
        return out
    from ._node import Node
    from ._registrar import run_operation

    node = Node.open(data_dir)
    try:
        result = run_operation(node.writer, op, args)
        node.writer.sign_checkpoint()
        return result
    finally:
        node.close()


def _report(result: dict[str, Any], as_json: bool, what: str) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(f"{what}: event {result['event_id']} at index {result['index']}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@click.group("admin")
def admin_group() -> None:
    """Registrar and city admin: enrol keys, create assemblies, areas and issues, seal, and
    rotate the city key."""


@admin_group.command("enrol")
@click.argument("key")
@click.option("--ref", default=None, help="Opaque registrar reference (no personal data).")
@data_option
@json_option
def enrol_cmd(key: str, ref: str | None, data_dir: Path, as_json: bool) -> None:
    """Enrol a citizen's public key KEY (lqpk1…) after an identity check."""
    _report(run_admin(data_dir, "enrol", {"key": key, "ref": ref}), as_json, f"enrolled {key}")


@admin_group.command("unenrol")
@click.argument("key")
@click.option("--ref", default=None, help="Opaque registrar reference for the removal.")
@data_option
@json_option
def unenrol_cmd(key: str, ref: str | None, data_dir: Path, as_json: bool) -> None:
    """Remove a citizen's key KEY (lost key, moved away); delegations to it become dead ends."""
    _report(run_admin(data_dir, "unenrol", {"key": key, "ref": ref}), as_json, f"unenrolled {key}")


@admin_group.group("assembly")
def assembly_group() -> None:
    """Assemblies: bodies of one or more member cities."""


@assembly_group.command("create")
@click.option("--name", required=True, help="The assembly's name.")
@click.option(
    "--member",
    "members",
    multiple=True,
    metavar="ORIGIN=KEY",
    help="A member city (repeatable); this city is always one.",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="NAME=KEY",
    help="A pinned witness (repeatable).",
)
@click.option(
    "--k", "k", type=click.IntRange(0), default=0, show_default=True, help="Cosignatures required."
)
@click.option(
    "--grace", default="0", show_default=True, help="Grace period after the close (duration)."
)
@data_option
@json_option
def assembly_create_cmd(
    *,
    name: str,
    members: tuple[str, ...],
    witnesses: tuple[str, ...],
    k: int,
    grace: str,
    data_dir: Path,
    as_json: bool,
) -> None:
    """Define an assembly; its id is printed (the id of the defining event)."""
    args = {
        "name": name,
        "members": [_pair(m, "ORIGIN=KEY") for m in members],
        "witnesses": [_pair(w, "NAME=KEY") for w in witnesses],
        "k": k,
        "grace": parse_duration(grace),
    }
    _report(run_admin(data_dir, "assembly.create", args), as_json, f"assembly {name!r} created")


@admin_group.group("area")
def area_group() -> None:
    """Areas: the topics of an assembly."""


@area_group.command("create")
@click.option("--assembly", required=True, help="The assembly id.")
@click.option("--name", required=True, help="The area's name.")
@data_option
@json_option
def area_create_cmd(assembly: str, name: str, data_dir: Path, as_json: bool) -> None:
    """Open an area of an assembly; its id is printed."""
    _report(
        run_admin(data_dir, "area.create", {"assembly": assembly, "name": name}),
        as_json,
        f"area {name!r} created",
    )


@admin_group.group("issue")
def issue_group() -> None:
    """Issues: questions with options, a voting window and a tally policy."""


@issue_group.command("create")
@click.option("--area", required=True, help="The area id.")
@click.option("--title", required=True, help="The issue's title.")
@click.option(
    "--option",
    "options",
    multiple=True,
    required=True,
    metavar="ID=TITLE",
    help="An option (repeatable).",
)
@click.option("--opens", default="now", show_default=True, help="When voting opens.")
@click.option("--closes", default=None, help="When voting closes (or use --duration).")
@click.option(
    "--duration",
    default="7d",
    show_default=True,
    help="Voting time after --opens, if --closes is not given.",
)
@click.option(
    "--rule",
    type=click.Choice(["bfd", "dfd", "minsum"]),
    default=None,
    help="Ranked-delegation rule (default bfd).",
)
@click.option(
    "--policy", "policy_json", default=None, help="Tally policy as JSON (TallyInput policy fields)."
)
@data_option
@json_option
def issue_create_cmd(
    *,
    area: str,
    title: str,
    options: tuple[str, ...],
    opens: str,
    closes: str | None,
    duration: str,
    rule: str | None,
    policy_json: str | None,
    data_dir: Path,
    as_json: bool,
) -> None:
    """Open an issue in an area: options, voting window and policy; its id is printed."""
    now = int(time.time())
    opens_at = parse_time(opens, now)
    closes_at = parse_time(closes, now) if closes else opens_at + parse_duration(duration)
    policy: dict[str, Any] = {}
    if policy_json:
        try:
            policy = json.loads(policy_json)
        except ValueError:
            raise click.BadParameter("--policy must be a JSON object") from None
        if not isinstance(policy, dict):
            raise click.BadParameter("--policy must be a JSON object")
    if rule:
        policy["delegation_rule"] = rule
    args = {
        "area": area,
        "title": title,
        "options": [_pair(o, "ID=TITLE") for o in options],
        "opens": opens_at,
        "closes": closes_at,
        "policy": policy or None,
    }
    _report(run_admin(data_dir, "issue.create", args), as_json, f"issue {title!r} created")


@issue_group.command("seal")
@click.argument("issue")
@data_option
@json_option
def issue_seal_cmd(issue: str, data_dir: Path, as_json: bool) -> None:
    """Seal this city's part of ISSUE's record now (sealing is automatic at the close)."""
    _report(run_admin(data_dir, "issue.seal", {"issue": issue}), as_json, f"issue {issue} sealed")


@admin_group.command("handover")
@click.option("--yes", is_flag=True, envvar="LIQUIDE_YES", help="Do not ask for confirmation.")
@data_option
@json_option
def handover_cmd(yes: bool, data_dir: Path, as_json: bool) -> None:
    """Rotate the city key: a new key signs from the next leaf on.

    Creates the new key in the data directory (node.key.1, node.key.2, …; no key file is ever
    deleted), then appends a handover event signed by the key in effect. Peers, witnesses and
    observers keep their pins and follow the handover. It cannot be undone.
    """
    if not yes:
        click.confirm(f"Hand the city key of {data_dir} over to a new key?", abort=True)
    result = run_admin(data_dir, "handover", {})
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(
            f"handed over: the city key is now {result['new_key']} ({result['key_file']}); "
            f"event {result['event_id']} at index {result['index']}"
        )
