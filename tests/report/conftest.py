"""The shared findings every output format is rendered from, and the snapshot fixture.

The findings are built by hand (no torch): paths live under a fake repository root ``/repo``
so the snapshots do not depend on the machine. One finding carries every character that some
format must escape (``%``, ``:``, ``,``, a newline, ``|``, ``<&>``, a quote).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from rflint.rf.algebra import analyse
from rflint.results import ModelReport
from rflint.spec import ModelSpec
from rflint.ir import Finding, Graph, Kind, Layer, Severity, Source
from rflint.report import RenderContext

SNAPSHOTS = Path(__file__).parent / "snapshots"
ROOT = "/repo"


def _graph(name: str, size: int) -> Graph:
    one = (Fraction(1), Fraction(1))
    layers = (
        Layer("x", "input", "input", Kind.INPUT),
        Layer("c1", "features.0", "Conv2d", Kind.WINDOW, ("x",), (3, 3), one, (1, 1)),
        Layer("p1", "features.1", "MaxPool2d", Kind.WINDOW, ("c1",), (2, 2), (Fraction(2), Fraction(2)), (1, 1)),
        Layer("c2", "features.2", "Conv2d", Kind.WINDOW, ("p1",), (3, 3), one, (1, 1)),
        Layer("c3", "features.3", "Conv2d", Kind.WINDOW, ("c2",), (3, 3), one, (1, 1)),
    )
    return Graph(layers, (size, size), name=name)


def make_reports() -> list[ModelReport]:
    specs = [ModelSpec("models/net.py:build", input_size=(8,), name="net"), ModelSpec("torchvision:resnet18", input_size=(64,))]
    sizes = [8, 64]
    return [ModelReport(spec, analyse(_graph(spec.display_name, s)), (), {}) for spec, s in zip(specs, sizes)]


def make_findings() -> list[Finding]:
    rf = {"r_min": [8, 8], "r_max": [8, 8], "input_r_min": [4, 4], "jump": [2, 2], "kernel": [3, 3], "uncertain": False}
    return [
        Finding(
            "RF101",
            "unproductive-layer",
            Severity.ERROR,
            "features.3 is unproductive: input receptive field 8 >= input size 8",
            model="net",
            layer="features.3",
            source=Source("/repo/models/net.py", 14, 13),
            input_size=(8, 8),
            receptive_field={**rf, "r_min": [12, 12], "r_max": [12, 12], "input_r_min": [8, 8]},
            hint="remove the layer, move a downsampling layer later, or train at a larger resolution",
        ),
        Finding(
            "RF102",
            "critical-layer",
            Severity.INFO,
            "features.2 is critical: its receptive field 8 exceeds input size 8 (input receptive field 4)",
            model="net",
            layer="features.2",
            source=Source("/repo/models/net.py", 13, 13),
            input_size=(8, 8),
            receptive_field=rf,
            hint="layers after this one may add no new context",
        ),
        Finding(
            "RF103",
            "input-below-minimum-resolution",
            Severity.WARN,
            "input size 8 is not above I_min 12: the architecture is not refined for this resolution",
            model="net",
            layer="",
            source=Source("/repo/models/net.py", 5, 1),
            input_size=(8, 8),
            receptive_field={"i_min": [12, 12], "i_min_unproductive": [9, 9], "i_max": [12, 12], "margin": [4, 4]},
            hint="run `rflint suggest`",
        ),
        Finding(
            "RF001",
            "unknown-op",
            Severity.WARN,
            'odd: 100% "weird", op <&> | a\nsecond line',
            model="torchvision:resnet18",
            layer="layer1.0.odd,op",
            source=Source("/usr/lib/python3/site-packages/torchvision/models/resnet.py", 84, 9),
            input_size=(64, 64),
            receptive_field={**rf, "uncertain": True},
            hint="mark it as a leaf module",
        ),
        Finding(
            "RF103",
            "input-below-minimum-resolution",
            Severity.WARN,
            "input size 64 is not above I_min 12",
            model="torchvision:resnet18",
            layer="",
            source=None,
            input_size=(64, 64),
            receptive_field={"i_min": [12, 12]},
        ),
    ]


def make_context(color: bool = False) -> RenderContext:
    return RenderContext(
        root=ROOT,
        color=color,
        width=100,
        version="0.1.0",
        rule_docs={"RF101": "# RF101 unproductive-layer\n\n## What it does\n\nFlags it.\n"},
        snippets={
            ("/repo/models/net.py", 14): "            nn.Conv2d(64, 64, 3, padding=1),  # the last one",
            ("/repo/models/net.py", 5): "def build():",
        },
    )


@pytest.fixture
def reports() -> list[ModelReport]:
    return make_reports()


@pytest.fixture
def findings() -> list[Finding]:
    return make_findings()


@pytest.fixture
def ctx() -> RenderContext:
    return make_context()


@pytest.fixture
def snapshot(request):
    """``snapshot(name, text)``: compare with ``snapshots/name``; ``--update-snapshots`` rewrites it."""
    update = request.config.getoption("--update-snapshots")

    def check(name: str, text: str) -> None:
        path = SNAPSHOTS / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"no snapshot {path.name}: run pytest with --update-snapshots and review the file"
        assert text == path.read_text(encoding="utf-8"), f"output differs from snapshots/{name} (review, then --update-snapshots)"

    return check
