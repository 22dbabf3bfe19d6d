import pytest
from django.db import connection
from django.test import Client

from gallery.services import artwork_upsert
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.django_db


def test_database_is_postgres_with_pgvector() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cur.fetchone()
    assert tuple(int(p) for p in version.split(".")[:2]) >= (0, 8)


def test_upsert_is_idempotent(client: Client) -> None:
    first = artwork_upsert(
        source="local", external_id="a1", metadata={"title": "Red"}, image_data=jpeg_bytes()
    )
    again = artwork_upsert(
        source="local", external_id="a1", metadata={"title": "Red"}, image_data=jpeg_bytes()
    )
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert str(first.artwork.thumbnail.name).endswith(".webp")
    page = client.get("/")
    assert page.status_code == 200
    assert b"Red" in page.content


def _sample_urls(artwork_id: int) -> list[str]:
    """One concrete URL for every route of the URLconf (admin and API included): each
    converter or named group is filled with the first candidate value that reverses."""
    from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

    candidates = [str(artwork_id), "gallery", "artwork", "default", "x"]
    urls: set[str] = set()

    def walk(patterns: list, namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, inner)
            elif isinstance(entry, URLPattern) and entry.name:
                names = list(entry.pattern.regex.groupindex)
                for value in candidates:
                    try:
                        kwargs = dict.fromkeys(names, value)
                        urls.add(reverse(namespace + entry.name, kwargs=kwargs))
                        break
                    except NoReverseMatch:
                        continue

    walk(get_resolver().url_patterns, "")
    return sorted(urls)


def test_head_works_wherever_get_does(client: Client, admin_client: Client) -> None:
    """Every route answers HEAD as it answers GET, for a visitor and for a curator (who sees
    the admin's pages rather than its login redirect)."""
    artwork = artwork_upsert(
        source="local", external_id="h1", metadata={"title": "Red"}, image_data=jpeg_bytes()
    ).artwork
    urls = _sample_urls(artwork.pk)
    assert {"/", f"/artworks/{artwork.pk}/", "/healthz", "/api/artworks"} <= set(urls)
    assert len(urls) > 40  # the admin's and the API's routes are in the set
    mismatched = {}
    for who, browser in (("visitor", client), ("curator", admin_client)):
        for url in urls:
            if who == "curator" and url == "/admin/login/":
                continue  # Django's admin sends a signed-in curator's GET (only) to the index
            get, head = browser.get(url), browser.head(url)
            if head.status_code != get.status_code:
                mismatched[f"{who} {url}"] = (get.status_code, head.status_code)
    assert mismatched == {}
