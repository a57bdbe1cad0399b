"""A pure-Python layered layout for model graphs: no graphviz binary, no third-party library.

The steps follow Sugiyama's framework, cut down to what model graphs need:

1. **collapse**: runs of ordinary layers (pointwise, reshape) that have one input and one
   consumer are folded into their neighbour's box, so ``conv -> bn -> relu`` is one box;
2. **layering**: longest path from the input, so every edge points down;
3. **ordering**: within a layer, boxes are sorted by the mean position of their predecessors
   (a few down and up sweeps of the barycenter heuristic);
4. **placement**: each box is pulled towards its neighbours' mean x and boxes in one layer are
   pushed apart without changing their order;
5. **routing**: an edge between adjacent layers is a straight curve; an edge that skips layers
   (a residual shortcut, a dense concatenation) runs down a vertical *lane* beside the boxes it
   skips, so it never crosses a box. Lanes are assigned greedily so overlapping skips do not share
   one.

Model graphs are mostly one long spine with short branches, which is why lanes work better than
Sugiyama's dummy nodes here: a DenseNet block would need a hundred dummies per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rflint.rf.display import fmt_axes, op_summary
from rflint.rf.status import layer_status
from rflint.ir import Analysis, Kind, Layer, LayerRF, Status

#: kinds that never change the receptive field and may be folded into a neighbour's box
FOLDABLE = (Kind.POINTWISE, Kind.RESHAPE)

CHAR_W = 6.9  # width of one character of the 11 px monospace label font
BOLD_CHAR_W = 7.3
LINE_H = 14.0  # height of one label line
PAD_X = 10.0
PAD_Y = 7.0
MIN_BOX_W = 150.0
GAP_X = 28.0  # between boxes of one layer
GAP_Y = 34.0  # between layers
LANE_GAP = 7.0  # between parallel skip lanes
MARGIN = 24.0


@dataclass
class Box:
    """One drawn box: a head layer plus the ordinary layers folded into it."""

    id: str
    head: LayerRF
    members: list[LayerRF]
    status: Status
    lines: list[str] = field(default_factory=list)
    preds: list[str] = field(default_factory=list)  # box ids, in input order
    succs: list[str] = field(default_factory=list)
    rank: int = 0
    order: float = 0.0
    x: float = 0.0  # centre
    y: float = 0.0  # top
    w: float = 0.0
    h: float = 0.0

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class Edge:
    """A drawn edge: ``points`` is a polyline of control points, drawn as smooth curves."""

    src: str
    dst: str
    skip: bool  # spans more than one layer
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Layout:
    boxes: list[Box]
    edges: list[Edge]
    width: float
    height: float
    collapsed: int  # number of layers folded into a neighbour's box


def box_text_width(lines: Sequence[str]) -> float:
    """Estimated width of a box's label: the first line is bold, hence wider."""
    widths = [len(line) * CHAR_W for line in lines]
    if widths:
        widths[0] = len(lines[0]) * BOLD_CHAR_W
    return max(widths, default=0.0)


def is_ordinary(layer: Layer) -> bool:
    """A layer that adds no context and moves no axis: pointwise, reshape, or a window layer
    with a 1x1 kernel and stride 1 (a 1x1 convolution)."""
    if layer.kind in FOLDABLE:
        return True
    return (
        layer.kind is Kind.WINDOW
        and not layer.grows_field
        and all(s == 1 for s in layer.stride)
    )


def op_label(lrf: LayerRF) -> str:
    """The op name plus its window, e.g. ``Conv2d 3x3/2`` (the words findings use)."""
    return op_summary(lrf.layer)


def rf_label(lrf: LayerRF) -> str:
    rmin, rmax = fmt_axes(lrf.r_min), fmt_axes(lrf.r_max)
    text = f"r {rmin}" if rmin == rmax else f"r {rmin} / {rmax}"
    if lrf.uncertain:
        text += " ?"
    return text


def box_lines(box: Box) -> list[str]:
    """Label lines: qualname, op, receptive field and feature map, folded layers."""
    head = box.head
    lines = [head.layer.qualname or head.layer.name]
    second = op_label(head)
    lines.append(second)
    third = rf_label(head) if head.layer.kind is not Kind.INPUT else ""
    last = box.members[-1].layer
    size = last.out_size or head.layer.out_size
    if size:
        third += ("   " if third else "") + "fm " + "x".join(str(s) for s in size)
    lines.append(third)
    folded = [m.layer.op for m in box.members if m is not head]
    if folded:
        text = "+ " + ", ".join(folded)
        if len(text) > 44:
            text = f"+ {len(folded)} layers: " + ", ".join(dict.fromkeys(folded))
            if len(text) > 44:
                text = text[:43] + "…"
        lines.append(text)
    return lines


