"""Where a finding belongs: every finding names its model, and a layer built by a helper
(library code, a builder in another package, a loop feeding ``nn.Sequential``) is reported at
the user's line that asked for it, with the helper's line as a related location.

The repositories are written by :mod:`tests.research_repo` (numbers derived there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch import nn

from rflint.frontend.attribution import Frame, Project, recording, user_frame
from rflint.ir import Source

from research_repo import line_of, run_rflint, write_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return write_repo(tmp_path_factory.mktemp("attribution"))


def _json(root: Path, *args: str, exit_code: int = 1) -> list[dict]:
    result = run_rflint(root, "check", "--no-cache", "--output-format", "json", *args)
    assert result.returncode == exit_code, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------
# every finding names its model


def test_concise_lines_of_two_models_built_by_one_factory_name_each_model(repo):
    result = run_rflint(repo, "check", "--no-cache", "--output-format", "concise", "yolo-s", "yolo-m")
    factory = line_of(repo, "models/yolo.py", "def build(")
    rf103 = [line for line in result.stdout.splitlines() if " RF103 " in line]
    assert rf103 == [
        f"models/yolo.py:{factory}:1: RF103 [yolo-s] the architecture is not refined for input size 4: I_min 5 >= 4 (2 px short) (I_min: the smallest input at which no layer is critical)",
        f"models/yolo.py:{factory}:1: RF103 [yolo-m] the architecture is not refined for input size 4: I_min 7 >= 4 (4 px short) (I_min: the smallest input at which no layer is critical)",
    ]


def test_an_error_in_check_names_the_model(tmp_path):
    root = write_repo(tmp_path, broken=True)
    result = run_rflint(root, "check", "--no-cache", "broken")
    assert result.returncode == 2
    assert result.stderr.startswith("rflint: error: broken: ")


# ---------------------------------------------------------------------------------------------
# a builder in another package


def test_a_layer_built_by_a_builder_in_another_package_is_at_the_models_line(repo):
    found = {(f["code"], f["layer"]): f for f in _json(repo, "blocks")}
    body, head = line_of(repo, "models/blocknet.py", "self.body ="), line_of(repo, "models/blocknet.py", "self.head =")
    conv = line_of(repo, "lib/blocks.py", "return nn.Conv2d")
    assert (found["RF102", "body.3"]["filename"], found["RF102", "body.3"]["location"]) == ("models/blocknet.py", {"row": body, "column": 9})
    for layer in ("head.0", "head.1"):
        assert (found["RF101", layer]["filename"], found["RF101", layer]["location"]["row"]) == ("models/blocknet.py", head)
        assert found["RF101", layer]["built_at"] == [{"filename": "lib/blocks.py", "row": conv, "column": 5}]


def test_sarif_full_and_github_keep_the_builders_line_as_a_related_location(repo, tmp_path):
    out = tmp_path / "out"
    result = run_rflint(repo, "check", "--no-cache", "blocks", "-o", f"sarif:{out}/r.sarif", "-o", f"full:{out}/r.txt", "-o", f"github:{out}/r.gh")
    assert result.returncode == 1, result.stderr
    conv = line_of(repo, "lib/blocks.py", "return nn.Conv2d")
    results = json.loads((out / "r.sarif").read_text())["runs"][0]["results"]
    rf101 = [r for r in results if r["ruleId"] == "RF101"]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in rf101} == {"models/blocknet.py"}
    related = rf101[0]["relatedLocations"][0]["physicalLocation"]
    assert (related["artifactLocation"]["uri"], related["region"]["startLine"]) == ("lib/blocks.py", conv)
    assert f"  = built at lib/blocks.py:{conv}\n" in (out / "r.txt").read_text()
    assert f"%0A  built at: lib/blocks.py:{conv}" in (out / "r.gh").read_text()  # escaped newline


def test_noqa_on_the_users_line_silences_that_layers_findings_only(tmp_path):
    root = write_repo(tmp_path)
    model = root / "models/blocknet.py"
    model.write_text(model.read_text().replace("depth=2)\n", "depth=2)  # noqa: RF101\n"), encoding="utf-8")
    found = [(f["code"], f["layer"]) for f in _json(root, "blocks", exit_code=0)]  # no error left
    assert ("RF101", "head.0") not in found and ("RF101", "head.1") not in found
    assert ("RF102", "body.3") in found  # on the other builder call, not silenced
    assert not any(code == "RF100" for code, _ in found)  # the comment was used


# ---------------------------------------------------------------------------------------------
# installed library code


LIBRARY = """\
from torch import nn


