# Indexes on the expressions the search filters compare (search/filters.py):
# lower(classification) and the two ends of the year span.
#
# They serve the exact path of a filtered search (search/knn.py), which reads the artworks a
# selective filter keeps before comparing their vectors: through these indexes that costs the
# rows kept, not a scan of the whole collection. And ANALYZE gathers statistics on an indexed
# expression, so the planner's estimate of how many artworks a filter keeps, which chooses
# between the exact path and the HNSW index, comes from the data. Without them PostgreSQL
# guesses a fixed share for an expression (0.5 % for an equality, a third for a range) whatever
# the data holds: a classification kept by one artwork in ten was estimated at one in two hundred.

from django.db import migrations

INDEXES = {
    "artwork_classification_lower": "(lower(classification))",
    "artwork_year_last": "((coalesce(end_year, begin_year)))",
    "artwork_year_first": "((coalesce(begin_year, end_year)))",
}
FORWARD = [
    *(
        f"CREATE INDEX IF NOT EXISTS {name} ON gallery_artwork {expression}"
        for name, expression in INDEXES.items()
    ),
    "ANALYZE gallery_artwork",
]
BACKWARD = [f"DROP INDEX IF EXISTS {name}" for name in INDEXES]


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0002_collections"),
        ("search", "0004_embedding_halfvec"),
    ]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD)]
