"""The node's configuration: a frozen dataclass with explicit bounds, read from TOML.

A data directory holds ``liquide.toml`` (this config), ``node.key`` (the city's secret key),
``node.db`` (the SQLite store), ``writer.lock`` and, while ``serve`` runs, ``admin.sock``.
Environment variables ``LIQUIDE_<FIELD>`` (upper case, such as ``LIQUIDE_MAX_BODY_BYTES``)
override the file, which overrides the defaults. Every value is checked against its bounds here,
so the rest of the node can trust it; a bad value raises :class:`~node.errors.ConfigError` naming
the field and where it came from.

Protocol constants (maximum trustee-list length, sizes, depths) are *not* here: they are part of
the protocol (docs/PROTOCOL.md), and a node cannot change them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "DB_FILE",
    "KEY_FILE",
    "LOCK_FILE",
    "SOCKET_FILE",
    "NodeConfig",
    "default_data_dir",
    "load_config",
    "write_config",
]

CONFIG_FILE = "liquide.toml"
KEY_FILE = "node.key"
DB_FILE = "node.db"
LOCK_FILE = "writer.lock"
SOCKET_FILE = "admin.sock"

# A C2SP log origin: printable ASCII without spaces or '+' (it is also the signed-note key name).
_ORIGIN_RE = re.compile(r"^[!-*,-~]{1,200}$")

# field -> (min, max) for numbers; checked for the file, the environment and the defaults alike.
_BOUNDS: dict[str, tuple[float, float]] = {
    "port": (0, 65535),
    "max_body_bytes": (1024, 1 << 20),
    "max_batch_bytes": (1024, 256 << 20),
    "max_batch_events": (1, 100_000),
    "page_size": (1, 10_000),
    "rate_limit_per_s": (0.1, 1_000_000),
    "rate_limit_burst": (1, 1_000_000),
    "get_rate_limit_per_s": (0.1, 1_000_000),
    "get_rate_limit_burst": (1, 1_000_000),
    "clock_skew_s": (0, 86_400),
    "checkpoint_interval_s": (0.01, 3600),
    "verify_workers": (0, 64),
    "pool_threshold": (1, 1_000_000),
    "shutdown_timeout_s": (0.1, 600),
    "read_timeout_s": (0.5, 600),
}


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a node operator may tune, with bounds checked at construction."""

    origin: str
    host: str = "127.0.0.1"
    port: int = 8470
    max_body_bytes: int = 64 * 1024
    """Largest accepted body of ``POST /v1/events`` (413 beyond)."""
    max_batch_bytes: int = 16 << 20
    """Largest accepted body of ``POST /v1/events:batch`` (413 beyond)."""
    max_batch_events: int = 20_000
    """Most events in one batch (413 beyond)."""
    page_size: int = 1000
    """Most entries or items returned by one page; larger requested ranges are cut."""
    rate_limit_per_s: float = 50.0
    """Sustained POSTs per second per client address (token bucket); 429 beyond."""
    rate_limit_burst: int = 200
    """Bucket size: POSTs a client may send at once before the rate applies."""
    get_rate_limit_per_s: float = 200.0
    """Sustained reads (GET and every other method but POST: pages, API reads, static files)
    per second per client address, in a bucket of their own; 429 beyond. ``/healthz``,
    ``/readyz`` and ``/metrics`` are not counted."""
    get_rate_limit_burst: int = 1000
    """Bucket size: reads a client may send at once before the read rate applies."""
    rate_limit_exempt: tuple[str, ...] = ()
    """Client addresses (or CIDR networks) never rate-limited, besides the configured peers."""
    clock_skew_s: int = 300
    """How far an author's claimed ``ts`` may be from the node's clock, in seconds."""
    checkpoint_interval_s: float = 1.0
    """How long growth of the log may wait for a signed checkpoint."""
    verify_workers: int = 2
    """Processes verifying signatures of large batches in parallel (0: verify in-process)."""
    pool_threshold: int = 512
    """Smallest batch for which the process pool is worth its overhead."""
    shutdown_timeout_s: float = 10.0
    """How long SIGTERM waits for requests in flight before closing."""
    read_timeout_s: float = 30.0
    """How long a client may take to send a request's headers (or stay idle between requests)
    and, separately, its body: a slow sender is cut off (408) instead of holding a connection."""
    log_format: str = "text"
    """``text`` or ``json`` (one object per line), on stderr."""
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not _ORIGIN_RE.match(self.origin):
            raise ConfigError(
                f"origin {self.origin!r} is not a log origin: printable ASCII, no spaces or '+'"
            )
        for name, (lo, hi) in _BOUNDS.items():
            value = getattr(self, name)
            want = float if isinstance(_DEFAULTS.get(name), float) else int
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if want is int and not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if not lo <= value <= hi:
                raise ConfigError(f"{name} = {value} is outside its bounds [{lo:g}, {hi:g}]")
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError("host must be a non-empty string")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be 'text' or 'json', got {self.log_format!r}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"log_level must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}"
            )
        for item in self.rate_limit_exempt:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ConfigError(
                    f"rate_limit_exempt: {item!r} is not an address or network"
                ) from None

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values (tuples as lists), as written to TOML."""
        out = dataclasses.asdict(self)
        out["rate_limit_exempt"] = list(self.rate_limit_exempt)
        return out

    def replace(self, **changes: Any) -> NodeConfig:
        """A copy with ``changes`` applied and checked."""
        return dataclasses.replace(self, **changes)


_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(NodeConfig) if f.name != "origin"
}
_FIELDS = {f.name for f in dataclasses.fields(NodeConfig)}
# The origin is the log's identity, bound to its key and its leaves: never overridden by env.
_ENV_FIELDS = _FIELDS - {"origin"}


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The default data directory of a node: ``node/`` under Liquide's data home.

    That is ``$LIQUIDE_HOME/node``, else ``$XDG_DATA_HOME/liquide/node``, else
    ``~/.local/share/liquide/node`` (see :mod:`node._paths`).
    """
    from ._paths import data_home

    return data_home(env) / "node"


