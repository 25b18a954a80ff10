"""Drafts: frozen slotted dataclasses built fast, where a pass builds them by the thousand.

A frozen dataclass's ``__init__`` sets each slot through ``object.__setattr__``: a call per
field. On a hot path an object is filled as a *draft* instead, an instance of a plain class with
the very same slots, where an attribute store is the interpreter's cheapest, and it then gets
its own class: CPython allows assigning ``__class__`` between classes of one layout (same base,
same slots). The object is the one the dataclass builds, in less than half the time; each user's
tests compare the two field by field::

    ev = new(_EventDraft)
    ev.type = ...
    ev.__class__ = Event
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

__all__ = ["draft", "new"]

new = object.__new__


def draft(cls: type, base: type = object) -> Any:
    """The draft class of the frozen slotted dataclass ``cls``; ``base`` is the draft of
    ``cls``'s base class when that base has slots of its own."""
    slots = cls.__dict__["__slots__"]
    inherited = set(getattr(base, "__slots__", ()))
    assert set(slots) | inherited == {f.name for f in fields(cls)}, cls  # every field, once
    return type(f"_{cls.__name__}Draft", (base,), {"__slots__": slots})
