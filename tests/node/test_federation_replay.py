"""The federation's replay of the own log takes the events the writer committed instead of
decoding the stored leaves again, and ends in the state a replay of the stored log gives."""

from __future__ import annotations

from dataclasses import replace

from protocol.events import Event
from protocol.state import State

from .test_federation_harness import Sim


async def test_own_replay_takes_committed_events_and_matches_the_stored_log(sim: Sim) -> None:
    (a,) = await sim.line(["a"])
    for name in ("ann", "bob", "cy"):
        await a.enrol_citizen(name)
    await a.admin(
        lambda w: w.append_own(
            "unenrol", {"key": a.citizens["bob"].public_key.to_text(), "ref": "gone"}
        )
    )
    fed = a.fed
    assert len(fed._fresh) >= 4  # each committed own event waits for the replay
    await fed.query(fed.replay_all)
    assert fed._fresh == {}  # all taken
    size = a.node.writer.size
    stored = State(a.origin, a.key, leaves=lambda i: a.node.store.leaf(a.origin, i))
    for i in range(size):
        stored.apply(i, a.node.store.leaf(a.origin, i))
    own = fed._logs[a.origin].state
    assert own.size == stored.size == size
    assert own.to_dict() == stored.to_dict()
    assert a.citizens["bob"].public_key.to_text() not in own.enrolled
    assert fed._logs[a.origin].findings == []


async def test_a_committed_event_unlike_the_stored_leaf_is_not_taken(sim: Sim) -> None:
    (a,) = await sim.line(["a"])
    await a.enrol_citizen("ann")
    fed = a.fed
    await fed.query(fed.replay_all)
    await a.enrol_citizen("bob")
    index = a.node.writer.size - 1
    stored = a.node.store.leaf(a.origin, index)
    ev = fed._fresh[index]
    assert ev.leaf == stored
    # An entry whose bytes differ from the store's (it never should) is decoded from the store.
    other = Event.decode(a.node.store.leaf(a.origin, index - 1))
    fed._fresh[index] = replace(other)
    (taken,) = fed._take_fresh(index, [stored])
    assert taken is None
    fed._fresh[index] = ev
    (taken,) = fed._take_fresh(index, [stored])
    assert taken is ev


async def test_a_stalled_replay_holds_a_bounded_number_of_events(sim: Sim, monkeypatch) -> None:
    import node._federation as federation

    (a,) = await sim.line(["a"])
    monkeypatch.setattr(federation, "_FRESH_MAX", 2)
    for name in ("ann", "bob", "cy"):
        await a.enrol_citizen(name)
    fed = a.fed
    assert len(fed._fresh) == 2  # the third waits in the store only
    await fed.query(fed.replay_all)
    assert fed._fresh == {}
    assert fed._logs[a.origin].state.size == a.node.writer.size
    assert all(
        a.citizens[n].public_key.to_text() in fed._logs[a.origin].state.enrolled for n in a.citizens
    )
