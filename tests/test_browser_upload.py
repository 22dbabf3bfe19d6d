"""The image query in a real Chromium: a large photo is shrunk in the browser before it is sent,
with progress; the query image stays large on screen while the results change; a file dragged
anywhere over the page shows a page-wide drop target; "Find similar" says what it set aside."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.fixtures.browser import BrowserCollection, save_screenshot

pytestmark = pytest.mark.browser

MAX_SIDE = 1600  # static/gallery/upload.js: the longest side the browser sends
LARGE_PREVIEW = 100  # px: the query image's preview is at least this large on a desktop

# Collects what the upload status says, in order (installed through the DevTools protocol, so
# the page's CSP does not apply to it).
WATCH_STATUS = """() => {
  window.statusLog = [];
  new MutationObserver(() => {
    const text = document.querySelector(".upload-status-text");
    const bar = document.querySelector(".upload-progress");
    if (text && text.textContent && window.statusLog.at(-1)?.text !== text.textContent) {
      const value = bar && bar.hasAttribute("value") ? bar.value : null;
      window.statusLog.push({text: text.textContent, value});
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def received_image(page_url: str) -> bytes:
    """The bytes the server received for the upload the page's URL names (as it stored them)."""
    from gallery.uploads import upload_load

    upload_id = re.search(r"upload=([A-Za-z0-9_-]+)", page_url)
    assert upload_id, page_url
    stored = upload_load(upload_id=upload_id.group(1))
    assert stored is not None
    return stored.data


def large_photo(source: Path, folder: Path) -> Path:
    """A phone-sized photo (4000 px, several MB) made from a real painting."""
    with Image.open(source) as image:
        scale = 4000 / max(image.size)
        big = image.convert("RGB").resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
    path = folder / "phone-photo.jpg"
    big.save(path, "JPEG", quality=97)
    return path


def rendered_size(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["width"], box["height"]


def test_large_photo_is_shrunk_in_the_browser_with_progress(
    browser_page: Any, browser_collection: BrowserCollection, tmp_path: Path
) -> None:
    page = browser_page
    target = browser_collection.external["14598"]  # Monet, The Beach at Sainte-Adresse
    photo = large_photo(browser_collection.image_paths[target], tmp_path)
    with Image.open(photo) as original:
        original_size = original.size
    page.goto("/")
    page.evaluate(WATCH_STATUS)
    # A slow uplink (256 KiB/s), so the upload takes long enough to report progress.
    cdp = page.context.new_cdp_session(page)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 262144},
    )
    page.set_input_files("#image", str(photo))
    # The chosen picture is shown large at once, before the server has it.
    preview = page.locator(".upload-status .upload-preview")
    expect(preview).to_be_visible()
    save_screenshot(page, "upload_in_progress", full_page=False)
    page.wait_for_url(re.compile(r"[?&]upload=[A-Za-z0-9_-]{16,}"))
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )

    sent = received_image(page.url)
    with Image.open(io.BytesIO(sent)) as image:
        assert max(image.size) == MAX_SIDE
        assert abs(image.width / image.height - original_size[0] / original_size[1]) < 0.01
    assert len(sent) < photo.stat().st_size / 4

    log = page.evaluate("window.statusLog")
    texts = [entry["text"] for entry in log]
    assert texts[0] == "Preparing your image…"
    partial = [e for e in log if e["value"] is not None and 0 < e["value"] < 100]
    assert partial, texts  # progress was reported between the start and the end
    assert any(re.fullmatch(r"Sending your image: \d+ % of \d+\.\d MiB", t) for t in texts), texts
    assert texts[-1] == "Searching by your image…"
    expect(page.locator(".upload-status")).to_have_count(0)

    # The search ran on the shrunk picture: the painting it was made from comes first.
    expect(page.locator("#result-list .card").first).to_have_attribute(
        "data-artwork-id", str(target)
    )
    assert page.js_errors == []


def test_small_image_is_sent_as_it_is(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    path = browser_collection.image_paths[browser_collection.external["11723"]]  # 843 px
    page.goto("/")
    page.set_input_files("#image", str(path))
    page.wait_for_url(re.compile(r"[?&]upload="))
    assert received_image(page.url) == path.read_bytes()


def test_query_image_stays_large_while_results_change(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    target = browser_collection.external["16151"]
    page.goto("/")
    page.set_input_files("#image", str(browser_collection.image_paths[target]))
    page.wait_for_url(re.compile(r"[?&]upload="))
    preview = page.locator(".chip-upload img")
    expect(preview).to_have_js_property("complete", True)
    assert max(rendered_size(preview)) >= LARGE_PREVIEW
    first = page.locator("#result-list .card").first.get_attribute("data-artwork-id")

    page.fill("#q", "at night")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=at\+night"))
    expect(page.locator(".chip-upload img")).to_be_visible()
    assert max(rendered_size(page.locator(".chip-upload img"))) >= LARGE_PREVIEW
    save_screenshot(page, "upload_preview_with_words", full_page=False)
    assert first  # the results were there before, and the preview outlived their change
    assert page.js_errors == []


DRAG_OVER = """([selector, type]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array([1, 2, 3])], "photo.jpg", {type: "image/jpeg"}));
  document.querySelector(selector).dispatchEvent(
    new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""

OVERLAY = """() => {
  const style = getComputedStyle(document.body, "::after");
  return {content: style.content, position: style.position, top: style.top, left: style.left,
          right: style.right, bottom: style.bottom, events: style.pointerEvents};
}"""


def test_dragging_a_file_anywhere_shows_a_page_wide_drop_target(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/")
    assert page.evaluate(OVERLAY)["content"] in ("none", "normal")
    page.evaluate(DRAG_OVER, [".site-footer", "dragover"])  # far from the drop zone
    overlay = page.evaluate(OVERLAY)
    assert "Drop the image" in overlay["content"]
    assert overlay["position"] == "fixed" and overlay["events"] == "none"
    sides = ("top", "left", "right", "bottom")
    assert all(float(overlay[side].removesuffix("px")) <= 16 for side in sides)
    save_screenshot(page, "drag_over_page", full_page=False)
    page.evaluate(DRAG_OVER, ["body", "dragleave"])
    assert page.evaluate(OVERLAY)["content"] in ("none", "normal")
    assert page.js_errors == []


def test_find_similar_says_what_it_set_aside_and_gives_it_back(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    upload_from = browser_collection.external["14620"]
    page.goto("/")
    page.set_input_files("#image", str(browser_collection.image_paths[upload_from]))
    page.wait_for_url(re.compile(r"[?&]upload="))
    page.fill("#q", "a stormy sea")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=a\+stormy\+sea"))
    upload_match = re.search(r"upload=([A-Za-z0-9_-]+)", page.url)
    assert upload_match
    upload_id = upload_match.group(1)

    card = page.locator("#result-list .card").first
    reference = card.get_attribute("data-artwork-id")
    title = card.locator(".card-title").inner_text()
    card.locator(".find-similar").click()
    page.wait_for_url(re.compile(rf"\?similar={reference}$"))
    note = page.locator(".set-aside")
    expect(note).to_contain_text(f"Showing artworks like “{title}”.")
    expect(note).to_contain_text("Your words “a stormy sea” and your image were set aside.")
    save_screenshot(page, "find_similar_set_aside", full_page=False)

    note.get_by_role("link", name="Search with them too").click()
    page.wait_for_url(re.compile(r"q=a\+stormy\+sea"))
    assert f"similar={reference}" in page.url and f"upload={upload_id}" in page.url
    expect(page.locator(".chip-similar")).to_be_visible()
    expect(page.locator(".chip-upload")).to_be_visible()
    expect(page.locator("#q")).to_have_value("a stormy sea")
    expect(page.locator(".set-aside")).to_have_count(0)
    assert page.js_errors == []
