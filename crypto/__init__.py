"""Liquide's crypto layer: Ed25519 keys, text forms, domain-separated signatures, keystore.

This package has no knowledge of events or logs; :mod:`protocol` builds on it.
"""

from ._errors import BadSignatureError, CryptoError, KeyFormatError, KeystoreError, LiquideError
from ._keys import (
    PUBLIC_HRP,
    SECRET_HRP,
    PublicKey,
    SecretKey,
    domain_message,
    key_id,
    public_key_raw,
    verify,
)
from ._keystore import (
    KDF_LEVELS,
    KEYSTORE_VERSION,
    KdfParams,
    Keystore,
    KeystoreExistsError,
    KeystoreFormatError,
    KeystoreNotFoundError,
    KeystorePermissionError,
    KeystoreVersionError,
    WeakPassphraseError,
    WrongPassphraseError,
    read_keystore,
    read_private_file,
    write_keystore,
    write_private_file,
)

__all__ = [
    "KDF_LEVELS",
    "KEYSTORE_VERSION",
    "PUBLIC_HRP",
    "SECRET_HRP",
    "BadSignatureError",
    "CryptoError",
    "KdfParams",
    "KeyFormatError",
    "Keystore",
    "KeystoreError",
    "KeystoreExistsError",
    "KeystoreFormatError",
    "KeystoreNotFoundError",
    "KeystorePermissionError",
    "KeystoreVersionError",
    "LiquideError",
    "PublicKey",
    "SecretKey",
    "WeakPassphraseError",
    "WrongPassphraseError",
    "domain_message",
    "key_id",
    "public_key_raw",
    "read_keystore",
    "read_private_file",
    "verify",
    "write_keystore",
    "write_private_file",
]
