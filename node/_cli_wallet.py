"""``liquide wallet …``: the citizen's keys, home node, delegations and ballots.

This module is the CLI edge of the wallet. The key file format and its checks live in
:mod:`crypto` (``Keystore``, ``read_keystore``, ``write_private_file``); the chain heads used to
build events live in :mod:`node._wallet_state`; building, signing, submitting and verifying are
:mod:`node._wallet_ops`; where files go is :mod:`node._paths`.

Files, in the wallet directory (``$LIQUIDE_HOME/wallet`` or ``$XDG_DATA_HOME/liquide/wallet``),
one set per wallet name (``--name``, default ``default``), all mode 0600:

* ``<name>.key``          the encrypted keystore;
* ``<name>.config.json``  the settings: ``{"version": 1, "node": URL | null}``, plus
  ``"origin"`` and ``"node_key"`` once the home node's key is pinned;
* ``<name>.state.json``   the chain heads (seq, prev) of the key;
* ``<name>.events.json``  every event signed, with the node's receipt (for ``check``);
* ``<name>.seen.json``    the latest home-log checkpoint verified (later ones must extend it);
* ``<name>.keys.json``    the home node's key chain followed from the pin through its signed
  handovers (:class:`~node._wallet_state.CityKeys`; rebuilt from the pin when lost).

Offline commands: ``new``, ``show``, ``export``, ``import``; ``use`` sets the home node and pins
its key. Online commands: ``delegate``, ``block``, ``revoke``, ``vote``, ``withdraw`` (each with
``--offline FILE`` to sign without sending; ``liquide submit FILE`` in :mod:`node._cli_submit`
sends it later), and the read commands ``status`` and ``check``.

Conventions: data on stdout, prompts and diagnostics on stderr; exit 0 ok, 1 failure, 2 usage;
``--yes`` skips confirmations; every option has an environment variable (shown in ``--help``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
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
from protocol.events import Event

from ._paths import ensure_private_dir, wallet_dir
from ._wallet_ops import (
    EventStore,
    NodePin,
    Record,
    SeenCheckpoints,
    Sent,
    Target,
    WalletOpsError,
    ballot_body,
    check_id,
    check_report,
    delegate_body,
    describe_event,
    explain_node_error,
    fetch_pin,
    issue_doc,
    parse_grades,
    parse_target,
    parse_trustees,
    revoke_body,
    send_event,
    status_report,
    target_exists,
    verify_receipt_following,
    voter_doc,
    withdraw_body,
    write_event_file,
)
from ._wallet_state import (
    ChainHead,
    ChainState,
    CityKeys,
    load_chain_state,
    load_city_keys,
    save_chain_state,
    save_city_keys,
)
from .errors import ApiError, PeerError

if TYPE_CHECKING:
    from .client import NodeClient

__all__ = ["Wallet", "WalletConfig", "WalletConfigError", "validate_node_url", "wallet"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

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
    """The wallet's settings.

    ``node`` is the home node's base URL, or None. ``origin`` and ``node_key`` pin the home
    node's log origin and C2SP verifier key (set by ``wallet use``, or on first contact): every
    receipt and checkpoint must be signed by that key.
    """

    node: str | None = None
    origin: str | None = None
    node_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file document (the pin only when set)."""
        d: dict[str, Any] = {"version": CONFIG_VERSION, "node": self.node}
        if self.node_key is not None:
            d["origin"] = self.origin
            d["node_key"] = self.node_key
        return d

    def pin(self) -> NodePin | None:
        """The pinned node key, or None."""
        if self.origin is None or self.node_key is None:
            return None
        return NodePin(self.origin, self.node_key)

    @classmethod
    def from_dict(cls, doc: object) -> WalletConfig:
        """Validate a file document; raise :class:`WalletConfigError` naming the field."""
        keys = set(doc) if isinstance(doc, dict) else set()
        if not isinstance(doc, dict) or keys not in (
            {"version", "node"},
            {"version", "node", "origin", "node_key"},
        ):
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
        origin, node_key = doc.get("origin"), doc.get("node_key")
        if node_key is not None:
            if not isinstance(origin, str) or not isinstance(node_key, str):
                raise WalletConfigError("origin and node_key must be strings")
            try:
                NodePin(origin, node_key)
            except WalletOpsError as exc:
                raise WalletConfigError(f"node_key: {exc.message}") from None
        return cls(node, origin if node_key is not None else None, node_key)


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

    @property
    def events_path(self) -> Path:
        """The record of signed events and their receipts."""
        return self.directory / f"{self.name}.events.json"

    def events(self) -> EventStore:
        """The record of signed events (created on first write)."""
        return EventStore(self.events_path)

    def seen(self) -> SeenCheckpoints:
        """The latest home-log checkpoint this wallet verified."""
        return SeenCheckpoints(self.directory / f"{self.name}.seen.json")

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

    @property
    def keys_path(self) -> Path:
        """The home node's key chain followed from the pin."""
        return self.directory / f"{self.name}.keys.json"

    def city_keys(self, pin: NodePin) -> CityKeys:
        """The key chain followed from ``pin`` (the pinned key alone when none was saved)."""
        return load_city_keys(self.keys_path, pin.origin, pin.key)

    def follow(self, pin: NodePin, keys: Sequence[str], size: int) -> CityKeys:
        """Remember the key chain a log verified up to ``size`` leaves showed (pinned first);
        raise :class:`~node._wallet_state.WalletStateError` if it diverges from the one kept."""
        old = self.city_keys(pin)
        new = old.followed(tuple(keys), size)
        if new != old and len(new.keys) > 1:
            ensure_private_dir(self.directory)
            save_city_keys(self.keys_path, new)
        return new


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


