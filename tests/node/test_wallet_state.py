"""The wallet's local chain heads (seq, prev per key)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from crypto import SecretKey
from node._wallet_state import (
    ChainHead,
    ChainState,
    WalletStateError,
    load_chain_state,
    save_chain_state,
)

A = SecretKey(b"\x01" * 32).public_key
B = SecretKey(b"\x02" * 32).public_key
ID1, ID2 = "a" * 64, "b" * 64


def test_fresh_head() -> None:
    head = ChainHead()
    assert (head.seq, head.prev, head.next_seq) == (0, None, 1)
    assert head.advance(ID1) == ChainHead(1, ID1)


@pytest.mark.parametrize(
    ("seq", "prev", "message"),
    [
        (-1, None, "seq must be"),
        (True, None, "seq must be"),
        ("1", ID1, "seq must be"),
        (0, ID1, "prev must be null"),
        (1, None, "prev must be a 64-digit"),
        (1, "A" * 64, "prev must be a 64-digit"),
        (1, "a" * 63, "prev must be a 64-digit"),
    ],
)
def test_head_validation(seq: object, prev: object, message: str) -> None:
    with pytest.raises(WalletStateError, match=message):
        ChainHead(seq, prev)  # type: ignore[arg-type]


def test_accepted_extends_per_author() -> None:
    state = ChainState().accepted(A, 1, ID1).accepted(A, 2, ID2).accepted(B, 1, ID2)
    assert state.head(A) == ChainHead(2, ID2)
    assert state.head(B) == ChainHead(1, ID2)
    assert ChainState().head(A) == ChainHead()


@pytest.mark.parametrize("seq", [0, 2, 3])
def test_accepted_refuses_gaps_and_reuse(seq: int) -> None:
    state = ChainState().accepted(A, 1, ID1)
    with pytest.raises(WalletStateError, match="does not follow") as info:
        state.accepted(A, seq if seq != 2 else 1, ID2)
    assert info.value.code == "chain_gap"
    assert info.value.hint


def test_with_head_recovers_from_the_home_node() -> None:
    state = ChainState().with_head(A, ChainHead(7, ID1))
    assert state.accepted(A, 8, ID2).head(A) == ChainHead(8, ID2)


def test_state_is_immutable() -> None:
    state = ChainState({A.to_text(): ChainHead()})
    with pytest.raises(TypeError):
        state.heads[B.to_text()] = ChainHead()  # type: ignore[index]


def test_authors_must_be_public_keys() -> None:
    with pytest.raises(WalletStateError, match="not a public key"):
        ChainState({"lqpk1nope": ChainHead()})


def test_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "default.state.json"
    assert load_chain_state(path) == ChainState()
    state = ChainState().accepted(A, 1, ID1).accepted(B, 1, ID2)
    save_chain_state(path, state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_chain_state(path) == state
    doc = json.loads(path.read_text())
    assert doc["version"] == 1
    assert doc["chains"] == {
        A.to_text(): {"seq": 1, "prev": ID1},
        B.to_text(): {"seq": 1, "prev": ID2},
    }
    assert list(doc["chains"]) == sorted(doc["chains"])
    save_chain_state(path, state.accepted(A, 2, ID2))  # replaces
    assert load_chain_state(path).head(A) == ChainHead(2, ID2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"[]", "chain state must be"),
        (b'{"version": 2, "chains": {}}', "unsupported chain state version 2"),
        (b'{"version": true, "chains": {}}', "unsupported chain state version"),
        (b'{"version": 1, "chains": []}', "chains must be a JSON object"),
        (b'{"version": 1, "chains": {"x": 1}}', r"chains\['x'\]: a chain head must be"),
        (b'{"version": 1, "chains": {"x": {"seq": 0, "prev": null}}}', "not a public key"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(WalletStateError, match=message) as info:
        load_chain_state(path)
    assert str(path) in info.value.message
    assert "home node" in (info.value.hint or "")


def test_oversized_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import node._wallet_state as ws

    monkeypatch.setattr(ws, "_MAX_STATE_BYTES", 10)
    path = tmp_path / "s.json"
    path.write_bytes(b" " * 11)
    with pytest.raises(WalletStateError, match="too large"):
        load_chain_state(path)


def test_the_followed_key_chain_starts_at_the_pin_and_only_grows(tmp_path: Path) -> None:
    from node._wallet_state import CityKeys, load_city_keys, save_city_keys

    k0, k1, k2, other = (SecretKey.generate().public_key for _ in range(4))
    path = tmp_path / "w.keys.json"
    start = load_city_keys(path, "x.example/log", k0)
    assert start == CityKeys("x.example/log", (k0.to_text(),))
    chain = start.followed((k0.to_text(), k1.to_text()), 5)
    assert (chain.in_effect, chain.size) == (k1.to_text(), 5)
    # an older view (a prefix) keeps the longer chain; a longer one extends it
    assert chain.followed((k0.to_text(),), 3) == chain
    assert chain.followed((k0.to_text(), k1.to_text(), k2.to_text()), 9).in_effect == k2.to_text()
    with pytest.raises(WalletStateError, match="two different handovers") as bad:
        chain.followed((k0.to_text(), other.to_text()), 9)
    assert bad.value.code == "split_view"
    save_city_keys(path, chain)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_city_keys(path, "x.example/log", k0) == chain
    # a file of another pin or origin is not this pin's chain
    assert load_city_keys(path, "x.example/log", other).keys == (other.to_text(),)
    assert load_city_keys(path, "y.example/log", k0).keys == (k0.to_text(),)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "keys": [k0.to_text(), k0.to_text()]}))
    with pytest.raises(WalletStateError, match="must not repeat") as bad:
        load_city_keys(path, "x.example/log", k0)
    assert bad.value.hint is not None
    assert "follows the handovers again from the pinned key" in bad.value.hint
    path.write_text("{")
    with pytest.raises(WalletStateError, match="not valid JSON"):
        load_city_keys(path, "x.example/log", k0)
