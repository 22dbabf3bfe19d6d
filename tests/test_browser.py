"""The gallery pages in a real browser: Debian's Chromium driven by Playwright, against the live
server, over twelve real paintings embedded with the offline test encoder.

The test encoder has random weights, so no test asserts that a result is semantically right;
each asserts that the page shows exactly the ranking the stored vectors imply (computed here
with numpy), which fails if the page, the URL state or the retriever wiring is wrong.
Screenshots of every test land in artifacts/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from search.fusion import rrf
from tests.fixtures.browser import BrowserCollection, save_screenshot

pytestmark = pytest.mark.browser

# Distances this close could legitimately swap between pgvector (float32) and numpy (float64).
TIE = 1e-5


def result_ids(page: Any) -> list[int]:
    return [
        int(value)
        for value in page.locator("#result-list .card").evaluate_all(
            "cards => cards.map(card => card.dataset.artworkId)"
        )
    ]


def text_vector(text: str) -> np.ndarray:
    from search.encoder import get_encoder
    from search.retriever import normalise_text

    return get_encoder().encode_texts([normalise_text(text)])[0]


def assert_ranked(ids: list[int], expected: list[int], distances: dict[int, float]) -> None:
    """`ids` is `expected`, except that near-ties (within TIE) may come in either order."""
    assert sorted(ids) == sorted(expected)
    for better, worse in zip(ids, ids[1:], strict=False):
        assert distances[better] <= distances[worse] + TIE, (ids, expected)


def search_text(page: Any, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"[?&]q=" + re.escape(text.replace(" ", "+")) + r"(&|$)"))
    expect(page.locator(".results-status")).to_contain_text(f"for “{text}”")


def no_js_errors(page: Any) -> None:
    # CSP violations (an inline script or style) are reported as console errors.
    assert page.js_errors == []


def test_text_query_shows_ranked_results(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    expect(page.locator(".results-status")).to_contain_text("The collection · 12 artworks")
    expect(page.locator(".offline-notice")).to_have_text(
        "offline test encoder: results are not semantic"
    )
    save_screenshot(page, "landing_desktop")
    search_text(page, "a portrait of a woman")

    query = text_vector("a portrait of a woman")
    ids = result_ids(page)
    assert len(ids) == 12
    assert_ranked(ids, browser_collection.ranking(query), browser_collection.distances(query))
    expect(page.locator(".results-status")).to_contain_text("The 12 best matches")
    expect(page.locator(".timing")).to_contain_text("text: encode")
    # Thumbnails: lazy, with alt text and intrinsic size, inside fixed-aspect frames.
    first = page.locator("#result-list .card img").first
    assert first.get_attribute("loading") == "lazy"
    assert first.get_attribute("alt")
    assert first.get_attribute("width") and first.get_attribute("height")
    expect(first).to_have_js_property("complete", True)
    assert first.evaluate("img => img.naturalWidth") > 0
    no_js_errors(page)


def test_upload_searches_by_the_image(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    target = browser_collection.external["14598"]  # Monet, The Beach at Sainte-Adresse
    page.goto("/")
    page.set_input_files("#image", str(browser_collection.image_paths[target]))
    page.wait_for_url(re.compile(r"[?&]upload=[A-Za-z0-9_-]{16,}"))
    expect(page.locator(".chip-upload")).to_contain_text("your image")
    expect(page.locator(".chip-upload img")).to_have_js_property("complete", True)
    assert page.locator(".chip-upload img").evaluate("img => img.naturalWidth") > 0

    ids = result_ids(page)
    query = browser_collection.vectors[target]  # the same bytes: the same vector
    assert ids[0] == target
    assert_ranked(ids, browser_collection.ranking(query), browser_collection.distances(query))
    expect(page.locator(".timing")).to_contain_text("content: encode")
    no_js_errors(page)


# Builds a File from a same-origin URL and hands it to the page the way a browser does for a
# dropped file ("drop" on the page) or a pasted picture ("paste" with clipboardData).
DISPATCH_FILE = """async ([url, kind]) => {
  const blob = await (await fetch(url)).blob();
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], "painting.jpg", {type: "image/jpeg"}));
  const event = kind === "drop"
    ? new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true})
    : new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true});
  document.querySelector("#results").dispatchEvent(event);
  return event.defaultPrevented;
}"""


@pytest.mark.parametrize("kind", ["drop", "paste"])
def test_drop_or_paste_an_image_searches_by_it(
    browser_page: Any, browser_collection: BrowserCollection, kind: str
) -> None:
    from gallery.models import Artwork

    page = browser_page
    target = browser_collection.external["11723"]  # Morisot, Woman at Her Toilette
    page.goto("/")
    handled = page.evaluate(DISPATCH_FILE, [Artwork.objects.get(pk=target).image.url, kind])
    assert handled  # the page took the file instead of letting the browser open it
    page.wait_for_url(re.compile(r"[?&]upload="))
    expect(page.locator(".chip-upload")).to_be_visible()
    assert result_ids(page)[0] == target
    no_js_errors(page)


def test_find_similar_shows_neighbours_without_the_reference(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    reference = browser_collection.external["4428"]  # Courbet, Mère Grégoire
    page.goto("/")
    card = page.locator(f'#result-list .card[data-artwork-id="{reference}"]')
    card.locator(".find-similar").click()
    page.wait_for_url(re.compile(rf"[?&]similar={reference}(&|$)"))
    expect(page.locator(".chip-similar")).to_contain_text("Mère Grégoire")
    expect(page.locator("#q")).to_be_focused()  # ready for "but wearing blue"

    ids = result_ids(page)
    query = browser_collection.vectors[reference]
    assert reference not in ids
    assert len(ids) == 11
    assert_ranked(
        ids,
        browser_collection.ranking(query, exclude=reference),
        browser_collection.distances(query),
    )
    no_js_errors(page)


def test_find_similar_plus_text_fuses_both(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    reference = browser_collection.external["16151"]  # Portrait of a Gentleman
    page.goto(f"/?similar={reference}")
    expect(page.locator(".chip-similar")).to_contain_text("Portrait of a Gentleman")
    search_text(page, "wearing blue")
    assert f"similar={reference}" in page.url
    expect(page.locator(".chip-similar")).to_be_visible()

    text_query = text_vector("wearing blue")
    text_list = browser_collection.ranking(text_query)
    doc_list = browser_collection.ranking(browser_collection.vectors[reference], exclude=reference)
    for ranking, query in (
        (text_list, text_query),
        (doc_list, browser_collection.vectors[reference]),
    ):
        distances = browser_collection.distances(query)
        gaps = [distances[b] - distances[a] for a, b in zip(ranking, ranking[1:], strict=False)]
        assert min(gaps) > TIE, "near-tied distances: pick another query for this test"
    expected = [fused.item for fused in rrf({"text": text_list, "document": doc_list}, k=60)]

    assert result_ids(page) == expected
    assert reference in expected  # it comes back through the text list, not the document one
    expect(page.locator(".timing")).to_contain_text("rrf of 2")
    no_js_errors(page)


def test_bad_upload_shows_a_message_and_keeps_the_results(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    search_text(page, "flowers in a vase")
    before_url, before_ids = page.url, result_ids(page)

    page.set_input_files(
        "#image",
        files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a picture"}],
    )
    expect(page.locator("#upload-error")).to_contain_text("not an image")
    assert page.locator("#image").get_attribute("aria-describedby") == "upload-error"
    assert result_ids(page) == before_ids
    assert page.url == before_url
    expect(page.locator("#q")).to_have_value("flowers in a vase")
    no_js_errors(page)


def test_back_button_returns_to_the_previous_search(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    search_text(page, "a stormy sea")
    sea = result_ids(page)
    reference = browser_collection.external["9148"]  # Ballet Dancers
    page.locator(f'#result-list .card[data-artwork-id="{reference}"] .find-similar').click()
    page.wait_for_url(re.compile(rf"similar={reference}"))
    similar = result_ids(page)
    assert similar != sea

    page.go_back()
    page.wait_for_url(re.compile(r"\?q=a\+stormy\+sea$"))
    expect(page.locator("#q")).to_have_value("a stormy sea")
    expect(page.locator(".chip-similar")).to_have_count(0)
    assert result_ids(page) == sea

    page.go_forward()
    page.wait_for_url(re.compile(rf"similar={reference}"))
    expect(page.locator(".chip-similar")).to_be_visible()
    assert result_ids(page) == similar

    # A shared link (a fresh load of the URL) shows the same search.
    page.goto(page.url)
    assert result_ids(page) == similar
    no_js_errors(page)


def test_text_search_works_without_javascript(
    nojs_page: Any, browser_collection: BrowserCollection
) -> None:
    page = nojs_page
    page.goto("/")
    page.fill("#q", "a stormy sea")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"\?q=a\+stormy\+sea"))
    query = text_vector("a stormy sea")
    assert_ranked(
        result_ids(page), browser_collection.ranking(query), browser_collection.distances(query)
    )

    # Upload works too: a plain multipart POST, then a redirect to the search's URL.
    target = browser_collection.external["15468"]  # Saint George and the Dragon
    page.set_input_files("#image", str(browser_collection.image_paths[target]))
    page.click("text=Search with this image")
    page.wait_for_url(re.compile(r"upload="))
    assert "q=a+stormy+sea" in page.url
    assert target in result_ids(page)
    expect(page.locator(".chip-upload")).to_be_visible()


def test_load_more_appends_the_next_page(
    browser_page: Any, browser_collection: BrowserCollection, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 5
    page = browser_page
    page.goto("/?q=a+landscape")
    query = text_vector("a landscape")
    expected = browser_collection.ranking(query)
    distances = browser_collection.distances(query)
    first = result_ids(page)
    assert len(first) == 5

    more = page.locator("#more a", has_text="Load more")
    assert more.get_attribute("href").endswith("offset=5")  # a real link without JavaScript
    more.click()
    expect(page.locator("#result-list .card")).to_have_count(10)
    more.click()
    expect(page.locator("#result-list .card")).to_have_count(12)
    expect(page.locator("#more a", has_text="Load more")).to_have_count(0)
    ids = result_ids(page)
    assert ids[:5] == first and len(set(ids)) == 12
    assert_ranked(ids, expected, distances)
    # Paging adds no history entry; the entry's URL says how far the visitor has loaded.
    assert page.url.endswith("?q=a+landscape&shown=12")
    assert page.evaluate("history.length") == 2
    no_js_errors(page)


def test_artwork_page(browser_page: Any, browser_collection: BrowserCollection) -> None:
    page = browser_page
    artwork_id = browser_collection.external["4428"]
    page.goto(f"/artworks/{artwork_id}/")
    expect(page.locator("h1")).to_have_text("Mère Grégoire")
    image = page.locator(".artwork-figure img")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0
    expect(page.locator(".description p").first).to_contain_text("Realist movement")
    expect(page.locator(".description em").first).to_have_text("Mère Grégoire")
    expect(page.locator(".credit")).to_have_text("Description: Art Institute of Chicago, CC BY 4.0")
    assert page.locator(".source-link").get_attribute("href") == (
        "https://www.artic.edu/artworks/4428"
    )
    hrefs = page.locator(".strip .card-link").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    matches = [re.fullmatch(r"/artworks/(\d+)/\?similar=\d+&rank=\d+", href) for href in hrefs]
    assert all(matches), hrefs
    strip = [int(match[1]) for match in matches if match]
    query = browser_collection.vectors[artwork_id]
    assert_ranked(
        strip,
        browser_collection.ranking(query, exclude=artwork_id),
        browser_collection.distances(query),
    )

    save_screenshot(page, "artwork_page_desktop")
    page.click(".artwork-actions >> text=Find similar")
    page.wait_for_url(re.compile(rf"/\?similar={artwork_id}$"))
    expect(page.locator(".chip-similar")).to_contain_text("Mère Grégoire")
    assert result_ids(page) == strip[: len(result_ids(page))]
    no_js_errors(page)


def test_keyboard_and_phone_layout(
    chromium: Any, live_server: Any, browser_collection: BrowserCollection
) -> None:
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    try:
        reference = browser_collection.external["866"]
        page.goto(f"/?q=a+portrait&similar={reference}")
        save_screenshot(page, "phone_search_with_chip")
        # No horizontal scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # The chip is removed with the keyboard alone.
        page.focus(".chip-remove")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"\?q=a\+portrait$"))
        expect(page.locator(".chip")).to_have_count(0)
        # Every control reachable by Tab has a visible focus style (outline).
        page.focus("#q")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        page.goto(f"/artworks/{reference}/")
        save_screenshot(page, "phone_artwork")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
