# Embedding.vector in half precision: halfvec(768) and an HNSW index with halfvec_cosine_ops.
#
# The stored vectors are converted in place (vector::halfvec rounds each float32 to float16) and
# the index is rebuilt. Both take a while on a large collection (120,000 vectors here: about
# 5 s for the rewrite and 35-60 s for the index), so the statement timeout is lifted for this
# transaction only and the build gets enough memory to keep the graph in RAM (the halfvec index
# is about 235 MB at 120,000 vectors).

import pgvector.django.halfvec
import pgvector.django.indexes
from django.db import migrations

FORWARD = [
    "SET LOCAL statement_timeout = 0",
    "SET LOCAL maintenance_work_mem = '512MB'",
    "DROP INDEX IF EXISTS embedding_vector_hnsw",
    "ALTER TABLE search_embedding ALTER COLUMN vector TYPE halfvec(768) USING vector::halfvec(768)",
    "CREATE INDEX embedding_vector_hnsw ON search_embedding USING hnsw "
    "(vector halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)",
]
BACKWARD = [
    "SET LOCAL statement_timeout = 0",
    "SET LOCAL maintenance_work_mem = '1GB'",
    "DROP INDEX IF EXISTS embedding_vector_hnsw",
    "ALTER TABLE search_embedding ALTER COLUMN vector TYPE vector(768) USING vector::vector(768)",
    "CREATE INDEX embedding_vector_hnsw ON search_embedding USING hnsw "
    "(vector vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0003_embeddings_image_sha"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="embedding", name="embedding_vector_hnsw"),
                migrations.AlterField(
                    model_name="embedding",
                    name="vector",
                    field=pgvector.django.halfvec.HalfVectorField(dimensions=768),
                ),
                migrations.AddIndex(
                    model_name="embedding",
                    index=pgvector.django.indexes.HnswIndex(
                        ef_construction=64,
                        fields=["vector"],
                        m=16,
                        name="embedding_vector_hnsw",
                        opclasses=["halfvec_cosine_ops"],
                    ),
                ),
            ],
        ),
    ]
