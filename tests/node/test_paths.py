"""Data-directory resolution: LIQUIDE_HOME, then XDG_DATA_HOME, then ~/.local/share."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from node._paths import data_home, ensure_private_dir, wallet_dir


def test_liquide_home_wins(tmp_path: Path) -> None:
    env = {"LIQUIDE_HOME": str(tmp_path / "lq"), "XDG_DATA_HOME": "/xdg"}
    assert data_home(env) == tmp_path / "lq"
    assert wallet_dir(env) == tmp_path / "lq" / "wallet"


def test_liquide_home_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_home({"LIQUIDE_HOME": "~/lq"}) == tmp_path / "lq"


def test_xdg_data_home() -> None:
    assert data_home({"XDG_DATA_HOME": "/xdg"}) == Path("/xdg/liquide")
    assert data_home({"LIQUIDE_HOME": "", "XDG_DATA_HOME": "/xdg"}) == Path("/xdg/liquide")


def test_relative_xdg_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_home({"XDG_DATA_HOME": "rel/dir"}) == tmp_path / ".local/share/liquide"
    assert data_home({}) == tmp_path / ".local/share/liquide"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIQUIDE_HOME", str(tmp_path))
    assert wallet_dir() == tmp_path / "wallet"


def test_ensure_private_dir(tmp_path: Path) -> None:
    d = ensure_private_dir(tmp_path / "a" / "wallet")
    assert d.is_dir()
    assert stat.S_IMODE(d.stat().st_mode) & 0o077 == 0
    assert ensure_private_dir(d) == d
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        ensure_private_dir(tmp_path / "file")
