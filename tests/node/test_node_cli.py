"""``liquide node`` and ``liquide admin``: offline through click, online through a real serve."""

from __future__ import annotations

import json
import stat
import subprocess
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from node.cli import main
from protocol.checkpoint import SignedCheckpoint
from tests.conftest import LIQUIDE, key


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def ids(out: str) -> str:
    return json.loads(out)["event_id"]


def init(tmp_path: Path) -> Path:
    data = tmp_path / "city"
    code, out, _ = run(
        "node", "init", "--origin", "lyon.example/liquide", "--data", str(data), "--json"
    )
    assert code == 0
    assert json.loads(out)["vkey"].startswith("lyon.example/liquide+")
    return data


def test_init_status_and_admin_offline(tmp_path: Path) -> None:
    data = init(tmp_path)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "node.key").stat().st_mode) == 0o600
    d = ["--data", str(data), "--json"]
    citizen = key("cli-citizen").public_key.to_text()
    assert run("admin", "enrol", citizen, "--ref", "desk-7", *d)[0] == 0
    asm = ids(run("admin", "assembly", "create", "--name", "Lyon", "--grace", "1h", *d)[1])
    area = ids(run("admin", "area", "create", "--assembly", asm, "--name", "Transport", *d)[1])
    code, out, _ = run(
        "admin", "issue", "create", "--area", area, "--title", "Tram", "--option", "yes=Build",
        "--option", "no=Wait", "--opens", "now", "--duration", "2h", "--rule", "dfd", *d,
    )  # fmt: skip
    assert code == 0
    issue = ids(out)
    assert run("admin", "issue", "seal", issue, *d)[0] == 0
    code, _, err = run("admin", "issue", "seal", issue, *d)
    assert code == 1
    assert "already sealed" in err
    assert run("admin", "unenrol", citizen, *d)[0] == 0
    code, out, _ = run("node", "status", *d)
    status = json.loads(out)
    assert (status["serving"], status["size"], status["issues"], status["sealed"]) == (
        False,
        6,
        1,
        1,
    )
    assert status["checkpoint"]["size"] == 6  # offline commands sign before closing


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    data = init(tmp_path)
    code, _, err = run("node", "init", "--origin", "x.example", "--data", str(data))
    assert code == 1
    assert "already holds a node" in err
    code, _, err = run("admin", "enrol", "lqpk1nonsense", "--data", str(data))
    assert code == 1
    assert err.startswith("liquide: error: key 'lqpk1nonsense' is not a public key")
    code, _, err = run(
        "admin", "area", "create", "--assembly", "ab" * 32, "--name", "x", "--data", str(data)
    )
    assert code == 1
    assert "not defined or joined" in err
    code, _, err = run("node", "status", "--data", str(tmp_path / "none"))
    assert code == 1
    assert "does not exist" in err
    code, _, err = run(
        "admin",
        "issue",
        "create",
        "--area",
        "a",
        "--title",
        "t",
        "--option",
        "bad",
        "--data",
        str(data),
    )
    assert code == 2
    assert "ID=TITLE" in err


def test_serve_admin_socket_and_single_writer(tmp_path: Path, serve_process) -> None:
    data = init(tmp_path)
    server = serve_process(data)
    assert server.url.startswith("http://127.0.0.1:")
    sock = data / "admin.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    # A second serve on the same data directory refuses, naming the holder.
    second = subprocess.run(
        [*LIQUIDE, "node", "serve", "--data", str(data), "--port", "0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert b"liquide: error: another process (pid" in second.stderr
    assert second.stdout == b""
    # Admin commands go through the socket while serve runs.
    citizens = [key(f"sock-{i}").public_key.to_text() for i in range(3)]
    for c in citizens:
        code, out, err = run("admin", "enrol", c, "--data", str(data), "--json")
        assert code == 0, err
    code, out, _ = run("node", "status", "--data", str(data), "--json")
    status = json.loads(out)
    assert status["serving"] is True
    assert status["enrolled"] == 3
    with urllib.request.urlopen(server.url + "v1/logs") as resp:
        logs = json.load(resp)["logs"]
    assert logs[0]["size"] == 3
    assert server.terminate() == 0
    assert not sock.exists()
    # The final checkpoint covers everything, and the log is consistent offline.
    code, out, _ = run("node", "status", "--data", str(data), "--json")
    status = json.loads(out)
    assert status["serving"] is False
    assert status["checkpoint"]["size"] == status["size"] == 3
    from node.store import Store

    store = Store.open(data, writer=True)
    try:
        info = store.verify_log("lyon.example/liquide")
        cp = store.latest_checkpoint(info.origin)
        assert cp is not None
        assert SignedCheckpoint.parse(cp.note).checkpoint.root == info.root()
    finally:
        store.close()


def test_admin_after_a_crash_acts_offline(tmp_path: Path, serve_process) -> None:
    data = init(tmp_path)
    server = serve_process(data)
    server.kill()  # SIGKILL: the socket file stays behind, nobody listens on it
    assert (data / "admin.sock").exists()
    citizen = key("after-crash").public_key.to_text()
    code, out, err = run("admin", "enrol", citizen, "--data", str(data), "--json")
    assert code == 0, err
    code, out, _ = run("node", "status", "--data", str(data), "--json")
    status = json.loads(out)
    assert (status["serving"], status["enrolled"], status["checkpoint"]["size"]) == (False, 1, 1)
