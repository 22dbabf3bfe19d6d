from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_django import Settings

from tests.helpers import one_painting, painting_records

# Fixtures live in one module per area, so that each area's owner edits only its own file.
pytest_plugins = [
    "tests.fixtures.model",
    "tests.fixtures.corpus",
    "tests.fixtures.browser",
    "tests.fixtures.broker",
    "tests.fixtures.jobs",
]


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path, settings: Settings) -> Path:
    """Every test writes its images into its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _fresh_rate_limit_budget() -> None:
    """Every test starts with the whole default rate-limit budget of its client (the suite's
    requests all come from one address, and one budget covers every search entry point)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def aic_records() -> list[dict[str, Any]]:
    """The real paintings' records: the 267 shared ones when present, else the bundled 100."""
    return painting_records()


@pytest.fixture(scope="session")
def aic_image_bytes() -> bytes:
    """One real painting, as its JPEG bytes."""
    return one_painting().read_bytes()
