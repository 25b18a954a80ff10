"""The citizen wallet's encrypted keystore: a self-describing JSON file holding one Ed25519 seed.

The file names everything needed to open it, so that a future version can still read it::

    {
      "version": 1,
      "kdf": {"alg": "argon2id", "opslimit": 3, "memlimit": 268435456, "salt": "<base64 16>"},
      "cipher": {"alg": "xsalsa20poly1305", "nonce": "<base64 24>", "ciphertext": "<base64 48>"},
      "public": "lqpk1…",
      "fingerprint": "xxxx-xxxx"
    }

The passphrase (NFC-normalised UTF-8) is stretched by PyNaCl's Argon2id into a SecretBox key, and
the box holds the 32-byte seed. ``public`` and ``fingerprint`` are stored in clear so that
``wallet show`` needs no passphrase; opening the key checks that they match the decrypted seed.

The pure part (:class:`Keystore`) turns keys into documents and back. The file part
(:func:`write_private_file`, :func:`read_private_file`, :func:`write_keystore`,
:func:`read_keystore`) creates files atomically with ``O_EXCL`` and mode 0600, and refuses to
read secret files that group or others can access.

Errors (all :class:`~crypto.KeystoreError`, each with a ``code`` and usually a ``hint``)::

    KeystoreError
    ├── KeystoreNotFoundError       keystore_missing      no file there
    ├── KeystoreExistsError         keystore_exists       file exists and overwrite was not asked
    ├── KeystorePermissionError     keystore_permissions  group/others can access a secret file
    ├── KeystoreFormatError         keystore_corrupt      corrupted, truncated or tampered file
    │   └── KeystoreVersionError    keystore_unsupported  unknown version or algorithm
    ├── WrongPassphraseError        wrong_passphrase      decryption failed
    └── WeakPassphraseError         weak_passphrase       empty passphrase refused
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as _argon2id
import nacl.secret
import nacl.utils

from ._errors import KeyFormatError, KeystoreError
from ._keys import PublicKey, SecretKey

__all__ = [
    "KDF_LEVELS",
    "KEYSTORE_VERSION",
    "KdfParams",
    "Keystore",
    "KeystoreExistsError",
    "KeystoreFormatError",
    "KeystoreNotFoundError",
    "KeystorePermissionError",
    "KeystoreVersionError",
    "WeakPassphraseError",
    "WrongPassphraseError",
    "read_keystore",
    "read_private_file",
    "write_keystore",
    "write_private_file",
]

KEYSTORE_VERSION = 1
KDF_ALG = "argon2id"
CIPHER_ALG = "xsalsa20poly1305"
# A keystore is well under 1 KiB; anything much larger is not one (and is not read into memory).
MAX_FILE_BYTES = 64 * 1024
_SEED_BYTES = 32
_CIPHERTEXT_BYTES = _SEED_BYTES + nacl.secret.SecretBox.MACBYTES
# Upper bounds accepted when *reading*: a hostile file must not make us allocate 4 TiB or spin
# for hours. They are well above the "sensitive" level that `wallet new` can write.
MAX_OPSLIMIT = 4 * _argon2id.OPSLIMIT_SENSITIVE
MAX_MEMLIMIT = _argon2id.MEMLIMIT_SENSITIVE


class _HintedKeystoreError(KeystoreError):
    """A keystore error with an optional ``hint`` line for the CLI."""

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.hint = hint


class KeystoreNotFoundError(_HintedKeystoreError):
    """There is no file at the keystore's path."""

    code = "keystore_missing"


class KeystoreExistsError(_HintedKeystoreError):
    """The target file exists and overwriting was not requested."""

    code = "keystore_exists"


class KeystorePermissionError(_HintedKeystoreError):
    """A secret file can be accessed by group or others (or is not a regular file)."""

    code = "keystore_permissions"


class KeystoreFormatError(_HintedKeystoreError):
    """The file is corrupted, truncated or tampered with; the message names what is wrong."""

    code = "keystore_corrupt"


class KeystoreVersionError(KeystoreFormatError):
    """The file has a version or algorithm this code does not know."""

    code = "keystore_unsupported"


