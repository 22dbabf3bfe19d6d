# The HNSW index with 12 neighbours per node (m 12) instead of 16: faster to build at nearly the
# same recall (search/hnsw.py). Rebuilt in place; on a large collection the build takes a while,
# so the statement timeout is lifted for this transaction only and the graph gets more memory.

import pgvector.django.indexes
from django.db import migrations


def _build(m: int) -> list[str]:
    return [
        "SET LOCAL statement_timeout = 0",
        "SET LOCAL maintenance_work_mem = '1GB'",
        "DROP INDEX IF EXISTS embedding_vector_hnsw",
        "CREATE INDEX embedding_vector_hnsw ON search_embedding USING hnsw "
        f"(vector halfvec_cosine_ops) WITH (m = {m}, ef_construction = 64)",
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0008_default_retrievers_explore"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(sql=_build(12), reverse_sql=_build(16))],
            state_operations=[
                migrations.RemoveIndex(model_name="embedding", name="embedding_vector_hnsw"),
                migrations.AddIndex(
                    model_name="embedding",
                    index=pgvector.django.indexes.HnswIndex(
                        ef_construction=64,
                        fields=["vector"],
                        m=12,
                        name="embedding_vector_hnsw",
                        opclasses=["halfvec_cosine_ops"],
                    ),
                ),
            ],
        ),
    ]