def collapse(analysis: Analysis, enabled: bool = True) -> tuple[list[Box], dict[str, str]]:
    """Group layers into boxes; returns the boxes in graph order and layer name -> box id.

    A foldable layer joins its predecessor's box when it is that layer's only consumer, else
    its successor's box when it is that layer's only input. Only layers in the analysis (those
    that depend on the model input) are drawn.
    """
    size = analysis.graph.input_size
    lrfs = {lrf.layer.name: lrf for lrf in analysis.layers}
    inputs = {n: [i for i in lrf.layer.inputs if i in lrfs] for n, lrf in lrfs.items()}
    consumers: dict[str, list[str]] = {n: [] for n in lrfs}
    for n, ins in inputs.items():
        for i in dict.fromkeys(ins):
            consumers[i].append(n)
    owner = _owners(analysis, inputs, consumers, enabled)
    groups: dict[str, list[LayerRF]] = {}
    for lrf in analysis.layers:
        groups.setdefault(owner[lrf.layer.name], []).append(lrf)
    boxes = [
        Box(id=head, head=lrfs[head], members=members, status=worst_status([layer_status(m, size) for m in members]))
        for head, members in groups.items()
    ]
    by_id = {b.id: b for b in boxes}
    for b in boxes:
        for m in b.members:
            for i in inputs[m.layer.name]:
                src = owner[i]
                if src != b.id and src not in b.preds:
                    b.preds.append(src)
                    by_id[src].succs.append(b.id)
    # boxes in topological order of their first member
    position = {lrf.layer.name: i for i, lrf in enumerate(analysis.layers)}
    boxes.sort(key=lambda b: min(position[m.layer.name] for m in b.members))
    for b in boxes:
        b.lines = box_lines(b)
    return boxes, {n: owner[n] for n in lrfs}


def _owners(analysis: Analysis, inputs: dict[str, list[str]], consumers: dict[str, list[str]], enabled: bool) -> dict[str, str]:
    """Layer name -> the name of the layer heading its box: a forward pass folds an ordinary
    layer into its only predecessor, a backward pass folds a remaining ordinary head into its
    only consumer (when that consumer reads nothing else)."""
    owner: dict[str, str] = {}
    for lrf in analysis.layers:
        n = lrf.layer.name
        ins = list(dict.fromkeys(inputs[n]))
        fold = enabled and is_ordinary(lrf.layer) and len(ins) == 1 and len(consumers[ins[0]]) == 1
        owner[n] = owner[ins[0]] if fold else n
    if not enabled:
        return owner
    kinds = {lrf.layer.name: lrf.layer.kind for lrf in analysis.layers}
    for lrf in reversed(analysis.layers):
        n = lrf.layer.name
        if owner[n] != n or not is_ordinary(lrf.layer):
            continue
        members = [m for m, o in owner.items() if o == n]
        cons = consumers[members[-1]]
        if len(cons) == 1 and len(set(inputs[cons[0]])) == 1 and owner[cons[0]] == cons[0] and kinds[cons[0]] is not Kind.INPUT:
            for m in members:
                owner[m] = cons[0]
    return owner


_SEVERITY = {
    Status.UNPRODUCTIVE: 4,
    Status.CRITICAL: 3,
    Status.UNKNOWN: 2,
    Status.GLOBAL: 1,
    Status.OK: 0,
}


def worst_status(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda s: _SEVERITY[s]) if statuses else Status.OK


def assign_ranks(boxes: list[Box]) -> int:
    """Longest path from the sources; returns the number of layers."""
    by_id = {b.id: b for b in boxes}
    for b in boxes:  # boxes are in topological order
        b.rank = max((by_id[p].rank + 1 for p in b.preds), default=0)
    return max((b.rank for b in boxes), default=-1) + 1


def order_within_ranks(boxes: list[Box], n_ranks: int, sweeps: int = 4) -> list[list[Box]]:
    """Barycenter ordering; ties keep graph order so a chain stays a straight column."""
    by_id = {b.id: b for b in boxes}
    rows: list[list[Box]] = [[] for _ in range(n_ranks)]
    for b in boxes:
        rows[b.rank].append(b)
    for row in rows:
        for i, b in enumerate(row):
            b.order = float(i)

    def sweep(neigh: str, rng: range) -> None:
        for r in rng:
            row = rows[r]
            keyed = []
            for i, b in enumerate(row):
                ns = [by_id[n] for n in getattr(b, neigh)]
                bary = sum(n.order for n in ns) / len(ns) if ns else b.order
                keyed.append((bary, i, b))
            keyed.sort(key=lambda t: (t[0], t[1]))
            for i, (_, _, b) in enumerate(keyed):
                b.order = float(i)
            rows[r] = [b for _, _, b in keyed]

    for _ in range(sweeps):
        sweep("preds", range(1, n_ranks))
        sweep("succs", range(n_ranks - 2, -1, -1))
    sweep("preds", range(1, n_ranks))
    return rows


