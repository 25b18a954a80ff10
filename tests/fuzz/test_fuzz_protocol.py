"""Fuzzing of the pure core: the decoder, every event type, replay, chains and state.

Every input is either accepted (and then round-trips byte for byte) or refused with a
:class:`~crypto.LiquideError` whose message names the problem; nothing else ever escapes, and a
refused event leaves the replay state untouched.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import BadSignatureError, LiquideError
from protocol.chain import EquivocationProof
from protocol.encoding import decode, encode
from protocol.errors import EncodingError, ProtocolError, ValidationError
from protocol.events import CITY_TYPES, Event
from protocol.state import State

from ._gen import CITY, ORIGIN, T0, fuzz_settings, json_values, mutated, mutated_bytes, valid_events

EVENTS = valid_events()
TYPES = sorted(EVENTS)


def _names_problem(exc: LiquideError, *, field: bool = False) -> None:
    assert isinstance(exc.code, str)
    assert exc.code
    assert isinstance(exc.message, str)
    assert len(exc.message) >= 8
    if field:
        # The message starts with the path of the field at fault ("event.body.scope: …").
        assert ": " in exc.message, exc.message


@fuzz_settings(200)
@given(st.binary(max_size=300) | st.sampled_from(list(EVENTS.values())).map(Event.encode))
def test_decode_accepts_only_canonical_bytes(data: bytes) -> None:
    try:
        obj = decode(data)
    except EncodingError as exc:
        _names_problem(exc)
        return
    assert encode(obj) == data


@fuzz_settings(200)
@given(st.data())
def test_decode_refuses_mutated_canonical_bytes_with_an_encoding_error(data: st.DataObject) -> None:
    leaf = EVENTS[data.draw(st.sampled_from(TYPES))].encode()
    bad = data.draw(mutated_bytes(leaf))
    try:
        obj = decode(bad)
    except EncodingError as exc:
        _names_problem(exc)
        return
    assert encode(obj) == bad


@fuzz_settings(200)
@given(json_values)
def test_encode_accepts_the_profile_or_names_the_defect(value: object) -> None:
    try:
        data = encode(value)
    except EncodingError as exc:
        _names_problem(exc)
        return
    assert encode(decode(data)) == data


def test_deep_nesting_and_huge_numbers_are_refused_quickly() -> None:
    for bad in (
        b"[" * 100_000 + b"]" * 100_000,
        b"1" * 60_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
    ):
        with pytest.raises(EncodingError):
            decode(bad)


@pytest.mark.parametrize("type_", TYPES)
@fuzz_settings(30)
@given(data=st.data())
def test_every_event_type_refuses_mutations_naming_the_field(
    type_: str, data: st.DataObject
) -> None:
    ev = EVENTS[type_]
    doc = data.draw(mutated(ev.to_dict()))
    try:
        got = Event.from_dict(doc)
    except (ValidationError, EncodingError) as exc:
        _names_problem(exc, field=isinstance(exc, ValidationError))
        return
    # Accepted: a well-formed event. Its bytes round-trip, and a changed event fails its signature.
    assert Event.decode(got.encode()).encode() == got.encode()
    if got.unsigned_bytes() != ev.unsigned_bytes() or got.type != ev.type:
        with pytest.raises(BadSignatureError):
            got.verify()


@pytest.mark.parametrize("type_", TYPES)
@fuzz_settings(20)
@given(data=st.data())
def test_event_decode_of_mutated_leaves_raises_only_protocol_errors(
    type_: str, data: st.DataObject
) -> None:
    leaf = data.draw(mutated_bytes(EVENTS[type_].encode()))
    try:
        ev = Event.decode(leaf)
    except ProtocolError as exc:
        _names_problem(exc)
        return
    assert ev.encode() == leaf


def _city_state() -> tuple[State, int]:
    state = State(ORIGIN, CITY.public_key.to_text())
    n = 0
    for t in ("assembly", "area", "issue", "enrol"):
        ev = EVENTS[t]
        assert state.apply(n, ev.encode()) == []
        n += 1
    return state, n


@fuzz_settings(150)
@given(data=st.data())
def test_state_check_refuses_resigned_mutations_and_keeps_the_state(data: st.DataObject) -> None:
    """Mutated bodies, re-signed by a valid key, reach the governance rules; refusals change nothing."""
    state, _n = _city_state()
    before = state.to_dict()
    type_ = data.draw(st.sampled_from(TYPES))
    ev = EVENTS[type_]
    body = data.draw(mutated(ev.body.to_dict()))  # type: ignore[attr-defined]
    if not isinstance(body, dict):  # Event.create takes a mapping (typed API, not wire input)
        body = {"body": body}
    signer = CITY if ev.author == CITY.public_key.to_text() else None
    from ._gen import sk

    key = signer or sk("alice")
    seq = data.draw(st.integers(1, 12))
    prev = None if seq == 1 else data.draw(st.sampled_from([None, EVENTS["enrol"].id, "f" * 64]))
    try:
        candidate = Event.create(key, type_, body, seq, prev, ev.ts)
    except (ValidationError, EncodingError) as exc:
        _names_problem(exc)
        return
    try:
        state.check(candidate)
    except ProtocolError as exc:
        _names_problem(exc)
        assert state.to_dict() == before
        return
    assert state.to_dict() == before  # check never changes the state, accepted or not


@fuzz_settings(150)
@given(data=st.data())
def test_replay_turns_any_leaf_into_findings_never_an_exception(data: st.DataObject) -> None:
    state, n = _city_state()
    leaves = data.draw(
        st.lists(
            st.sampled_from(TYPES).flatmap(lambda t: mutated_bytes(EVENTS[t].encode()))
            | st.sampled_from(TYPES).map(lambda t: EVENTS[t].encode())
            | st.binary(max_size=64),
            min_size=1,
            max_size=6,
        )
    )
    for i, leaf in enumerate(leaves):
        findings = state.apply(n + i, leaf)
        for f in findings:
            assert f.reason
            assert f.message
            assert f.index == n + i
    restored = State.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.to_dict() == state.to_dict()


@fuzz_settings(100)
@given(data=st.data())
def test_equivocation_proofs_from_hostile_dicts(data: st.DataObject) -> None:
    a = EVENTS["delegate"]
    from ._gen import sk

    b = Event.create(
        sk("alice"), "delegate", {**a.body.to_dict(), "trustees": []}, a.seq, a.prev, a.ts
    )  # type: ignore[attr-defined]
    good = EquivocationProof.of(a, b).to_dict()
    doc = data.draw(mutated(good) | st.just(good))
    try:
        proof = EquivocationProof.from_dict(doc)
        proof.verify()
    except ProtocolError as exc:
        _names_problem(exc)
        return
    assert {proof.first.id, proof.second.id} == {a.id, b.id}


@pytest.mark.parametrize("type_", sorted(CITY_TYPES))
def test_after_a_handover_every_city_type_by_the_old_key_is_a_retired_key_finding(
    type_: str,
) -> None:
    """Once the city key hands over, each city event type signed by the old key is refused
    with ``retired_key`` (naming the key in effect), by replay and by check alike."""
    from ._gen import sk

    state, n = _city_state()
    new = sk("city-2").public_key.to_text()
    old = CITY.public_key.to_text()
    head = state.head(old)
    assert head is not None
    handover = Event.create(CITY, "handover", {"key": new}, head.seq + 1, head.id, T0)
    assert state.apply(n, handover.encode()) == []
    assert state.key_at(n) == old
    assert state.key_at(n + 1) == state.city_key == new
    ev = Event.create(CITY, type_, EVENTS[type_].body.to_dict(), head.seq + 2, handover.id, T0)  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as exc:
        state.check(ev)
    assert exc.value.code == "retired_key"
    assert new in exc.value.message
    [finding] = state.apply(n + 1, ev.encode())
    assert finding.reason == "retired_key"


@pytest.mark.parametrize(
    "extra",
    [{"name": "Alice Martin"}, {"address": "3 rue X"}, {"birth": 1990}, {"email": "a@b.example"}],
)
def test_an_enrolment_carries_only_a_key_and_an_opaque_reference(extra: dict[str, object]) -> None:
    """No personal data enters a log: an enrol body with any field besides key and ref is refused,
    and the reference is a short printable-ASCII token (no spaces: not a name or an address)."""
    body = {"key": EVENTS["enrol"].body.to_dict()["key"], "ref": "reg-0001", **extra}  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="body"):
        Event.create(CITY, "enrol", body, 1, None, 0)
    with pytest.raises(ValidationError, match="ref"):
        Event.create(CITY, "enrol", {"key": body["key"], "ref": "Alice Martin"}, 1, None, 0)
