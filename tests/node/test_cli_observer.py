"""The observer's commands: `liquide verify` online and offline, `liquide export`, `liquide trust
export`, the HTML report, incremental state, and clear errors for bad input of every kind."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from node.cli import main
from node.client import NodeClient, Response
from protocol.merkle import MemoryTree, leaf_hash
from protocol.verify import NodeMaterial
from tests.protocol._verify_factory import AFTER_GRACE, A, C, Federation, build, flip

Handler = Callable[[str, Mapping[str, str]], Response]


class FakeNode:
    """A Transport answering the node's public API from in-memory material (or overrides)."""

    def __init__(self, material: NodeMaterial, fed: Federation) -> None:
        self.material = material
        self.fed = fed
        self.overrides: dict[str, Handler] = {}
        self.requests: list[str] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Response:
        params = params or {}
        self.requests.append(path)
        for prefix, fn in self.overrides.items():
            if path == prefix:
                return fn(path, params)
        return self.answer(path, params)

    async def close(self) -> None:
        return None

    def answer(self, path: str, params: Mapping[str, str]) -> Response:
        logs = self.material.logs
        if path == "/v1/logs":
            out = []
            for origin, log in logs.items():
                latest = log.checkpoints[-1]
                size = int(latest.split("\n")[1])
                out.append(
                    {
                        "origin": origin,
                        "own": origin == A,
                        "checkpoint": latest,
                        "checkpoint_size": size,
                    }
                )
            return _json({"logs": out})
        if path == "/v1/proofs":
            return _json({"proofs": list(self.material.proofs)})
        if path == "/v1/cosignatures":
            return _error(404, "not_found", "no such route")
        if path == "/v1/assemblies":
            return _json({"assemblies": [{"id": self.fed.assembly.id, "index": 0}]})
        m = re.fullmatch(r"/v1/logs/(.+)/(checkpoint|entries|proof/consistency)", path)
        if m and unquote(m.group(1)) in logs:
            log = logs[unquote(m.group(1))]
            what = m.group(2)
            entries = list(log.entries or [])
            if what == "checkpoint":
                for note in log.checkpoints:
                    if "size" not in params or note.split("\n")[1] == params["size"]:
                        return Response(200, note.encode(), {})
                return _error(404, "not_found", "no checkpoint at that size")
            if what == "entries":
                lo, hi = int(params["start"]), int(params["end"])
                page = entries[lo : min(hi, lo + 4)]  # small pages: the client must loop
                return Response(200, b"".join(x + b"\n" for x in page), {})
            old, new = int(params["old"]), int(params["new"])
            proof = MemoryTree(leaf_hash(x) for x in entries[:new]).consistency_proof(old)
            return _json({"proof": [base64.b64encode(h).decode() for h in proof]})
        return _error(404, "not_found", f"no route {path}")


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode(), {})


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


@pytest.fixture(scope="module")
def fed() -> Federation:
    return build()


def nodes(fed: Federation, **over: NodeMaterial) -> dict[str, FakeNode]:
    out = {}
    for url in ("http://a.example/", "http://c.example/"):
        out[url] = FakeNode(over.get(url, fed.material(url)), fed)
    return out


def cli(
    args: list[str], fakes: Mapping[str, Any] | None = None, now: int = AFTER_GRACE
) -> tuple[int, str, str]:
    fakes = fakes or {}

    def factory(url: str) -> NodeClient:
        if url in fakes:
            return NodeClient(fakes[url])
        return NodeClient(url, timeout=None)

    res = CliRunner().invoke(main, args, obj={"client_factory": factory, "now": now})
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout, res.stderr


def trust_file(tmp_path: Path, fed: Federation, value: Any = None) -> Path:
    p = tmp_path / "trust.json"
    p.write_text(json.dumps(fed.trust_dict() if value is None else value))
    return p


# --- online ----------------------------------------------------------------------------------------


def test_verify_online_passes(tmp_path: Path, fed: Federation) -> None:
    fakes = nodes(fed)
    trust = trust_file(tmp_path, fed)
    code, out, err = cli(
        [
            "verify",
            "--trust",
            str(trust),
            "--node",
            "http://a.example/",
            "--node",
            "http://c.example/",
        ],
        fakes,
    )
    assert code == 0, out + err
    assert out.endswith("PASS\n")
    assert "1. checkpoint signatures and cosignatures: PASS" in out
    assert "winner yes" in out
    # small pages: the client paged through the entries
    assert fakes["http://a.example/"].requests.count("/v1/logs/a.example/liquide/entries") >= 3


