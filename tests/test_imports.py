"""The layering the code promises: the IR, the receptive-field algebra, the rules, the report
renderers and the advisor import without torch (only the frontends, the loader and the CLI
commands that build models need it)."""

from __future__ import annotations

import subprocess
import sys

TORCH_FREE = [
    "rflint.ir",
    "rflint.rf.algebra",
    "rflint.rf.status",
    "rflint.rf.display",
    "rflint.checks",
    "rflint.advise.advisor",
    "rflint.advise.edits",
    "rflint.rf.sizes",
    "rflint.report",
    "rflint.ops.layout",
    "rflint.frontend.common",
    "rflint.frontend.definitions",
    "rflint.project.rule_docs",
    "rflint.project.config_schema",
    "rflint.sources.imports",
    "rflint.sources.guards",
    "rflint.engine.dependencies",
    "rflint.engine.cache_keys",
    "rflint.engine.cache_dir",
    "rflint.cli.outputs",
    "rflint.cli",  # torch only inside the commands that build models
]


def test_core_modules_import_with_torch_blocked():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any 'import torch' now raises ImportError\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    __import__(name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
