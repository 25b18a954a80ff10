"""The fault campaign (``scripts/faults``): five real city nodes, a hostile network, no lost vote.

What it runs, on 127.0.0.1 only:

1. five ``liquide node serve`` processes on fixed loopback ports, members and witnesses of one
   assembly (k = 1), peered in a ring; every peer link goes through a :class:`LinkProxy` of this
   process (asyncio TCP, loopback), so that links can be cut, slowed or made to corrupt bytes;
2. simulated citizens (enrolled in every city) who delegate, revoke, vote and withdraw at their
   home node, retrying an unanswered event with the same bytes; an event counts as
   *acknowledged* once its home node answered with a receipt that verifies under the city key;
3. for ``seconds``: random faults, at most one node down and at most two bad links at a time:
   SIGKILL of a node and a restart on the same port, link cuts and heals, slow links, links that
   flip bits; meanwhile issues open and close (seals, witnessing and attestations happen under
   the faults);
4. then everything heals, and the campaign checks that every acknowledged event is in its home
   log at the index its receipt names, that all five nodes hold every log at the same
   checkpoint, that every issue's attestations agree, and that ``liquide verify`` passes.

:func:`run_campaign` returns a :class:`Summary` (faults injected, events acknowledged, events
lost, rounds to convergence, …). Every loop is bounded in time; every child process is killed
on every exit path (and gets SIGTERM from the kernel if this process dies first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from crypto import LiquideError, PublicKey, SecretKey
from protocol.checkpoint import Receipt, SignedCheckpoint
from protocol.events import Event

from ._demo import _readline

__all__ = ["CampaignError", "LinkProxy", "Summary", "main", "run_campaign"]

_PY_MAIN = "import sys; from node.cli import main; sys.exit(main())"
_HOST = "127.0.0.1"
N_CITIES = 5


class CampaignError(LiquideError):
    """The campaign could not run a step (a node did not start, a setup call failed)."""

    code = "campaign_failed"


# The link proxy -------------------------------------------------------------------------------


class LinkProxy:
    """A loopback TCP proxy for one directed peer link, whose behaviour can change at any time.

    Modes: ``up`` (forward), ``cut`` (refuse new connections, drop open ones), ``slow`` (forward
    in small pieces with delays), ``corrupt`` (flip one random bit in some chunks).
    """

    def __init__(self, name: str, target_port: int, rng: random.Random) -> None:
        self.name = name
        self.target_port = target_port
        self.rng = rng
        self.mode = "up"
        self.port = 0
        self.flipped = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self, port: int = 0) -> int:
        """Listen on ``127.0.0.1:port`` (0: any free port); return the port."""
        self._server = await asyncio.start_server(self._handle, _HOST, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def set_mode(self, mode: str) -> None:
        """Change the link's behaviour; ``cut`` also drops every open connection."""
        self.mode = mode
        if mode == "cut":
            for w in list(self._conns):
                w.transport.abort()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self.set_mode("cut")
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            cw.transport.abort()
            return
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(_HOST, self.target_port), 3)
        except (OSError, TimeoutError):
            cw.transport.abort()  # the node is down: the peer sees a reset, as on a real network
            return
        self._conns.update((cw, uw))
        try:
            await asyncio.gather(self._pipe(cr, uw), self._pipe(ur, cw))
        finally:
            for w in (cw, uw):
                self._conns.discard(w)
                w.transport.abort()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data or self.mode == "cut":
                    break
                if self.mode == "corrupt" and self.rng.random() < 0.3:
                    buf = bytearray(data)
                    buf[self.rng.randrange(len(buf))] ^= 1 << self.rng.randrange(8)
                    data = bytes(buf)
                    self.flipped += 1
                if self.mode == "slow":
                    for i in range(0, len(data), 2048):
                        await asyncio.sleep(self.rng.uniform(0.01, 0.08))
                        dst.write(data[i : i + 2048])
                        await dst.drain()
                else:
                    dst.write(data)
                    await dst.drain()
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            dst.transport.abort()


# Cities, citizens and the summary ---------------------------------------------------------------


@dataclass
class City:
    """One node of the campaign: its process, port, key and the citizens it enrolled."""

    label: str
    origin: str
    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    key: PublicKey | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def vkey(self) -> str:
        assert self.key is not None
        return self.key.to_vkey(self.origin)


