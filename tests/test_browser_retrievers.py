"""Trying a retriever from its admin change page in Chromium: text and find-similar run on the
saved configuration over twelve real paintings embedded with the offline test encoder, and the
panel shows thumbnails, each result's rank per search and the stage timings."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from search.models import Retriever
from tests.fixtures.browser import BrowserCollection, save_screenshot
from tests.helpers import curators_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-curator-password"


def test_a_curator_tries_a_retriever_on_its_change_page(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    user = User.objects.create_user("registrar", password=PASSWORD, is_staff=True)
    user.groups.add(curators_group())
    retriever = Retriever.objects.get(name="default")
    page = browser_page
    change = f"/admin/search/retriever/{retriever.pk}/change/"
    page.goto(f"/admin/login/?next={change}")
    page.fill("#id_username", "registrar")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{change}")
    # The configuration is shown indented, one key a line.
    assert '\n  "parameters": {\n' in page.input_value("#id_config")

    first = browser_collection.ids[0]
    page.fill("#try-artwork", str(first))
    page.fill("#try-text", "a portrait")
    page.get_by_role("button", name="Try").click()
    results = page.locator("#try-results .try-result")
    results.first.wait_for()
    ids = [int(x) for x in results.evaluate_all("els => els.map(e => e.dataset.artworkId)")]
    assert sorted(ids) == sorted(browser_collection.ids)
    for item in results.all():
        assert item.locator("img").get_attribute("src")
        ranks = item.locator(".try-ranks").inner_text()
        if int(item.get_attribute("data-artwork-id")) == first:
            # Find-similar leaves the artwork itself out: it is ranked by the text search alone.
            assert ranks.count("#") == 1, ranks
        else:
            assert ranks.count("#") == 2, ranks  # a rank from each of the two searches
    stages = page.locator(".try-stages").inner_text()
    assert "feature_search" in stages and "text" in stages and "document" in stages
    assert [e for e in page.js_errors if "/favicon.ico" not in e] == []
    save_screenshot(page, "admin_retriever_try")

    # An uploaded image alone: one image search, every painting ranked by it.
    page.fill("#try-artwork", "")
    page.fill("#try-text", "")
    page.set_input_files("#try-image", str(browser_collection.image_paths[first]))
    page.get_by_role("button", name="Try").click()
    page.locator(".try-stages", has_text="content").wait_for()
    image_ranked = page.locator("#try-results .try-result")
    assert image_ranked.count() == len(browser_collection.ids)
    # The painting itself is the nearest to its own image.
    assert image_ranked.first.get_attribute("data-artwork-id") == str(first)
    assert image_ranked.first.locator(".try-ranks").inner_text().count("#") == 1
    # Nothing was saved: the retriever is as it was.
    assert Retriever.objects.get(pk=retriever.pk).config == retriever.config