def test_verify_online_json_and_html(tmp_path: Path, fed: Federation) -> None:
    trust = trust_file(tmp_path, fed)
    html = tmp_path / "report.html"
    code, out, _ = cli(
        [
            "verify",
            "--trust",
            str(trust),
            "--node",
            "http://a.example/",
            "--json",
            "--html",
            str(html),
        ],
        nodes(fed),
    )
    assert code == 0
    report = json.loads(out)
    assert report["verdict"] == "PASS"
    assert [s["step"] for s in report["steps"]] == list(range(1, 9))
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == page.count("<title id=") == 1
    headings = [int(h) for h in re.findall(r"<h([1-6])", page)]
    assert headings[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(headings))
    assert "<script" not in page
    assert "src=" not in page  # self-contained: nothing fetched
    assert ">PASS<" in page


def test_tampering_online_fails_at_its_step(tmp_path: Path, fed: Federation) -> None:
    trust = trust_file(tmp_path, fed)
    c_mat = fed.material("http://c.example/")
    entries = list(c_mat.logs[C].entries or [])
    entries[6] = flip(entries[6], entries[6].index(b'"ts":') + 6)  # a citizen's ballot
    logs = dict(c_mat.logs)
    logs[C] = type(logs[C])(C, logs[C].checkpoints, entries)
    fakes = nodes(fed, **{"http://c.example/": NodeMaterial("http://c.example/", logs)})
    code, out, _ = cli(
        ["verify", "--trust", str(trust), "--node", "http://c.example/", "--json"], fakes
    )
    assert code == 1
    report = json.loads(out)
    assert report["verdict"] == "FAIL"
    assert report["first_failure"] == 3
    (f,) = [f for f in report["steps"][2]["findings"] if f["severity"] == "error"]
    assert (f["origin"], f["index"], f["node"]) == (C, 6, "http://c.example/")


def test_incremental_state(tmp_path: Path) -> None:
    fed = build(seal=False)
    trust = trust_file(tmp_path, fed)
    state = tmp_path / "state"
    args = ["verify", "--trust", str(trust), "--node", "http://a.example/", "--state", str(state)]
    code, out, err = cli(args, nodes(fed), now=0)
    assert code == 0, out + err
    saved = json.loads((state / "state.json").read_text())
    assert saved["logs"][A]["range"]["size"] == len(fed.a.leaves)
    # nothing new: entries are not downloaded again
    fakes = nodes(fed)
    code, out, _ = cli(args, fakes, now=0)
    assert code == 0
    assert "entries checked" not in out
    assert not any(p.endswith("/entries") for p in fakes["http://a.example/"].requests)
    # a state made under another trust file is refused
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "liquide-trust/v1", "assembly": {"id": "a" * 64}}))
    code, _, err = cli(
        ["verify", "--trust", str(other), "--node", "http://a.example/", "--state", str(state)],
        fakes,
    )
    assert code == 1
    assert "liquide: error: saved state" in err
    # a corrupted state file names the file
    (state / "state.json").write_text("{")
    code, _, err = cli(args, fakes, now=0)
    assert code == 1
    assert "liquide: error: saved state" in err
    assert "state.json" in err


def test_failed_verification_does_not_update_the_state(tmp_path: Path) -> None:
    fed = build(rogue_ballot=True)
    trust = trust_file(tmp_path, fed)
    state = tmp_path / "state"
    code, _, err = cli(
        ["verify", "--trust", str(trust), "--node", "http://a.example/", "--state", str(state)],
        nodes(fed),
    )
    assert code == 1
    assert not (state / "state.json").exists()
    assert "was not updated" in err


# --- offline -----------------------------------------------------------------------------------------


