"""`liquide wallet` online commands and `liquide submit`, through click's runner, against an
in-process node (``create_app`` served on a loopback port from a background thread).

Each test gets a fresh node with an open issue (``open_civic``) whose clock is the real time at
the start of the test, so that the events the wallet signs with ``time.time()`` are within the
node's clock-skew bound.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from crypto import PublicKey, SecretKey
from node._registrar import run_operation
from node._wallet_ops import (
    NodePin,
    ReceiptError,
    Record,
    WalletOpsError,
    _cosignatures,
    parse_grades,
    parse_target,
    parse_trustees,
    verify_receipt,
)
from node.cli import main
from node.server import create_app
from protocol.checkpoint import Checkpoint, cosign, sign_checkpoint
from protocol.events import AssemblyBody, Event
from tests.conftest import FakeClock, open_civic

PW = "correct horse battery staple"


@pytest.fixture
def clock() -> FakeClock:
    # The node's clock starts at the real time: the wallet stamps events with time.time().
    return FakeClock(time.time())


class ThreadServer:
    """A started node served by aiohttp on 127.0.0.1:<free port>, on a loop in a thread."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner, port = self._run(self._start())
        self.url = f"http://127.0.0.1:{port}"

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(create_app(self.node), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def writer(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the node's writer thread (between append groups)."""
        assert self.node.ingest is not None
        return self._run(self.node.ingest.call(fn))

    def admin(self, op: str, **args: Any) -> dict[str, Any]:
        """An admin operation (enrol, unenrol, issue.seal, …) through the single writer."""
        out = self.writer(lambda: run_operation(self.node.writer, op, args))
        self.writer(self.node.writer.sign_checkpoint)
        return out

    def close(self) -> None:
        self._run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def served(make_node: Callable[..., Any], clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """``served(citizens=0)``: (ThreadServer, Civic) with an open issue and no citizens."""
    started: list[ThreadServer] = []

    def make(**settings: Any) -> tuple[ThreadServer, Any]:
        # Checkpoints are signed by the test (ThreadServer.admin, sign), never by the ticker.
        settings.setdefault("checkpoint_interval_s", 3600)
        node = make_node(**settings)
        civic = open_civic(node, clock, citizens=0)
        srv = ThreadServer(node)
        started.append(srv)
        return srv, civic

    yield make
    for srv in started:
        srv.close()


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Result]:
    """``cli(*args, input=None, **env)``: run ``liquide …`` with a private LIQUIDE_HOME."""
    runner = CliRunner()
    base = {
        "LIQUIDE_HOME": str(tmp_path / "home"),
        "LIQUIDE_KDF_LEVEL": "min",
        "LIQUIDE_PASSPHRASE": PW,
        "LIQUIDE_YES": "1",
        "LIQUIDE_JSON": None,
        "LIQUIDE_WALLET_NAME": None,
    }

    def invoke(*args: str, input: str | None = None, **env: str | None) -> Result:  # noqa: A002
        return runner.invoke(main, list(args), input=input, env={**base, **env})

    return invoke


class Citizen:
    """A wallet of the runner's LIQUIDE_HOME (``--name``), enrolled at a served node."""

    def __init__(self, cli: Callable[..., Result], srv: ThreadServer, name: str, home: Path):
        self.cli, self.name = cli, name
        r = cli("wallet", "new", "--name", name, "--json")
        assert r.exit_code == 0, r.output
        self.key = json.loads(r.stdout)["public_key"]
        self.dir = home / "wallet"
        srv.admin("enrol", key=self.key, ref=f"ref-{name}")
        r = cli("wallet", "use", srv.url, "--name", name)
        assert r.exit_code == 0, r.output
        assert "fingerprint" in r.stderr

    def __call__(self, *args: str, **kw: Any) -> Result:
        return self.cli("wallet", *args, "--name", self.name, **kw)

    def ok(self, *args: str, **kw: Any) -> Result:
        r = self(*args, **kw)
        assert r.exit_code == 0, (r.stdout, r.stderr)
        return r

    @property
    def state_path(self) -> Path:
        return self.dir / f"{self.name}.state.json"

    @property
    def events_path(self) -> Path:
        return self.dir / f"{self.name}.events.json"


@pytest.fixture
def town(
    served: Callable[..., Any], cli: Callable[..., Result], tmp_path: Path
) -> Callable[..., Any]:
    """``town(*names)``: (server, civic, {name: Citizen}) with every citizen enrolled."""

    def make(*names: str, **settings: Any) -> tuple[ThreadServer, Any, dict[str, Citizen]]:
        srv, civic = served(**settings)
        people = {n: Citizen(cli, srv, n, tmp_path / "home") for n in names}
        return srv, civic, people

    return make


def _seal(srv: ThreadServer, issue: str) -> None:
    srv.admin("issue.seal", issue=issue)


# Acting on the home node ------------------------------------------------------------------------


def test_delegate_vote_seal_check_names_who_cast_my_weight(town) -> None:
    srv, civic, p = town("alice", "bob")
    alice, bob = p["alice"], p["bob"]
    r = alice.ok("delegate", bob.key, "--area", civic.area)
    receipt = json.loads(r.stdout)
    assert receipt["origin"] == srv.node.origin
    assert "receipt signature verified" in r.stderr
    bob.ok("vote", civic.issue, "--approve", "yes", "--reject", "no")

    status = json.loads(alice.ok("status", "--json").stdout)
    assert status["delegations"][0]["trustees"] == [{"key": bob.key, "enrolment": "enrolled"}]
    (item,) = status["issues"]
    assert item["flow"]["status"] == "delegated"
    assert f"weight cast by {bob.key} through your area delegation" in item["text"]

    _seal(srv, civic.issue)
    r = alice.ok("check")
    assert "verified (index" in r.stdout
    assert f"counted, weight cast by {bob.key} through your area delegation" in r.stdout
    assert "matches the node's" in r.stdout
    r = bob.ok("check", "--json")
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert doc["issues"][0]["text"] == "you voted directly with weight 2"
    assert doc["issues"][0]["digest"] == doc["issues"][0]["node_tally"]


def test_block_revoke_and_withdraw(town) -> None:
    _, civic, p = town("ann", "ben")
    ann, ben = p["ann"], p["ben"]
    ann.ok("delegate", ben.key, "--assembly", civic.assembly)
    ben.ok("vote", civic.issue, "--grade", "yes=+2", "--grade", "no=-1")
    flow = json.loads(ann.ok("status", "--json").stdout)["issues"][0]
    assert flow["flow"]["scope"] == "assembly"
    ann.ok("block", "--area", civic.area)
    flow = json.loads(ann.ok("status", "--json").stdout)["issues"][0]
    assert flow["flow"]["reason"] == "blocked"
    assert "block stops broader delegations" in flow["text"]
    ann.ok("revoke", "--area", civic.area)
    assert json.loads(ann.ok("status", "--json").stdout)["issues"][0]["flow"]["status"] == (
        "delegated"
    )
    # Revoking what does not exist is refused before signing.
    r = ann("revoke", "--issue", civic.issue)
    assert r.exit_code == 1
    assert "nothing to revoke" in r.stderr
    # A vote overrides the delegation; withdrawing lets it apply again.
    ann.ok("vote", civic.issue, "--approve", "no")
    assert json.loads(ann.ok("status", "--json").stdout)["issues"][0]["flow"]["status"] == "direct"
    ann.ok("withdraw", civic.issue)
    assert json.loads(ann.ok("status", "--json").stdout)["issues"][0]["flow"]["status"] == (
        "delegated"
    )
    r = ann("withdraw", civic.issue)
    assert r.exit_code == 1
    assert "nothing to withdraw" in r.stderr


def test_confirmation_is_asked_without_yes(town) -> None:
    _, civic, p = town("amy")
    amy = p["amy"]
    r = amy("vote", civic.issue, "--approve", "yes", input="n\n", LIQUIDE_YES=None)
    assert r.exit_code == 1
    assert "Vote on 'Tram': Build (yes) +1?" in r.stderr
    assert not amy.events_path.exists()
    r = amy("vote", civic.issue, "--approve", "yes", input="y\n", LIQUIDE_YES=None)
    assert r.exit_code == 0, r.output


# Chain state ------------------------------------------------------------------------------------


def test_lost_and_stale_chain_state_are_recovered(town) -> None:
    _, civic, p = town("eve", "fay")
    eve, fay = p["eve"], p["fay"]
    eve.ok("delegate", fay.key, "--area", civic.area)
    stale = eve.state_path.read_text()
    eve.ok("vote", civic.issue, "--approve", "yes")
    # Lost: the head comes back from /v1/voters/{key}, silently.
    eve.state_path.unlink()
    r = eve.ok("vote", civic.issue, "--approve", "no")
    assert json.loads(eve.state_path.read_text())["chains"][eve.key]["seq"] == 3
    # Stale: the node answers 409 naming its head; the wallet recovers and retries once.
    eve.state_path.write_text(stale)
    r = eve.ok("vote", civic.issue, "--grade", "yes=+2")
    assert "local chain state was stale (seq 1)" in r.stderr
    assert "chain head is seq 3" in r.stderr
    assert json.loads(eve.state_path.read_text())["chains"][eve.key]["seq"] == 4
    # status recovers a lost state too.
    eve.state_path.unlink()
    r = eve.ok("status")
    assert "recovered the chain state from the home node: seq 4" in r.stderr


# Offline signing and submit ---------------------------------------------------------------------


def test_offline_sign_then_submit(town, cli, tmp_path: Path) -> None:
    srv, civic, p = town("gus")
    gus = p["gus"]
    gus.ok("delegate", PublicKey(bytes(32)).to_text(), "--issue", civic.issue)  # seq 1 online
    srv.writer(srv.node.writer.sign_checkpoint)
    out = tmp_path / "ballot.json"
    r = gus.ok("vote", civic.issue, "--approve", "yes", "--offline", str(out))
    assert json.loads(r.stdout)["seq"] == 2
    assert "liquide submit" in r.stderr
    assert (out.stat().st_mode & 0o777) == 0o600
    ev = Event.decode(out.read_bytes().rstrip(b"\n"))
    assert ev.type == "ballot"
    assert ev.seq == 2
    # An existing file is never replaced.
    r = gus("vote", civic.issue, "--approve", "yes", "--offline", str(out))
    assert r.exit_code == 1
    assert "already exists" in r.stderr
    # check knows it was never sent.
    assert "unsent" in gus("check").stdout
    # A tampered file is refused before anything is sent.
    bad = tmp_path / "bad.json"
    doc = json.loads(out.read_text())
    doc["body"]["grades"]["yes"] = -1
    bad.write_text(json.dumps(doc, indent=2))
    r = cli("submit", str(bad), "--name", "gus")
    assert r.exit_code == 1
    assert "signature does not verify" in r.stderr
    r = cli("submit", str(out), "--name", "gus")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["event_id"] == ev.id
    # Submitting again is idempotent: the same promise.
    assert (
        json.loads(cli("submit", str(out), "--name", "gus").stdout)["index"]
        == (json.loads(r.stdout)["index"])
    )
    doc = json.loads(gus.ok("check", "--json").stdout)
    assert [e["status"] for e in doc["events"]] == ["verified", "pending"]
    assert "no signed checkpoint covers it yet" in doc["events"][1]["problems"][0]
    srv.writer(srv.node.writer.sign_checkpoint)
    doc = json.loads(gus.ok("check", "--json").stdout)
    assert [e["status"] for e in doc["events"]] == ["verified", "verified"]


def test_submit_a_superseded_offline_event(town, cli, tmp_path: Path) -> None:
    _, civic, p = town("hal")
    hal = p["hal"]
    out = tmp_path / "ballot.json"
    hal.ok("vote", civic.issue, "--approve", "yes", "--offline", str(out))
    assert "not submitted yet (seq 1)" in hal.ok("status").stderr
    hal.state_path.unlink()  # as if signed on another machine: seq 1 is used online next
    hal.ok("vote", civic.issue, "--approve", "no")
    # The wallet ahead of the node (an unsent offline event): recovered, and it says so.
    out2 = tmp_path / "later.json"
    hal.ok("vote", civic.issue, "--grade", "yes=+3", "--offline", str(out2))
    r = hal.ok("vote", civic.issue, "--grade", "yes=+4")
    assert "recovered it and signed again at seq 2" in r.stderr
    assert "signed offline at seq 1, 2 were never submitted" in r.stderr
    r = cli("submit", str(out), "--name", "hal")
    assert r.exit_code == 1
    assert "your chain moved on since it was signed" in r.stderr
    assert "sign the act again" in r.stderr


# Errors -----------------------------------------------------------------------------------------


def test_node_down(cli, tmp_path: Path) -> None:
    assert cli("wallet", "new").exit_code == 0
    r = cli("wallet", "use", "http://127.0.0.1:9")  # discard port: nothing listens
    assert r.exit_code == 0
    assert "could not ask" in r.stderr
    r = cli("wallet", "vote", "a" * 64, "--approve", "yes")
    assert r.exit_code == 1
    assert "cannot reach the home node http://127.0.0.1:9" in r.stderr
    assert "--offline FILE" in r.stderr
    # With no home node at all.
    assert cli("wallet", "new", "--name", "x").exit_code == 0
    r = cli("wallet", "status", "--name", "x")
    assert r.exit_code == 1
    assert "liquide wallet use NODE_URL" in r.stderr


def test_bad_ids_unknown_options_and_trustees(town) -> None:
    _, civic, p = town("ida")
    ida = p["ida"]
    r = ida("vote", "not-an-id", "--approve", "yes")
    assert r.exit_code == 2
    assert "is not an id" in r.stderr
    r = ida("vote", "b" * 64, "--approve", "yes")
    assert r.exit_code == 1
    assert "is not known at the home node" in r.stderr
    r = ida("vote", civic.issue, "--approve", "maybe")
    assert r.exit_code == 2
    assert "has no option 'maybe'" in r.stderr
    assert "yes (Build)" in r.stderr
    r = ida("vote", civic.issue, "--grade", "yes=lots")
    assert r.exit_code == 2
    r = ida("vote", civic.issue, "--approve", "yes", "--reject", "yes")
    assert r.exit_code == 2
    assert "graded twice" in r.stderr
    others = [SecretKey.generate().public_key.to_text() for _ in range(9)]
    r = ida("delegate", *others, "--area", civic.area)
    assert r.exit_code == 2
    assert "at most 8" in r.stderr
    r = ida("delegate", ida.key, "--area", civic.area)
    assert r.exit_code == 2
    assert "your own key" in r.stderr
    r = ida("delegate", "lqpk1nope", "--area", civic.area)
    assert r.exit_code == 2
    r = ida("delegate", others[0], "--area", civic.area, "--issue", civic.issue)
    assert r.exit_code == 2
    assert "exactly one of" in r.stderr
    r = ida("delegate", others[0], "--area", "c" * 64)
    assert r.exit_code == 1
    assert "area " + "c" * 64 + " is not known" in r.stderr
    # A scope from the environment yields to the one on the command line.
    r = ida("delegate", others[0], "--area", civic.area, LIQUIDE_WALLET_ISSUE=civic.issue)
    assert r.exit_code == 0, r.output
    assert "not known at your home node" in r.stderr


def test_sealed_issue_refuses_votes(town) -> None:
    srv, civic, p = town("jo")
    _seal(srv, civic.issue)
    r = p["jo"]("vote", civic.issue, "--approve", "yes")
    assert r.exit_code == 1
    assert "not open for voting: it is sealed" in r.stderr


def test_not_enrolled(served, cli) -> None:
    srv, civic = served()
    assert cli("wallet", "new").exit_code == 0
    assert cli("wallet", "use", srv.url).exit_code == 0
    r = cli("wallet", "vote", civic.issue, "--approve", "yes")
    assert r.exit_code == 1
    assert "does not know your key" in r.stderr
    assert "registrar" in r.stderr


def test_corrupted_receipt_fails_check(town) -> None:
    _, civic, p = town("kim")
    kim = p["kim"]
    kim.ok("vote", civic.issue, "--approve", "yes")
    doc = json.loads(kim.events_path.read_text())
    sig = doc["events"][0]["receipt"]["sig"]
    doc["events"][0]["receipt"]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    kim.events_path.write_text(json.dumps(doc))
    r = kim("check")
    assert r.exit_code == 1
    assert "does not verify against the pinned key" in r.stdout
    assert "PROBLEMS FOUND" in r.stdout


def test_a_node_key_other_than_the_pinned_one_is_refused(town, cli) -> None:
    srv, civic, p = town("lea")
    other = SecretKey.generate().public_key.to_vkey(srv.node.origin)
    r = cli("wallet", "use", srv.url, "--name", "lea", "--node-key", other)
    assert r.exit_code == 1
    assert "not the one you gave" in r.stderr
    # A pin that no longer matches the node's key: receipts are refused.
    cfg = p["lea"].dir / "lea.config.json"
    doc = json.loads(cfg.read_text())
    doc["node_key"] = other
    cfg.write_text(json.dumps(doc))
    r = p["lea"]("vote", civic.issue, "--approve", "yes")
    assert r.exit_code == 1
    # The wallet looks for a handover from the pin to the signing key, and finds none.
    assert "does not verify against its pinned key" in r.stderr
    assert "no handover from the pinned key names (a possible impostor node)" in r.stderr
    r = p["lea"]("status")
    assert r.exit_code == 1
    assert "the checkpoint of test.example/liquide does not verify" in r.stderr
    # `use` again re-pins the node's key, warning that it changed.
    r = cli("wallet", "use", srv.url, "--name", "lea")
    assert "warning: the node's key changed" in r.stderr
    assert p["lea"]("status").exit_code == 0
    # The node accepted it: the chain head and the record are kept for `check`.
    assert json.loads(p["lea"].state_path.read_text())["chains"][p["lea"].key]["seq"] == 1


def test_a_log_that_does_not_extend_what_the_wallet_saw_fails(town) -> None:
    _, civic, p = town("ray")
    ray = p["ray"]
    ray.ok("vote", civic.issue, "--approve", "yes")
    ray.ok("check")
    seen = ray.dir / "ray.seen.json"
    doc = json.loads(seen.read_text())
    (origin,) = doc["logs"]
    good = dict(doc["logs"][origin])
    doc["logs"][origin] = {"size": 2, "root": "A" * 43 + "="}
    seen.write_text(json.dumps(doc))
    r = ray("check")
    assert r.exit_code == 1
    assert "does not extend the checkpoint of size 2" in r.stderr
    assert "split view" in r.stderr
    doc["logs"][origin] = {**good, "size": good["size"] + 5}
    seen.write_text(json.dumps(doc))
    r = ray("status")
    assert r.exit_code == 1
    assert "the log went back" in r.stderr


# Lost keys, cycles, witnesses -------------------------------------------------------------------


def test_lost_key_makes_a_dead_end_that_status_and_check_explain(town, cli) -> None:
    srv, civic, p = town("mia", "ned")
    mia, ned = p["mia"], p["ned"]
    mia.ok("delegate", ned.key, "--area", civic.area)
    # Ned loses his key: the registrar unenrols it and enrols his new one.
    srv.admin("unenrol", key=ned.key, ref="lost")
    r = cli("wallet", "new", "--name", "ned2", "--json")
    srv.admin("enrol", key=json.loads(r.stdout)["public_key"], ref="ned-again")
    r = mia.ok("status")
    assert f"trustee {ned.key} of your area delegation is no longer enrolled" in r.stderr
    assert "[unenrolled]" in r.stdout
    _seal(srv, civic.issue)
    r = mia.ok("check", "--json")
    text = json.loads(r.stdout)["issues"][0]["text"]
    assert text.startswith("lost: dead end")
    assert "no longer enrolled" in text
    assert "new key" in text


def test_cycle_is_reported_as_lost(town) -> None:
    srv, civic, p = town("ola", "pip")
    ola, pip = p["ola"], p["pip"]
    ola.ok("delegate", pip.key, "--area", civic.area)
    pip.ok("delegate", ola.key, "--area", civic.area)
    _seal(srv, civic.issue)
    text = json.loads(ola.ok("check", "--json").stdout)["issues"][0]["text"]
    assert text.startswith(f"lost: cycle through {pip.key[:14]}")


def test_check_reports_missing_cosignatures(served, cli, tmp_path: Path) -> None:
    srv, _ = served()
    witness = SecretKey.generate().public_key.to_text()
    asm = srv.admin("assembly.create", name="Witnessed", witnesses=[["w1.example", witness]], k=1)[
        "event_id"
    ]
    area = srv.admin("area.create", assembly=asm, name="Parks")["event_id"]
    c = Citizen(cli, srv, "quin", tmp_path / "home")
    c.ok("delegate", PublicKey(bytes(32)).to_text(), "--area", area)
    srv.writer(srv.node.writer.sign_checkpoint)
    doc = json.loads(c.ok("check", "--json").stdout)
    (event,) = doc["events"]
    assert event["status"] == "pending"
    assert "0 of the 1 witness cosignatures" in event["problems"][0]


# Pure helpers ---------------------------------------------------------------------------------


def test_cosignatures_are_counted_per_pinned_witness() -> None:
    city = SecretKey.generate()
    w1, w2 = SecretKey.generate(), SecretKey.generate()
    cp = Checkpoint("x.example/log", 3, bytes(32))
    sc = sign_checkpoint(cp, city).with_signature(cosign(cp, "w1", w1, 100))
    sc = sc.with_signature(cosign(cp, "w2", SecretKey.generate(), 100))  # not w2's key
    body = AssemblyBody.from_dict(
        {
            "name": "A",
            "members": [{"origin": "x.example/log", "key": city.public_key.to_text()}],
            "witnesses": [
                {"name": "w1", "key": w1.public_key.to_text()},
                {"name": "w2", "key": w2.public_key.to_text()},
            ],
            "k": 2,
            "grace": 0,
        }
    )
    assert _cosignatures(sc, body) == (1, ["w1"])


def test_parsers() -> None:
    me = SecretKey.generate().public_key
    t = SecretKey.generate().public_key.to_text()
    assert parse_trustees([t.upper()], me) == (t,)
    with pytest.raises(ValueError, match="listed twice"):
        parse_trustees([t, t], me)
    with pytest.raises(ValueError, match="at least one"):
        parse_trustees([], me)
    assert parse_grades(["a=+3", "b=-2", "c=0"], ["d"], ["e"]) == {
        "a": 3,
        "b": -2,
        "c": 0,
        "d": 1,
        "e": -1,
    }
    with pytest.raises(ValueError, match="out of range"):
        parse_grades(["a=9999999999"], [], [])
    assert parse_target(None, "A" * 64, None).to_dict() == {"scope": "area", "target": "a" * 64}
    with pytest.raises(ValueError, match="exactly one"):
        parse_target(None, None, None)


def test_receipt_verification() -> None:
    city = SecretKey.generate()
    pin = NodePin("x.example/log", city.public_key.to_vkey("x.example/log"))
    from protocol.checkpoint import Receipt

    r = Receipt.create(city, "x.example/log", "d" * 64, 4, time=10).to_dict()
    assert verify_receipt(r, pin, "d" * 64) == r
    with pytest.raises(ReceiptError, match="not e"):
        verify_receipt(r, pin, "e" * 64)
    forged = Receipt.create(SecretKey.generate(), "x.example/log", "d" * 64, 4, time=10)
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(forged.to_dict(), pin)
    with pytest.raises(ReceiptError, match="origin"):
        verify_receipt({**r, "origin": "y.example"}, pin)
    with pytest.raises(WalletOpsError, match="named"):
        NodePin("y.example", pin.vkey)


def test_batch_form_receipt_verification() -> None:
    """A receipt of the batch form verifies by the pinned key and only for the event's bytes."""
    from protocol.checkpoint import BatchReceipt
    from protocol.merkle import MemoryTree, inclusion_proof, leaf_hash

    city = SecretKey.generate()
    origin = "x.example/log"
    pin = NodePin(origin, city.public_key.to_vkey(origin))
    leaves = [b"leaf %d" % i for i in range(3)]
    hashes = [leaf_hash(x) for x in leaves]
    batch = BatchReceipt.create(city, origin, 7, hashes, time=10)
    path = inclusion_proof(MemoryTree(hashes), 1, 3)
    r = batch.receipt("d" * 64, 8, hashes[1], path).to_dict()
    assert verify_receipt(r, pin, "d" * 64, leaves[1]) == r
    with pytest.raises(ReceiptError, match="another leaf"):
        verify_receipt(r, pin, "d" * 64, leaves[2])
    with pytest.raises(ReceiptError, match="path"):
        verify_receipt({**r, "index": 9}, pin, "d" * 64, leaves[1])
    forged = BatchReceipt.create(SecretKey.generate(), origin, 7, hashes, time=10)
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(forged.receipt("d" * 64, 8, hashes[1], path).to_dict(), pin)
    with pytest.raises(WalletOpsError, match=r"x\.event"):
        Record.from_dict({"event": {}, "origin": None, "receipt": None}, "x")


# Across cities ----------------------------------------------------------------------------------


async def _two_cities(sim: Any) -> dict[str, Any]:
    """A and C are the member cities, B witnesses both (k = 1); Ann (at A) delegates the open
    issue to Cat (at C), who votes. Returns what the tests need."""
    from node._wallet_ops import Target, delegate_body, fetch_pin, send_event
    from node._wallet_state import ChainHead

    from .test_federation_harness import make_assembly, make_issue

    a, b, c = await sim.line(["a", "b", "c"])
    asm = await make_assembly(a, [a, c], [b], k=1, grace=60)
    await sim.step(2)
    await sim.join(c, asm, via=b)
    now = int(sim.clock())
    _, issue = await make_issue(a, asm, opens=now, closes=now + 100)
    await sim.step(3)
    ann = await a.enrol_citizen("ann")
    await c.enrol_citizen("cat")
    cat = c.citizens["cat"].public_key.to_text()
    client = a.client()
    pin = await fetch_pin(client)
    notes: list[str] = []
    body = delegate_body(Target("issue", issue), [cat])
    sent = await send_event(
        client, ann, "delegate", body, ChainHead(), now=now, notify=notes.append
    )
    assert notes == []
    await c.submit("cat", "ballot", {"issue": issue, "grades": {"yes": 1, "no": -1}})
    await sim.step(2)
    record = Record(sent.event, pin.origin, sent.verify(pin))
    return {"a": a, "b": b, "c": c, "issue": issue, "ann": ann, "cat": cat, "client": client,
            "pin": pin, "record": record}  # fmt: skip


async def test_check_across_two_cities_with_a_witness(tmp_path: Path) -> None:
    """The wallet's check, with A as home node, recomputes the two-city record from A's own
    log and its mirror of C, and counts B's cosignature against k."""
    from node._wallet_ops import check_report, fetch_pin

    from .test_federation_harness import Sim

    sim = Sim(tmp_path)
    try:
        t = await _two_cities(sim)
        sim.clock.advance(101)
        await sim.step(4)
        ann, b, c, cat = t["ann"], t["b"], t["c"], t["cat"]
        report = await check_report(t["client"], t["pin"], ann.public_key, [t["record"]])
        (event,) = report["events"]
        assert event["status"] == "verified", event
        assert (event["cosignatures"], event["k"], event["witnesses"]) == (1, 1, [b.origin])
        (item,) = report["issues"]
        assert item["text"] == f"counted, weight cast by {cat} through your issue delegation"
        assert item["node_tally"] == item["digest"]
        assert report["ok"] is True
        # A wallet whose home is C recomputes the same record from C's log and its mirror of A.
        c_client = c.client()
        c_pin = await fetch_pin(c_client)
        report = await check_report(c_client, c_pin, ann.public_key, [])
        assert report["issues"][0]["explanation"]["status"] == "delegated"
    finally:
        await sim.close()


async def test_check_when_a_member_city_never_seals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C never seals: once a checkpoint of C cosigned after close + grace shows no seal, the
    record stands in a witnessed checkpoint for it, which the wallet does not recompute; it says
    so and reports the node's own explanation."""
    from node._wallet_ops import check_report

    from .test_federation_harness import Sim
    from .test_federation_records import never_seals

    sim = Sim(tmp_path)
    try:
        t = await _two_cities(sim)
        never_seals(monkeypatch, t["c"])
        sim.clock.advance(101)
        await sim.step(2)
        sim.clock.advance(60)
        await t["c"].enrol_citizen("later")
        await sim.step(3)
        report = await check_report(t["client"], t["pin"], t["ann"].public_key, [t["record"]])
        (item,) = report["issues"]
        assert item["status"] == "unverified"
        assert "no sealed, verifiable log of " + t["c"].origin in item["problems"][0]
        assert item["text"] == (
            "as the node reports it (not recomputed): counted, weight cast by"
            f" {t['cat']} through your issue delegation"
        )
        assert report["ok"] is True
    finally:
        await sim.close()


# check against a scripted node ------------------------------------------------------------------


class _Scripted:
    """A Transport answering fixed paths (404 with an error body elsewhere)."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes

    async def request(self, method: str, path: str, **_: Any) -> Any:
        from node.client import Response

        if path in self.routes:
            return Response(200, json.dumps(self.routes[path]).encode())
        return Response(404, b'{"error": {"code": "not_found", "message": "no such thing"}}')

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("case", ["ok", "missing", "moved", "other_leaf", "bad_proof", "rejected"])
async def test_check_record_against_a_scripted_node(case: str) -> None:
    import base64

    from node._wallet_ops import _check_record
    from node.client import NodeClient
    from protocol.checkpoint import Receipt
    from protocol.merkle import MemoryTree, inclusion_proof, leaf_hash
    from protocol.state import Finding, State

    origin = "x.example/log"
    city, me = SecretKey.generate(), SecretKey.generate()
    pin = NodePin(origin, city.public_key.to_vkey(origin))
    ev = Event.create(me, "withdraw", {"issue": "f" * 64}, 1, None, 5)
    other = Event.create(me, "withdraw", {"issue": "e" * 64}, 1, None, 5)
    leaves = [other.encode(), ev.encode()]
    tree = MemoryTree([leaf_hash(x) for x in leaves])
    proof = [base64.b64encode(h).decode() for h in inclusion_proof(tree, 1, 2)]
    note = sign_checkpoint(Checkpoint(origin, 2, tree.root()), city).to_text()
    receipt = Receipt.create(city, origin, ev.id, 1, time=5).to_dict()
    doc = {"index": 1, "leaf": ev.encode().decode(), "checkpoint": note, "proof": proof}
    if case == "moved":
        doc["index"] = 0
    elif case == "other_leaf":
        doc["leaf"] = other.encode().decode()
    elif case == "bad_proof":
        doc["proof"] = proof[::-1] + proof
    routes = {} if case == "missing" else {f"/v1/receipts/{ev.id}": doc}
    rejected = (
        {ev.id: Finding(origin, 1, ev.id, "no_ballot", "nothing to withdraw")}
        if case == "rejected"
        else {}
    )
    out = await _check_record(
        NodeClient(_Scripted(routes)),
        pin,
        Record(ev, origin, receipt),
        State(origin, city.public_key.to_text()),
        rejected,
    )
    expected = {
        "ok": None,
        "missing": "portable proof of censorship",
        "moved": "now puts it at index 0, not at 1",
        "other_leaf": "is not your event",
        "bad_proof": "inclusion proof does not verify",
        "rejected": "replaying the log rejects it (no_ballot",
    }[case]
    if expected is None:
        assert out["status"] == "verified", out
        assert (out["checkpoint_size"], out["cosignatures"], out["k"]) == (2, 0, 0)
    else:
        assert out["status"] == "failed"
        assert expected in out["problems"][0]


# Across the city's key handover (docs/SECURITY.md §3.3) --------------------------------------


def test_a_citizen_votes_across_the_city_handover_and_receipts_status_check_verify(town) -> None:
    """Ann votes before the city's handover, Bob delegates to her right after it (before any
    checkpoint covers it) and Ann votes again after it: every receipt, status and check verify
    from the pinned first key, and the key in effect is shown."""
    from node._registrar import handover

    srv, civic, p = town("ann", "bob", "cy")
    ann, bob, cy = p["ann"], p["bob"], p["cy"]
    ann.ok("vote", civic.issue, "--approve", "yes")
    srv.writer(srv.node.writer.sign_checkpoint)
    assert "node key:" not in ann.ok("status").stdout
    out = srv.writer(lambda: handover(srv.node.writer))
    old, new = out["old_key"], PublicKey.from_text(out["new_key"])
    pinned = json.loads((ann.dir / "ann.config.json").read_text())["node_key"]
    assert PublicKey.from_vkey(pinned)[1].to_text() == old  # the pin stays the first key
    # No checkpoint covers the handover yet: the receipt by the new key is followed lazily.
    r = bob.ok("delegate", ann.key, "--issue", civic.issue)
    assert "receipt signature verified" in r.stderr
    assert f"followed the home node's key handover: receipts of {srv.node.origin} are now signed by {new.fingerprint()}" in r.stderr  # fmt: skip
    chain = json.loads((bob.dir / "bob.keys.json").read_text())
    assert chain["keys"] == [old, new.to_text()]
    srv.writer(srv.node.writer.sign_checkpoint)  # by the new key
    r = ann.ok("vote", civic.issue, "--approve", "yes", "--reject", "no")
    assert "followed the home node's key handover" in r.stderr
    assert "followed" not in bob.ok("delegate", ann.key, "--issue", civic.issue).stderr
    status = json.loads(ann.ok("status", "--json").stdout)
    assert status["home_node"]["keys"] == [old, new.to_text()]
    assert status["home_node"]["key_in_effect"] == new.to_text()
    assert f"node key:  in effect {new.fingerprint()}" in ann.ok("status").stdout
    assert f"node key:    in effect {new.fingerprint()}" in ann.ok("show").stdout
    # An event signed offline and handed over with `liquide submit` follows the handover too.
    signed = cy.dir.parent / "cy-vote.json"
    cy.ok("vote", civic.issue, "--approve", "yes", "--offline", str(signed))
    r = cy.cli("submit", str(signed), "--name", "cy")
    assert r.exit_code == 0, r.stderr
    assert "receipt signature verified" in r.stderr
    assert json.loads((cy.dir / "cy.keys.json").read_text())["keys"] == [old, new.to_text()]
    _seal(srv, civic.issue)
    r = ann.ok("check")
    assert r.stdout.count("verified (index") == 2  # one receipt by each key
    assert f"node key:  in effect {new.fingerprint()}" in r.stdout
    report = json.loads(bob.ok("check", "--json").stdout)
    assert report["ok"] is True
    assert [e["status"] for e in report["events"]] == ["verified", "verified"]
    assert report["issues"][0]["text"] == (
        f"counted, weight cast by {ann.key} through your issue delegation"
    )
    # A wallet that lost its key chain follows it again from the pin.
    (ann.dir / "ann.keys.json").unlink()
    assert json.loads(ann.ok("check", "--json").stdout)["ok"] is True
    assert json.loads((ann.dir / "ann.keys.json").read_text())["keys"] == [old, new.to_text()]


class _LogNode:
    """A Transport serving one log: ``/v1/logs``, its checkpoint note and its entries."""

    def __init__(self, origin: str, leaves: list[bytes], note: str) -> None:
        self.origin, self.leaves, self.note = origin, leaves, note

    async def request(self, method: str, path: str, *, params: Any = None, **_: Any) -> Any:
        from node.client import Response

        base = f"/v1/logs/{self.origin}"
        if path == "/v1/logs":
            logs = [{"origin": self.origin, "own": True, "size": len(self.leaves)}]
            return Response(200, json.dumps({"logs": logs}).encode())
        if path == f"{base}/checkpoint":
            return Response(200, self.note.encode())
        if path == f"{base}/entries":
            start, end = int(params["start"]), int(params["end"])
            return Response(200, b"".join(x + b"\n" for x in self.leaves[start:end]))
        return Response(404, b'{"error": {"code": "not_found", "message": "no such thing"}}')

    async def close(self) -> None:
        pass


async def test_a_checkpoint_or_receipt_by_a_key_no_handover_names_is_refused() -> None:
    """The log hands A's key over to a2. A checkpoint signed by a key no handover from the pin
    names (or named only by a handover its predecessor did not sign) is refused as a possible
    impostor's, one by the retired key is named so, and receipts by any key outside the chain
    are refused even after following the log."""
    from node._wallet_ops import (
        fetch_verified_log,
        verify_receipt_following,
    )
    from node.client import NodeClient
    from protocol.checkpoint import BatchReceipt, Receipt
    from protocol.merkle import leaf_hash, root_from_leaves
    from tests.protocol._events_factory import Author
    from tests.protocol.test_handover import handed_over
    from tests.protocol.test_state import A, World

    w = World()
    leaves, _ = handed_over(w)
    pin = NodePin(A, w.a.sk.public_key.to_vkey(A))
    rogue = SecretKey.generate()

    def node(signer: SecretKey, log: list[bytes] = leaves) -> NodeClient:
        cp = Checkpoint(A, len(log), root_from_leaves([leaf_hash(x) for x in log]))
        return NodeClient(_LogNode(A, log, sign_checkpoint(cp, signer).to_text()))

    with pytest.raises(ReceiptError, match="a possible impostor node") as bad:
        await fetch_verified_log(node(rogue), A, pin.key)
    assert bad.value.code == "unknown_key"
    assert w.a2.pk in bad.value.message  # the key in effect it should have been signed by
    with pytest.raises(ReceiptError, match=f"signed by {w.a.pk}, a key a handover retired"):
        await fetch_verified_log(node(w.a.sk), A, pin.key)
    # A "handover" by a key other than the one in effect names nobody.
    r2 = Author(SecretKey.generate())
    forged = [*leaves, Author(rogue).sign("handover", {"key": r2.pk}).leaf]
    with pytest.raises(ReceiptError, match="a possible impostor node"):
        await fetch_verified_log(node(r2.sk, forged), A, pin.key)

    log = await fetch_verified_log(node(w.a2.sk), A, pin.key)
    assert log.city_keys == (w.a.pk, w.a2.pk)
    ev_id = "d" * 64
    by_new = Receipt.create(w.a2.sk, A, ev_id, len(leaves), time=10).to_dict()
    receipt, followed = await verify_receipt_following(
        node(w.a2.sk), by_new, pin, [w.a.pk], event_id=ev_id
    )
    assert receipt == by_new
    assert followed is not None
    assert followed.chain() == (w.a.pk, w.a2.pk)
    leaf = b"some leaf"
    batch = BatchReceipt.create(w.a2.sk, A, len(leaves), [leaf_hash(leaf)], time=10)
    by_batch = batch.receipt(ev_id, len(leaves), leaf_hash(leaf), []).to_dict()
    assert verify_receipt(by_batch, pin, ev_id, leaf, keys=followed.chain()) == by_batch
    rogue_batch = BatchReceipt.create(rogue, A, len(leaves), [leaf_hash(leaf)], time=10)
    for forged_receipt in (
        Receipt.create(rogue, A, ev_id, len(leaves), time=10).to_dict(),
        rogue_batch.receipt(ev_id, len(leaves), leaf_hash(leaf), []).to_dict(),
    ):
        with pytest.raises(ReceiptError) as bad:
            await verify_receipt_following(
                node(w.a2.sk), forged_receipt, pin, [w.a.pk, w.a2.pk], event_id=ev_id, leaf=leaf
            )
        assert bad.value.code == "receipt_key"
        assert f"nor the 1 key(s) its handovers named (in effect: {w.a2.pk})" in bad.value.message
        assert "names no handover to the key that signed it (a possible impostor node)" in (
            bad.value.message
        )
