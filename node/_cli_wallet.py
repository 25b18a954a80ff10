"""``liquide wallet …``: the citizen's keys, home node, and (later) delegations and ballots.

This module is the CLI edge of the wallet. The key file format and its checks live in
:mod:`crypto` (``Keystore``, ``read_keystore``, ``write_private_file``); the chain heads used to
build events live in :mod:`node._wallet_state`; where files go is :mod:`node._paths`.

Files, in the wallet directory (``$LIQUIDE_HOME/wallet`` or ``$XDG_DATA_HOME/liquide/wallet``),
one set per wallet name (``--name``, default ``default``):

* ``<name>.key``          the encrypted keystore (mode 0600);
* ``<name>.config.json``  the wallet's settings: ``{"version": 1, "node": URL | null}``;
* ``<name>.state.json``   the chain heads (seq, prev) of the key, for the online commands.

Commands now: ``new``, ``show``, ``export``, ``import``, ``use``. The online commands
(``delegate``, ``block``, ``revoke``, ``vote``, ``withdraw``, ``status``, ``check``, ``submit``)
are added to the same :data:`wallet` group; they get the key with :meth:`Wallet.unlock`, the
home node with :meth:`Wallet.config`, and the chain heads with :meth:`Wallet.chain_state`.

Conventions: data on stdout, prompts and diagnostics on stderr; exit 0 ok, 1 failure, 2 usage;
``--yes`` skips confirmations; every option has an environment variable (shown in ``--help``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from crypto import (
    KDF_LEVELS,
    Keystore,
    KeystoreExistsError,
    KeystoreNotFoundError,
    LiquideError,
    PublicKey,
    SecretKey,
    WeakPassphraseError,
    read_keystore,
    write_keystore,
    write_private_file,
)

from ._paths import ensure_private_dir, wallet_dir
from ._wallet_state import ChainState, load_chain_state, save_chain_state

__all__ = ["Wallet", "WalletConfig", "WalletConfigError", "validate_node_url", "wallet"]

F = TypeVar("F", bound=Callable[..., Any])

PASSPHRASE_ENV = "LIQUIDE_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
BACKUP_PASSPHRASE_ENV = "LIQUIDE_BACKUP_PASSPHRASE"  # noqa: S105
CONFIG_VERSION = 1
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_MAX_CONFIG_BYTES = 64 * 1024


class WalletConfigError(LiquideError):
    """The wallet's config file is unreadable."""

    code = "wallet_config"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


