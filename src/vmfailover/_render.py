"""Plain-text and HTML tables shared by every object that renders itself; durations; listings.

Reports, retention decisions, re-IP plans and simulation results all show tables in a terminal
(``str``) and in Jupyter (``_repr_html_``). One small renderer keeps them consistent and escapes
everything that came from the user. :func:`listing` keeps messages that name many things short.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["duration", "html_table", "listing", "text_table"]


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


def duration(seconds: float | None) -> str:
    """A duration as people read it: ``4.2s``, ``47s``, ``2m47s``, ``1h02m03s``, ``3d04h``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 72:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h{minutes:02d}m"


def listing(items: Iterable[object], limit: int = 5, *, quoted: bool = True) -> str:
    """``'a', 'b', 'c' and 2 more``: the first ``limit`` items (``repr`` when ``quoted``), then
    how many are left out, so that a message naming many things stays one line."""
    shown = [repr(item) if quoted else str(item) for item in items]
    text = ", ".join(shown[:limit])
    if len(shown) > limit:
        text += f" and {len(shown) - limit} more"
    return text
