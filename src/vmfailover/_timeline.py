"""Points in time on one line, as inline SVG: which were tried, how each came out, which won.

A clean-point search shows its recovery points this way in Jupyter: every point a tick on the
time line, the tried ones as larger dots (green passed, red failed) with the round that tried
them, the chosen one ringed. Plain SVG with ``<title>`` tooltips; no JavaScript.

A leaf: it imports only the other leaf renderer (its escaping), so any layer may use it. Every
label is escaped, and characters XML cannot hold are replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from vmfailover._svg import escape

__all__ = ["STATUSES", "svg_timeline"]

#: What a mark may say of its point, and how it is drawn (fill colour, radius).
STATUSES = {
    "untried": ("#cbd5e1", 3.0),
    "good": ("#16a34a", 6.0),
    "bad": ("#dc2626", 6.0),
}

_WIDTH = 760
_MARGIN = 24
_AXIS_Y = 58
_HEIGHT = 96


def svg_timeline(
    marks: Sequence[tuple[datetime, str, str, str]], *, chosen: int | None = None, title: str = ""
) -> str:
    """An SVG time line of ``marks``: ``(when, status, label above the dot, tooltip)`` each,
    ``status`` one of :data:`STATUSES`; ``chosen`` is the index of the mark to ring."""
    if not marks:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="30" role="img">'
            f'<text x="{_MARGIN}" y="20" font-size="12">{_e(title or "no points")}</text></svg>'
        )
    first = min(when for when, *_ in marks)
    last = max(when for when, *_ in marks)
    span = (last - first).total_seconds() or 1.0
    usable = _WIDTH - 2 * _MARGIN

    def x_of(when: datetime) -> float:
        offset = (when - first).total_seconds() / span if last != first else 0.5
        return _MARGIN + offset * usable

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" font-family="sans-serif">',
        f"<title>{_e(title or 'recovery points')}</title>",
        f'<line x1="{_MARGIN}" y1="{_AXIS_Y}" x2="{_WIDTH - _MARGIN}" y2="{_AXIS_Y}" '
        'stroke="#64748b" stroke-width="1"/>',
    ]
    ordered = sorted(range(len(marks)), key=lambda i: STATUSES.get(marks[i][1], ("", 0.0))[1])
    for index in ordered:  # untried first, so tried dots sit on top
        when, status, label, tip = marks[index]
        fill, radius = STATUSES.get(status, STATUSES["untried"])
        x = x_of(when)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{_AXIS_Y}" r="{radius}" fill="{fill}">'
            f"<title>{_e(tip)}</title></circle>"
        )
        if label:
            parts.append(
                f'<text x="{x:.1f}" y="{_AXIS_Y - 11}" font-size="10" text-anchor="middle" '
                f'fill="#334155">{_e(label)}</text>'
            )
    if chosen is not None and 0 <= chosen < len(marks):
        x = x_of(marks[chosen][0])
        parts.append(
            f'<circle cx="{x:.1f}" cy="{_AXIS_Y}" r="10" fill="none" stroke="#0f172a" '
            'stroke-width="2"><title>chosen</title></circle>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{_AXIS_Y + 24}" font-size="11" text-anchor="middle" '
            f'font-weight="bold" fill="#0f172a">chosen</text>'
        )
    parts.append(
        f'<text x="{_MARGIN}" y="{_HEIGHT - 6}" font-size="10" fill="#475569">'
        f"{_e(f'{first:%Y-%m-%d %H:%M}')}</text>"
    )
    parts.append(
        f'<text x="{_WIDTH - _MARGIN}" y="{_HEIGHT - 6}" font-size="10" text-anchor="end" '
        f'fill="#475569">{_e(f"{last:%Y-%m-%d %H:%M}")}</text>'
    )
    if title:
        parts.append(f'<text x="{_MARGIN}" y="14" font-size="12" fill="#0f172a">{_e(title)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _e(text: str) -> str:
    return escape(text)
