"""The search page's layout: on a phone (390×844, Chromium's mobile emulation) the search box near
the top, an open filter panel that leaves the results within reach, and a placeholder that fits
its box; on a wide desktop (1440×900) the same first screen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.browser import BrowserCollection, opened_page, save_screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

# The box's top edge: header and notices above it take at most this much of the first screen.
MAX_SEARCH_BOX_TOP = 150
# With the filter panel open, the first results still start within the first screen.
MAX_RESULTS_TOP_WITH_FILTERS = 620

PLACEHOLDER_OVERFLOW = """input => {
  const style = getComputedStyle(input);
  const context = document.createElement("canvas").getContext("2d");
  context.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return context.measureText(input.placeholder).width - room;
}"""


@pytest.fixture
def phone_page(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    with opened_page(
        chromium, live_server, request, viewport=PHONE, is_mobile=True, has_touch=True
    ) as page:
        yield page


def top(page: Any, selector: str) -> float:
    return page.locator(selector).first.evaluate("el => el.getBoundingClientRect().top")


def test_search_box_is_near_the_top(phone_page: Any, browser_collection: BrowserCollection) -> None:
    page = phone_page
    page.goto("/")
    expect(page.locator(".offline-notice")).to_be_visible()  # the banner counts too
    assert top(page, "#q") <= MAX_SEARCH_BOX_TOP
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save_screenshot(page, "phone_landing", full_page=False)
    assert page.js_errors == []


def test_open_filters_leave_the_results_in_reach(
    phone_page: Any, browser_collection: BrowserCollection
) -> None:
    page = phone_page
    page.goto("/?q=a+landscape")
    expect(page.locator("#result-list .card")).to_have_count(12)
    page.locator("#filters summary").click()
    expect(page.locator("#f-artist")).to_be_visible()
    save_screenshot(page, "phone_filters_open", full_page=False)
    assert top(page, "#results") <= MAX_RESULTS_TOP_WITH_FILTERS
    assert top(page, "#result-list .card") < PHONE["height"]
    # Every filter stays usable: a field as wide as a thumb, none clipped off screen.
    boxes = page.locator("#filters input, #filters select").evaluate_all(
        "els => els.map(el => el.getBoundingClientRect().toJSON())"
    )
    for box in boxes:
        assert box["width"] >= 64 and box["height"] >= 44 and box["right"] <= PHONE["width"]
    assert page.js_errors == []


@pytest.mark.parametrize("chip", [False, True], ids=["plain", "with_chip"])
def test_placeholder_fits_the_box(
    phone_page: Any, browser_collection: BrowserCollection, chip: bool
) -> None:
    page = phone_page
    page.goto(f"/?similar={browser_collection.ids[0]}" if chip else "/")
    box = page.locator("#q")
    assert box.get_attribute("placeholder")
    # A few pixels to spare: the canvas and the field may pick slightly different fallback fonts.
    assert box.evaluate(PLACEHOLDER_OVERFLOW) <= -6
    # Text typed there is not shrunk below 16 px (phones zoom into smaller fields).
    assert float(box.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) >= 16


def test_wide_desktop_first_screen(
    chromium: Any, live_server: Any, browser_collection: BrowserCollection
) -> None:
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1440, "height": 900}, locale="en-US"
    )
    try:
        page = context.new_page()
        page.goto("/?q=a+landscape")
        expect(page.locator("#result-list .card")).to_have_count(12)
        assert top(page, "#q") <= MAX_SEARCH_BOX_TOP
        assert top(page, "#result-list .card") < 900 / 2  # the first results in the first half
        assert page.locator("#q").evaluate(PLACEHOLDER_OVERFLOW) <= -6
        save_screenshot(page, "desktop_1440_results", full_page=False)
        page.locator("#filters summary").click()
        save_screenshot(page, "desktop_1440_filters_open", full_page=False)
    finally:
        context.close()
