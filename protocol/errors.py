"""The protocol layer's errors.

    LiquideError                       (crypto/_errors.py)
    └── ProtocolError
        ├── EncodingError              bytes are not canonical JSON of the profile
        ├── ValidationError            a well-encoded object breaks a field rule
        ├── ChainError                 an author's seq/prev chain is broken
        ├── EquivocationError          two events of one author at one seq
        ├── ProofError                 a Merkle proof or a misbehaviour proof does not verify
        ├── CheckpointError            a checkpoint, cosignature or receipt is malformed or unsigned
        └── TallyInputError            a TallyInput breaks the interchange format

Signature failures raise :class:`crypto.BadSignatureError`, which is re-exported here.
Verification functions raise; audits (replay, verification reports) return result objects that
list their findings instead.
"""

from __future__ import annotations

from crypto import BadSignatureError, LiquideError

__all__ = [
    "BadSignatureError",
    "ChainError",
    "CheckpointError",
    "EncodingError",
    "EquivocationError",
    "LiquideError",
    "ProofError",
    "ProtocolError",
    "TallyInputError",
    "ValidationError",
]


class ProtocolError(LiquideError):
    """Base class of the protocol layer's errors."""

    code = "protocol_error"


class EncodingError(ProtocolError):
    """The bytes are not the canonical JSON encoding of the Liquide profile."""

    code = "non_canonical"


class ValidationError(ProtocolError):
    """A decoded object breaks a field rule (type, size, range, reference)."""

    code = "invalid"


class ChainError(ProtocolError):
    """An author's chain is broken: a gap, a wrong ``prev``, or a reused ``seq``."""

    code = "chain"


class EquivocationError(ProtocolError):
    """Two different valid events by one author at one ``seq``."""

    code = "equivocation"


class ProofError(ProtocolError):
    """A Merkle proof or a proof of misbehaviour does not verify."""

    code = "bad_proof"


class CheckpointError(ProtocolError):
    """A checkpoint, cosignature or receipt is malformed or its signature is wrong."""

    code = "bad_checkpoint"


class TallyInputError(ProtocolError):
    """A TallyInput document breaks the interchange format."""

    code = "bad_tally_input"
