"""``liquide node peer add/list/remove`` and ``admin assembly join`` / ``issue adopt`` on an
offline data directory (no node serving it)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from crypto import SecretKey
from node.cli import main


def _init(runner: CliRunner, d: Path, origin: str) -> dict[str, str]:
    r = runner.invoke(main, ["node", "init", "--origin", origin, "--data", str(d), "--json"])
    assert r.exit_code == 0, r.output
    out: dict[str, str] = json.loads(r.output)
    return out


def test_peer_add_list_remove(tmp_path: Path) -> None:
    runner = CliRunner()
    d = tmp_path / "a"
    _init(runner, d, "a.example/liquide")
    other = _init(runner, tmp_path / "b", "b.example/liquide")
    keyfile = tmp_path / "b.json"
    keyfile.write_text(json.dumps(other))
    r = runner.invoke(
        main,
        ["node", "peer", "add", "http://127.0.0.1:9/", "--origin", "b.example/liquide",
         "--key-file", str(keyfile), "--data", str(d)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "pinned as b.example/liquide" in r.output
    r = runner.invoke(main, ["node", "peer", "list", "--json", "--data", str(d)])
    assert r.exit_code == 0, r.output
    (peer,) = json.loads(r.output)
    assert (peer["url"], peer["origin"], peer["vkey"]) == (
        "http://127.0.0.1:9/",
        "b.example/liquide",
        other["vkey"],
    )
    # A verifier key named for another origin is refused, with a clear error.
    r = runner.invoke(
        main,
        ["node", "peer", "add", "http://127.0.0.1:8/", "--origin", "c.example/liquide",
         "--key", other["vkey"], "--data", str(d)],
    )  # fmt: skip
    assert r.exit_code == 1
    assert "not the peer's origin" in r.output
    r = runner.invoke(main, ["node", "peer", "remove", "http://127.0.0.1:9/", "--data", str(d)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["node", "peer", "list", "--data", str(d)])
    assert "no peers" in r.output
    r = runner.invoke(main, ["node", "peer", "remove", "http://127.0.0.1:9/", "--data", str(d)])
    assert r.exit_code == 1


def test_join_and_adopt_need_a_known_definition(tmp_path: Path) -> None:
    runner = CliRunner()
    d = tmp_path / "a"
    _init(runner, d, "a.example/liquide")
    missing = "ab" * 32
    for args in (["admin", "assembly", "join", missing], ["admin", "issue", "adopt", missing]):
        r = runner.invoke(main, [*args, "--data", str(d)])
        assert r.exit_code == 1
        assert "sync with a peer that holds it first" in r.output
    r = runner.invoke(main, ["admin", "assembly", "join", "nothex", "--data", str(d)])
    assert r.exit_code == 1
    # A member pinned by its C2SP verifier key, as peers are.
    vkey = SecretKey.generate().public_key.to_vkey("b.example/liquide")
    r = runner.invoke(
        main,
        ["admin", "assembly", "create", "--name", "m", "--member", f"b.example/liquide={vkey}",
         "--data", str(d), "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
