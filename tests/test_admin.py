"""The collection admin, driven through Django's test client as a logged-in staff user."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from pytest_django import Settings

from gallery.models import Artwork
from gallery.services import artwork_upsert
from tests.helpers import at, raw_png, sample_painting

pytestmark = pytest.mark.django_db


CHANGELIST = "admin:gallery_artwork_changelist"
BOMB = raw_png(100_000, 100_000, bit_depth=8, color_type=0, rows=b"\x00" * 16)


@pytest.fixture
def staff(client: Client) -> Client:
    user = User.objects.create_superuser("curator", "curator@example.org", "not-used")
    client.force_login(user)
    return client


@pytest.fixture
def artworks() -> list[Artwork]:
    rows = [
        ("aic", "866", "Helena Tromper Du Bois", "Anthony van Dyck", "Painting", "885.jpg"),
        ("aic", "100026", "A Seascape", "Claude Monet", "Painting", "887.jpg"),
        ("nga", "42", "Study of Hands", "Albrecht Dürer", "Drawing", "100342.jpg"),
    ]
    return [
        artwork_upsert(
            source=source,
            external_id=external_id,
            metadata={"title": title, "artist": artist, "classification": classification},
            image_data=sample_painting(name).read_bytes(),
        ).artwork
        for source, external_id, title, artist, classification, name in rows
    ]


def listed_titles(html: str, artworks: list[Artwork]) -> set[str]:
    return {a.title for a in artworks if f"/{a.pk}/change/" in html}


def test_changelist_shows_thumbnails_search_and_filters(
    staff: Client, artworks: list[Artwork]
) -> None:
    page = staff.get(reverse(CHANGELIST))
    html = page.content.decode()
    assert page.status_code == 200
    for art in artworks:
        assert f'<img src="{art.thumbnail.url}"' in html
    assert staff.get(reverse(CHANGELIST), {"q": "monet"}).status_code == 200
    assert listed_titles(staff.get(reverse(CHANGELIST), {"q": "monet"}).content.decode(),
                         artworks) == {"A Seascape"}  # fmt: skip
    assert listed_titles(staff.get(reverse(CHANGELIST), {"q": "tromper"}).content.decode(),
                         artworks) == {"Helena Tromper Du Bois"}  # fmt: skip
    by_source = staff.get(reverse(CHANGELIST), {"source__exact": "nga"}).content.decode()
    assert listed_titles(by_source, artworks) == {"Study of Hands"}
    by_class = staff.get(reverse(CHANGELIST), {"classification": "Painting"}).content.decode()
    assert listed_titles(by_class, artworks) == {"Helena Tromper Du Bois", "A Seascape"}


def test_change_page_shows_the_image(staff: Client, artworks: list[Artwork]) -> None:
    art = artworks[0]
    html = staff.get(reverse("admin:gallery_artwork_change", args=[art.pk])).content.decode()
    assert f'<a href="{art.image.url}"><img src="{art.thumbnail.url}"' in html


def test_regenerate_thumbnails_action_rebuilds_them(
    staff: Client, artworks: list[Artwork], settings: Settings, _media_root: Path
) -> None:
    first, second, third = artworks
    old_names = {a.pk: a.thumbnail.name for a in artworks}
    assert max(Image.open(at(_media_root, first.thumbnail.name)).size) == 400
    # The second artwork's original has gone missing: it is reported, the others go on.
    (at(_media_root, second.image.name)).unlink()
    settings.GALLERY_THUMBNAIL_SIZE = 120

    response = staff.post(
        reverse(CHANGELIST),
        {
            "action": "regenerate_thumbnails_action",
            "_selected_action": [first.pk, second.pk, third.pk],
        },
        follow=True,
    )
    text = response.content.decode()
    assert "Regenerated 2 thumbnail(s)." in text
    assert "Skipped aic:100026 (A Seascape)" in text
    for art in (first, third):
        art.refresh_from_db()
        assert art.thumbnail.name != old_names[art.pk]
        assert max(Image.open(at(_media_root, art.thumbnail.name)).size) == 120
        assert not at(_media_root, old_names[art.pk]).exists()
    second.refresh_from_db()
    assert second.thumbnail.name == old_names[second.pk]


def test_upload_in_admin_goes_through_the_safe_path(staff: Client, _media_root: Path) -> None:
    data = sample_painting("885.jpg").read_bytes()
    form = {
        "title": "Uploaded",
        "source": "upload",
        "external_id": "u-1",
        "image": SimpleUploadedFile("helena.jpg", data, content_type="image/jpeg"),
    }
    response = staff.post(reverse("admin:gallery_artwork_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    art = Artwork.objects.get(source="upload", external_id="u-1")
    assert art.image_sha256 == hashlib.sha256(data).hexdigest()
    assert (
        str(art.thumbnail.name).endswith(".webp")
        and (art.width, art.height) == Image.open(sample_painting("885.jpg")).size
    )

    # Django's own ImageField check refuses a non-image; our decoder refuses what that check
    # lets through (a PNG that claims 100,000 × 100,000 pixels).
    for name, content, message in (
        ("fake.jpg", b"not an image", "not an image"),
        ("bomb.png", BOMB, "10,000.0 megapixels; the limit is 64.0 megapixels"),
    ):
        bad = {**form, "external_id": "u-2", "image": SimpleUploadedFile(name, content)}
        response = staff.post(reverse("admin:gallery_artwork_add"), bad)
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not Artwork.objects.filter(external_id="u-2").exists()
    files = {p.relative_to(_media_root).as_posix() for p in _media_root.rglob("*") if p.is_file()}
    assert files == {art.image.name, art.thumbnail.name}


def test_clearing_the_image_removes_its_files(
    staff: Client,
    artworks: list[Artwork],
    _media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    art = artworks[0]
    original, thumbnail = at(_media_root, art.image.name), at(_media_root, art.thumbnail.name)
    change = reverse("admin:gallery_artwork_change", args=[art.pk])
    form = {
        "title": art.title,
        "artist": art.artist,
        "classification": art.classification,
        "source": art.source,
        "external_id": art.external_id,
        "image-clear": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(change, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    art.refresh_from_db()
    assert not art.image and not art.thumbnail and art.image_sha256 == ""
    assert not original.exists() and not thumbnail.exists()


def test_collections_in_the_artwork_admin(staff: Client, artworks: list[Artwork]) -> None:
    from gallery.models import Collection

    prints = Collection.objects.create(name="prints")
    data = sample_painting("887.jpg").read_bytes()
    form = {
        "title": "A print",
        "collection": str(prints.pk),
        "source": "upload",
        "external_id": "p-1",
        "image": SimpleUploadedFile("print.jpg", data, content_type="image/jpeg"),
    }
    response = staff.post(reverse("admin:gallery_artwork_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    # One artwork, in the chosen collection, with its image stored through the safe path.
    (art,) = Artwork.objects.filter(external_id="p-1")
    assert art.collection == prints and art.image_sha256 == hashlib.sha256(data).hexdigest()
    in_prints = staff.get(reverse(CHANGELIST), {"collection__id__exact": prints.pk})
    assert listed_titles(in_prints.content.decode(), [*artworks, art]) == {"A print"}
    collections = staff.get(reverse("admin:gallery_collection_changelist")).content.decode()
    assert "prints" in collections and "default" in collections
