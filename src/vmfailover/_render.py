"""How every layer writes for people: plain-text and HTML tables, durations, enum values in words.

Reports, retention decisions, re-IP plans and simulation results all show tables in a terminal
(``str``) and in Jupyter (``_repr_html_``). One small renderer keeps them consistent and escapes
everything that came from the user; one duration format ("42.3s", "2m47s", "1h02m03s") serves
run reports and simulations alike; messages say an enum's value in words ("not responding"), and
:func:`listing` keeps messages that name many things short.
A leaf: it imports nothing of ours, so any layer may use it.
"""

from __future__ import annotations

import enum
import html
import math
from collections.abc import Iterable, Sequence

__all__ = ["format_duration", "html_table", "in_words", "listing", "text_table"]


def format_duration(seconds: float) -> str:
    """Seconds as people read them: "4.2s" and "42.3s" below a minute, then "2m47s", "1h02m03s".

    Tenths below a minute (boots and probes are that short), whole seconds above it (a tenth of a
    second is noise in an RTO of minutes). Negative durations keep their sign.
    """
    if not math.isfinite(seconds):
        return str(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if round(seconds, 1) < 60:
        return f"{sign}{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"


def in_words(member: enum.Enum) -> str:
    """An enum member as a message says it: ``ConnectionState.NOT_RESPONDING`` -> "not responding".

    Messages are read by people; the raw value (``not_responding``) belongs in JSON and code.
    """
    return str(member.value).replace("_", " ")


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]], title: str = "") -> str:
    """A fixed-width table; every cell is ``str()``-ed, columns sized to their widest cell."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for column, cell in enumerate(row):
            widths[column] = max(widths[column], len(cell))
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], title: str = "") -> str:
    """An HTML table with escaped cells, for ``_repr_html_``."""
    parts = ['<table class="vmfailover">']
    if title:
        parts.append(f"<caption>{html.escape(title)}</caption>")
    parts.append("<thead><tr>")
    parts.extend(f"<th>{html.escape(header)}</th>" for header in headers)
    parts.append("</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>")
        parts.extend(f"<td>{html.escape(str(cell))}</td>" for cell in row)
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def listing(items: Iterable[object], limit: int = 5, *, quoted: bool = True) -> str:
    """``'a', 'b', 'c' and 2 more``: the first ``limit`` items (``repr`` when ``quoted``), then
    how many are left out, so that a message naming many things stays one line."""
    shown = [repr(item) if quoted else str(item) for item in items]
    text = ", ".join(shown[:limit])
    if len(shown) > limit:
        text += f" and {len(shown) - limit} more"
    return text
