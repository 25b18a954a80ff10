"""Shared pieces of the benchmark sections: the raw limits and the table row."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from dataclasses import dataclass

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


def _signed_messages(n: int) -> tuple[bytes, list[bytes]]:
    pk, sk = nacl.bindings.crypto_sign_seed_keypair(b"\x01" * 32)
    return pk, [nacl.bindings.crypto_sign(os.urandom(150), sk) for _ in range(n)]


def raw_verify_rate(n: int = 20000) -> float:
    """Raw PyNaCl verifies per second on one core (crypto_sign_open over 150-byte messages)."""
    pk, signed = _signed_messages(n)
    t0 = time.perf_counter()
    for m in signed:
        nacl.bindings.crypto_sign_open(m, pk)
    return n / (time.perf_counter() - t0)


def _worker(n: int) -> float:
    return raw_verify_rate(n)


def measure_raw() -> Raw:
    one = max(raw_verify_rate() for _ in range(2))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        t0 = time.perf_counter()
        pool.map(_worker, [20000, 20000])
        two = 40000 / (time.perf_counter() - t0)
    data = os.urandom(200)
    n = 500_000
    t0 = time.perf_counter()
    for _ in range(n):
        hashlib.sha256(data).digest()
    sha = n / (time.perf_counter() - t0)
    return Raw(one, max(two, one), sha)
