"""Model code inside packages, as research repositories lay it out: files that use relative
imports, ``src/`` layouts, namespace packages, ``[tool.rflint] pythonpath``, and import errors
that say which module is missing and what to change."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from torch import nn

from project import write_project
from rflint.errors import TargetError
from rflint.sources.imports import locate
from rflint.sources.load import load_model


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


CONV = "from torch import nn\n\ndef conv(c):\n    return nn.Conv2d(c, c, 3)\n"


def test_a_file_in_a_package_is_imported_by_its_dotted_name_with_relative_imports(tmp_path, monkeypatch):
    root = write_project(tmp_path / "repo")
    monkeypatch.chdir(tmp_path)  # an unrelated working directory, no PYTHONPATH
    loaded = load_model(str(root / "src/acme/models/net.py:build"), kwargs={"stages": 3})
    assert type(loaded.module).__module__ == "acme.models.net"
    assert len(loaded.module.stages) == 3
    assert str(root / "src") not in sys.path  # the package root was on sys.path only while loading


def test_locate_finds_the_package_root_through_init_files(tmp_path):
    write(tmp_path / "src/pkg/__init__.py", "")
    write(tmp_path / "src/pkg/models/__init__.py", "")
    net = write(tmp_path / "src/pkg/models/net.py", "from ..x import y\n")
    loose = write(tmp_path / "scripts/train_net.py", "import torch\n")
    assert locate(net, []) == locate(net, [tmp_path]) == type(locate(net, []))("pkg.models.net", (tmp_path / "src").resolve())
    assert locate(loose, [tmp_path]).name == ""  # a loose script stays a script


def test_a_namespace_package_with_relative_imports_is_named_from_the_pythonpath_entry(tmp_path, monkeypatch):
    write(tmp_path / "src/nspkg/layers.py", CONV)
    write(tmp_path / "src/nspkg/models/net.py", "from ..layers import conv\n\ndef build_model():\n    return conv(3)\n")
    monkeypatch.chdir(tmp_path / "src/nspkg")
    loaded = load_model(str(tmp_path / "src/nspkg/models/net.py"), pythonpath=[str(tmp_path / "src"), str(tmp_path)])
    assert isinstance(loaded.module, nn.Conv2d)
    assert locate(tmp_path / "src/nspkg/models/net.py", [tmp_path / "src"]).name == "nspkg.models.net"
    # without the pythonpath entry the project root names it, as `python -c "import src.nspkg..."` would
    assert locate(tmp_path / "src/nspkg/models/net.py", [tmp_path]).name == "src.nspkg.models.net"


def test_a_flat_script_still_imports_its_siblings(tmp_path, monkeypatch):
    write(tmp_path / "models/helper_layers.py", CONV)
    write(tmp_path / "models/flat.py", "from helper_layers import conv\n\ndef build_model():\n    return conv(4)\n")
    monkeypatch.chdir(tmp_path)
    assert load_model("models/flat.py").module.in_channels == 4


def test_module_targets_resolve_against_the_pythonpath_from_any_directory(tmp_path, monkeypatch):
    root = write_project(tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    search = [str(root / "src"), str(root)]
    loaded = load_model("acme.models.net:build", kwargs={"width": 4}, pythonpath=search)
    assert loaded.module.stem[0].out_channels == 4
    assert str(root / "src") not in sys.path


def test_two_checkouts_of_the_same_package_load_their_own_code(tmp_path):
    for width, folder in ((3, "a"), (5, "b")):
        write(tmp_path / folder / "twin/__init__.py", "")
        write(tmp_path / folder / "twin/net.py", f"from torch import nn\n\ndef build_model():\n    return nn.Conv2d(3, {width}, 3)\n")
    a = load_model(str(tmp_path / "a/twin/net.py"))
    b = load_model(str(tmp_path / "b/twin/net.py"))
    assert (a.module.out_channels, b.module.out_channels) == (3, 5)


def test_an_edited_package_file_is_read_again(tmp_path):
    net = write(tmp_path / "edited/__init__.py", "").parent / "net.py"
    for width in (3, 6):
        write(net, f"from torch import nn\n\ndef build_model():\n    return nn.Conv2d(3, {width}, 3)\n")
        assert load_model(str(net)).module.out_channels == width


def test_a_package_that_shadows_an_imported_module_is_refused_with_the_fix(tmp_path):
    write(tmp_path / "json/__init__.py", "")
    write(tmp_path / "json/net.py", "def build():\n    pass\n")
    with pytest.raises(TargetError, match=r"a module named 'json' is already loaded") as info:
        load_model(str(tmp_path / "json/net.py"))
    assert "rename the folder" in info.value.hint


def test_a_missing_project_package_names_the_module_the_path_and_the_pythonpath_fix(tmp_path, monkeypatch):
    write(tmp_path / "lib/acmelayers/__init__.py", CONV)
    write(tmp_path / "models/net.py", "from acmelayers import conv\n\ndef build_model():\n    return conv(3)\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetError) as info:
        load_model("models/net.py", pythonpath=[str(tmp_path)])
    message = str(info.value)
    assert "no module named 'acmelayers'" in message
    assert "(imported at models/net.py:1)" in message
    assert "sys.path tried: models, ." in message  # the project's entries, as the user writes them
    assert info.value.hint.startswith('add pythonpath = ["lib"] to [tool.rflint]')
    assert "install" not in info.value.hint  # nothing is missing from the environment


def test_a_missing_third_party_package_is_an_install_hint(tmp_path):
    write(tmp_path / "net.py", "import rflint_absent_dep_xyz\n\ndef build_model():\n    pass\n")
    with pytest.raises(TargetError) as info:
        load_model(str(tmp_path / "net.py"), pythonpath=[str(tmp_path)])
    assert "no module named 'rflint_absent_dep_xyz'" in str(info.value)
    # the module's name is not its distribution's (cv2 / opencv-python): no `pip install NAME` is made up
    assert info.value.hint.startswith("rflint_absent_dep_xyz is neither in the project nor installed: install the distribution")
    assert "pip install" not in info.value.hint


def test_a_wrong_name_in_an_import_is_not_called_a_missing_dependency(tmp_path):
    write(tmp_path / "pkgx/__init__.py", "")
    write(tmp_path / "pkgx/layers.py", CONV)
    write(tmp_path / "pkgx/net.py", "from .layers import convv\n\ndef build():\n    pass\n")
    with pytest.raises(TargetError, match=r"cannot import name 'convv'") as info:
        load_model(str(tmp_path / "pkgx/net.py"))
    assert "install" not in info.value.hint and "fix the import" in info.value.hint
