"""A research repository of the shapes rflint meets in the wild, written into a temporary
folder (no network): a ``models`` package whose ``__init__`` imports every model, layers built
by builder functions of another package (``lib/blocks.py``), a model built from a YAML file
(two configured models share its factory), and a model whose forward raises on the input.

Receptive fields (3x3 convolutions, stride 1, padding 1; hand-derived): ``blocks`` stacks
``body`` (4 convs: fields 3, 5, 7, 9) and ``head`` (2 convs: 11, 13). At 8 px the input of
``body.3`` already sees 7 < 8, so ``body.3`` is the last productive one; ``head.0`` reads a
field of 9 >= 8 (RF101) and ``head.1`` reads 11 >= 8 (RF101); I_min is the largest field, 13
(RF103). The YAML models stack one 3x3 convolution per ``conv`` row, at 4 px: ``yolo-s`` has
two (fields 3, 5: ``model.2`` critical, I_min 5), ``yolo-m`` three (3, 5, 7: ``model.1``
critical, ``model.2`` unproductive, I_min 7); both RF103s sit on the one factory line.
``broken``'s forward raises on any input below 100 px.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import rflint

PYPROJECT = """\
[tool.rflint]
task = "classification"  # headless test nets: judged by Richter's centre-unit rule

[[tool.rflint.models]]
target = "models:BlockNet"
name = "blocks"
input-size = 8

[[tool.rflint.models]]
target = "models/yolo.py:build"
name = "yolo-s"
input-size = 4
kwargs = { cfg = "yolo-s.yaml" }

[[tool.rflint.models]]
target = "models/yolo.py:build"
name = "yolo-m"
input-size = 4
kwargs = { cfg = "yolo-m.yaml" }
"""

BROKEN_ENTRY = """
[[tool.rflint.models]]
target = "models:Broken"
name = "broken"
input-size = 8
"""

FILES = {
    "lib/__init__.py": "",
    "lib/blocks.py": """\
        from torch import nn


        def conv(cin, cout):
            return nn.Conv2d(cin, cout, 3, padding=1)


        def make_stage(cin, cout, depth):
            layers = []
            for i in range(depth):
                layers.append(conv(cin if i == 0 else cout, cout))
            return nn.Sequential(*layers)
        """,
    "models/__init__.py": """\
        from .blocknet import BlockNet
        from .broken import Broken
        from .yolo import build as yolo
        """,
    "models/blocknet.py": """\
        from torch import nn

        from lib.blocks import make_stage


        class BlockNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = make_stage(3, 8, depth=4)
                self.head = make_stage(8, 8, depth=2)

            def forward(self, x):
                return self.head(self.body(x))
        """,
    "models/broken.py": """\
        from torch import nn


        class Broken(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)

            def forward(self, x):
                if x.shape[-1] < 100:
                    raise ValueError("expects at least 100 px")
                return self.conv(x)
        """,
    "models/yolo.py": """\
        from pathlib import Path

        import yaml
        from torch import nn


        class Detector(nn.Module):
            def __init__(self, rows):
                super().__init__()
                layers, channels = [], 3
                for kind, cout in rows:
                    layers.append(nn.Conv2d(channels, cout, 3, padding=1) if kind == "conv" else nn.ReLU())
                    channels = cout if kind == "conv" else channels
                self.model = nn.Sequential(*layers)

            def forward(self, x):
                return self.model(x)


        def build(cfg="yolo-s.yaml"):
            rows = yaml.safe_load((Path(__file__).parent / cfg).read_text())["backbone"]
            return Detector(rows)
        """,
    "models/yolo-s.yaml": """\
        backbone:
          - [conv, 8]
          - [relu, 0]
          - [conv, 8]
        """,
    "models/yolo-m.yaml": """\
        backbone:
          - [conv, 8]
          - [conv, 8]
          - [conv, 8]
        """,
}


def write_repo(root: Path, broken: bool = False) -> Path:
    """Write the repository into ``root`` (with the failing model configured if ``broken``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT + (BROKEN_ENTRY if broken else ""), encoding="utf-8")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def line_of(root: Path, file: str, text: str) -> int:
    """The 1-based line of ``file`` that contains ``text`` (tests name lines by content)."""
    for i, line in enumerate((root / file).read_text(encoding="utf-8").splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(f"{text!r} not in {file}")


#: the console script's entry, and a note of whether any model was built: torch imported in
#: this process, or a model handed to a child process (rflint check's sandbox); a hit does neither
HARNESS = """\
import os, sys
if sys.path and sys.path[0] in ("", os.getcwd()):  # a console script's sys.path[0] is its bin folder
    sys.path.pop(0)
sys.argv = ["rflint", *sys.argv[1:]]
built = []
flag = os.environ.get("TORCH_FLAG_FILE")
if flag:
    from rflint.engine import sandbox

    real = sandbox.run_isolated

    def counting(jobs, *args, **kwargs):  # the models handed to a child process
        jobs = list(jobs)
        built.extend(jobs)
        return real(jobs, *args, **kwargs)

    sandbox.run_isolated = counting
from rflint.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
if flag:
    with open(flag, "w") as f:
        f.write("torch imported" if "torch" in sys.modules or built else "torch not imported")
sys.exit(code)
"""


def run_rflint(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``rflint ARGS`` in ``root``, in a fresh interpreter as the console script runs it (a hit
    must not depend on modules an earlier model left in ``sys.modules``). With
    ``env={"TORCH_FLAG_FILE": path}`` the file says whether torch was imported."""
    package_root = str(Path(rflint.__file__).resolve().parents[1])
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RFLINT_") and k not in ("COLUMNS", "FORCE_COLOR")}
    clean.update(PYTHONPATH=package_root, NO_COLOR="1", **(env or {}))
    return subprocess.run([sys.executable, "-c", HARNESS, *args], cwd=root, env=clean, capture_output=True, text=True, timeout=600)
