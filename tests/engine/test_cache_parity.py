"""The result cache never changes the answer: a hit prints byte for byte what the miss
printed, in every output format, for every model of a research-shaped repository (a package
target whose ``__init__`` imports every model, layers made by a builder in another package, a
YAML-built model, and a model that fails), on stdout, stderr, in ``-o`` files and in the exit
code. The hit is checked to be one: it must not import torch."""

from __future__ import annotations

from pathlib import Path

from rflint.report import OutputFormat

from research_repo import run_rflint, write_repo


def _run(root: Path, out: Path, flag: Path):
    out.mkdir()
    outputs = [arg for fmt in OutputFormat for arg in ("-o", f"{fmt.value}:{out / fmt.value}")]
    return run_rflint(root, "check", "-j", "1", *outputs, env={"TORCH_FLAG_FILE": str(flag)})


MODULE_TARGET = """
[[tool.rflint.models]]
target = "models.yolo:build"
name = "yolo-module"
input-size = 4
kwargs = { cfg = "yolo-s.yaml" }
"""


def test_a_hit_prints_byte_for_byte_what_the_miss_printed_in_every_format(tmp_path):
    root = write_repo(tmp_path / "repo", broken=True)
    with (root / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write(MODULE_TARGET)  # a module path: on a hit nothing has imported it
    miss = _run(root, tmp_path / "miss", tmp_path / "miss.flag")
    hit = _run(root, tmp_path / "hit", tmp_path / "hit.flag")
    assert (tmp_path / "miss.flag").read_text() == "torch imported"
    assert (tmp_path / "hit.flag").read_text() == "torch not imported"  # every model, the failing one too
    assert miss.returncode == hit.returncode == 2  # a model failed
    assert (hit.stdout, hit.stderr) == (miss.stdout, miss.stderr)
    for fmt in OutputFormat:
        assert (tmp_path / "hit" / fmt.value).read_bytes() == (tmp_path / "miss" / fmt.value).read_bytes(), fmt.value
    concise = (tmp_path / "miss" / "concise").read_text()
    assert "models/blocknet.py:6:1: RF103 [blocks] " in concise  # the class of a package target, not pyproject.toml
    assert "models/yolo.py:20:1: RF103 [yolo-module] " in concise
    assert "rflint: error: broken: the model's forward raised at models/broken.py:11: ValueError: expects at least 100 px" in miss.stderr