def test_export_then_verify_offline(tmp_path: Path, fed: Federation) -> None:
    trust = trust_file(tmp_path, fed)
    rec = tmp_path / "rec"
    code, out, err = cli(["export", "--node", "http://a.example/", str(rec)], nodes(fed))
    assert code == 0, err
    assert "exported 3 logs" in out
    manifest = json.loads((rec / "record.json").read_text())
    assert manifest["format"] == "liquide-export/v1"
    assert {g["origin"] for g in manifest["logs"]} == {A, C, "b.example/liquide"}
    a_dir = rec / "logs" / "a.example%2Fliquide"
    assert (a_dir / "entries.ndjson").read_bytes().count(b"\n") == len(fed.a.leaves)
    assert sorted(p.name for p in (a_dir / "checkpoints").iterdir())
    code, out, err = cli(["verify", "--trust", str(trust), "--record", str(rec)])
    assert code == 0, out + err
    assert out.endswith("PASS\n")
    # exporting into a non-empty directory is refused
    code, _, err = cli(["export", "--node", "http://a.example/", str(rec)], nodes(fed))
    assert code == 1
    assert "exists and is not an empty directory" in err
    # a flipped byte in the exported entries fails at step 3, naming the entry
    data = bytearray((a_dir / "entries.ndjson").read_bytes())
    lines = bytes(data).split(b"\n")
    target = 10
    start = sum(len(x) + 1 for x in lines[:target])
    pos = start + lines[target].index(b'"ts":') + 6
    data[pos] = ord("x")
    (a_dir / "entries.ndjson").write_bytes(bytes(data))
    code, out, _ = cli(["verify", "--trust", str(trust), "--record", str(rec), "--json"])
    assert code == 1
    report = json.loads(out)
    assert report["first_failure"] == 3
    assert any(f["index"] == target and f["origin"] == A for f in report["steps"][2]["findings"])


def test_two_records_show_a_split_view(tmp_path: Path, fed: Federation) -> None:
    from node._cli_observer import write_record
    from protocol.events import Event  # noqa: F401
    from tests.protocol._events_factory import key
    from tests.protocol._verify_factory import CLOSES
    from tests.protocol.test_verify import fork  # the same fork helper as the engine tests

    n = len(fed.a.leaves)
    other = fork(fed.a, n - 1)
    other.city("enrol", {"key": key("forked").public_key.to_text(), "ref": "fork"}, CLOSES + 30)
    note = other.checkpoint(cosigned_at=CLOSES + 40)
    honest = fed.material("http://a.example/")
    logs = dict(honest.logs)
    logs[A] = type(logs[A])(A, (note,), other.leaves)
    write_record(honest, tmp_path / "one")
    write_record(NodeMaterial("http://a2.example/", logs), tmp_path / "two")
    trust = trust_file(tmp_path, fed)
    code, out, _ = cli(
        [
            "verify",
            "--trust",
            str(trust),
            "--record",
            str(tmp_path / "one"),
            "--record",
            str(tmp_path / "two"),
            "--json",
        ]
    )
    assert code == 1
    report = json.loads(out)
    assert report["first_failure"] == 2
    (f,) = report["steps"][1]["findings"]
    assert f["code"] == "split_view"
    assert f["proof"]["type"] == "split-view"


def test_bad_records_name_the_file(tmp_path: Path, fed: Federation) -> None:
    from node._cli_observer import write_record

    trust = trust_file(tmp_path, fed)
    cases: list[tuple[Callable[[Path], None], str]] = [
        (lambda d: (d / "record.json").unlink(), "record manifest"),
        (lambda d: (d / "record.json").write_text("[1"), "is not JSON"),
        (lambda d: (d / "record.json").write_text('{"format": "x"}'), "is not a liquide-export/v1"),
        (
            lambda d: (d / "record.json").write_text('{"format": "liquide-export/v1"}'),
            "needs 'node' and 'logs'",
        ),
        (lambda d: _manifest(d, logs=[{"origin": A}]), "logs[0] needs origin, dir, start"),
        (lambda d: _manifest(d, logs=[{"origin": A, "dir": "../../etc"}]), "is not logs/<origin>"),
        (lambda d: (d / "proofs.json").write_text("{}"), "needs a 'proofs' array"),
        (lambda d: (_adir(d) / "entries.ndjson").write_bytes(b"{}"), "does not end with a newline"),
        (lambda d: (_adir(d) / "entries.ndjson").unlink(), "cannot read"),
        (lambda d: (_adir(d) / "consistency.json").write_text("{}"), "must be an array"),
        (
            lambda d: (_adir(d) / "consistency.json").write_text('[{"old": 1}]'),
            "is not a consistency proof",
        ),
        (lambda d: _rmtree(_adir(d) / "checkpoints"), "cannot list"),
        (lambda d: (_adir(d) / "checkpoints" / "9.txt").write_bytes(b"\xff"), "cannot read"),
    ]
    for i, (damage, expected) in enumerate(cases):
        d = tmp_path / f"r{i}"
        write_record(fed.material("http://a.example/"), d)
        damage(d)
        code, _, err = cli(["verify", "--trust", str(trust), "--record", str(d)])
        assert code == 1, expected
        assert err.startswith("liquide: error: "), err
        assert expected in err, (expected, err)
        assert "Traceback" not in err


