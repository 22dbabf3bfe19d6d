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
