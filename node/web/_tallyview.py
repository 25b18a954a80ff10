"""What the issue page shows of a tally, derived once per record and kept in memory.

A :class:`TallyView` is built from the node's tally document (``GET /v1/issues/{id}/tally``):
the options in Schulze order with their votes and majorities, the voter counts, and the
delegation flow — the casting voters who carry the most weight, with that weight split into
their own vote and what reached them through assembly, area and issue delegations. A record
never changes, so the view is cached by record id (:class:`ViewCache`).

The flow is computed from the result alone: a delegated voter's ``weight`` is its own weight
plus everything whose path passes through it, and its ``path`` starts at the trustee it passed
its weight to, so a voter's own weight is its weight minus the weights of the voters whose path
starts at it.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.errors import TallyInputError
from protocol.tally import OptionResult, TallyResult, VoterResult, explain

__all__ = ["FLOW_TOP", "TallyView", "ViewCache"]

FLOW_TOP = 12
"""How many casting voters the flow picture shows (the others are summed up)."""

SCOPES = ("assembly", "area", "issue")
_SLOT = {"assembly": 1, "area": 2, "issue": 3}
_PARTS = ("own", *SCOPES)


def _split(row: list[int]) -> dict[str, int]:
    return dict(zip(_PARTS, row, strict=True))


class _LazyVoters(Mapping[str, VoterResult]):
    """The result's ``voters`` JSON, parsed one voter at a time on access."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def __getitem__(self, voter: str) -> VoterResult:
        return VoterResult.from_dict(self._raw[voter], f"voters.{voter}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass(frozen=True, slots=True)
class TallyView:
    """The page-ready summary of one record's tally (see the module docstring)."""

    issue: str
    record: str
    digest: str
    winner: str | None
    status_quo_schulze_rank: int
    options: tuple[dict[str, Any], ...]
    voters: dict[str, int]
    total_weight: int
    flow: tuple[dict[str, Any], ...]
    others: dict[str, int]
    findings: tuple[dict[str, Any], ...]
    parts: tuple[dict[str, Any], ...]
    flags: dict[str, list[str]]
    result: TallyResult
    casting: dict[str, list[int]]

    @classmethod
    def build(cls, issue: dict[str, Any], doc: dict[str, Any], top: int = FLOW_TOP) -> TallyView:
        """Derive the view from an issue (``GET /v1/issues/{id}``) and its tally document."""
        res = doc["result"]
        raw_voters: Mapping[str, Any] = res["voters"]
        titles = {o["id"]: o["title"] for o in issue.get("options", [])}
        order = [o["id"] for o in issue.get("options", [])]
        options = []
        for oid, o in res["options"].items():
            options.append({"id": oid, "title": titles.get(oid, oid), **o})
        options.sort(
            key=lambda o: (o["schulze_rank"], order.index(o["id"]) if o["id"] in order else 0)
        )
        rest = {"lost": 0, "absent": 0}
        inflow: dict[str, int] = {}
        direct: list[tuple[str, int]] = []
        passed: list[tuple[str, int, int, str]] = []
        inflow_get, add_direct, add_passed = inflow.get, direct.append, passed.append
        slot = _SLOT
        for k, v in raw_voters.items():
            s = v["status"]
            if s == "delegated":
                path, w = v["path"], v["weight"]
                first = path[0]
                inflow[first] = inflow_get(first, 0) + w
                add_passed((k, w, slot[v["scope"]], path[-1]))
            elif s == "direct":
                add_direct((k, v["weight"]))
            else:
                rest[s] += 1
        counts = {"direct": len(direct), "delegated": len(passed), **rest}
        weights = dict(direct)
        # Per casting voter: [own vote, via assembly, via area, via issue delegations].
        casting = {k: [w - inflow_get(k, 0), 0, 0, 0] for k, w in direct}
        for k, w, i, c in passed:
            casting[c][i] += w - inflow_get(k, 0)
        heaviest = heapq.nsmallest(top, weights, key=lambda k: (-weights[k], k))
        flow = tuple({"voter": k, "weight": weights[k], **_split(casting[k])} for k in heaviest)
        total = sum(weights.values())
        others = {
            "count": len(weights) - len(heaviest),
            "weight": total - sum(weights[k] for k in heaviest),
        }
        option_results = {
            oid: OptionResult.from_dict(o, f"options.{oid}") for oid, o in res["options"].items()
        }
        result = TallyResult(
            voters=_LazyVoters(raw_voters),
            options=option_results,
            status_quo_schulze_rank=res["status_quo_schulze_rank"],
            battles=tuple((b[0], b[1], b[2]) for b in res.get("battles", [])),
            winner=res.get("winner"),
            digest=res["digest"],
        )
        return cls(
            issue=issue["id"],
            record=str(doc.get("record") or res["digest"]),
            digest=res["digest"],
            winner=res.get("winner"),
            status_quo_schulze_rank=res["status_quo_schulze_rank"],
            options=tuple(options),
            voters=counts,
            total_weight=total,
            flow=flow,
            others=others,
            findings=tuple(doc.get("findings") or ()),
            parts=tuple(doc.get("parts") or ()),
            flags={str(k): list(v) for k, v in (doc.get("flags") or {}).items()},
            result=result,
            casting=casting,
        )

    def explain(self, voter: str) -> dict[str, Any] | None:
        """How ``voter`` was counted (``protocol.tally.explain``), or None if not a voter here."""
        try:
            out = explain(self.result, voter).to_dict()
        except TallyInputError:
            return None
        split = self.casting.get(voter)
        if split is not None:
            # The casting voter's weight by origin: own vote, then delegations per scope.
            out["split"] = _split(split)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON twin's ``tally`` part (the full per-voter result is at ``/v1``)."""
        return {
            "record": self.record,
            "digest": self.digest,
            "winner": self.winner,
            "status_quo_schulze_rank": self.status_quo_schulze_rank,
            "options": list(self.options),
            "voters": self.voters,
            "total_weight": self.total_weight,
            "flow": list(self.flow),
            "others": self.others,
            "findings": list(self.findings),
            "parts": list(self.parts),
            "flags": self.flags,
        }


class ViewCache:
    """A small LRU of :class:`TallyView` by record id (records never change)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._views: OrderedDict[str, TallyView] = OrderedDict()

    def get(self, record: str) -> TallyView | None:
        """The cached view of ``record``, or None."""
        view = self._views.get(record)
        if view is not None:
            self._views.move_to_end(record)
        return view

    def put(self, record: str, view: TallyView) -> None:
        """Keep ``view`` under ``record``, dropping the least recently used beyond the size."""
        self._views[record] = view
        self._views.move_to_end(record)
        while len(self._views) > self.size:
            self._views.popitem(last=False)

    def clear(self) -> None:
        """Forget every view."""
        self._views.clear()