def _adir(d: Path) -> Path:
    return d / "logs" / "a.example%2Fliquide"


def _manifest(d: Path, **changes: Any) -> None:
    m = json.loads((d / "record.json").read_text())
    m.update(changes)
    (d / "record.json").write_text(json.dumps(m))


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p)


# --- trust export ---------------------------------------------------------------------------------------


def test_trust_export_writes_a_pinning_file(tmp_path: Path, fed: Federation) -> None:
    out_file = tmp_path / "t.json"
    code, out, err = cli(
        ["trust", "export", fed.assembly.id, "--node", "http://a.example/", "--out", str(out_file)],
        nodes(fed),
    )
    assert code == 0, err
    t = json.loads(out_file.read_text())
    assert t["assembly"]["id"] == fed.assembly.id
    assert "compare these fingerprints" in err
    assert fed.a.sk.public_key.fingerprint() in err
    code, out, _ = cli(
        ["verify", "--trust", str(out_file), "--node", "http://a.example/"], nodes(fed)
    )
    assert code == 0
    # to stdout, and refusing to overwrite
    code, out, _ = cli(
        ["trust", "export", fed.assembly.id, "--node", "http://a.example/"], nodes(fed)
    )
    assert code == 0
    assert json.loads(out) == t
    code, _, err = cli(
        ["trust", "export", fed.assembly.id, "--node", "http://a.example/", "--out", str(out_file)],
        nodes(fed),
    )
    assert code == 1
    assert "already exists" in err
    code, _, err = cli(["trust", "export", "f" * 64, "--node", "http://a.example/"], nodes(fed))
    assert code == 1
    assert "does not hold assembly" in err
    code, _, err = cli(["trust", "export", "nothex", "--node", "http://a.example/"], nodes(fed))
    assert code == 2


def test_trust_export_refuses_a_leaf_that_is_not_the_definition(
    tmp_path: Path, fed: Federation
) -> None:
    fakes = nodes(fed)
    a = fakes["http://a.example/"]
    a.overrides["/v1/assemblies"] = lambda p, q: _json(
        {"assemblies": [{"id": fed.assembly.id, "index": 2}]}
    )
    code, _, err = cli(["trust", "export", fed.assembly.id, "--node", "http://a.example/"], fakes)
    assert code == 1
    assert "is not the definition of" in err
    a.overrides["/v1/assemblies"] = lambda p, q: _json({"assemblies": "x"})
    code, _, err = cli(["trust", "export", fed.assembly.id, "--node", "http://a.example/"], fakes)
    assert code == 1
    assert "unexpected answer to /v1/assemblies" in err


# --- errors ------------------------------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path, fed: Federation) -> None:
    trust = trust_file(tmp_path, fed)
    assert cli(["verify", "--trust", str(trust)])[0] == 2
    assert cli(["verify", "--trust", str(trust), "--node", "x", "--record", str(tmp_path)])[0] == 2
    assert cli(["verify", "--trust", str(trust), "--node", "x", "--issue", "nope"])[0] == 2
    assert cli(["verify", "--node", "x"])[0] == 2


def test_bad_trust_files_are_one_clear_line(tmp_path: Path, fed: Federation) -> None:
    for value, expected in [
        ("{", "is not JSON"),
        ('{"format": "liquide-trust/v1"}', "must pin an assembly"),
        (
            '{"format": "liquide-trust/v1", "cities": [{"origin": "a", "key": "lqpk1x"}], "k": 0, "grace": 0}',
            "trust.cities[0].key",
        ),
    ]:
        p = tmp_path / "t.json"
        p.write_text(value)
        code, _, err = cli(["verify", "--trust", str(p), "--node", "http://a.example/"], nodes(fed))
        assert code == 1
        assert err.startswith(f"liquide: error: trust file {p}"), err
        assert expected in err
    code, _, err = cli(
        ["verify", "--trust", str(tmp_path / "missing.json"), "--node", "http://a.example/"]
    )
    assert code == 1
    assert "does not exist" in err


