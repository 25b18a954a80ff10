"""Crash safety: a real serve, fed a stream of events, SIGKILLed at random moments (20 trials).

After each restart every receipted event is in the log at its index, the root recomputed from
the leaves equals the stored root, and the log is consistent with every checkpoint signed
before the crash (see tests/node/_crash.py; scripts/bench node runs more trials).
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.node import _crash

TRIALS = 20


async def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    tmp_path: Path, serve_process
) -> None:
    data = tmp_path / "city"
    wallets, area, city = _crash.setup(data, citizens=10)
    ledger = _crash.Ledger()
    rng = random.Random(4)
    for _ in range(TRIALS):
        await _crash.trial(data, wallets, area, city, ledger, rng, serve_process)
    size = _crash.check_database(data, ledger, city)
    assert ledger.trials == TRIALS
    assert len(ledger.receipts) > TRIALS  # events were acknowledged between the crashes
    assert size >= len(ledger.receipts)
    # A last clean run: the restarted node signs a checkpoint that extends every earlier one.
    server = serve_process(data)
    await _crash.check_receipts_online(server.url, ledger, city, 5, rng)
    assert server.terminate() == 0
    assert _crash.check_database(data, ledger, city) == size
