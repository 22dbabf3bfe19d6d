"""Region search in a real Chromium: a box drawn over an artwork's picture with the mouse, with
the keyboard alone, or with a finger becomes a search whose URL carries the region (relative
coordinates of the box as drawn); reloading that URL gives the same page. Without JavaScript the
picture is left alone. axe-core finds nothing serious with the selection open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.fixtures.axe import assert_accessible, small_targets
from tests.fixtures.browser import BrowserCollection, opened_page, save_screenshot

pytestmark = pytest.mark.browser

MIN_PIXELS = 16  # the smallest side of a region, in pixels of the source image
TOLERANCE = 0.01  # relative: a pointer lands on whole CSS pixels of a picture ~600 px across


def picture(page: Any) -> dict[str, float]:
    """The artwork's picture as laid out on the page (CSS px)."""
    box = page.locator(".region-frame img").bounding_box()
    assert box is not None
    return box


def at(rect: dict[str, float], x: float, y: float) -> tuple[float, float]:
    """The page point at relative (x, y) of `rect`."""
    return rect["x"] + x * rect["width"], rect["y"] + y * rect["height"]


def drawn_box(page: Any) -> tuple[float, float, float, float]:
    """The box on screen, relative to the picture."""
    image, box = picture(page), page.locator(".region-box").bounding_box()
    assert box is not None
    return (
        (box["x"] - image["x"]) / image["width"],
        (box["y"] - image["y"]) / image["height"],
        box["width"] / image["width"],
        box["height"] / image["height"],
    )


def mouse_drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def url_region(url: str) -> tuple[tuple[float, ...], str, dict[str, list[str]]]:
    """The region in a search URL (x, y, w, h), what it is of, and the other parameters."""
    params = parse_qs(urlsplit(url).query)
    text = params.pop("region")[0]
    assert re.fullmatch(r"(0|1|0\.\d{1,4})(,(0|1|0\.\d{1,4})){3}", text), text
    return tuple(float(v) for v in text.split(",")), params.pop("region_of")[0], params


def assert_close(actual: tuple[float, ...], expected: tuple[float, ...]) -> None:
    assert len(actual) == len(expected)
    assert all(abs(a - e) <= TOLERANCE for a, e in zip(actual, expected, strict=True)), (
        actual,
        expected,
    )


def results_state(page: Any) -> dict[str, Any]:
    """What a visitor sees of a region search: the chips, the heading and the cards in order."""
    return {
        "chips": page.locator(".chips .chip").all_inner_texts(),
        "heading": page.locator("#results-heading").inner_text(),
        "cards": page.locator("#result-list .card").evaluate_all(
            "cards => cards.map(card => card.dataset.artworkId)"
        ),
        "title": page.title(),
    }


def assert_region_results_reload_the_same(page: Any) -> None:
    """The search page shows the region (its chip) and results; its URL reloads the same."""
    expect(page.locator(".chip-region")).to_be_visible()
    expect(page.locator("#result-list .card").first).to_be_visible()
    before = results_state(page)
    assert before["cards"]
    page.reload()
    expect(page.locator("#result-list .card").first).to_be_visible()
    assert results_state(page) == before


