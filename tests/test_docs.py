"""The documentation: the site in docs/ builds strictly, its generated pages follow their sources,
and the README stays a first page whose links resolve and whose test command is the one CI runs."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the site whose mkdocs.yml is in config_dir, with this checkout's
    rflint importable (the hook reads the rule registry and the configuration schema from it)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=config_dir, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build(ROOT, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def text_of(page: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def test_every_rule_page_is_generated_from_rules_dir(site):
    codes = sorted(p.stem for p in (ROOT / "rules").glob("RF*.md"))
    assert codes, "no rule pages in rules/"
    index = text_of(site / "rules" / "index.html")
    for code in codes:
        title = (ROOT / "rules" / f"{code}.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        assert title in text_of(site / "rules" / code / "index.html")
        assert code in index


def hook_module():
    """The MkDocs hook, imported from its file (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("rflint_pages", ROOT / "docs" / "hooks" / "rflint_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_lists_every_schema_key(site):
    schema = hook_module()._config_schema()  # the schema rflint validates [tool.rflint] against
    reference = text_of(site / "configuration" / "index.html")
    for key in schema["properties"]:
        assert f" {key} " in reference, key
    for name in ("model", "override", "op"):
        for key in schema["$defs"][name]["properties"]:
            assert f" {key} " in reference, f"{name}.{key}"
    assert "RF101" in reference and "unproductive-layer" in reference  # the registry's selectors


def test_python_api_page_renders_the_docstrings(site):
    import rflint
    import rflint.testing

    page = text_of(site / "python-api" / "index.html")
    for obj in (rflint.analyze, rflint.register_op, rflint.testing.assert_refined):
        first_line = obj.__doc__.strip().splitlines()[0].strip()
        assert text_of_fragment(first_line) in page, obj.__name__


def text_of_fragment(line: str) -> str:
    """A docstring line as the rendered page spells it (inline code loses its backticks)."""
    return re.sub(r"\s+", " ", line.replace("``", "").replace("`", "")).split(" (")[0]


def test_benchmarks_page_is_benchmarks_readme(site):
    first = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
    assert first in text_of(site / "benchmarks" / "index.html")


def test_strict_build_fails_on_a_broken_link(tmp_path):
    copy = tmp_path / "repo"
    for name in ("docs", "rules", "benchmarks", "examples"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("*.py", "__pycache__") if name == "benchmarks" else None)
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "concepts.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [a page](no-such-page.md).\n", encoding="utf-8")
    result = build(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


def readme_links() -> list[str]:
    return [target for target in LINK.findall(README.read_text(encoding="utf-8")) if "://" not in target]


def test_readme_relative_links_resolve():
    links = readme_links()
    assert "docs/assets/growth.png" in links  # the picture is in the repository
    missing = [t for t in links if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_readme_is_a_first_page_with_the_quickstart_first():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    first_block = re.search(r"```bash\n(.*?)```", text, re.DOTALL).group(1).splitlines()
    assert first_block == [
        'pip install -e ".[vision]" && rflint check torchvision:vgg16 --input-size 32',
        'pip install -e ".[test]" && python3 -m pytest',
    ]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-2:] == ['python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"', "python3 -m pytest"]
