"""Events: round-trips for every type, the id and signature rules, a rejection table naming each
field, the fast key parser against crypto's, and the committed test vectors."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import BadSignatureError, PublicKey, SecretKey, domain_message
from protocol import encoding
from protocol.errors import EncodingError, ValidationError
from protocol.events import (
    CITIZEN_TYPES,
    CITY_TYPES,
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    MAX_GRADE,
    MAX_TRUSTEES,
    BallotBody,
    DelegateBody,
    Event,
    IssueBody,
    Policy,
    parse_key,
)

from ._events_factory import T0, Author, assembly_body, issue_body, key, pk

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "events.json"
H1 = "1" * 64
H2 = "2" * 64


def sample_bodies() -> dict[str, dict[str, Any]]:
    """One valid body per event type (nested definitions signed by a second city)."""
    other = Author(key("city-b"))
    asm = other.sign(
        "assembly",
        assembly_body([("b.example/liquide", other.pk), ("a.example/liquide", pk("city-a"))]),
    )
    area = other.sign("area", {"assembly": asm.id, "name": "Mobilité"})
    iss = other.sign("issue", issue_body(asm.id, area.id))
    return {
        "assembly": assembly_body([("a.example/liquide", pk("city-a"))]),
        "assembly.join": {"assembly": asm.to_dict()},
        "area": {"assembly": H1, "name": "Culture"},
        "issue": issue_body(H1, H2),
        "issue.adopt": {"issue": iss.to_dict(), "area": area.to_dict()},
        "enrol": {"key": pk("alice"), "ref": "desk-7/2026-0001"},
        "unenrol": {"key": pk("alice"), "ref": "moved-away"},
        "seal": {"issue": H1},
        "attest": {"record": H1, "digest": H2, "issue": H1},
        "handover": {"key": pk("city-a-2")},
        "delegate": {"scope": "area", "target": H1, "trustees": [pk("bob"), pk("carol")]},
        "revoke": {"scope": "issue", "target": H1},
        "ballot": {"issue": H1, "grades": {"a": 2, "b": -1}},
        "withdraw": {"issue": H1},
    }


def test_types_partition() -> None:
    assert CITY_TYPES | CITIZEN_TYPES == EVENT_TYPES
    assert not CITY_TYPES & CITIZEN_TYPES
    assert set(sample_bodies()) == EVENT_TYPES


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_round_trip_every_type(type_: str) -> None:
    a = Author(key("alice"))
    body = sample_bodies()[type_]
    first = a.sign("withdraw", {"issue": H1})
    ev = a.sign(type_, body)
    assert ev.seq == 2
    assert ev.prev == first.id
    assert ev.body.to_dict() == body
    assert Event.decode(ev.encode()) == ev
    assert Event.from_dict(ev.to_dict()) == ev
    assert json.loads(ev.encode()) == ev.to_dict()
    assert encoding.encode(ev.to_dict()) == ev.encode()
    unsigned = {k: v for k, v in ev.to_dict().items() if k != "sig"}
    assert ev.unsigned_bytes() == encoding.encode(unsigned)
    assert ev.id == hashlib.sha256(ev.unsigned_bytes()).hexdigest()
    assert ev.is_city_type() == (type_ in CITY_TYPES)
    assert hash(ev) == hash(Event.decode(ev.encode()))
    assert ev != first
    assert ev != "x"
    ev.verify()
    PublicKey.from_text(ev.author).verify(type_, ev.unsigned_bytes(), ev.sig)


def test_signature_covers_type_and_every_field() -> None:
    a = Author(key("alice"))
    ev = a.sign("ballot", {"issue": H1, "grades": {"a": 1}})
    d = ev.to_dict()
    for change in (
        {"ts": ev.ts + 1},
        {"body": {"issue": H2, "grades": {"a": 1}}},
        {"type": "withdraw", "body": {"issue": H1}},
    ):
        forged = Event.from_dict({**d, **change})
        with pytest.raises(BadSignatureError):
            forged.verify()
    other = Event.from_dict({**d, "author": pk("mallory")})
    with pytest.raises(BadSignatureError):
        other.verify()
    sig = bytearray(ev.sig)
    sig[0] ^= 1
    bad = Event.from_dict({**d, "sig": base64.b64encode(bytes(sig)).decode()})
    with pytest.raises(BadSignatureError):
        bad.verify()


def test_nested_sig_does_not_confuse_unsigned_form() -> None:
    a = Author(key("city-a"))
    ev = a.sign("issue.adopt", sample_bodies()["issue.adopt"])
    assert ev.encode().count(b'"sig":') == 3
    unsigned = {k: v for k, v in ev.to_dict().items() if k != "sig"}
    assert ev.unsigned_bytes() == encoding.encode(unsigned)
    ev.verify()
    ev.body.issue.verify()
    ev.body.area.verify()


def test_create_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="unknown event type") as exc:
        Event.create(key("a"), "vote", {"issue": H1}, 1, None, T0)
    assert exc.value.code == "unknown_type"
    with pytest.raises(ValidationError, match="float"):
        Event.create(key("a"), "withdraw", {"issue": 1.5}, 1, None, T0)
    with pytest.raises(ValidationError, match="float"):
        Event.from_dict({"x": 0.5})
    ev = Event.create(key("a"), "delegate", DelegateBody("assembly", H1, (pk("b"),)), 1, None, T0)
    assert ev.body == DelegateBody("assembly", H1, (pk("b"),))


def _mutate(d: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    d = json.loads(json.dumps(d))
    *parents, last = path.split(".")
    cur: Any = d
    for p in parents:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    if value is _DELETE:
        del cur[last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return d


_DELETE = object()
LONG = "x" * 201

# (type, path in the event dict, new value, expected field in the message, expected code)
REJECTIONS: list[tuple[str, str, Any, str, str]] = [
    ("withdraw", "v", 2, "event.v", "invalid"),
    ("withdraw", "v", True, "event.v", "invalid"),
    ("withdraw", "type", "vote", "event.type", "unknown_type"),
    ("withdraw", "type", 3, "event.type", "unknown_type"),
    ("withdraw", "extra", 1, "unknown field 'extra'", "invalid"),
    ("withdraw", "ts", _DELETE, "missing field 'ts'", "invalid"),
    ("withdraw", "author", "lqpk1zzz", "event.author", "invalid"),
    ("withdraw", "author", pk("a").upper(), "lower case", "invalid"),
    ("withdraw", "author", 7, "event.author", "invalid"),
    ("withdraw", "seq", 0, "event.seq", "invalid"),
    ("withdraw", "seq", "1", "event.seq", "invalid"),
    ("withdraw", "prev", H1, "null at seq 1", "invalid"),
    ("withdraw", "ts", -1, "event.ts", "invalid"),
    ("withdraw", "ts", 2**53, ".ts", "invalid"),
    ("withdraw", "sig", "AAAA", "event.sig", "invalid"),
    ("withdraw", "sig", "!" * 88, "event.sig", "invalid"),
    ("withdraw", "sig", "A" * 85 + "B==", "event.sig", "invalid"),  # non-zero padding bits
    ("withdraw", "sig", None, "event.sig", "invalid"),
    ("withdraw", "sig", "!" * 85 + "A==", "event.sig", "invalid"),
    ("delegate", "body.scope", _DELETE, "missing field 'scope'", "invalid"),
    ("ballot", "body.extra", 1, "unknown field 'extra'", "invalid"),
    ("ballot", "body.issue", "x", "event.body.issue", "invalid"),
    ("withdraw", "body", [], "event.body: must be an object", "invalid"),
    ("withdraw", "body.issue", "ABC", "event.body.issue", "invalid"),
    ("withdraw", "body.issue", "AB" * 32, "event.body.issue", "invalid"),
    (
        "delegate",
        "body.trustees",
        [pk(f"t{i}") for i in range(MAX_TRUSTEES + 1)],
        "event.body.trustees",
        "trustees_too_long",
    ),
    ("delegate", "body.trustees", [pk("t"), pk("t")], "twice", "duplicate_trustee"),
    ("delegate", "body.trustees", [pk("alice")], "own author", "self_delegation"),
    ("delegate", "body.trustees", ["nobody"], "event.body.trustees[0]", "invalid"),
    ("delegate", "body.trustees", "x", "event.body.trustees", "invalid"),
    ("delegate", "body.scope", "city", "event.body.scope", "invalid"),
    ("delegate", "body.scope", ["area"], "event.body.scope", "invalid"),
    ("ballot", "body.grades", [], "event.body.grades", "invalid"),
    ("ballot", "body.grades", {"a": MAX_GRADE + 1}, "event.body.grades.a", "invalid"),
    ("ballot", "body.grades", {"a": True}, "event.body.grades.a", "invalid"),
    ("ballot", "body.grades", {"a b": 1}, "not an option id", "invalid"),
    ("ballot", "body.grades", {f"o{i}": 1 for i in range(33)}, "at most 32", "invalid"),
    ("enrol", "body.ref", "has space", "event.body.ref", "invalid"),
    ("enrol", "body.ref", "r" * 129, "event.body.ref", "invalid"),
    ("enrol", "body.key", pk("a")[:-1] + "q", "event.body.key", "invalid"),
    ("area", "body.name", "", "event.body.name", "invalid"),
    ("area", "body.name", LONG, "event.body.name", "invalid"),
    ("area", "body.name", "e\u0301", "NFC", "invalid"),
    ("area", "body.name", "a\nb", "control character", "invalid"),
    ("area", "body.name", "\ud800", "lone surrogate", "invalid"),
    ("area", "body.name", 5, "event.body.name", "invalid"),
    ("assembly", "body.k", 2, "event.body.k", "invalid"),
    ("assembly", "body.grace", -1, "event.body.grace", "invalid"),
    ("assembly", "body.members", [], "event.body.members", "invalid"),
    ("assembly", "body.members.0.origin", "has space", "event.body.members[0].origin", "invalid"),
    ("assembly", "body.members.0.origin", "a+b", "event.body.members[0].origin", "invalid"),
    ("assembly", "body.members.0.key", "k", "event.body.members[0].key", "invalid"),
    ("assembly", "body.witnesses.0.name", "", "event.body.witnesses[0].name", "invalid"),
    ("assembly", "body.witnesses.0.key", None, "event.body.witnesses[0].key", "invalid"),
    ("assembly", "body.witnesses.0.extra", 1, "unknown field", "invalid"),
    ("issue", "body.closes", T0, "event.body.closes", "invalid"),
    ("issue", "body.options", [], "event.body.options", "invalid"),
    ("issue", "body.options.1.id", "a", "unique", "invalid"),
    ("issue", "body.options.0.id", "-a", "event.body.options[0].id", "invalid"),
    ("issue", "body.options.0.title", "", "event.body.options[0].title", "invalid"),
    ("issue", "body.policy.delegation_rule", "lf", "event.body.policy.delegation_rule", "invalid"),
    ("issue", "body.policy.defeat_strength", 1, "event.body.policy.defeat_strength", "invalid"),
    (
        "issue",
        "body.policy.no_reverse_beat_path",
        0,
        "event.body.policy.no_reverse_beat_path",
        "invalid",
    ),
    (
        "issue",
        "body.policy.direct_majority.den",
        0,
        "event.body.policy.direct_majority.den",
        "invalid",
    ),
    (
        "issue",
        "body.policy.direct_majority.num",
        3,
        "event.body.policy.direct_majority.num",
        "invalid",
    ),
    (
        "issue",
        "body.policy.indirect_majority.strict",
        1,
        "event.body.policy.indirect_majority.strict",
        "invalid",
    ),
    ("issue", "body.policy.extra", 1, "unknown field", "invalid"),
    (
        "issue",
        "body.policy.direct_majority.positive",
        2**31,
        "event.body.policy.direct_majority.positive",
        "invalid",
    ),
    ("attest", "body.digest", "00", "event.body.digest", "invalid"),
    ("seal", "body.issue", None, "event.body.issue", "invalid"),
    ("handover", "body.key", "lqpk1x", "event.body.key", "invalid"),
    ("handover", "body.extra", 1, "unknown field", "invalid"),
    ("revoke", "body.target", "", "event.body.target", "invalid"),
    ("assembly.join", "body.assembly", "x", "event.body.assembly", "invalid"),
    ("assembly.join", "body.assembly.type", "area", "event.body.assembly", "invalid"),
    ("assembly.join", "body.assembly.body.k", 9, "event.body.assembly.body.k", "invalid"),
    ("issue.adopt", "body.area.type", "issue", "event.body.area", "invalid"),
    ("issue.adopt", "body.issue.seq", 0, "event.body.issue.seq", "invalid"),
]


@pytest.mark.parametrize(("type_", "path", "value", "field", "code"), REJECTIONS)
def test_rejection_table(type_: str, path: str, value: Any, field: str, code: str) -> None:
    ev = Author(key("alice")).sign(type_, sample_bodies()[type_])
    bad = _mutate(ev.to_dict(), path, value)
    with pytest.raises(ValidationError) as exc:
        Event.from_dict(bad)
    assert field in exc.value.message
    assert exc.value.code == code
    try:
        leaf = encoding.encode(bad)
    except EncodingError:
        return
    with pytest.raises(ValidationError) as exc2:
        Event.decode(leaf)
    assert exc2.value.code == code


def test_prev_required_after_seq_1() -> None:
    d = Author(key("alice")).sign("withdraw", {"issue": H1}).to_dict()
    with pytest.raises(ValidationError, match=r"event\.prev"):
        Event.from_dict({**d, "seq": 2})
    with pytest.raises(ValidationError, match=r"event\.prev"):
        Event.from_dict({**d, "seq": 2, "prev": "z" * 64})
    assert Event.from_dict({**d, "seq": 2, "prev": H1}).prev == H1


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda b: b" " + b, "whitespace"),
        (lambda b: b.replace(b'"author":', b'"author" :'), "whitespace"),
        (lambda b: b.replace(b'{"author"', b'{"v":1,"author"'), "sorted"),
        (lambda b: b.replace(b'"ts":', b'"ts":0,"ts":'), "duplicate"),
        (lambda b: b.replace(b',"v":1}', b',"v":1.0}'), "not an integer"),
        (lambda b: b.replace(b',"v":1}', b',"v":NaN}'), "NaN"),
        (lambda b: b.replace(b'"type":"withdraw"', b'"type":"withdra\\u0077"'), "canonical"),
        (lambda b: b"\xff" + b, "UTF-8"),
        (lambda b: b[:-1], "malformed"),
        (lambda b: b.replace(b'"seq":1', b'"seq":-0'), "canonical"),
    ],
)
def test_decode_rejects_non_canonical(mangle: Any, match: str) -> None:
    leaf = Author(key("alice")).sign("withdraw", {"issue": H1}).encode()
    with pytest.raises(EncodingError, match=match):
        Event.decode(mangle(leaf))


def test_decode_rejects_unsorted_and_non_object() -> None:
    with pytest.raises(EncodingError, match="sorted"):
        Event.decode(b'{"v":1,"author":"x"}')
    with pytest.raises(ValidationError, match="event: must be an object"):
        Event.decode(b"[1]")
    with pytest.raises(ValidationError, match="event: must be an object"):
        Event.from_dict([1])


def test_decode_size_bound() -> None:
    with pytest.raises(ValidationError) as exc:
        Event.decode(b" " * (MAX_EVENT_BYTES + 1))
    assert exc.value.code == "too_large"
    ev = Author(key("alice")).sign("withdraw", {"issue": H1})
    assert Event.decode(bytearray(ev.encode())) == ev  # any bytes-like value


def test_reverse_beat_path_needs_tuple_strength() -> None:
    d = {**Policy().to_dict(), "no_reverse_beat_path": True}
    assert Policy.from_dict(d).no_reverse_beat_path
    with pytest.raises(ValidationError, match="requires defeat_strength"):
        Policy.from_dict({**d, "defeat_strength": "simple"})


def test_policy_defaults_match_tally_defaults() -> None:
    d = Policy().to_dict()
    assert d["delegation_rule"] == "bfd"
    assert d["defeat_strength"] == "tuple"
    assert d["tie_breaking"] == "variant1"
    assert d["direct_majority"] == {
        "num": 1,
        "den": 2,
        "strict": True,
        "positive": 0,
        "non_negative": 0,
    }
    assert Policy.from_dict(d) == Policy()


def test_issue_helpers() -> None:
    body = IssueBody.from_dict(issue_body(H1, H2, options=("x", "y", "z")))
    assert body.option_ids() == ("x", "y", "z")
    asm = Author(key("c")).sign(
        "assembly", assembly_body([("a.example", pk("a")), ("b.example", pk("b"))])
    )
    assert asm.body.member("b.example").key == pk("b")
    assert asm.body.member("c.example") is None
    assert asm.body.member_by_key(pk("a")).origin == "a.example"
    assert asm.body.member_by_key(pk("z")) is None


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (
            "body.members",
            [{"origin": "a", "key": pk("a")}, {"origin": "a", "key": pk("b")}],
            "origins must be unique",
        ),
        (
            "body.members",
            [{"origin": "a", "key": pk("a")}, {"origin": "b", "key": pk("a")}],
            "keys must be unique",
        ),
        (
            "body.witnesses",
            [{"name": "w", "key": pk("a")}, {"name": "w", "key": pk("b")}],
            "names must be unique",
        ),
        (
            "body.witnesses",
            [{"name": "v", "key": pk("a")}, {"name": "w", "key": pk("a")}],
            "keys must be unique",
        ),
    ],
)
def test_assembly_uniqueness(path: str, value: Any, match: str) -> None:
    ev = Author(key("c")).sign("assembly", assembly_body([("a.example", pk("a"))]))
    with pytest.raises(ValidationError, match=match):
        Event.from_dict(_mutate(ev.to_dict(), path, value))


# --- the fast key parser equals crypto's ------------------------------------------------------


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_parse_key_matches_crypto(raw: bytes) -> None:
    from crypto import _bech32

    text = PublicKey(raw).to_text()
    assert parse_key(text, "k") == raw
    assert _bech32.decode("lqpk", text) == raw


@settings(max_examples=200)
@given(
    st.binary(min_size=32, max_size=32),
    st.integers(5, 62),
    st.sampled_from("qpzry9x8gf2tvdw0s3jn54khce6mua7l"),
)
def test_parse_key_rejects_what_crypto_rejects(raw: bytes, pos: int, char: str) -> None:
    text = PublicKey(raw).to_text()
    mutated = text[:pos] + char + text[pos + 1 :]
    from crypto import _bech32

    try:
        expected: bytes | None = _bech32.decode("lqpk", mutated)  # the reference codec
    except Exception:
        expected = None
    if expected is None:
        with pytest.raises(ValidationError):
            parse_key(mutated, "k")
    else:
        assert parse_key(mutated, "k") == expected


def test_parse_key_rejects_nonzero_padding_with_valid_checksum() -> None:
    from crypto import _bech32

    data = [0] * 51 + [1]  # 260 bits: the last 4 must be zero padding, here they are not
    hrp = "lqpk"
    polymod = _bech32._polymod([*_bech32._hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 0x2BC830A3
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = hrp + "1" + "".join(_bech32.CHARSET[d] for d in data + checksum)
    with pytest.raises(ValidationError, match="padding"):
        parse_key(text, "k")


def test_text_rules_on_bodies_directly() -> None:
    from protocol.events import AreaBody

    with pytest.raises(ValidationError, match="NFC"):
        AreaBody.from_dict({"assembly": H1, "name": "e\u0301"})
    with pytest.raises(ValidationError, match="lone surrogate"):
        AreaBody.from_dict({"assembly": H1, "name": "\ud800"})
    assert AreaBody.from_dict({"assembly": H1, "name": "Écoles"}).name == "Écoles"


def test_a_carried_event_defect_is_an_invalid_field() -> None:
    asm = Author(key("city-b")).sign("assembly", assembly_body([("b.example", pk("city-b"))]))
    d = {**asm.to_dict(), "type": "vote"}
    with pytest.raises(ValidationError, match=r"event\.body\.assembly\.type") as exc:
        Author(key("city-a")).sign("assembly.join", {"assembly": d})
    assert exc.value.code == "invalid"


def test_carried_event_must_have_the_right_type() -> None:
    area = Author(key("city-b")).sign("area", {"assembly": H1, "name": "Culture"})
    with pytest.raises(ValidationError, match=r"event\.body\.assembly\.type: must be 'assembly'"):
        Author(key("city-a")).sign("assembly.join", {"assembly": area.to_dict()})


def test_parse_key_rejects_other_forms() -> None:
    sk_text = key("a").to_text()
    for bad in (
        sk_text,
        "lqpk1" + "q" * 58,
        "",
        "lqpk1" + "b" * 58,
        pk("a") + "q",
        "lqpk1é" + "q" * 57,
    ):
        with pytest.raises(ValidationError):
            parse_key(bad, "k")


# --- random bodies round-trip -----------------------------------------------------------------

option_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True)


@settings(max_examples=100)
@given(
    st.dictionaries(option_ids, st.integers(-MAX_GRADE, MAX_GRADE), max_size=8),
    st.integers(1, 2**53 - 1),
    st.integers(0, 2**53 - 1),
)
def test_ballot_round_trip(grades: dict[str, int], seq: int, ts: int) -> None:
    prev = None if seq == 1 else H2
    ev = Event.create(key("alice"), "ballot", {"issue": H1, "grades": grades}, seq, prev, ts)
    back = Event.decode(ev.encode())
    assert back == ev
    assert back.id == ev.id
    assert isinstance(back.body, BallotBody)
    assert dict(back.body.grades) == grades
    back.verify()


@settings(max_examples=50)
@given(
    st.lists(st.binary(min_size=32, max_size=32), unique=True, max_size=MAX_TRUSTEES),
    st.sampled_from(["assembly", "area", "issue"]),
)
def test_delegate_round_trip(raws: list[bytes], scope: str) -> None:
    trustees = [PublicKey(r).to_text() for r in raws]
    ev = Event.create(
        key("alice"), "delegate", {"scope": scope, "target": H1, "trustees": trustees}, 1, None, T0
    )
    assert Event.decode(ev.encode()).body == DelegateBody(scope, H1, tuple(trustees))


# --- vectors ----------------------------------------------------------------------------------

VECTOR_SEED = bytes(range(32))


def build_vectors() -> dict[str, Any]:
    """The test vectors, rebuilt from their inputs (Ed25519 signing is deterministic)."""
    sk = SecretKey(VECTOR_SEED)
    a = Author(sk, ts=T0)
    citizen = Author(SecretKey(bytes(range(32, 64))), ts=T0 + 60)
    origin = "lyon.example/liquide"
    specs: list[tuple[Author, str, dict[str, Any]]] = [
        (
            a,
            "assembly",
            assembly_body(
                [(origin, a.pk)], name="Grand Lyon", witnesses=[("witness.example", citizen.pk)]
            ),
        ),
        (a, "enrol", {"key": citizen.pk, "ref": "desk-7/2026-0001"}),
    ]
    out = []
    events = []
    for author, type_, body in specs:
        events.append(author.sign(type_, body))
    asm = events[0]
    area = a.sign("area", {"assembly": asm.id, "name": "Mobilité"})
    iss = a.sign("issue", issue_body(asm.id, area.id, options=("tram", "bus")))
    events += [area, iss]
    events.append(citizen.sign("delegate", {"scope": "area", "target": area.id, "trustees": []}))
    events.append(citizen.sign("ballot", {"issue": iss.id, "grades": {"tram": 1, "bus": -1}}))
    for ev in events:
        out.append(
            {
                "type": ev.type,
                "leaf": ev.encode().decode("utf-8"),
                "unsigned": ev.unsigned_bytes().decode("utf-8"),
                "signed_message_hex": domain_message(ev.type, ev.unsigned_bytes()).hex(),
                "id": ev.id,
                "sig": base64.b64encode(ev.sig).decode(),
            }
        )
    return {
        "description": "Liquide v1 events: leaf = canonical signed event, id = SHA-256(unsigned), "
        "sig = Ed25519(seed) over signed_message. City key from seed 00..1f, citizen key from 20..3f.",
        "city": {"seed_hex": VECTOR_SEED.hex(), "public_key": a.pk, "origin": origin},
        "citizen": {"seed_hex": bytes(range(32, 64)).hex(), "public_key": citizen.pk},
        "events": out,
    }


def test_vectors_file_matches() -> None:
    if os.environ.get("LIQUIDE_WRITE_VECTORS"):
        VECTORS.write_text(json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n")
    stored = json.loads(VECTORS.read_text())
    assert stored == build_vectors()


def test_vectors_check_independently() -> None:
    stored = json.loads(VECTORS.read_text())
    keys = {stored["city"]["public_key"], stored["citizen"]["public_key"]}
    for seed in (stored["city"]["seed_hex"], stored["citizen"]["seed_hex"]):
        assert SecretKey(bytes.fromhex(seed)).public_key.to_text() in keys
    for v in stored["events"]:
        leaf = v["leaf"].encode()
        unsigned = v["unsigned"].encode()
        assert hashlib.sha256(unsigned).hexdigest() == v["id"]
        message = bytes.fromhex(v["signed_message_hex"])
        assert message == b"liquide/v1/" + v["type"].encode() + b"\n" + unsigned
        d = json.loads(leaf)
        assert d.pop("sig") == v["sig"]
        assert encoding.encode(d) == unsigned
        PublicKey.from_text(d["author"]).verify_raw(message, base64.b64decode(v["sig"]))
        ev = Event.decode(leaf)
        assert ev.id == v["id"]
        ev.verify()


def test_protocol_md_quotes_the_vectors() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    stored = json.loads(VECTORS.read_text())
    assert stored["city"]["public_key"] in doc
    assert stored["citizen"]["seed_hex"] in doc
    for v in stored["events"]:
        assert v["leaf"] in doc
        assert v["id"] in doc
    assert stored["events"][-1]["unsigned"] in doc


# --- the fast path of decode equals the general one -------------------------------------------

FAST_TYPES = ("ballot", "delegate", "revoke", "withdraw", "enrol", "unenrol")
KEY_POOL = [pk(n) for n in ("alice", "bob", "carol", "dave")]
BAD_KEYS = [pk("erin")[:-1] + ("q" if pk("erin")[-1] != "q" else "p"), pk("frank").upper(), "x"]
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _outcome(call: Any) -> Any:
    """An event's every field, or the error's class, code and message."""
    try:
        ev = call()
    except (EncodingError, ValidationError) as exc:
        return (type(exc).__name__, exc.code, exc.message)
    fields = ("type", "author", "seq", "prev", "ts", "body", "sig", "id", "leaf", "author_raw")
    return (type(ev), type(ev.body), *(getattr(ev, f) for f in fields), ev.unsigned_bytes())


def _reference(leaf: bytes) -> Any:
    """protocol.encoding.decode, then the general validation path."""
    try:
        encoding.decode(leaf)
    except EncodingError as exc:
        return ("EncodingError", exc.code, exc.message)
    return _outcome(lambda: Event._decode_general(leaf, leaf.decode("utf-8")))


def _check_fast_equals_general(leaf: bytes) -> None:
    from protocol.events import _decode_fast

    ref = _reference(leaf)
    if len(leaf) <= MAX_EVENT_BYTES:
        assert _outcome(lambda: Event.decode(leaf)) == ref
    try:
        text = leaf.decode("utf-8")
    except UnicodeDecodeError:
        return
    fast = _decode_fast(leaf, text)
    if fast is not None:
        assert _outcome(lambda: fast) == ref
        d = encoding.decode(leaf)
        del d["sig"]
        assert fast.unsigned_bytes() == encoding.encode(d)  # the leaf minus its sig member
    elif isinstance(ref[0], type) and ref[2] in FAST_TYPES:
        # Accepted, so the fast path must have taken it unless a reference needs escaping.
        assert ref[2] in ("enrol", "unenrol")
        assert set(ref[7].ref) & {'"', "\\"}


def _mostly(valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any]) -> Any:
    # one_of picks a branch uniformly: most draws are valid, so most events reach the checks
    # that follow the field that is wrong, if any.
    return st.one_of(valid, valid, valid, valid, valid, valid, invalid)


_grade_keys = _mostly(
    option_ids, st.sampled_from(["", "a b", "é", "-a", "a" * 65, "Z", "z", 'a"b', "a\\b"])
)
_grades = _mostly(
    st.integers(-MAX_GRADE, MAX_GRADE),
    st.integers(-(2**54), 2**54)
    | st.sampled_from([MAX_GRADE + 1, -MAX_GRADE - 1, 2**53 - 1, 2**53, 10**10, True, "1"]),
)
_hex = _mostly(st.sampled_from([H1, H2]), st.sampled_from(["A" * 64, "1" * 63, 7, None]))
_scopes = _mostly(st.sampled_from(["assembly", "area", "issue"]), st.sampled_from(["city", 1]))
_keys = _mostly(st.sampled_from(KEY_POOL), st.sampled_from(BAD_KEYS))
_refs = st.lists(
    _mostly(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E),
        st.sampled_from(["é", "e\u0301", "\n", "\x7f", " ", '"', "\\"]),
    ),
    max_size=130,
).map("".join)


@st.composite
def _fast_event_dicts(draw: st.DrawFn) -> dict[str, Any]:
    type_ = draw(st.sampled_from(FAST_TYPES))
    if type_ == "ballot":
        body: Any = {
            "issue": draw(_hex),
            "grades": draw(st.dictionaries(_grade_keys, _grades, max_size=34)),
        }
    elif type_ == "delegate":
        trustees = draw(st.lists(_keys, max_size=10))
        body = {"scope": draw(_scopes), "target": draw(_hex), "trustees": trustees}
    elif type_ == "revoke":
        body = {"scope": draw(_scopes), "target": draw(_hex)}
    elif type_ == "withdraw":
        body = {"issue": draw(_hex)}
    else:
        body = {"key": draw(_keys), "ref": draw(_refs)}
    type_ = draw(_mostly(st.just(type_), st.sampled_from(FAST_TYPES)))  # another type's body
    seq = draw(_mostly(st.integers(1, 2**53 - 1), st.sampled_from([0, 2**53, 10**16 - 1])))
    prev = draw(_mostly(st.just(None if seq == 1 else H2), st.sampled_from([None, H2, "z" * 64])))
    sig = draw(_mostly(st.binary(min_size=64, max_size=64), st.binary(min_size=62, max_size=66)))
    return {
        "v": draw(_mostly(st.just(1), st.sampled_from([2, True]))),
        "type": type_,
        "author": draw(_keys),
        "seq": seq,
        "prev": prev,
        "ts": draw(_mostly(st.integers(0, 2**53 - 1), st.sampled_from([-1, 2**53, 10**16 - 1]))),
        "body": body,
        "sig": base64.b64encode(sig).decode(),
    }


@settings(max_examples=200)
@given(_fast_event_dicts())
def test_fast_path_equals_general_path_on_built_events(d: dict[str, Any]) -> None:
    _check_fast_equals_general(_canonical(d).encode("utf-8"))


@settings(max_examples=200)
@given(
    st.sampled_from(FAST_TYPES),
    st.integers(0, 10_000),
    st.sampled_from(["insert", "delete", "replace"]),
    st.binary(min_size=1, max_size=3),
)
def test_fast_path_equals_general_path_on_mutated_leaves(
    type_: str, pos: int, how: str, data: bytes
) -> None:
    leaf = Author(key("alice")).sign(type_, sample_bodies()[type_], seq=3, prev=H2).encode()
    i = pos % (len(leaf) + 1)
    if how == "insert":
        leaf = leaf[:i] + data + leaf[i:]
    elif how == "delete":
        leaf = leaf[:i] + leaf[i + len(data) :]
    else:
        leaf = leaf[:i] + data + leaf[i + len(data) :]
    _check_fast_equals_general(leaf)


def test_fast_path_takes_the_hot_types() -> None:
    from protocol.events import _decode_fast

    a = Author(key("alice"))
    for type_ in FAST_TYPES:
        leaf = a.sign(type_, sample_bodies()[type_]).encode()
        assert _decode_fast(leaf, leaf.decode()) is not None, type_
        _check_fast_equals_general(leaf)
    empty = a.sign("ballot", {"issue": H1, "grades": {}}).encode()
    assert _decode_fast(empty, empty.decode()) is not None
    _check_fast_equals_general(empty)
    quoted = a.sign("enrol", {"key": pk("bob"), "ref": 'a"b\\c'}).encode()
    assert _decode_fast(quoted, quoted.decode()) is None  # escapes: the general path
    assert Event.decode(quoted).body.ref == 'a"b\\c'
    _check_fast_equals_general(quoted)  # the branch for a reference that needs escapes


@pytest.mark.parametrize(
    "grades",
    [
        {"a": MAX_GRADE},
        {"a": -MAX_GRADE},
        {"a": 0},
        {"a": MAX_GRADE - 1, "b": 1_999_999_999, "c": -1_000_000_000},
        {"a": -9, "b": 10, "c": -999_999_999},
    ],
)
def test_fast_path_takes_every_grade_within_the_bound(grades: dict[str, int]) -> None:
    from protocol.events import _decode_fast

    leaf = Author(key("alice")).sign("ballot", {"issue": H1, "grades": grades}).encode()
    fast = _decode_fast(leaf, leaf.decode())
    assert fast is not None
    assert fast.body == BallotBody(H1, grades)
    _check_fast_equals_general(leaf)


@pytest.mark.parametrize(
    ("type_", "path", "value"),
    [
        ("withdraw", "ts", 2**53),
        ("withdraw", "seq", 2**60),
        ("ballot", "body.grades", {"a": 2**53}),
        ("issue", "body.opens", -(2**53)),
        ("area", "body.name", "e\u0301"),
        ("enrol", "body.ref", "e\u0301"),
        ("assembly.join", "body.assembly.body.name", "e\u0301"),
    ],
)
def test_decode_puts_the_profile_before_the_fields(type_: str, path: str, value: Any) -> None:
    """A value outside the encoding profile is non_canonical, as encoding.decode says (§3.1)."""
    ev = Author(key("alice")).sign(type_, sample_bodies()[type_])
    leaf = _canonical(_mutate(ev.to_dict(), path, value)).encode("utf-8")
    with pytest.raises(EncodingError) as ref:
        encoding.decode(leaf)
    with pytest.raises(EncodingError) as exc:
        Event.decode(leaf)
    assert exc.value.code == "non_canonical"
    assert exc.value.message == ref.value.message
    _check_fast_equals_general(leaf)


def _fast_leaf(type_: str, body: dict[str, Any], **over: Any) -> str:
    return Author(key("alice")).sign(type_, body, **over).encode().decode()


_BALLOT = _fast_leaf("ballot", {"issue": H1, "grades": {"a": 1, "b": 2}})
_DELEGATE = _fast_leaf("delegate", {"scope": "area", "target": H1, "trustees": [pk("bob")]})
_ENROL = _fast_leaf("enrol", {"key": pk("bob"), "ref": "r1"})
_WITHDRAW = _fast_leaf("withdraw", {"issue": H1}, seq=2, prev=H2)


# Each edit breaks exactly one rule that the fast path checks after its pattern matched.
@pytest.mark.parametrize(
    ("leaf", "old", "new"),
    [
        (_BALLOT, '"a":1,"b":2', '"b":2,"a":1'),  # unsorted grade keys
        (_BALLOT, '"a":1,"b":2', '"a":1,"a":2'),  # a repeated grade key
        (_BALLOT, '"b":2', f'"b":{MAX_GRADE + 1}'),
        (_BALLOT, '"b":2', f'"b":-{MAX_GRADE + 1}'),
        (_BALLOT, '"a":1,"b":2', ",".join(f'"o{i:02}":1' for i in range(33))),
        (_DELEGATE, f'["{pk("bob")}"]', "[" + ",".join(f'"{pk(f"t{i}")}"' for i in range(9)) + "]"),
        (_DELEGATE, f'["{pk("bob")}"]', f'["{pk("bob")}","{pk("bob")}"]'),
        (_DELEGATE, f'["{pk("bob")}"]', f'["{pk("alice")}"]'),
        (_DELEGATE, f'["{pk("bob")}"]', f'["{BAD_KEYS[0]}"]'),
        (_ENROL, pk("bob"), BAD_KEYS[0]),
        (_ENROL, pk("alice"), BAD_KEYS[0]),  # the author
        (_WITHDRAW, '"seq":2', '"seq":9007199254740992'),
        (_BALLOT, '"b":2', '"b":-0'),  # numbers in their canonical form only
        (_BALLOT, '"b":2', '"b":02'),
        (_WITHDRAW, '"seq":2', '"seq":02'),
        (_BALLOT, '"ts":1700000000', '"ts":01700000000'),
        (_BALLOT, '"ts":1700000000', '"ts":9007199254740992'),
        (_BALLOT, '"prev":null', f'"prev":"{H2}"'),  # a prev at seq 1
        (_WITHDRAW, f'"prev":"{H2}"', '"prev":null'),  # no prev after seq 1
    ],
)
def test_fast_path_defers_each_rule_to_the_general_path(leaf: str, old: str, new: str) -> None:
    from protocol.events import _decode_fast

    assert old in leaf
    bad = leaf.replace(old, new, 1).encode()
    assert _decode_fast(bad, bad.decode()) is None
    with pytest.raises((EncodingError, ValidationError)):
        Event.decode(bad)
    _check_fast_equals_general(bad)


@pytest.mark.parametrize("char", ["-", "=", ".", "é", " ", "_"])
def test_fast_path_defers_a_signature_outside_base64(char: str) -> None:
    from protocol.events import _decode_fast

    sig = json.loads(_BALLOT)["sig"]
    bad = _BALLOT.replace(sig, sig[:10] + char + sig[11:], 1).encode()
    assert _decode_fast(bad, bad.decode()) is None
    with pytest.raises((EncodingError, ValidationError)):
        Event.decode(bad)
    _check_fast_equals_general(bad)


def test_signed_message_is_what_libsodium_checks() -> None:
    import nacl.bindings
    import nacl.exceptions

    sk = SecretKey(bytes(range(32)))
    ev = Event.create(sk, "withdraw", {"issue": "ab" * 32}, 1, None, 1_700_000_000)
    sm = ev.signed_message()
    assert sm == ev.sig + domain_message("withdraw", ev.unsigned_bytes())
    assert nacl.bindings.crypto_sign_open(sm, ev.author_raw) == domain_message(
        "withdraw", ev.unsigned_bytes()
    )
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.bindings.crypto_sign_open(sm[:-1] + bytes([sm[-1] ^ 1]), ev.author_raw)
