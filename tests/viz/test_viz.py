"""Pictures: the SVG graph (read back with xml.etree), the HTML report and the growth plot.

Graphs are built by hand from ir.Layer so the expected boxes, statuses and edges are known
without tracing; one CLI test goes through the real frontend on a small file target.
"""

from __future__ import annotations

import sys
import textwrap
import xml.etree.ElementTree as ET
from fractions import Fraction
from types import SimpleNamespace

import pytest

from rflint.rf.algebra import analyse
from rflint.rf.status import layer_status
from rflint.errors import UsageError
from rflint.ir import Graph, Kind, Layer, Status
from rflint.report import html
from rflint.viz import svg
from rflint.viz import graph_layout as layout

SVG = "{http://www.w3.org/2000/svg}"


# --------------------------------------------------------------------------- hand-built graphs


def conv(name, inp, k=3, s=1, op="Conv2d"):
    return Layer(name, name, op, Kind.WINDOW, (inp,), (k, k), (Fraction(s), Fraction(s)), (1, 1))


def pw(name, inp, op="ReLU", kind=Kind.POINTWISE):
    return Layer(name, name, op, kind, (inp,))


def chain(size: int, n: int = 5) -> Graph:
    """x -> n x (conv3x3 -> relu), strides 2 at conv1 and conv3 -> global pool -> flatten -> fc.

    r after each conv: 3, 5, 9, 13, 21 (jump 1, 1->2, 2, 2->4, 4).
    """
    layers = [Layer("x", "x", "input", Kind.INPUT)]
    prev = "x"
    for i in range(n):
        layers += [conv(f"conv{i}", prev, s=2 if i in (1, 3) else 1), pw(f"relu{i}", f"conv{i}")]
        prev = f"relu{i}"
    layers += [
        Layer("pool", "pool", "adaptive_avg_pool2d", Kind.GLOBAL, (prev,), global_axes=(True, True)),
        pw("flatten", "pool", "flatten", Kind.RESHAPE),
        pw("fc", "flatten", "Linear"),
    ]
    return Graph(tuple(layers), (size, size), name="chain")


def residual(size: int = 64) -> Graph:
    """stem -> block0 (identity shortcut) -> block1 (strided, 1x1 downsample) -> a two-branch
    concatenation with an unknown op on one branch -> global pool."""
    L = [
        Layer("x", "x", "input", Kind.INPUT),
        conv("stem", "x", 7, 2),
        pw("stem_relu", "stem"),
        conv("b0.conv1", "stem_relu"),
        pw("b0.bn1", "b0.conv1", "BatchNorm2d"),
        pw("b0.relu", "b0.bn1"),
        conv("b0.conv2", "b0.relu"),
        pw("b0.bn2", "b0.conv2", "BatchNorm2d"),
        Layer("b0.add", "b0.add", "add", Kind.MERGE, ("b0.bn2", "stem_relu")),
        pw("b0.out", "b0.add"),
        conv("b1.conv1", "b0.out", s=2),
        pw("b1.relu", "b1.conv1"),
        conv("b1.conv2", "b1.relu"),
        conv("b1.down", "b0.out", 1, 2),
        pw("b1.down_bn", "b1.down", "BatchNorm2d"),
        Layer("b1.add", "b1.add", "add", Kind.MERGE, ("b1.conv2", "b1.down_bn")),
        conv("br.a", "b1.add", 3),
        Layer("br.b", "br.b", "mystery", Kind.UNKNOWN, ("b1.add",), note="opaque"),
        conv("br.c", "br.b", 5),
        Layer("cat", "cat", "cat", Kind.MERGE, ("br.a", "br.c")),
        Layer("pool", "pool", "adaptive_avg_pool2d", Kind.GLOBAL, ("cat",), global_axes=(True, True)),
        pw("fc", "pool", "Linear"),
    ]
    return Graph(tuple(L), (size, size), name="residual")


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def boxes(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "layer"]


def edges(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if (p.get("class") or "").startswith("edge")]


# --------------------------------------------------------------------------- SVG structure


def test_svg_has_one_box_per_layer_without_collapsing():
    analysis = analyse(chain(32))
    root = parse(svg.render(analysis, collapse=False))
    drawn = [b.get("data-layer") for b in boxes(root)]
    assert sorted(drawn) == sorted(lrf.layer.qualname for lrf in analysis.layers)
    assert len(drawn) == 14


