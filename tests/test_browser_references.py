"""Exploring in a real Chromium: marking a result "less like this", gathering references in the
tray, moving a weight with the keyboard, choosing a facet on top of them. Every state is its
URL: reloading it gives the same page (the same cards in the same order, the same chips, tray
and weights); the fused orders are checked against the formula worked out here from the stored
vectors. Screenshots of each state land in artifacts/screenshots/; axe-core finds nothing
serious; on a phone nothing overflows."""

from __future__ import annotations

import re
from itertools import permutations
from typing import Any
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from tests.fixtures.axe import assert_accessible, small_targets
from tests.fixtures.browser import BrowserCollection, save_screenshot

pytestmark = pytest.mark.browser

K = 60
PHONE = {"width": 390, "height": 844}


def result_ids(page: Any) -> list[int]:
    return [
        int(value)
        for value in page.locator("#result-list .card").evaluate_all(
            "cards => cards.map(card => card.dataset.artworkId)"
        )
    ]


def page_state(page: Any) -> dict[str, Any]:
    """What a visitor sees of an exploring search."""
    return {
        "url": unquote(page.url),
        "heading": page.locator("#results-heading").inner_text(),
        "cards": result_ids(page),
        "chips": page.locator(".chip").all_inner_texts(),
        "tray": page.locator(".tray-item").evaluate_all(
            "items => items.map(item => item.dataset.artwork)"
        ),
        "weights": page.locator(".weights input[type=range]").evaluate_all(
            "inputs => inputs.map(input => [input.name, input.value, input.dataset.weight])"
        ),
        "title": page.title(),
    }


def hand_fused(
    collection: BrowserCollection,
    *,
    positive: dict[int, float],
    negative: dict[int, float] | None = None,
) -> list[int]:
    """Document searches by the artworks `positive` (id -> weight) less those by `negative`,
    fused by the formula: Σ w/(k + rank) − Σ w⁻/(k + rank⁻), ties by the best positive rank,
    then the id. A reference's list leaves the reference out; a negative example's list starts
    with the example, so what is marked goes down most."""
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for reference, weight in positive.items():
        ranking = collection.ranking(collection.vectors[reference], exclude=reference)
        for place, found in enumerate(ranking, start=1):
            scores[found] = scores.get(found, 0.0) + weight / (K + place)
            best[found] = min(best.get(found, place), place)
    for example, weight in (negative or {}).items():
        ranking = collection.ranking(collection.vectors[example])
        for place, found in enumerate(ranking, start=1):
            if found in scores:
                scores[found] -= weight / (K + place)
    return sorted(scores, key=lambda i: (-round(scores[i], 12), best[i], i))


