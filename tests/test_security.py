from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client
from pytest_django import Settings

from tests.fixtures.corpus import Corpus
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_limit(settings: Settings) -> Iterator[None]:
    """For the tests of whose address counts (the budgets are tested at their defaults)."""
    settings.GALLERY_RATE_LIMITS = {"search": (3, 60), "pages": (5, 60)}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The limiter's clock, held mid-window so that a test never straddles two windows; the
    test moves it on to show the budget coming back."""
    now = [60.0 * int(time.time() // 60) + 1]
    monkeypatch.setattr("gallery.middleware.time.time", lambda: now[0])
    cache.clear()
    yield now
    cache.clear()


def _search_requests(client: Client, study: int) -> list:
    """One of each search entry point, cheap ones (each refused or empty, but each counted)."""
    return [
        lambda: client.get("/", {"artist": "nobody at all"}),
        lambda: client.post("/api/retrievers/default/execute", {}, content_type="application/json"),
        lambda: client.get(f"/api/artworks/{study}/similar", {"limit": 1}),
        lambda: client.get("/api/artworks", {"limit": 1}),
        lambda: client.post("/uploads/", {}),
    ]


def test_one_search_budget_per_client_across_every_entry_point(
    client: Client,
    corpus: Corpus,
    frozen_clock: list[float],
    settings: Settings,
) -> None:
    count, seconds = settings.GALLERY_RATE_LIMITS["search"]
    assert (count, seconds) == (120, 60)  # the defaults a user gets
    requests = _search_requests(client, corpus.id_of("Study of Trees"))
    statuses = [requests[i % len(requests)]().status_code for i in range(count)]
    assert 429 not in statuses, statuses
    # The budget is spent, whichever way the next search comes.
    for request in requests:
        limited = request()
        assert limited.status_code == 429, limited.content
        assert 0 < int(limited["Retry-After"]) <= seconds
    page = client.get("/", {"q": "river"})
    assert b"Too many searches from your address" in page.content
    assert b"the limit is 120 a minute" in page.content and b"<html" in page.content.lower()
    api = client.post("/api/retrievers/default/execute", {}, content_type="application/json")
    assert api.json()["code"] == "rate_limited" and "Please wait" in api.json()["detail"]
    # Other clients, the landing page and artwork pages are not held up.
    assert client.get("/", {"q": "river"}, REMOTE_ADDR="10.0.0.9").status_code == 200
    assert client.get("/").status_code == 200
    assert client.get(f"/artworks/{corpus.id_of('Study of Trees')}/").status_code == 200
    # The next window brings the whole budget back.
    frozen_clock[0] += seconds
    assert [request().status_code for request in requests] == statuses[: len(requests)]


def test_uploads_share_the_search_budget(
    client: Client, frozen_clock: list[float], settings: Settings
) -> None:
    count, _ = settings.GALLERY_RATE_LIMITS["search"]
    for _ in range(count):
        assert client.post("/uploads/", {}).status_code == 422  # no file: refused, but counted
    limited = client.post("/uploads/", {"image": io.BytesIO(jpeg_bytes())})
    assert limited.status_code == 429
    assert b"Too many searches" in limited.content and limited["Retry-After"]


def test_artwork_pages_have_a_generous_budget_of_their_own(
    client: Client,
    frozen_clock: list[float],
    settings: Settings,
) -> None:
    searches, _ = settings.GALLERY_RATE_LIMITS["search"]
    count, _ = settings.GALLERY_RATE_LIMITS["pages"]
    assert count == 5 * searches == 600
    client.raise_request_exception = False
    for number in range(count):
        assert client.get(f"/artworks/{10_000_000 + number}/").status_code == 404
    limited = client.get("/artworks/1/")
    assert limited.status_code == 429 and b"Too many page requests" in limited.content
    assert client.get("/api/artworks/1").status_code == 429  # the API's artwork detail too
    assert client.get("/", {"q": "river"}).status_code == 200  # searches are counted apart


@pytest.mark.parametrize("value", ["a\x00b", "a\x1bb"], ids=["NUL", "ESC"])
@pytest.mark.parametrize(
    ("name", "label"),
    [("artist", "artist"), ("classification", "classification"), ("source", "source"),
     ("q", "search text")],
)  # fmt: skip
def test_hostile_page_parameters_are_refused_naming_the_field(
    client: Client, name: str, label: str, value: str
) -> None:
    response = client.get("/", {name: value})
    assert response.status_code == 422, response.status_code
    assert label in response.content.decode().lower()


def test_forwarded_for_is_ignored_unless_trusted(
    client: Client, tight_limit: None, settings: Settings
) -> None:
    for i in range(3):
        client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    settings.GALLERY_TRUST_X_FORWARDED_FOR = True
    assert client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 200


def test_forwarded_for_uses_the_proxys_entry(
    client: Client, tight_limit: None, settings: Settings
) -> None:
    # A proxy that appends keeps what the client sent in front: that part must not pick the key.
    settings.GALLERY_TRUST_X_FORWARDED_FOR = True
    for i in range(3):
        client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 192.0.2.7")
    spoofed = client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR="198.51.100.99, 192.0.2.7")
    assert spoofed.status_code == 429


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/?similar=99999999999999999999999", 200),  # the search page, with no results
        ("/artworks/99999999999999999999999/", 404),
        ("/api/artworks?offset=99999999999999999999999", 200),  # an empty page
        ("/api/artworks/99999999999999999999999", 404),
    ],
)
def test_out_of_range_numbers_are_not_server_errors(client: Client, url: str, status: int) -> None:
    client.raise_request_exception = False
    assert client.get(url).status_code == status
