"""The liquid tally engine: LiquidFeedback's delegation resolution and Schulze ranking, with
ranked fallback delegations (DFD, BFD, MinSum), as a pure function of a :class:`TallyInput`.

Every node and every observer recomputes each tally from the public record and compares the
:attr:`TallyResult.digest` that the nodes attest (DESIGN.md invariant 8). The interchange formats,
the semantics and the protocol constants are specified in docs/TALLY.md.

    result = tally(TallyInput.from_dict(doc))   # raises TallyInputError naming the bad item
    result.to_dict()                            # exact JSON, with "digest"
    explain(TallyEngine(inp), "m3")             # which row and path carried m3's weight
"""

from ._engine import Explanation, TallyEngine, explain, tally
from ._input import (
    DEFEAT_STRENGTHS,
    DELEGATION_RULES,
    MAX_GRADE,
    MAX_ID_LENGTH,
    MAX_OPTIONS,
    MAX_TOTAL_WEIGHT,
    MAX_TRUSTEES,
    MAX_VOTERS,
    SCOPES,
    TALLY_VERSION,
    TIE_BREAKINGS,
    Delegation,
    Majority,
    Policy,
    TallyInput,
)
from ._result import OptionResult, TallyResult, VoterResult, VoterTable

__all__ = [
    "DEFEAT_STRENGTHS",
    "DELEGATION_RULES",
    "MAX_GRADE",
    "MAX_ID_LENGTH",
    "MAX_OPTIONS",
    "MAX_TOTAL_WEIGHT",
    "MAX_TRUSTEES",
    "MAX_VOTERS",
    "SCOPES",
    "TALLY_VERSION",
    "TIE_BREAKINGS",
    "Delegation",
    "Explanation",
    "Majority",
    "OptionResult",
    "Policy",
    "TallyEngine",
    "TallyInput",
    "TallyResult",
    "VoterResult",
    "VoterTable",
    "explain",
    "tally",
]
