"""One torch version for every install and image: pyproject.toml pins it, and `make install` and
both Dockerfiles install that same version rather than whatever a base image carries."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT


def _pinned() -> str:
    match = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert match, "pyproject.toml pins no torch version"
    return match.group(1)


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("Makefile", r"torch==([0-9][0-9.]*)"),
        ("docker/Dockerfile", r"ARG TORCH_VERSION=([0-9][0-9.]*)"),
        ("docker/Dockerfile.gpu", r"ARG TORCH_VERSION=([0-9][0-9.]*)"),
    ],
)
def test_every_install_uses_the_pinned_torch(path: str, pattern: str) -> None:
    found = re.findall(pattern, (ROOT / path).read_text())
    assert found and set(found) == {_pinned()}, f"{path} installs torch {found or 'unpinned'}"


def test_no_image_starts_from_a_torch_of_its_own() -> None:
    for dockerfile in sorted((ROOT / "docker").glob("Dockerfile*")):
        bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
        assert bases and not [base for base in bases if "torch" in base], (dockerfile.name, bases)
