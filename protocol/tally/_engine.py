"""The tally engine: resolution, then ranking, then the result and its digest; and ``explain``.

:func:`tally` is a pure, deterministic function of a validated :class:`TallyInput` (DESIGN.md
invariant 8). :class:`TallyEngine` keeps the resolution next to the result so that
:func:`explain` can say, for a wallet receipt or a web page, which row and path carried a voter's
weight, or why it was lost (the chain of first trustees) or absent (no row, or a blocking row).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from protocol.errors import TallyInputError

from ._input import TallyInput
from ._resolve import ABSENT, DELEGATED, DIRECT, LOST_CYCLE, Resolution, resolve
from ._result import TallyResult, VoterTable
from ._schulze import count_ballots, rank_options

__all__ = ["Explanation", "TallyEngine", "explain", "tally"]


class TallyEngine:
    """Computes a :class:`TallyResult` and keeps what :func:`explain` needs about each voter."""

    __slots__ = ("input", "resolution", "result")

    def __init__(self, inp: TallyInput) -> None:
        """Tally ``inp`` (already validated by :meth:`TallyInput.from_dict`)."""
        self.input = inp
        res = resolve(inp)
        self.resolution: Resolution = res
        self.result: TallyResult = with_digest(ranked(inp, res))

    def explain(self, voter: str) -> Explanation:
        """Return how ``voter``'s weight was counted; see :func:`explain`."""
        return explain(self, voter)


def ranked(inp: TallyInput, res: Resolution) -> TallyResult:
    """Count the casting voters' ballots of ``res`` and rank the options: the result without
    its digest (``digest`` is empty; :func:`with_digest` fills it in)."""
    options = inp.options
    counted = count_ballots(options, inp.ballots.values(), res.casting_weight)
    sq_rank, outcomes = rank_options(options, counted, inp.policy)
    names: list[str | None] = [None, *options]
    a = counted.battles
    battles = tuple(
        (names[x], names[y], a[x][y])
        for x in range(len(names))
        for y in range(len(names))
        if x != y
    )
    return TallyResult(
        voters=VoterTable(res),
        options=dict(zip(options, outcomes, strict=True)),
        status_quo_schulze_rank=sq_rank,
        battles=battles,
        winner=next((o for o, r in zip(options, outcomes, strict=True) if r.winner), None),
        digest="",
    )


def with_digest(draft: TallyResult) -> TallyResult:
    """``draft`` with its digest (docs/TALLY.md §5) computed and filled in."""
    return replace(draft, digest=draft.compute_digest())


def tally(inp: TallyInput) -> TallyResult:
    """Return the result of tallying ``inp`` under its policy, digest included."""
    return TallyEngine(inp).result


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a voter's weight counted where it did.

    * ``status``: ``direct``, ``delegated``, ``lost`` or ``absent``.
    * ``weight``: the weight the voter cast (direct) or passed on (delegated).
    * ``scope``: the scope of the voter's effective row: the one that carried or lost the
      weight, the blocking row of an absent voter, or the row a direct ballot overrode.
    * ``path``: delegated, the path that carried the weight, ending at the casting voter; lost,
      the chain of first trustees up to the revisited voter or the dead end (engine only).
    * ``reason``: lost, ``cycle`` or ``dead_end``; absent, ``blocked`` or ``no_delegation``
      (engine only); direct, ``overrides_delegation`` when the ballot overrode the voter's row.
    * ``skipped``: trustees of the effective row who are not voters (engine only).
    * ``message``: one English sentence for people.
    """

    voter: str
    status: str
    message: str
    weight: int | None = None
    scope: str | None = None
    path: tuple[str, ...] = ()
    reason: str | None = None
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "voter": self.voter,
            "status": self.status,
            "message": self.message,
            "weight": self.weight,
            "scope": self.scope,
            "path": list(self.path),
            "reason": self.reason,
            "skipped": list(self.skipped),
        }


def explain(source: TallyResult | TallyEngine, voter: str) -> Explanation:
    """Explain how ``voter``'s weight was counted, from a result or (in more detail) an engine.

    Raises :class:`~protocol.errors.TallyInputError` if ``voter`` is not in the tally.
    """
    if isinstance(source, TallyEngine):
        return _explain_engine(source, voter)
    try:
        vr = source.voters[voter]
    except KeyError:
        raise TallyInputError(f"voter {voter!r} is not in this tally") from None
    if vr.status == "direct":
        msg = f"{voter} voted and cast a weight of {vr.weight}."
    elif vr.status == "delegated":
        msg = (
            f"{voter}'s {vr.scope}-scope delegation passed a weight of {vr.weight} along "
            f"{' → '.join(vr.path)}; {vr.path[-1]} voted."
        )
    elif vr.status == "lost":
        msg = f"{voter}'s delegation is lost ({vr.reason}): no path reaches a voter who voted."
    else:
        msg = f"{voter} did not vote and has no effective delegation."
    return Explanation(
        voter=voter,
        status=vr.status,
        message=msg,
        weight=vr.weight,
        scope=vr.scope,
        path=vr.path,
        reason=vr.reason,
    )


def _explain_engine(engine: TallyEngine, voter: str) -> Explanation:
    res = engine.resolution
    if voter not in res.index:
        raise TallyInputError(f"voter {voter!r} is not in this tally")
    eff = res.scope(voter)
    skipped = tuple(t for t in res.row(voter) if t not in res.own)
    s = res.status_of(voter)
    if s == DIRECT:
        own = res.own[voter]
        weight = res.weight_of(voter)
        msg = f"{voter} voted and cast a weight of {weight} ({own} own, {weight - own} delegated)."
        reason = None
        if eff is not None:
            reason = "overrides_delegation"
            msg += f" The ballot overrides {voter}'s own {eff}-scope delegation."
        return Explanation(voter, "direct", msg, weight=weight, scope=eff, reason=reason)
    if s == DELEGATED:
        path = tuple(res.path(voter))
        msg = (
            f"{voter}'s {eff}-scope delegation passed a weight of {res.weight_of(voter)} along "
            f"{' → '.join(path)}; {path[-1]} voted."
        )
        return Explanation(
            voter,
            "delegated",
            msg,
            weight=res.weight_of(voter),
            scope=eff,
            path=path,
            skipped=skipped,
        )
    if s == ABSENT:
        if eff is None:
            msg = f"{voter} did not vote and has no delegation for this issue."
            return Explanation(voter, "absent", msg, reason="no_delegation")
        msg = (
            f"{voter} did not vote, and {voter}'s {eff}-scope row with no trustees blocks "
            "any broader delegation."
        )
        return Explanation(voter, "absent", msg, scope=eff, reason="blocked")
    chain = tuple(res.first_chain(voter))
    if s == LOST_CYCLE:
        reason = "cycle"
        msg = (
            f"{voter}'s {eff}-scope delegation is lost: the chain of first trustees "
            f"{' → '.join((voter, *chain))} comes back to {chain[-1]} without reaching anyone "
            "who voted, and no other trustee leads to a voter."
        )
    else:
        reason = "dead_end"
        if chain:
            msg = (
                f"{voter}'s {eff}-scope delegation is lost: the chain of first trustees "
                f"{' → '.join((voter, *chain))} ends at {chain[-1]}, who did not vote and does "
                "not delegate, and no other trustee leads to a voter."
            )
        else:
            msg = f"{voter}'s {eff}-scope delegation is lost: none of its trustees is a voter."
    return Explanation(voter, "lost", msg, scope=eff, path=chain, reason=reason, skipped=skipped)
