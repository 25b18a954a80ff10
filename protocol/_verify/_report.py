"""The observer's report: eight numbered steps, each with counts and findings, and a verdict.

A :class:`Report` is an audit result, not an exception: it lists everything that does not match
and names each item (origin, leaf index, event id, node). A finding of severity ``error`` fails
its step and the whole verification; ``warning`` and ``info`` findings are reported (an early or
late seal, an enrolment inside a voting window) without failing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from protocol._drafts import draft, new

__all__ = ["SEVERITIES", "STEPS", "Finding", "IssueResult", "OptionBar", "Report", "Step"]

STEPS: Final[Mapping[int, str]] = {
    1: "checkpoint signatures and cosignatures",
    2: "consistency across nodes",
    3: "entry encoding, signatures and chains",
    4: "Merkle roots",
    5: "replay validity",
    6: "tally recomputation",
    7: "attestations",
    8: "misbehaviour proofs held by the nodes",
}
SEVERITIES: Final = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the observer found, at one step, naming the item it is about."""

    step: int
    severity: str
    code: str
    message: str
    origin: str | None = None
    index: int | None = None
    event_id: str | None = None
    node: str | None = None
    issue: str | None = None
    proof: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "step": self.step,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }
        for name in ("origin", "index", "event_id", "node", "issue"):
            value = getattr(self, name)
            if value is not None:
                d[name] = value
        if self.proof is not None:
            d["proof"] = dict(self.proof)
        return d

    @classmethod
    def many(
        cls,
        step: int,
        severity: str,
        origin: str | None,
        issue: str | None,
        items: Iterable[tuple[str, str, int]],
    ) -> list[Finding]:
        """One finding per ``(code, message, index)`` of ``items``, all at ``step`` with
        ``severity``, about ``origin`` and ``issue`` (for the thousands one pass can report: a
        city may enrol thousands while a vote is open). Equal to building each with the class,
        and four times as fast: each is built as a draft (protocol/_drafts.py)."""
        out: list[Finding] = []
        for code, message, index in items:
            f = new(_FindingDraft)
            f.step = step
            f.severity = severity
            f.code = code
            f.message = message
            f.origin = origin
            f.index = index
            f.event_id = None
            f.node = None
            f.issue = issue
            f.proof = None
            f.__class__ = cls
            out.append(f)
        return out

    def where(self) -> str:
        """The item, as a short human phrase: ``lyon.example/liquide #12 (event 3fa4…) at URL``."""
        parts = []
        if self.origin is not None:
            parts.append(self.origin)
        if self.index is not None:
            parts.append(f"#{self.index}")
        if self.event_id is not None:
            parts.append(f"event {self.event_id[:12]}…")
        if self.issue is not None:
            parts.append(f"issue {self.issue[:12]}…")
        if self.node is not None:
            parts.append(f"from {self.node}")
        return " ".join(parts)


_FindingDraft = draft(Finding)


@dataclass(slots=True)
class Step:
    """A numbered step: its title, named counts and findings."""

    number: int
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def title(self) -> str:
        return STEPS[self.number]

    @property
    def passed(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "title": self.title,
            "status": "PASS" if self.passed else "FAIL",
            "counts": dict(sorted(self.counts.items())),
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class OptionBar:
    """One option's figures in a recomputed tally (what the HTML report draws)."""

    id: str
    title: str
    positive: int
    negative: int
    rank: int | None
    winner: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "positive": self.positive,
            "negative": self.negative,
            "rank": self.rank,
            "winner": self.winner,
        }


@dataclass(frozen=True, slots=True)
class IssueResult:
    """An issue of the pinned assembly as the observer found it.

    ``status`` is ``tallied`` (the record is complete and the tally recomputed), ``open`` (some
    member city has not sealed and the grace period has not run out), or ``unverifiable`` (an
    earlier step failed for a log of the record).
    """

    id: str
    title: str
    status: str
    closes: int
    record: str | None = None
    digest: str | None = None
    winner: str | None = None
    parts: tuple[tuple[str, int, str], ...] = ()
    options: tuple[OptionBar, ...] = ()
    voters: int = 0

    STATUSES: ClassVar[tuple[str, ...]] = ("tallied", "open", "unverifiable")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "closes": self.closes,
            "record": self.record,
            "digest": self.digest,
            "winner": self.winner,
            "parts": [{"origin": o, "size": s, "root": r} for o, s, r in self.parts],
            "options": [o.to_dict() for o in self.options],
            "voters": self.voters,
        }


@dataclass(slots=True)
class Report:
    """The whole verification: the eight steps, the issues, the verdict."""

    steps: dict[int, Step] = field(default_factory=lambda: {n: Step(n) for n in STEPS})
    issues: list[IssueResult] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    assembly: str | None = None
    incremental: bool = False

    def add(self, finding: Finding) -> None:
        """Record ``finding`` under its step."""
        self.steps[finding.step].findings.append(finding)

    def step(self, n: int) -> Step:
        return self.steps[n]

    @property
    def passed(self) -> bool:
        """True when no step has an error finding."""
        return all(s.passed for s in self.steps.values())

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def first_failure(self) -> int | None:
        """The number of the first failed step, or None."""
        return next((n for n, s in sorted(self.steps.items()) if not s.passed), None)

    def findings(self, severity: str | None = None) -> list[Finding]:
        """Every finding in step order (of one severity when given)."""
        return [
            f
            for _, s in sorted(self.steps.items())
            for f in s.findings
            if severity is None or f.severity == severity
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "liquide-verify-report/v1",
            "verdict": self.verdict,
            "first_failure": self.first_failure,
            "assembly": self.assembly,
            "incremental": self.incremental,
            "nodes": list(self.nodes),
            "steps": [s.to_dict() for _, s in sorted(self.steps.items())],
            "issues": [i.to_dict() for i in self.issues],
        }

    def to_text(self) -> str:
        """A plain-text rendering: one line per step with its counts, findings indented."""
        lines = []
        if self.assembly:
            lines.append(f"assembly {self.assembly}")
        for n, s in sorted(self.steps.items()):
            counts = ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items()))
            status = "PASS" if s.passed else "FAIL"
            lines.append(f"{n}. {s.title}: {status}" + (f" ({counts})" if counts else ""))
            for f in s.findings:
                where = f.where()
                lines.append(
                    f"   {f.severity}: {f.code}: {f.message}" + (f" [{where}]" if where else "")
                )
        for i in self.issues:
            head = f"issue {i.id} {i.title!r}: {i.status}"
            if i.status == "tallied":
                head += f", winner {i.winner or 'none (status quo)'}, digest {i.digest}"
            lines.append(head)
            lines.extend(
                f"   {o.id}: +{o.positive} -{o.negative}" + ("  winner" if o.winner else "")
                for o in i.options
            )
        lines.append(self.verdict)
        return "\n".join(lines) + "\n"
