"""TallyInput validation: every bad input gets a TallyInputError that names the item."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import TallyInputError
from protocol.tally import (
    MAX_ID_LENGTH,
    MAX_OPTIONS,
    MAX_TOTAL_WEIGHT,
    MAX_TRUSTEES,
    Delegation,
    Majority,
    Policy,
    TallyInput,
    _input,
    tally,
)


def base() -> dict[str, Any]:
    return {
        "version": 1,
        "voters": {"a": 1, "b": 1, "c": 2},
        "options": ["x", "y"],
        "delegations": [
            {"truster": "a", "scope": "area", "trustees": ["b", "c"]},
            {"truster": "b", "scope": "assembly", "trustees": []},
        ],
        "ballots": {"c": {"x": 1, "y": -1}},
        "policy": {"delegation_rule": "dfd"},
    }


def edit(path: str, value: Any, delete: bool = False) -> dict[str, Any]:
    """Return base() with the item at a dotted path (list indexes as numbers) replaced."""
    doc = base()
    keys = path.split(".")
    target: Any = doc
    for k in keys[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    last: Any = int(keys[-1]) if isinstance(target, list) else keys[-1]
    if delete:
        del target[last]
    else:
        target[last] = value
    return doc


BAD = [
    # (document, expected words in the message)
    (edit("ballots.c", {"x": 1, "z": 1}), "ballots.c: unknown option 'z'"),
    (edit("ballots.c.x", 1.5), "ballots.c.x: must be an integer, not float"),
    (edit("ballots.c.x", value=True), "ballots.c.x: must be an integer, not bool"),
    (edit("ballots.c.x", "1"), "ballots.c.x: must be an integer"),
    (edit("ballots.c.x", 2**31), "ballots.c.x: 2147483648 is out of range"),
    (edit("ballots", {"zed": {}}), "ballots.zed: ballot by a voter who is not in voters"),
    (edit("ballots", {"c": []}), "ballots.c: must be an object"),
    (edit("ballots", []), "ballots: must be an object"),
    (edit("delegations.0.truster", "zed"), "delegations[0].truster: 'zed' is not in voters"),
    (edit("delegations.0.truster", 5), "delegations[0].truster: must be a string"),
    (
        edit("delegations.1", {"truster": "a", "scope": "area", "trustees": ["c"]}),
        "delegations[1]: second area row for truster 'a'",
    ),
    (edit("delegations.0.trustees", ["b", "a"]), "delegations[0].trustees: self-delegation by 'a'"),
    (
        edit("delegations.0.trustees", ["b", "b"]),
        "delegations[0].trustees: a trustee is listed twice",
    ),
    (edit("delegations.0.trustees", "b"), "delegations[0].trustees: must be an array"),
    (edit("delegations.0.trustees", [7]), "delegations[0].trustees[0]: must be a string"),
    (
        edit("delegations.0.trustees", [f"t{i}" for i in range(MAX_TRUSTEES + 1)]),
        f"{MAX_TRUSTEES + 1} trustees (at most {MAX_TRUSTEES})",
    ),
    (edit("delegations.0.scope", "city"), "delegations[0].scope: unknown value 'city'"),
    (edit("delegations.0.extra", 1), "delegations[0]: unknown key 'extra'"),
    (edit("delegations.0.scope", None, delete=True), "delegations[0]: missing key 'scope'"),
    (edit("delegations.0", "row"), "delegations[0]: must be an object"),
    (edit("delegations", {}), "delegations: must be an array"),
    (edit("voters.a", -1), "voters.a: negative weight -1"),
    (edit("voters.a", value=True), "voters.a: must be an integer, not bool"),
    (edit("voters.a", None), "voters.a: must be an integer, not NoneType"),
    (edit("voters", {"a": MAX_TOTAL_WEIGHT, "b": 1, "c": 0}), "total weight 2147483648 exceeds"),
    (edit("voters", {"a b\n": 1}), "printable ASCII"),
    (edit("voters", {"é": 1}), "printable ASCII"),
    (edit("voters", {'a"b': 1}), 'other than " and'),
    (edit("delegations.0.trustees", ["b\\c"]), "delegations[0].trustees[0]: id"),
    (edit("voters", {"x" * (MAX_ID_LENGTH + 1): 1}), "printable ASCII"),
    (edit("voters", []), "voters: must be an object"),
    (edit("options", ["x", "x"]), "options: duplicate option 'x'"),
    (edit("options", []), f"options: 0 options (expected 1..{MAX_OPTIONS})"),
    (edit("options", [f"o{i}" for i in range(MAX_OPTIONS + 1)]), "options: 33 options"),
    (edit("options", ["x", 3]), "options[1]: must be a string"),
    (edit("options", ["x", ""]), "options[1]: id '' must be"),
    (edit("options", "x"), "options: must be an array"),
    (edit("policy.delegation_rule", "random"), "policy.delegation_rule: unknown value 'random'"),
    (edit("policy.defeat_strength", "margin"), "policy.defeat_strength: unknown value 'margin'"),
    (edit("policy.tie_breaking", 1), "policy.tie_breaking: unknown value 1"),
    (
        edit("policy.direct_majority", {"num": 1, "den": 0}),
        "policy.direct_majority.den: 0 is out of range",
    ),
    (
        edit("policy.indirect_majority", {"strict": 1}),
        "policy.indirect_majority.strict: must be true or false",
    ),
    (
        edit("policy.indirect_majority", {"quorum": 1}),
        "policy.indirect_majority: unknown key 'quorum'",
    ),
    (
        edit("policy.direct_majority", {"positive": -1}),
        "policy.direct_majority.positive: -1 is out of range",
    ),
    (
        edit("policy.no_multistage_majority", "yes"),
        "policy.no_multistage_majority: must be true or false",
    ),
    (
        edit("policy", {"defeat_strength": "simple", "no_reverse_beat_path": True}),
        'policy.no_reverse_beat_path: requires defeat_strength "tuple"',
    ),
    (edit("policy.quorum", 1), "policy: unknown key 'quorum'"),
    (edit("policy", []), "policy: must be an object"),
    (edit("version", 2), "version: unsupported version 2"),
    (edit("version", value=True), "version: unsupported version True"),
    (edit("version", None, delete=True), "input: missing key 'version'"),
    (edit("extra", 1), "input: unknown key 'extra'"),
    ([], "input: must be an object"),
]


@pytest.mark.parametrize(("doc", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_names_the_item(doc: Any, message: str) -> None:
    with pytest.raises(TallyInputError) as info:
        TallyInput.from_dict(doc)
    assert message in info.value.message
    assert info.value.code == "bad_tally_input"


def test_unknown_trustee_is_skipped_not_an_error() -> None:
    doc = edit("delegations.0.trustees", ["nobody", "c"])
    result = tally(TallyInput.from_dict(doc))
    assert result.voters["a"].path == ("c",)


def test_numbering_kept_from_validation() -> None:
    doc = edit("delegations.0.trustees", ["nobody", "c", "b"])
    doc["voters"] = {"c": 2, "a": 1, "b": 1}  # not in sorted order: numbers follow sorted ids
    numbering = TallyInput.from_dict(doc).numbering()
    assert numbering.ids == ["a", "b", "c"]
    assert numbering.index == {"a": 0, "b": 1, "c": 2}
    assert numbering.trusters == {"assembly": [1], "area": [0], "issue": []}
    assert numbering.trustees == {"assembly": [()], "area": [(2, 1)], "issue": []}
    assert numbering.casting == [2]


def test_input_built_in_code_numbers_itself() -> None:
    doc = edit("delegations.0.trustees", ["nobody", "b", "c"])
    doc["ballots"]["b"] = {"y": 2}
    validated = TallyInput.from_dict(doc)
    built = TallyInput(
        voters=dict(validated.voters),
        options=validated.options,
        delegations={"assembly": {"b": ()}, "area": {"a": ("nobody", "b", "c")}, "issue": {}},
        ballots={"c": {"x": 1, "y": -1}, "b": {"y": 2}},
        policy=validated.policy,
    )
    assert built == validated
    assert built.numbering() == validated.numbering()
    assert tally(built) == tally(validated)


def test_defaults_and_round_trip() -> None:
    doc = {"version": 1, "voters": {"a": 1}, "options": ["x"]}
    inp = TallyInput.from_dict(doc)
    assert inp.policy == Policy()
    assert inp.policy.direct_majority == Majority(
        num=1, den=2, strict=True, positive=0, non_negative=0
    )
    full = inp.to_dict()
    assert full["policy"] == {
        "delegation_rule": "bfd",
        "defeat_strength": "tuple",
        "tie_breaking": "variant1",
        "direct_majority": {"num": 1, "den": 2, "strict": True, "positive": 0, "non_negative": 0},
        "indirect_majority": {"num": 1, "den": 2, "strict": True, "positive": 0, "non_negative": 0},
        "no_reverse_beat_path": False,
        "no_multistage_majority": False,
    }
    assert TallyInput.from_dict(full) == inp
    partial = {**doc, "policy": {"direct_majority": {"num": 2, "den": 3}}}
    assert TallyInput.from_dict(partial).policy.direct_majority == Majority(
        num=2, den=3, strict=True, positive=0, non_negative=0
    )


def test_round_trip_keeps_everything() -> None:
    doc = base()
    inp = TallyInput.from_dict(copy.deepcopy(doc))
    again = TallyInput.from_dict(inp.to_dict())
    assert again == inp
    key = lambda r: (r["scope"], r["truster"])  # noqa: E731  (row order carries no meaning)
    assert sorted(again.to_dict()["delegations"], key=key) == sorted(doc["delegations"], key=key)
    assert next(iter(again.rows())) == Delegation("b", "assembly", ())
    assert again.to_dict()["ballots"] == doc["ballots"]


def test_input_is_copied() -> None:
    doc = base()
    inp = TallyInput.from_dict(doc)
    doc["ballots"]["c"]["x"] = -1
    doc["voters"]["a"] = 5
    assert inp.ballots["c"]["x"] == 1
    assert inp.voters["a"] == 1


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["a", "b", "c", "x", 'q"', ""]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    doc = base()
    doc["delegations"].append({"truster": "c", "scope": "issue", "trustees": ["a"]})
    paths = [
        ("voters",),
        ("delegations",),
        ("ballots",),
        ("ballots", "c"),
        ("delegations", 0),
        ("delegations", 0, "trustees"),
        ("delegations", 1, "truster"),
        ("delegations", 2, "scope"),
        ("ballots", "c", "x"),
        ("voters", "a"),
    ]
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(paths))
        target: Any = doc
        try:
            for k in path[:-1]:
                target = target[k]
            target[path[-1]] = draw(JSONISH)
        except (KeyError, IndexError, TypeError):
            pass
    return doc


@settings(max_examples=200, deadline=None)
@given(doc=mutated())
def test_bulk_and_item_checks_agree(doc: dict[str, Any]) -> None:
    def item(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except TallyInputError:
            return None

    voters = item(_input._check_voters, doc["voters"])
    assert _input._bulk_voters(doc["voters"]) in (voters, None)
    if voters is None:
        return
    ids, index = _input._number_voters(voters)
    rows = item(_input._check_rows, doc["delegations"], voters)
    bulk_rows = _input._bulk_rows(doc["delegations"], index)
    assert bulk_rows is None or bulk_rows.rows == rows
    ballots = item(_input._check_ballots, doc["ballots"], voters, ("x", "y"))
    bulk_ballots = _input._bulk_ballots(doc["ballots"], index, ("x", "y"))
    assert bulk_ballots is None or bulk_ballots.ballots == ballots
    if bulk_rows is not None and bulk_ballots is not None:
        # The numbers kept from the bulk checks are those an input built in code computes.
        lazy = _input._number_input(voters, bulk_rows.rows, bulk_ballots.ballots)
        kept = (ids, index, bulk_rows.trusters, bulk_rows.trustees, bulk_ballots.casting)
        assert _input.Numbering(*kept) == lazy
