"""Inline SVG charts of the issue page: the Schulze ranking's votes and the delegation flow.

Both are plain SVG built with :func:`node.web._html.h` (so every label is escaped), sized by a
``viewBox`` so that they scale with the page, and accessible: ``role="img"`` with a ``<title>``
and a ``<desc>`` referenced by ``aria-labelledby``, a ``<title>`` on every bar (a tooltip), and
numbers written next to the bars so that colour never carries meaning alone. A table with the
same figures follows each chart on the page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from ._html import Markup, h
from ._i18n import Translator

__all__ = ["COLOURS", "flow_svg", "ranking_svg", "short_key"]

#: Okabe–Ito colours (distinguishable with the common colour-vision deficiencies).
COLOURS = {
    "for": "#009e73",
    "against": "#d55e00",
    "own": "#0072b2",
    "assembly": "#56b4e9",
    "area": "#e69f00",
    "issue": "#cc79a7",
}
_TEXT = "#1b1b1b"
_MUTED = "#5b5b5b"


@functools.lru_cache(maxsize=8192)
def short_key(key: str) -> str:
    """A short, stable label for a voter: the key's fingerprint, else its first characters."""
    from crypto import PublicKey

    try:
        return PublicKey.from_text(key).fingerprint()
    except Exception:  # noqa: BLE001 (ids of foreign tallies need not be keys)
        return key if len(key) <= 12 else key[:11] + "…"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _frame(uid: str, width: int, height: int, title: str, desc: str, *body: Markup) -> Markup:
    return h(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height}",
            "width": "100%",
            "role": "img",
            "aria_labelledby": f"{uid}-t {uid}-d",
            "class_": "chart",
            "font_family": "system-ui, sans-serif",
            "font_size": "13",
        },
        h("title", {"id": f"{uid}-t"}, title),
        h("desc", {"id": f"{uid}-d"}, desc),
        *body,
    )


def ranking_svg(
    options: Sequence[dict[str, Any]], sq_rank: int, t: Translator, uid: str = "rank"
) -> Markup:
    """Diverging bars per option in Schulze order: disapprovals left, approvals right.

    A dashed rule marks where the status quo falls in the ranking.
    """
    label_w, half, pad, row = 200, 210, 12, 34
    width = label_w + 2 * half + 2 * pad + 70
    mid = label_w + pad + half + 35
    scale = max([1] + [max(o["positive_votes"], o["negative_votes"]) for o in options])
    rows: list[Markup] = []
    y = 28
    sq_drawn = False
    rows.append(
        h(
            "text",
            {"x": mid - 6, "y": 16, "text_anchor": "end", "fill": _MUTED},
            "← " + t("issue.col.against"),
        )
    )
    rows.append(h("text", {"x": mid + 6, "y": 16, "fill": _MUTED}, t("issue.col.for") + " →"))
    for o in options:
        if not sq_drawn and o["schulze_rank"] >= sq_rank:
            rows.append(_sq_rule(y, width, t))
            y += 18
            sq_drawn = True
        pos = round(half * o["positive_votes"] / scale)
        neg = round(half * o["negative_votes"] / scale)
        label = ("★ " if o.get("winner") else "") + _clip(str(o["title"]), 26)
        rows.append(
            h(
                "g",
                {"class_": "bar"},
                h(
                    "title",
                    None,
                    f"{o['title']}: {t('issue.col.for')} {t.num(o['positive_votes'])}, "
                    f"{t('issue.col.against')} {t.num(o['negative_votes'])}",
                ),
                h(
                    "text",
                    {
                        "x": label_w,
                        "y": y + 17,
                        "text_anchor": "end",
                        "fill": _TEXT,
                        "font_weight": "bold" if o.get("winner") else None,
                    },
                    label,
                ),
                h(
                    "rect",
                    {
                        "x": mid - neg,
                        "y": y + 4,
                        "width": neg,
                        "height": row - 12,
                        "fill": COLOURS["against"],
                    },
                ),
                h(
                    "rect",
                    {
                        "x": mid,
                        "y": y + 4,
                        "width": pos,
                        "height": row - 12,
                        "fill": COLOURS["for"],
                    },
                ),
                h(
                    "text",
                    {"x": mid - neg - 4, "y": y + 17, "text_anchor": "end", "fill": _TEXT},
                    t.num(o["negative_votes"]),
                ),
                h(
                    "text",
                    {"x": mid + pos + 4, "y": y + 17, "fill": _TEXT},
                    t.num(o["positive_votes"]),
                ),
            )
        )
        y += row
    if not sq_drawn:
        rows.append(_sq_rule(y, width, t))
        y += 18
    rows.append(h("line", {"x1": mid, "x2": mid, "y1": 22, "y2": y, "stroke": _TEXT}))
    return _frame(uid, width, y + 6, t("issue.ranking.svg"), t("issue.ranking.desc"), *rows)