def _env_option(*decls: str, envvar: str, **settings: Any) -> Callable[[F], F]:
    """A click option that also reads ``$envvar`` and shows it in ``--help``."""
    return click.option(*decls, envvar=envvar, show_envvar=True, **settings)


_name_option = _env_option(
    "--name",
    envvar="LIQUIDE_WALLET_NAME",
    default="default",
    show_default=True,
    callback=_check_name,
    help="Which wallet of this wallet directory to use.",
)
_passphrase_fd_option = _env_option(
    "--passphrase-fd",
    envvar="LIQUIDE_PASSPHRASE_FD",
    type=click.IntRange(min=0),
    metavar="N",
    help=f"Read the wallet passphrase as one line from file descriptor N (else ${PASSPHRASE_ENV},"
    " else a prompt).",
)
_backup_passphrase_fd_option = _env_option(
    "--backup-passphrase-fd",
    envvar="LIQUIDE_BACKUP_PASSPHRASE_FD",
    type=click.IntRange(min=0),
    metavar="N",
    help="Read the backup's passphrase as one line from file descriptor N (else"
    f" ${BACKUP_PASSPHRASE_ENV}, else a prompt).",
)
_kdf_option = _env_option(
    "--kdf-level",
    envvar="LIQUIDE_KDF_LEVEL",
    type=click.Choice(list(KDF_LEVELS)),
    default="moderate",
    show_default=True,
    help="Argon2id cost when encrypting. 'min' is for tests only: it barely slows a guesser.",
)
_yes_option = _env_option(
    "--yes", "-y", envvar="LIQUIDE_YES", is_flag=True, help="Answer yes to confirmations."
)
_json_option = _env_option(
    "--json",
    "as_json",
    envvar="LIQUIDE_JSON",
    is_flag=True,
    help="Print JSON on stdout instead of text.",
)


def _same_passphrase_option(envvar: str, help_text: str) -> Callable[[F], F]:
    return _env_option("--same-passphrase", envvar=envvar, is_flag=True, help=help_text)


