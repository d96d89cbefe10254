"""A dependency graph as inline SVG: layered left to right by dependency depth, no JavaScript.

Start orders are small DAGs (tens of VMs, rarely hundreds) read in notebooks: column ``n`` holds
the VMs whose longest chain of dependencies has ``n`` links, so the picture reads like the
failover, left to right. Within a column, nodes sort by priority group and then by the mean row of
what they wait for (one barycentre pass), which keeps most edges short. That is all a start order
needs; a general graph-layout library (Graphviz, ELK) would be a native or JavaScript dependency
for one picture. Nodes on a dependency cycle cannot be layered: they are drawn in a last column,
outlined in red.

A leaf: it imports only the SVG leaf (for escaping), so any layer may use it. Every label is
escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vmfailover._svg import escape as _e

__all__ = ["layers", "svg_graph"]

_NODE_WIDTH = 150
_NODE_HEIGHT = 34
_COLUMN_GAP = 60
_ROW_GAP = 14
_MARGIN = 10
_PALETTE = ("#dbeafe", "#dcfce7", "#fef9c3", "#fde2e4", "#ede9fe", "#e0f2fe", "#fae8ff")


def layers(
    nodes: Sequence[str], edges: Mapping[str, Sequence[str]]
) -> tuple[list[list[str]], set[str]]:
    """Columns of nodes by longest dependency chain, and the nodes on or behind a cycle.

    ``edges[node]`` lists what ``node`` waits for; names that are not nodes are ignored.
    """
    known = set(nodes)
    waits = {node: [dep for dep in edges.get(node, ()) if dep in known] for node in nodes}
    waiting: dict[str, list[str]] = {node: [] for node in nodes}
    for node, deps in waits.items():  # what each node waits for -> who waits for it
        for dep in deps:
            waiting[dep].append(node)
    remaining = {node: len(set(deps)) for node, deps in waits.items()}
    depth = dict.fromkeys(nodes, 0)
    ready = [node for node in nodes if remaining[node] == 0]
    placed: list[str] = []
    while ready:
        node = ready.pop()
        placed.append(node)
        for waiter in dict.fromkeys(waiting[node]):
            depth[waiter] = max(depth[waiter], depth[node] + 1)
            remaining[waiter] -= 1
            if remaining[waiter] == 0:
                ready.append(waiter)
    stuck = {node for node in nodes if node not in set(placed)}
    columns: list[list[str]] = [[] for _ in range(max((depth[n] for n in placed), default=-1) + 1)]
    for node in nodes:
        if node not in stuck:
            columns[depth[node]].append(node)
    if stuck:
        columns.append([node for node in nodes if node in stuck])
    return columns, stuck


def svg_graph(
    nodes: Sequence[str],
    edges: Mapping[str, Sequence[str]],
    *,
    groups: Mapping[str, int | None] | None = None,
    notes: Mapping[str, str] | None = None,
    title: str = "",
) -> str:
    """The graph as an ``<svg>`` element: an arrow from each dependency to the node waiting for
    it. ``groups`` colours nodes by priority group; ``notes`` is a second line under a name."""
    groups = groups or {}
    notes = notes or {}
    columns, stuck = layers(nodes, edges)
    rows: dict[str, float] = {}
    for index, column in enumerate(columns):
        if index:

            def centre(node: str) -> float:
                deps = [rows[dep] for dep in edges.get(node, ()) if dep in rows]
                return sum(deps) / len(deps) if deps else 0.0

            column.sort(key=lambda node: (_group_key(groups.get(node)), centre(node)))
        else:
            column.sort(key=lambda node: _group_key(groups.get(node)))
        for row, node in enumerate(column):
            rows[node] = float(row)
    tallest = max((len(column) for column in columns), default=0)
    width = _MARGIN * 2 + len(columns) * _NODE_WIDTH + max(len(columns) - 1, 0) * _COLUMN_GAP
    top = _MARGIN + (20 if title else 0)
    height = top + _MARGIN + tallest * _NODE_HEIGHT + max(tallest - 1, 0) * _ROW_GAP
    where: dict[str, tuple[float, float]] = {}
    for index, column in enumerate(columns):
        offset = (tallest - len(column)) * (_NODE_HEIGHT + _ROW_GAP) / 2
        for row, node in enumerate(column):
            where[node] = (
                float(_MARGIN + index * (_NODE_WIDTH + _COLUMN_GAP)),
                top + offset + row * (_NODE_HEIGHT + _ROW_GAP),
            )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img">',
        '<defs><marker id="vmf-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    if title:
        parts.append(
            f'<text x="{_MARGIN}" y="{_MARGIN + 12}" font-weight="bold">{_e(title)}</text>'
        )
    for node in nodes:
        for dep in dict.fromkeys(edges.get(node, ())):
            if dep not in where:
                continue
            (x1, y1), (x2, y2) = where[dep], where[node]
            start = (x1 + _NODE_WIDTH, y1 + _NODE_HEIGHT / 2)
            end = (x2, y2 + _NODE_HEIGHT / 2)
            if end[0] <= start[0]:  # a cycle edge running backwards: around below
                end = (x2 + _NODE_WIDTH / 2, y2 + _NODE_HEIGHT)
            bend = max((end[0] - start[0]) / 2, 20)
            parts.append(
                f'<path d="M {start[0]:.0f} {start[1]:.0f} C {start[0] + bend:.0f} {start[1]:.0f} '
                f'{end[0] - bend:.0f} {end[1]:.0f} {end[0]:.0f} {end[1]:.0f}" fill="none" '
                f'stroke="{"#c00" if node in stuck else "#555"}" stroke-width="1.2" '
                'marker-end="url(#vmf-arrow)"/>'
            )
    for node, (x, y) in where.items():
        group: int | None = groups.get(node)
        fill = "#f3f4f6" if group is None else _PALETTE[(group - 1) % len(_PALETTE)]
        stroke = "#c00" if node in stuck else "#6b7280"
        label = node if len(node) <= 22 else node[:21] + "…"
        note = notes.get(node, "")
        tooltip = (
            node
            + (f" (group {group})" if group is not None else "")
            + (f": {note}" if note else "")
        )
        parts.append(
            f'<g><title>{_e(tooltip)}</title><rect x="{x:.0f}" y="{y:.0f}" width="{_NODE_WIDTH}" '
            f'height="{_NODE_HEIGHT}" rx="5" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{2 if node in stuck else 1}"/>'
        )
        text_y = y + (14 if note else 21)
        parts.append(f'<text x="{x + 8:.0f}" y="{text_y:.0f}">{_e(label)}</text>')
        if note:
            short = note if len(note) <= 26 else note[:25] + "…"
            parts.append(
                f'<text x="{x + 8:.0f}" y="{y + 28:.0f}" font-size="10" fill="#374151">'
                f"{_e(short)}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _group_key(group: int | None) -> tuple[bool, int]:
    return (group is None, group or 0)