def test_collapsing_folds_pointwise_chains_into_the_preceding_box():
    analysis = analyse(chain(32))
    root = parse(svg.render(analysis))
    drawn = {b.get("data-layer"): b.get("data-members").split("|") for b in boxes(root)}
    # input, 5 x (conv + relu), pool + flatten + fc
    assert len(drawn) == 7
    assert drawn["conv2"] == ["conv2", "relu2"]
    assert drawn["pool"] == ["pool", "flatten", "fc"]
    members = [m for ms in drawn.values() for m in ms]
    assert sorted(members) == sorted(lrf.layer.qualname for lrf in analysis.layers)  # each exactly once


def test_box_colours_follow_layer_status():
    # at input 8: conv2 pushes r_min 5 -> 9 > 8 (critical), conv3 and conv4 see r_min 9 / 13 >= 8
    analysis = analyse(chain(8))
    size = analysis.graph.input_size
    status = {lrf.layer.qualname: layer_status(lrf, size) for lrf in analysis.layers}
    assert status["conv2"] is Status.CRITICAL
    assert status["conv3"] is Status.UNPRODUCTIVE and status["conv4"] is Status.UNPRODUCTIVE
    root = parse(svg.render(analysis))
    legend = {
        g.get("data-status"): g.find(f"{SVG}rect").get("fill")
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "legend"
    }
    assert len(set(legend.values())) == len(Status)  # five distinguishable fills
    for b in boxes(root):
        head = b.get("data-layer")
        assert b.get("data-status") == status[head].value
        assert b.find(f"{SVG}rect").get("fill") == legend[status[head].value]


def test_unknown_op_and_global_layers_get_their_own_status_boxes():
    analysis = analyse(residual())
    root = parse(svg.render(analysis))
    by_layer = {b.get("data-layer"): b for b in boxes(root)}
    assert by_layer["br.b"].get("data-status") == "unknown"
    assert by_layer["br.b"].get("data-members") == "br.b"  # an unknown op is never folded away
    assert by_layer["pool"].get("data-status") == "global"


def test_skip_connections_and_concatenations_are_edges():
    analysis = analyse(residual())
    root = parse(svg.render(analysis))
    box_of = {}
    for b in boxes(root):
        for m in b.get("data-members").split("|"):
            box_of[m] = b.get("data-name")
    pairs = {(e.get("data-from"), e.get("data-to")): e.get("class") for e in edges(root)}
    # identity shortcut: stem (+relu) -> b0.add, skipping the two convs: a skip edge
    assert pairs[(box_of["stem_relu"], box_of["b0.add"])] == "edge skip"
    # strided block: the downsample branch joins b1.add
    assert (box_of["b1.down_bn"], box_of["b1.add"]) in pairs
    assert (box_of["b1.conv2"], box_of["b1.add"]) in pairs
    # concatenation of both branches
    assert (box_of["br.a"], box_of["cat"]) in pairs
    assert (box_of["br.c"], box_of["cat"]) in pairs
    # every IR edge between different boxes is drawn exactly once
    expected = {
        (box_of[i], box_of[lrf.layer.name])
        for lrf in analysis.layers
        for i in lrf.layer.inputs
        if box_of[i] != box_of[lrf.layer.name]
    }
    assert set(pairs) == expected
    assert len(edges(root)) == len(expected)


def test_layout_boxes_do_not_overlap_and_skip_lanes_avoid_boxes():
    lay = layout.layout(analyse(residual()))
    by_rank: dict[int, list[layout.Box]] = {}
    for b in lay.boxes:
        by_rank.setdefault(b.rank, []).append(b)
    for row in by_rank.values():
        row.sort(key=lambda b: b.x)
        for a, b in zip(row, row[1:]):
            assert a.x + a.w / 2 < b.x - b.w / 2
    ranks = {b.id: b.rank for b in lay.boxes}
    skips = [e for e in lay.edges if len(e.points) == 4]
    assert skips, "the shortcuts should need lanes"
    for e in skips:
        lane_x = e.points[1][0]
        for r in range(ranks[e.src] + 1, ranks[e.dst]):
            for b in by_rank[r]:
                assert abs(b.x - lane_x) >= b.w / 2, f"{e.src}->{e.dst} crosses {b.id}"
    # edges point down
    for e in lay.edges:
        assert e.points[0][1] < e.points[-1][1]


def test_main_path_is_one_straight_column():
    lay = layout.layout(analyse(chain(32)))
    assert len({round(b.x, 3) for b in lay.boxes}) == 1


