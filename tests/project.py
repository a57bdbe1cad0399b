"""A research repository as a new user has one, written into a temporary folder: a ``src/``
package whose model files use relative imports (``from .blocks``, ``from ..heads``) and an
absolute one (``from acme.layers``), ``[tool.rflint] pythonpath = ["src"]`` and a configured
model with ``kwargs``. Shared by the package-import, command and pre-commit tests.

Receptive fields (3x3 convolutions, every stage halves the map): stem 3, stage 1 5 / 9,
stage 2 13 / 21. At 32 px the largest field is 21: refined, nothing to report. ``add_refiner``
appends three 3x3 convolutions (fields 29, 37, 45): the third one's input already sees 37 >= 32
pixels, an unproductive layer (RF101). At ``input-size = 12`` stage 2's second convolution
(input field 13 >= 12) is unproductive too.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

PYPROJECT = """\
[project]
name = "acme"
version = "0.0.1"

[tool.rflint]
pythonpath = ["src"]

[[tool.rflint.models]]
target = "src/acme/models/net.py:build"
name = "acme-net"
input-size = {size}
kwargs = {{ width = 8, stages = 2 }}
"""

FILES = {
    "src/acme/__init__.py": "",
    "src/acme/models/__init__.py": "",
    "src/acme/layers.py": """\
        from torch import nn


        def conv_bn(cin, cout, stride=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU())
        """,
    "src/acme/heads.py": """\
        from torch import nn


        class Head(nn.Module):
            def __init__(self, channels, num_classes):
                super().__init__()
                self.pool = nn.AdaptiveAvgPool2d(1)
                self.fc = nn.Linear(channels, num_classes)

            def forward(self, x):
                return self.fc(self.pool(x).flatten(1))
        """,
    "src/acme/models/blocks.py": """\
        from torch import nn

        from ..layers import conv_bn


        class Stage(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.down = conv_bn(cin, cout, stride=2)
                self.conv = conv_bn(cout, cout)

            def forward(self, x):
                return self.conv(self.down(x))
        """,
    "src/acme/models/net.py": """\
        from torch import nn

        from acme.layers import conv_bn

        from ..heads import Head
        from .blocks import Stage


        class Net(nn.Module):
            def __init__(self, width=8, stages=2, num_classes=10):
                super().__init__()
                self.stem = conv_bn(3, width)
                chans = [width * 2**i for i in range(stages + 1)]
                self.stages = nn.Sequential(*[Stage(a, b) for a, b in zip(chans, chans[1:])])
                self.head = Head(chans[-1], num_classes)

            def forward(self, x):
                x = self.stages(self.stem(x))
                return self.head(x)


        def build(width=8, stages=2, num_classes=10):
            return Net(width=width, stages=stages, num_classes=num_classes)
        """,
}

REFINER = (
    "        self.head = Head(chans[-1], num_classes)\n",
    "        self.refine = nn.Sequential(*[conv_bn(chans[-1], chans[-1]) for _ in range(3)])\n"
    "        self.head = Head(chans[-1], num_classes)\n",
)
REFINER_CALL = ("        return self.head(x)\n", "        return self.head(self.refine(x))\n")


def write_project(root: Path, size: int = 32) -> Path:
    """Write the repository into ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(size=size), encoding="utf-8")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def add_refiner(root: Path) -> None:
    """The bad commit: three more convolutions after the stages, the third one unproductive."""
    path = root / "src/acme/models/net.py"
    text = path.read_text(encoding="utf-8")
    for old, new in (REFINER, REFINER_CALL):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def set_input_size(root: Path, size: int) -> None:
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(text[text.index("input-size = "):].splitlines()[0], f"input-size = {size}"), encoding="utf-8")
