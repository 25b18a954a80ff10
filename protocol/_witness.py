"""The witness's decision, sans I/O: C2SP tlog-witness ``add-checkpoint`` (c2sp.org/tlog-witness).

A log asks a witness to cosign a new checkpoint by sending::

    old <size>\\n
    <base64 hash>\\n          (zero to 63 consistency-proof lines, RFC 6962 §2.1.2)
    \\n
    <signed checkpoint note>

The witness keeps, per origin, the last checkpoint it cosigned. :func:`decide` applies the
specification's checks in its order and returns a :class:`Decision` whose ``status`` is the HTTP
status to answer: 404 unknown origin, 403 no trusted signature verifies, 400 malformed or
``old`` above the size, 409 ``old`` is not the size last cosigned (``stale_size`` says which) or
the same size with another root, 422 the consistency proof fails, 200 cosign. Only a 200
decision carries the checkpoint to persist (atomically with the check, by the caller) and
cosign. The caller supplies the time; nothing here reads a clock.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from crypto import PublicKey

from .checkpoint import Checkpoint, SignedCheckpoint
from .errors import CheckpointError, ProofError
from .merkle import HASH_SIZE, verify_consistency

__all__ = [
    "MAX_ADD_CHECKPOINT_BYTES",
    "MAX_PROOF_LINES",
    "AddCheckpoint",
    "Decision",
    "decide",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

#: The spec's bound on consistency-proof lines.
MAX_PROOF_LINES = 63
#: The largest request body a witness reads (a checkpoint with 100 signatures fits easily).
MAX_ADD_CHECKPOINT_BYTES = 64 * 1024

_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """A parsed ``add-checkpoint`` request body."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: SignedCheckpoint


def format_add_checkpoint(old_size: int, proof: list[bytes], note: str) -> bytes:
    """The request body for ``add-checkpoint``: old size line, proof lines, blank line, note."""
    lines = [f"old {old_size}\n"] + [base64.b64encode(h).decode("ascii") + "\n" for h in proof]
    return ("".join(lines) + "\n" + note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an ``add-checkpoint`` body strictly.

    Raises :class:`CheckpointError` naming the defect (too large, not UTF-8, a bad old-size or
    proof line, more than 63 proof lines, a malformed checkpoint note).
    """
    if len(body) > MAX_ADD_CHECKPOINT_BYTES:
        raise CheckpointError(f"add-checkpoint body exceeds {MAX_ADD_CHECKPOINT_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError("add-checkpoint body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise CheckpointError("add-checkpoint body lacks the blank line before the checkpoint")
    lines = head.split("\n")
    m = _OLD.fullmatch(lines[0])
    if m is None:
        raise CheckpointError("the first line must be 'old <size>' in decimal")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise CheckpointError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for i, line in enumerate(lines[1:]):
        try:
            h = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            h = b""
        if len(h) != HASH_SIZE or base64.b64encode(h).decode("ascii") != line:
            raise CheckpointError(f"proof line {i + 1} is not the base64 of a 32-byte hash")
        proof.append(h)
    return AddCheckpoint(int(m.group(1)), tuple(proof), SignedCheckpoint.parse(note))


@dataclass(frozen=True, slots=True)
class Decision:
    """What the witness answers: an HTTP status, a message, and what to cosign if 200."""

    status: int
    message: str
    checkpoint: Checkpoint | None = None
    stale_size: int | None = None


def decide(
    request: AddCheckpoint,
    keys: list[PublicKey] | None,
    last: Checkpoint | None,
) -> Decision:
    """Decide on an ``add-checkpoint`` request.

    ``keys`` are the log keys the witness trusts for the checkpoint's origin (None: the origin is
    unknown); ``last`` is the checkpoint of that origin it last cosigned (None: never). Returns
    the :class:`Decision`; never raises for a bad request.
    """
    sc = request.checkpoint
    cp = sc.checkpoint
    if keys is None:
        return Decision(404, f"unknown log origin {cp.origin!r}")
    verified = False
    for key in keys:
        try:
            sc.verify(cp.origin, key)
        except CheckpointError:
            continue
        verified = True
        break
    if not verified:
        return Decision(403, f"no signature on the checkpoint verifies with {cp.origin}'s key")
    if request.old_size > cp.size:
        return Decision(400, f"old size {request.old_size} exceeds the checkpoint size {cp.size}")
    last_size = 0 if last is None else last.size
    if request.old_size != last_size:
        return Decision(
            409,
            f"old size {request.old_size} is not the size last cosigned ({last_size})",
            stale_size=last_size,
        )
    if request.old_size == 0:
        if request.proof:
            return Decision(422, "the consistency proof from size 0 must be empty")
    elif last is not None and cp.size == last.size:
        if cp.root != last.root:
            return Decision(
                409,
                f"checkpoint {cp.size} has another root than the one cosigned before",
                stale_size=last_size,
            )
    elif last is not None:
        try:
            verify_consistency(last.size, cp.size, last.root, cp.root, list(request.proof))
        except ProofError as exc:
            return Decision(422, f"consistency proof does not verify: {exc.message}")
    return Decision(200, "cosigned", cp)
