"""``liquide tally FILE|-``: recompute a tally offline from a TallyInput document.

Anyone can run it on the input a node or an observer exported and compare the digest with the
attestations. The engine is :mod:`protocol.tally`; this module only reads the file, prints, and
turns bad input into a :class:`~protocol.errors.TallyInputError` that the ``liquide`` group
prints as ``liquide: error: …`` with exit code 1.
"""

from __future__ import annotations

import json
from typing import IO, Any

import click

from protocol.encoding import encode
from protocol.errors import TallyInputError
from protocol.tally import TallyEngine, TallyInput, TallyResult, explain

__all__ = ["tally_cmd"]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise TallyInputError(f"input: duplicate key {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise TallyInputError(f"input: {name} is not allowed (only integers)")


def read_input(stream: IO[bytes], name: str) -> TallyInput:
    """Parse and validate a TallyInput JSON document; raise TallyInputError naming the problem."""
    data = stream.read()
    try:
        doc = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError as exc:
        raise TallyInputError(f"{name}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise TallyInputError(
            f"{name}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return TallyInput.from_dict(doc)


def _summary(inp: TallyInput, result: TallyResult) -> list[str]:
    pol = inp.policy
    lines = [
        (
            f"Tally of {len(inp.voters):,} voters, {len(inp.options)} options "
            f"(delegation {pol.delegation_rule}, defeat strength {pol.defeat_strength}, "
            f"tie-breaking {pol.tie_breaking})"
        ),
        f"Winner: {result.winner if result.winner is not None else 'none (the status quo stays)'}",
        "",
        (
            f"{'rank':>4}  {'option':<24} {'schulze':>7} {'for':>9} {'against':>9}  "
            "direct indirect eligible"
        ),
    ]
    for oid, o in sorted(result.options.items(), key=lambda item: item[1].rank):
        mark = " *" if o.winner else ""
        lines.append(
            f"{o.rank:>4}  {oid[:24]:<24} {o.schulze_rank:>7} {o.positive_votes:>9,} "
            f"{o.negative_votes:>9,}  {'yes' if o.direct_majority else 'no':<6} "
            f"{'yes' if o.indirect_majority else 'no':<8} {'yes' if o.eligible else 'no'}{mark}"
        )
    lines.append(f"{'':>4}  {'(status quo)':<24} {result.status_quo_schulze_rank:>7}")
    counts = {"direct": 0, "delegated": 0, "cycle": 0, "dead_end": 0, "absent": 0}
    cast = 0
    for r in result.voters.values():
        counts[r.reason if r.status == "lost" else r.status] += 1  # type: ignore[index]
        if r.status == "direct":
            cast += r.weight or 0
    lines += [
        "",
        (
            f"Voters: {counts['direct']:,} voted (total weight {cast:,}), "
            f"{counts['delegated']:,} delegated, "
            f"{counts['cycle'] + counts['dead_end']:,} lost ({counts['cycle']:,} in cycles, "
            f"{counts['dead_end']:,} at dead ends), {counts['absent']:,} absent"
        ),
        f"Digest: {result.digest}",
    ]
    return lines


@click.command("tally")
@click.argument("file", type=click.File("rb"), metavar="FILE|-")
@click.option("--json", "as_json", is_flag=True, help="Print the TallyResult as canonical JSON.")
@click.option(
    "--explain",
    "voters",
    multiple=True,
    metavar="VOTER",
    help="Also say how VOTER's weight was counted (repeatable). With --json the output becomes "
    '{"result": …, "explanations": […]}.',
)
def tally_cmd(file: IO[bytes], as_json: bool, voters: tuple[str, ...]) -> None:
    """Recompute a tally from a TallyInput document (FILE, or - for standard input).

    The document is the interchange format of docs/TALLY.md. The result is LiquidFeedback's
    ranking of the options against the status quo after resolving (ranked) delegations, with
    the digest that nodes attest. Exit code 1 and a message naming the item on bad input.
    """
    name = getattr(file, "name", None)
    if not isinstance(name, str) or name.startswith("<") or name == "-":
        name = "standard input"
    inp = read_input(file, name)
    engine = TallyEngine(inp)
    result = engine.result
    explanations = [explain(engine, v) for v in voters]
    if as_json:
        doc: Any = result.to_dict()
        if voters:
            doc = {"result": doc, "explanations": [e.to_dict() for e in explanations]}
        click.echo(encode(doc).decode())
        return
    for line in _summary(inp, result):
        click.echo(line)
    if explanations:
        click.echo("")
        for e in explanations:
            click.echo(e.message)
