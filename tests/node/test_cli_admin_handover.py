"""``liquide admin handover``: the new key is stored beside the old one, the handover is signed by
the old key, later events, receipts and checkpoints by the new one; a restart (or a crash between
storing the key and appending the handover) picks the key in effect; the serving node does it
through the admin socket."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from crypto import PublicKey, SecretKey
from node._datadir import create_successor_key, load_key
from node._node import Node
from protocol.checkpoint import Receipt, SignedCheckpoint
from protocol.events import Event
from protocol.state import replay
from tests.conftest import key

from .test_node_cli import init, run

ORIGIN = "lyon.example/liquide"


def _leaves(node: Node) -> list[bytes]:
    info = node.store.log(ORIGIN)
    assert info is not None
    return node.store.leaves(ORIGIN, 0, info.size)


def test_handover_offline_then_restart_signs_with_the_new_key(tmp_path: Path) -> None:
    data = init(tmp_path)
    old = load_key(data)
    d = ("--data", str(data))
    assert run("admin", "enrol", key("c1").public_key.to_text(), *d)[0] == 0
    code, _, err = run("admin", "handover", *d)
    assert code == 1
    assert "Aborted" in err  # it asks first; --yes skips the question
    code, out, err = run("admin", "handover", "--yes", "--json", *d)
    assert code == 0, err
    result = json.loads(out)
    new = load_key(data, "node.key.1")
    assert result["old_key"] == old.public_key.to_text()
    assert result["new_key"] == new.public_key.to_text()
    assert result["key_file"] == "node.key.1"
    assert stat.S_IMODE((data / "node.key.1").stat().st_mode) == 0o600
    assert load_key(data) == old  # node.key is kept as it was: never rewritten or deleted
    # a restart picks the key in effect; the next city event is signed by it
    code, out, err = run("admin", "enrol", key("c2").public_key.to_text(), "--json", *d)
    assert code == 0, err
    receipt = Receipt.from_dict(json.loads(out)["receipt"])
    receipt.verify(new.public_key)
    node = Node.open(data)
    try:
        leaves = _leaves(node)
        events = [Event.decode(x) for x in leaves]
        assert [(e.type, e.author) for e in events] == [
            ("enrol", old.public_key.to_text()),
            ("handover", old.public_key.to_text()),
            ("enrol", new.public_key.to_text()),
        ]
        assert events[2].seq == 1  # the new key's own chain
        rep = replay(ORIGIN, old.public_key.to_text(), leaves)
        assert rep.findings == ()
        assert rep.state.city_key == new.public_key.to_text()
        assert node.writer.key == new
        cp = node.store.latest_checkpoint(ORIGIN)
        assert cp is not None
        assert cp.size == 3
        SignedCheckpoint.parse(cp.note).verify(ORIGIN, new.public_key)
        assert node.store.checkpoint(ORIGIN, 1) is not None
        SignedCheckpoint.parse(node.store.checkpoint(ORIGIN, 1).note).verify(ORIGIN, old.public_key)  # type: ignore[union-attr]
    finally:
        node.close()
    code, out, _ = run("node", "status", "--json", *d)
    assert code == 0
    status = json.loads(out)
    assert (status["key"], status["key_in_effect"]) == (
        old.public_key.to_text(),
        new.public_key.to_text(),
    )
    # a second handover adds node.key.2 and retires node.key.1's key
    code, out, _ = run("admin", "handover", "--yes", "--json", *d)
    assert code == 0
    assert json.loads(out)["key_file"] == "node.key.2"
    assert json.loads(out)["old_key"] == new.public_key.to_text()


def test_a_crash_between_storing_the_key_and_the_handover_is_harmless(tmp_path: Path) -> None:
    data = init(tmp_path)
    old = load_key(data)
    unused, path = create_successor_key(data)  # the crash: the key is stored, nothing appended
    assert path.name == "node.key.1"
    d = ("--data", str(data))
    code, out, err = run("admin", "enrol", key("c1").public_key.to_text(), "--json", *d)
    assert code == 0, err
    Receipt.from_dict(json.loads(out)["receipt"]).verify(old.public_key)  # still the old key
    code, out, err = run("admin", "handover", "--yes", "--json", *d)
    assert code == 0, err
    result = json.loads(out)
    assert result["key_file"] == "node.key.2"  # the unused key stays, and is not reused
    assert result["new_key"] != unused.public_key.to_text()
    node = Node.open(data)
    try:
        assert node.writer.city == result["new_key"]
    finally:
        node.close()


def test_a_missing_key_file_for_the_key_in_effect_refuses_to_start(tmp_path: Path) -> None:
    data = init(tmp_path)
    assert run("admin", "handover", "--yes", "--data", str(data))[0] == 0
    (data / "node.key.1").rename(tmp_path / "elsewhere")
    code, _, err = run("admin", "enrol", key("c1").public_key.to_text(), "--data", str(data))
    assert code == 1
    assert "is in no key file here" in err


def test_a_handover_naming_a_key_the_node_does_not_hold_is_refused(tmp_path: Path) -> None:
    data = init(tmp_path)
    node = Node.open(data)
    try:
        w = node.writer
        foreign = SecretKey.generate().public_key.to_text()
        head = w.state.head(w.city)
        ev = Event.create(
            w.key,
            "handover",
            {"key": foreign},
            1 if head is None else head.seq + 1,
            None if head is None else head.id,
            int(w.clock()),
        )
        from node.ingest import Submission

        [out] = w.process([Submission(event=ev, verified=True)])
        assert "whose secret key this node holds" in getattr(out, "message", "")
        assert w.size == 0
    finally:
        node.close()


def test_handover_through_the_admin_socket_while_serving(tmp_path: Path, serve_process) -> None:
    data = init(tmp_path)
    old = load_key(data)
    server = serve_process(data)
    d = ("--data", str(data))
    code, out, err = run("admin", "handover", "--yes", "--json", *d)
    assert code == 0, err
    new = PublicKey.from_text(json.loads(out)["new_key"])
    code, out, err = run("admin", "enrol", key("c1").public_key.to_text(), "--json", *d)
    assert code == 0, err
    Receipt.from_dict(json.loads(out)["receipt"]).verify(new)
    assert server.terminate() == 0
    node = Node.open(data)
    try:
        cp = node.store.latest_checkpoint(ORIGIN)
        assert cp is not None
        assert cp.size == 2
        SignedCheckpoint.parse(cp.note).verify(ORIGIN, new)
        assert node.writer.key.public_key == new
        assert node.key == old  # node.key stays the pinned key
    finally:
        node.close()