def test_a_region_drawn_with_the_mouse_is_a_search_and_a_permalink(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/?q=a+landscape")
    page.locator("#result-list .card-link").first.click()
    page.wait_for_url(re.compile(r"/artworks/\d+/\?q=a\+landscape&rank=1$"))
    opened = re.search(r"/artworks/(\d+)/", page.url)
    assert opened is not None
    artwork_id = int(opened.group(1))

    toggle = page.get_by_role("button", name="Search a region")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    # Opened by the pointer: nothing is drawn yet, so there is nothing to search.
    expect(page.locator(".region-box")).to_be_hidden()
    expect(page.get_by_role("button", name="Search this region")).to_be_disabled()
    expect(page.locator(".region-readout")).to_have_text("Drag on the picture to draw a box.")
    image = picture(page)
    layer = page.locator(".region-layer").bounding_box()
    assert layer is not None
    assert [round(layer[k]) for k in ("x", "y", "width", "height")] == [
        round(image[k]) for k in ("x", "y", "width", "height")
    ]

    # Draw, then move the box by dragging inside it, then resize it by its top left corner.
    mouse_drag(page, at(image, 0.2, 0.3), at(image, 0.6, 0.7))
    assert_close(drawn_box(page), (0.2, 0.3, 0.4, 0.4))
    mouse_drag(page, at(image, 0.4, 0.5), at(image, 0.5, 0.45))
    assert_close(drawn_box(page), (0.3, 0.25, 0.4, 0.4))
    mouse_drag(page, at(image, 0.3, 0.25), at(image, 0.35, 0.2))
    expected = (0.35, 0.2, 0.35, 0.45)
    assert_close(drawn_box(page), expected)
    expect(page.locator(".region-box")).to_be_focused()
    expect(page.locator(".region-readout")).to_have_text(
        re.compile(
            r"^Region: 3[45]% from the left, 2[01]% from the top, 3[45]% wide, 4[45]% tall\.$"
        )
    )
    save_screenshot(page, "region_drawn_with_the_mouse", full_page=False)

    page.get_by_role("button", name="Search this region").click()
    page.wait_for_url(re.compile(r"/\?.*region="))
    region, region_of, others = url_region(page.url)
    assert_close(region, expected)
    assert region_of == str(artwork_id)
    # The search the visitor came from is kept; its place in it (rank) is not.
    assert others == {"q": ["a landscape"]}
    save_screenshot(page, "region_results_mouse")
    assert_region_results_reload_the_same(page)
    assert page.js_errors == []


def test_a_region_chosen_with_the_keyboard_alone(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    artwork_id = browser_collection.external["14598"]
    page.goto(f"/artworks/{artwork_id}/")
    toggle = page.locator(".region-toggle")
    for _ in range(12):  # skip link, brand, crumbs, the picture's link, ...
        page.keyboard.press("Tab")
        if toggle.evaluate("el => el === document.activeElement"):
            break
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")

    # Opened by the keyboard: a box in the middle, focused, described, ready to move.
    box = page.locator(".region-box")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("role", "application")
    expect(box).to_have_accessible_name(
        "Region to search: 25% from the left, 25% from the top, 50% wide, 50% tall"
    )
    assert_close(drawn_box(page), (0.25, 0.25, 0.5, 0.5))
    scrolled = page.evaluate("window.scrollY")
    for key, times in (
        ("ArrowRight", 5),
        ("ArrowDown", 2),
        ("Shift+ArrowLeft", 10),
        ("Shift+ArrowUp", 5),
    ):
        for _ in range(times):
            page.keyboard.press(key)
    expected = (0.3, 0.27, 0.4, 0.45)
    assert_close(drawn_box(page), expected)
    expect(page.locator(".region-readout")).to_have_text(
        "Region: 30% from the left, 27% from the top, 40% wide, 45% tall."
    )
    expect(page.locator(".region-readout")).to_have_attribute("aria-live", "polite")
    assert page.evaluate("window.scrollY") == scrolled  # the arrows moved the box, not the page
    # The picture is in view to draw on, whole (it fits this window).
    image = picture(page)
    assert image["y"] >= 0 and image["y"] + image["height"] <= 900

    # Escape cancels and gives the focus back; opening again starts afresh.
    page.keyboard.press("Escape")
    expect(box).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Enter")
    expect(box).to_be_focused()
    assert_close(drawn_box(page), (0.25, 0.25, 0.5, 0.5))
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("ArrowLeft")
    save_screenshot(page, "region_chosen_with_the_keyboard", full_page=False)

    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?region="))
    region, region_of, others = url_region(page.url)
    assert region == (0.24, 0.25, 0.5, 0.51)
    assert region_of == str(artwork_id) and others == {}
    save_screenshot(page, "region_results_keyboard")
    assert_region_results_reload_the_same(page)
    assert page.js_errors == []


def test_a_region_is_never_smaller_than_the_server_accepts(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    artwork_id = browser_collection.external["11723"]
    page.goto(f"/artworks/{artwork_id}/")
    img = page.locator(".region-frame img")
    source = (
        int(img.get_attribute("data-source-width") or 0),
        int(img.get_attribute("data-source-height") or 0),
    )
    assert min(source) > MIN_PIXELS
    page.locator(".region-toggle").click()
    image = picture(page)
    # A few screen pixels: under 16 pixels of the source image once the picture is scaled down.
    start = at(image, 0.5, 0.5)
    mouse_drag(page, start, (start[0] + 5, start[1] + 5))
    x, y, w, h = drawn_box(page)
    assert w * source[0] >= MIN_PIXELS - 0.5 and h * source[1] >= MIN_PIXELS - 0.5
    # Shrinking from the keyboard stops there too.
    for _ in range(5):
        page.keyboard.press("Shift+ArrowLeft")
        page.keyboard.press("Shift+ArrowUp")
    page.get_by_role("button", name="Search this region").click()
    page.wait_for_url(re.compile(r"/\?region="))
    (_, _, w, h), _, _ = url_region(page.url)
    assert w * source[0] >= MIN_PIXELS and h * source[1] >= MIN_PIXELS
    expect(page.locator(".chip-region")).to_be_visible()
    expect(page.locator(".message.error")).to_have_count(0)


@pytest.fixture
def touch_page(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    viewport = {"width": 412, "height": 860}
    with opened_page(
        chromium, live_server, request, viewport=viewport, is_mobile=True, has_touch=True
    ) as page:
        yield page


def touch_drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A finger's drag, as the touchscreen reports it (Playwright's own touchscreen only taps)."""
    cdp = page.context.new_cdp_session(page)
    steps = 8

    def touch(kind: str, point: tuple[float, float] | None) -> None:
        points = [{"x": point[0], "y": point[1]}] if point else []
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", start)
    for step in range(1, steps + 1):
        t = step / steps
        touch("touchMove", (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t))
    touch("touchEnd", None)
    cdp.detach()


def test_a_region_drawn_with_a_finger(
    touch_page: Any, browser_collection: BrowserCollection
) -> None:
    page = touch_page
    artwork_id = browser_collection.external["16151"]
    page.goto(f"/artworks/{artwork_id}/")
    page.locator(".region-toggle").tap()
    page.locator(".region-frame").scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    image = picture(page)
    page.evaluate(
        """() => {
          window.pointerTypes = new Set();
          document.addEventListener("pointerdown", e => window.pointerTypes.add(e.pointerType));
        }"""
    )
    touch_drag(page, at(image, 0.1, 0.2), at(image, 0.7, 0.8))
    assert page.evaluate("[...window.pointerTypes]") == ["touch"]
    # The finger drew the box; it did not scroll the page (touch-action: none on the picture).
    assert page.evaluate("window.scrollY") == scrolled
    expected = (0.1, 0.2, 0.6, 0.6)
    assert_close(drawn_box(page), expected)
    touch_drag(page, at(image, 0.4, 0.5), at(image, 0.3, 0.45))  # moved by a finger too
    expected = (0.0, 0.15, 0.6, 0.6)
    assert_close(drawn_box(page), expected)
    save_screenshot(page, "region_drawn_with_a_finger", full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 412  # nothing sticks out
    assert small_targets(page, ".region-toggle, .region-submit, .region-cancel") == []
    page.locator(".region-submit").tap()
    page.wait_for_url(re.compile(r"/\?region="))
    region, region_of, _ = url_region(page.url)
    assert_close(region, expected)
    assert region_of == str(artwork_id)
    assert page.js_errors == []


def test_without_javascript_the_picture_is_left_alone(
    nojs_page: Any, browser_collection: BrowserCollection
) -> None:
    page = nojs_page
    page.goto(f"/artworks/{browser_collection.external['14598']}/")
    expect(page.locator(".artwork-image-link img")).to_be_visible()
    expect(page.locator(".region-toggle")).to_have_count(0)
    expect(page.locator(".region-widget")).to_have_count(0)


def test_artwork_page_with_the_selection_open_passes_axe(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto(f"/artworks/{browser_collection.external['4428']}/")
    # Opened by a click (a screen reader's may look like one): nothing drawn yet, and an arrow
    # key on the button brings the keyboard's box.
    page.locator(".region-toggle").click()
    expect(page.locator(".region-box")).to_be_hidden()
    page.keyboard.press("ArrowDown")
    expect(page.locator(".region-box")).to_be_focused()
    assert_close(drawn_box(page), (0.25, 0.25, 0.5, 0.5))
    assert_accessible(page, "artwork_region_open")
    assert small_targets(page, ".region-toggle, .region-submit, .region-cancel") == []
    assert page.js_errors == []


def test_a_region_of_the_uploaded_image(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    target = browser_collection.external["16151"]
    page.goto("/?q=at+night")
    page.set_input_files("#image", str(browser_collection.image_paths[target]))
    page.wait_for_url(re.compile(r"[?&]upload="))
    upload = parse_qs(urlsplit(page.url).query)["upload"][0]
    query_image = page.locator('img[data-region-of="upload"]')
    expect(query_image).to_have_js_property("complete", True)
    toggle = page.locator(".region-toggle")
    toggle.click()
    image = picture(page)
    mouse_drag(page, at(image, 0.2, 0.2), at(image, 0.6, 0.6))
    assert_close(drawn_box(page), (0.2, 0.2, 0.4, 0.4))

    # Other words searched meanwhile (htmx keeps a copy of the page for the back button): the
    # selection stays as it was; back, the copy shows it closed, and it opens again.
    page.fill("#q", "at dawn")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=at\+dawn"))
    expect(page.locator("#result-list .card").first).to_be_visible()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert_close(drawn_box(page), (0.2, 0.2, 0.4, 0.4))
    page.go_back()
    page.wait_for_url(re.compile(r"q=at\+night"))
    expect(page.locator(".region-widget")).to_have_count(1)
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".region-box")).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    image = picture(page)
    mouse_drag(page, at(image, 0.1, 0.1), at(image, 0.9, 0.6))
    expected = (0.1, 0.1, 0.8, 0.5)
    assert_close(drawn_box(page), expected)
    save_screenshot(page, "region_drawn_on_the_upload", full_page=False)
    page.get_by_role("button", name="Search this region").click()
    page.wait_for_url(re.compile(r"/\?.*region="))
    region, region_of, others = url_region(page.url)
    assert_close(region, expected)
    assert region_of == "upload"
    assert others["upload"] == [upload] and others["q"] == ["at night"]
    save_screenshot(page, "region_results_upload")
    assert_region_results_reload_the_same(page)
    assert page.js_errors == []
