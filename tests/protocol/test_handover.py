"""A city's key rotation in replay: the key schedule, the new key's own chain, the old key's
retirement, and the schedule surviving serialisation."""

from __future__ import annotations

import pytest

from protocol import encoding
from protocol.errors import ValidationError
from protocol.state import State, replay

from ._events_factory import Author, assembly_body, key
from .test_state import A, B, World


def handed_over(w: World) -> tuple[list[bytes], int]:
    """A's base log, then a handover to ``w.a2``; returns the leaves and the handover's index."""
    log = w.base("a")
    h = len(log)
    log.append(w.a.sign("handover", {"key": w.a2.pk}).leaf)
    return log, h


def test_the_new_key_signs_from_the_next_leaf_with_its_own_chain() -> None:
    w = World()
    log, h = handed_over(w)
    dave = Author(key("dave"))
    enrol = w.a2.sign("enrol", {"key": dave.pk, "ref": "r-dave"})
    assert enrol.seq == 1  # the new key's chain starts afresh
    log += [enrol.leaf, w.a2.sign("seal", {"issue": w.issue.id}).leaf]
    r = replay(A, w.a.pk, log)
    assert r.findings == ()
    s = r.state
    assert s.key == w.a.pk  # the pinned key stays the anchor
    assert s.city_key == w.a2.pk
    assert s.handovers == [(h, w.a2.pk)]
    assert s.city_keys() == [w.a.pk, w.a2.pk]
    assert dave.pk in s.enrolled
    assert w.issue.id in s.seals


def test_key_at_gives_the_key_that_signs_each_checkpoint_size() -> None:
    w = World()
    log, h = handed_over(w)
    a3 = Author(key("city-a-3"))
    log.append(w.a2.sign("handover", {"key": a3.pk}).leaf)
    s = replay(A, w.a.pk, log).state
    # a checkpoint of n leaves is signed by the key in effect after leaf n-1
    assert [s.key_at(n) for n in range(len(log) + 1)] == ([w.a.pk] * (h + 1) + [w.a2.pk] + [a3.pk])
    with pytest.raises(ValueError, match="not known"):
        s.key_at(len(log) + 1)


def test_a_state_pinned_to_the_new_key_refuses_the_old_history() -> None:
    """Trust follows handovers forward from the pin, never backward: replaying the log from
    the new key finds the old key's events ``not_city``."""
    w = World()
    log, _h = handed_over(w)
    r = replay(A, w.a2.pk, log)
    assert {f.reason for f in r.findings} == {"not_city"}
    assert r.state.handovers == []


def test_the_own_city_defines_and_joins_with_its_new_key() -> None:
    """A definition signed by this city's new key counts as the member's (it is in this log's
    schedule); the members still pin the anchor key."""
    w = World()
    log, _h = handed_over(w)
    asm = w.a2.sign("assembly", assembly_body([(A, w.a.pk), (B, w.b.pk)], name="Nouvelle"))
    log.append(asm.leaf)
    r = replay(A, w.a.pk, log)
    assert r.findings == ()
    assert asm.id in r.state.assemblies
    # B's log does not know A's handover: the definition is signed by a key B cannot pin
    b_log = [*w.base("b"), w.b.sign("assembly.join", {"assembly": asm.to_dict()}).leaf]
    rb = replay(B, w.b.pk, b_log)
    assert [f.reason for f in rb.findings] == ["bad_definition"]


def test_the_schedule_survives_serialisation_and_bad_schedules_are_refused() -> None:
    w = World()
    log, h = handed_over(w)
    s = replay(A, w.a.pk, log).state
    d = encoding.decode(encoding.encode(s.to_dict()))
    back = State.from_dict(d)
    assert back == s
    assert back.city_key == w.a2.pk
    assert back.key_at(h + 1) == w.a2.pk
    copy = s.copy()
    assert copy == s
    assert copy.handovers is not s.handovers
    for bad, match in (
        ([{"index": h, "key": w.a.pk}], "already used"),
        ([{"index": len(log), "key": w.a2.pk}], "below state.size"),
        ([{"index": h, "key": w.a2.pk}, {"index": h, "key": w.b.pk}], "must grow"),
        ([{"index": h}], "missing"),
        ({}, "array"),
    ):
        with pytest.raises(ValidationError, match=match):
            State.from_dict({**d, "handovers": bad})
    # two states that differ only in their schedule are not equal
    other = State.from_dict({**d, "handovers": []})
    assert other != s
