"""A node's data directory: creating it (``node init``), and reading its secret key.

The directory is created with mode 0700. The city's key is ``node.key``: the ``lqsk1…`` text,
created with ``O_EXCL`` and mode 0600, and refused when group- or world-accessible. It is not
passphrase-encrypted, because ``serve`` must start unattended (the operator protects the host
and the directory; see the README's operator section).

A key rotation (``liquide admin handover``) adds ``node.key.1``, ``node.key.2``, …, one per
handover, written the same way and made durable (file and directory fsync) *before* the handover
event is appended. No key file is ever rewritten or deleted: ``node.key`` stays the key the log
was created with (its pin, and the witness's cosigner key), and the writer signs with whichever
file holds the key in effect in its own log, so a crash between the two steps is harmless.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from crypto import KeyFormatError, SecretKey

from .config import CONFIG_FILE, KEY_FILE, NodeConfig, write_config
from .errors import ConfigError

__all__ = ["create_successor_key", "init_data_dir", "load_key", "load_successor_keys"]

_MAX_SUCCESSORS = 10_000


def load_key(data_dir: Path, name: str = KEY_FILE) -> SecretKey:
    """Read the city's secret key; raise :class:`ConfigError` if missing, unsafe or malformed."""
    path = Path(data_dir) / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist", code="not_initialised") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                f"run: chmod 600 {path}"
            )
        text = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        return SecretKey.from_text(text)
    except KeyFormatError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None


def _successor(n: int) -> str:
    return f"{KEY_FILE}.{n}"


def load_successor_keys(data_dir: Path) -> list[SecretKey]:
    """The keys ``node.key.1``, ``node.key.2``, … created by handovers, in order (stops at the
    first number missing). Raises :class:`ConfigError` for an unsafe or malformed file."""
    out = []
    for n in range(1, _MAX_SUCCESSORS):
        if not (Path(data_dir) / _successor(n)).exists():
            break
        out.append(load_key(data_dir, _successor(n)))
    return out


def create_successor_key(data_dir: Path) -> tuple[SecretKey, Path]:
    """Create a fresh key in the next ``node.key.<n>``, durably (file and directory fsynced),
    and return it with its path. Raises :class:`ConfigError` if it cannot be written."""
    data_dir = Path(data_dir)
    n = len(load_successor_keys(data_dir)) + 1
    path = data_dir / _successor(n)
    key = SecretKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.write(fd, (key.to_text() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return key, path


def init_data_dir(data_dir: Path, origin: str, **settings: Any) -> tuple[NodeConfig, SecretKey]:
    """Create a data directory with a fresh key, a config and an empty database.

    Returns the config and the key. Raises :class:`ConfigError` if the directory already holds a
    node or a setting is invalid; the directory is left as it was in that case.
    """
    from .ingest import Writer
    from .store import Store

    data_dir = Path(data_dir)
    config = NodeConfig(origin=origin, **settings)
    if (data_dir / CONFIG_FILE).exists() or (data_dir / KEY_FILE).exists():
        raise ConfigError(f"{data_dir} already holds a node; choose another --data directory")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    key = SecretKey.generate()
    fd = os.open(data_dir / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (key.to_text() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    write_config(data_dir, config)
    store = Store.open(data_dir, writer=True, create=True)
    try:
        Writer.initialise(store, origin, key)
    finally:
        store.close()
    return config, key
