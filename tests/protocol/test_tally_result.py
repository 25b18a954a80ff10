"""TallyResult: exact JSON, the digest rule, and the fast canonical bytes."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import decode, encode
from protocol.errors import ValidationError
from protocol.tally import TallyInput, TallyResult, VoterResult, VoterTable, tally

from .test_tally_lf import FILES, to_input
from .test_tally_resolve import electorates

# Any printable ASCII id (ids may not hold the two characters JSON would escape, " and \).
IDS = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=6,
)


@st.composite
def odd_named(draw: Any) -> dict[str, Any]:
    doc = draw(electorates())
    names = draw(
        st.lists(IDS, min_size=len(doc["voters"]) + 1, max_size=len(doc["voters"]) + 1, unique=True)
    )
    rename = dict(zip([*doc["voters"], "ghost"], names, strict=True))
    return {
        "version": 1,
        "voters": {rename[v]: w for v, w in doc["voters"].items()},
        "options": ["o /<1>"],
        "delegations": [
            {**r, "truster": rename[r["truster"]], "trustees": [rename[t] for t in r["trustees"]]}
            for r in doc["delegations"]
        ],
        "ballots": {rename[v]: {"o /<1>": g["o1"]} for v, g in doc["ballots"].items()},
        "policy": {"delegation_rule": draw(st.sampled_from(["dfd", "bfd", "minsum"]))},
    }


@settings(max_examples=150, deadline=None)
@given(doc=odd_named())
def test_fast_canonical_bytes_equal_encode(doc: dict[str, Any]) -> None:
    result = tally(TallyInput.from_dict(doc))
    assert isinstance(result.voters, VoterTable)
    slow = encode(result.unsigned_dict())
    assert result.canonical_bytes() == slow
    assert result.digest == hashlib.sha256(slow).hexdigest()
    d = result.to_dict()
    assert decode(encode(d)) == d
    again = TallyResult.from_dict(d)
    assert again.digest == result.digest
    assert again.canonical_bytes() == slow
    assert again == result


@pytest.mark.parametrize("path", FILES[:10], ids=[f.stem for f in FILES[:10]])
def test_lf_results_round_trip_and_digest(path: Any) -> None:
    result = tally(TallyInput.from_dict(to_input(json.loads(path.read_text()))))
    d = result.to_dict()
    body = {k: v for k, v in d.items() if k != "digest"}
    assert d["digest"] == hashlib.sha256(encode(body)).hexdigest()
    assert TallyResult.from_dict(d).to_dict() == d


def test_digest_is_independent_of_input_order() -> None:
    rng = random.Random(7)
    doc = to_input(json.loads(FILES[0].read_text()), "dfd")
    digest = tally(TallyInput.from_dict(doc)).digest
    for _ in range(3):
        shuffled = dict(doc)
        voters = list(doc["voters"].items())
        rng.shuffle(voters)
        shuffled["voters"] = dict(voters)
        rows = list(doc["delegations"])
        rng.shuffle(rows)
        shuffled["delegations"] = rows
        ballots = list(doc["ballots"].items())
        rng.shuffle(ballots)
        shuffled["ballots"] = dict(ballots)
        assert tally(TallyInput.from_dict(shuffled)).digest == digest


def test_voter_table_is_a_mapping() -> None:
    doc = to_input(json.loads(FILES[0].read_text()))
    table = tally(TallyInput.from_dict(doc)).voters
    assert len(table) == len(doc["voters"])
    assert list(table) == sorted(doc["voters"])
    assert "m1" in table
    assert "nobody" not in table
    with pytest.raises(KeyError):
        table["nobody"]
    assert dict(table.items()) == {k: table[k] for k in table}


def good_result() -> dict[str, Any]:
    return tally(TallyInput.from_dict(to_input(json.loads(FILES[0].read_text())))).to_dict()


def broken(fn: Any) -> dict[str, Any]:
    d = good_result()
    fn(d)
    return d


BAD_RESULTS = [
    (broken(lambda d: d.update(digest="00" * 32)), "digest: does not match"),
    (broken(lambda d: d.update(winner="nope")), "winner: unknown option"),
    (broken(lambda d: d.update(version=2)), "version: unsupported"),
    (broken(lambda d: d.pop("battles")), "result: must be an object with exactly"),
    (broken(lambda d: d.update(voters=[])), "voters and options must be objects"),
    (broken(lambda d: d.update(battles={})), "battles: must be an array"),
    (broken(lambda d: d["battles"].__setitem__(0, ["zz", None, 1])), "battles[0]"),
    (broken(lambda d: d["battles"][0].__setitem__(2, -1)), "battles[0][2]"),
    (broken(lambda d: d.update(status_quo_schulze_rank="1")), "status_quo_schulze_rank"),
    (broken(lambda d: d["options"]["i1"].pop("rank")), "options.i1: must be an object"),
    (broken(lambda d: d["options"]["i1"].update(rank=True)), "options.i1.rank"),
    (broken(lambda d: d["options"]["i1"].update(winner=1)), "options.i1.winner"),
    (
        broken(lambda d: d["options"]["i1"].update(reverse_beat_path=0)),
        "options.i1.reverse_beat_path",
    ),
    (broken(lambda d: d["voters"].update(m1=[])), "voters.m1: must be an object"),
    (
        broken(lambda d: d["voters"].update(m1={"status": "gone"})),
        "voters.m1.status: unknown status",
    ),
    (
        broken(lambda d: d["voters"].update(m1={"status": "absent", "x": 1})),
        "voters.m1: a absent voter",
    ),
    (
        broken(lambda d: d["voters"].update(m1={"status": "direct", "weight": -1})),
        "voters.m1.weight",
    ),
    (
        broken(lambda d: d["voters"].update(m1={"status": "lost", "reason": "why"})),
        "voters.m1.reason: unknown reason",
    ),
    (
        broken(
            lambda d: d["voters"].update(
                m1={"status": "delegated", "scope": "x", "path": ["m2"], "weight": 1}
            )
        ),
        "voters.m1.scope: unknown scope",
    ),
    (
        broken(
            lambda d: d["voters"].update(
                m1={"status": "delegated", "scope": "area", "path": [], "weight": 1}
            )
        ),
        "voters.m1.path",
    ),
]


@pytest.mark.parametrize(("doc", "message"), BAD_RESULTS, ids=[m for _, m in BAD_RESULTS])
def test_bad_results_are_rejected(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        TallyResult.from_dict(doc)
    assert message in info.value.message


def test_voter_result_forms() -> None:
    cases = [
        {"status": "direct", "weight": 3},
        {"status": "delegated", "scope": "issue", "path": ["a", "b"], "weight": 1},
        {"status": "lost", "reason": "cycle"},
        {"status": "lost", "reason": "dead_end"},
        {"status": "absent"},
    ]
    for c in cases:
        assert VoterResult.from_dict(c).to_dict() == c


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_canonical_chunks_join_to_the_same_bytes(chunk: int) -> None:
    doc = to_input(json.loads(FILES[1].read_text()), "dfd")
    result = tally(TallyInput.from_dict(doc))
    assert isinstance(result.voters, VoterTable)
    whole = "".join(result.voters.canonical_chunks())
    assert "".join(result.voters.canonical_chunks(chunk)) == whole
    assert encode(result.unsigned_dict()["voters"]).decode() == "{" + whole + "}"


def test_empty_electorate() -> None:
    result = tally(TallyInput.from_dict({"version": 1, "voters": {}, "options": ["x"]}))
    assert result.canonical_bytes() == encode(result.unsigned_dict())
    assert result.to_dict()["voters"] == {}
    assert result.winner is None
