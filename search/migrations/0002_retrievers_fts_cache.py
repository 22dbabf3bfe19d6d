"""Named retrievers (with the default and hybrid ones), the full-text index over the artwork
metadata, and the collection version that keys the result cache."""

from django.db import migrations, models

# Must stay identical to search.keywords.DOCUMENT_SQL: PostgreSQL uses an expression index only
# for the very same expression.
DOCUMENT_SQL = (
    "(setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(artist, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(medium, '')), 'C')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'D'))"
)

# One row, bumped by statement-level triggers on every write to artworks, embeddings and
# features, whatever the writer (ORM, bulk insert, raw SQL, another process). The bump is part
# of the writing transaction, so it becomes visible together with the data: a reader that sees
# the old version cannot see the new data's absence as current after commit.
# See search/retriever/cache.py.
VERSION_SQL = """
CREATE TABLE search_collection_version (
    id smallint PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO search_collection_version (id, version) VALUES (1, 1);
CREATE FUNCTION search_bump_collection_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE search_collection_version SET version = version + 1, changed_at = now() WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER search_collection_version_artwork
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gallery_artwork
    FOR EACH STATEMENT EXECUTE FUNCTION search_bump_collection_version();
CREATE TRIGGER search_collection_version_embedding
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON search_embedding
    FOR EACH STATEMENT EXECUTE FUNCTION search_bump_collection_version();
CREATE TRIGGER search_collection_version_feature
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON search_feature
    FOR EACH STATEMENT EXECUTE FUNCTION search_bump_collection_version();
"""

VERSION_REVERSE_SQL = """
DROP TRIGGER IF EXISTS search_collection_version_feature ON search_feature;
DROP TRIGGER IF EXISTS search_collection_version_embedding ON search_embedding;
DROP TRIGGER IF EXISTS search_collection_version_artwork ON gallery_artwork;
DROP FUNCTION IF EXISTS search_bump_collection_version();
DROP TABLE IF EXISTS search_collection_version;
"""


def _searches(keywords):
    searches = [
        {"feature": "active", "query": {"input_mode": "text", "value": "{{INPUT.text}}"},
         "top_k": 250, "on_empty": "skip"},
        {"feature": "active", "query": {"input_mode": "content", "value": "{{INPUT.image}}"},
         "top_k": 250, "on_empty": "skip"},
        {"feature": "active",
         "query": {"input_mode": "document", "document_ref": "{{INPUT.document_id}}"},
         "top_k": 250, "on_empty": "skip"},
    ]
    if keywords:
        searches.append(
            {"query": {"input_mode": "keywords", "value": "{{INPUT.text}}"},
             "top_k": 250, "on_empty": "skip"}
        )
    return searches


def create_default_retrievers(apps, schema_editor):
    Retriever = apps.get_model("search", "Retriever")
    defaults = {
        "default": (
            "The case study's pipeline: text, image and find-similar searches over the active "
            "feature, top 250 each, fused by RRF (k = 60), final top 500.",
            _searches(keywords=False),
        ),
        "hybrid": (
            "The default pipeline plus a full-text keyword search of the metadata over the "
            "same text (title, artist, medium, description), all fused by RRF.",
            _searches(keywords=True),
        ),
    }
    for name, (description, searches) in defaults.items():
        Retriever.objects.get_or_create(
            name=name,
            defaults={
                "description": description,
                "config": {
                    "stage_id": "feature_search",
                    "parameters": {"searches": searches, "final_top_k": 500, "fusion": "rrf"},
                },
            },
        )


def delete_default_retrievers(apps, schema_editor):
    apps.get_model("search", "Retriever").objects.filter(name__in=["default", "hybrid"]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("gallery", "0001_initial"),
        ("search", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Retriever",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.SlugField(max_length=100, unique=True)),
                ("description", models.TextField(blank=True)),
                ("config", models.JSONField(help_text="A feature_search stage; see search/config.py.")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.RunPython(create_default_retrievers, delete_default_retrievers),
        migrations.RunSQL(
            f"CREATE INDEX artwork_search_document ON gallery_artwork USING gin ({DOCUMENT_SQL});",
            "DROP INDEX IF EXISTS artwork_search_document;",
        ),
        migrations.RunSQL(VERSION_SQL, VERSION_REVERSE_SQL),
    ]
