"""Liquide's benchmarks.

Every figure is printed next to the raw limit it is bounded by, measured in the same run on the
same machine (raw PyNaCl verifies per second, raw SHA-256 per second), so that the ratios stay
meaningful on any hardware. Timing is measured here and only here: the test suite never asserts a
duration.

Each section lives in ``scripts/benchmarks/<name>.py`` and exposes ``run(ctx) -> list[Row]``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks import Context, Row, measure_raw


def main() -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent / "benchmarks")])
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sections", nargs="*", choices=[[], *names], help="sections to run (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    chosen = args.sections or names
    ctx = Context(quick=args.quick, raw=measure_raw())
    print(
        f"raw limits: {ctx.raw.verify_per_s:,.0f} Ed25519 verifies/s (1 core), "
        f"{ctx.raw.verify2_per_s:,.0f}/s (2 processes), {ctx.raw.sha256_per_s:,.0f} SHA-256/s"
    )
    print(f"{'section':<12} {'figure':<58} {'value':>16} {'ratio':>8} {'target':>8}")
    failed = False
    for name in chosen:
        mod = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        rows: list[Row] = mod.run(ctx)
        for r in rows:
            print(r.format(name))
            failed |= r.missed()
        print(f"{'':<12} ({name} took {time.perf_counter() - t0:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
