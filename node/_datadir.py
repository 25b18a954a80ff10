"""A node's data directory: creating it (``node init``), and reading its secret key.

The directory is created with mode 0700. The city's key is ``node.key``: the ``lqsk1…`` text,
created with ``O_EXCL`` and mode 0600, and refused when group- or world-accessible. It is not
passphrase-encrypted, because ``serve`` must start unattended (the operator protects the host
and the directory; see the README's operator section).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from crypto import KeyFormatError, SecretKey

from .config import CONFIG_FILE, KEY_FILE, NodeConfig, write_config
from .errors import ConfigError

__all__ = ["init_data_dir", "load_key"]


def load_key(data_dir: Path) -> SecretKey:
    """Read the city's secret key; raise :class:`ConfigError` if missing, unsafe or malformed."""
    path = Path(data_dir) / KEY_FILE
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
