"""``liquide tally FILE|-`` through click's CliRunner (the command lives in node/_cli_tally.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main
from protocol.encoding import decode
from protocol.tally import TallyInput, TallyResult, tally

from .test_tally_lf import FILES, to_input


@pytest.fixture
def doc() -> dict:
    return to_input(json.loads(FILES[0].read_text()))


def test_json_output_is_the_canonical_result(doc: dict, tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(doc, indent=2))
    out = CliRunner().invoke(main, ["tally", "--json", str(path)])
    assert out.exit_code == 0, out.output
    got = decode(out.stdout_bytes.rstrip(b"\n"))
    assert got == tally(TallyInput.from_dict(doc)).to_dict()
    assert TallyResult.from_dict(got).digest == got["digest"]


def test_stdin_and_readable_summary(doc: dict) -> None:
    result = tally(TallyInput.from_dict(doc))
    out = CliRunner().invoke(main, ["tally", "-", "--explain", "m1"], input=json.dumps(doc))
    assert out.exit_code == 0, out.output
    text = out.output
    assert f"Digest: {result.digest}" in text
    assert f"Winner: {result.winner}" in text
    assert "(status quo)" in text
    assert "lost (" in text
    assert "absent" in text
    for oid, o in result.options.items():
        assert f"{o.rank:>4}  {oid}" in text
    assert "m1" in text.splitlines()[-1]


def test_json_with_explanations(doc: dict) -> None:
    out = CliRunner().invoke(
        main, ["tally", "-", "--json", "--explain", "m1", "--explain", "m2"], input=json.dumps(doc)
    )
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert [e["voter"] for e in got["explanations"]] == ["m1", "m2"]
    assert got["result"]["digest"] == tally(TallyInput.from_dict(doc)).digest


def test_no_winner_summary() -> None:
    doc = {"version": 1, "voters": {"a": 1}, "options": ["x"]}
    out = CliRunner().invoke(main, ["tally", "-"], input=json.dumps(doc))
    assert out.exit_code == 0
    assert "Winner: none (the status quo stays)" in out.output


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "liquide: error: standard input: not JSON: Expecting property name"),
        (b"\xff", "liquide: error: standard input: not UTF-8"),
        (b'{"version": 1, "version": 1}', "liquide: error: input: duplicate key 'version'"),
        (b'{"version": NaN}', "liquide: error: input: NaN is not allowed"),
        (
            json.dumps(
                {"version": 1, "voters": {"a": 1}, "options": ["x"], "ballots": {"b": {}}}
            ).encode(),
            "liquide: error: ballots.b: ballot by a voter who is not in voters",
        ),
        (
            json.dumps(
                {"version": 1, "voters": {"a": 1}, "options": ["x"], "ballots": {"a": {"x": 0.5}}}
            ).encode(),
            "liquide: error: ballots.a.x: must be an integer, not float",
        ),
    ],
)
def test_bad_input_is_one_clear_error(data: bytes, message: str) -> None:
    out = CliRunner().invoke(main, ["tally", "-"], input=data)
    assert out.exit_code == 1
    assert message in out.stderr
    assert out.stdout == ""


def test_explain_unknown_voter_is_an_error(doc: dict) -> None:
    out = CliRunner().invoke(main, ["tally", "-", "--explain", "nobody"], input=json.dumps(doc))
    assert out.exit_code == 1
    assert "liquide: error: voter 'nobody' is not in this tally" in out.stderr


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["tally", str(tmp_path / "nope.json")])
    assert out.exit_code == 2


def test_bad_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text("[1,")
    out = CliRunner().invoke(main, ["tally", str(path)])
    assert out.exit_code == 1
    assert f"liquide: error: {path}: not JSON" in out.stderr
