from __future__ import annotations

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_limit(settings):  # type: ignore[no-untyped-def]
    settings.GALLERY_RATE_LIMITS = {"/api/retrievers/": (2, 60), "/": (3, 60)}
    cache.clear()
    yield
    cache.clear()


def test_search_page_is_rate_limited_per_client(client, tight_limit) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        assert client.get("/").status_code == 200  # the landing page alone is not a search
    statuses = [client.get("/", {"q": "river"}).status_code for _ in range(4)]
    assert statuses[:3] != [429] * 3 and statuses[3] == 429
    limited = client.get("/", {"q": "river"})
    assert int(limited["Retry-After"]) > 0
    assert b"Too many searches" in limited.content
    other = client.get("/", {"q": "river"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code != 429


def test_api_limit_answers_json(client, tight_limit) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        client.post("/api/retrievers/default/execute", {}, content_type="application/json")
    response = client.post("/api/retrievers/default/execute", {}, content_type="application/json")
    assert response.status_code == 429
    assert response.json() == {"detail": "Too many searches; please wait a moment."}


def test_forwarded_for_is_ignored_unless_trusted(client, tight_limit, settings) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    settings.GALLERY_TRUST_X_FORWARDED_FOR = True
    assert client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code != 429


def test_forwarded_for_uses_the_proxys_entry(client, tight_limit, settings) -> None:  # type: ignore[no-untyped-def]
    # A proxy that appends keeps what the client sent in front: that part must not pick the key.
    settings.GALLERY_TRUST_X_FORWARDED_FOR = True
    for i in range(3):
        client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 192.0.2.7")
    spoofed = client.get("/", {"q": "x"}, HTTP_X_FORWARDED_FOR="198.51.100.99, 192.0.2.7")
    assert spoofed.status_code == 429


@pytest.mark.parametrize(
    "url",
    [
        "/?similar=99999999999999999999999",
        "/artworks/99999999999999999999999/",
        "/api/artworks?offset=99999999999999999999999",
        "/api/artworks/99999999999999999999999",
    ],
)
def test_out_of_range_numbers_are_not_server_errors(client, url: str) -> None:  # type: ignore[no-untyped-def]
    client.raise_request_exception = False
    assert client.get(url).status_code < 500
