"""A short fault campaign in the suite: five real nodes, SIGKILLs, cut/slow/corrupt links.

It runs ``python -m node._faults`` (what ``scripts/faults`` runs) as a child process, so that the
five node processes it spawns are isolated from the test process, and reads its JSON summary.
``scripts/faults --seconds 900`` is the long campaign.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

import pytest


def _campaign(seconds: int, seed: int) -> tuple[dict, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "node._faults", "--seconds", str(seconds), "--seed", str(seed),
         "--citizens", "5", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the campaign (seed {seed}) did not finish:\n{out.decode()[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.decode("utf-8", "replace")
    start = text.find("\n{")
    assert start >= 0, text[-3000:]
    return json.loads(text[start:]), text


def test_short_fault_campaign_loses_nothing_and_converges() -> None:
    seed = random.randrange(2**32)
    summary, text = _campaign(15, seed)
    why = f"seed {seed}:\n{text[-4000:]}"
    assert summary["events_acknowledged"] > 0, why
    assert summary["events_lost"] == 0, why
    assert summary["faults_total"] > 0, why
    assert summary["server_errors"] == 0, why
    assert summary["restart_failures"] == 0, why
    assert summary["converged"], why
    assert summary["issues"] >= 1, why
    assert summary["issues_attested_and_agreeing"] == summary["issues"], why
    assert summary["observer"] == "PASS", why
    assert summary["problems"] == [], why
    assert summary["ok"], why
