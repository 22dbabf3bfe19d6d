"""Switching the active embedding feature from the admin in Chromium: the models overview shows
each feature's counts, and the activation action refuses an incomplete feature, then switches
searches to it once its vectors are complete."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from gallery.models import Artwork
from gallery.services import artwork_images_changed, artwork_upsert
from search.models import Embedding, Feature
from search.models.embeddings import DIMENSIONS
from tests.fixtures.browser import save_screenshot
from tests.helpers import curators_group, sample_painting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-curator-password"


def vector(artwork: Artwork, feature: Feature) -> None:
    Embedding.objects.create(
        artwork=artwork,
        feature=feature,
        vector=[0.5] * DIMENSIONS,
        image_sha256=artwork.image_sha256,
    )


def test_a_curator_switches_the_active_model(browser_page: Any) -> None:
    receivers = artwork_images_changed.receivers[:]
    artwork_images_changed.receivers = []  # vectors are written below, not by a worker
    try:
        artworks = [
            artwork_upsert(
                source="local",
                external_id=name,
                metadata={"title": name},
                image_data=sample_painting(name).read_bytes(),
            ).artwork
            for name in ("100342.jpg", "100352.jpg")
        ]
    finally:
        artwork_images_changed.receivers = receivers
        artwork_images_changed.sender_receivers_cache.clear()
    old = Feature.objects.create(name="old@v1", model_name="old-checkpoint", is_active=True)
    new = Feature.objects.create(name="new@v1", model_name="new-checkpoint")
    for artwork in artworks:
        vector(artwork, old)
    vector(artworks[0], new)
    user = User.objects.create_user("registrar", password=PASSWORD, is_staff=True)
    user.groups.add(curators_group())

    page = browser_page
    page.goto("/admin/login/?next=/admin/search/feature/")
    page.fill("#id_username", "registrar")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/search/feature/")

    def activate_new() -> None:
        page.locator(f"input[name=_selected_action][value='{new.pk}']").check()
        page.select_option("select[name=action]", "activate_if_complete")
        page.get_by_role("button", name="Go").click()
        page.wait_for_url("**/admin/search/feature/")

    activate_new()
    # (The admin's message list capitalises the first letter.)
    assert "New@v1 is not complete: 1 artwork(s)" in page.locator(".messagelist").text_content()
    new.refresh_from_db()
    assert not new.is_active

    vector(artworks[1], new)
    activate_new()
    assert "New@v1 is the active feature" in page.locator(".messagelist").text_content()
    new.refresh_from_db()
    old.refresh_from_db()
    assert new.is_active and not old.is_active
    row = page.locator("#result_list tbody tr", has_text="new@v1")
    assert row.locator(".field-is_active img").get_attribute("alt") == "True"
    assert row.locator(".field-current_vectors").inner_text() == "2"
    assert row.locator(".field-missing").inner_text() == "0"
    save_screenshot(page, "admin_features_switched")
