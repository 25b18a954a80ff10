"""Fuzzing of checkpoints, cosignatures, receipts, Merkle proofs, split views and tally inputs.

Hostile notes, dicts and proofs are refused with the module's own error naming the problem;
a mutated proof that still verifies must be a true statement about the tree (soundness).
"""

from __future__ import annotations

import base64

from hypothesis import example, given
from hypothesis import strategies as st

from crypto import LiquideError
from protocol.checkpoint import (
    Checkpoint,
    Cosignature,
    Receipt,
    SignedCheckpoint,
    SplitViewProof,
    cosign,
    sign_checkpoint,
)
from protocol.errors import ProofError, ProtocolError, TallyInputError
from protocol.merkle import MemoryTree, leaf_hash, verify_consistency, verify_inclusion
from protocol.tally import TallyInput, tally

from ._gen import CITY, ORIGIN, T0, fuzz_settings, json_values, mutated, mutated_bytes, sk

LEAVES = [leaf_hash(f"leaf {i}".encode()) for i in range(23)]
TREE = MemoryTree(LEAVES)
SC = sign_checkpoint(Checkpoint(ORIGIN, TREE.size, TREE.root()), CITY)
COSIGNED = SC.with_signature(cosign(SC.checkpoint, "witness.example", sk("witness"), T0))


def _names_problem(exc: LiquideError) -> None:
    assert isinstance(exc.code, str)
    assert exc.code
    assert isinstance(exc.message, str)
    assert len(exc.message) >= 8


_texty = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    chars = list(text)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(0, len(chars) - 1)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "line"]))
        if op == "replace" and chars:
            chars[pos] = draw(st.characters())
        elif op == "insert":
            chars[pos:pos] = list(draw(_texty))
        elif op == "delete" and chars:
            del chars[pos]
        else:
            lines = "".join(chars).split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, draw(st.sampled_from(["", "— x", lines[i], "— witness.example AAAA"])))
            chars = list("\n".join(lines))
    return "".join(chars)


@fuzz_settings(200)
@given(st.one_of(mutated_text(COSIGNED.to_text()), st.text(max_size=200)))
def test_checkpoint_notes_parse_or_name_the_defect(text: str) -> None:
    try:
        sc = SignedCheckpoint.parse(text)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    try:
        cp = sc.verify(ORIGIN, CITY.public_key)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    # A note that still verifies under the city key says exactly what the city signed.
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, TREE.size, TREE.root())
    try:
        sc.verify_cosignature("witness.example", sk("witness").public_key)
    except ProtocolError as exc:
        _names_problem(exc)


@fuzz_settings(100)
@given(mutated_text(COSIGNED.to_text().split("\n")[-2]))
def test_cosignature_lines_parse_or_name_the_defect(line: str) -> None:
    try:
        cs = Cosignature.from_line(line)
        cs.verify(SC.checkpoint, sk("witness").public_key)
    except ProtocolError as exc:
        _names_problem(exc)


RECEIPT = Receipt.create(CITY, ORIGIN, "ab" * 32, 7, time=T0, size=8).to_dict()


@fuzz_settings(150)
@given(mutated(RECEIPT))
def test_receipts_from_hostile_dicts(doc: object) -> None:
    try:
        r = Receipt.from_dict(doc)
        r.verify(CITY.public_key)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    assert r.to_dict() == RECEIPT  # only the genuine receipt verifies


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _split_view() -> dict[str, object]:
    other = MemoryTree([*LEAVES[:5], leaf_hash(b"evil"), *LEAVES[6:]])
    sc2 = sign_checkpoint(Checkpoint(ORIGIN, other.size, other.root()), CITY)
    return SplitViewProof.of_inclusions(
        5,
        (SC, LEAVES[5], TREE.inclusion_proof(5)),
        (sc2, leaf_hash(b"evil"), other.inclusion_proof(5)),
    ).to_dict()


SPLIT = _split_view()


@fuzz_settings(150)
@given(mutated(SPLIT))
def test_split_view_proofs_from_hostile_dicts(doc: object) -> None:
    try:
        proof = SplitViewProof.from_dict(doc)
        proof.verify(CITY.public_key)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    assert proof.to_dict() == SPLIT


@fuzz_settings(200)
@given(
    index=st.integers(-2, 30),
    size=st.integers(-2, 30),
    which=st.integers(0, len(LEAVES) - 1),
    edits=st.lists(st.tuples(st.integers(0, 8), st.binary(min_size=0, max_size=33)), max_size=3),
)
def test_inclusion_proofs_are_sound_under_mutation(index, size, which, edits) -> None:
    good_size = max(1, min(size, TREE.size)) if size > 0 else TREE.size
    good_index = min(max(index, 0), good_size - 1)
    proof = list(TREE.inclusion_proof(good_index, good_size))
    for pos, raw in edits:
        if proof and pos < len(proof):
            proof[pos] = raw
        else:
            proof.append(raw)
    root = MemoryTree(LEAVES[:good_size]).root()
    try:
        verify_inclusion(LEAVES[which], index, size, proof, root)
    except ProofError as exc:
        _names_problem(exc)
        return
    # The leaf really is at that index of the tree with that root. (RFC 9162 proofs do not
    # commit to the size on their own: a signed checkpoint binds the size to the root.)
    assert which == index < good_size


