"""``liquide demo --keep``, end to end: three real node processes, a verified run, the keep
protocol (``ORIGIN URL`` lines, ``trust PATH``, ``ready``), and nothing left running after
SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from protocol.verify import Trust

pytestmark = pytest.mark.timeout(240)


def _lines(proc: subprocess.Popen[bytes], until: str, timeout: float) -> list[str]:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out: list[str] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while until not in out:
        left = deadline - time.monotonic()
        assert left > 0, "the demo took too long:\n" + "\n".join(out)
        if not sel.select(left):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, "the demo exited early:\n" + "\n".join(out)
        buf += chunk
        *done, buf = buf.split(b"\n")
        out += [d.decode() for d in done]
    sel.close()
    return out


def _alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_demo_keep_then_sigterm_leaves_nothing_running() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from node.cli import main; sys.exit(main())",
         "demo", "--keep", "--citizens", "8", "--window", "6", "--grace", "3", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        out = _lines(proc, "ready", 200)
        assert "everything verified" in "\n".join(out), "\n".join(out)
        assert any("observer verdict: PASS" in line for line in out)
        assert any("attestations agree on every node" in line for line in out)
        tail = out[out.index("ready") - 4 : out.index("ready")]
        urls = {}
        for line in tail[:3]:
            origin, url = line.split(" ")
            assert url.startswith("http://127.0.0.1:")
            assert url.endswith("/")
            urls[origin] = url
        assert len(urls) == 3
        kind, path = tail[3].split(" ", 1)
        assert kind == "trust"
        with open(path, encoding="utf-8") as fh:
            trust = Trust.from_dict(json.load(fh))
        assert {c.origin for c in trust.cities} <= set(urls)
        assert all(_alive(u) for u in urls.values())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not any(_alive(u) for u in urls.values())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
