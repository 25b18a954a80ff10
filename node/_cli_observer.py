"""The observer's commands: ``liquide verify``, ``liquide export`` and ``liquide trust export``.

This is the I/O edge of :mod:`protocol.verify`: it reads the trust file, downloads every relevant
log from each node through :class:`node.client.NodeClient` (or reads exported record
directories), runs the pure engine, prints the report (text, ``--json``, ``--html``) and exits
0 on PASS, 1 on FAIL, 2 on usage errors. Signature checks can run in a process pool
(:class:`PoolBatcher`), many signatures per task so that inter-process traffic stays small.

The export directory layout and the trust file format are specified in docs/PROTOCOL.md,
section "observer". Nothing a node answers is trusted: a garbage answer is a clear
``liquide: error: …`` naming the node and the request, and the material it did send is judged
by the engine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.pool import Pool
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO
from urllib.parse import quote, unquote

import click

from protocol.errors import ProtocolError, ValidationError
from protocol.events import AssemblyJoinBody, Event
from protocol.verify import (
    ConsistencyProof,
    LogMaterial,
    NodeMaterial,
    Report,
    SavedState,
    Trust,
    verify,
)

from .client import NodeClient
from .errors import ApiError, NodeError, PeerError
from .ingest import check_signed

__all__ = [
    "EXPORT_FORMAT",
    "InlineBatcher",
    "ObserverInputError",
    "PoolBatcher",
    "export_cmd",
    "fetch_node",
    "load_trust",
    "read_record",
    "trust_group",
    "verify_cmd",
    "write_record",
]

EXPORT_FORMAT: Final = "liquide-export/v1"
STATE_FILE: Final = "state.json"
#: At most this many checkpoints of one origin are fetched besides the latest (the sizes the node
#: reports cosignatures for, and the sizes right after seals).
MAX_EXTRA_CHECKPOINTS: Final = 1000
_SEAL_MARK: Final = b'"type":"seal"'

ClientFactory = Callable[[str], NodeClient]


class ObserverInputError(NodeError):
    """A trust file, saved state or exported record cannot be used: it names the file."""

    code = "observer_input"


# --- trust files ---------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ObserverInputError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ObserverInputError(f"cannot read {what} {path}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ObserverInputError(f"{what} {path} is not JSON: {exc}") from None


def load_trust(path: Path) -> Trust:
    """Read and validate a trust file; raise :class:`ObserverInputError` naming the problem."""
    data = _read_json(path, "trust file")
    try:
        return Trust.from_dict(data)
    except ProtocolError as exc:
        raise ObserverInputError(f"trust file {path}: {exc.message}") from None


# --- the signature pool --------------------------------------------------------------------------


class InlineBatcher:
    """A :class:`protocol.verify.SignatureBatcher` that checks each batch at once, in-process
    (the single-core path: one tight loop over libsodium, no per-event indirection)."""

    def submit(self, keys: Sequence[bytes], signed: Sequence[bytes]) -> Callable[[], list[int]]:
        bad = check_signed(keys, signed)
        return lambda: bad


class PoolBatcher:
    """A :class:`protocol.verify.SignatureBatcher` over a pool of worker processes.

    Each submitted batch is split into one task per worker (two lists of bytes, which pickle
    serialises in C at little more than a copy), and the results come back as the few positions
    that failed. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = max(1, workers)
        # fork where available: workers need nothing but libsodium, and start in milliseconds
        # instead of re-importing the CLI (spawn).
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._pool: Pool = ctx.Pool(self.workers)

    def submit(self, keys: Sequence[bytes], signed: Sequence[bytes]) -> Callable[[], list[int]]:
        n = len(keys)
        step = max(1, -(-n // self.workers))
        pending = [
            (
                lo,
                self._pool.apply_async(
                    check_signed, (list(keys[lo : lo + step]), list(signed[lo : lo + step]))
                ),
            )
            for lo in range(0, n, step)
        ]

        def wait() -> list[int]:
            return [lo + b for lo, res in pending for b in res.get()]

        return wait

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> PoolBatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._pool.terminate()
            self._pool.join()


# --- progress ------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._shown = False

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = width if total <= 0 else min(width, width * done // total)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{label[:40]:<40} [{bar}] {done}/{total}")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


# --- downloading ---------------------------------------------------------------------------------


def _bad(url: str, what: str) -> PeerError:
    return PeerError(f"{url}: unexpected answer to {what}")


async def _cosigned_sizes(client: NodeClient, url: str) -> dict[str, set[int]]:
    """The (origin, size) pairs of every cosignature the node lists (empty if it lists none)."""
    out: dict[str, set[int]] = {}
    after = 0
    for _ in range(10_000):
        try:
            page = await client.get_json("/v1/cosignatures", {"after": str(after)})
        except ApiError as exc:
            if exc.status == 404:
                return out
            raise
        rows = page.get("cosignatures") if isinstance(page, dict) else None
        if not isinstance(rows, list):
            raise _bad(url, "/v1/cosignatures")
        if not rows:
            return out
        for r in rows:
            if not isinstance(r, dict) or type(r.get("seq")) is not int:
                raise _bad(url, "/v1/cosignatures")
            if isinstance(r.get("origin"), str) and type(r.get("size")) is int:
                out.setdefault(r["origin"], set()).add(r["size"])
            after = max(after, r["seq"])
    return out


async def _entries(
    client: NodeClient, url: str, origin: str, *, start: int, end: int, progress: Progress
) -> list[bytes]:
    out: list[bytes] = []
    pos = start
    label = f"{origin} from {url}"
    while pos < end:
        page = await client.entries(origin, pos, end)
        if not page:
            raise PeerError(f"{url}: no entries of {origin} served from index {pos} (size {end})")
        out.extend(page)
        pos += len(page)
        progress(label, pos - start, end - start)
    return out


async def fetch_node(
    client: NodeClient,
    url: str,
    *,
    origins: set[str] | None = None,
    starts: Mapping[str, int] | None = None,
    progress: Progress | None = None,
) -> NodeMaterial:
    """Download what ``url`` serves: every log (only ``origins`` if given) with its entries from
    ``starts[origin]`` (default 0), its latest checkpoint and the checkpoints it reports
    cosignatures for or that follow a seal, consistency proofs from the start, and its proofs.

    Raises :class:`PeerError` (unreachable, garbage answer) naming the node and the request.
    """
    progress = progress or Progress(enabled=False)
    starts = starts or {}
    try:
        listing = await client.get_json("/v1/logs")
    except ApiError as exc:
        raise PeerError(f"{url}: /v1/logs: {exc.message}") from None
    items = listing.get("logs") if isinstance(listing, dict) else None
    if not isinstance(items, list):
        raise _bad(url, "/v1/logs")
    cosigned = await _cosigned_sizes(client, url)
    logs: dict[str, LogMaterial] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("origin"), str):
            raise _bad(url, "/v1/logs")
        origin = item["origin"]
        if origins is not None and origin not in origins:
            continue
        note, size = item.get("checkpoint"), item.get("checkpoint_size")
        if note is None:
            logs[origin] = LogMaterial(origin, ())
            continue
        if not isinstance(note, str) or type(size) is not int or size < 0:
            raise _bad(url, f"/v1/logs (the checkpoint of {origin})")
        start = min(starts.get(origin, 0), size)
        entries = await _entries(client, url, origin, start=start, end=size, progress=progress)
        extra = set(cosigned.get(origin, set()))
        extra.update(start + i + 1 for i, leaf in enumerate(entries) if _SEAL_MARK in leaf)
        notes = [note]
        for s in sorted((s for s in extra if 0 < s < size), reverse=True)[:MAX_EXTRA_CHECKPOINTS]:
            try:
                notes.append(await client.checkpoint(origin, s))
            except ApiError as exc:
                if exc.status != 404:
                    raise
        proofs: tuple[ConsistencyProof, ...] = ()
        if 0 < start < size:
            try:
                hashes = await client.consistency_proof(origin, start, size)
            except ApiError:
                hashes = None  # a missing proof proves nothing either way
            if hashes is not None:
                proofs = (ConsistencyProof(start, size, tuple(hashes)),)
        logs[origin] = LogMaterial(origin, tuple(notes), entries, start, proofs)
    try:
        held = await client.get_json("/v1/proofs")
    except ApiError as exc:
        if exc.status != 404:
            raise
        held = {"proofs": []}
    plist = held.get("proofs") if isinstance(held, dict) else None
    if not isinstance(plist, list):
        raise _bad(url, "/v1/proofs")
    return NodeMaterial(url, logs, tuple(p for p in plist if isinstance(p, dict)))


async def _fetch_all(
    urls: Sequence[str],
    factory: ClientFactory,
    *,
    origins: set[str] | None,
    starts: Mapping[str, int],
    progress: Progress,
) -> list[NodeMaterial]:
    out = []
    for url in urls:
        async with factory(url) as client:
            try:
                out.append(
                    await fetch_node(client, url, origins=origins, starts=starts, progress=progress)
                )
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise PeerError(f"{url}: a garbage answer ({type(exc).__name__})") from None
    progress.done()
    return out


def _default_factory(url: str) -> NodeClient:
    return NodeClient(url)


# --- exported records -----------------------------------------------------------------------------


def _origin_dir(origin: str) -> str:
    # An origin is data from a log: quoting leaves "." and "..", which would name the logs/
    # directory itself or its parent, so those are spelled with %2E (unquote gives them back).
    name = quote(origin, safe="")
    return name.replace(".", "%2E") if name in (".", "..") else name


def write_record(material: NodeMaterial, directory: Path) -> None:
    """Write ``material`` as an export directory (docs/PROTOCOL.md, "observer").

    Raises :class:`ObserverInputError` if the directory exists and is not empty.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ObserverInputError(f"{directory} exists and is not an empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"format": EXPORT_FORMAT, "node": material.node, "logs": []}
    for origin, log in sorted(material.logs.items()):
        sub = Path("logs") / _origin_dir(origin)
        base = directory / sub
        (base / "checkpoints").mkdir(parents=True)
        sizes = []
        for note in log.checkpoints:
            size = _note_size(note)
            sizes.append(size)
            (base / "checkpoints" / f"{size}.txt").write_text(note, encoding="utf-8")
        entries = log.entries or []
        with (base / "entries.ndjson").open("wb") as fh:
            for leaf in entries:
                fh.write(leaf)
                fh.write(b"\n")
        consistency = [
            {"old": p.old, "new": p.new, "proof": [base64.b64encode(h).decode() for h in p.proof]}
            for p in log.consistency
        ]
        (base / "consistency.json").write_text(json.dumps(consistency, indent=1), encoding="utf-8")
        manifest["logs"].append(
            {
                "origin": origin,
                "dir": sub.as_posix(),
                "start": log.start,
                "entries": len(entries),
                "checkpoints": sorted(set(sizes)),
            }
        )
    (directory / "proofs.json").write_text(
        json.dumps({"proofs": list(material.proofs)}, indent=1, sort_keys=True), encoding="utf-8"
    )
    (directory / "record.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )


def _note_size(note: str) -> int:
    lines = note.split("\n")
    if len(lines) < 2 or not lines[1].isdigit():
        raise ObserverInputError("a checkpoint the node served is not a checkpoint note")
    return int(lines[1])


def read_record(directory: Path) -> NodeMaterial:
    """Read an export directory back; raise :class:`ObserverInputError` naming the bad file."""
    manifest = _read_json(directory / "record.json", "record manifest")
    where = f"record {directory}"
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise ObserverInputError(f"{where}: record.json is not a {EXPORT_FORMAT} manifest")
    node, listed = manifest.get("node"), manifest.get("logs")
    if not isinstance(node, str) or not isinstance(listed, list):
        raise ObserverInputError(f"{where}: record.json needs 'node' and 'logs'")
    logs: dict[str, LogMaterial] = {}
    for i, item in enumerate(listed):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("origin"), str)
            or not isinstance(item.get("dir"), str)
            or type(item.get("start", 0)) is not int
        ):
            raise ObserverInputError(f"{where}: record.json logs[{i}] needs origin, dir, start")
        origin, sub = item["origin"], item["dir"]
        base = (directory / sub).resolve()
        if directory.resolve() not in base.parents or unquote(base.name) != origin:
            raise ObserverInputError(f"{where}: logs[{i}].dir {sub!r} is not logs/<origin>")
        logs[origin] = _read_log(base, origin, item.get("start", 0), where)
    proofs = _read_json(directory / "proofs.json", "proofs file")
    plist = proofs.get("proofs") if isinstance(proofs, dict) else None
    if not isinstance(plist, list):
        raise ObserverInputError(f"{where}: proofs.json needs a 'proofs' array")
    return NodeMaterial(node, logs, tuple(p for p in plist if isinstance(p, dict)))


def _read_log(base: Path, origin: str, start: int, where: str) -> LogMaterial:
    notes = []
    cdir = base / "checkpoints"
    try:
        files = sorted(cdir.iterdir(), key=lambda p: (len(p.name), p.name))
    except OSError as exc:
        raise ObserverInputError(f"{where}: cannot list {cdir}: {exc}") from None
    for f in files:
        try:
            notes.append(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ObserverInputError(f"{where}: cannot read {f}: {exc}") from None
    path = base / "entries.ndjson"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ObserverInputError(f"{where}: cannot read {path}: {exc}") from None
    if data and not data.endswith(b"\n"):
        raise ObserverInputError(f"{where}: {path} does not end with a newline")
    entries = data.split(b"\n")[:-1] if data else []
    raw = _read_json(base / "consistency.json", "consistency file")
    proofs = []
    if not isinstance(raw, list):
        raise ObserverInputError(f"{where}: {base / 'consistency.json'} must be an array")
    for j, p in enumerate(raw):
        try:
            proofs.append(
                ConsistencyProof(
                    int(p["old"]),
                    int(p["new"]),
                    tuple(base64.b64decode(h, validate=True) for h in p["proof"]),
                )
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise ObserverInputError(
                f"{where}: {base / 'consistency.json'}[{j}] is not a consistency proof"
            ) from None
    return LogMaterial(origin, tuple(notes), entries, start, tuple(proofs))


# --- saved state ------------------------------------------------------------------------------------


def _load_state(directory: Path | None) -> SavedState | None:
    if directory is None:
        return None
    path = directory / STATE_FILE
    if not path.exists():
        return None
    data = _read_json(path, "saved state")
    try:
        return SavedState.from_dict(data)
    except ProtocolError as exc:
        raise ObserverInputError(f"saved state {path}: {exc.message}") from None


def _save_state(directory: Path, state: SavedState) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state.to_dict(), sort_keys=True), encoding="utf-8")
    os.replace(tmp, directory / STATE_FILE)


# --- verify -------------------------------------------------------------------------------------------


def _pinned_origins(trust: Trust) -> set[str] | None:
    if not trust.resolved:
        return None
    return {g.origin for g in trust.all_logs()} | {w.name for w in trust.witnesses}


def _auto_workers(nodes: Sequence[NodeMaterial]) -> int:
    total = sum(len(g.entries or ()) for n in nodes for g in n.logs.values())
    cpus = os.cpu_count() or 1
    return 2 if total >= 20_000 and cpus >= 2 else 1


def run_verify(
    trust: Trust,
    nodes: Sequence[NodeMaterial],
    *,
    now: int,
    issue: str | None = None,
    saved: SavedState | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> tuple[Report, SavedState]:
    """Run the engine, with a pool of ``workers`` processes for signatures when > 1."""
    prog = progress or Progress(enabled=False)
    try:
        if workers > 1:
            with PoolBatcher(workers) as pool:
                result = verify(
                    trust, nodes, now=now, issue=issue, saved=saved, batcher=pool, progress=prog
                )
        else:
            result = verify(
                trust,
                nodes,
                now=now,
                issue=issue,
                saved=saved,
                batcher=InlineBatcher(),
                progress=prog,
            )
    finally:
        prog.done()
    return result.report, result.state


@click.command("verify")
@click.option(
    "--trust",
    "trust_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    envvar="LIQUIDE_TRUST",
    help="The trust file (pins obtained out of band). [env: LIQUIDE_TRUST]",
)
@click.option(
    "--node", "nodes", multiple=True, metavar="URL", help="A node to download from (repeatable)."
)
@click.option(
    "--record",
    "records",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="An exported record directory to verify offline (repeatable).",
)
@click.option("--issue", default=None, metavar="ID", help="Tally and compare only this issue.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a self-contained HTML report to this file.",
)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="LIQUIDE_VERIFY_STATE",
    help="Verify incrementally from (and save to) this directory. [env: LIQUIDE_VERIFY_STATE]",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=0,
    envvar="LIQUIDE_VERIFY_WORKERS",
    help="Processes checking signatures (0: automatic). [env: LIQUIDE_VERIFY_WORKERS]",
)
@click.pass_context
def verify_cmd(  # noqa: PLR0917 (click passes one argument per option)
    ctx: click.Context,
    trust_path: Path,
    nodes: tuple[str, ...],
    records: tuple[Path, ...],
    issue: str | None,
    as_json: bool,
    html_path: Path | None,
    state_dir: Path | None,
    workers: int,
) -> None:
    """Verify a federation independently: PASS (exit 0) or FAIL (exit 1).

    Online with --node URL (repeatable): download every relevant log with its checkpoints from
    each node. Offline with --record DIR (from `liquide export`). The report lists the eight
    numbered steps with counts and every finding, naming the item.
    """
    if bool(nodes) == bool(records):
        raise click.UsageError("give --node URL (online) or --record DIR (offline), not both")
    if issue is not None and not (len(issue) == 64 and all(c in "0123456789abcdef" for c in issue)):
        raise click.BadParameter("must be a lower-case hex issue id", param_hint="--issue")
    trust = load_trust(trust_path)
    saved = _load_state(state_dir)
    if saved is not None and saved.trust != trust.digest():
        raise ObserverInputError(
            f"saved state {state_dir} was made under another trust file; use another --state"
        )
    factory: ClientFactory = (ctx.obj or {}).get("client_factory", _default_factory)
    progress = Progress()
    if nodes:
        starts = {} if saved is None else {o: s.range.size for o, s in saved.logs.items()}
        material = asyncio.run(
            _fetch_all(
                nodes, factory, origins=_pinned_origins(trust), starts=starts, progress=progress
            )
        )
    else:
        material = [read_record(r) for r in records]
    chosen = workers or _auto_workers(material)
    now = int((ctx.obj or {}).get("now", time.time()))
    try:
        report, state = run_verify(
            trust, material, now=now, issue=issue, saved=saved, workers=chosen, progress=progress
        )
    except ValidationError as exc:
        raise ObserverInputError(exc.message) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1, sort_keys=True))
    else:
        click.echo(report.to_text(), nl=False)
    if html_path is not None:
        from ._report_html import render

        try:
            html_path.write_text(render(report), encoding="utf-8")
        except OSError as exc:
            raise ObserverInputError(f"cannot write {html_path}: {exc}") from None
    if state_dir is not None:
        if report.passed:
            _save_state(state_dir, state)
        else:
            click.echo(
                f"liquide: hint: the state in {state_dir} was not updated (the verification failed)",
                err=True,
            )
    if not report.passed:
        sys.exit(1)


# --- export ------------------------------------------------------------------------------------------


@click.command("export")
@click.option("--node", "node_url", required=True, metavar="URL", help="The node to export from.")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def export_cmd(ctx: click.Context, node_url: str, directory: Path) -> None:
    """Write a complete record of what a node serves to DIRECTORY, for offline verification.

    Every log with its entries, checkpoints (with cosignatures) and the node's misbehaviour
    proofs; `liquide verify --trust FILE --record DIRECTORY` then needs no network.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ObserverInputError(f"{directory} exists and is not an empty directory")
    factory: ClientFactory = (ctx.obj or {}).get("client_factory", _default_factory)
    progress = Progress()
    (material,) = asyncio.run(
        _fetch_all([node_url], factory, origins=None, starts={}, progress=progress)
    )
    write_record(material, directory)
    n = sum(len(g.entries or ()) for g in material.logs.values())
    click.echo(f"exported {len(material.logs)} logs, {n} entries from {node_url} to {directory}")


# --- trust export --------------------------------------------------------------------------------------


async def _definition(client: NodeClient, url: str, assembly: str) -> Event:
    listing = await client.get_json("/v1/assemblies")
    items = listing.get("assemblies") if isinstance(listing, dict) else None
    if not isinstance(items, list):
        raise _bad(url, "/v1/assemblies")
    row = next((a for a in items if isinstance(a, dict) and a.get("id") == assembly), None)
    if row is None:
        raise PeerError(f"{url} does not hold assembly {assembly}")
    index = row.get("index")
    logs = await client.get_json("/v1/logs")
    own = (
        next(
            (g["origin"] for g in (logs.get("logs") or []) if isinstance(g, dict) and g.get("own")),
            None,
        )
        if isinstance(logs, dict)
        else None
    )
    if type(index) is not int or not isinstance(own, str):
        raise _bad(url, "/v1/assemblies")
    (leaf,) = (await client.entries(own, index, index + 1)) or [b""]
    try:
        ev = Event.decode(leaf)
    except ProtocolError as exc:
        raise PeerError(
            f"{url}: the leaf defining assembly {assembly} is invalid: {exc.message}"
        ) from None
    if isinstance(ev.body, AssemblyJoinBody):
        ev = ev.body.assembly
    if ev.type != "assembly" or ev.id != assembly:
        raise PeerError(f"{url}: leaf {index} of {own} is not the definition of {assembly}")
    return ev


@click.group("trust")
def trust_group() -> None:
    """Trust files: the pins an observer verifies from."""


@trust_group.command("export")
@click.argument("assembly")
@click.option("--node", "node_url", required=True, metavar="URL", help="The node to read it from.")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the trust file here (default: stdout).",
)
@click.pass_context
def trust_export_cmd(ctx: click.Context, assembly: str, node_url: str, out: Path | None) -> None:
    """Write a trust file for ASSEMBLY (its id) from a node's copy of its signed definition.

    The definition's id is its hash, so the file pins exactly that assembly; compare the printed
    fingerprints with the cities' own, out of band, before trusting it.
    """
    if not (len(assembly) == 64 and all(c in "0123456789abcdef" for c in assembly)):
        raise click.BadParameter("must be a lower-case hex assembly id", param_hint="ASSEMBLY")
    factory: ClientFactory = (ctx.obj or {}).get("client_factory", _default_factory)

    async def get() -> Event:
        async with factory(node_url) as client:
            try:
                return await _definition(client, node_url, assembly)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise PeerError(f"{node_url}: a garbage answer ({type(exc).__name__})") from None

    definition = asyncio.run(get())
    try:
        trust = Trust.of_definition(definition)
    except ValidationError as exc:
        raise PeerError(
            f"{node_url}: the definition of {assembly} is not valid: {exc.message}"
        ) from None
    text = json.dumps(trust.to_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        try:
            with out.open("x", encoding="utf-8") as fh:
                fh.write(text)
        except FileExistsError:
            raise ObserverInputError(f"{out} already exists") from None
        except OSError as exc:
            raise ObserverInputError(f"cannot write {out}: {exc}") from None
    click.echo(
        f"trust file for assembly {assembly}; compare these fingerprints out of band:", err=True
    )
    for role, name, fp in trust.fingerprints():
        click.echo(f"  {role:<8} {fp}  {name}", err=True)