class UNetLike(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(depth)])

    def forward(self, x):
        for conv in self.convs:
            x = conv(x)
        return x
"""

USER = """\
from monai_like import UNetLike


def build():
    return UNetLike(depth=6)
"""


def test_a_layer_built_in_site_packages_is_reported_at_the_users_call(tmp_path):
    """Six 3x3 convolutions at 8 px: fields 3 .. 13, so convs.4 (input field 9) and convs.5
    (11) are unproductive. None of them may point into site-packages (a pull request does not
    contain it); the SARIF location is the user's ``UNetLike(...)`` line."""
    (tmp_path / "venv/lib/site-packages/monai_like").mkdir(parents=True)
    (tmp_path / "venv/lib/site-packages/monai_like/__init__.py").write_text(LIBRARY, encoding="utf-8")
    (tmp_path / "net.py").write_text(USER, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\npythonpath = ["venv/lib/site-packages", "."]\n', encoding="utf-8")
    found = _json(tmp_path, "net.py:build", "--input-size", "8", "--task", "classification")
    call = line_of(tmp_path, "net.py", "return UNetLike")
    rf101 = [f for f in found if f["code"] == "RF101"]
    assert [f["layer"] for f in rf101] == ["convs.4", "convs.5"]
    assert all((f["filename"], f["location"]["row"]) == ("net.py", call) for f in rf101)
    assert all(f["built_at"][0]["filename"] == "venv/lib/site-packages/monai_like/__init__.py" for f in rf101)


# ---------------------------------------------------------------------------------------------
# the rule, unit by unit


def test_the_models_own_folder_wins_over_the_rest_of_the_project_and_libraries_never_win(tmp_path):
    project = Project.of(tmp_path, str(tmp_path / "models/net.py"))
    assert project.tier(str(tmp_path / "models/blocks/deep.py")) == 0
    assert project.tier(str(tmp_path / "lib/blocks.py")) == 1
    assert project.tier(str(tmp_path / ".venv/lib/site-packages/monai/net.py")) is None
    assert project.tier(nn.__file__) is None
    assert project.tier("/elsewhere/code.py") is None
    chain = [Frame(str(tmp_path / f), lineno=n) for f, n in (("lib/blocks.py", 5), ("lib/blocks.py", 11), ("models/net.py", 9), ("train.py", 3))]
    won, built = user_frame(chain, project)
    assert (won.file, won.line, built.file, built.line) == (str(tmp_path / "models/net.py"), 9, str(tmp_path / "lib/blocks.py"), 5)
    assert user_frame(chain[:2], project)[0].line == 5  # no model frame: the project's innermost
    assert user_frame(chain[2:], project)[1] is None  # built right there: no related location
    assert user_frame([Frame(nn.__file__, lineno=1)], project) is None


def _stage(depth):
    layers = []
    for _ in range(depth):
        layers.append(nn.Conv2d(4, 4, 3))  # the line each layer's chain starts at
    return nn.Sequential(*layers)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage = _stage(2)


def test_the_recorded_chain_starts_at_the_line_that_constructed_the_layer_not_its_init():
    with recording() as chains:
        net = _Net()
    source = Path(__file__).read_text().splitlines()
    conv_line = next(i for i, line in enumerate(source, 1) if "the line each layer's chain starts at" in line)
    stage_line = next(i for i, line in enumerate(source, 1) if "self.stage = _stage(2)" in line)
    first = [(f.file, f.line) for f in chains[net.stage[1]]]
    assert first[0] == (__file__, conv_line)
    assert (__file__, stage_line) in first
    assert chains[net][0].file == __file__  # the net itself: built by this test, not in torch
    assert nn.Module.__init__.__module__ == "torch.nn.modules.module"  # the patch is undone


def test_a_layer_without_a_recorded_chain_keeps_its_definition():
    from rflint.frontend.attribution import attribute
    from rflint.ir import Kind, Layer

    layer = Layer("c", "c", "Conv2d", Kind.WINDOW, module_type="torch.nn.Conv2d", definition=Source("/p/m.py", 3, 9))
    assert attribute([layer], {}, Project("/p/")) == [layer]
