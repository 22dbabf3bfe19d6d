"""Query images: validated, kept under a random id for a short while, then purged."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image
from pytest_django import Settings

from gallery.images import ImageError
from gallery.uploads import (
    is_upload_id,
    upload_dir,
    upload_load,
    upload_preview,
    upload_store,
    uploads_purge,
)
from tests.helpers import jpeg_bytes


def test_store_then_load_returns_the_same_bytes(aic_image_bytes: bytes) -> None:
    stored = upload_store(data=aic_image_bytes)
    assert is_upload_id(stored.upload_id)
    loaded = upload_load(upload_id=stored.upload_id)
    assert loaded is not None and loaded.data == aic_image_bytes
    preview = upload_preview(upload_id=stored.upload_id)
    assert preview is not None
    with Image.open(io.BytesIO(preview)) as image:
        assert image.format == "WEBP" and max(image.size) <= 160


def test_ids_are_random_and_distinct() -> None:
    ids = {upload_store(data=jpeg_bytes()).upload_id for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"just some text, not a picture", "not an image"),
        (jpeg_bytes()[:200], "damaged or incomplete"),
    ],
)
def test_bad_bytes_are_refused_and_nothing_is_written(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        upload_store(data=data)
    assert not upload_dir().exists() or not any(upload_dir().iterdir())


@pytest.mark.parametrize(
    "upload_id",
    [
        "",
        "short",
        "../../etc/passwd",
        "a" * 30 + "/x",
        "a" * 30 + ".webp",
        "é" * 20,
        "a" * 30 + "\n",  # "$" in a regex matches before a trailing newline
    ],
)
def test_malformed_ids_find_nothing(upload_id: str) -> None:
    assert not is_upload_id(upload_id)
    assert upload_load(upload_id=upload_id) is None
    assert upload_preview(upload_id=upload_id) is None


def test_unknown_id_finds_nothing() -> None:
    assert upload_load(upload_id="A" * 24) is None


def test_expired_uploads_are_gone_and_purged(settings: Settings) -> None:
    settings.GALLERY_QUERY_UPLOAD_TTL = 60
    old = upload_store(data=jpeg_bytes())
    fresh = upload_store(data=jpeg_bytes(color=(10, 20, 200)))
    past = time.time() - 120
    for path in upload_dir().glob(old.upload_id + "*"):
        os.utime(path, (past, past))

    assert upload_load(upload_id=old.upload_id) is None
    assert upload_preview(upload_id=old.upload_id) is None
    assert upload_load(upload_id=fresh.upload_id) is not None

    assert uploads_purge() == 2  # the original and its preview
    remaining = sorted(path.name for path in Path(upload_dir()).iterdir())
    assert remaining == sorted([fresh.upload_id, fresh.upload_id + ".webp"])


def test_a_new_upload_purges_expired_ones(settings: Settings) -> None:
    settings.GALLERY_QUERY_UPLOAD_TTL = 60
    old = upload_store(data=jpeg_bytes())
    past = time.time() - 120
    for path in upload_dir().glob(old.upload_id + "*"):
        os.utime(path, (past, past))
    upload_store(data=jpeg_bytes())
    assert not list(upload_dir().glob(old.upload_id + "*"))
