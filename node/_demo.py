"""``liquide demo``: three cities on loopback, federated, voting, sealed, attested and verified.

What it does, with progress on stdout:

1. creates three data directories in a temporary directory and starts three city nodes as
   separate processes (``liquide node serve --port 0``), with short sync and checkpoint
   intervals;
2. peers them in a line A–B–C, so that A and C learn of each other's logs only through B;
3. A defines an assembly of A and C with B as witness (k = 1) and an area; C joins it, fetching
   the definition from B; A opens an issue with a short voting window, which C adopts
   automatically;
4. enrols synthetic citizens in A and C (and one key in both, which the tally excludes and
   reports); through the wallet's code they sign delegations (some across cities, some ranked)
   and ballots, submitted to their home nodes;
5. waits for the close, the seals, the witness's cosignatures and every node's attestation;
   prints each node's result and whether the attestations agree;
6. runs the observer's verification (``liquide verify`` against all three nodes, from a trust
   file pinning the assembly) and prints its verdict.

It exits 0 only if everything verified. Every child process is stopped on every exit path
(the children also get SIGTERM if the demo itself dies). With ``--keep`` it then stays in the
foreground, prints ``ORIGIN http://127.0.0.1:PORT/`` per node, ``trust PATH`` and ``ready``, and
runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import click

from crypto import LiquideError, PublicKey, SecretKey
from protocol.events import Event

from .client import NodeClient
from .errors import ApiError, PeerError

__all__ = ["DemoError", "demo_cmd", "run_demo"]

CITIES = (
    ("A", "lyon.demo/liquide"),
    ("B", "vienne.demo/liquide"),
    ("C", "grenoble.demo/liquide"),
)
_PY_MAIN = "import sys; from node.cli import main; sys.exit(main())"


class DemoError(LiquideError):
    """A step of the demo failed; the message says which."""

    code = "demo_failed"


@dataclass
class City:
    """One city node of the demo: its process, data directory, URL and key."""

    label: str
    origin: str
    data: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    key: PublicKey | None = None
    citizens: dict[str, SecretKey] = field(default_factory=dict)
    heads: dict[str, tuple[int, str | None]] = field(default_factory=dict)

    @property
    def vkey(self) -> str:
        assert self.key is not None
        return self.key.to_vkey(self.origin)


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def _die_with_parent() -> None:  # pragma: no cover (runs in the child)
    # Linux: the child gets SIGTERM if the demo dies without cleaning up (SIGKILL, say).
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()


async def _cli(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``liquide ARGS`` in a child process; return its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PY_MAIN, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 300)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


class Demo:
    """The demo's state and steps; :meth:`run` drives them."""

    def __init__(  # noqa: PLR0917 (the demo's knobs)
        self, base: Path, citizens: int, window: int, grace: int, out: TextIO, seed: int
    ) -> None:
        self.base = base
        self.n = citizens
        self.window = window
        self.grace = grace
        self.out = out
        self.rng = random.Random(seed)
        self.cities = [City(label, origin, base / label.lower()) for label, origin in CITIES]
        self.env = {
            **os.environ,
            "LIQUIDE_CHECKPOINT_INTERVAL_S": "0.3",
            "LIQUIDE_VERIFY_WORKERS": "0",
            "LIQUIDE_RATE_LIMIT_EXEMPT": "127.0.0.0/8",
            "LIQUIDE_FED_SYNC_INTERVAL_S": "0.3",
            "LIQUIDE_FED_TICK_INTERVAL_S": "0.3",
            "LIQUIDE_FED_BACKOFF_MAX_S": "2",
        }
        self.trust_path = base / "trust.json"
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        _say(self.out, f"[{time.monotonic() - self.t0:5.1f}s] {text}")

    # Processes ------------------------------------------------------------------------------

    async def init(self) -> None:
        runs = [
            _cli(["node", "init", "--origin", c.origin, "--data", str(c.data), "--json"], self.env)
            for c in self.cities
        ]
        for c, (code, out, err) in zip(self.cities, await asyncio.gather(*runs), strict=True):
            if code != 0:
                raise DemoError(f"node init {c.origin} failed: {err.strip()}")
            c.key = PublicKey.from_text(json.loads(out)["key"])

    def start(self) -> None:
        for c in self.cities:
            log = (self.base / f"{c.label.lower()}.log").open("wb")
            c.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _PY_MAIN,
                    "node",
                    "serve",
                    "--data",
                    str(c.data),
                    "--port",
                    "0",
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads run yet here)
            )
            log.close()
        for c in self.cities:
            assert c.proc is not None
            line = _readline(c.proc, 30)
            if not line.startswith("http://"):
                raise DemoError(f"{c.origin} did not start; see {self.base / c.label.lower()}.log")
            c.url = line.strip()
        self.say(
            "three city nodes serving: " + ", ".join(f"{c.label} {c.url}" for c in self.cities)
        )

    def stop(self) -> None:
        procs = [c.proc for c in self.cities if c.proc is not None]
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()
        for c in self.cities:
            c.proc = None

    # Admin, through each node's admin socket ------------------------------------------------

    async def admin(self, city: City, op: str, args: dict[str, Any]) -> dict[str, Any]:
        from ._admin_socket import call

        out = await asyncio.to_thread(call, city.data, op, args)
        if out is None:
            raise DemoError(f"the admin socket of {city.origin} is not answering")
        return out

    # Steps ------------------------------------------------------------------------------------

    async def wait(
        self, what: str, check: Callable[[], Awaitable[bool]], timeout: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise DemoError(f"timed out waiting for {what}")
            await asyncio.sleep(0.2)

    async def run(self) -> bool:
        a, b, c = self.cities
        await self.init()
        self.start()
        for x, y in ((a, b), (b, c)):
            await self.admin(x, "peer.add", {"url": y.url, "origin": y.origin, "key": y.vkey})
            await self.admin(y, "peer.add", {"url": x.url, "origin": x.origin, "key": x.vkey})
        self.say("peered in a line: A – B – C (A and C meet only through B)")
        asm = (
            await self.admin(
                a,
                "assembly.create",
                {
                    "name": "Lyon–Grenoble metropolitan assembly",
                    "members": [[a.origin, a.vkey], [c.origin, c.vkey]],
                    "witnesses": [[b.origin, b.vkey]],
                    "k": 1,
                    "grace": self.grace,
                },
            )
        )["event_id"]
        area = (await self.admin(a, "area.create", {"assembly": asm, "name": "Transport"}))[
            "event_id"
        ]
        self.say(f"A defined assembly {asm[:12]}… (members A and C, witness B, k=1) and an area")
        async with NodeClient(b.url) as cb:

            async def b_has() -> bool:
                try:
                    await cb.get_json(f"/v1/events/{asm}")
                except PeerError:
                    return False
                return True

            await self.wait("B to mirror A's assembly", b_has)
            definition = (await cb.get_json(f"/v1/events/{asm}"))["event"]
        await self.admin(c, "assembly.join", {"assembly": asm, "definition": definition})
        self.say("C joined the assembly (its definition fetched from B, checked by its id)")
        async with NodeClient(c.url) as cc:

            async def c_mirrors_a() -> bool:
                return any(lg["origin"] == a.origin for lg in await cc.logs())

            await self.wait("C to mirror A's log through B", c_mirrors_a)
        await self.enrol(a, c)
        now = int(time.time())
        closes = now + self.window + max(6, self.n // 20)
        issue = (
            await self.admin(
                a,
                "issue.create",
                {
                    "area": area,
                    "title": "Extend the tram to the airport",
                    "options": [["tram", "Build the tram"], ["bus", "Rapid bus line instead"]],
                    "opens": now,
                    "closes": closes,
                    "policy": None,
                },
            )
        )["event_id"]
        self.say(f"A opened issue {issue[:12]}…; voting closes in {closes - now} s")
        async with NodeClient(c.url) as cc:

            async def adopted() -> bool:
                try:
                    await cc.issue(issue)
                except PeerError:
                    return False
                return True

            await self.wait("C to adopt the issue", adopted)
        self.say("C adopted the issue automatically")
        await self.sign_and_submit(a, c, asm, issue)
        wait_s = closes - time.time()
        self.say(
            f"waiting {max(0, wait_s):.0f} s for the close; then seals, cosignatures, attestations"
        )
        await asyncio.sleep(max(0.0, wait_s))
        ok = await self.results(issue)
        self.write_trust(asm, definition)
        verdict = await self.observe(issue)
        return ok and verdict

    async def enrol(self, a: City, c: City) -> None:
        n = self.n
        for i in range(n):
            home = a if i % 2 == 0 else c
            sk = SecretKey.generate()
            await self.admin(
                home, "enrol", {"key": sk.public_key.to_text(), "ref": f"demo-{i:05d}"}
            )
            home.citizens[f"{home.label}{i}"] = sk
        dual = SecretKey.generate()  # enrolled by both member cities: excluded and reported
        for home in (a, c):
            await self.admin(home, "enrol", {"key": dual.public_key.to_text(), "ref": "demo-dual"})
        self.say(f"enrolled {n} citizens ({len(a.citizens)} in A, {len(c.citizens)} in C), "
                 "and one key in both cities")  # fmt: skip

    async def sign_and_submit(self, a: City, c: City, asm: str, issue: str) -> None:
        everyone = [(a, name, sk) for name, sk in a.citizens.items()]
        everyone += [(c, name, sk) for name, sk in c.citizens.items()]
        self.rng.shuffle(everyone)
        voters = everyone[: max(2, (len(everyone) * 3) // 5)]
        delegators = everyone[len(voters) :]
        keys = {name: sk.public_key.to_text() for _, name, sk in everyone}
        batches: dict[str, list[Event]] = {a.origin: [], c.origin: []}
        now = int(time.time())
        cross = ranked = 0
        from ._wallet_ops import ballot_body, delegate_body, parse_target, parse_trustees

        for i, (home, name, sk) in enumerate(delegators):
            others = [v for v in voters if v[1] != name]
            # Prefer a trustee in the other city (cross-city); some lists are ranked.
            first = next((v for v in others if v[0] is not home), others[0])
            rest = self.rng.sample([v for v in others if v is not first], k=min(2, len(others) - 1))
            trustees = [first, *rest] if i % 2 == 0 else [first]
            cross += first[0] is not home
            ranked += len(trustees) > 1
            scope = parse_target(asm, None, None) if i % 3 == 0 else parse_target(None, None, issue)
            body = delegate_body(
                scope, parse_trustees([keys[t[1]] for t in trustees], sk.public_key)
            )
            batches[home.origin].append(self._sign(home, name, sk, "delegate", body, now))
        tram = bus = 0
        for home, name, sk in voters:
            like_tram = self.rng.random() < 0.55
            tram += like_tram
            bus += not like_tram
            grades = {"tram": 1, "bus": -1} if like_tram else {"tram": -1, "bus": 1}
            body = ballot_body(issue, grades)
            batches[home.origin].append(self._sign(home, name, sk, "ballot", body, now))
        for home in (a, c):
            async with NodeClient(home.url) as client:
                results = await client.submit_batch(batches[home.origin])
            refused = [r for r in results if "error" in r]
            if refused:
                raise DemoError(f"{home.origin} refused {len(refused)} events: {refused[0]}")
        self.say(
            f"citizens signed {len(delegators)} delegations ({cross} across cities, {ranked} "
            f"ranked) and {len(voters)} ballots ({tram} for the tram, {bus} for the bus)"
        )

    def _sign(  # noqa: PLR0917 (one event's parts)
        self, home: City, name: str, sk: SecretKey, type_: str, body: dict[str, Any], now: int
    ) -> Event:
        seq, prev = home.heads.get(name, (0, None))
        ev = Event.create(sk, type_, body, seq + 1, prev, now)
        home.heads[name] = (seq + 1, ev.id)
        return ev

    async def results(self, issue: str) -> bool:
        clients = {c.label: NodeClient(c.url) for c in self.cities}
        try:

            async def all_attested() -> bool:
                for client in clients.values():
                    try:
                        att = await client.get_json(f"/v1/issues/{issue}/attestations")
                    except PeerError:
                        return False
                    if len(att["attestations"]) < len(self.cities):
                        return False
                return True

            await self.wait("every node's attestation", all_attested, timeout=60 + self.grace)
            agree = True
            digests = set()
            for label, client in clients.items():
                rec = await client.get_json(f"/v1/issues/{issue}/record")
                att = await client.get_json(f"/v1/issues/{issue}/attestations")
                result = rec["result"]
                weights = {o: v["positive_votes"] for o, v in result["options"].items()}
                flags = {o.split(".")[0]: f for o, f in rec["flags"].items() if f}
                excluded = sum(1 for f in rec["findings"] if f["reason"] == "enrolled_twice")
                digests.add(rec["digest"])
                agree &= bool(att["agree"])
                self.say(
                    f"{label}: winner {result['winner'] or 'status quo'} {weights}; record "
                    f"{rec['record_id'][:12]}…, digest {rec['digest'][:12]}…; "
                    f"{len(att['attestations'])} attestations "
                    f"{'agree' if att['agree'] else 'DISAGREE'}"
                    + (f"; flags {flags}" if flags else "")
                    + (f"; {excluded // 2} key enrolled twice, excluded" if excluded else "")
                )
            agree &= len(digests) == 1
            self.say("attestations agree on every node" if agree else "ATTESTATIONS DISAGREE")
            return agree
        finally:
            for client in clients.values():
                await client.close()

    def write_trust(self, asm: str, definition: dict[str, Any]) -> None:
        from protocol.verify import PinnedLog, Trust

        b = self.cities[1]
        assert b.key is not None
        trust = Trust.of_definition(Event.from_dict(definition), (PinnedLog(b.origin, b.key),))
        self.trust_path.write_text(json.dumps(trust.to_dict(), indent=2) + "\n", encoding="utf-8")

    async def observe(self, issue: str) -> bool:
        args = ["verify", "--trust", str(self.trust_path), "--issue", issue, "--json"]
        for c in self.cities:
            args += ["--node", c.url]
        self.say(
            "the observer verifies: liquide verify --trust trust.json --node A --node B --node C"
        )
        code, out, err = await _cli(args, self.env)
        try:
            report = json.loads(out)
        except ValueError:
            raise DemoError(f"liquide verify failed (exit {code}): {err.strip()[-500:]}") from None
        passed = code == 0 and report.get("verdict") == "PASS"
        self.say(f"observer verdict: {report.get('verdict', 'none')}")
        if not passed:
            self.say(f"  first failure: {json.dumps(report.get('first_failure'))[:500]}")
        return passed


def _readline(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first line a child prints, or '' after ``timeout`` seconds or if it exits."""
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return ""
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return ""
            buf += chunk
    finally:
        sel.close()
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace")


async def run_demo(
    *,
    citizens: int,
    keep: bool,
    window: int,
    grace: int,
    out: TextIO,
    seed: int | None = None,
    base: Path | None = None,
) -> int:
    """Run the demo; return the exit code (0 only if everything verified)."""
    made = base is None
    root = Path(tempfile.mkdtemp(prefix="liquide-demo-")) if base is None else base
    demo = Demo(
        root, citizens, window, grace, out, random.randrange(2**32) if seed is None else seed
    )
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    stop = asyncio.Event()

    def on_signal() -> None:
        if keep and demo.cities[0].url and not stop.is_set():
            stop.set()
        elif main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    ok = False
    try:
        try:
            ok = await demo.run()
        except (LiquideError, ApiError) as exc:
            demo.say(f"demo failed: {exc.message}")
        except OSError as exc:
            demo.say(f"demo failed: {exc}")
        demo.say("everything verified" if ok else "NOT everything verified")
        if keep:
            for c in demo.cities:
                if c.url:
                    _say(out, f"{c.origin} {c.url}")
            _say(out, f"trust {demo.trust_path}")
            _say(out, "ready")
            await stop.wait()
        return 0 if ok else 1
    except asyncio.CancelledError:
        demo.say("interrupted")
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        demo.stop()
        if made:
            shutil.rmtree(root, ignore_errors=True)


@click.command("demo")
@click.option(
    "--citizens",
    type=click.IntRange(4, 20_000),
    default=40,
    show_default=True,
    envvar="LIQUIDE_DEMO_CITIZENS",
    help="How many synthetic citizens to enrol, split between A and C.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="After the run, keep the nodes serving until SIGINT/SIGTERM (prints their URLs).",
)
@click.option(
    "--window",
    type=click.IntRange(5, 3600),
    default=12,
    show_default=True,
    help="Voting window in seconds (the demo's issue closes this long after it opens).",
)
@click.option(
    "--grace", type=click.IntRange(0, 3600), default=10, show_default=True, help="Grace (s)."
)
@click.option("--seed", type=int, default=None, help="Seed of the synthetic votes.")
def demo_cmd(citizens: int, keep: bool, window: int, grace: int, seed: int | None) -> None:
    """Run three federated cities on loopback: vote, seal, attest, verify. Exit 0 if verified."""
    code = asyncio.run(
        run_demo(
            citizens=citizens, keep=keep, window=window, grace=grace, out=sys.stdout, seed=seed
        )
    )
    sys.exit(code)