def _coerce_env(name: str, text: str) -> Any:
    default = _DEFAULTS[name]
    try:
        if isinstance(default, bool):
            return text.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(s.strip() for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"LIQUIDE_{name.upper()}={text!r} is not a valid {name}") from None
    return text


def load_config(data_dir: Path, env: Mapping[str, str] | None = None) -> NodeConfig:
    """Read ``data_dir/liquide.toml`` and apply ``LIQUIDE_*`` overrides.

    Returns the checked :class:`NodeConfig`. Raises :class:`ConfigError` when the file is
    missing or malformed, names an unknown field, or a value breaks its bounds.
    """
    env = os.environ if env is None else env
    path = Path(data_dir) / CONFIG_FILE
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist", code="not_initialised") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    node = raw.get("node", raw)
    if not isinstance(node, dict):
        raise ConfigError(f"{path}: [node] must be a table")
    unknown = sorted(set(node) - _FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = dict(node)
    if "rate_limit_exempt" in values:
        if not isinstance(values["rate_limit_exempt"], list):
            raise ConfigError(f"{path}: rate_limit_exempt must be a list of addresses")
        values["rate_limit_exempt"] = tuple(values["rate_limit_exempt"])
    for name in _ENV_FIELDS:
        key = f"LIQUIDE_{name.upper()}"
        if key in env:
            values[name] = _coerce_env(name, env[key])
    for name in (
        "checkpoint_interval_s",
        "rate_limit_per_s",
        "get_rate_limit_per_s",
        "shutdown_timeout_s",
        "read_timeout_s",
    ):
        if isinstance(values.get(name), int) and not isinstance(values.get(name), bool):
            values[name] = float(values[name])
    if "origin" not in values:
        raise ConfigError(f"{path}: origin is missing")
    try:
        return NodeConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def write_config(data_dir: Path, config: NodeConfig) -> Path:
    """Write ``config`` as ``data_dir/liquide.toml`` (every setting, commented); return the path."""
    path = Path(data_dir) / CONFIG_FILE
    lines = [
        "# Liquide city node. Environment variables LIQUIDE_<SETTING> override these values.",
        "[node]",
    ]
    for name, value in config.to_dict().items():
        if name in _BOUNDS:
            lo, hi = _BOUNDS[name]
            lines.append(f"# bounds: {_num(lo)} .. {_num(hi)}")
        lines.append(f"{name} = {_toml_value(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
