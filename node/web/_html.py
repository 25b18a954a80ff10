"""Escape-safe HTML building for the web pages: every interpolated value is escaped.

A :class:`Markup` is a string already known to be safe HTML; :func:`h` builds an element from
a tag, attributes and children, escaping every child that is not :class:`Markup` and every
attribute value. Templates are plain Python functions over these two, so there is no template
language, no dependency and no way to forget an escape.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TypeAlias

__all__ = ["Child", "Markup", "esc", "h", "join"]

_VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "source", "wbr"})


class Markup(str):
    """A string that is safe HTML as it is (built by :func:`h`, :func:`esc` or :func:`join`)."""

    __slots__ = ()


Child: TypeAlias = "Markup | str | int | Iterable[Child] | None"


def esc(value: object) -> Markup:
    """Return ``value`` as escaped text (quotes included); Markup passes through unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def _render(child: Child, out: list[str]) -> None:
    if child is None or child is False:
        return
    if isinstance(child, Markup):
        out.append(child)
    elif isinstance(child, str):
        out.append(html.escape(child, quote=False))
    elif isinstance(child, int):
        out.append(str(child))
    else:
        for c in child:
            _render(c, out)


def join(*children: Child) -> Markup:
    """Concatenate children (escaping the plain strings among them)."""
    out: list[str] = []
    _render(children, out)
    return Markup("".join(out))


def h(tag: str, attrs: dict[str, object] | None = None, *children: Child) -> Markup:
    """Return the element ``<tag attrs>children</tag>``.

    Attribute names ending in ``_`` lose it (``class_`` → ``class``) and ``_`` becomes ``-``
    otherwise (``aria_label`` → ``aria-label``); a value of None or False omits the attribute
    and True writes it bare. Void elements (``input``, ``meta``…) take no children.
    """
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        key = name[:-1] if name.endswith("_") else name.replace("_", "-")
        if value is True:
            parts.append(key)
        else:
            parts.append(f'{key}="{html.escape(str(value), quote=True)}"')
    opening = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Markup(opening)
    out: list[str] = [opening]
    _render(children, out)
    out.append(f"</{tag}>")
    return Markup("".join(out))
