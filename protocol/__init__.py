"""Liquide's pure protocol core: encoding, events, chains, Merkle logs, checkpoints, proofs,
replay and the tally engine. No I/O happens here: time and randomness are passed in.
"""

from .encoding import decode, encode
from .errors import (
    BadSignatureError,
    ChainError,
    CheckpointError,
    EncodingError,
    EquivocationError,
    LiquideError,
    ProofError,
    ProtocolError,
    TallyInputError,
    ValidationError,
)

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
    "decode",
    "encode",
]
