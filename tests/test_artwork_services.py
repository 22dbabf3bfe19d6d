"""Saving an artwork edited in a form (the admin's change page) through the collection's
services: a new image is stored like an imported one, a removed image takes its files along."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from gallery.models import Artwork
from gallery.services import artwork_save_with_image, artwork_save_without_image, artwork_upsert
from tests.helpers import at, sample_painting

pytestmark = pytest.mark.django_db


def _imported() -> Artwork:
    return artwork_upsert(
        source="local",
        external_id="s-1",
        metadata={"title": "Before"},
        image_data=sample_painting("885.jpg").read_bytes(),
    ).artwork


def test_saving_without_an_image_removes_its_files_and_what_came_from_them(
    _media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    artwork = _imported()
    original, thumbnail = (
        at(_media_root, artwork.image.name),
        at(_media_root, artwork.thumbnail.name),
    )
    assert original.exists() and thumbnail.exists()
    artwork.title = "After"
    with django_capture_on_commit_callbacks(execute=True):
        artwork_save_without_image(artwork=artwork)
    artwork.refresh_from_db()
    assert artwork.title == "After"
    assert not artwork.image and not artwork.thumbnail
    assert (artwork.width, artwork.height, artwork.image_sha256) == (None, None, "")
    assert not original.exists() and not thumbnail.exists()


def test_saving_with_a_new_image_stores_it_as_an_import_would(
    _media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    artwork = _imported()
    old_original = at(_media_root, artwork.image.name)
    data = sample_painting("887.jpg").read_bytes()
    artwork.title = "Edited"
    with django_capture_on_commit_callbacks(execute=True):
        result = artwork_save_with_image(artwork=artwork, image_data=data)
    assert result.image_changed and result.outcome == "updated"
    assert artwork.title == "Edited"
    assert artwork.image_sha256 == hashlib.sha256(data).hexdigest()
    assert str(artwork.thumbnail.name).endswith(".webp")
    assert at(_media_root, artwork.image.name).exists() and not old_original.exists()
