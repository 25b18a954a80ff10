"""Shared pieces of the benchmark sections: the raw limits and the table row."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nacl.bindings


@dataclass(frozen=True)
class Raw:
    verify_per_s: float
    verify2_per_s: float
    sha256_per_s: float


@dataclass(frozen=True)
class Context:
    quick: bool
    raw: Raw


@dataclass(frozen=True)
class Row:
    figure: str
    value: float
    unit: str = ""
    ratio: float | None = None
    target: float | None = None
    higher_is_better: bool = True

    def missed(self) -> bool:
        if self.ratio is None or self.target is None:
            return False
        return self.ratio < self.target if self.higher_is_better else self.ratio > self.target

    def format(self, section: str) -> str:
        value = f"{self.value:,.1f} {self.unit}".strip()
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}"
        sign = "≥" if self.higher_is_better else "≤"
        target = "" if self.target is None else f"{sign}{self.target:g}"
        flag = "  MISSED" if self.missed() else ""
        return f"{section:<12} {self.figure:<58} {value:>16} {ratio:>8} {target:>8}{flag}"


def signed_messages(n: int) -> tuple[bytes, list[bytes]]:
    pk, sk = nacl.bindings.crypto_sign_seed_keypair(b"\x01" * 32)
    return pk, [nacl.bindings.crypto_sign(os.urandom(150), sk) for _ in range(n)]


def interleaved_ratios(
    events: Sequence[int], seconds: Sequence[float], rates: Sequence[float]
) -> tuple[float, list[float]]:
    """Ratios of work timed in slices against raw rates timed between them.

    ``rates`` holds one raw rate before the first slice and one after each. A slice of ``n``
    events counts for the time raw verification needed for them at the mean of the rates around
    it; the run's ratio is the sum of those times over the slices' time. Also returns each
    slice's own ratio (slices without events are left out).
    """
    equivalent = [n * (1 / rates[i] + 1 / rates[i + 1]) / 2 for i, n in enumerate(events)]
    per = [e / t for e, t, n in zip(equivalent, seconds, events, strict=True) if n]
    return sum(equivalent) / sum(seconds), per


def raw_verify_rate(n: int = 20000) -> float:
    """Raw PyNaCl verifies per second on one core (crypto_sign_open over 150-byte messages)."""
    pk, signed = signed_messages(n)
    t0 = time.perf_counter()
    for m in signed:
        nacl.bindings.crypto_sign_open(m, pk)
    return n / (time.perf_counter() - t0)


def _timed_verifies(n: int, ready: Any, go: Any) -> tuple[float, float]:
    """Verify ``n`` messages once ``go`` is set; return the loop's start and end times."""
    pk, signed = signed_messages(n)
    ready.release()
    go.wait()
    t0 = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
    for m in signed:
        nacl.bindings.crypto_sign_open(m, pk)
    return t0, time.perf_counter()


def raw_verify2_rate(n: int = 20000) -> float:
    """Raw verifies per second of two processes at once: both prepare their messages first,
    then start together; the rate is 2n over the span from the first start to the last end."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        ready, go = manager.Semaphore(0), manager.Event()
        with ctx.Pool(2) as pool:
            jobs = [pool.apply_async(_timed_verifies, (n, ready, go)) for _ in range(2)]
            for _ in jobs:
                ready.acquire()
            go.set()
            spans = [j.get() for j in jobs]
    return 2 * n / (max(end for _, end in spans) - min(start for start, _ in spans))


def measure_raw() -> Raw:
    one = max(raw_verify_rate() for _ in range(2))
    two = raw_verify2_rate()
    data = os.urandom(200)
    n = 500_000
    t0 = time.perf_counter()
    for _ in range(n):
        hashlib.sha256(data).digest()
    sha = n / (time.perf_counter() - t0)
    return Raw(one, two, sha)
