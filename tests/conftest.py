from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.conf import settings

# Fixtures live in one module per area, so that each area's owner edits only its own file.
pytest_plugins = ["tests.fixtures.model", "tests.fixtures.corpus", "tests.fixtures.browser"]

AIC_DIR = Path(
    os.environ.get(
        "GALLERY_SAMPLE_PAINTINGS",
        settings.BASE_DIR.parent / "shared" / "data" / "aic-paintings",
    )
)


def pytest_configure() -> None:
    if not AIC_DIR.is_dir():
        raise pytest.UsageError(f"the sample paintings are missing: {AIC_DIR}")


@pytest.fixture(autouse=True)
def _media_root(tmp_path: Path, settings) -> Path:  # type: ignore[no-untyped-def]
    """Every test writes its images into its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def aic_records() -> list[dict]:
    return json.loads((AIC_DIR / "artworks.json").read_text())


@pytest.fixture(scope="session")
def aic_image_bytes() -> bytes:
    """One real painting, as its JPEG bytes."""
    return (AIC_DIR / "images" / "866.jpg").read_bytes()


def jpeg_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()