def test_less_like_this_demotes_shows_a_chip_and_is_undone(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    reference = browser_collection.external["4428"]  # Mère Grégoire
    page.goto(f"/?similar={reference}")
    expect(page.locator("#result-list .card")).to_have_count(11)
    before = page_state(page)
    assert before["cards"] == hand_fused(browser_collection, positive={reference: 1.0})
    marked = before["cards"][0]
    title = page.locator(f"#result-{marked} .card-title").inner_text()
    less = page.locator(f"#result-{marked} .less-like")
    expect(less).to_have_accessible_name(re.compile(rf"^Less like this ?: “{re.escape(title)}”$"))
    less.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/\?similar={reference}&unlike={marked}$"))
    chip = page.locator(f".chip-unlike[data-artwork='{marked}']")
    expect(chip).to_contain_text(f"Less like “{title}”")
    expect(chip.locator(".chip-sign")).to_have_text("−")
    # Apart from the positive chip: its own colours.
    negative_border = chip.evaluate("el => getComputedStyle(el).borderStyle")
    positive_border = page.locator(".chip-similar").evaluate(
        "el => getComputedStyle(el).borderStyle"
    )
    assert negative_border != positive_border
    # The focus is on the new chip's remove button: the mark can be taken back at once.
    assert page.evaluate("document.activeElement.closest('.chip-unlike') !== null")
    marked_state = page_state(page)
    expected = hand_fused(browser_collection, positive={reference: 1.0}, negative={marked: 1.0})
    assert marked_state["cards"] == expected
    assert marked not in marked_state["cards"] or marked_state["cards"].index(marked) > 0
    assert marked_state["cards"] != before["cards"]
    # The explanation says what the example took away and the default weight of negatives.
    why = page.locator("#result-list .card").first.locator("details.why")
    why.locator("summary").click()
    text = why.inner_text()
    assert re.search(rf"unlike “{re.escape(title)}” \(−0\.0\d{{3}}\)", text)
    assert "w⁻ = 1" in text
    save_screenshot(page, "exploring_less_like_this")
    assert_accessible(page, "search_less_like_this")

    page.reload()
    expect(page.locator(".chip-unlike")).to_have_count(1)
    assert page_state(page) == marked_state

    page.focus(f".chip-unlike[data-artwork='{marked}'] .chip-remove")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/\?similar={reference}$"))
    expect(page.locator(".chip-unlike")).to_have_count(0)
    assert result_ids(page) == before["cards"]
    assert page.js_errors == []


def test_gathering_two_references_in_the_tray(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    expect(page.locator("#result-list .card")).to_have_count(12)
    first = result_ids(page)[2]
    add = page.locator(f"#result-{first} .ref-toggle")
    expect(add).to_have_text(re.compile(r"^\+\s?Add to references"))
    add.click()
    page.wait_for_url(re.compile(rf"/\?refs={first}$"))
    expect(page.locator(".tray-item")).to_have_count(1)
    # Its own search leaves the reference out of the list: the focus follows it to the tray.
    assert first not in result_ids(page)
    expect(page.locator(f".tray-item[data-artwork='{first}'] .tray-link")).to_be_focused()
    second = result_ids(page)[0]
    page.locator(f"#result-{second} .ref-toggle").click()
    page.wait_for_url(re.compile(rf"/\?refs={first},{second}$"))
    expect(page.locator(".tray-item")).to_have_count(2)
    # Found by the first reference, the second stays listed, says so, and keeps the focus.
    expect(page.locator(f"#ref-{second}")).to_have_text(re.compile(r"^✓\s?In references"))
    expect(page.locator(f"#ref-{second}")).to_be_focused()
    gathered = page_state(page)
    assert gathered["tray"] == [str(first), str(second)]
    expect(page.locator(".tray-count")).to_have_text("2 of 6")
    # The results are the two searches fused, each reference its own search.
    assert gathered["cards"] == hand_fused(browser_collection, positive={first: 1.0, second: 1.0})
    assert [name for name, _, _ in gathered["weights"]] == [
        f"w.reference:{first}",
        f"w.reference:{second}",
    ]
    save_screenshot(page, "exploring_tray_of_two")
    assert_accessible(page, "search_tray")
    assert small_targets(page, ".tray-remove, .tray-link, .card-action, .chip-remove") == []

    page.reload()
    expect(page.locator(".tray-item")).to_have_count(2)
    assert page_state(page) == gathered

    # The tray survives going to an artwork and back, and its previous/next.
    page.locator("#result-list .card-link").nth(1).click()
    page.wait_for_url(re.compile(r"/artworks/\d+/\?"))
    assert f"refs={first},{second}" in unquote(page.url)
    next_link = page.locator(".result-next")
    if next_link.count():
        assert f"refs={first},{second}" in unquote(next_link.get_attribute("href") or "")
    page.locator(".back-to-search").click()
    page.wait_for_url(re.compile(rf"/\?refs={first},{second}#result-\d+$"))
    expect(page.locator(".tray-item")).to_have_count(2)
    assert result_ids(page) == gathered["cards"]

    # A facet chosen on top keeps the tray; its URL reloads to the same page.
    facets = page.locator("details.facets")
    facets.locator("summary").click()
    value = facets.locator(".facet-value").first
    label = value.locator(".facet-label").inner_text()
    value.click()
    expect(page.locator(".facet-value[aria-current=true]")).to_contain_text(label)
    assert f"refs={first},{second}" in unquote(page.url)
    faceted = page_state(page)
    assert faceted["tray"] == [str(first), str(second)]
    save_screenshot(page, "exploring_tray_with_facet")
    page.reload()
    expect(page.locator(".tray-item")).to_have_count(2)
    assert page_state(page) == faceted

    # Removing one from the tray leaves the other.
    page.locator(f".tray-item[data-artwork='{first}'] .tray-remove").click()
    page.wait_for_url(re.compile(rf"/\?[^#]*refs={second}(&|$)"))
    expect(page.locator(".tray-item")).to_have_count(1)
    assert page.js_errors == []


def weighty_pair(collection: BrowserCollection) -> tuple[int, int]:
    """Two references whose fused order changes when the second one weighs 2."""
    for a, b in permutations(collection.ids, 2):
        even = hand_fused(collection, positive={a: 1.0, b: 1.0})
        if even != hand_fused(collection, positive={a: 1.0, b: 2.0}):
            return a, b
    raise AssertionError("no pair of references is sensitive to a weight")


def test_moving_a_weight_with_the_keyboard(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    a, b = weighty_pair(browser_collection)
    page.goto(f"/?refs={a},{b}")
    expect(page.locator(".weights input[type=range]")).to_have_count(2)
    even = page_state(page)
    slider = page.locator(f"#weight-reference-{b}")
    title = page.locator(f".tray-item[data-artwork='{b}'] img").get_attribute("alt")
    expect(slider).to_have_accessible_name(f"Like “{title}”")
    history_length = page.evaluate("history.length")
    slider.focus()
    for _ in range(4):  # 0.25 a step: 1 -> 2
        page.keyboard.press("ArrowRight")
    expect(page.locator(f"#weight-reference-{b}-value")).to_have_text("× 2")
    page.wait_for_url(re.compile(rf"/\?refs={a},{b}&w.reference:{b}=2$"))
    expect(page.locator(f"#weight-reference-{b}")).to_have_attribute("data-weight", "2")
    # Still on the control, the search re-weighed under it; the entry replaced, not added.
    assert page.evaluate("document.activeElement.id") == f"weight-reference-{b}"
    assert page.evaluate("history.length") == history_length
    weighted = page_state(page)
    assert weighted["cards"] == hand_fused(browser_collection, positive={a: 1.0, b: 2.0})
    assert weighted["cards"] != even["cards"]
    # The server's own timing says the lists came from its cache: only the fusion ran again.
    details = page.locator(".search-details")
    details.locator("summary").click()
    expect(details.locator(".timing")).to_contain_text("cached list")
    save_screenshot(page, "exploring_weight_moved")
    assert_accessible(page, "search_weights")

    page.reload()
    expect(page.locator(f"#weight-reference-{b}")).to_have_value("2")
    assert page_state(page) == weighted

    # Back to 1 with the keyboard: the URL drops the weight, the first order returns.
    page.locator(f"#weight-reference-{b}").focus()
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(rf"/\?refs={a},{b}$"))
    expect(page.locator(f"#weight-reference-{b}")).to_have_attribute("data-weight", "1")
    assert result_ids(page) == even["cards"]
    assert page.js_errors == []


def test_weights_apply_without_javascript(
    nojs_page: Any, browser_collection: BrowserCollection
) -> None:
    page = nojs_page
    a, b = weighty_pair(browser_collection)
    page.goto(f"/?refs={a},{b}")
    page.locator(f"#weight-reference-{b}").fill("2")
    page.get_by_role("button", name="Apply the weights").click()
    page.wait_for_load_state()
    assert f"w.reference:{b}=2" in unquote(page.url)
    assert page.locator(f"#weight-reference-{b}").get_attribute("value") == "2"
    assert result_ids(page) == hand_fused(browser_collection, positive={a: 1.0, b: 2.0})


def test_exploring_on_a_phone_does_not_overflow(
    chromium: Any, live_server: Any, browser_collection: BrowserCollection
) -> None:
    context = chromium.new_context(
        base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True, locale="en-US"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        ids = browser_collection.ids
        page.goto(f"/?q=a+portrait&refs={ids[0]},{ids[1]}&unlike={ids[2]}&w.text=1.5")
        expect(page.locator(".weights input[type=range]")).to_have_count(4)
        expect(page.locator(".chip-unlike")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert small_targets(page, ".card-action, .tray-remove, .chip-remove") == []
        save_screenshot(page, "phone_exploring", full_page=False)
        save_screenshot(page, "phone_exploring_full")

        # A full tray: adding is offered, disabled, and says why.
        page.goto("/?refs=" + ",".join(str(i) for i in ids[:6]))
        expect(page.locator(".tray-item")).to_have_count(6)
        full = page.locator(".ref-toggle[aria-disabled=true]").first
        expect(full).to_have_accessible_description(
            "The tray holds 6 references at most: remove one to add another."
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        save_screenshot(page, "phone_tray_full")
        assert_accessible(page, "search_tray_full_phone")
    finally:
        context.close()


def test_a_bad_link_says_what_is_wrong(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    response = page.goto("/?q=a+portrait&w.text=99&refs=1,x")
    assert response is not None and response.status == 422
    error = page.locator(".message.error")
    expect(error).to_contain_text("This link cannot be searched as it is")
    expect(error.locator(".link-errors li")).to_have_count(2)
    save_screenshot(page, "exploring_bad_link")
    assert_accessible(page, "search_bad_link")
    error.locator(".repair-link").click()
    page.wait_for_url(re.compile(r"/\?q=a\+portrait$"))
    expect(page.locator("#result-list .card")).to_have_count(12)
