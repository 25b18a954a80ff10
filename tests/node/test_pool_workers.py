"""A node's verify workers never outlive it, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from node._datadir import init_data_dir


def _processes_with_mark(mark: str) -> list[int]:
    """The pids of live processes whose environment carries ``LIQUIDE_TEST_MARK=mark``."""
    needle = f"LIQUIDE_TEST_MARK={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env and state != b"Z":
            found.append(int(entry))
    return found


def test_sigkilled_node_leaves_no_workers(tmp_path: Path, serve_process) -> None:
    data = tmp_path / "city"
    init_data_dir(data, "pool.example/liquide", verify_workers=2, checkpoint_interval_s=0.05)
    mark = uuid.uuid4().hex
    node = serve_process(data, env={"LIQUIDE_TEST_MARK": mark})
    # The node warms its pool at start: wait (bounded) until the workers exist.
    for _ in range(200):
        if len(_processes_with_mark(mark)) >= 3:  # the node, the forkserver, >= 1 worker
            break
        time.sleep(0.05)
    assert len(_processes_with_mark(mark)) >= 3, "the verify pool never started"
    node.kill()
    # The workers notice within their watch interval; allow a generous bound for a loaded CI.
    for _ in range(300):
        left = _processes_with_mark(mark)
        if not left:
            break
        time.sleep(0.1)
    assert _processes_with_mark(mark) == [], "verify workers outlived the killed node"