class WrongPassphraseError(_HintedKeystoreError):
    """The passphrase does not open the keystore (or its ciphertext was altered)."""

    code = "wrong_passphrase"


class WeakPassphraseError(_HintedKeystoreError):
    """The passphrase is refused (it is empty)."""

    code = "weak_passphrase"


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters: ``opslimit`` passes over ``memlimit`` bytes."""

    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        if not _argon2id.OPSLIMIT_MIN <= self.opslimit <= MAX_OPSLIMIT:
            raise ValueError(f"opslimit must be in [{_argon2id.OPSLIMIT_MIN}, {MAX_OPSLIMIT}]")
        if not _argon2id.MEMLIMIT_MIN <= self.memlimit <= MAX_MEMLIMIT:
            raise ValueError(f"memlimit must be in [{_argon2id.MEMLIMIT_MIN}, {MAX_MEMLIMIT}]")


#: Named cost levels. ``moderate`` is the default everywhere; ``min`` exists for tests only
#: (it offers almost no protection against guessing) and is never chosen implicitly.
KDF_LEVELS: Mapping[str, KdfParams] = {
    "interactive": KdfParams(_argon2id.OPSLIMIT_INTERACTIVE, _argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": KdfParams(_argon2id.OPSLIMIT_MODERATE, _argon2id.MEMLIMIT_MODERATE),
    "sensitive": KdfParams(_argon2id.OPSLIMIT_SENSITIVE, _argon2id.MEMLIMIT_SENSITIVE),
    "min": KdfParams(_argon2id.OPSLIMIT_MIN, _argon2id.MEMLIMIT_MIN),
}
DEFAULT_KDF = KDF_LEVELS["moderate"]


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    # NFC so that the same passphrase typed through different input methods gives the same key.
    if isinstance(passphrase, str):
        passphrase = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return passphrase


def _derive(passphrase: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    return bytes(
        _argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase,
            salt,
            opslimit=kdf.opslimit,
            memlimit=kdf.memlimit,
        )
    )


@dataclass(frozen=True, slots=True)
class Keystore:
    """One encrypted Ed25519 seed and everything needed to decrypt it.

    Build one with :meth:`seal`, open it with :meth:`unlock`; :meth:`to_bytes` /
    :meth:`from_bytes` are the file form.
    """

    kdf: KdfParams
    salt: bytes
    nonce: bytes
    ciphertext: bytes
    public: PublicKey

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the stored public key."""
        return self.public.fingerprint()

    @classmethod
    def seal(
        cls, key: SecretKey, passphrase: str | bytes, *, kdf: KdfParams = DEFAULT_KDF
    ) -> Keystore:
        """Encrypt ``key`` under ``passphrase`` with a fresh salt and nonce.

        Raises :class:`WeakPassphraseError` for an empty passphrase.
        """
        secret = _passphrase_bytes(passphrase)
        if not secret:
            raise WeakPassphraseError(
                "the passphrase is empty", hint="choose a passphrase of several words"
            )
        salt = nacl.utils.random(_argon2id.SALTBYTES)
        nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
        box = nacl.secret.SecretBox(_derive(secret, salt, kdf))
        ciphertext = box.encrypt(key.seed, nonce).ciphertext
        return cls(kdf, salt, nonce, bytes(ciphertext), key.public_key)

    def unlock(self, passphrase: str | bytes, *, source: str = "keystore") -> SecretKey:
        """Decrypt and return the secret key.

        Raises :class:`WrongPassphraseError` when the box does not open, and
        :class:`KeystoreFormatError` when the decrypted key does not match ``public``.
        """
        box = nacl.secret.SecretBox(_derive(_passphrase_bytes(passphrase), self.salt, self.kdf))
        try:
            seed = box.decrypt(self.ciphertext, self.nonce)
        except nacl.exceptions.CryptoError:
            raise WrongPassphraseError(
                f"{source}: wrong passphrase (or the encrypted key in the file was altered)",
                hint="check the passphrase; if it is right, restore the key from your backup",
            ) from None
        key = SecretKey(bytes(seed))
        if key.public_key != self.public:
            raise KeystoreFormatError(
                f"{source}: the public key in the file does not match the encrypted secret key"
                " (the file was altered)",
                hint="do not use this file; restore the key from your backup",
            )
        return key

    # Wire form -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this keystore (binary fields in standard base64)."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        return {
            "version": KEYSTORE_VERSION,
            "kdf": {
                "alg": KDF_ALG,
                "opslimit": self.kdf.opslimit,
                "memlimit": self.kdf.memlimit,
                "salt": b64(self.salt),
            },
            "cipher": {
                "alg": CIPHER_ALG,
                "nonce": b64(self.nonce),
                "ciphertext": b64(self.ciphertext),
            },
            "public": self.public.to_text(),
            "fingerprint": self.fingerprint,
        }

    def to_bytes(self) -> bytes:
        """The file content: indented JSON and a final newline."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, doc: object, *, source: str = "keystore") -> Keystore:
        """Validate a parsed document; raise :class:`KeystoreFormatError` naming the field."""
        return _parse(doc, source)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "keystore") -> Keystore:
        """Parse file content; raise :class:`KeystoreFormatError` naming what is wrong."""
        if not data.strip():
            raise KeystoreFormatError(f"{source}: the file is empty", hint=_RESTORE_HINT)
        try:
            doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except _DuplicateFieldError as exc:
            raise KeystoreFormatError(
                f"{source}: duplicate field {exc.args[0]!r}", hint=_RESTORE_HINT
            ) from None
        except UnicodeDecodeError:
            raise KeystoreFormatError(
                f"{source}: not a keystore (not UTF-8 text)", hint=_RESTORE_HINT
            ) from None
        except json.JSONDecodeError as exc:
            raise KeystoreFormatError(
                f"{source}: not valid JSON (truncated or corrupted?): {exc.msg} at line"
                f" {exc.lineno} column {exc.colno}",
                hint=_RESTORE_HINT,
            ) from None
        return _parse(doc, source)


_RESTORE_HINT = "restore the key from your backup with `liquide wallet import FILE`"


class _DuplicateFieldError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateFieldError(k)
        out[k] = v
    return out


def _dotted(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _parse(doc: object, source: str) -> Keystore:
    def bad(what: str) -> KeystoreFormatError:
        return KeystoreFormatError(f"{source}: {what}", hint=_RESTORE_HINT)

    def obj(value: object, name: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise bad(f"{name} must be a JSON object")
        missing = sorted(keys - value.keys())
        if missing:
            raise bad(f"missing field {_dotted(name, missing[0])!r} (truncated or edited?)")
        extra = sorted(value.keys() - keys)
        if extra:
            raise bad(f"unknown field {_dotted(name, extra[0])!r}")
        return value

    def integer(value: object, name: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad(f"{name} must be an integer")
        return value

    def blob(value: object, name: str, size: int) -> bytes:
        if not isinstance(value, str):
            raise bad(f"{name} must be a base64 string")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise bad(f"{name} is not valid base64") from None
        if len(raw) != size:
            raise bad(f"{name} must be {size} bytes, got {len(raw)} (truncated?)")
        return raw

    if not isinstance(doc, dict):
        raise bad("not a keystore (the file is not a JSON object)")
    # The version is checked before the rest so that a future format gets a clear message.
    if "version" not in doc:
        raise bad("not a keystore (no 'version' field)")
    version = integer(doc["version"], "version")
    if version != KEYSTORE_VERSION:
        raise KeystoreVersionError(
            f"{source}: unsupported keystore version {version} (this liquide reads version"
            f" {KEYSTORE_VERSION})",
            hint="upgrade liquide to open this file",
        )
    top = obj(doc, "", {"version", "kdf", "cipher", "public", "fingerprint"})
    kdf = obj(top["kdf"], "kdf", {"alg", "opslimit", "memlimit", "salt"})
    cipher = obj(top["cipher"], "cipher", {"alg", "nonce", "ciphertext"})
    if kdf["alg"] != KDF_ALG:
        raise KeystoreVersionError(
            f"{source}: unsupported key derivation {kdf['alg']!r} (expected {KDF_ALG!r})"
        )
    if cipher["alg"] != CIPHER_ALG:
        raise KeystoreVersionError(
            f"{source}: unsupported cipher {cipher['alg']!r} (expected {CIPHER_ALG!r})"
        )
    ops = integer(kdf["opslimit"], "kdf.opslimit")
    mem = integer(kdf["memlimit"], "kdf.memlimit")
    try:
        params = KdfParams(ops, mem)
    except ValueError as exc:
        raise bad(f"kdf parameters out of range: {exc}") from None
    salt = blob(kdf["salt"], "kdf.salt", _argon2id.SALTBYTES)
    nonce = blob(cipher["nonce"], "cipher.nonce", nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = blob(cipher["ciphertext"], "cipher.ciphertext", _CIPHERTEXT_BYTES)
    if not isinstance(top["public"], str):
        raise bad("public must be an lqpk1… string")
    try:
        public = PublicKey.from_text(top["public"])
    except KeyFormatError as exc:
        raise bad(f"public is not a valid public key: {exc.message}") from None
    if top["fingerprint"] != public.fingerprint():
        raise bad("fingerprint does not match the public key")
    return Keystore(params, salt, nonce, ciphertext, public)


# File I/O ----------------------------------------------------------------------------------


def write_private_file(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically, with mode 0600.

    The bytes go to a temporary file in the same directory (created with ``O_EXCL``), are
    fsynced, and then take the final name in one step: a hard link when ``overwrite`` is false
    (which fails if the name exists, so nothing is ever replaced by accident) or a rename when
    it is true. A reader sees the old file or the new one, never a partial one.

    Raises :class:`KeystoreExistsError` when the file exists and ``overwrite`` is false.
    """
    target = Path(path)
    if not overwrite and os.path.lexists(target):
        raise _exists(target)
    tmp = target.with_name(f".{target.name}.{nacl.utils.random(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_exclusive(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(target.parent)


def _exists(target: Path) -> KeystoreExistsError:
    return KeystoreExistsError(
        f"{target} already exists", hint="use --force to replace it (keep a backup first)"
    )


def _link_exclusive(tmp: Path, target: Path) -> None:
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError:
        # Filesystems without hard links: reserve the name with O_EXCL, then rename over it.
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise _exists(target) from None
        os.replace(tmp, target)


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable. Not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_private_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Return the content of a secret file after checking that only its owner can access it.

    Raises :class:`KeystoreNotFoundError`, :class:`KeystorePermissionError` (group or others
    have any access, or it is not a regular file) or :class:`KeystoreFormatError` (too large).
    """
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY)
    except FileNotFoundError:
        raise KeystoreNotFoundError(f"{target} does not exist") from None
    except IsADirectoryError:
        raise KeystorePermissionError(f"{target} is a directory, not a key file") from None
    try:
        st = os.fstat(fd)  # of the opened file, so a swap after the check cannot fool us
        if not stat.S_ISREG(st.st_mode):
            raise KeystorePermissionError(f"{target} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise KeystorePermissionError(
                f"{target} can be accessed by group or others (mode {mode:04o});"
                " refusing to use a secret key file that others can read",
                hint=f"run: chmod 600 {target}",
            )
        if st.st_size > max_bytes:
            raise KeystoreFormatError(
                f"{target}: not a keystore (file is {st.st_size} bytes, limit {max_bytes})"
            )
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes and (chunk := os.read(fd, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise KeystoreFormatError(f"{target}: not a keystore (larger than {max_bytes} bytes)")
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_keystore(
    path: str | os.PathLike[str], keystore: Keystore, *, overwrite: bool = False
) -> None:
    """Write ``keystore`` to ``path`` (atomic, ``O_EXCL``, 0600); see :func:`write_private_file`."""
    write_private_file(path, keystore.to_bytes(), overwrite=overwrite)


def read_keystore(path: str | os.PathLike[str]) -> Keystore:
    """Read and validate the keystore at ``path``; see :func:`read_private_file` for checks."""
    return Keystore.from_bytes(read_private_file(path), source=str(path))
