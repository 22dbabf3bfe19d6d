"""Accessibility of the pages in a real Chromium: axe-core finds no serious or critical violation on
the search page (empty, results, chips, error), the artwork page and the admin changelist; every
page has one h1; touch targets are at least 44 px; the timing details are readable; links are named
by what they show."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.axe import assert_accessible, axe_violations, describe, small_targets
from tests.fixtures.browser import BrowserCollection, save_screenshot

pytestmark = pytest.mark.browser


def test_search_page_states_pass_axe(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    expect(page.locator(".results-status")).to_contain_text("12 artworks")
    assert_accessible(page, "search_empty")

    page.goto("/?q=a+portrait+of+a+woman")
    expect(page.locator("#result-list .card")).to_have_count(12)
    page.locator(".search-details summary").click()  # the timing, opened: it must be readable
    expect(page.locator(".timing")).to_be_visible()
    assert_accessible(page, "search_results")

    reference = browser_collection.external["4428"]
    page.goto(f"/?q=wearing+blue&similar={reference}&artist=a")
    expect(page.locator(".chip-similar")).to_be_visible()
    assert_accessible(page, "search_chips")

    assert page.js_errors == []

    # A search the server refuses (422): the browser logs the status, which is expected here.
    page.goto("/?year_from=1900&year_to=1800")
    expect(page.locator(".message.error")).to_be_visible()
    assert_accessible(page, "search_error")


def test_find_similar_links_are_named_by_their_text_and_easy_to_tap(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/?q=a+landscape")
    links = page.locator("#result-list .find-similar")
    expect(links).to_have_count(12)
    first = page.locator("#result-list .card").first
    title = first.locator(".card-title").inner_text()
    name = first.locator(".find-similar")
    # The accessible name starts with what is seen ("Find similar"), so voice control finds it,
    # and says which artwork it is about.
    expect(name).to_have_accessible_name(re.compile(r"^Find similar\b.*" + re.escape(title)))
    assert small_targets(page, "#result-list .find-similar") == []
    assert small_targets(page, "#q, #search-form button, .filters summary, #more .button") == []

    reference = browser_collection.external["866"]
    page.goto(f"/?similar={reference}")
    assert small_targets(page, ".chip-remove") == []


def test_artwork_page_passes_axe(browser_page: Any, browser_collection: BrowserCollection) -> None:
    page = browser_page
    artwork_id = browser_collection.external["4428"]
    page.goto(f"/artworks/{artwork_id}/")
    expect(page.locator("h1")).to_have_text("Mère Grégoire")
    # The link around the picture says where it goes.
    expect(page.locator(".artwork-image-link")).to_have_accessible_name(
        re.compile(r"Mère Grégoire", re.IGNORECASE)
    )
    assert_accessible(page, "artwork")
    assert small_targets(page, ".artwork-actions .button") == []


def test_admin_changelist_passes_axe(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("curator", "curator@example.org", "a-long-password")
    page = browser_page
    page.goto("/admin/login/?next=/admin/gallery/artwork/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "a-long-password")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/gallery/artwork/$"))
    expect(page.locator("#result_list tbody tr")).to_have_count(12)
    save_screenshot(page, "a11y_admin_changelist")
    violations = axe_violations(page)
    assert not violations, describe(violations)