def test_unreachable_node(tmp_path: Path, fed: Federation) -> None:
    trust = trust_file(tmp_path, fed)
    code, _, err = cli(["verify", "--trust", str(trust), "--node", "http://127.0.0.1:9/"])
    assert code == 1
    assert err.startswith("liquide: error: http://127.0.0.1:9")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("route", "answer", "expected"),
    [
        ("/v1/logs", Response(200, b"not json", {}), "not JSON"),
        ("/v1/logs", Response(200, b"[]", {}), "unexpected answer to /v1/logs"),
        ("/v1/logs", Response(200, b'{"logs": [3]}', {}), "unexpected answer to /v1/logs"),
        (
            "/v1/logs",
            Response(200, b'{"logs": [{"origin": "a.example/liquide", "checkpoint": 5}]}', {}),
            "the checkpoint of",
        ),
        ("/v1/logs", Response(500, b"oops", {}), "HTTP 500"),
        ("/v1/logs/a.example/liquide/entries", Response(200, b"", {}), "no entries of"),
        (
            "/v1/logs/a.example/liquide/entries",
            Response(200, b"x", {}),
            "does not end with a newline",
        ),
        (
            "/v1/cosignatures",
            Response(200, b'{"cosignatures": 1}', {}),
            "unexpected answer to /v1/cosignatures",
        ),
        (
            "/v1/cosignatures",
            Response(200, b'{"cosignatures": [1]}', {}),
            "unexpected answer to /v1/cosignatures",
        ),
        ("/v1/proofs", Response(200, b'{"proofs": {}}', {}), "unexpected answer to /v1/proofs"),
        ("/v1/proofs", Response(503, b'{"error": {"code": "x", "message": "busy"}}', {}), "busy"),
    ],
)
def test_garbage_answers_are_clear_errors(
    tmp_path: Path, fed: Federation, route: str, answer: Response, expected: str
) -> None:
    trust = trust_file(tmp_path, fed)
    fakes = nodes(fed)
    fakes["http://a.example/"].overrides[route] = lambda p, q: answer
    code, _, err = cli(["verify", "--trust", str(trust), "--node", "http://a.example/"], fakes)
    assert code == 1
    assert err.startswith("liquide: error: "), err
    assert expected in err, err
    assert "Traceback" not in err


def test_a_node_listing_cosignatures_gets_asked_for_those_checkpoints(
    tmp_path: Path, fed: Federation
) -> None:
    trust = trust_file(tmp_path, fed)
    fakes = nodes(fed)
    a = fakes["http://a.example/"]
    sizes = sorted(fed.a.checkpoints)
    rows = [
        {"seq": i + 1, "origin": A, "size": s, "witness": "w", "time": 0}
        for i, s in enumerate(sizes)
    ]
    pages = iter([rows, []])
    a.overrides["/v1/cosignatures"] = lambda p, q: _json({"cosignatures": next(pages)})
    code, out, _ = cli(["verify", "--trust", str(trust), "--node", "http://a.example/"], fakes)
    assert code == 0, out
    asked = [p for p in a.requests if p.endswith("/checkpoint")]
    assert len(asked) >= len(sizes) - 1


def test_progress_bar_on_a_terminal() -> None:
    import io

    from node._cli_observer import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    s = Tty()
    p = Progress(s)
    p("lyon", 0, 10)
    p("lyon", 10, 10)
    p.done()
    assert "[" in s.getvalue()
    assert s.getvalue().endswith("\n")
    quiet = io.StringIO()
    q = Progress(quiet)
    q("x", 1, 2)
    q.done()
    assert quiet.getvalue() == ""


def test_pool_batcher_finds_bad_signatures() -> None:
    import nacl.bindings

    from node._cli_observer import PoolBatcher

    pk, sk = nacl.bindings.crypto_sign_seed_keypair(b"\x02" * 32)
    signed = [nacl.bindings.crypto_sign(bytes([i]) * 40, sk) for i in range(10)]
    signed[3] = bytes(64) + signed[3][64:]
    with PoolBatcher(2) as pool:
        wait = pool.submit([pk] * 10, signed)
        assert wait() == [3]
        assert pool.submit([], [])() == []


# --- a real simulated federation (node/ served through its aiohttp app) --------------------------------


