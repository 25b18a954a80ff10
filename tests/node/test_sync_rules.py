"""The pure federation rules (protocol._sync), the config of the federation, and the mirror's
cheap leaf indexing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import SecretKey
from node._federation import FederationConfig, check_peer, leaf_row, load_federation_config
from node.errors import ConfigError, RequestError
from protocol._sync import CosignFact, compare, seal_flags, standin_size, witnessed_at
from protocol.events import Event

KEYS = [SecretKey(bytes([i + 1]) * 32) for i in range(3)]


def test_compare() -> None:
    r = b"\x01" * 32
    assert compare(5, r, 9, b"\x02" * 32) == "ahead"
    assert compare(5, r, 5, r) == "same"
    assert compare(5, r, 3, r) == "behind"
    assert compare(5, r, 5, b"\x02" * 32) == "conflict"


FACTS = [
    CosignFact("w1", 10, 100),
    CosignFact("w2", 10, 105),
    CosignFact("w1", 20, 200),
    CosignFact("w2", 25, 210),
    CosignFact("w3", 25, 300),
]


def test_witnessed_at() -> None:
    assert witnessed_at(FACTS, 9, 1) == 100
    assert witnessed_at(FACTS, 9, 2) == 105
    assert witnessed_at(FACTS, 15, 2) == 210  # w1 at 200 (size 20), w2 at 210 (size 25)
    assert witnessed_at(FACTS, 22, 2) == 300
    assert witnessed_at(FACTS, 22, 3) is None
    assert witnessed_at(FACTS, 9, 0) is None


def test_standin_size_needs_k_cosignatures_on_one_checkpoint_before_the_close() -> None:
    assert standin_size(FACTS, 250, 2) == 10  # 20 and 25 have one early cosignature each
    assert standin_size(FACTS, 250, 1) == 25
    assert standin_size(FACTS, 1000, 2) == 25
    assert standin_size(FACTS, 100, 1) is None
    assert standin_size(FACTS, 1000, 0) is None  # without witnesses, wait for the seal


def test_seal_flags() -> None:
    kw = {"close": 150, "grace": 50}
    assert seal_flags(FACTS, 9, k=1, now=999, **kw) == ("early_seal",)
    assert seal_flags(FACTS, 15, k=1, now=999, **kw) == ()
    assert seal_flags(FACTS, 22, k=2, now=999, **kw) == ("late_seal",)
    assert seal_flags(FACTS, 30, k=1, now=190, **kw) is None  # not settled yet
    assert seal_flags(FACTS, 30, k=1, now=201, **kw) == ("late_seal", "unwitnessed")
    assert seal_flags(FACTS, 30, k=0, now=0, **kw) == ()


_bodies = st.sampled_from(
    [
        ("ballot", {"issue": "ab" * 32, "grades": {"yes": 1, "no": -2}}),
        ("withdraw", {"issue": "cd" * 32}),
        ("delegate", {"scope": "area", "target": "ef" * 32, "trustees": []}),
        ("enrol", {"key": KEYS[2].public_key.to_text(), "ref": 'r,"sig":"x'}),
        ("seal", {"issue": "01" * 32}),
    ]
)


@settings(max_examples=60, deadline=None)
@given(_bodies, st.integers(1, 2**40), st.integers(0, 2**40), st.sampled_from(KEYS[:2]))
def test_leaf_row_matches_a_full_decode(body: tuple[str, dict], seq: int, ts: int, sk) -> None:
    type_, b = body
    ev = Event.create(sk, type_, b, seq, None if seq == 1 else "aa" * 32, ts)
    row = leaf_row(ev.leaf)
    assert (row.event_id, row.author, row.seq, row.type) == (ev.id, ev.author, ev.seq, ev.type)


def test_leaf_row_of_garbage_is_indexed_by_its_hash() -> None:
    row = leaf_row(b'{"author":"nope","sig":"x"}')
    assert row.author is None
    assert len(row.event_id) == 64


def test_federation_config_file_env_and_bounds(tmp_path: Path) -> None:
    (tmp_path / "liquide.toml").write_text(
        '[node]\norigin = "x.example/l"\n[federation]\nsync_interval_s = 5\npage_size = 50\n'
    )
    cfg = load_federation_config(tmp_path, env={"LIQUIDE_FED_PAGE_SIZE": "70"})
    assert (cfg.sync_interval_s, cfg.page_size) == (5.0, 70)
    with pytest.raises(ConfigError, match="outside"):
        FederationConfig(page_size=0)
    (tmp_path / "liquide.toml").write_text("[federation]\nbogus = 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_federation_config(tmp_path, env={})


def test_peer_pins_are_checked() -> None:
    key = KEYS[0].public_key
    vkey = key.to_vkey("p.example/l")
    assert check_peer("http://127.0.0.1:9/", "p.example/l", vkey) == (
        "http://127.0.0.1:9/",
        "p.example/l",
        vkey,
    )
    assert check_peer("http://h:1", "p.example/l", key.to_text())[2] == vkey
    with pytest.raises(RequestError, match="named"):
        check_peer("http://h:1/", "other.example/l", vkey)
    with pytest.raises(RequestError, match="URL"):
        check_peer("ftp://h/", "p.example/l", vkey)
    with pytest.raises(RequestError, match="key"):
        check_peer("http://h:1/", "p.example/l", "lqpk1garbage")