def _sq_rule(y: int, width: int, t: Translator) -> Markup:
    return h(
        "g",
        {"class_": "statusquo"},
        h("title", None, t("issue.statusquo")),
        h(
            "line",
            {
                "x1": 8,
                "x2": width - 8,
                "y1": y + 9,
                "y2": y + 9,
                "stroke": _MUTED,
                "stroke_dasharray": "4 3",
            },
        ),
        h(
            "text",
            {"x": 8, "y": y + 6, "fill": _MUTED, "font_size": "11"},
            t("issue.statusquo"),
        ),
    )


def flow_svg(
    flow: Sequence[dict[str, Any]],
    t: Translator,
    href: Callable[[str], str],
    uid: str = "flow",
) -> Markup:
    """Stacked bars per casting voter: own vote, then weight delegated per scope.

    Each voter's label links to their voter page (``href(key)``).
    """
    label_w, bar_w, row = 120, 420, 28
    width = label_w + bar_w + 90
    scale = max([1] + [f["weight"] for f in flow])
    parts = ("own", "assembly", "area", "issue")
    legend: list[Markup] = []
    x = 0
    for p in parts:
        name = t(f"scope.{p}")
        legend.append(
            h(
                "g",
                None,
                h("rect", {"x": x, "y": 4, "width": 12, "height": 12, "fill": COLOURS[p]}),
                h("text", {"x": x + 16, "y": 14, "fill": _TEXT, "font_size": "12"}, name),
            )
        )
        x += 24 + 7 * len(name)
    rows: list[Markup] = [h("g", {"class_": "legend"}, *legend)]
    y = 28
    for f in flow:
        segs: list[Markup] = []
        bx = label_w + 8
        for p in parts:
            w = bar_w * f[p] / scale
            if f[p] <= 0:
                continue
            segs.append(
                h(
                    "rect",
                    {
                        "x": round(bx, 2),
                        "y": y + 4,
                        "width": round(w, 2),
                        "height": row - 10,
                        "fill": COLOURS[p],
                    },
                    h("title", None, f"{t(f'scope.{p}')}: {t.num(f[p])}"),
                )
            )
            bx += w
        key = str(f["voter"])
        rows.append(
            h(
                "g",
                {"class_": "bar"},
                h("title", None, f"{key}: {t.num(f['weight'])}"),
                h(
                    "a",
                    # Mouse shortcut only: the table after the chart holds the same links for
                    # keyboards and screen readers (an image's content is not announced).
                    {"href": href(key), "tabindex": "-1"},
                    h(
                        "text",
                        {
                            "x": label_w,
                            "y": y + 17,
                            "text_anchor": "end",
                            "fill": "#0b57d0",
                            "font_family": "ui-monospace, monospace",
                        },
                        short_key(key),
                    ),
                ),
                *segs,
                h("text", {"x": round(bx + 6, 2), "y": y + 17, "fill": _TEXT}, t.num(f["weight"])),
            )
        )
        y += row
    return _frame(uid, width, y + 4, t("issue.flow.svg"), t("issue.flow.desc"), *rows)
