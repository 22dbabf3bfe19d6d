import pytest
from django.db import connection

from gallery.services import artwork_upsert
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.django_db


def test_database_is_postgres_with_pgvector() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cur.fetchone()
    assert tuple(int(p) for p in version.split(".")[:2]) >= (0, 8)


def test_upsert_is_idempotent(client) -> None:  # type: ignore[no-untyped-def]
    first = artwork_upsert(
        source="local", external_id="a1", metadata={"title": "Red"}, image_data=jpeg_bytes()
    )
    again = artwork_upsert(
        source="local", external_id="a1", metadata={"title": "Red"}, image_data=jpeg_bytes()
    )
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert first.artwork.thumbnail.name.endswith(".webp")
    page = client.get("/")
    assert page.status_code == 200
    assert b"Red" in page.content
