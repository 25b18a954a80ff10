"""Records: the id rule, the part shapes (sealed and stand-in), and the offline stand-in check."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from protocol import encoding
from protocol.checkpoint import Checkpoint, cosign, sign_checkpoint
from protocol.errors import CheckpointError, ValidationError
from protocol.events import AssemblyBody
from protocol.merkle import leaf_hash, root_from_leaves
from protocol.record import Record, RecordPart, record_id
from protocol.state import replay

from ._events_factory import Author, assembly_body, issue_body, key, pk

A = "a.example/liquide"
B = "b.example/liquide"
ROOT_A = hashlib.sha256(b"a").digest()
ROOT_B = hashlib.sha256(b"b").digest()
ISSUE = "7" * 64


def test_record_id_is_the_hash_of_the_sorted_entries() -> None:
    pa = RecordPart(A, 10, ROOT_A, "seal", 9)
    pb = RecordPart(B, 4, ROOT_B, "seal", 3)
    expected_bytes = (
        '[["a.example/liquide",10,"' + base64.b64encode(ROOT_A).decode() + '"],'
        '["b.example/liquide",4,"' + base64.b64encode(ROOT_B).decode() + '"]]'
    ).encode()
    assert encoding.encode([pa.entry(), pb.entry()]) == expected_bytes
    rid = hashlib.sha256(expected_bytes).hexdigest()
    assert record_id([pb, pa]) == record_id([pa, pb]) == rid
    rec = Record.of(ISSUE, [pb, pa])
    assert rec.parts == (pa, pb)
    assert rec.id == rid
    assert rec.part(B) == pb
    assert rec.part("x") is None
    assert rec.standins() == ()
    # any change to a prefix changes the id
    assert record_id([pa, RecordPart(B, 5, ROOT_B, "seal", 4)]) != rid
    assert record_id([pa, RecordPart(B, 4, ROOT_A, "seal", 3)]) != rid
    with pytest.raises(ValidationError, match="two parts"):
        record_id([pa, pa])


def test_record_round_trip() -> None:
    rec = Record.of(
        ISSUE, [RecordPart(A, 10, ROOT_A, "seal", 9), RecordPart(B, 4, ROOT_B, "seal", 3)]
    )
    d = encoding.decode(encoding.encode(rec.to_dict()))
    assert Record.from_dict(d) == rec
    assert Record.from_dict(d).id == rec.id


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"origin": ""}, "origin"),
        ({"size": 0, "seal": -1}, "size"),
        ({"root": b"x"}, "root"),
        ({"seal": 3}, "seal"),
        ({"seal": None}, "seal"),
        ({"checkpoint": "x"}, "checkpoint: must be null"),
        ({"basis": "late"}, "basis"),
        ({"basis": "checkpoint"}, "seal: must be null"),
        ({"basis": "checkpoint", "seal": None}, "signed checkpoint text"),
        ({"basis": "checkpoint", "seal": None, "checkpoint": "garbage"}, "checkpoint"),
    ],
)
def test_part_rules(kwargs: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {
        "origin": A,
        "size": 10,
        "root": ROOT_A,
        "basis": "seal",
        "seal": 9,
        "checkpoint": None,
    }
    with pytest.raises(ValidationError, match=match):
        RecordPart(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"root": "AAAA"}, "root"),
        ({"root": 5}, "root"),
        ({"root": "!!"}, "root"),
        ({"extra": 1}, "must be an object"),
        ({"size": "10"}, "size"),
    ],
)
def test_part_from_dict_names_the_field(change: dict[str, Any], match: str) -> None:
    d = {**RecordPart(A, 10, ROOT_A, "seal", 9).to_dict(), **change}
    with pytest.raises(ValidationError, match=match):
        RecordPart.from_dict(d, "record.parts[0]")


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ([], "record: must be"),
        ({"issue": ISSUE, "parts": {}}, "record.parts: must be an array"),
        ({"issue": ISSUE, "parts": []}, "at least one"),
        ({"issue": "x", "parts": []}, "record.issue"),
    ],
)
def test_record_from_dict_rejects(d: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Record.from_dict(d)


def test_record_parts_must_be_sorted() -> None:
    pa = RecordPart(A, 10, ROOT_A, "seal", 9)
    pb = RecordPart(B, 4, ROOT_B, "seal", 3)
    with pytest.raises(ValidationError, match="sorted"):
        Record(ISSUE, (pb, pa))
    with pytest.raises(ValidationError, match="sorted"):
        Record(ISSUE, (pa, pa))


# --- stand-ins ------------------------------------------------------------------------------

CLOSES = 1_700_100_000


def standin(witness_times: dict[str, int], city: str = "city-b") -> tuple[RecordPart, AssemblyBody]:
    cp = Checkpoint(B, 7, ROOT_B)
    signed = sign_checkpoint(cp, key(city))
    for name, t in witness_times.items():
        signed = signed.with_signature(cosign(cp, f"{name}.example", key(name), t))
    asm = AssemblyBody.from_dict(
        assembly_body(
            [(A, pk("city-a")), (B, pk("city-b"))],
            k=2,
            witnesses=[(f"{n}.example", pk(n)) for n in ("w1", "w2", "w3")],
        )
    )
    return RecordPart(B, 7, ROOT_B, "checkpoint", None, signed.to_text()), asm


def test_standin_with_k_early_cosignatures_verifies() -> None:
    part, asm = standin({"w1": CLOSES - 10, "w2": CLOSES - 1, "w3": CLOSES + 5})
    part.verify_standin(key("city-b").public_key, asm, CLOSES)
    assert Record.of(ISSUE, [part, RecordPart(A, 3, ROOT_A, "seal", 2)]).standins() == (B,)
    assert RecordPart.from_dict(encoding.decode(encoding.encode(part.to_dict()))) == part


def test_standin_needs_k_cosignatures_before_the_close() -> None:
    part, asm = standin({"w1": CLOSES - 10, "w2": CLOSES, "w3": CLOSES + 5})
    with pytest.raises(CheckpointError, match="only 1 of the required 2"):
        part.verify_standin(key("city-b").public_key, asm, CLOSES)
    unknown, asm = standin({"w1": CLOSES - 10, "mallory": CLOSES - 10})
    with pytest.raises(CheckpointError, match="only 1"):
        unknown.verify_standin(key("city-b").public_key, asm, CLOSES)


def test_standin_must_be_signed_by_the_city() -> None:
    part, asm = standin({"w1": 1, "w2": 2}, city="mallory")
    with pytest.raises(CheckpointError):
        part.verify_standin(key("city-b").public_key, asm, CLOSES)


def test_standin_must_match_the_part() -> None:
    part, _ = standin({"w1": 1})
    with pytest.raises(ValidationError, match="another origin, size or root"):
        RecordPart(B, 8, ROOT_B, "checkpoint", None, part.checkpoint)
    with pytest.raises(ValidationError, match="no stand-in"):
        RecordPart(A, 3, ROOT_A, "seal", 2).verify_standin(
            key("city-a").public_key, standin({})[1], CLOSES
        )


def test_a_sealed_part_from_replay() -> None:
    a = Author(key("city-a"))
    asm = a.sign("assembly", assembly_body([(A, a.pk)]))
    area = a.sign("area", {"assembly": asm.id, "name": "Mobilité"})
    iss = a.sign("issue", issue_body(asm.id, area.id))
    seal = a.sign("seal", {"issue": iss.id})
    after = a.sign("enrol", {"key": pk("late"), "ref": "r"})
    leaves = [e.leaf for e in (asm, area, iss, seal, after)]
    r = replay(A, a.pk, leaves, snapshot=[iss.id])
    s = r.state.seals[iss.id]
    part = RecordPart(
        A, s + 1, root_from_leaves([leaf_hash(x) for x in leaves[: s + 1]]), "seal", s
    )
    assert r.at_seal[iss.id].size == part.size
    assert Record.of(iss.id, [part]).id == record_id([part])
