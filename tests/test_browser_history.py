"""The search page's history, filters, place and counts in a real Chromium (Playwright), with
the back-forward cache off (Playwright's default, and any browser that evicts the page) and on
(as people's browsers have it).

Each history entry must show exactly the search its URL names (box, chips, filters, results,
title), whether htmx restores it from its own snapshot or from the server; filters must never
replace a field being typed in; coming back from an artwork keeps how far the visitor loaded;
headings say what the list is. Screenshots of the new states land in artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.browser import DESKTOP, BrowserCollection, opened_page, save_screenshot

pytestmark = pytest.mark.browser

SITE = " · Artwork search"


@pytest.fixture(params=["bfcache-off", "bfcache-on"])
def any_page(
    request: pytest.FixtureRequest, chromium: Any, chromium_bfcache: Any, live_server: Any
) -> Iterator[Any]:
    """A desktop page in Chromium with its back-forward cache off, then on."""
    browser = chromium_bfcache if request.param == "bfcache-on" else chromium
    with opened_page(browser, live_server, request, viewport=DESKTOP) as page:
        page.bfcache = request.param == "bfcache-on"
        yield page


def result_ids(page: Any) -> list[int]:
    return [
        int(value)
        for value in page.locator("#result-list .card").evaluate_all(
            "cards => cards.map(card => card.dataset.artworkId)"
        )
    ]


def search_requests(page: Any) -> list[str]:
    """HTMX searches the page sends from now on (URLs), collected as they leave."""
    sent: list[str] = []
    page.on(
        "request",
        lambda request: sent.append(request.url) if request.headers.get("hx-request") else None,
    )
    return sent


def expect_search(page: Any, *, q: str, artist: str, ids: list[int]) -> None:
    """The page shows the search `q` (+ `artist`) throughout: box, filter, results, title."""
    expect(page.locator("#q")).to_have_value(q)
    expect(page.locator("#f-artist")).to_have_value(artist)
    expect(page.locator("#results-heading")).to_contain_text(q)
    assert result_ids(page) == ids
    expect(page).to_have_title(f"“{q}”{SITE}")


def came_from_bfcache(page: Any) -> bool:
    return bool(page.evaluate("window.__stillHere === true"))


# --- 1 and 2: every history entry shows the search its URL names, and says so in its title ------


@pytest.mark.parametrize("restored_from", ["htmx-snapshot", "server"])
def test_back_and_forward_show_the_search_each_url_names(
    any_page: Any, browser_collection: BrowserCollection, restored_from: str
) -> None:
    page = any_page
    page.goto("/")
    page.fill("#q", "apples")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"/\?q=apples$"))
    apples = result_ids(page)

    # The next search is typed over the first one's fields, with a filter, then sent.
    page.fill("#q", "a ship in a storm")
    page.click("#filters summary")
    page.fill("#f-artist", "Monet")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"/\?q=a\+ship\+in\+a\+storm&artist=Monet$"))
    ship = result_ids(page)
    assert ship and ship != apples

    if restored_from == "server":
        # As when htmx's snapshot is gone (evicted, another tab): it asks the server.
        page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    page.go_back(wait_until="commit")
    expect(page).to_have_url(re.compile(r"/\?q=apples$"))
    expect_search(page, q="apples", artist="", ids=apples)
    expect(page.locator("#filters .badge")).to_have_count(0)
    save_screenshot(page, f"history_back_{restored_from}")

    if restored_from == "server":
        page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    page.go_forward(wait_until="commit")
    expect(page).to_have_url(re.compile(r"artist=Monet$"))
    expect_search(page, q="a ship in a storm", artist="Monet", ids=ship)
    expect(page.locator("#filters .badge")).to_have_text("1")
    assert page.js_errors == []


def test_the_title_names_every_kind_of_search(
    any_page: Any, browser_collection: BrowserCollection
) -> None:
    page = any_page
    reference = browser_collection.external["4428"]  # Courbet, Mère Grégoire
    page.goto("/")
    expect(page).to_have_title(f"The collection{SITE}")
    page.locator(f'#result-list .card[data-artwork-id="{reference}"] .find-similar').click()
    page.wait_for_url(re.compile(rf"similar={reference}$"))
    expect(page).to_have_title(f"Like “Mère Grégoire”{SITE}")
    page.fill("#q", "in blue")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=in\+blue"))
    expect(page).to_have_title(f"“in blue”, like “Mère Grégoire”{SITE}")
    page.click(".chip-remove")
    page.wait_for_url(re.compile(r"/\?q=in\+blue$"))
    expect(page).to_have_title(f"“in blue”{SITE}")
    page.go_back(wait_until="commit")
    expect(page).to_have_title(f"“in blue”, like “Mère Grégoire”{SITE}")
    # A fresh load of the same URL says the same.
    page.reload()
    expect(page).to_have_title(f"“in blue”, like “Mère Grégoire”{SITE}")


# --- 3: filters never fight the typist ---------------------------------------------------------


def test_typing_through_the_filters_at_human_speed_loses_nothing(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    page.click("#filters summary")
    page.click("#f-artist")
    # Each Tab commits a field and starts a search; its answer arrives while the next field is
    # being typed, and must not replace it.
    page.keyboard.type("Renoir", delay=120)
    page.keyboard.press("Tab")
    page.keyboard.type("1870", delay=150)
    page.keyboard.press("Tab")
    page.keyboard.type("1890", delay=150)
    page.keyboard.press("Tab")
    page.wait_for_url(re.compile(r"artist=Renoir&year_from=1870&year_to=1890$"))
    expect(page.locator("#f-artist")).to_have_value("Renoir")
    expect(page.locator("#f-year-from")).to_have_value("1870")
    expect(page.locator("#f-year-to")).to_have_value("1890")
    expect(page.locator(".field-error:not(:empty)")).to_have_count(0)
    expect(page.locator("#filter-count .badge")).to_have_text("3")
    assert page.js_errors == []


def test_a_year_that_is_not_a_number_is_said_beside_the_field(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    page.click("#filters summary")
    page.fill("#f-year-from", "18.5")
    page.press("#f-year-from", "Tab")
    message = page.locator("#year_from-error")
    expect(message).to_have_text(
        "The start year “18.5” is not a year: write it in digits, like 1850."
    )
    expect(page.locator("#f-year-from")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-year-from")).to_have_value("18.5")  # kept, to be corrected
    expect(page.locator("#results-heading")).to_contain_text("could not run")
    assert page.locator("#f-year-from").get_attribute("aria-describedby") == "year_from-error"
    save_screenshot(page, "filters_year_not_a_number")
    page.fill("#f-year-from", "1850")
    page.press("#f-year-from", "Enter")
    expect(message).to_be_empty()
    expect(page.locator("#f-year-from")).not_to_have_attribute("aria-invalid", "true")


def test_arrow_keys_on_a_closed_select_search_once_it_is_left(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    page.click("#filters summary")
    options = page.locator("#f-classification option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert len(options) >= 2, options  # "Any" and the collection's classifications
    sent = search_requests(page)
    page.focus("#f-classification")
    for _ in range(len(options) - 1):
        page.keyboard.press("ArrowDown")
        page.wait_for_timeout(150)
    expect(page.locator("#f-classification")).to_have_value(options[-1])
    page.wait_for_timeout(600)
    assert sent == []  # not one search per key press
    page.keyboard.press("Tab")
    page.wait_for_url(re.compile(r"classification="))
    assert len(sent) == 1 and "classification=" in sent[0]
    # Chosen from the open list (the mouse), it searches at once.
    page.select_option("#f-classification", options[0])
    page.wait_for_url(re.compile(r"/$"))


# --- 5: the visitor's place --------------------------------------------------------------------


def test_coming_back_from_an_artwork_keeps_the_place(
    any_page: Any, browser_collection: BrowserCollection, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    page = any_page
    page.goto("/?q=a+landscape")
    assert len(result_ids(page)) == 4
    page.click("#more a")
    expect(page.locator("#result-list .card")).to_have_count(8)
    page.click("#more a")
    expect(page.locator("#result-list .card")).to_have_count(12)
    page.wait_for_url(re.compile(r"\?q=a\+landscape&shown=12$"))
    loaded = result_ids(page)

    tenth = page.locator("#result-list .card").nth(9)
    tenth.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 40)")
    scroll = page.evaluate("window.scrollY")
    assert scroll > 300
    page.evaluate("window.__stillHere = true")
    tenth.locator(".card-link").click()
    page.wait_for_url(re.compile(rf"/artworks/{loaded[9]}/\?q=a\+landscape&rank=10$"))

    page.go_back(wait_until="commit")
    expect(page).to_have_url(re.compile(r"\?q=a\+landscape&shown=12$"))
    assert came_from_bfcache(page) == page.bfcache  # the mode under test is the real one
    expect(page.locator("#result-list .card")).to_have_count(12)
    assert result_ids(page) == loaded
    page.wait_for_function(f"Math.abs(window.scrollY - {scroll}) <= 2")
    expect(page.locator("#q")).to_have_value("a landscape")
    save_screenshot(page, f"place_kept_{'bfcache' if page.bfcache else 'no_bfcache'}")
    assert page.js_errors == []


def test_load_more_by_keyboard_focuses_the_first_new_result(
    browser_page: Any, browser_collection: BrowserCollection, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    page = browser_page
    page.goto("/?q=a+landscape")
    page.focus("#more a")
    page.keyboard.press("Enter")
    expect(page.locator("#result-list .card")).to_have_count(8)
    fifth = page.locator(f'#result-list .card[data-artwork-id="{result_ids(page)[4]}"]')
    expect(fifth.locator(".card-link")).to_be_focused()
    # The keyboard carries on from there: Tab reaches that result's "Find similar".
    page.keyboard.press("Tab")
    expect(fifth.locator(".find-similar")).to_be_focused()


def test_the_artwork_page_leads_back_to_its_search_and_through_its_results(
    browser_page: Any, browser_collection: BrowserCollection, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    page = browser_page
    page.goto("/?q=a+landscape&artist=e")
    ids = result_ids(page)
    page.click("#more a")
    expect(page.locator("#result-list .card")).to_have_count(min(8, 4 + len(ids)))
    ids = result_ids(page)
    assert len(ids) >= 6, ids
    page.locator("#result-list .card").nth(5).locator(".card-link").click()
    page.wait_for_url(re.compile(rf"/artworks/{ids[5]}/\?q=a\+landscape&artist=e&rank=6$"))
    save_screenshot(page, "artwork_from_a_search")

    page.click(".result-next")
    page.wait_for_url(re.compile(rf"/artworks/{ids[6]}/\?q=a\+landscape&artist=e&rank=7$"))
    page.click(".result-previous")
    page.click(".result-previous")
    page.wait_for_url(re.compile(rf"/artworks/{ids[4]}/\?q=a\+landscape&artist=e&rank=5$"))

    page.click(".back-to-search")
    page.wait_for_url(re.compile(rf"/\?q=a\+landscape&artist=e&shown=8#result-{ids[4]}$"))
    assert result_ids(page) == ids
    expect(page.locator(f"#result-{ids[4]}")).to_be_in_viewport()
    expect(page.locator("#f-artist")).to_have_value("e")


# --- 7: honest result counts -------------------------------------------------------------------


def test_the_heading_says_what_the_list_is(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    page.fill("#q", "xqzv 🦜🦜")
    page.press("#q", "Enter")
    heading = page.locator("#results-heading")
    expect(heading).to_have_text(re.compile(r"^\s*The 12 best matches for “xqzv 🦜🦜”\s*$"))
    expect(page.locator(".results-note")).to_contain_text("not a count of exact matches")
    save_screenshot(page, "counts_best_matches")

    page.goto("/?q=apples&offset=99999999")
    expect(heading).to_have_text(re.compile(r"^\s*Past the end of the results\s*$"))
    expect(page.locator(".message.empty")).to_have_text(
        "This page starts at result 10001, but there are only 12."
    )
    expect(page.locator(".first-page")).to_have_attribute("href", "/?q=apples")
    save_screenshot(page, "counts_past_the_end")