# Wallet files ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalletConfig:
    """The wallet's settings. ``node`` is the home node's base URL, or None."""

    node: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file document."""
        return {"version": CONFIG_VERSION, "node": self.node}

    @classmethod
    def from_dict(cls, doc: object) -> WalletConfig:
        """Validate a file document; raise :class:`WalletConfigError` naming the field."""
        if not isinstance(doc, dict) or set(doc) != {"version", "node"}:
            raise WalletConfigError('the config must be {"version": 1, "node": …}')
        if doc["version"] != CONFIG_VERSION or isinstance(doc["version"], bool):
            raise WalletConfigError(f"unsupported config version {doc['version']!r}")
        node = doc["node"]
        if node is not None:
            if not isinstance(node, str):
                raise WalletConfigError("node must be a URL string or null")
            try:
                node = validate_node_url(node)
            except ValueError as exc:
                raise WalletConfigError(f"node: {exc}") from None
        return cls(node)


@dataclass(frozen=True, slots=True)
class Wallet:
    """One named wallet in a wallet directory: paths and loaders for its files."""

    directory: Path
    name: str

    @property
    def key_path(self) -> Path:
        """The encrypted keystore."""
        return self.directory / f"{self.name}.key"

    @property
    def config_path(self) -> Path:
        """The settings file."""
        return self.directory / f"{self.name}.config.json"

    @property
    def state_path(self) -> Path:
        """The chain-state file."""
        return self.directory / f"{self.name}.state.json"

    def keystore(self) -> Keystore:
        """Read the keystore; raise a :class:`~crypto.KeystoreError` with a hint when unusable."""
        try:
            return read_keystore(self.key_path)
        except KeystoreNotFoundError:
            raise KeystoreNotFoundError(
                f"no wallet key {self.name!r} ({self.key_path} does not exist)",
                hint="create one with `liquide wallet new`, or restore a backup with"
                " `liquide wallet import FILE`",
            ) from None

    def unlock(self, passphrase: str) -> SecretKey:
        """Decrypt the wallet's key."""
        return self.keystore().unlock(passphrase, source=str(self.key_path))

    def has_key(self) -> bool:
        """Whether something is at the keystore's path."""
        return os.path.lexists(self.key_path)

    def exists_error(self) -> KeystoreExistsError:
        """The error for an existing key that was not to be replaced."""
        return KeystoreExistsError(
            f"wallet key {self.name!r} already exists ({self.key_path})",
            hint="use --force to replace it (export a backup first: the old key is"
            " otherwise lost), or choose another --name",
        )

    def save_keystore(self, keystore: Keystore, *, overwrite: bool) -> None:
        """Write the keystore (atomic, 0600); refuses to replace unless ``overwrite``."""
        ensure_private_dir(self.directory)
        try:
            write_keystore(self.key_path, keystore, overwrite=overwrite)
        except KeystoreExistsError:
            raise self.exists_error() from None

    def config(self) -> WalletConfig:
        """Read the settings (defaults when the file does not exist)."""
        try:
            with self.config_path.open("rb") as f:
                data = f.read(_MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            return WalletConfig()
        hint = f"fix or delete {self.config_path}, then run `liquide wallet use NODE_URL`"
        try:
            if len(data) > _MAX_CONFIG_BYTES:
                raise WalletConfigError("file too large")  # noqa: TRY301 - re-raised with the path
            return WalletConfig.from_dict(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WalletConfigError(
                f"{self.config_path}: not valid JSON ({exc})", hint=hint
            ) from None
        except WalletConfigError as exc:
            raise WalletConfigError(f"{self.config_path}: {exc.message}", hint=hint) from None

    def save_config(self, config: WalletConfig) -> None:
        """Write the settings atomically (mode 0600)."""
        ensure_private_dir(self.directory)
        data = (json.dumps(config.to_dict(), indent=2) + "\n").encode("utf-8")
        write_private_file(self.config_path, data, overwrite=True)

    def chain_state(self) -> ChainState:
        """The local chain heads (empty when none was saved)."""
        return load_chain_state(self.state_path)

    def save_chain_state(self, state: ChainState) -> None:
        """Write the chain heads atomically."""
        ensure_private_dir(self.directory)
        save_chain_state(self.state_path, state)


def validate_node_url(url: str) -> str:
    """Return the normalised base URL of a node (no trailing slash); raise :class:`ValueError`."""
    if not url or url != url.strip() or any(c.isspace() for c in url):
        raise ValueError("the URL must not be empty or contain spaces")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL; write it like https://city.example")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not contain a user name or password")
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host name")
    if parts.query or parts.fragment:
        raise ValueError("the URL must not have a query (?…) or fragment (#…)")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    return f"{scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Passphrases ----------------------------------------------------------------------------------


def _fd_reader(fd: int) -> BufferedReader:
    # One reader per descriptor for the whole command, so that two passphrases given on the
    # same descriptor are read as two lines.
    readers: dict[int, BufferedReader] = (
        click.get_current_context().find_root().meta.setdefault("liquide.passphrase_fds", {})
    )
    if fd not in readers:
        try:
            readers[fd] = os.fdopen(fd, "rb", closefd=False)
        except OSError as exc:
            raise click.BadParameter(f"cannot read descriptor {fd}: {exc.strerror}") from None
    return readers[fd]


def _get_passphrase(*, fd: int | None, env: str, prompt: str, confirm: bool) -> str:
    """The passphrase from ``fd`` (one line), else ``$env``, else a hidden prompt on stderr."""
    if fd is not None:
        try:
            line = _fd_reader(fd).readline()
        except OSError as exc:
            raise click.BadParameter(f"cannot read descriptor {fd}: {exc.strerror}") from None
        if not line:
            raise WeakPassphraseError(f"no passphrase on descriptor {fd} (end of file)")
        value = line.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="strict")
    elif env in os.environ:
        value = os.environ[env]
    else:
        value = click.prompt(
            prompt, hide_input=True, confirmation_prompt=confirm, err=True, type=str
        )
    if not value:
        raise WeakPassphraseError(
            "the passphrase is empty", hint="choose a passphrase of several words"
        )
    return value


# Shared options -------------------------------------------------------------------------------


def _check_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _NAME_RE.match(value):
        raise click.BadParameter(
            "use 1–32 lower-case letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


def _name_option(f: F) -> F:
    return click.option(
        "--name",
        default="default",
        show_default=True,
        envvar="LIQUIDE_WALLET_NAME",
        show_envvar=True,
        callback=_check_name,
        help="Which wallet of this wallet directory to use.",
    )(f)


def _passphrase_fd_option(f: F) -> F:
    return click.option(
        "--passphrase-fd",
        type=click.IntRange(min=0),
        envvar="LIQUIDE_PASSPHRASE_FD",
        show_envvar=True,
        metavar="N",
        help=f"Read the wallet passphrase as one line from file descriptor N (else ${PASSPHRASE_ENV},"
        " else a prompt).",
    )(f)


def _backup_passphrase_fd_option(f: F) -> F:
    return click.option(
        "--backup-passphrase-fd",
        type=click.IntRange(min=0),
        envvar="LIQUIDE_BACKUP_PASSPHRASE_FD",
        show_envvar=True,
        metavar="N",
        help="Read the backup's passphrase as one line from file descriptor N (else"
        f" ${BACKUP_PASSPHRASE_ENV}, else a prompt).",
    )(f)


def _kdf_option(f: F) -> F:
    return click.option(
        "--kdf-level",
        type=click.Choice(list(KDF_LEVELS)),
        default="moderate",
        show_default=True,
        envvar="LIQUIDE_KDF_LEVEL",
        show_envvar=True,
        help="Argon2id cost when encrypting. 'min' is for tests only: it barely slows a guesser.",
    )(f)


def _yes_option(f: F) -> F:
    return click.option(
        "--yes",
        "-y",
        is_flag=True,
        envvar="LIQUIDE_YES",
        show_envvar=True,
        help="Answer yes to confirmations.",
    )(f)


def _json_option(f: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        envvar="LIQUIDE_JSON",
        show_envvar=True,
        help="Print JSON on stdout instead of text.",
    )(f)


def _same_passphrase_option(envvar: str, help_text: str) -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--same-passphrase", is_flag=True, envvar=envvar, show_envvar=True, help=help_text
        )(f)

    return deco


def _force_option(envvar: str, help_text: str) -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--force", is_flag=True, envvar=envvar, show_envvar=True, help=help_text
        )(f)

    return deco


