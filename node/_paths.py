"""Where Liquide keeps its files on this machine, shared by the wallet, the node and the observer.

The data directory is ``$LIQUIDE_HOME`` when set, else ``$XDG_DATA_HOME/liquide``, else
``~/.local/share/liquide`` (the XDG base-directory default). Following the XDG spec, a relative
``XDG_DATA_HOME`` is ignored. Each role keeps its own subdirectory (``wallet/``, …), created
with mode 0700 because it may hold secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP_DIR", "data_home", "ensure_private_dir", "wallet_dir"]

APP_DIR = "liquide"


def data_home(environ: Mapping[str, str] | None = None) -> Path:
    """Return Liquide's data directory (not created)."""
    env = os.environ if environ is None else environ
    home = env.get("LIQUIDE_HOME", "")
    if home:
        return Path(home).expanduser()
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / APP_DIR
    return Path("~").expanduser() / ".local" / "share" / APP_DIR


def wallet_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the citizen wallet's directory (not created)."""
    return data_home(environ) / "wallet"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed, the leaf with mode 0700; return it.

    Raises :class:`FileExistsError` when a non-directory is in the way.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