@dataclass
class Citizen:
    """A simulated citizen: key, home city, chain head, and the one event awaiting an answer."""

    sk: SecretKey
    home: City
    seq: int = 0
    prev: str | None = None
    pending: Event | None = None

    @property
    def pk(self) -> str:
        return self.sk.public_key.to_text()


@dataclass
class Ack:
    """An acknowledged event: where its receipt says it is."""

    origin: str
    event_id: str
    index: int
    leaf: bytes


@dataclass
class Summary:
    """What the campaign did and found."""

    seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    events_sent: int = 0
    acknowledged: int = 0
    lost: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    bits_flipped: int = 0
    restarts: int = 0
    restart_failures: int = 0
    issues: int = 0
    attested_agreeing: int = 0
    converged: bool = False
    rounds_to_convergence: int | None = None
    seconds_to_convergence: float | None = None
    observer: str = "not run"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was lost, everything converged, agreed and verified."""
        return (
            self.lost == 0
            and self.acknowledged > 0
            and self.converged
            and self.server_errors == 0
            and self.restart_failures == 0
            and self.issues > 0
            and self.attested_agreeing == self.issues
            and self.observer == "PASS"
            and not self.problems
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "faults_injected": dict(sorted(self.faults.items())),
            "faults_total": sum(self.faults.values()),
            "events_sent": self.events_sent,
            "events_acknowledged": self.acknowledged,
            "events_lost": self.lost,
            "refused": dict(sorted(self.refused.items())),
            "server_errors": self.server_errors,
            "bits_flipped": self.bits_flipped,
            "restarts": self.restarts,
            "restart_failures": self.restart_failures,
            "issues": self.issues,
            "issues_attested_and_agreeing": self.attested_agreeing,
            "converged": self.converged,
            "rounds_to_convergence": self.rounds_to_convergence,
            "seconds_to_convergence": self.seconds_to_convergence,
            "observer": self.observer,
            "problems": self.problems,
        }

    def lines(self) -> list[str]:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "none"
        rounds = "-" if self.rounds_to_convergence is None else str(self.rounds_to_convergence)
        secs = "-" if self.seconds_to_convergence is None else f"{self.seconds_to_convergence:.1f}"
        out = [
            (
                f"faults injected:       {sum(self.faults.values())} ({faults}); "
                f"{self.bits_flipped} bits flipped"
            ),
            f"node restarts:         {self.restarts} ({self.restart_failures} failed)",
            f"events sent:           {self.events_sent}",
            f"events acknowledged:   {self.acknowledged}",
            f"events lost:           {self.lost}",
            f"events refused:        {refused}",
            f"server errors (5xx):   {self.server_errors}",
            (
                f"issues attested:       {self.attested_agreeing}/{self.issues} with agreeing "
                "attestations from all five nodes"
            ),
            (
                f"convergence:           {'yes' if self.converged else 'NO'} after {rounds} sync "
                f"rounds ({secs} s after the last heal)"
            ),
            f"observer:              {self.observer}",
        ]
        out += [f"problem:               {p}" for p in self.problems]
        out.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return out


# Processes -------------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover (runs in the child)
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((_HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Campaign:
    """The campaign's state and steps; :meth:`run` drives them."""

    def __init__(self, base: Path, seconds: float, seed: int, out: TextIO, citizens: int) -> None:
        self.base = base
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.out = out
        self.per_city = citizens
        self.quick = seconds <= 60
        # A node settles a record on signed evidence only (docs/PROTOCOL.md §8.6), so an outage
        # longer than the grace delays its attestation instead of changing it; but a city cut off
        # from its witnesses over close + grace has its seal flagged late, so the grace still
        # outlasts the usual outage around a close (a restart replays the logs, which takes
        # longer as they grow).
        self.grace = 15 if self.quick else 90
        self.window = max(8, min(60, int(seconds * 0.5)))
        ports = _free_ports(N_CITIES)
        self.cities = [
            City(chr(ord("A") + i), f"city{i + 1}.faults.example/liquide", base / f"n{i + 1}", p)
            for i, p in enumerate(ports)
        ]
        self.links: dict[tuple[str, str], LinkProxy] = {}
        self.citizens: list[Citizen] = []
        self.acks: list[Ack] = []
        self.issues: list[str] = []
        self.closes: dict[str, int] = {}
        self.summary = Summary()
        self.assembly = ""
        self.area = ""
        self.definition: dict[str, Any] = {}
        self.t0 = time.monotonic()
        self.env = {
            **os.environ,
            "LIQUIDE_CHECKPOINT_INTERVAL_S": "0.5",
            "LIQUIDE_VERIFY_WORKERS": "0",
            "LIQUIDE_RATE_LIMIT_EXEMPT": "127.0.0.0/8",
            "LIQUIDE_FED_SYNC_INTERVAL_S": "0.5",
            "LIQUIDE_FED_TICK_INTERVAL_S": "0.5",
            "LIQUIDE_FED_BACKOFF_MAX_S": "2",
            "LIQUIDE_FED_PEER_TIMEOUT_S": "5",
            "LIQUIDE_FED_CONNECT_TIMEOUT_S": "2",
        }
        self.session: aiohttp.ClientSession | None = None
        self._down: City | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open_failed = False

    def say(self, text: str) -> None:
        self.out.write(f"[{time.monotonic() - self.t0:6.1f}s] {text}\n")
        self.out.flush()

    def fault(self, kind: str) -> None:
        self.summary.faults[kind] = self.summary.faults.get(kind, 0) + 1

    # Nodes ----------------------------------------------------------------------------------

    async def _cli(self, args: list[str], timeout: float = 120) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PY_MAIN, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    async def init(self) -> None:
        """Create the five data directories (in-process: what ``liquide node init`` does)."""
        from ._datadir import init_data_dir

        for c in self.cities:
            _config, key = init_data_dir(c.data, c.origin, host=_HOST, port=c.port)
            c.key = key.public_key

    def _spawn(self, c: City) -> None:
        log = (self.base / f"{c.label.lower()}.log").open("ab")
        try:
            c.proc = subprocess.Popen(
                [sys.executable, "-c", _PY_MAIN, "node", "serve", "--data", str(c.data),
                 "--host", _HOST, "--port", str(c.port)],
                stdout=subprocess.PIPE, stderr=log, env=self.env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (the campaign starts no threads)
            )  # fmt: skip
        finally:
            log.close()
        c.starts += 1

    async def _await_up(self, c: City, timeout: float = 60) -> bool:
        assert c.proc is not None
        line = await asyncio.to_thread(_readline, c.proc, timeout)
        return line.startswith("http://")

    async def start_all(self) -> None:
        for c in self.cities:
            self._spawn(c)
        for c in self.cities:
            if not await self._await_up(c):
                raise CampaignError(f"{c.origin} did not start; see {c.label.lower()}.log")
        self.say(
            "five city nodes serving: " + ", ".join(f"{c.label} :{c.port}" for c in self.cities)
        )

    def _reap(self, c: City, sig: int) -> None:
        p = c.proc
        if p is None:
            return
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()
        c.proc = None

    def stop_all(self) -> None:
        """SIGTERM every node (SIGKILL after 15 s); runs on every exit path."""
        for c in self.cities:
            if c.proc is not None and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(signal.SIGTERM)
        for c in self.cities:
            self._reap(c, signal.SIGTERM)

    async def kill(self, c: City) -> None:
        await asyncio.to_thread(self._reap, c, signal.SIGKILL)

    async def restart(self, c: City) -> bool:
        self._spawn(c)
        self.summary.restarts += 1
        if await self._await_up(c):
            return True
        self.summary.restart_failures += 1
        self.summary.problems.append(f"{c.origin} did not restart; see {c.label.lower()}.log")
        await self.kill(c)
        return False

    async def admin(self, c: City, op: str, args: dict[str, Any]) -> dict[str, Any]:
        from ._admin_socket import call

        out = await asyncio.to_thread(call, c.data, op, args)
        if out is None:
            raise CampaignError(f"the admin socket of {c.origin} is not answering")
        return out

    # Setup ----------------------------------------------------------------------------------

    async def federate(self) -> None:
        n = len(self.cities)
        for i, x in enumerate(self.cities):
            for y in (self.cities[(i + 1) % n], self.cities[(i - 1) % n]):
                proxy = LinkProxy(f"{x.label}->{y.label}", y.port, self.rng)
                await proxy.start()
                self.links[(x.label, y.label)] = proxy
                await self.admin(
                    x, "peer.add", {"url": f"http://{_HOST}:{proxy.port}/", "origin": y.origin,
                                    "key": y.vkey},
                )  # fmt: skip
        self.say("peered in a ring A-B-C-D-E-A, every link through a local proxy")
        a = self.cities[0]
        members = [[c.origin, c.vkey] for c in self.cities]
        self.assembly = (
            await self.admin(
                a,
                "assembly.create",
                {
                    "name": "Fault campaign",
                    "members": members,
                    "witnesses": members,
                    "k": 1,
                    "grace": self.grace,
                },
            )
        )["event_id"]
        self.area = (
            await self.admin(a, "area.create", {"assembly": self.assembly, "name": "All"})
        )["event_id"]
        self.definition = (await self.get(a, f"/v1/events/{self.assembly}"))["event"]
        for c in self.cities[1:]:
            await self.admin(c, "assembly.join", {"assembly": self.assembly,
                                                  "definition": self.definition})  # fmt: skip
        for c in self.cities:
            for i in range(self.per_city):
                sk = SecretKey.generate()
                await self.admin(c, "enrol", {"key": sk.public_key.to_text(),
                                              "ref": f"fault-{c.label}{i:03d}"})  # fmt: skip
                self.citizens.append(Citizen(sk, c))
        self.say(
            f"assembly of five members and witnesses (k=1, grace {self.grace} s); "
            f"{len(self.citizens)} citizens enrolled"
        )

    async def open_issue(self) -> bool:
        a = self.cities[0]
        now = int(time.time())
        closes = now + self.window
        try:
            out = await self.admin(
                a,
                "issue.create",
                {"area": self.area, "title": f"Question {len(self.issues) + 1}",
                 "options": [["yes", "Yes"], ["no", "No"], ["later", "Later"]],
                 "opens": now, "closes": closes, "policy": None},
            )  # fmt: skip
        except (LiquideError, OSError) as exc:
            if not self._open_failed:
                self.say(f"could not open an issue now ({exc}); retrying every 2 s")
            self._open_failed = True
            return False
        self._open_failed = False
        self.issues.append(out["event_id"])
        self.closes[out["event_id"]] = closes
        self.say(f"issue {len(self.issues)} opened, closes in {self.window} s")
        return True

    # HTTP -----------------------------------------------------------------------------------

    async def get(self, c: City, path: str, timeout: float = 10) -> Any:
        assert self.session is not None
        async with self.session.get(
            c.url + path, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise CampaignError(f"GET {c.label} {path}: HTTP {resp.status} {data[:200]!r}")
            if resp.content_type == "application/json":
                return json.loads(data)
            return data

    async def try_get(self, c: City, path: str, timeout: float = 10) -> Any:
        try:
            return await self.get(c, path, timeout)
        except (CampaignError, aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None

    # Citizens -------------------------------------------------------------------------------

    def _next_event(self, z: Citizen) -> Event:
        rng = self.rng
        others = [o.pk for o in self.citizens if o is not z]
        now = int(time.time())
        open_issues = [i for i in self.issues if self.closes[i] > now + 1]
        roll = rng.random()
        if open_issues and roll < 0.45:
            grades = {o: rng.choice((-1, 0, 1, 2)) for o in rng.sample(["yes", "no", "later"], 2)}
            type_, body = "ballot", {"issue": rng.choice(open_issues), "grades": grades}
        elif open_issues and roll < 0.52:
            type_, body = "withdraw", {"issue": rng.choice(open_issues)}
        else:
            scope = rng.choice(
                ["assembly", "area", "issue"] if open_issues else ["assembly", "area"]
            )
            target = {"assembly": self.assembly, "area": self.area}.get(scope)
            if target is None:
                target = rng.choice(open_issues)
            if roll < 0.85:
                trustees = rng.sample(others, rng.randint(1, 3))
                type_, body = "delegate", {"scope": scope, "target": target, "trustees": trustees}
            else:
                type_, body = "revoke", {"scope": scope, "target": target}
        return Event.create(z.sk, type_, body, z.seq + 1, z.prev, now)

    async def submit(self, z: Citizen) -> None:
        """Send the citizen's pending event (or a new one) to their home node once."""
        assert self.session is not None
        if z.pending is None:
            z.pending = self._next_event(z)
            self.summary.events_sent += 1
        ev = z.pending
        home = z.home
        try:
            async with self.session.post(
                home.url + "/v1/events", data=ev.encode(), timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                status = resp.status
                data = await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return  # unanswered: the same bytes go again later (idempotent)
        try:
            body = json.loads(data)
        except ValueError:
            body = {}
        if status in (200, 201) and isinstance(body.get("receipt"), dict):
            assert home.key is not None
            try:
                r = Receipt.from_dict(body["receipt"])
                r.verify(home.key)
            except LiquideError as exc:
                self.summary.problems.append(f"a receipt from {home.label} fails: {exc.message}")
                z.pending = None
                return
            if r.event_id != ev.id or r.origin != home.origin:
                self.summary.problems.append(f"{home.label} answered a receipt for another event")
            self.acks.append(Ack(home.origin, ev.id, r.index, ev.encode()))
            self.summary.acknowledged += 1
            z.seq, z.prev, z.pending = ev.seq, ev.id, None
            return
        if status in (502, 503, 504):
            return  # starting or stopping: try again
        if status >= 500:
            self.summary.server_errors += 1
            self.summary.problems.append(f"{home.label} answered {status}: {data[:200]!r}")
            z.pending = None
            return
        err = body.get("error", {}) if isinstance(body, dict) else {}
        code = str(err.get("code", f"http_{status}"))
        self.summary.refused[code] = self.summary.refused.get(code, 0) + 1
        head = err.get("head")
        if code == "seq_used" and isinstance(head, dict):
            z.seq, z.prev = int(head["seq"]), str(head["event_id"])
        z.pending = None

    async def citizens_loop(self, until: Callable[[], bool]) -> None:
        """Citizens act, a few at a time, until ``until()`` says stop."""

        async def worker() -> None:
            while not until():
                z = self.rng.choice(self.citizens)
                await self.submit(z)
                await asyncio.sleep(self.rng.uniform(0.02, 0.15))

        await asyncio.gather(*(worker() for _ in range(4)))

    async def drain_pending(self, timeout: float) -> None:
        """Resolve every citizen's unanswered event (all nodes are up by now)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = [z for z in self.citizens if z.pending is not None]
            if not waiting:
                return
            for z in waiting:
                await self.submit(z)
            await asyncio.sleep(0.3)
        n = sum(1 for z in self.citizens if z.pending is not None)
        self.summary.problems.append(f"{n} events stayed unanswered with every node up")

    # Faults ---------------------------------------------------------------------------------

    async def faults_loop(self, until: Callable[[], bool]) -> None:
        """Inject random faults: at most one node down and two bad links at a time."""
        bad: dict[tuple[str, str], float] = {}
        longest = 3.0 if self.quick else 6.0
        while not until():
            await asyncio.sleep(self.rng.uniform(0.3, 1.2))
            now = time.monotonic()
            for k, t in list(bad.items()):
                if now >= t:
                    self.links[k].set_mode("up")
                    del bad[k]
            roll = self.rng.random()
            if roll < 0.25 and self._down is None:
                c = self.rng.choice(self.cities)
                self._down = c
                self.fault("sigkill")
                task = asyncio.get_running_loop().create_task(self._kill_and_restart(c, longest))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif len(bad) < 2:
                key = self.rng.choice([k for k in self.links if k not in bad])
                mode = self.rng.choice(["cut", "cut", "slow", "corrupt"])
                self.links[key].set_mode(mode)
                self.fault(f"link_{mode}")
                bad[key] = now + self.rng.uniform(0.5, longest)
        for k in bad:
            self.links[k].set_mode("up")
        while self._down is not None:
            await asyncio.sleep(0.1)

    async def _kill_and_restart(self, c: City, longest: float) -> None:
        try:
            await self.kill(c)
            await asyncio.sleep(self.rng.uniform(0.2, longest / 2))
            await self.restart(c)
        finally:
            self._down = None

    # Checks ---------------------------------------------------------------------------------

    async def _rounds(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for c in self.cities:
            st = await self.try_get(c, "/v1/federation")
            if isinstance(st, dict):
                for p in st.get("peers", []):
                    out[(c.label, str(p.get("url")))] = int(p.get("rounds", 0))
        return out

    async def _views(self) -> dict[str, dict[str, tuple[int, str]]] | None:
        views: dict[str, dict[str, tuple[int, str]]] = {}
        for c in self.cities:
            got = await self.try_get(c, "/v1/logs")
            if not isinstance(got, dict):
                return None
            views[c.label] = {
                lg["origin"]: (int(lg["checkpoint_size"] or 0), _body(lg["checkpoint"]))
                for lg in got["logs"]
            }
        return views

    def _converged(self, views: dict[str, dict[str, tuple[int, str]]]) -> bool:
        origins = {c.origin for c in self.cities}
        first = next(iter(views.values()))
        if set(first) < origins:
            return False
        return all(
            set(origins) <= set(v) and all(v[o] == first[o] for o in origins)
            for v in views.values()
        )

    async def wait_converged(
        self, timeout: float, before: dict[tuple[str, str], int], healed_at: float
    ) -> None:
        """Wait until every node shows the same checkpoint of every log; count the sync rounds
        each node ran with each peer since the heal (``before``, at ``healed_at``)."""
        t0 = time.monotonic()
        stable = 0
        while time.monotonic() - t0 < timeout:
            views = await self._views()
            if views is not None and self._converged(views):
                stable += 1
                if stable >= 3:  # the same view three polls in a row: nothing is moving
                    after = await self._rounds()
                    deltas = [after[k] - before.get(k, 0) for k in after]
                    self.summary.converged = True
                    self.summary.rounds_to_convergence = max(deltas) if deltas else 0
                    self.summary.seconds_to_convergence = round(time.monotonic() - healed_at, 1)
                    return
            else:
                stable = 0
            await asyncio.sleep(0.5)
        self.summary.problems.append(f"the nodes did not converge within {timeout:.0f} s")

    async def wait_attested(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.issues)
        while pending and time.monotonic() < deadline:
            for issue in sorted(pending):
                ok = True
                for c in self.cities:
                    att = await self.try_get(c, f"/v1/issues/{issue}/attestations")
                    if not isinstance(att, dict) or len(att["attestations"]) < N_CITIES:
                        ok = False
                        break
                    if not att["agree"]:
                        self.summary.problems.append(
                            f"attestations of issue {issue[:12]} disagree at {c.label}: "
                            f"records {att.get('records')}, digests {att.get('disagreements')}"
                        )
                        pending.discard(issue)
                        ok = False
                        break
                if ok:
                    self.summary.attested_agreeing += 1
                    pending.discard(issue)
            await asyncio.sleep(0.5)
        if pending:
            self.summary.problems.append(f"{len(pending)} issues were not attested by all five")

    async def check_lost(self) -> None:
        """Every acknowledged event is in its home log, at the index of its receipt."""
        by_origin: dict[str, list[Ack]] = {}
        for a in self.acks:
            by_origin.setdefault(a.origin, []).append(a)
        lost = 0
        for c in self.cities:
            acks = by_origin.get(c.origin, [])
            if not acks:
                continue
            leaves: dict[int, bytes] = {}
            top = max(a.index for a in acks) + 1
            start = 0
            while start < top:
                data = await self.try_get(
                    c, f"/v1/logs/{c.origin}/entries?start={start}&end={top}", timeout=30
                )
                if not isinstance(data, bytes) or not data:
                    break
                for i, leaf in enumerate(data.split(b"\n")[:-1]):
                    leaves[start + i] = leaf
                start += data.count(b"\n")
            cp_text = await self.try_get(c, f"/v1/logs/{c.origin}/checkpoint")
            signed = 0
            if isinstance(cp_text, bytes) and c.key is not None:
                signed = SignedCheckpoint.parse(cp_text).verify(c.origin, c.key).size
            for a in acks:
                if leaves.get(a.index) != a.leaf or a.index >= signed:
                    lost += 1
        self.summary.lost = lost

    async def observe(self) -> None:
        from protocol.verify import Trust

        trust = Trust.of_definition(Event.from_dict(self.definition))
        path = self.base / "trust.json"
        path.write_text(json.dumps(trust.to_dict(), indent=2) + "\n", encoding="utf-8")
        # One run without --issue tallies and compares every issue of the record.
        args = ["verify", "--trust", str(path), "--json"]
        for c in self.cities:
            args += ["--node", c.url]
        code, out, err = await self._cli(args, timeout=900)
        try:
            report = json.loads(out)
            verdict = str(report.get("verdict", "none"))
        except ValueError:
            verdict = f"error (exit {code}): {err.strip()[-300:]}"
            report = {}
        (self.base / "report.json").write_text(out, encoding="utf-8")
        if verdict != "PASS":
            errors = [
                f"step {st.get('step', '?')}: {f.get('code')}: {str(f.get('message'))[:200]}"
                for st in report.get("steps", [])
                for f in st.get("findings", [])
                if f.get("severity") == "error"
            ]
            self.summary.problems.append(f"observer: {verdict}; " + "; ".join(errors[:3]))
        self.summary.observer = verdict

    # The whole campaign ---------------------------------------------------------------------

    async def run(self) -> Summary:
        s = self.summary
        self.session = aiohttp.ClientSession()
        try:
            await self.init()
            await self.start_all()
            await self.federate()
            end = time.monotonic() + self.seconds
            last_open = end - self.window - 2  # every issue closes under the faults

            def over() -> bool:
                return time.monotonic() >= end

            async def issues_loop() -> None:
                period = self.window * 0.75
                while (time.monotonic() < last_open or not self.issues) and not over():
                    # A is down now and then: retry soon rather than skip an issue.
                    await asyncio.sleep(period if await self.open_issue() else 2)

            self.say(f"faults and citizens for {self.seconds:.0f} s")
            await asyncio.gather(self.faults_loop(over), self.citizens_loop(over), issues_loop())
            for link in self.links.values():
                link.set_mode("up")
            for c in self.cities:
                if c.proc is None or c.proc.poll() is not None:
                    await self.restart(c)
            healed_at = time.monotonic()
            before = await self._rounds()
            self.say(f"faults stopped and healed; {s.acknowledged} events acknowledged so far")
            await self.drain_pending(30)
            wait = max(self.closes.values()) + self.grace - time.time()
            await self.wait_attested(max(0.0, wait) + 90)
            await self.wait_converged(120, before, healed_at)
            await self.check_lost()
            await self.observe()
            s.issues = len(self.issues)
            s.bits_flipped = sum(p.flipped for p in self.links.values())
        finally:
            for t in list(self._tasks):
                t.cancel()
            for link in self.links.values():
                await link.close()
            await self.session.close()
            await asyncio.to_thread(self.stop_all)
            s.seconds = time.monotonic() - self.t0
        return s


def _body(note: str | None) -> str:
    """The checkpoint body (origin, size, root) of a signed note, without signatures."""
    return "" if not note else "\n".join(note.split("\n")[:3])


async def run_campaign(
    *,
    seconds: float,
    out: TextIO,
    seed: int | None = None,
    citizens: int = 6,
    base: Path | None = None,
    keep: bool = False,
) -> Summary:
    """Run the campaign for ``seconds`` of faults; return its :class:`Summary`.

    The nodes' data directories go under ``base`` (a temporary directory by default, removed
    afterwards unless ``keep``). Raises :class:`CampaignError` if the setup fails.
    """
    made = base is None
    root = Path(tempfile.mkdtemp(prefix="liquide-faults-")) if base is None else base
    seed = random.randrange(2**32) if seed is None else seed
    out.write(f"fault campaign: {seconds:.0f} s, seed {seed}, data in {root}\n")
    campaign = Campaign(root, seconds, seed, out, citizens)
    try:
        return await campaign.run()
    finally:
        if made and not keep:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``scripts/faults [--seconds N] [--seed S] [--citizens C] [--json] [--keep]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="scripts/faults",
        description="Five real nodes on loopback under SIGKILLs, cut, slow and corrupting links; "
        "exits 0 only if nothing acknowledged was lost and everything converged and verified.",
    )
    parser.add_argument("--seconds", type=float, default=60, help="length of the fault phase")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed)")
    parser.add_argument("--citizens", type=int, default=6, help="citizens per city")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)
    if not 5 <= args.seconds <= 24 * 3600 or not 2 <= args.citizens <= 1000:
        parser.error("--seconds must lie in [5, 86400] and --citizens in [2, 1000]")

    async def go() -> Summary:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            if task is not None:
                loop.add_signal_handler(sig, task.cancel)
        return await run_campaign(
            seconds=args.seconds, out=sys.stdout, seed=args.seed, citizens=args.citizens,
            keep=args.keep,
        )  # fmt: skip

    try:
        summary = asyncio.run(go())
    except asyncio.CancelledError:
        print("interrupted", file=sys.stderr)
        return 130
    except CampaignError as exc:
        print(f"faults: error: {exc.message}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    return 0 if summary.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
