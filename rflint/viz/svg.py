"""The model graph as a standalone SVG document, coloured by layer status.

Every box is a ``<g class="layer">`` carrying ``data-layer`` (the head layer's qualname),
``data-status`` and ``data-members`` (all qualnames folded into it, ``|``-separated), and every
edge a ``<path class="edge">`` with ``data-from``/``data-to``, so tests and scripts can read the
picture back with ``xml.etree``.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from rflint.rf.status import layer_status
from rflint.ir import Analysis, Status
from rflint.rf.display import fmt_axes
from rflint.viz.graph_layout import LINE_H, PAD_X, PAD_Y, Layout, layout

#: fill and stroke per status; ok is quiet on purpose so that problems stand out
COLOURS: dict[Status, tuple[str, str]] = {
    Status.OK: ("#e7f5e9", "#5b9a68"),
    Status.CRITICAL: ("#ffd8a8", "#e8590c"),
    Status.UNPRODUCTIVE: ("#ffb3b3", "#c92a2a"),
    Status.UNKNOWN: ("#e5dbff", "#7048e8"),
    Status.GLOBAL: ("#dee2e6", "#495057"),
}

FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
HEADER_H = 96.0


def _path(points: list[tuple[float, float]]) -> str:
    """Smooth path through control points: vertical tangents at every point."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    px, py = x0, y0
    for x, y in rest:
        if abs(x - px) < 0.5:
            d.append(f"L{x:.1f},{y:.1f}")
        else:
            my = (py + y) / 2
            d.append(f"C{px:.1f},{my:.1f} {x:.1f},{my:.1f} {x:.1f},{y:.1f}")
        px, py = x, y
    return " ".join(d)


def header_lines(analysis: Analysis) -> list[str]:
    g = analysis.graph
    size = fmt_axes(g.input_size)
    counts: dict[Status, int] = {}
    for lrf in analysis.layers:
        s = layer_status(lrf, g.input_size)
        counts[s] = counts.get(s, 0) + 1
    line2 = (
        f"input {size}   I_min {fmt_axes(analysis.i_min)} (no critical layer)   "
        f"{fmt_axes(analysis.i_min_unproductive)} (no unproductive layer)   "
        f"I_max {fmt_axes(analysis.i_max)}"
    )
    line3 = f"{len(analysis.layers)} layers: " + ", ".join(
        f"{counts[s]} {s.value}" for s in Status if counts.get(s)
    )
    return [g.name, line2, line3]


def render_layout(lay: Layout, analysis: Analysis) -> str:
    """SVG text for a computed layout: a header (title, numbers, legend), then the edges, then
    the boxes on top of them."""
    head = header_lines(analysis)
    note = f"{lay.collapsed} ordinary layers folded into their neighbours (--no-collapse shows all)" if lay.collapsed else ""
    legend_w = 16 + sum(37 + len(s.value) * 6.6 for s in Status) + 10 + len(note) * 6.6 + 40
    header_w = max(len(head[0]) * 9.5, *(len(line) * 6.6 for line in head[1:])) + 32
    width = max(lay.width, header_w, legend_w + 16)
    height = lay.height + HEADER_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}" font-size="11">',
        f"<title>{escape(head[0])}: receptive fields at {escape(head[1])}</title>",
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
        "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#868e96\"/></marker></defs>",
        f'<rect class="background" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        *_header(head, note),
        f'<g transform="translate({(width - lay.width) / 2:.1f},{HEADER_H:.0f})">',
        '<g class="edges" fill="none" stroke-width="1.3">',
        *(_edge(e) for e in lay.edges),
        "</g>",
        '<g class="layers">',
        *(line for b in lay.boxes for line in _box(b)),
        "</g></g></svg>",
    ]
    return "\n".join(out) + "\n"


def _header(head: list[str], note: str) -> list[str]:
    """Title, the two lines of numbers and the status legend."""
    out = [
        f'<text x="16" y="24" font-size="15" font-weight="bold">{escape(head[0])}</text>',
        f'<text x="16" y="42" fill="#343a40">{escape(head[1])}</text>',
        f'<text x="16" y="58" fill="#343a40">{escape(head[2])}</text>',
    ]
    lx = 16.0
    for status in Status:
        fill, stroke = COLOURS[status]
        label = status.value
        out.append(
            f'<g class="legend" data-status="{status.value}">'
            f'<rect x="{lx:.1f}" y="68" width="14" height="14" rx="3" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{lx + 19:.1f}" y="79">{escape(label)}</text></g>'
        )
        lx += 19 + len(label) * 6.6 + 18
    if note:
        out.append(f'<text x="{lx + 10:.1f}" y="79" fill="#868e96">{escape(note)}</text>')
    return out


def _edge(e) -> str:
    colour = "#868e96" if not e.skip else "#4c6ef5"
    return (
        f'<path class="edge{" skip" if e.skip else ""}" data-from={quoteattr(e.src)} '
        f'data-to={quoteattr(e.dst)} d="{_path(e.points)}" stroke="{colour}" '
        f'stroke-opacity="0.75" marker-end="url(#arrow)"/>'
    )


def _box(b) -> list[str]:
    """One box: its group with the layer's data attributes, a tooltip per member, the text."""
    fill, stroke = COLOURS[b.status]
    lrf = b.head
    members = "|".join(m.layer.qualname for m in b.members)
    tip = [
        f"{m.layer.qualname}: {m.layer.op} ({m.layer.kind.value}) "
        f"r_min {fmt_axes(m.r_min)} r_max {fmt_axes(m.r_max)} "
        f"input r_min {fmt_axes(m.input_r_min)} jump {fmt_axes(m.jump)}"
        for m in b.members
    ]
    x0 = b.x - b.w / 2
    width_stroke = "2.2" if b.status in (Status.UNPRODUCTIVE, Status.CRITICAL) else "1.2"
    out = [
        f'<g class="layer" id={quoteattr("layer-" + b.id)} data-layer={quoteattr(lrf.layer.qualname)} '
        f'data-name={quoteattr(b.id)} data-status="{b.status.value}" '
        f'data-members={quoteattr(members)} '
        f'data-r-min={quoteattr(fmt_axes(lrf.r_min))} data-r-max={quoteattr(fmt_axes(lrf.r_max))}>',
        f"<title>{escape(chr(10).join(tip))}</title>",
        f'<rect x="{x0:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="5" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{width_stroke}"/>',
    ]
    for i, line in enumerate(b.lines):
        ty = b.y + PAD_Y + LINE_H * (i + 1) - 3.5
        style = ' font-weight="bold"' if i == 0 else ""
        colour = "#212529" if i < 3 else "#868e96"
        out.append(f'<text x="{x0 + PAD_X:.1f}" y="{ty:.1f}" fill="{colour}"{style}>{escape(line)}</text>')
    out.append("</g>")
    return out


def render(analysis: Analysis, collapse: bool = True) -> str:
    """The whole graph of ``analysis`` as SVG text, statuses at the graph's input size."""
    return render_layout(layout(analysis, collapse), analysis)


__all__ = ["COLOURS", "render", "render_layout"]
