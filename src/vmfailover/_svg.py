"""Timelines as inline SVG Gantt charts, for Jupyter and HTML reports: no JavaScript, no fonts.

One drawing serves every timeline we show: a simulation (one bar per VM, coloured by how it
ended) and a run report (per VM its steps as segments: revert, power on, wait ready ...). Rows
are labelled on the left, time runs left to right from 0 with ticks at round durations (1, 2, 5,
10, 15, 30 seconds, minutes or hours), vertical markers show objectives and bounds (an RTO
target as a dashed line), and a legend names the colours. Every bar carries a ``<title>``
tooltip, which browsers show on hover without any script.

A leaf: it imports nothing of ours, so any layer may use it. Callers pass the tick-label format
(``format_duration``) and the colours; every text is escaped, and characters XML cannot hold are
replaced, so the output always parses.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence

import attrs

__all__ = ["Bar", "Marker", "Row", "escape", "svg_gantt"]

_ROW_HEIGHT = 16
_CHART_WIDTH = 600
_CHAR_WIDTH = 6.6  # of an 11px sans-serif label, near enough to size the label column
_MARGIN = 8
_LEGEND_HEIGHT = 18

# Round tick steps in seconds: the ones people count in.
_STEPS = (
    *(0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30),
    *(60, 120, 300, 600, 900, 1800),
    *(3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400),
)


@attrs.frozen
class Bar:
    """A segment of a row: from ``start`` to ``end`` seconds, in ``colour``, with a tooltip."""

    start: float
    end: float
    colour: str
    tip: str = ""


@attrs.frozen
class Row:
    """One line of the chart: a label, its bars, and an optional note at its right end
    (``note_colour`` colours it; an outcome such as "ready" or "timed out")."""

    label: str
    bars: tuple[Bar, ...] = ()
    note: str = ""
    note_colour: str = "#374151"


@attrs.frozen
class Marker:
    """A vertical line across the chart at ``at`` seconds (an RTO, a target, a bound)."""

    at: float
    label: str
    colour: str = "#111827"
    dashed: bool = False


def svg_gantt(
    rows: Sequence[Row],
    *,
    markers: Sequence[Marker] = (),
    legend: Sequence[tuple[str, str]] = (),
    tick_label: Callable[[float], str] = lambda seconds: f"{seconds:g}s",
    title: str = "",
) -> str:
    """The rows as an ``<svg>`` element; ``legend`` lists (label, colour) pairs.

    The time axis spans from 0 to the latest bar end or marker, so a target beyond the run still
    shows. Bars shorter than a pixel are drawn a pixel wide: a step that took no time is visible.
    """
    finite = [
        value
        for row in rows
        for bar in row.bars
        for value in (bar.start, bar.end)
        if math.isfinite(value)
    ] + [marker.at for marker in markers if math.isfinite(marker.at)]
    span = max([*finite, 0.0]) or 1.0
    step = _tick_step(span)
    longest = max([len(row.label) for row in rows] + [4])
    label_width = min(220, int(longest * _CHAR_WIDTH) + 12)
    note_width = max([len(row.note) for row in rows] + [0]) * _CHAR_WIDTH + 12
    top = _MARGIN + (18 if title else 0) + (_LEGEND_HEIGHT if legend else 0) + 14
    width = int(label_width + _CHART_WIDTH + note_width + _MARGIN)
    height = top + _ROW_HEIGHT * len(rows) + 6 + 13 * len(markers)

    def x_of(seconds: float) -> float:
        return label_width + _CHART_WIDTH * max(0.0, seconds) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img">'
    ]
    y = _MARGIN
    if title:
        parts.append(f'<text x="{_MARGIN}" y="{y + 12}" font-weight="bold">{escape(title)}</text>')
        y += 18
    if legend:
        x = float(label_width)
        for label, colour in legend:
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="10" height="10" fill="{escape(colour)}"/>'
                f'<text x="{x + 14:.1f}" y="{y + 11}">{escape(label)}</text>'
            )
            x += 14 + len(label) * _CHAR_WIDTH + 12
        y += _LEGEND_HEIGHT
    bottom = top + _ROW_HEIGHT * len(rows)
    ticks = int(span / step + 1e-9)
    for index in range(ticks + 1):
        x = x_of(index * step)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 3}" x2="{x:.1f}" y2="{bottom}" stroke="#e5e7eb"/>'
            f'<text x="{x:.1f}" y="{top - 5}" text-anchor="middle" fill="#6b7280">'
            f"{escape(tick_label(index * step))}</text>"
        )
    for index, row in enumerate(rows):
        y = top + index * _ROW_HEIGHT
        parts.append(
            f'<text x="{label_width - 6}" y="{y + _ROW_HEIGHT - 4}" text-anchor="end">'
            f"{escape(_short(row.label))}</text>"
        )
        right = float(label_width)
        for bar in row.bars:
            if not (math.isfinite(bar.start) and math.isfinite(bar.end)):
                continue
            x = x_of(bar.start)
            w = max(1.0, x_of(bar.end) - x)
            right = max(right, x + w)
            tip = f"<title>{escape(bar.tip)}</title>" if bar.tip else ""
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{_ROW_HEIGHT - 6}" '
                f'fill="{escape(bar.colour)}">{tip}</rect>'
            )
        if row.note:
            parts.append(
                f'<text x="{right + 4:.1f}" y="{y + _ROW_HEIGHT - 4}" '
                f'fill="{escape(row.note_colour)}">{escape(row.note)}</text>'
            )
    for line, marker in enumerate(markers):  # each label on a line of its own: none overlap
        if not math.isfinite(marker.at):
            continue
        x = x_of(marker.at)
        anchor = "end" if x > label_width + _CHART_WIDTH / 2 else "start"
        text_x = x - 3 if anchor == "end" else x + 3
        dash = ' stroke-dasharray="5 3"' if marker.dashed else ""
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 3}" x2="{x:.1f}" y2="{bottom + 13 * line + 8}" '
            f'stroke="{escape(marker.colour)}" stroke-width="1.5"{dash}>'
            f"<title>{escape(marker.label)}</title></line>"
            f'<text x="{text_x:.1f}" y="{bottom + 13 * line + 14}" text-anchor="{anchor}" '
            f'fill="{escape(marker.colour)}">{escape(marker.label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _tick_step(span: float) -> float:
    """The smallest round step that divides ``span`` into at most eight intervals."""
    for step in _STEPS:
        if span / step <= 8:
            return step
    days = 86400.0
    return days * 10.0 ** math.ceil(math.log10(span / days / 8))


def _short(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


# Characters XML 1.0 cannot hold at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def escape(text: str) -> str:
    """``text`` safe inside SVG or HTML, as text or in a quoted attribute."""
    return html.escape(_NOT_XML.sub("\ufffd", text), quote=True)