def _force_option(envvar: str, help_text: str) -> Callable[[F], F]:
    return _env_option("--force", envvar=envvar, is_flag=True, help=help_text)


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
    pin: NodePin | None = None
    try:
        config = w.config()
        node, pin = config.node, config.pin()
    except WalletConfigError:
        node = None
    info: dict[str, Any] = {
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
    if pin is not None:
        try:
            chain = w.city_keys(pin)
        except LiquideError:
            chain = None
        if chain is not None and chain.in_effect != chain.pinned:
            info["node_key"] = {
                "pinned": pin.fingerprint,
                "in_effect": chain.in_effect,
                "fingerprint_in_effect": PublicKey.from_text(chain.in_effect).fingerprint(),
                "handovers": len(chain.keys) - 1,
                "as_of_checkpoint": chain.size,
            }
    return info


def _print_identity(info: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    node = info["home_node"] or "not set (run `liquide wallet use NODE_URL`)"
    nk = info.get("node_key")
    node_key = (
        f"node key:    in effect {nk['fingerprint_in_effect']}, followed from the pinned"
        f" {nk['pinned']} through {nk['handovers']} signed handover(s)\n"
        if nk
        else ""
    )
    click.echo(
        f"wallet:      {info['name']}\n"
        f"public key:  {info['public_key']}\n"
        f"fingerprint: {info['fingerprint']}\n"
        f"home node:   {node}\n"
        f"{node_key}"
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


# The home node ----------------------------------------------------------------------------------


def _client(url: str, *, quick: bool = False) -> NodeClient:
    """A client of the node at ``url`` (aiohttp is imported only by the online commands)."""
    import aiohttp

    from .client import NodeClient

    timeout = (
        aiohttp.ClientTimeout(total=10, connect=5)
        if quick
        else aiohttp.ClientTimeout(total=120, connect=10, sock_read=60)
    )
    return NodeClient(url, timeout=timeout)


def _say(message: str) -> None:
    click.echo(f"liquide: {message}", err=True)


def _node_key_option(envvar: str) -> Callable[[F], F]:
    return _env_option(
        "--node-key",
        envvar=envvar,
        metavar="VKEY",
        help="Pin this node verifier key (origin+keyid+base64, as the city publishes it)"
        " instead of trusting the key the node announces.",
    )


async def _pin_of(client: NodeClient, url: str, given: str | None) -> NodePin:
    """The pin to keep for ``url``: ``given`` (checked against the node), else the node's own."""
    announced = await fetch_pin(client)
    if given is not None:
        pin = NodePin.from_vkey(given)
        if pin != announced:
            raise WalletOpsError(
                f"the node at {url} announces the key {announced.vkey} (fingerprint"
                f" {announced.fingerprint}), not the one you gave ({pin.fingerprint})",
                hint="check the address and the key your city publishes; do not use a node"
                " whose key does not match",
            )
    return announced


@wallet.command("use")
@click.argument("node_url")
@_name_option
@_node_key_option("LIQUIDE_WALLET_NODE_KEY")
def use_cmd(node_url: str, name: str, node_key: str | None) -> None:
    """Set the home node: the city node that enrolled this key, e.g. https://lyon.example.

    The wallet asks the node for its key and pins it, printing its fingerprint: compare it with
    the one your city publishes (or give it with --node-key). Receipts and checkpoints signed by
    any other key are refused from then on. If the node cannot be reached now, its key is pinned
    at the first contact.
    """
    try:
        url = validate_node_url(node_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NODE_URL") from None
    given = NodePin.from_vkey(node_key) if node_key else None
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

    async def ask() -> NodePin:
        async with _client(url, quick=True) as client:
            return await _pin_of(client, url, node_key)

    pin: NodePin | None
    try:
        pin = asyncio.run(ask())
    except PeerError as exc:
        pin = given
        reason = exc.message if isinstance(exc, ApiError) else "unreachable"
        later = "the key you gave is pinned" if given else "its key is pinned at the first contact"
        _say(f"note: could not ask {url} for its key now ({reason}); {later}")
    old = current.pin() if current.node == url else None
    if pin is None:
        pin = old  # keep the pin of the same node
    elif old is not None and old != pin:
        _say(
            f"warning: the node's key changed: it was {old.origin} ({old.fingerprint}), it is now"
            f" {pin.origin} ({pin.fingerprint}); pin it only if your city announced a new key"
        )
    config = WalletConfig(
        url, None if pin is None else pin.origin, None if pin is None else pin.vkey
    )
    if config != current:
        w.save_config(config)
    _say(f"home node of wallet {name!r} is {url}")
    if pin is not None:
        _say(
            f"node key pinned: {pin.origin}, fingerprint {pin.fingerprint} — compare it with the"
            " fingerprint your city publishes"
        )


def _home(w: Wallet) -> tuple[WalletConfig, str]:
    config = w.config()
    if config.node is None:
        raise WalletOpsError(
            f"wallet {w.name!r} has no home node",
            hint="run `liquide wallet use NODE_URL` with your city's node address",
        )
    return config, config.node


async def _ensure_pin(w: Wallet, config: WalletConfig, client: NodeClient, url: str) -> NodePin:
    pin = config.pin()
    if pin is not None:
        return pin
    pin = await _pin_of(client, url, None)
    w.save_config(WalletConfig(url, pin.origin, pin.vkey))
    _say(
        f"pinned the home node's key on first contact: {pin.origin}, fingerprint"
        f" {pin.fingerprint} — compare it with the fingerprint your city publishes"
    )
    return pin


def _online(w: Wallet, fn: Callable[[NodeClient, NodePin], Awaitable[T]]) -> T:
    """Run ``fn`` with a client of the home node and its pin; map node failures to hints."""
    config, url = _home(w)

    async def main() -> T:
        async with _client(url) as client:
            pin = await _ensure_pin(w, config, client, url)
            return await fn(client, pin)

    try:
        return asyncio.run(main())
    except PeerError as exc:
        raise explain_node_error(exc, url) from None


# Signing and sending ----------------------------------------------------------------------------


_offline_option = _env_option(
    "--offline",
    envvar="LIQUIDE_WALLET_OFFLINE",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Do not contact the node: write the signed event to FILE (new, mode 0600), to be"
    " sent later with `liquide submit FILE`.",
)


def _scope_options(*, assembly: bool = True) -> Callable[[F], F]:
    def deco(f: F) -> F:
        scopes = ["issue", "area", *(["assembly"] if assembly else [])]
        for scope in scopes:
            f = _env_option(
                f"--{scope}",
                envvar=f"LIQUIDE_WALLET_{scope.upper()}",
                metavar="ID",
                help=f"The {scope} (its id, 64 hex digits).",
            )(f)
        return f

    return deco


def _target(assembly: str | None, area: str | None, issue: str | None) -> Target:
    """The one scope given; a command-line scope wins over ones from the environment."""
    ctx = click.get_current_context()
    values = {"assembly": assembly, "area": area, "issue": issue}
    given = {k: v for k, v in values.items() if v}
    on_line = {
        k: v
        for k, v in given.items()
        if ctx.get_parameter_source(k) is not click.core.ParameterSource.ENVIRONMENT
    }
    if on_line:
        given = on_line
    try:
        return parse_target(given.get("assembly"), given.get("area"), given.get("issue"))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


Precheck = Callable[["NodeClient", PublicKey], Awaitable[list[str]]]


def _sign_and_send(
    w: Wallet,
    *,
    type_: str,
    body: dict[str, Any],
    question: Callable[[], str],
    yes: bool,
    passphrase_fd: int | None,
    offline: Path | None,
    precheck: Precheck,
) -> None:
    """Confirm, sign at the chain head and submit (or write to ``offline``); print the receipt.

    ``question`` is asked after ``precheck`` (which checks the act with the home node and
    returns notes for stderr) has run, so it can name what the node told.
    """
    me = w.keystore().public
    if offline is not None:
        if offline.exists():
            raise WalletOpsError(
                f"{offline} already exists", hint="choose another file; it is never replaced"
            )
        _confirm(f"{question()} (signed now, sent later with `liquide submit`)", yes=yes)
        sk = _unlock(w, passphrase_fd)
        state = w.chain_state()
        head = state.head(me)
        ev = Event.create(sk, type_, body, head.next_seq, head.prev, int(time.time()))
        write_event_file(offline, ev, overwrite=False)
        w.save_chain_state(state.with_head(me, head.advance(ev.id)))
        w.events().put(Record(ev))
        _say(
            f"signed {describe_event(ev)} as seq {ev.seq} into {offline}; send it with"
            f" `liquide submit {offline}` before anything you sign later"
        )
        if head.seq == 0:
            _say(
                "note: no local chain state, so this is signed as your first event (seq 1); if"
                " this key signed events before, the node will refuse it: run"
                " `liquide wallet status` online first to recover the chain state"
            )
        click.echo(json.dumps({"event_id": ev.id, "seq": ev.seq, "file": str(offline)}))
        return

    async def go(client: NodeClient, pin: NodePin) -> tuple[Sent, dict[str, Any]]:
        lines = await precheck(client, me)
        for line in lines:
            _say(line)
        _confirm(f"{question()} This is signed and published in {pin.origin}'s log.", yes=yes)
        sk = _unlock(w, passphrase_fd)
        state = w.chain_state()
        sent = await send_event(
            client, sk, type_, body, state.head(me), now=int(time.time()), notify=_say
        )
        w.save_chain_state(state.with_head(me, ChainHead(sent.event.seq, sent.event.id)))
        w.events().put(Record(sent.event, pin.origin, sent.receipt))
        seen = w.seen().load()
        receipt, log = await verify_receipt_following(
            client,
            sent.receipt,
            pin,
            w.city_keys(pin).keys,
            event_id=sent.event.id,
            leaf=sent.event.encode(),
            seen=seen,
        )
        if log is not None:
            w.seen().save(seen)
            chain = w.follow(pin, log.chain(), log.size)
            _say(
                f"followed the home node's key handover: receipts of {pin.origin} are now"
                f" signed by {PublicKey.from_text(chain.in_effect).fingerprint()}"
            )
        return sent, receipt

    sent, receipt = _online(w, go)
    if sent.recovered:
        lost = [
            r.event.seq
            for r in w.events().load()
            if not r.submitted and r.event.seq <= sent.event.seq
        ]
        if lost:
            _say(
                "warning: the events signed offline at seq "
                + ", ".join(map(str, sorted(lost)))
                + " were never submitted and can no longer be: sign those acts again"
            )
    _say(
        f"{describe_event(sent.event)}: accepted at index {receipt.get('index')} of"
        f" {receipt.get('origin')} (seq {sent.event.seq}); receipt signature verified"
    )
    click.echo(json.dumps(receipt, indent=2))


def _unlock(w: Wallet, passphrase_fd: int | None) -> SecretKey:
    passphrase = _get_passphrase(
        fd=passphrase_fd, env=PASSPHRASE_ENV, prompt="Passphrase", confirm=False
    )
    return w.unlock(passphrase)


def _action_options(f: F) -> F:
    for deco in (_yes_option, _offline_option, _passphrase_fd_option, _name_option):
        f = deco(f)
    return f


async def _trustee_lines(client: NodeClient, trustees: Sequence[str]) -> list[str]:
    lines = []
    for t in trustees:
        doc = await voter_doc(client, t)
        if doc is None:
            lines.append(
                f"note: trustee {t} is not known at your home node (enrolled in another member"
                " city, or not at all)"
            )
        elif not doc.get("enrolled"):
            lines.append(
                f"warning: trustee {t} is no longer enrolled (a lost or replaced key?): this link"
                " is a dead end"
            )
    return lines


def _describe_target(target: Target, name: str) -> str:
    label = f" {name!r}" if name else ""
    return f"{target.scope}{label} ({target.id[:12]}…)"


@wallet.command("delegate")
@click.argument("trustees", nargs=-1, required=True, metavar="TRUSTEE [TRUSTEE…]")
@_scope_options()
@_action_options
def delegate_cmd(
    *,
    trustees: tuple[str, ...],
    assembly: str | None,
    area: str | None,
    issue: str | None,
    name: str,
    passphrase_fd: int | None,
    offline: Path | None,
    yes: bool,
) -> None:
    """Delegate one scope to a ranked list of trustees (the first who can carries your weight).

    TRUSTEE is a public key (lqpk1…); give up to 8, best first. The narrowest scope wins:
    an issue delegation overrides the area's, which overrides the assembly's. Voting
    yourself always overrides a delegation.
    """
    w = _current_wallet(name)
    target = _target(assembly, area, issue)
    try:
        keys = parse_trustees(trustees, w.keystore().public)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="TRUSTEE") from None
    label = [_describe_target(target, "")]

    async def precheck(client: NodeClient, me: PublicKey) -> list[str]:
        label[0] = _describe_target(target, await target_exists(client, target))
        return await _trustee_lines(client, keys)

    ranked = ", then ".join(keys)
    _sign_and_send(
        w,
        type_="delegate",
        body=delegate_body(target, keys),
        question=lambda: f"Delegate your {label[0]} vote to {ranked}?",
        yes=yes,
        passphrase_fd=passphrase_fd,
        offline=offline,
        precheck=precheck,
    )


@wallet.command("block")
@_scope_options(assembly=False)
@_action_options
def block_cmd(
    *,
    area: str | None,
    issue: str | None,
    name: str,
    passphrase_fd: int | None,
    offline: Path | None,
    yes: bool,
) -> None:
    """Block broader delegations for an area or an issue (a delegation with no trustees).

    Your assembly delegation then does not apply there: your weight counts only if you vote.
    `revoke` with the same scope lifts the block.
    """
    w = _current_wallet(name)
    target = _target(None, area, issue)
    label = [_describe_target(target, "")]

    async def precheck(client: NodeClient, me: PublicKey) -> list[str]:
        label[0] = _describe_target(target, await target_exists(client, target))
        return []

    _sign_and_send(
        w,
        type_="delegate",
        body=delegate_body(target, ()),
        question=lambda: f"Block broader delegations for {label[0]}?",
        yes=yes,
        passphrase_fd=passphrase_fd,
        offline=offline,
        precheck=precheck,
    )


@wallet.command("revoke")
@_scope_options()
@_action_options
def revoke_cmd(
    *,
    assembly: str | None,
    area: str | None,
    issue: str | None,
    name: str,
    passphrase_fd: int | None,
    offline: Path | None,
    yes: bool,
) -> None:
    """Remove your delegation (or block) for one scope; the broader scope applies again."""
    w = _current_wallet(name)
    target = _target(assembly, area, issue)
    label = [_describe_target(target, "")]

    async def precheck(client: NodeClient, me: PublicKey) -> list[str]:
        label[0] = _describe_target(target, await target_exists(client, target))
        doc = await voter_doc(client, me.to_text()) or {}
        rows = [d for d in doc.get("delegations", []) if isinstance(d, dict)]
        if not any(d.get("scope") == target.scope and d.get("target") == target.id for d in rows):
            raise WalletOpsError(
                f"you have no delegation for {label[0]}: nothing to revoke",
                hint="`liquide wallet status` lists your delegations",
                code="no_delegation",
            )
        return []

    _sign_and_send(
        w,
        type_="revoke",
        body=revoke_body(target),
        question=lambda: f"Revoke your delegation for {label[0]}?",
        yes=yes,
        passphrase_fd=passphrase_fd,
        offline=offline,
        precheck=precheck,
    )


def _issue_arg(value: str) -> str:
    try:
        return check_id(value, "issue")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ISSUE") from None


def _require_open(doc: dict[str, Any], issue_id: str) -> None:
    state = doc.get("state")
    if state != "open":
        when = {
            "upcoming": f"it opens at {_when(doc.get('opens'))}",
            "closed": f"it closed at {_when(doc.get('closes'))}",
            "sealed": "it is sealed: its tally is final",
        }.get(str(state), f"its state is {state!r}")
        raise WalletOpsError(
            f"issue {issue_id[:12]}… ({doc.get('title')!r}) is not open for voting: {when}",
            hint="`liquide wallet status` lists the open issues",
            code="not_open",
        )


def _when(ts: object) -> str:
    if type(ts) is not int:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


@wallet.command("vote")
@click.argument("issue")
@click.option(
    "--grade",
    "grades",
    multiple=True,
    metavar="OPTION=GRADE",
    envvar="LIQUIDE_WALLET_GRADE",
    show_envvar=True,
    help="Grade an option with an integer: positive approves, negative disapproves, 0 (or no"
    " grade) ranks it level with the status quo. Higher is preferred. Repeat per option.",
)
@click.option(
    "--approve",
    multiple=True,
    metavar="OPTION",
    envvar="LIQUIDE_WALLET_APPROVE",
    show_envvar=True,
    help="Shortcut for --grade OPTION=+1.",
)
@click.option(
    "--reject",
    multiple=True,
    metavar="OPTION",
    envvar="LIQUIDE_WALLET_REJECT",
    show_envvar=True,
    help="Shortcut for --grade OPTION=-1.",
)
@_action_options
def vote_cmd(
    *,
    issue: str,
    grades: tuple[str, ...],
    approve: tuple[str, ...],
    reject: tuple[str, ...],
    name: str,
    passphrase_fd: int | None,
    offline: Path | None,
    yes: bool,
) -> None:
    """Vote on ISSUE (its id) by grading its options; your latest ballot counts.

    A ballot overrides your delegations for this issue; `withdraw ISSUE` lets them apply
    again.
    """
    w = _current_wallet(name)
    issue_id = _issue_arg(issue)
    try:
        chosen = parse_grades(grades, approve, reject)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grade") from None
    if not chosen:
        raise click.UsageError("grade at least one option (--grade OPTION=GRADE, --approve OPTION)")
    summary = [" ".join(f"{k}={v:+d}" for k, v in chosen.items())]

    async def precheck(client: NodeClient, me: PublicKey) -> list[str]:
        doc = await issue_doc(client, issue_id)
        _require_open(doc, issue_id)
        options = {
            str(o.get("id")): str(o.get("title"))
            for o in doc.get("options", [])
            if isinstance(o, dict)
        }
        unknown = sorted(set(chosen) - set(options))
        if unknown:
            raise click.BadParameter(
                f"issue {issue_id[:12]}… has no option {unknown[0]!r}; its options are "
                + ", ".join(f"{k} ({t})" for k, t in options.items()),
                param_hint="--grade",
            )
        summary[0] = f"{doc.get('title')!r}: " + ", ".join(
            f"{options[k]} ({k}) {v:+d}" for k, v in chosen.items()
        )
        return []

    _sign_and_send(
        w,
        type_="ballot",
        body=ballot_body(issue_id, chosen),
        question=lambda: f"Vote on {summary[0]}?",
        yes=yes,
        passphrase_fd=passphrase_fd,
        offline=offline,
        precheck=precheck,
    )


@wallet.command("withdraw")
@click.argument("issue")
@_action_options
def withdraw_cmd(
    *, issue: str, name: str, passphrase_fd: int | None, offline: Path | None, yes: bool
) -> None:
    """Withdraw your ballot on ISSUE, so that your delegation applies to it again."""
    w = _current_wallet(name)
    issue_id = _issue_arg(issue)
    title = [f"issue {issue_id[:12]}…"]

    async def precheck(client: NodeClient, me: PublicKey) -> list[str]:
        doc = await issue_doc(client, issue_id)
        _require_open(doc, issue_id)
        title[0] = f"{doc.get('title')!r} ({issue_id[:12]}…)"
        voter = await voter_doc(client, me.to_text()) or {}
        if not any(
            isinstance(b, dict) and b.get("issue") == issue_id for b in voter.get("ballots", [])
        ):
            raise WalletOpsError(
                f"you have no ballot on {title[0]}: nothing to withdraw", code="no_ballot"
            )
        return []

    _sign_and_send(
        w,
        type_="withdraw",
        body=withdraw_body(issue_id),
        question=lambda: f"Withdraw your ballot on {title[0]}?",
        yes=yes,
        passphrase_fd=passphrase_fd,
        offline=offline,
        precheck=precheck,
    )


# Reading ----------------------------------------------------------------------------------------


@wallet.command("status")
@_name_option
@_json_option
def status_cmd(name: str, as_json: bool) -> None:
    """Show your delegations per scope and, for each open issue, where your weight would go.

    The flows are computed here with the tally engine from the home node's log, checked against
    its signed checkpoint. Also recovers the local chain state from the node if it was lost.
    """
    w = _current_wallet(name)
    me = w.keystore().public
    state = w.chain_state()
    local = state.head(me)

    seen = w.seen().load()

    async def go(client: NodeClient, pin: NodePin) -> tuple[dict[str, Any], list[str]]:
        out = await status_report(
            client, pin, me, local_head=local, now=int(time.time()), seen=seen
        )
        _follow(w, pin, out[0])
        return out

    report, warnings = _online(w, go)
    w.seen().save(seen)
    node_head = ChainHead.from_dict(report["chain"]["node"])
    if node_head.seq > local.seq:
        w.save_chain_state(state.with_head(me, node_head))
        _say(f"recovered the chain state from the home node: seq {node_head.seq}")
    for line in warnings:
        _say(f"warning: {line}")
    unsent = [r.event.seq for r in w.events().load() if not r.submitted]
    if unsent:
        _say(
            "note: events signed offline and not submitted yet (seq "
            + ", ".join(map(str, unsent))
            + "): send them with `liquide submit FILE`"
        )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print_status(report)


def _follow(w: Wallet, pin: NodePin, report: Mapping[str, Any]) -> None:
    """Remember the key chain the report's verified home log showed."""
    home = report["home_node"]
    w.follow(pin, home["keys"], home["replayed"])


def _node_key_line(home: Mapping[str, Any]) -> list[str]:
    """The key in effect, when a handover replaced the pinned one."""
    if "key_in_effect" not in home:
        return []
    line = (
        f"node key:  in effect {home['fingerprint_in_effect']} ({home['key_in_effect']}),"
        f" followed from the pinned {home['fingerprint']} through"
        f" {len(home['keys']) - 1} signed handover(s)"
    )
    return [line]


def _print_status(r: dict[str, Any]) -> None:
    enrolled = "enrolled" if r["enrolled"] else "NOT enrolled"
    out = [
        f"you:       {r['key']} ({enrolled} at {r['home_node']['origin']})",
        *_node_key_line(r["home_node"]),
        f"chain:     seq {r['chain']['node']['seq']} at the node",
        "",
        "delegations:" if r["delegations"] else "delegations: none",
    ]
    for d in r["delegations"]:
        label = f"{d['scope']} {d['name']!r}" if d.get("name") else d["scope"]
        if d["blocks"]:
            out.append(f"  {label} ({d['target'][:12]}…): blocks broader delegations")
            continue
        ranked = ", then ".join(
            t["key"] + ("" if t["enrolment"] == "enrolled" else f" [{t['enrolment']}]")
            for t in d["trustees"]
        )
        out.append(f"  {label} ({d['target'][:12]}…): {ranked}")
    if r["ballots"]:
        out.append("ballots:")
        for b in r["ballots"]:
            grades = " ".join(f"{k}={v:+d}" for k, v in sorted(b.get("grades", {}).items()))
            out.append(f"  {b.get('title')!r} ({str(b.get('issue'))[:12]}…): {grades}")
    out.append("")
    if not r["issues"]:
        out.append("no open issues")
    else:
        out.append(
            f"open issues (log of {r['log_size']} entries; signed checkpoint"
            f" {r['as_of_checkpoint']}):"
        )
        for i in r["issues"]:
            out.append(f"  {i['title']!r} ({i['id']}), closes {_when(i['closes'])}")
            out.append(f"    {i['text']}")
    click.echo("\n".join(out))


@wallet.command("check")
@_name_option
@_json_option
def check_cmd(name: str, as_json: bool) -> None:
    """Verify every event you signed and how every sealed tally counted you.

    For each event: the receipt is signed by the pinned node key, the event is in the log at
    the promised index, its inclusion proof verifies against a signed checkpoint, and the
    checkpoint carries the k witness cosignatures its assembly requires. For each sealed issue:
    the tally is recomputed from the node's signed log, compared with the node's, and explains
    who cast your weight and through which scope (or why it was lost). Exits 1 if anything
    fails to verify.
    """
    w = _current_wallet(name)
    me = w.keystore().public
    records = w.events().load()

    seen = w.seen().load()

    async def go(client: NodeClient, pin: NodePin) -> dict[str, Any]:
        out = await check_report(client, pin, me, records, seen=seen, keys=w.city_keys(pin).keys)
        _follow(w, pin, out)
        return out

    report = _online(w, go)
    w.seen().save(seen)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_check(report)
    if not report["ok"]:
        sys.exit(1)


def _print_check(r: dict[str, Any]) -> None:
    out = [
        *_node_key_line(r["home_node"]),
        f"events (home node {r['home_node']['origin']}, checkpoint {r['checkpoint']}):",
    ]
    if not r["events"]:
        out.append("  none recorded in this wallet")
    for e in r["events"]:
        line = f"  seq {e['seq']:<3} {e['what']}: {e['status']}"
        if e["status"] == "verified":
            line += (
                f" (index {e['index']}, checkpoint {e['checkpoint_size']},"
                f" {e['cosignatures']}/{e['k']} cosignatures)"
            )
        out.append(line)
        out.extend(f"      {p}" for p in e["problems"])
    out.append("sealed issues:" if r["issues"] else "sealed issues: none")
    for i in r["issues"]:
        out.append(f"  {i['title']!r} ({i['id'][:12]}…): {i.get('text', i['status'])}")
        if i.get("node_tally") and i.get("node_tally") == i.get("digest"):
            out.append(f"      tally digest {i['digest'][:16]}… matches the node's")
        out.extend(f"      {p}" for p in i["problems"])
    out.append("result: " + ("all verified" if r["ok"] else "PROBLEMS FOUND"))
    click.echo("\n".join(out))
