"""Failed requests in a real Chromium: every failure of a search, "Load more" or an upload says what
happened in plain words, keeps what was on screen, and offers a retry that works; a slow search
says why it is slow.

Real failures where this machine can make them: the rate limit (a real 429 from the middleware),
the network (Chromium offline), a missing CSRF cookie (a real 403). A 500 or 503 cannot be
provoked on demand in the live server, so those answers are the server's own error responses
(rendered by gallery.middleware for a request like the page's) delivered by Playwright's router
in place of the real one; the page code under test is the same either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.axe import axe_violations, describe
from tests.fixtures.browser import BrowserCollection, save_screenshot

pytestmark = pytest.mark.browser

SEARCHES = re.compile(r"/\?")  # the search page with parameters: what HTMX asks for
UPLOADS = re.compile(r"/uploads/$")


def result_ids(page: Any) -> list[str]:
    return page.locator("#result-list .card").evaluate_all(
        "cards => cards.map(card => card.dataset.artworkId)"
    )


# What Chromium and htmx log, as console errors, about a request that failed: expected here.
FAILED_REQUEST_LOGS = re.compile(
    r"^(Failed to load resource|Response Status Error Code \d+ from "
    r"|htmx:(afterRequest|sendError|responseError), \[object )"
)


def only_failed_loads(page: Any) -> None:
    """The console's only errors are the notes about the failed requests themselves."""
    assert [e for e in page.js_errors if not FAILED_REQUEST_LOGS.match(e)] == []


def server_error_answer(status: int) -> dict[str, Any]:
    """What the server itself answers when the database is down (503) or a view crashes (500)."""
    from django.db import OperationalError
    from django.test import RequestFactory

    from gallery.middleware import database_unavailable, server_error

    request = RequestFactory().get("/?q=a+stormy+sea", HTTP_HX_REQUEST="true")
    if status == 503:
        response = database_unavailable(request, OperationalError("connection refused"))
    else:
        response = server_error(request)
    assert response.status_code == status
    return {
        "status": status,
        "headers": {k: v for k, v in response.items()},
        "body": response.content,
    }


def fail_htmx_requests(answer: dict[str, Any]) -> Callable[[Any], None]:
    def handle(route: Any) -> None:
        if route.request.headers.get("hx-request"):
            route.fulfill(**answer)
        else:
            route.continue_()

    return handle


SERVER_WORDS = {
    503: "The collection database is unavailable or too slow right now. Please retry.",
    500: "An unexpected error occurred; it has been logged.",
}


@pytest.mark.parametrize("status", [503, 500])
def test_a_failed_search_says_why_and_retries(
    browser_page: Any, browser_collection: BrowserCollection, status: int
) -> None:
    page = browser_page
    page.goto("/?q=a+landscape")
    expect(page.locator("#result-list .card")).to_have_count(12)
    before = result_ids(page)

    page.route(SEARCHES, fail_htmx_requests(server_error_answer(status)))
    page.fill("#q", "a stormy sea")
    page.press("#q", "Enter")
    problem = page.locator(".request-problem")
    expect(problem).to_contain_text("The search did not run.")
    expect(problem).to_contain_text(SERVER_WORDS[status])  # the server's own words, not markup
    expect(problem).to_have_attribute("role", "alert")
    assert result_ids(page) == before  # the last good results stay
    expect(page.locator("#q")).to_have_value("a stormy sea")  # and what was typed
    save_screenshot(page, f"failure_search_{status}", full_page=False)
    violations = axe_violations(page)  # the message and its button are accessible too
    assert not violations, describe(violations)

    page.unroute(SEARCHES)
    problem.get_by_role("button", name="Try again").click()
    page.wait_for_url(re.compile(r"\?q=a\+stormy\+sea$"))
    expect(problem).to_have_count(0)
    expect(page.locator("#result-list .card")).to_have_count(12)
    only_failed_loads(page)


def test_rate_limited_search_shows_the_servers_words(
    browser_page: Any, browser_collection: BrowserCollection, settings: Any
) -> None:
    page = browser_page
    page.goto("/")
    settings.GALLERY_RATE_LIMITS = {"search": (1, 3600)}
    page.fill("#q", "a stormy sea")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"\?q=a\+stormy\+sea$"))
    sea = result_ids(page)

    page.fill("#q", "a landscape")
    page.press("#q", "Enter")
    problem = page.locator(".request-problem")
    expect(problem).to_contain_text("The search did not run. Too many searches from your address")
    assert result_ids(page) == sea
    save_screenshot(page, "failure_search_429", full_page=False)

    settings.GALLERY_RATE_LIMITS = {"search": (1000, 3600)}  # the window has passed
    problem.get_by_role("button", name="Try again").click()
    page.wait_for_url(re.compile(r"\?q=a\+landscape$"))
    expect(problem).to_have_count(0)
    only_failed_loads(page)