# --------------------------------------------------------------------------- HTML


def test_graph_html_embeds_svg_and_lists_every_layer():
    analysis = analyse(residual())
    text = html.graph_document(analysis)
    assert text.startswith("<!DOCTYPE html>")
    assert "<svg" in text and "</svg>" in text
    for lrf in analysis.layers:
        assert f">{lrf.layer.qualname}<" in text
    assert "src=\"http" not in text and "<script" not in text  # self-contained


def test_report_html_has_findings_plot_and_graph():
    from rflint.checks import ALL_RULES

    analysis = analyse(chain(8))
    findings = [f for rule in ALL_RULES for f in rule.check(analysis)]
    assert any(f.code == "RF101" for f in findings)
    report = SimpleNamespace(analysis=analysis, findings=tuple(findings), spec=SimpleNamespace(display_name="chain"))
    text = html.render([report], findings, None)
    assert "data:image/png;base64," in text
    assert "<svg" in text
    assert "RF101" in text and "conv3" in text


def test_report_html_without_matplotlib_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    analysis = analyse(chain(8))
    report = SimpleNamespace(analysis=analysis, findings=(), spec=SimpleNamespace(display_name="chain"))
    text = html.render([report])
    assert "matplotlib is not installed" in text
    assert "<svg" in text


# --------------------------------------------------------------------------- plot


def test_plot_requires_matplotlib_with_a_clear_error(monkeypatch):
    from rflint.viz import plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match="matplotlib"):
        plot.require_matplotlib()


def test_plot_cli_exits_2_without_matplotlib(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from rflint.cli import app

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(app, ["plot", "torchvision:resnet18", "-s", "32", "-o", str(tmp_path / "g.png")])
    assert result.exit_code == 2
    assert not (tmp_path / "g.png").exists()


def test_growth_plot_shades_exactly_the_unproductive_layers():
    from rflint.viz import plot

    analysis = analyse(chain(8))
    growing = plot.growing_layers(analysis)
    assert [lrf.layer.qualname for lrf in growing] == [f"conv{i}" for i in range(5)]
    fig = plot.growth_figure([plot.Series("chain", analysis)])
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    spans = sorted(
        (round(p.get_x(), 2), round(p.get_x() + p.get_width(), 2), p.get_facecolor()[:3])
        for p in ax.patches
        if p.get_height() == 1  # axvspan spans the axis height
    )
    red = tuple(round(c, 3) for c in (0xC9 / 255, 0x2A / 255, 0x2A / 255))
    unproductive = [(a, b) for a, b, c in spans if tuple(round(x, 3) for x in c) == red]
    assert unproductive == [(3.5, 5.5)]  # conv3 and conv4 are depths 4 and 5
    # the input size is a horizontal line
    assert any(list(line.get_ydata()) == [8, 8] for line in ax.lines)
    png = plot.growth_png([plot.Series("chain", analysis)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- CLI


MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            return self.relu(x + self.conv2(self.relu(self.conv1(x))))

    def build_model():
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Block(), Block(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    """
)


def test_graph_command_writes_svg_and_html(tmp_path):
    from typer.testing import CliRunner

    from rflint.cli import app

    model = tmp_path / "net.py"
    model.write_text(MODEL)
    out = tmp_path / "net.svg"
    result = CliRunner().invoke(app, ["graph", str(model), "-s", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    by_layer = {b.get("data-layer"): b for b in boxes(root)}
    assert len(by_layer) >= 6
    skip = [e for e in edges(root) if e.get("class") == "edge skip"]
    assert len(skip) == 2  # one shortcut per residual block
    # the shortcuts keep r_min at 3 before each block's conv1 (-> r_min 5: critical at input 4)
    # and at 5 before each conv2 (5 >= 4: unproductive)
    convs = sorted(n for n in by_layer if n.endswith(("conv1", "conv2")))
    assert [by_layer[n].get("data-status") for n in convs] == ["critical", "unproductive"] * 2
    assert {b.get("data-status") for b in by_layer.values()} == {"ok", "critical", "unproductive", "global"}
    full = CliRunner().invoke(app, ["graph", str(model), "-s", "8", "--no-collapse", "-o", str(tmp_path / "n.html")])
    assert full.exit_code == 0, full.output
    assert "<svg" in (tmp_path / "n.html").read_text()
    bad = CliRunner().invoke(app, ["graph", str(model), "-s", "8", "-o", str(tmp_path / "n.gif")])
    assert bad.exit_code == 2
