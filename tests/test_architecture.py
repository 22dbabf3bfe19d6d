"""The layers (README, "Architecture"): the import-linter contract in pyproject.toml holds, and it
places every module of gallery/, so a new module cannot slip past it unplaced."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

from importlinter.api import read_configuration

import gallery
from tests.helpers import ROOT

PYPROJECT = ROOT / "pyproject.toml"


def _layered_modules() -> set[str]:
    contracts = read_configuration(str(PYPROJECT))["contracts_options"]
    return {
        name.strip().strip("()")
        for contract in contracts
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for name in re.split(r"[|:]", layer)
    }


def test_every_gallery_module_has_a_layer() -> None:
    modules = {f"gallery.{module.name}" for module in pkgutil.iter_modules(gallery.__path__)}
    assert modules - _layered_modules() == set()


def test_imports_keep_to_the_layers() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--config", str(PYPROJECT), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