async def test_simulated_federation_verifies_online_and_offline(tmp_path: Path) -> None:
    from node._cli_observer import _definition, fetch_node, read_record, run_verify, write_record
    from protocol.verify import Trust

    from .test_federation_harness import Sim
    from .test_federation_records import CLOSE_IN, _setup

    sim = Sim(tmp_path / "sim")
    try:
        a, b, c, issue, _close = await _setup(sim)
        sim.clock.advance(CLOSE_IN + 1)
        await sim.step(6)
        definition = await _definition(a.client(), a.url, a.fed._own().issue(issue).assembly)
        trust = Trust.of_definition(definition)
        material = [await fetch_node(sn.client(), sn.url) for sn in (a, b, c)]
        now = int(sim.clock()) + 3600
        report, _ = run_verify(trust, material, now=now)
        assert report.passed, report.to_text()
        (result,) = report.issues
        assert result.status == "tallied"
        rec = await c.client().get_json(f"/v1/issues/{issue}/record")
        assert result.record == rec["record_id"]
        assert result.digest == rec["digest"]
        assert report.step(7).counts["attestations agreeing"] == 3
        # the same, exported and read back, with no network
        for sn, m in zip((a, b, c), material, strict=True):
            write_record(m, tmp_path / sn.name)
        offline = [read_record(tmp_path / sn.name) for sn in (a, b, c)]
        report2, _ = run_verify(trust, offline, now=now, workers=2)
        assert report2.passed, report2.to_text()
        assert report2.issues[0].digest == result.digest
    finally:
        await sim.close()


# --- a real `liquide node serve` process, and the observer as real processes too ------------------------


def _liquide(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """The console script as a real process."""
    import subprocess

    from tests.conftest import LIQUIDE

    p = subprocess.run(
        [*LIQUIDE, *args], capture_output=True, timeout=timeout, check=False, text=True
    )
    return p.returncode, p.stdout, p.stderr


def _inproc(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def _get(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def test_real_node_process(tmp_path: Path, serve_process: Any) -> None:
    import time
    import urllib.error
    import urllib.request

    from crypto import SecretKey
    from protocol.events import Event

    data = tmp_path / "city"
    code, _, err = _inproc("node", "init", "--origin", "lyon.example/liquide", "--data", str(data))
    assert code == 0, err
    server = serve_process(data)
    url = server.url

    def admin(*args: str) -> str:
        code, out, err = _inproc("admin", *args, "--data", str(data), "--json")
        assert code == 0, err
        return str(json.loads(out)["event_id"])

    asm = admin("assembly", "create", "--name", "metro")
    area = admin("area", "create", "--assembly", asm, "--name", "transport")
    voter = SecretKey(b"\x07" * 32)
    code, _, err = _inproc("admin", "enrol", voter.public_key.to_text(), "--data", str(data))
    assert code == 0, err
    issue = admin(
        "issue", "create", "--area", area, "--title", "tram", "--option", "yes=Build it",
        "--option", "no=Do not", "--duration", "6s",
    )  # fmt: skip
    ballot = Event.create(
        voter, "ballot", {"issue": issue, "grades": {"yes": 1}}, 1, None, int(time.time())
    )
    req = urllib.request.Request(
        url + "v1/events",
        data=ballot.encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201
    except urllib.error.HTTPError as exc:
        raise AssertionError(exc.read().decode()) from None
    # wait for the close, the automatic seal, the attestation and a checkpoint covering them
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logs = _get(url + "v1/logs")["logs"]
        own = next(g for g in logs if g["own"])
        size = own["checkpoint_size"] or 0
        page = urllib.request.urlopen(
            f"{url}v1/logs/{own['origin']}/entries?start=0&end={size}", timeout=10
        ).read()
        if b'"type":"attest"' in page:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the node never attested its tally")
    trust = tmp_path / "trust.json"
    code, _, err = _inproc("trust", "export", asm, "--node", url, "--out", str(trust))
    assert code == 0, err
    assert "compare these fingerprints" in err
    code, out, err = _liquide("verify", "--trust", str(trust), "--node", url)
    assert code == 0, out + err
    assert out.endswith("PASS\n")
    assert "winner yes" in out
    rec = tmp_path / "rec"
    code, _, err = _inproc("export", "--node", url, str(rec))
    assert code == 0, err
    server.terminate()
    code, out, err = _inproc("verify", "--trust", str(trust), "--record", str(rec), "--json")
    assert code == 0, out + err
    assert json.loads(out)["issues"][0]["winner"] == "yes"
    # and a node that is gone is a clear error, not a traceback
    code, _, err = _inproc("verify", "--trust", str(trust), "--node", url)
    assert code == 1
    assert err.startswith("liquide: error: ")
    assert "Traceback" not in err
