"""Liquide's crypto layer: Ed25519 keys, text forms, domain-separated signatures, keystore.

This package has no knowledge of events or logs; :mod:`protocol` builds on it.
"""

from ._errors import BadSignatureError, CryptoError, KeyFormatError, KeystoreError, LiquideError
from ._keys import PUBLIC_HRP, SECRET_HRP, PublicKey, SecretKey, domain_message, key_id, verify

__all__ = [
    "PUBLIC_HRP",
    "SECRET_HRP",
    "BadSignatureError",
    "CryptoError",
    "KeyFormatError",
    "KeystoreError",
    "LiquideError",
    "PublicKey",
    "SecretKey",
    "domain_message",
    "key_id",
    "verify",
]
