"""The node layer's errors: storage, configuration, ingest policy, peers and the admin socket.

    LiquideError                          (crypto/_errors.py)
    ├── protocol.ProtocolError            (protocol/errors.py): bad bytes, signatures, chains
    └── NodeError
        ├── ConfigError                   a config file, environment variable or option is invalid
        ├── StoreError                    the database cannot be opened, migrated or written
        │   ├── LockedError               another process is the writer of this data directory
        │   └── IntegrityError            stored leaves disagree with the stored tree or a
        │                                 checkpoint signed earlier: the node refuses to sign
        ├── RejectedError                 an event is refused by ingest policy (nothing stored)
        │   ├── UnknownAuthorError        the author is not enrolled at this node
        │   ├── SeqUsedError              the author's ``seq`` is taken; carries the chain head
        │   ├── OutsideWindowError        a ballot arrives outside its issue's voting window
        │   └── ClockSkewError            the author's claimed time is too far from the node's
        ├── NotFoundError                 an id, origin or index that the node does not hold
        ├── RequestError                  an HTTP request is malformed: a bad query parameter
        │   ├── PayloadTooLargeError      the body exceeds its configured bound (413)
        │   ├── RequestTimeoutError       the body did not arrive within the read timeout (408)
        │   └── RateLimitedError          the client sent too many POSTs (429)
        ├── ConflictError                 the request is valid but the state forbids it (409)
        ├── UnavailableError              the node is starting or stopping (503)
        ├── PeerError                     another node (or this one, seen by a client) answered
        │   └── ApiError                  … with an HTTP error: status, code and message
        └── AdminError                    an admin command failed or the socket is unreachable

Every error has a ``code`` (machine-readable, also the HTTP ``error.code``); the HTTP layer maps
each class to a status with :func:`http_status`.
"""

from __future__ import annotations

from typing import Any

from crypto import BadSignatureError, LiquideError
from protocol.errors import (
    ChainError,
    CheckpointError,
    EncodingError,
    EquivocationError,
    ProofError,
    ProtocolError,
    TallyInputError,
    ValidationError,
)

__all__ = [
    "AdminError",
    "ApiError",
    "ClockSkewError",
    "ConfigError",
    "ConflictError",
    "IntegrityError",
    "LockedError",
    "NodeError",
    "NotFoundError",
    "OutsideWindowError",
    "PayloadTooLargeError",
    "PeerError",
    "RateLimitedError",
    "RejectedError",
    "RequestError",
    "RequestTimeoutError",
    "SeqUsedError",
    "StoreError",
    "UnavailableError",
    "UnknownAuthorError",
    "http_status",
]


class NodeError(LiquideError):
    """Base class of the node layer's errors."""

    code = "node_error"


class ConfigError(NodeError):
    """A configuration value is missing, malformed or out of its bounds."""

    code = "bad_config"


class StoreError(NodeError):
    """The SQLite store cannot be opened, migrated, read or written."""

    code = "store_error"


class LockedError(StoreError):
    """Another process holds the writer lock of the data directory."""

    code = "locked"


class IntegrityError(StoreError):
    """The stored log disagrees with itself or with a checkpoint the node signed before."""

    code = "integrity"


class RejectedError(NodeError):
    """An event is refused by the node's ingest policy. Nothing is stored."""

    code = "rejected"


class UnknownAuthorError(RejectedError):
    """The author is neither this city nor a citizen it enrolled."""

    code = "unknown_author"


class SeqUsedError(RejectedError):
    """The author's ``seq`` is already used by another event; ``head`` is the chain head."""

    code = "seq_used"

    def __init__(self, message: str, *, head_seq: int, head_id: str) -> None:
        super().__init__(message)
        self.head_seq = head_seq
        self.head_id = head_id

    def details(self) -> dict[str, Any]:
        """Extra fields for the HTTP error body: the current chain head."""
        return {"head": {"seq": self.head_seq, "event_id": self.head_id}}


class OutsideWindowError(RejectedError):
    """A ballot (or withdrawal) arrives before its issue opens or after it closes."""

    code = "outside_window"


class ClockSkewError(RejectedError):
    """The author's claimed ``ts`` is further from the node's clock than the skew bound."""

    code = "clock_skew"


class NotFoundError(NodeError):
    """The node holds no such event, origin, issue, key or index."""

    code = "not_found"


class RequestError(NodeError):
    """An HTTP request is malformed (a query parameter out of range, a bad id)."""

    code = "bad_request"


class PayloadTooLargeError(RequestError):
    """The request body exceeds its configured bound."""

    code = "too_large"


class RequestTimeoutError(RequestError):
    """The client sent its body too slowly (``read_timeout_s``): a slow sender is cut off."""

    code = "timeout"


class RateLimitedError(RequestError):
    """The client exceeded its POST rate; ``retry_after`` says when to try again (seconds)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(NodeError):
    """The request is well-formed but the node's state forbids it now (not sealed yet, …)."""

    code = "conflict"


class UnavailableError(NodeError):
    """The node is starting or stopping and accepts no writes now."""

    code = "unavailable"


class PeerError(NodeError):
    """A node answered badly: unreachable, too slow, too large, or not the expected shape."""

    code = "peer_error"


class ApiError(PeerError):
    """A node answered with an HTTP error body ``{"error": {"code", "message"}}``."""

    code = "api_error"

    def __init__(
        self, message: str, *, status: int, code: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.details = details or {}


class AdminError(NodeError):
    """An admin command failed, or the running node's admin socket cannot be reached."""

    code = "admin_error"


_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (SeqUsedError, 409),
    (UnknownAuthorError, 403),
    (RejectedError, 422),
    (NotFoundError, 404),
    (PayloadTooLargeError, 413),
    (RequestTimeoutError, 408),
    (RateLimitedError, 429),
    (RequestError, 400),
    (ConflictError, 409),
    (UnavailableError, 503),
    (EncodingError, 400),
    (BadSignatureError, 422),
    (EquivocationError, 409),
    (ChainError, 422),
    (ValidationError, 422),
    (TallyInputError, 422),
    (ProofError, 422),
    (CheckpointError, 422),
    (ProtocolError, 422),
    (ConfigError, 400),
    (LockedError, 503),
    (StoreError, 500),
)


def http_status(exc: BaseException) -> int:
    """The HTTP status that fits ``exc`` (4xx for the client's faults, 5xx for the node's)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400 if isinstance(exc, LiquideError) else 500