@fuzz_settings(200)
@given(
    old=st.integers(-1, 25),
    new=st.integers(-1, 25),
    tamper=st.none() | st.integers(0, 22),
    edits=st.lists(st.tuples(st.integers(0, 8), st.binary(max_size=33)), max_size=3),
)
def test_consistency_proofs_are_sound_under_mutation(old, new, tamper, edits) -> None:
    o, n = sorted((max(0, min(old, 23)), max(0, min(new, 23))))
    proof = list(TREE.consistency_proof(o, n)) if n else []
    for pos, raw in edits:
        if proof and pos < len(proof):
            proof[pos] = raw
        else:
            proof.append(raw)
    old_leaves = list(LEAVES[:o])
    forged = tamper is not None and tamper < o
    if forged:
        old_leaves[tamper] = leaf_hash(b"rewritten history")
    try:
        verify_consistency(
            old, new, MemoryTree(old_leaves).root(), MemoryTree(LEAVES[:n]).root(), proof
        )
    except ProofError as exc:
        _names_problem(exc)
        return
    # Whatever the proof, a rewritten old tree is never shown to be a prefix of the new one.
    assert not forged


TALLY = {
    "version": 1,
    "voters": {"a": 1, "b": 1, "c": 2, "d": 1},
    "options": ["x", "y"],
    "delegations": [
        {"truster": "a", "scope": "area", "trustees": ["b", "c"]},
        {"truster": "b", "scope": "assembly", "trustees": []},
        {"truster": "d", "scope": "issue", "trustees": ["a"]},
    ],
    "ballots": {"c": {"x": 1, "y": -1}, "b": {"y": 2}},
    "policy": {"delegation_rule": "dfd"},
}


@fuzz_settings(200)
@given(mutated(TALLY, max_edits=4) | json_values)
def test_tally_input_loader_refuses_or_tallies(doc: object) -> None:
    try:
        inp = TallyInput.from_dict(doc)
    except TallyInputError as exc:
        _names_problem(exc)
        return
    result = tally(inp).to_dict()
    assert isinstance(result["digest"], str)
    assert len(result["digest"]) == 64


# The witness's decision (C2SP tlog-witness add-checkpoint) ------------------------------------

FORK = [*LEAVES[:9], leaf_hash(b"forked history"), *LEAVES[10:]]


def _note(leaves: list[bytes], n: int) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, n, MemoryTree(leaves[:n]).root()), CITY).to_text()


@fuzz_settings(200)
@given(
    last=st.integers(0, 23),
    new=st.integers(0, 23),
    forked=st.booleans(),
    old=st.none() | st.integers(0, 30),
    edits=st.lists(st.tuples(st.integers(0, 8), st.binary(min_size=32, max_size=32)), max_size=2),
    garble=st.booleans(),
    data=st.data(),
)
def test_a_witness_never_cosigns_a_fork_of_what_it_cosigned(
    last, new, forked, old, edits, garble, data
) -> None:
    from protocol._witness import decide, format_add_checkpoint, parse_add_checkpoint

    leaves = FORK if forked else LEAVES
    proof = list(MemoryTree(leaves).consistency_proof(min(last, new), new)) if new else []
    for pos, raw in edits:
        if pos < len(proof):
            proof[pos] = raw
        else:
            proof.append(raw)
    old = last if old is None else old  # mostly the size the witness expects
    body = format_add_checkpoint(old, proof, _note(leaves, new))
    if garble:
        body = data.draw(mutated_bytes(body))
    try:
        req = parse_add_checkpoint(body)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    last_cp = Checkpoint(ORIGIN, last, MemoryTree(LEAVES[:last]).root()) if last else None
    d = decide(req, [CITY.public_key], last_cp)
    assert d.message
    if d.status == 200:
        assert d.checkpoint is not None
        # Cosigned: it extends what the witness cosigned before (the honest history).
        assert d.checkpoint.size >= last
        # The fork rewrote leaf 9: once the witness cosigned 10 or more honest leaves, no
        # checkpoint of the forked history may ever get its cosignature.
        assert not (forked and last >= 10), "cosigned a fork of what it cosigned before"
    else:
        assert d.checkpoint is None


# Records and trust files (observer inputs) ----------------------------------------------------


def _record() -> dict[str, object]:
    from protocol.record import Record, RecordPart

    issue = "ab" * 32
    sealed = RecordPart(ORIGIN, 8, MemoryTree(LEAVES[:8]).root(), "seal", 7)
    other = "b.example/liquide"
    standin = sign_checkpoint(Checkpoint(other, 5, MemoryTree(LEAVES[:5]).root()), sk("b"))
    part_b = RecordPart(other, 5, standin.checkpoint.root, "checkpoint", None, standin.to_text())
    return Record.of(issue, [sealed, part_b]).to_dict()


RECORD = _record()


@fuzz_settings(150)
@given(mutated(RECORD))
@example({**RECORD, "parts": [{**RECORD["parts"][0], "root": "— not base64"}]})  # type: ignore[index]
def test_records_from_hostile_dicts(doc: object) -> None:
    from protocol.record import Record

    try:
        rec = Record.from_dict(doc)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    assert Record.from_dict(rec.to_dict()).id == rec.id


def _trust() -> dict[str, object]:
    from protocol.verify import Trust

    from ._gen import valid_events

    return Trust.of_definition(valid_events()["assembly"]).to_dict()


TRUST = _trust()


@fuzz_settings(150)
@given(mutated(TRUST))
def test_trust_files_from_hostile_dicts(doc: object) -> None:
    from protocol.verify import Trust

    try:
        trust = Trust.from_dict(doc)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    assert Trust.from_dict(trust.to_dict()).to_dict() == trust.to_dict()