def _current_wallet(name: str) -> Wallet:
    return Wallet(wallet_dir(), name)


def _warn_if_min(level: str) -> None:
    if level == "min":
        click.echo(
            "liquide: warning: --kdf-level min is for tests only; this file barely resists"
            " passphrase guessing",
            err=True,
        )


def _confirm(message: str, *, yes: bool) -> None:
    if not yes:
        click.confirm(message, abort=True, err=True)


# Output ---------------------------------------------------------------------------------------


def _identity(w: Wallet, public: PublicKey) -> dict[str, Any]:
    text = public.to_text()
    try:
        node = w.config().node
    except WalletConfigError:
        node = None
    return {
        "name": w.name,
        "public_key": text,
        "fingerprint": public.fingerprint(),
        "key_file": str(w.key_path),
        "home_node": node,
        "registrar": {
            "in_person": True,
            "bring": [f"your public key: {text}", "an identity document"],
        },
    }


def _print_identity(info: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    node = info["home_node"] or "not set (run `liquide wallet use NODE_URL`)"
    click.echo(
        f"wallet:      {info['name']}\n"
        f"public key:  {info['public_key']}\n"
        f"fingerprint: {info['fingerprint']}\n"
        f"home node:   {node}\n"
        f"key file:    {info['key_file']}\n"
        "\n"
        "To be enrolled, go in person to your city's registrar and bring:\n"
        f"  - your public key: {info['public_key']}\n"
        "    (printed or on your phone; check with the registrar that its fingerprint is"
        f" {info['fingerprint']})\n"
        "  - an identity document (identity card, passport or residence permit).\n"
        "The registrar never needs your passphrase or your key file: never give them to anyone."
    )


# Commands -------------------------------------------------------------------------------------


@click.group("wallet")
def wallet() -> None:
    """A citizen's key, home node, delegations and ballots.

    Files live in $LIQUIDE_HOME/wallet, else $XDG_DATA_HOME/liquide/wallet (by default
    ~/.local/share/liquide/wallet), created with mode 0600.

    Passphrases are asked on the terminal (twice when a new one is set). For scripts, give
    the wallet's passphrase in $LIQUIDE_PASSPHRASE or one line on --passphrase-fd N, and a
    backup's in $LIQUIDE_BACKUP_PASSPHRASE or on --backup-passphrase-fd N.
    """


@wallet.command("new")
@_name_option
@_force_option("LIQUIDE_WALLET_NEW_FORCE", "Replace an existing key of this name (it is lost!).")
@_yes_option
@_kdf_option
@_passphrase_fd_option
@_json_option
def new_cmd(
    *, name: str, force: bool, yes: bool, kdf_level: str, passphrase_fd: int | None, as_json: bool
) -> None:
    """Create a new key, encrypted with a passphrase, and say how to get it enrolled."""
    w = _current_wallet(name)
    if w.has_key():
        if not force:
            raise w.exists_error()
        old = _describe_existing(w)
        _confirm(
            f"Replace wallet key {name!r} ({old})? Without a backup it is lost for good.", yes=yes
        )
    _warn_if_min(kdf_level)
    passphrase = _get_passphrase(
        fd=passphrase_fd, env=PASSPHRASE_ENV, prompt="New passphrase", confirm=True
    )
    key = SecretKey.generate()
    w.save_keystore(Keystore.seal(key, passphrase, kdf=KDF_LEVELS[kdf_level]), overwrite=force)
    click.echo(f"liquide: created {w.key_path}", err=True)
    _print_identity(_identity(w, key.public_key), as_json=as_json)


def _describe_existing(w: Wallet) -> str:
    try:
        return f"fingerprint {w.keystore().fingerprint}"
    except LiquideError:
        return "unreadable"


@wallet.command("show")
@_name_option
@_json_option
@click.option(
    "--verify",
    is_flag=True,
    envvar="LIQUIDE_WALLET_SHOW_VERIFY",
    show_envvar=True,
    help="Also decrypt the key (asks the passphrase) to prove the public key is really yours.",
)
@_passphrase_fd_option
def show_cmd(name: str, as_json: bool, verify: bool, passphrase_fd: int | None) -> None:
    """Print the public key and its fingerprint, and what to bring to the registrar."""
    w = _current_wallet(name)
    ks = w.keystore()
    if verify:
        passphrase = _get_passphrase(
            fd=passphrase_fd, env=PASSPHRASE_ENV, prompt="Passphrase", confirm=False
        )
        ks.unlock(passphrase, source=str(w.key_path))
        click.echo("liquide: the passphrase opens the key and it matches its public key", err=True)
    _print_identity(_identity(w, ks.public), as_json=as_json)


@wallet.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_name_option
@_same_passphrase_option(
    "LIQUIDE_WALLET_EXPORT_SAME_PASSPHRASE",
    "Encrypt the backup with the wallet's passphrase instead of asking for a new one.",
)
@_kdf_option
@_force_option("LIQUIDE_WALLET_EXPORT_FORCE", "Replace FILE if it exists.")
@_passphrase_fd_option
@_backup_passphrase_fd_option
def export_cmd(
    *,
    file: Path,
    name: str,
    same_passphrase: bool,
    kdf_level: str,
    force: bool,
    passphrase_fd: int | None,
    backup_passphrase_fd: int | None,
) -> None:
    """Write an encrypted backup of the key to FILE (mode 0600, never over an existing file).

    Keep the backup offline (a USB stick in a drawer) and its passphrase somewhere safe:
    restoring it is the only way to keep the same key if this computer is lost.
    """
    w = _current_wallet(name)
    ks = w.keystore()
    passphrase = _get_passphrase(
        fd=passphrase_fd, env=PASSPHRASE_ENV, prompt="Wallet passphrase", confirm=False
    )
    key = ks.unlock(passphrase, source=str(w.key_path))
    if same_passphrase:
        backup_passphrase = passphrase
    else:
        backup_passphrase = _get_passphrase(
            fd=backup_passphrase_fd,
            env=BACKUP_PASSPHRASE_ENV,
            prompt="Backup passphrase",
            confirm=True,
        )
    _warn_if_min(kdf_level)
    write_keystore(
        file, Keystore.seal(key, backup_passphrase, kdf=KDF_LEVELS[kdf_level]), overwrite=force
    )
    click.echo(
        f"liquide: wrote an encrypted backup of {ks.fingerprint} to {file}; keep it offline,"
        " with its passphrase",
        err=True,
    )


@wallet.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_name_option
@_force_option("LIQUIDE_WALLET_IMPORT_FORCE", "Replace the wallet's existing key (it is lost!).")
@_yes_option
@_same_passphrase_option(
    "LIQUIDE_WALLET_IMPORT_SAME_PASSPHRASE",
    "Keep the backup's passphrase for the wallet instead of asking for a new one.",
)
@_kdf_option
@_passphrase_fd_option
@_backup_passphrase_fd_option
@_json_option
def import_cmd(
    *,
    file: Path,
    name: str,
    force: bool,
    yes: bool,
    same_passphrase: bool,
    kdf_level: str,
    passphrase_fd: int | None,
    backup_passphrase_fd: int | None,
    as_json: bool,
) -> None:
    """Restore a key from a backup FILE made by `liquide wallet export`."""
    w = _current_wallet(name)
    backup = read_keystore(file)
    backup_passphrase = _get_passphrase(
        fd=backup_passphrase_fd,
        env=BACKUP_PASSPHRASE_ENV,
        prompt="Backup passphrase",
        confirm=False,
    )
    key = backup.unlock(backup_passphrase, source=str(file))
    replacing = w.has_key()
    if replacing:
        if not force:
            raise w.exists_error()
        old = _describe_existing(w)
        if old != f"fingerprint {backup.fingerprint}":
            _confirm(
                f"Replace wallet key {name!r} ({old}) with {backup.fingerprint}? Without a"
                " backup the current key is lost for good.",
                yes=yes,
            )
    if same_passphrase:
        passphrase = backup_passphrase
    else:
        passphrase = _get_passphrase(
            fd=passphrase_fd, env=PASSPHRASE_ENV, prompt="New wallet passphrase", confirm=True
        )
    _warn_if_min(kdf_level)
    w.save_keystore(Keystore.seal(key, passphrase, kdf=KDF_LEVELS[kdf_level]), overwrite=replacing)
    click.echo(f"liquide: restored {backup.fingerprint} into {w.key_path}", err=True)
    _print_identity(_identity(w, key.public_key), as_json=as_json)


@wallet.command("use")
@click.argument("node_url")
@_name_option
def use_cmd(node_url: str, name: str) -> None:
    """Set the home node: the city node that enrolled this key, e.g. https://lyon.example."""
    try:
        url = validate_node_url(node_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NODE_URL") from None
    host = urlsplit(url).hostname or ""
    if url.startswith("http://") and not _is_loopback(host):
        click.echo(
            "liquide: warning: plain http: others on the network can read and block your"
            " traffic; use https outside of tests",
            err=True,
        )
    w = _current_wallet(name)
    try:
        current = w.config()
    except WalletConfigError:
        current = WalletConfig()  # a broken config is replaced by this command
    w.save_config(WalletConfig(url) if current.node != url else current)
    click.echo(f"liquide: home node of wallet {name!r} is {url}", err=True)
