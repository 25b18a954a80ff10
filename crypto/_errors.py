"""The root of Liquide's error tree, and the errors of the crypto layer.

    LiquideError
    ├── CryptoError
    │   ├── BadSignatureError      a signature does not verify
    │   ├── KeyFormatError         a key's text or bytes are malformed
    │   └── KeystoreError          a keystore file cannot be read, written or decrypted
    ├── protocol.ProtocolError     (see protocol/errors.py)
    └── node errors                (see node/errors.py)

Every error carries a short machine-readable ``code`` so that the HTTP layer and the CLI can map
it to a response without parsing the message.
"""

from __future__ import annotations

__all__ = ["BadSignatureError", "CryptoError", "KeyFormatError", "KeystoreError", "LiquideError"]


class LiquideError(Exception):
    """Base class of every error Liquide raises on purpose."""

    code = "liquide_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class CryptoError(LiquideError):
    """A cryptographic operation failed."""

    code = "crypto_error"


class BadSignatureError(CryptoError):
    """A signature does not verify under the given key and context."""

    code = "bad_signature"


class KeyFormatError(CryptoError):
    """A key's text form or raw bytes are malformed."""

    code = "bad_key"


class KeystoreError(CryptoError):
    """A keystore file is missing, unsafe, corrupted, or its passphrase is wrong."""

    code = "keystore_error"
