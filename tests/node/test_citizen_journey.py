"""The citizen journey against a running node (`liquide node serve --port 0`): `wallet new` →
the registrar enrols (`liquide admin enrol KEY`) → delegate → vote → seal → `wallet check`
names who cast my weight and through which scope.

Once with click's runner for everything, once with every `liquide wallet …` and `liquide submit`
run as its own process (the passphrase given on an inherited file descriptor). The registrar's
commands run in-process in both: they reach the serving node through its admin socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from node.cli import main
from tests.conftest import LIQUIDE

PW = "journey passphrase"


def _env(home: Path) -> dict[str, str]:
    return {
        "LIQUIDE_HOME": str(home),
        "LIQUIDE_KDF_LEVEL": "min",
        "LIQUIDE_YES": "1",
        "LIQUIDE_CHECKPOINT_INTERVAL_S": "0.05",
        "LIQUIDE_VERIFY_WORKERS": "0",
    }


def _init(data: Path, env: dict[str, str]) -> None:
    r = CliRunner().invoke(
        main, ["node", "init", "--origin", "lyon.example/liquide", "--data", str(data)], env=env
    )
    assert r.exit_code == 0, r.output


Liquide = Callable[..., tuple[int, str, str]]


def _registrar(env: dict[str, str]) -> Liquide:
    """`liquide admin …` (and `node status`) in-process: they reach the served node's socket."""
    runner = CliRunner()

    def liquide(*args: str, passphrase: str | None = None) -> tuple[int, str, str]:
        r = runner.invoke(main, list(args), env={**env, "LIQUIDE_PASSPHRASE": passphrase})
        return r.exit_code, r.stdout, r.stderr

    return liquide


def _journey(wallet: Liquide, registrar: Liquide, data: Path, url: str) -> str:
    """The whole journey; each runs ``liquide(*args, passphrase=…) -> (code, stdout, stderr)``.

    ``wallet`` runs the citizens' commands, ``registrar`` the city's. Returns the area's id.
    """
    d = ["--data", str(data)]

    def run(liquide: Liquide, *args: str, **kw: Any) -> str:
        code, out, err = liquide(*args, **kw)
        assert code == 0, (args, out, err)
        return out

    def ok(*args: str, **kw: Any) -> str:
        return run(registrar if args[0] in ("admin", "node") else wallet, *args, **kw)

    def checkpointed() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the node signs a checkpoint within its interval
            st = json.loads(ok("node", "status", *d, "--json"))
            if st["checkpoint"] and st["checkpoint"]["size"] == st["size"]:
                return
            time.sleep(0.05)
        raise AssertionError("no checkpoint over the whole log")

    def event_id(out: str) -> str:
        return str(json.loads(out)["event_id"])

    asm = event_id(ok("admin", "assembly", "create", "--name", "Lyon", *d, "--json"))
    area = event_id(
        ok("admin", "area", "create", "--assembly", asm, "--name", "Transport", *d, "--json")
    )
    issue = event_id(
        ok(
            "admin", "issue", "create", "--area", area, "--title", "Tram line 9",
            "--option", "build=Build it", "--option", "wait=Wait", *d, "--json",
        )
    )  # fmt: skip
    keys = {}
    for name in ("citizen", "trustee"):
        out = ok("wallet", "new", "--name", name, "--json", passphrase=PW)
        keys[name] = json.loads(out)["public_key"]
        ok("admin", "enrol", keys[name], "--ref", f"desk-{name}", *d)
        ok("wallet", "use", url, "--name", name)
    me, trustee = keys["citizen"], keys["trustee"]

    receipt = json.loads(
        ok("wallet", "delegate", trustee, "--area", area, "--name", "citizen", passphrase=PW)
    )
    assert receipt["origin"] == "lyon.example/liquide"
    ok("wallet", "vote", issue, "--approve", "build", "--name", "trustee", passphrase=PW)
    status = json.loads(ok("wallet", "status", "--json", "--name", "citizen"))
    assert status["issues"][0]["flow"]["path"][-1] == trustee
    assert status["issues"][0]["flow"]["scope"] == "area"
    assert status["delegations"][0]["trustees"] == [{"key": trustee, "enrolment": "enrolled"}]

    ok("admin", "issue", "seal", issue, *d)
    checkpointed()
    report = json.loads(ok("wallet", "check", "--json", "--name", "citizen"))
    assert report["ok"] is True
    assert report["key"] == me
    (event,) = report["events"]
    assert event["status"] == "verified"
    assert (event["cosignatures"], event["k"]) == (0, 0)
    (sealed,) = report["issues"]
    assert sealed["explanation"]["path"][-1] == trustee
    assert sealed["text"] == f"counted, weight cast by {trustee} through your area delegation"
    assert sealed["node_tally"] == sealed["digest"]
    text = ok("wallet", "check", "--name", "trustee")
    assert "you voted directly with weight 2" in text
    assert "result: all verified" in text
    return area


def test_journey_with_the_runner(tmp_path: Path, serve_process) -> None:
    env = _env(tmp_path / "home")
    data = tmp_path / "lyon"
    _init(data, env)
    srv = serve_process(data, env)
    runner = _registrar(env)
    try:
        _journey(runner, runner, data, srv.url)
    finally:
        assert srv.terminate() == 0


def test_journey_with_real_processes(tmp_path: Path, serve_process) -> None:
    env = {**os.environ, **_env(tmp_path / "home")}
    env.pop("LIQUIDE_PASSPHRASE", None)
    data = tmp_path / "lyon"
    _init(data, env)
    srv = serve_process(data, env)

    def liquide(*args: str, passphrase: str | None = None) -> tuple[int, str, str]:
        extra: list[str] = []
        fds: tuple[int, ...] = ()
        if passphrase is not None:
            r, w = os.pipe()
            os.write(w, f"{passphrase}\n{passphrase}\n".encode())
            os.close(w)
            extra, fds = ["--passphrase-fd", str(r)], (r,)
        try:
            p = subprocess.run(
                [*LIQUIDE, *args, *extra],
                env=env,
                capture_output=True,
                text=True,
                pass_fds=fds,
                timeout=120,
                check=False,
            )
        finally:
            for fd in fds:
                os.close(fd)
        return p.returncode, p.stdout, p.stderr

    try:
        registrar = _registrar(env)
        area = _journey(liquide, registrar, data, srv.url)
        # Offline signing, then `liquide submit` as a separate process.
        issue = json.loads(
            registrar("admin", "issue", "create", "--area", area, "--title", "Park",
                    "--option", "yes=Yes", "--data", str(data), "--json")[1]
        )["event_id"]  # fmt: skip
        out = tmp_path / "vote.json"
        code, _, err = liquide(
            "wallet", "vote", issue, "--approve", "yes", "--offline", str(out),
            "--name", "citizen", passphrase=PW,
        )  # fmt: skip
        assert code == 0, err
        code, stdout, err = liquide("submit", str(out), "--name", "citizen")
        assert code == 0, err
        assert json.loads(stdout)["origin"] == "lyon.example/liquide"
        # The node is down: a clear error and exit 1.
        assert srv.terminate() == 0
        code, _, err = liquide("wallet", "status", "--name", "citizen")
        assert code == 1
        assert "liquide: error: cannot reach the home node" in err
        assert "liquide: hint:" in err
    finally:
        srv.kill()
