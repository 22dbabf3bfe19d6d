"""The HNSW index against exact search, on a few thousand clustered unit vectors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from django.db import connection

from search.filters import Filters
from search.knn import explain_knn, knn

pytestmark = pytest.mark.django_db

N, CLUSTERS, DIMS, TOP_K, QUERIES = 3000, 30, 768, 250, 20
CLASSES = ["Painting", "Drawing", "Print"]


@pytest.fixture
def clustered() -> tuple[object, list[int], np.ndarray, np.ndarray]:
    """(feature, artwork ids, vectors, classification index per row)."""
    from gallery.models import Artwork
    from search.models import Embedding, Feature

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(CLUSTERS, DIMS))
    labels = rng.integers(0, CLUSTERS, size=N)
    vectors = centres[labels] + rng.normal(scale=0.6, size=(N, DIMS))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    classes = rng.integers(0, len(CLASSES), size=N)
    feature = Feature.objects.create(name="recall@v1", model_name="test", is_active=True)
    # a second feature's vectors share the index: the search must skip them
    other = Feature.objects.create(name="other@v1", model_name="test")
    artworks = Artwork.objects.bulk_create(
        Artwork(source="local", external_id=f"r{i}", classification=CLASSES[classes[i]])
        for i in range(N)
    )
    ids = [artwork.pk for artwork in artworks]
    Embedding.objects.bulk_create(
        (Embedding(artwork_id=ids[i], feature=feature, vector=vectors[i]) for i in range(N)),
        batch_size=500,
    )
    Embedding.objects.bulk_create(
        (Embedding(artwork_id=ids[i], feature=other, vector=vectors[i]) for i in range(0, N, 3)),
        batch_size=500,
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE search_embedding")
        cur.execute("ANALYZE gallery_artwork")
    return feature, ids, vectors, classes


def exact(vectors: np.ndarray, ids: list[int], query: np.ndarray, keep: np.ndarray) -> list[int]:
    distances = 1.0 - vectors.astype(np.float64) @ query.astype(np.float64)
    order = np.lexsort((np.array(ids), distances))
    return [ids[i] for i in order if keep[i]][:TOP_K]


def queries(vectors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(11)
    picks = vectors[rng.choice(N, size=QUERIES, replace=False)]
    noisy = picks + rng.normal(scale=0.02, size=picks.shape)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def test_index_is_used_and_recall_at_250(clustered) -> None:  # type: ignore[no-untyped-def]
    feature, _, vectors, _ = clustered
    plan = explain_knn(feature_id=feature.pk, vector=vectors[0], top_k=TOP_K)
    assert "embedding_vector_hnsw" in plan, plan
    filtered = explain_knn(
        feature_id=feature.pk, vector=vectors[0], top_k=TOP_K, filters=Filters(source="local")
    )
    assert "embedding_vector_hnsw" in filtered, filtered

    # recall@250 of the index against exact search (the fixture is costly: one test, two checks)
    feature, ids, vectors, _ = clustered
    keep = np.ones(N, dtype=bool)
    recalls, timings = [], []
    for query in queries(vectors):
        started = time.perf_counter()
        found = [
            artwork_id for artwork_id, _ in knn(feature_id=feature.pk, vector=query, top_k=TOP_K)
        ]
        timings.append(time.perf_counter() - started)
        truth = exact(vectors, ids, query, keep)
        assert len(found) == TOP_K
        recalls.append(len(set(found) & set(truth)) / TOP_K)
    print(f"recall@{TOP_K} mean {np.mean(recalls):.3f} min {min(recalls):.3f}; "
          f"p50 {np.median(timings) * 1000:.1f} ms")  # fmt: skip
    assert np.mean(recalls) >= 0.95


def test_filtered_knn_still_returns_top_k(clustered) -> None:  # type: ignore[no-untyped-def]
    """A filter that keeps a third of the rows: without iterative scans the index would hand
    back ~ef_search candidates of which only a third pass, so fewer than top_k rows."""
    feature, ids, vectors, classes = clustered
    keep = classes == CLASSES.index("Drawing")
    recalls = []
    for query in queries(vectors)[:8]:
        rows = knn(
            feature_id=feature.pk,
            vector=query,
            top_k=TOP_K,
            filters=Filters(classification="drawing"),
        )
        found = [artwork_id for artwork_id, _ in rows]
        assert len(found) == TOP_K
        distances = [distance for _, distance in rows]
        assert distances == sorted(distances)  # relaxed order re-sorted
        assert set(found) <= {ids[i] for i in np.flatnonzero(keep)}
        recalls.append(len(set(found) & set(exact(vectors, ids, query, keep))) / TOP_K)
    assert np.mean(recalls) >= 0.95

    # Fewer matching rows than top_k: every one of them comes back, nearest first (exact rerun).
    from gallery.models import Artwork

    rare = ids[::150]  # 20 artworks
    Artwork.objects.filter(pk__in=rare).update(classification="Sculpture")
    keep = np.isin(np.array(ids), rare)
    rows = knn(
        feature_id=feature.pk,
        vector=vectors[5],
        top_k=TOP_K,
        filters=Filters(classification="Sculpture"),
    )
    assert [artwork_id for artwork_id, _ in rows] == exact(vectors, ids, vectors[5], keep)
