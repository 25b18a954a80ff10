"""Shared test factories: deterministic keys, event chains, a fake clock, city nodes.

Fixtures are factories (``make_node``, ``keys``) rather than fixed objects, so that each test
builds exactly what it needs. Other packages' tests may add their own factories here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from crypto import SecretKey
from protocol.events import DEFAULT_POLICY, Event

# The suite runs on a shared 2-core machine: a per-example deadline would turn load into failures
# without saying anything about the code, and the project never asserts timings in tests.
settings.register_profile(
    "liquide", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("liquide")

T0 = 1_800_000_000
"""The fake clock's start (2027-01-15)."""


class FakeClock:
    """A clock the test moves by hand: ``clock()`` returns the current time."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def key(n: int | str) -> SecretKey:
    """A deterministic secret key for a test party named by a number or a string."""
    return SecretKey(hashlib.sha256(f"liquide-test-key-{n}".encode()).digest())


@dataclass
class Author:
    """A key with its chain head: ``author.event(type, body)`` signs the next event."""

    sk: SecretKey
    clock: Callable[[], float]
    seq: int = 0
    prev: str | None = None

    @property
    def pk(self) -> str:
        return self.sk.public_key.to_text()

    def event(
        self, type_: str, body: dict[str, Any], *, ts: int | None = None, advance: bool = True
    ) -> Event:
        """Sign the next event of this chain (``advance=False`` leaves the head unchanged)."""
        ev = Event.create(
            self.sk, type_, body, self.seq + 1, self.prev, int(self.clock()) if ts is None else ts
        )
        if advance:
            self.seq, self.prev = ev.seq, ev.id
        return ev

    def delegate(self, scope: str, target: str, trustees: list[str], **kw: Any) -> Event:
        return self.event(
            "delegate", {"scope": scope, "target": target, "trustees": trustees}, **kw
        )

    def ballot(self, issue: str, grades: dict[str, int], **kw: Any) -> Event:
        return self.event("ballot", {"issue": issue, "grades": grades}, **kw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def author(clock: FakeClock) -> Callable[[int | str], Author]:
    """``author(n)``: the party ``n`` with a fresh chain, on the test's clock."""
    return lambda n: Author(key(n), clock)


@dataclass
class Civic:
    """A node set up for voting: an assembly, an area, an open issue and enrolled citizens."""

    node: Any
    assembly: str
    area: str
    issue: str
    citizens: list[Author] = field(default_factory=list)


@pytest.fixture
def make_node(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """``make_node(origin=…, **settings)``: a fresh data directory opened as a :class:`Node`.

    The node is not started (``create_app`` starts it); nodes still open at teardown are closed.
    Settings default to what tests want: no verify pool, no rate limit surprises.
    """
    from node._datadir import init_data_dir
    from node._node import Node

    opened: list[Any] = []
    counter = iter(range(1000))

    def make(origin: str = "test.example/liquide", **settings: Any) -> Any:
        settings.setdefault("verify_workers", 0)
        settings.setdefault("checkpoint_interval_s", 0.05)
        data = tmp_path / f"node{next(counter)}"
        init_data_dir(data, origin, **settings)
        node = Node.open(data, clock=clock)
        opened.append(node)
        return node

    yield make
    for node in opened:
        if node.ingest is None:
            with contextlib.suppress(Exception):
                node.close()


def open_civic(
    node: Any, clock: FakeClock, citizens: int = 3, *, opens: int = -60, closes: int = 3600
) -> Civic:
    """Set up an assembly, an area and an issue (open now) and enrol ``citizens`` (offline)."""
    w = node.writer
    members = [{"origin": node.origin, "key": w.city}]
    asm = w.append_own(
        "assembly", {"name": "Test", "members": members, "witnesses": [], "k": 0, "grace": 0}
    ).event_id
    area = w.append_own("area", {"assembly": asm, "name": "Transport"}).event_id
    now = int(clock())
    issue = w.append_own(
        "issue",
        {
            "assembly": asm,
            "area": area,
            "title": "Tram",
            "options": [{"id": "yes", "title": "Build"}, {"id": "no", "title": "Wait"}],
            "opens": now + opens,
            "closes": now + closes,
            "policy": DEFAULT_POLICY.to_dict(),
        },
    ).event_id
    people = []
    for i in range(citizens):
        a = Author(key(f"citizen-{i}"), clock)
        w.append_own("enrol", {"key": a.pk, "ref": f"ref-{i}"})
        people.append(a)
    w.sign_checkpoint()
    return Civic(node, asm, area, issue, people)


@pytest.fixture
def civic(make_node: Callable[..., Any], clock: FakeClock) -> Callable[..., Civic]:
    """``civic(citizens=3, **settings)``: a node with an open issue and enrolled citizens."""

    def make(citizens: int = 3, **settings: Any) -> Civic:
        return open_civic(make_node(**settings), clock, citizens)

    return make


# Real node processes -----------------------------------------------------------------------------

LIQUIDE = [sys.executable, "-c", "from node.cli import main; main()"]
"""The ``liquide`` console script, run by this interpreter."""


class ServeProcess:
    """A ``liquide node serve`` subprocess on an ephemeral loopback port."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [
                *LIQUIDE,
                "node",
                "serve",
                "--data",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("http://"):
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            self.proc.wait(10)
            raise RuntimeError(f"serve did not start: {line!r} {err}")
        self.url = line.strip()

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM and wait; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._close_pipes()

    def kill(self) -> None:
        """SIGKILL (a crash) and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def stderr(self) -> str:
        return (
            self.proc.stderr.read().decode()
            if self.proc.stderr and not self.proc.stderr.closed
            else ""
        )


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    """``serve_process(data_dir)``: start ``liquide node serve``; stopped at teardown if alive."""
    started: list[ServeProcess] = []

    def start(data_dir: Path, env: dict[str, str] | None = None) -> ServeProcess:
        p = ServeProcess(data_dir, env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()
