"""Independent verification of a federation: trust pins + downloaded material → a report.

This is what the observer runs (``liquide verify``), and it is why the project exists: starting
only from a :class:`Trust` obtained out of band, it checks everything the nodes served, in eight
numbered steps (docs/PROTOCOL.md, section "observer"), and returns a :class:`Report` with counts
and findings that name each item, and PASS or FAIL. It is pure: the CLI downloads or reads the
material (:class:`NodeMaterial`) and passes the time in.

Errors (the protocol tree, see :mod:`protocol.errors`): a malformed trust file or saved state
raises :class:`~protocol.errors.ValidationError` naming the field. Problems in the material are
never raised: they are findings.
"""

from ._verify._engine import STEP3_REASONS, SignatureBatcher, Verification, verify
from ._verify._material import (
    SAVED_FORMAT,
    ConsistencyProof,
    LogMaterial,
    NodeMaterial,
    SavedLog,
    SavedState,
    SealedPart,
)
from ._verify._report import SEVERITIES, STEPS, Finding, IssueResult, OptionBar, Report, Step
from ._verify._trust import TRUST_FORMAT, PinnedLog, PinnedWitness, Trust

__all__ = [
    "SAVED_FORMAT",
    "SEVERITIES",
    "STEP3_REASONS",
    "STEPS",
    "TRUST_FORMAT",
    "ConsistencyProof",
    "Finding",
    "IssueResult",
    "LogMaterial",
    "NodeMaterial",
    "OptionBar",
    "PinnedLog",
    "PinnedWitness",
    "Report",
    "SavedLog",
    "SavedState",
    "SealedPart",
    "SignatureBatcher",
    "Step",
    "Trust",
    "Verification",
    "verify",
]
