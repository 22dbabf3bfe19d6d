# A write to a collection (its feature extractor decides what a feature URI names) bumps the
# collection version that keys the result cache, like writes to artworks, embeddings and
# features (migration 0002): a cached list never outlives the configuration it was made under.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0002_collections"),
        ("search", "0005_artwork_filter_indexes"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE TRIGGER search_collection_version_collection"
            " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gallery_collection"
            " FOR EACH STATEMENT EXECUTE FUNCTION search_bump_collection_version();",
            "DROP TRIGGER IF EXISTS search_collection_version_collection ON gallery_collection;",
        ),
    ]
