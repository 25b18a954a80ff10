"""`liquide wallet` offline commands through click's runner, with LIQUIDE_HOME in tmp_path."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from crypto import KDF_LEVELS, Keystore, PublicKey, SecretKey, read_keystore, write_keystore
from node._cli_wallet import Wallet, WalletConfig, WalletConfigError, validate_node_url, wallet
from node._wallet_state import ChainState
from node.cli import main

PW = "correct horse battery staple"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str | None]:
    # The runner applies these for each invocation; None removes a variable.
    return {
        "LIQUIDE_HOME": str(home),
        "LIQUIDE_KDF_LEVEL": "min",
        "LIQUIDE_PASSPHRASE": None,
        "LIQUIDE_BACKUP_PASSPHRASE": None,
        "LIQUIDE_WALLET_NAME": None,
        "LIQUIDE_YES": None,
        "LIQUIDE_JSON": None,
    }


@pytest.fixture
def run(env: dict[str, str | None]):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, **extra_env: str | None) -> Result:  # noqa: A002
        return runner.invoke(main, ["wallet", *args], input=input, env={**env, **extra_env})

    return invoke


@pytest.fixture
def created(run, home: Path) -> PublicKey:
    result = run("new", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    return read_keystore(home / "wallet" / "default.key").public


def _key_path(home: Path, name: str = "default") -> Path:
    return home / "wallet" / f"{name}.key"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def pipe_fd() -> Iterator[Callable[[str], int]]:
    opened: list[int] = []

    def make(content: str) -> int:
        r, w = os.pipe()
        os.write(w, content.encode())
        os.close(w)
        opened.append(r)
        return r

    yield make
    for fd in opened:
        os.close(fd)


# new ------------------------------------------------------------------------------------------


def test_new_with_env_passphrase(run, home: Path) -> None:
    result = run("new", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    path = _key_path(home)
    ks = read_keystore(path)
    assert _mode(path) == 0o600
    assert _mode(path.parent) & 0o077 == 0
    assert ks.kdf == KDF_LEVELS["min"]
    assert ks.unlock(PW).public_key == ks.public
    # Data on stdout, diagnostics on stderr.
    assert ks.public.to_text() in result.stdout
    assert ks.fingerprint in result.stdout
    assert "registrar" in result.stdout
    assert "identity document" in result.stdout
    assert "created" in result.stderr
    assert "created" not in result.stdout
    assert "tests only" in result.stderr  # the min level warns


def test_new_prompts_twice_on_stderr(run, home: Path) -> None:
    result = run("new", input=f"{PW}\n{PW}\n")
    assert result.exit_code == 0, result.output
    assert read_keystore(_key_path(home)).unlock(PW)
    assert "passphrase" in result.stderr.lower()
    assert "passphrase" not in result.stdout.lower().replace("your passphrase", "")
    assert PW not in result.output  # hidden input is never echoed


def test_new_mismatched_confirmation_asks_again(run, home: Path) -> None:
    result = run("new", input=f"one\ntwo\n{PW}\n{PW}\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.stderr
    assert read_keystore(_key_path(home)).unlock(PW)


def test_new_with_passphrase_fd(run, home: Path, pipe_fd) -> None:
    fd = pipe_fd(PW + "\n")
    result = run("new", "--passphrase-fd", str(fd))
    assert result.exit_code == 0, result.output
    assert read_keystore(_key_path(home)).unlock(PW)


def test_passphrase_fd_from_env_and_crlf(run, home: Path, pipe_fd) -> None:
    fd = pipe_fd(PW + "\r\n")
    result = run("new", LIQUIDE_PASSPHRASE_FD=str(fd))
    assert result.exit_code == 0, result.output
    assert read_keystore(_key_path(home)).unlock(PW)


def test_passphrase_fd_wins_over_env(run, home: Path, pipe_fd) -> None:
    fd = pipe_fd("from-fd\n")
    assert run("new", "--passphrase-fd", str(fd), LIQUIDE_PASSPHRASE="from-env").exit_code == 0
    assert read_keystore(_key_path(home)).unlock("from-fd")


def test_passphrase_fd_at_eof(run, home: Path, pipe_fd) -> None:
    result = run("new", "--passphrase-fd", str(pipe_fd("")))
    assert result.exit_code == 1
    assert "no passphrase on descriptor" in result.stderr
    assert not _key_path(home).exists()


def test_bad_passphrase_fd_is_a_usage_error(run) -> None:
    result = run("new", "--passphrase-fd", "987")
    assert result.exit_code == 2
    assert "cannot read descriptor 987" in result.stderr


def test_empty_passphrase_is_refused(run, home: Path) -> None:
    result = run("new", LIQUIDE_PASSPHRASE="")
    assert result.exit_code == 1
    assert "liquide: error: the passphrase is empty" in result.stderr
    assert not _key_path(home).exists()


def test_new_refuses_to_replace_without_force(run, home: Path, created: PublicKey) -> None:
    before = _key_path(home).read_bytes()
    result = run("new", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 1
    assert "liquide: error: wallet key 'default' already exists" in result.stderr
    assert "liquide: hint: use --force" in result.stderr
    assert _key_path(home).read_bytes() == before


def test_new_force_asks_for_confirmation(run, home: Path, created: PublicKey) -> None:
    before = _key_path(home).read_bytes()
    result = run("new", "--force", LIQUIDE_PASSPHRASE=PW)  # no answer: aborted
    assert result.exit_code == 1
    assert created.fingerprint() in result.stderr
    assert _key_path(home).read_bytes() == before
    result = run("new", "--force", input="n\n", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 1
    assert _key_path(home).read_bytes() == before
    result = run("new", "--force", input="y\n", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    assert read_keystore(_key_path(home)).public != created


def test_new_force_yes_skips_confirmation(run, home: Path, created: PublicKey) -> None:
    result = run("new", "--force", "--yes", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    assert read_keystore(_key_path(home)).public != created
    assert _mode(_key_path(home)) == 0o600
    assert sorted(p.name for p in (home / "wallet").iterdir()) == ["default.key"]


def test_new_force_yes_over_an_unreadable_key(run, home: Path, created: PublicKey) -> None:
    _key_path(home).write_text("garbage")
    result = run("new", "--force", input="y\n", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    assert "unreadable" in result.stderr


def test_new_json(run) -> None:
    result = run("new", "--json", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert PublicKey.from_text(info["public_key"]).fingerprint() == info["fingerprint"]
    assert info["registrar"]["in_person"] is True


def test_names_select_separate_wallets(run, home: Path) -> None:
    assert run("new", "--name", "alice", LIQUIDE_PASSPHRASE=PW).exit_code == 0
    assert run("new", LIQUIDE_WALLET_NAME="bob", LIQUIDE_PASSPHRASE=PW).exit_code == 0
    assert _key_path(home, "alice").exists()
    assert _key_path(home, "bob").exists()
    assert not _key_path(home).exists()
    a = json.loads(run("show", "--name", "alice", "--json").stdout)
    b = json.loads(run("show", "--name", "bob", "--json").stdout)
    assert a["public_key"] != b["public_key"]


@pytest.mark.parametrize("name", ["Alice", "a b", "../x", "", "-x", "x" * 33])
def test_bad_names_are_usage_errors(run, name: str) -> None:
    result = run("new", "--name", name, LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 2
    assert "--name" in result.stderr


def test_default_kdf_level_is_moderate() -> None:
    for cmd in wallet.commands.values():
        for p in cmd.params:
            if p.name == "kdf_level":
                assert p.default == "moderate"


# show -----------------------------------------------------------------------------------------


def test_show_text(run, home: Path, created: PublicKey) -> None:
    result = run("show")
    assert result.exit_code == 0, result.output
    assert created.to_text() in result.stdout
    assert created.fingerprint() in result.stdout
    assert "in person" in result.stdout
    assert "identity document" in result.stdout
    assert "not set" in result.stdout
    assert result.stderr == ""


def test_show_json(run, home: Path, created: PublicKey) -> None:
    result = run("show", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info == {
        "name": "default",
        "public_key": created.to_text(),
        "fingerprint": created.fingerprint(),
        "key_file": str(_key_path(home)),
        "home_node": None,
        "registrar": {
            "in_person": True,
            "bring": [f"your public key: {created.to_text()}", "an identity document"],
        },
    }
    assert json.loads(run("show", LIQUIDE_JSON="1").stdout) == info


def test_show_needs_no_passphrase_but_verify_does(run, created: PublicKey) -> None:
    assert run("show").exit_code == 0
    ok = run("show", "--verify", LIQUIDE_PASSPHRASE=PW)
    assert ok.exit_code == 0, ok.output
    assert "matches" in ok.stderr
    bad = run("show", "--verify", LIQUIDE_PASSPHRASE="nope")
    assert bad.exit_code == 1
    assert "liquide: error:" in bad.stderr
    assert "wrong passphrase" in bad.stderr
    assert bad.stdout == ""


def test_show_without_wallet(run, home: Path) -> None:
    result = run("show")
    assert result.exit_code == 1
    assert "liquide: error: no wallet key 'default'" in result.stderr
    assert "liquide wallet new" in result.stderr
    assert "liquide wallet import" in result.stderr


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604])
def test_group_readable_key_is_refused(run, home: Path, created: PublicKey, mode: int) -> None:
    _key_path(home).chmod(mode)
    result = run("show")
    assert result.exit_code == 1
    assert str(_key_path(home)) in result.stderr
    assert f"liquide: hint: run: chmod 600 {_key_path(home)}" in result.stderr
    assert result.stdout == ""


def test_corrupted_key_file(run, home: Path, created: PublicKey) -> None:
    path = _key_path(home)
    path.write_bytes(path.read_bytes()[:100])
    result = run("show")
    assert result.exit_code == 1
    assert "not valid JSON (truncated or corrupted?)" in result.stderr


def test_tampered_public_key_is_caught_by_verify(run, home: Path, created: PublicKey) -> None:
    path = _key_path(home)
    doc = json.loads(path.read_text())
    other = SecretKey(b"\x05" * 32).public_key
    doc["public"], doc["fingerprint"] = other.to_text(), other.fingerprint()
    path.write_text(json.dumps(doc))
    result = run("show", "--verify", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 1
    assert "does not match the encrypted secret key" in result.stderr


# export / import ------------------------------------------------------------------------------


def test_export_with_same_passphrase(run, tmp_path: Path, created: PublicKey) -> None:
    backup = tmp_path / "backup.key"
    result = run("export", str(backup), "--same-passphrase", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    assert _mode(backup) == 0o600
    assert read_keystore(backup).unlock(PW).public_key == created
    assert "backup" in result.stderr
    assert result.stdout == ""


def test_export_with_its_own_passphrase(run, tmp_path: Path, created: PublicKey) -> None:
    backup = tmp_path / "backup.key"
    result = run(
        "export", str(backup), LIQUIDE_PASSPHRASE=PW, LIQUIDE_BACKUP_PASSPHRASE="drawer key"
    )
    assert result.exit_code == 0, result.output
    ks = read_keystore(backup)
    assert ks.unlock("drawer key").public_key == created
    assert ks.salt != read_keystore(_key_path(tmp_path / "home")).salt


def test_export_interactive(run, tmp_path: Path, created: PublicKey) -> None:
    backup = tmp_path / "backup.key"
    result = run("export", str(backup), input=f"{PW}\nbk\nbk\n")
    assert result.exit_code == 0, result.output
    assert read_keystore(backup).unlock("bk").public_key == created


def test_two_passphrases_on_one_fd(run, tmp_path: Path, created: PublicKey, pipe_fd) -> None:
    fd = pipe_fd(f"{PW}\nbackup pw\n")
    backup = tmp_path / "backup.key"
    result = run(
        "export", str(backup), "--passphrase-fd", str(fd), "--backup-passphrase-fd", str(fd)
    )
    assert result.exit_code == 0, result.output
    assert read_keystore(backup).unlock("backup pw").public_key == created


def test_export_wrong_passphrase_writes_nothing(run, tmp_path: Path, created: PublicKey) -> None:
    backup = tmp_path / "backup.key"
    result = run("export", str(backup), "--same-passphrase", LIQUIDE_PASSPHRASE="wrong")
    assert result.exit_code == 1
    assert "wrong passphrase" in result.stderr
    assert not backup.exists()


def test_export_never_overwrites_without_force(run, tmp_path: Path, created: PublicKey) -> None:
    backup = tmp_path / "backup.key"
    backup.write_text("precious")
    result = run("export", str(backup), "--same-passphrase", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert backup.read_text() == "precious"
    result = run("export", str(backup), "--same-passphrase", "--force", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 0, result.output
    assert read_keystore(backup).public == created


def test_import_restores_the_same_key(run, tmp_path: Path, home: Path, created: PublicKey) -> None:
    backup = tmp_path / "backup.key"
    run("export", str(backup), LIQUIDE_PASSPHRASE=PW, LIQUIDE_BACKUP_PASSPHRASE="bk")
    _key_path(home).unlink()  # the computer is lost
    result = run("import", str(backup), LIQUIDE_BACKUP_PASSPHRASE="bk", LIQUIDE_PASSPHRASE="new")
    assert result.exit_code == 0, result.output
    ks = read_keystore(_key_path(home))
    assert ks.public == created
    assert ks.unlock("new").public_key == created
    assert created.to_text() in result.stdout
    assert "restored" in result.stderr


def test_import_same_passphrase_interactive(run, tmp_path: Path, home: Path, created) -> None:
    backup = tmp_path / "backup.key"
    run("export", str(backup), "--same-passphrase", LIQUIDE_PASSPHRASE=PW)
    result = run("import", str(backup), "--name", "restored", "--same-passphrase", input=f"{PW}\n")
    assert result.exit_code == 0, result.output
    assert read_keystore(_key_path(home, "restored")).unlock(PW).public_key == created


def test_import_wrong_backup_passphrase(run, tmp_path: Path, home: Path, created) -> None:
    backup = tmp_path / "backup.key"
    run("export", str(backup), "--same-passphrase", LIQUIDE_PASSPHRASE=PW)
    result = run("import", str(backup), "--name", "x", LIQUIDE_BACKUP_PASSPHRASE="nope")
    assert result.exit_code == 1
    assert "wrong passphrase" in result.stderr
    assert str(backup) in result.stderr
    assert not _key_path(home, "x").exists()


def test_import_refuses_to_replace_without_force(run, tmp_path: Path, home: Path, created) -> None:
    other = SecretKey(b"\x44" * 32)
    backup = tmp_path / "other.key"
    write_keystore(backup, Keystore.seal(other, "bk", kdf=KDF_LEVELS["min"]))
    before = _key_path(home).read_bytes()
    result = run("import", str(backup), LIQUIDE_BACKUP_PASSPHRASE="bk", LIQUIDE_PASSPHRASE=PW)
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert _key_path(home).read_bytes() == before
    result = run(
        "import", str(backup), "--force", LIQUIDE_BACKUP_PASSPHRASE="bk", LIQUIDE_PASSPHRASE=PW
    )
    assert result.exit_code == 1  # confirmation not given
    assert _key_path(home).read_bytes() == before
    result = run(
        "import",
        str(backup),
        "--force",
        "--yes",
        LIQUIDE_BACKUP_PASSPHRASE="bk",
        LIQUIDE_PASSPHRASE=PW,
    )
    assert result.exit_code == 0, result.output
    assert read_keystore(_key_path(home)).public == other.public_key


def test_import_same_key_with_force_needs_no_confirmation(run, tmp_path: Path, created) -> None:
    backup = tmp_path / "backup.key"
    run("export", str(backup), "--same-passphrase", LIQUIDE_PASSPHRASE=PW)
    result = run(
        "import", str(backup), "--force", "--same-passphrase", LIQUIDE_BACKUP_PASSPHRASE=PW
    )
    assert result.exit_code == 0, result.output


def test_import_refuses_a_world_readable_backup(run, tmp_path: Path, created) -> None:
    backup = tmp_path / "backup.key"
    run("export", str(backup), "--same-passphrase", LIQUIDE_PASSPHRASE=PW)
    backup.chmod(0o644)
    result = run("import", str(backup), "--name", "x", LIQUIDE_BACKUP_PASSPHRASE=PW)
    assert result.exit_code == 1
    assert f"chmod 600 {backup}" in result.stderr


def test_import_missing_file(run, tmp_path: Path) -> None:
    result = run("import", str(tmp_path / "nope"), LIQUIDE_BACKUP_PASSPHRASE=PW)
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


# use ------------------------------------------------------------------------------------------


def test_use_stores_the_home_node(run, home: Path, created: PublicKey) -> None:
    result = run("use", "https://Lyon.Example/liquide/")
    assert result.exit_code == 0, result.output
    assert "https://lyon.example/liquide" in result.stderr
    assert "warning" not in result.stderr
    path = home / "wallet" / "default.config.json"
    assert json.loads(path.read_text()) == {"version": 1, "node": "https://lyon.example/liquide"}
    assert _mode(path) == 0o600
    assert json.loads(run("show", "--json").stdout)["home_node"] == "https://lyon.example/liquide"
    assert "https://lyon.example/liquide" in run("show").stdout
    # Setting it again (or another one) replaces it.
    assert run("use", "https://villeurbanne.example").exit_code == 0
    assert json.loads(path.read_text())["node"] == "https://villeurbanne.example"
    assert run("use", "https://villeurbanne.example").exit_code == 0


def test_use_warns_on_plain_http_except_loopback(run) -> None:
    result = run("use", "http://lyon.example:8080")
    assert result.exit_code == 0
    assert "warning: plain http" in result.stderr
    for url in ("http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080"):
        result = run("use", url)
        assert result.exit_code == 0, result.output
        assert "warning" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "lyon.example",
        "ftp://lyon.example",
        "https://",
        "https://user:pw@lyon.example",
        "https://lyon.example/?x=1",
        "https://lyon.example/#top",
        "https://lyon.example:99999",
        "https://lyon.example:port",
        " https://lyon.example",
        "https://lyon example",
        "",
    ],
)
def test_use_rejects_bad_urls(run, home: Path, url: str) -> None:
    result = run("use", url)
    assert result.exit_code == 2
    assert "NODE_URL" in result.stderr
    assert not (home / "wallet" / "default.config.json").exists()


def test_use_repairs_a_broken_config(run, home: Path, created: PublicKey) -> None:
    path = home / "wallet" / "default.config.json"
    path.write_text("{nope")
    assert json.loads(run("show", "--json").stdout)["home_node"] is None
    assert run("use", "https://lyon.example").exit_code == 0
    assert json.loads(path.read_text())["node"] == "https://lyon.example"


# Module API -----------------------------------------------------------------------------------


def test_validate_node_url() -> None:
    assert validate_node_url("HTTPS://Lyon.Example:8443/") == "https://lyon.example:8443"
    assert validate_node_url("https://x.example/a/b/") == "https://x.example/a/b"
    with pytest.raises(ValueError, match="no host"):
        validate_node_url("https://:443")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "the config must be"),
        ('{"version": 2, "node": null}', "unsupported config version 2"),
        ('{"version": 1, "node": 3}', "node must be a URL string"),
        ('{"version": 1, "node": "ftp://x"}', "node: 'ftp://x' is not an http"),
    ],
)
def test_config_errors_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    w = Wallet(tmp_path, "default")
    w.config_path.write_text(content)
    with pytest.raises(WalletConfigError, match=message) as info:
        w.config()
    assert str(w.config_path) in info.value.message
    assert info.value.hint


def test_oversized_config(tmp_path: Path) -> None:
    w = Wallet(tmp_path, "default")
    w.config_path.write_text(" " * (64 * 1024 + 1))
    with pytest.raises(WalletConfigError, match="too large"):
        w.config()


def test_wallet_files_and_chain_state(tmp_path: Path) -> None:
    w = Wallet(tmp_path / "wallet", "alice")
    assert w.config() == WalletConfig()
    w.save_config(WalletConfig("https://lyon.example"))
    assert w.config() == WalletConfig("https://lyon.example")
    assert w.chain_state() == ChainState()
    author = SecretKey(b"\x09" * 32).public_key
    w.save_chain_state(ChainState().accepted(author, 1, "c" * 64))
    assert w.chain_state().head(author).next_seq == 2
    assert w.state_path.name == "alice.state.json"


# Conventions ----------------------------------------------------------------------------------


def test_every_wallet_option_has_an_env_var() -> None:
    for name, cmd in wallet.commands.items():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "help":
                assert p.envvar, f"wallet {name} {p.opts} has no environment variable"
                assert str(p.envvar).startswith("LIQUIDE_")


def test_help_documents_non_interactive_passphrases(run) -> None:
    out = run("--help").stdout
    assert "LIQUIDE_PASSPHRASE" in out
    assert "--passphrase-fd" in out
    new_help = run("new", "--help").stdout
    assert "LIQUIDE_PASSPHRASE_FD" in new_help
    assert "tests only" in new_help


# A real process -------------------------------------------------------------------------------


def test_subprocess_new_with_inherited_fd_then_show(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "liquide"
    if not exe.exists():
        pytest.skip("console script not installed")
    env = {**os.environ, "LIQUIDE_HOME": str(tmp_path), "LIQUIDE_KDF_LEVEL": "min"}
    env.pop("LIQUIDE_PASSPHRASE", None)
    r, w = os.pipe()
    os.write(w, f"{PW}\n".encode())
    os.close(w)
    try:
        new = subprocess.run(
            [str(exe), "wallet", "new", "--json", "--passphrase-fd", str(r)],
            env=env,
            pass_fds=(r,),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=60,
        )
    finally:
        os.close(r)
    assert new.returncode == 0, new.stderr
    info = json.loads(new.stdout)
    assert (
        read_keystore(tmp_path / "wallet" / "default.key").unlock(PW).public_key.to_text()
        == (info["public_key"])
    )
    again = subprocess.run(
        [str(exe), "wallet", "new"],
        env={**env, "LIQUIDE_PASSPHRASE": PW},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )
    assert again.returncode == 1
    assert again.stdout == ""
    assert "liquide: error: wallet key 'default' already exists" in again.stderr
