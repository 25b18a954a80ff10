"""The observer's ``--html`` report: one self-contained static page (no scripts, no fetches).

Each tallied issue's options are drawn as inline SVG bars (approvals and disapprovals), followed
by the eight steps with their counts and every finding. Accessibility: headings go in order
(h1, h2, h3), every SVG has a ``<title>`` and ``role="img"``, colour is never the only carrier of
meaning (each bar is labelled with its numbers), and the verdict is text.
"""

from __future__ import annotations

from html import escape
from typing import Final

from protocol.verify import IssueResult, Report

__all__ = ["render"]

_CSS: Final = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
.verdict{font-size:1.4rem;font-weight:bold;padding:.5rem 1rem;border:3px solid;display:inline-block}
.PASS{color:#0a5c1f;border-color:#0a5c1f}.FAIL{color:#9b0d0d;border-color:#9b0d0d}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}
.error{color:#9b0d0d}.warning{color:#7a4a00}.info{color:#333}
code{font-size:.85em;word-break:break-all}
"""


def _bars(issue: IssueResult) -> str:
    options = issue.options
    top = max([o.positive + o.negative for o in options] + [1])
    row_h, label_w, bar_w = 28, 160, 420
    height = row_h * len(options) + 10
    parts = [
        (
            f'<svg role="img" width="{label_w + bar_w + 140}" height="{height}" '
            f'viewBox="0 0 {label_w + bar_w + 140} {height}" aria-labelledby="t-{issue.id[:12]}">'
        ),
        (
            f'<title id="t-{issue.id[:12]}">Results of {escape(issue.title)}: approvals and '
            "disapprovals per option</title>"
        ),
    ]
    for i, o in enumerate(options):
        y = 5 + i * row_h
        pos = round(bar_w * o.positive / top)
        neg = round(bar_w * o.negative / top)
        mark = " (winner)" if o.winner else ""
        parts.append(
            f'<text x="0" y="{y + 17}" font-size="13">{escape(o.title[:24])}{mark}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{pos}" height="18" fill="#2a7d3f">'
            f"<title>{escape(o.id)}: {o.positive} approve</title></rect>"
            f'<rect x="{label_w + pos}" y="{y + 3}" width="{neg}" height="18" fill="#b33a3a">'
            f"<title>{escape(o.id)}: {o.negative} disapprove</title></rect>"
            f'<text x="{label_w + pos + neg + 6}" y="{y + 17}" font-size="13">'
            f"+{o.positive} / −{o.negative}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _issue(issue: IssueResult) -> str:
    out = [f"<h3>{escape(issue.title)}</h3>", f"<p>Issue <code>{issue.id}</code>: {issue.status}."]
    if issue.status == "tallied":
        winner = escape(issue.winner) if issue.winner else "none (the status quo stays)"
        out.append(
            f" Winner: <strong>{winner}</strong>. Record <code>{issue.record}</code>, "
            f"result digest <code>{issue.digest}</code>, {issue.voters} voters.</p>"
        )
        out.append(_bars(issue))
        out.append(
            '<table><caption>Options</caption><thead><tr><th scope="col">Option</th>'
            '<th scope="col">Approve</th><th scope="col">Disapprove</th>'
            '<th scope="col">Rank</th></tr></thead><tbody>'
        )
        out.extend(
            f"<tr><td>{escape(o.title)} (<code>{escape(o.id)}</code>)</td><td>{o.positive}</td>"
            f"<td>{o.negative}</td><td>{'' if o.rank is None else o.rank}</td></tr>"
            for o in issue.options
        )
        out.append("</tbody></table>")
    else:
        out.append("</p>")
    return "".join(out)


def render(report: Report) -> str:
    """Return the HTML page of ``report`` (UTF-8 text, self-contained)."""
    v = report.verdict
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Liquide verification: {v}</title><style>{_CSS}</style></head><body>",
        "<main>",
        "<h1>Liquide verification report</h1>",
        f'<p class="verdict {v}">{v}</p>',
    ]
    if report.assembly:
        body.append(f"<p>Assembly <code>{report.assembly}</code>.</p>")
    if report.nodes:
        body.append(
            "<p>Material from: "
            + ", ".join(f"<code>{escape(n)}</code>" for n in report.nodes)
            + ".</p>"
        )
    body.append("<h2>Issues</h2>")
    if report.issues:
        body.extend(_issue(i) for i in report.issues)
    else:
        body.append("<p>No issue of the assembly was found.</p>")
    body.append("<h2>Steps</h2>")
    for n, step in sorted(report.steps.items()):
        status = "PASS" if step.passed else "FAIL"
        body.append(f"<h3>{n}. {escape(step.title)}: {status}</h3>")
        if step.counts:
            body.append(
                "<ul>"
                + "".join(f"<li>{escape(k)}: {c}</li>" for k, c in sorted(step.counts.items()))
                + "</ul>"
            )
        if step.findings:
            body.append(
                '<table><caption>Findings</caption><thead><tr><th scope="col">Severity</th>'
                '<th scope="col">Code</th><th scope="col">Item</th><th scope="col">Message</th>'
                "</tr></thead><tbody>"
            )
            body.extend(
                f'<tr class="{f.severity}"><td>{f.severity}</td><td><code>{escape(f.code)}</code>'
                f"</td><td>{escape(f.where())}</td><td>{escape(f.message)}</td></tr>"
                for f in step.findings
            )
            body.append("</tbody></table>")
    body.append("</main></body></html>")
    return "\n".join(body) + "\n"
