"""The suite runs from a clean clone: without the 267 shared paintings it collects every test,
the bundled sample serves the tests that need some real paintings, and a test that names one of
the shared paintings skips, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def _pytest(*args: str, paintings: Path | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if paintings is not None:
        env["GALLERY_SAMPLE_PAINTINGS"] = str(paintings)
    # Its own test database name, should anything in it reach for one.
    env["GALLERY_TEST_DB_SUFFIX"] = env.get("GALLERY_TEST_DB_SUFFIX", "") + "_portable"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _collected(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_every_test_is_collected_without_the_shared_paintings(tmp_path: Path) -> None:
    without = _collected(_pytest("--collect-only", "-q", paintings=tmp_path / "absent"))
    usual = _collected(_pytest("--collect-only", "-q", paintings=None))
    assert len(without) > 300
    assert without == usual


def test_a_test_naming_a_shared_painting_skips_with_its_reason(tmp_path: Path) -> None:
    test = "tests/test_images.py::test_real_painting_is_stored_with_thumbnail_and_dimensions"
    result = _pytest("-q", "-rs", test, paintings=tmp_path / "absent")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 skipped" in result.stdout
    assert "names paintings of the 267 shared AIC paintings, absent from" in result.stdout
    assert str(tmp_path / "absent") in result.stdout
