"""Exploring in a real Chromium: a facet clicked filters the search, and the page its URL gives
on a reload is the same; "why this result" opens from the keyboard; the artwork page shows more
by its artist. axe-core finds nothing serious in these states."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.axe import assert_accessible, small_targets
from tests.fixtures.browser import BrowserCollection, save_screenshot

pytestmark = pytest.mark.browser


def page_state(page: Any) -> dict[str, Any]:
    """What a visitor sees of a search: the box, the filters, the heading, the cards, the chosen
    facets."""
    return {
        "q": page.locator("#q").input_value(),
        "artist": page.locator("#f-artist").input_value(),
        "year_from": page.locator("#f-year-from").input_value(),
        "year_to": page.locator("#f-year-to").input_value(),
        "heading": page.locator("#results-heading").inner_text(),
        "cards": page.locator("#result-list .card").evaluate_all(
            "cards => cards.map(card => card.dataset.artworkId)"
        ),
        "chosen": page.locator(".facet-value[aria-current=true] .facet-label").all_inner_texts(),
        "title": page.title(),
    }


def test_clicking_a_facet_filters_and_its_url_gives_the_same_page(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/?q=a+landscape")
    expect(page.locator("#result-list .card")).to_have_count(12)
    facets = page.locator("details.facets")
    expect(facets).not_to_have_attribute("open", "")
    facets.locator("summary").click()
    monet = facets.locator(".facet-value", has_text="Claude Monet")
    expect(monet.locator(".facet-count")).to_have_text("2")
    save_screenshot(page, "facets_open")
    assert_accessible(page, "search_facets")
    assert small_targets(page, ".facets summary, .facet-value") == []

    monet.click()
    page.wait_for_url(re.compile(r"/\?q=a\+landscape&artist=Claude\+Monet$"))
    expect(page.locator("#result-list .card")).to_have_count(2)
    chosen = page.locator(".facet-value[aria-current=true]")
    expect(chosen).to_contain_text("Claude Monet")
    expect(page.locator("#f-artist")).to_have_value("Claude Monet")
    monets = {browser_collection.external["14598"], browser_collection.external["14620"]}
    after_click = page_state(page)
    assert {int(i) for i in after_click["cards"]} == monets
    save_screenshot(page, "facets_chosen")

    page.reload()
    expect(page.locator("#result-list .card")).to_have_count(2)
    assert page_state(page) == after_click

    # Choosing the artist again removes it; a century, chosen by keyboard, filters by years.
    page.locator(".facet-value[aria-current=true]", has_text="Claude Monet").click()
    page.wait_for_url(re.compile(r"/\?q=a\+landscape$"))
    expect(page.locator("#f-artist")).to_have_value("")
    expect(page.locator("#result-list .card")).to_have_count(12)
    page.locator("details.facets summary").click()
    century = page.locator(".facet-value", has_text="19th century")
    century.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?q=a\+landscape&year_from=1800&year_to=1899$"))
    expect(page.locator("#f-year-from")).to_have_value("1800")
    expect(page.locator(".facet-value[aria-current=true]")).to_contain_text("19th century")
    after_keyboard = page_state(page)
    page.reload()
    expect(page.locator("#result-list .card")).to_have_count(len(after_keyboard["cards"]))
    assert page_state(page) == after_keyboard
    assert page.js_errors == []


def test_why_this_result_opens_from_the_keyboard(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    reference = browser_collection.external["4428"]
    page.goto(f"/?q=a+portrait&similar={reference}")
    first = page.locator("#result-list .card").first
    why = first.locator("details.why")
    expect(why.locator("p").first).to_be_hidden()
    summary = why.locator("summary")
    expect(summary).to_have_accessible_name(re.compile(r"^Why this result"))
    summary.focus()
    page.keyboard.press("Enter")
    expect(why).to_have_attribute("open", "")
    text = why.inner_text()
    # Two searches ran: the words and the reference; each place is said, or its absence.
    assert re.search(
        r"\d+(st|nd|rd|th) by your words|Not among the \d+ closest by your words", text
    )
    assert re.search(r"like “Mère Grégoire”", text)
    assert re.search(r"Fused score 0\.\d{4}", text)
    save_screenshot(page, "why_this_result")
    assert_accessible(page, "search_why")
    page.keyboard.press("Enter")
    expect(why).not_to_have_attribute("open", "")
    assert page.js_errors == []


def test_artwork_page_shows_more_by_the_artist(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    first, second = browser_collection.external["14598"], browser_collection.external["14620"]
    page.goto(f"/artworks/{first}/")
    strip = page.locator(".artist-strip")
    expect(strip.locator("h2")).to_have_text("More by Claude Monet")
    expect(strip.locator(".card")).to_have_count(1)
    expect(strip.locator(".card").first).to_have_attribute("data-artwork-id", str(second))
    assert_accessible(page, "artwork_with_artist_strip")
    strip.locator(".card-link").click()
    page.wait_for_url(re.compile(rf"/artworks/{second}/$"))
    expect(page.locator(".artist-strip .card")).to_have_count(1)
    expect(page.locator(".artist-strip .card").first).to_have_attribute(
        "data-artwork-id", str(first)
    )
    page.locator(".artist-strip a", has_text="All artworks by Claude Monet").click()
    page.wait_for_url(re.compile(r"/\?artist=Claude\+Monet$"))
    expect(page.locator("#result-list .card")).to_have_count(2)

    # The only work of its artist here: no strip.
    page.goto(f"/artworks/{browser_collection.external['866']}/")
    expect(page.locator(".similar-strip")).to_be_visible()
    expect(page.locator(".artist-strip")).to_have_count(0)
    assert page.js_errors == []
