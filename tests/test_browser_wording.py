"""What visitors read, in a real Chromium: the per-stage timing sits behind a small "Details"
disclosure, readable when opened; refused uploads are explained in plain words and one unit."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.browser import BrowserCollection, save_screenshot

pytestmark = pytest.mark.browser

# The text colour and the first opaque background behind it, as "rgb(...)" strings.
COLOURS = """el => {
  let node = el, background = "rgba(0, 0, 0, 0)";
  while (node && /rgba\\(.*, 0\\)|transparent/.test(background)) {
    background = getComputedStyle(node).backgroundColor;
    node = node.parentElement;
  }
  return [getComputedStyle(el).color, background];
}"""


def contrast(foreground: str, background: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_timing_is_behind_a_details_disclosure(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/?q=a+stormy+sea")
    expect(page.locator("#result-list .card")).to_have_count(12)
    timing = page.locator(".timing")
    expect(timing).to_be_hidden()  # no developer figures in the visitor's way
    summary = page.locator(".search-details summary")
    expect(summary).to_have_text("Details")
    summary.click()
    expect(timing).to_be_visible()
    expect(timing).to_contain_text("text: encode")  # still there for the curious
    family = timing.evaluate("el => getComputedStyle(el).fontFamily")
    assert "monospace" not in family
    for element in (timing, summary, page.locator(".site-footer p")):
        ratio = contrast(*element.evaluate(COLOURS))
        assert ratio >= 4.5, (element, ratio)
    save_screenshot(page, "timing_details_open", full_page=False)
    assert page.js_errors == []


def test_refused_uploads_are_explained_in_plain_words(
    browser_page: Any, browser_collection: BrowserCollection, settings: Any
) -> None:
    page = browser_page
    page.goto("/")
    painting = browser_collection.image_paths[browser_collection.ids[0]].read_bytes()
    page.set_input_files(
        "#image",
        files=[{"name": "cut.jpg", "mimeType": "image/jpeg", "buffer": painting[:30_000]}],
    )
    error = page.locator("#upload-error")
    expect(error).to_contain_text("damaged or incomplete")
    assert not re.search(r"Truncated|File Read|\(.*Error", error.inner_text())

    settings.GALLERY_MAX_UPLOAD_BYTES = 2 * 2**20
    page.set_input_files(
        "#image",
        files=[{"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (3 * 2**20)}],
    )
    expect(error).to_contain_text("the limit is")
    sizes = re.findall(r"\d+(?:\.\d+)? ?([KMG]i?B)", error.inner_text())
    assert len(sizes) == 2 and sizes[0] == sizes[1], error.inner_text()  # one unit for both
    save_screenshot(page, "upload_refused_wording", full_page=False)