def test_a_failed_load_more_says_so_beside_the_button(
    browser_page: Any, browser_collection: BrowserCollection, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 5
    page = browser_page
    page.goto("/?q=a+landscape")
    expect(page.locator("#result-list .card")).to_have_count(5)
    more_pages = re.compile(r"offset=")
    page.route(more_pages, fail_htmx_requests(server_error_answer(500)))
    page.locator("#more a", has_text="Load more").click()
    problem = page.locator("#more .request-problem")
    expect(problem).to_contain_text("More results could not be loaded.")
    expect(page.locator("#result-list .card")).to_have_count(5)
    save_screenshot(page, "failure_load_more", full_page=False)

    page.unroute(more_pages)
    problem.get_by_role("button", name="Try again").click()
    expect(page.locator("#result-list .card")).to_have_count(10)
    expect(page.locator(".request-problem")).to_have_count(0)
    only_failed_loads(page)


def test_offline_search_says_the_gallery_cannot_be_reached(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    page.goto("/?q=a+landscape")
    expect(page.locator("#result-list .card")).to_have_count(12)
    page.context.set_offline(True)
    page.fill("#q", "a stormy sea")
    page.press("#q", "Enter")
    problem = page.locator(".request-problem")
    expect(problem).to_contain_text("The gallery could not be reached")
    save_screenshot(page, "failure_offline", full_page=False)

    page.context.set_offline(False)
    problem.get_by_role("button", name="Try again").click()
    page.wait_for_url(re.compile(r"\?q=a\+stormy\+sea$"))
    expect(problem).to_have_count(0)
    only_failed_loads(page)


def test_upload_without_the_csrf_cookie_says_to_reload(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    target = browser_collection.external["14598"]
    page.goto("/")
    page.context.clear_cookies()  # as when cookies are blocked or the session was cleared
    page.set_input_files("#image", str(browser_collection.image_paths[target]))
    problem = page.locator("#upload-form .request-problem")
    expect(problem).to_contain_text("Your image was not sent. The page has expired")
    expect(page.locator(".upload-status")).to_have_count(0)  # no progress left spinning
    save_screenshot(page, "failure_upload_403", full_page=False)

    problem.get_by_role("button", name="Reload the page").click()
    page.wait_for_load_state()
    expect(problem).to_have_count(0)
    page.set_input_files("#image", str(browser_collection.image_paths[target]))
    page.wait_for_url(re.compile(r"[?&]upload="))
    only_failed_loads(page)


def test_a_failed_upload_is_sent_again_by_try_again(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    page = browser_page
    target = browser_collection.external["11723"]
    page.goto("/")
    answers = [server_error_answer(503)]
    posts: list[int] = []

    def first_fails(route: Any) -> None:
        posts.append(len(route.request.post_data_buffer or b""))
        if answers:
            route.fulfill(**answers.pop())
        else:
            route.continue_()

    page.route(UPLOADS, first_fails)
    page.set_input_files("#image", str(browser_collection.image_paths[target]))
    problem = page.locator("#upload-form .request-problem")
    expect(problem).to_contain_text("Your image was not sent. The collection database")
    problem.get_by_role("button", name="Try again").click()
    page.wait_for_url(re.compile(r"[?&]upload="))
    expect(page.locator(".chip-upload")).to_be_visible()
    assert len(posts) == 2 and posts[0] == posts[1] > 0  # the same image, sent again
    only_failed_loads(page)


def test_a_slow_search_says_what_it_waits_for(
    browser_page: Any, browser_collection: BrowserCollection
) -> None:
    from search.warmup import EncoderState

    page = browser_page
    page.goto("/")
    held: list[Any] = []
    page.route(SEARCHES, lambda route: held.append(route))
    # What /healthz/ready says while the model loads (its body, from the same state class): the
    # test process's encoder is loaded already, so the answer is given here.
    not_ready = {"status": "not ready", "database": "ok", "encoder": EncoderState().as_dict()}
    page.route(
        re.compile(r"/healthz/ready$"),
        lambda route: route.fulfill(status=503, json=not_ready, headers={"Retry-After": "5"}),
    )
    page.fill("#q", "a stormy sea")
    page.press("#q", "Enter")
    loading = page.locator("#results .results-head .loading")
    expect(loading).to_have_text("Searching…")
    expect(loading).to_contain_text("The search model is still loading", timeout=8_000)
    save_screenshot(page, "slow_search_model_loading", full_page=False)

    page.unroute(SEARCHES)
    held[0].continue_()
    page.wait_for_url(re.compile(r"\?q=a\+stormy\+sea$"))
    expect(page.locator("#result-list .card")).to_have_count(12)
    only_failed_loads(page)
