"""`liquide verify --record` on an exported record of a city that handed its key over: the
trust file pins the old key, the export passes, and an export whose checkpoint after the
handover is signed by the old key fails at step 1, naming the key in effect."""

from __future__ import annotations

import json
from pathlib import Path

from node._cli_observer import write_record
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.events import Event
from tests.protocol._events_factory import key
from tests.protocol._verify_factory import A, build
from tests.protocol.test_verify import replace_log

from .test_cli_observer import cli, trust_file


def test_an_exported_record_across_a_handover_verifies_and_the_old_key_fails(
    tmp_path: Path,
) -> None:
    fed = build(handover=True)
    trust = trust_file(tmp_path, fed)
    pinned = {c["origin"]: c["key"] for c in json.loads(trust.read_text())["cities"]}
    assert pinned[A] == key("city-a").public_key.to_text()
    good = tmp_path / "good"
    write_record(fed.material("http://a.example/"), good)
    code, out, err = cli(["verify", "--trust", str(trust), "--record", str(good)])
    assert code == 0, out + err
    assert out.endswith("PASS\n")

    h = next(i for i, x in enumerate(fed.a.leaves) if Event.decode(x).type == "handover")
    after = min(n for n in fed.a.checkpoints if n > h)
    notes = [
        (
            sign_checkpoint(Checkpoint(A, n, fed.a.root(n)), key("city-a")) if n == after else sc
        ).to_text()
        for n, sc in sorted(fed.a.checkpoints.items())
    ]
    bad = tmp_path / "bad"
    write_record(replace_log(fed.material("http://a.example/"), A, checkpoints=tuple(notes)), bad)
    code, out, _ = cli(["verify", "--trust", str(trust), "--record", str(bad), "--json"])
    assert code == 1
    report = json.loads(out)
    assert report["first_failure"] == 1
    [f] = [f for f in report["steps"][0]["findings"] if f["origin"] == A]
    assert (f["code"], f["index"]) == ("retired_key", after)
    assert key("city-a-next").public_key.to_text() in f["message"]