def _pack(row: list[Box], desired: list[float]) -> None:
    """Place boxes at their desired centres, keeping order and a gap, moving them as little
    as possible (pool-adjacent-violators on the left edges)."""
    # left edge of box i must be >= right edge of box i-1 + gap; express as offsets
    offsets, acc = [], 0.0
    for i, b in enumerate(row):
        if i:
            acc += row[i - 1].w / 2 + GAP_X + b.w / 2
        offsets.append(acc)
    # minimise sum (x_i - d_i)^2 s.t. x_i - offset_i nondecreasing: isotonic regression
    targets = [d - o for d, o in zip(desired, offsets)]
    blocks: list[list[float]] = []  # [mean, count]
    for t in targets:
        blocks.append([t, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2 = blocks.pop()
            m1, c1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    values = [m for m, c in blocks for _ in range(int(c))]
    for b, v, o in zip(row, values, offsets):
        b.x = v + o


def spine(boxes: list[Box]) -> set[str]:
    """The main path: back from the deepest box, always through the deepest local input (the
    first on ties; a global branch such as a squeeze-and-excitation gate is a side branch).
    Its boxes are drawn in one straight column."""
    if not boxes:
        return set()
    by_id = {b.id: b for b in boxes}
    node = max(boxes, key=lambda b: b.rank)
    path = {node.id}
    while node.preds:
        node = max(  # first max wins
            (by_id[p] for p in node.preds), key=lambda p: (p.status is not Status.GLOBAL, p.rank)
        )
        path.add(node.id)
    return path


def _push(row: list[Box], desired: list[float], fixed: int) -> None:
    """Keep ``row[fixed]`` where it is; place the others at their desired centres, pushed
    outwards just enough to keep order and gaps."""
    for i in range(fixed + 1, len(row)):
        prev = row[i - 1]
        row[i].x = max(desired[i], prev.x + prev.w / 2 + GAP_X + row[i].w / 2)
    for i in range(fixed - 1, -1, -1):
        nxt = row[i + 1]
        row[i].x = min(desired[i], nxt.x - nxt.w / 2 - GAP_X - row[i].w / 2)


def place(rows: list[list[Box]], main: set[str], passes: int = 6) -> None:
    """Horizontal centres: the main path at x = 0, the other boxes pulled towards their
    neighbours' mean x and pushed apart without changing their order. Where the main path
    skips a layer (past a squeeze-and-excitation branch, say) its column is kept free."""
    by_id = {b.id: b for row in rows for b in row}
    for row in rows:
        for b in row:
            b.w = max(MIN_BOX_W, box_text_width(b.lines) + 2 * PAD_X)
            b.h = len(b.lines) * LINE_H + 2 * PAD_Y
            b.x = 0.0
    spine_ranks = sorted(by_id[i].rank for i in main)
    crossed = {r for a, b in zip(spine_ranks, spine_ranks[1:]) for r in range(a + 1, b)}

    def arrange(row: list[Box], desired: list[float], rank: int) -> None:
        fixed = [i for i, b in enumerate(row) if b.id in main]
        if fixed:
            row[fixed[0]].x = 0.0
            _push(row, desired, fixed[0])
        elif rank in crossed:  # a free column for the main path's edge
            post = Box("", row[0].head, [], Status.OK, w=2 * LANE_GAP - GAP_X)
            at = sum(1 for d in desired if d < 0)
            _push([*row[:at], post, *row[at:]], [*desired[:at], 0.0, *desired[at:]], at)
        else:
            _pack(row, desired)

    for p in range(passes):
        down = p % 2 == 0
        rng = range(len(rows)) if down else range(len(rows) - 1, -1, -1)
        for r in rng:
            row = rows[r]
            desired = []
            for b in row:
                ns = b.preds if down else b.succs
                if p == 0 and not down:
                    ns = []
                xs = [by_id[n].x for n in ns]
                desired.append(sum(xs) / len(xs) if xs else b.x)
            arrange(row, desired, r)


def route(boxes: list[Box], rows: list[list[Box]], main: set[str] = frozenset()) -> list[Edge]:
    """Edges with control points; skip edges get a lane beside the rows they pass."""
    by_id = {b.id: b for b in boxes}
    row_top = [min((b.y for b in row), default=0.0) for row in rows]
    row_bottom = [max((b.bottom for b in row), default=0.0) for row in rows]
    edges: list[Edge] = []
    skips: list[tuple[int, Box, Box, int]] = []
    for b in boxes:
        n_in = len(b.preds)
        for k, p in enumerate(b.preds):
            src = by_id[p]
            # spread several inputs along the target's top edge
            tx = b.x + (k - (n_in - 1) / 2) * min(14.0, b.w / (n_in + 1)) if n_in > 1 else b.x
            if b.rank - src.rank <= 1:
                edges.append(Edge(p, b.id, False, [(src.x, src.bottom), (tx, b.y)]))
            else:
                skips.append((b.rank - src.rank, src, b, len(edges)))
                edges.append(Edge(p, b.id, True, [(src.x, src.bottom), (tx, b.y)]))
    # one lane per source (a bus with a branch into every target it skips to), shortest
    # spans first so that they sit closest to the boxes they pass
    groups: dict[str, list[tuple[Box, Box, int]]] = {}
    for _, src, dst, idx in skips:
        groups.setdefault(src.id, []).append((src, dst, idx))
    spans = sorted(
        groups.values(), key=lambda g: (max(d.rank for _, d, _ in g) - g[0][0].rank, g[0][0].rank)
    )
    placed: list[tuple[float, float, float, str]] = []  # (y0, y1, x, side)
    for group in spans:
        src = group[0][0]
        last = max(d.rank for _, d, _ in group)
        y0, y1 = row_top[src.rank + 1], row_bottom[last - 1]
        side, x = _lane(src, [d for _, d, _ in group], [rows[r] for r in range(src.rank + 1, last)], placed, y0, y1)
        placed.append((y0, y1, x, side))
        for _, dst, idx in group:
            e = edges[idx]
            if side == "mid" and src.id in main and dst.id in main:
                e.skip = False  # the main path, straight down past a side branch
            (sx, sy), (tx, ty) = e.points
            e.points = [(sx, sy), (x, y0), (x, row_bottom[dst.rank - 1]), (tx, ty)]
    return edges


def _lane(src: Box, dsts: list[Box], passed: list[list[Box]], placed: list[tuple[float, float, float, str]], y0: float, y1: float) -> tuple[str, float]:
    """Where a skip lane from ``src`` runs past the rows ``passed``: straight down where no box
    is in the way, else beside the rows on the nearer side, clear of lanes already placed."""
    left = min(b.x - b.w / 2 for row in passed for b in row)
    right = max(b.x + b.w / 2 for row in passed for b in row)

    def clear(x: float) -> bool:
        return all(not any(abs(b.x - x) < b.w / 2 + LANE_GAP for b in row) for row in passed)

    ex = (src.x + sum(d.x for d in dsts) / len(dsts)) / 2
    free = [x for x in (src.x, *(d.x for d in dsts), ex) if clear(x)]
    if free:
        side, x = "mid", free[0]
    elif right - ex <= ex - left:
        side, x = "right", right + LANE_GAP * 2
    else:
        side, x = "left", left - LANE_GAP * 2
    step = LANE_GAP if side != "left" else -LANE_GAP
    while any(s == side and abs(px - x) < LANE_GAP - 0.01 and py0 < y1 and y0 < py1 for py0, py1, px, s in placed):
        x += step if side != "mid" else LANE_GAP
    return side, x


def layout(analysis: Analysis, collapse_chains: bool = True) -> Layout:
    """Lay out ``analysis``'s graph top to bottom."""
    boxes, _ = collapse(analysis, collapse_chains)
    n_ranks = assign_ranks(boxes)
    rows = order_within_ranks(boxes, n_ranks)
    main = spine(boxes)
    place(rows, main)
    y = MARGIN
    for row in rows:
        height = max(b.h for b in row)
        for b in row:
            b.y = y + (height - b.h) / 2
        y += height + GAP_Y
    edges = route(boxes, rows, main)
    xs = [b.x - b.w / 2 for b in boxes] + [x for e in edges for x, _ in e.points]
    xe = [b.x + b.w / 2 for b in boxes] + [x for e in edges for x, _ in e.points]
    x0 = min(xs, default=0.0) - MARGIN
    dx = -x0
    for b in boxes:
        b.x += dx
    for e in edges:
        e.points = [(px + dx, py) for px, py in e.points]
    width = max(xe, default=0.0) + dx + MARGIN
    height = y - GAP_Y + MARGIN
    collapsed = sum(len(b.members) - 1 for b in boxes)
    return Layout(boxes, edges, width, height, collapsed)
