"""Embedding pipeline, signals, command, admin pieces and the model switch, in-process, on real
PostgreSQL + pgvector, real AIC paintings, the offline test model and (for queueing) real RabbitMQ
(tests/fixtures/broker.py). The worker process itself is in test_worker.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.admin import ModelAdmin
from django.contrib.admin.sites import AdminSite
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from gallery.images import load_image
from gallery.models import Artwork
from gallery.services import artwork_upsert
from search import admin as search_admin
from search.encoder import get_encoder, reset_encoder
from search.features import activate_when_complete, active_feature, feature_for, query_encoder
from search.models import Embedding, EmbeddingFailure, Feature
from search.pipeline import Item, embed_artworks, insert_vectors
from search.queueing import embedding_batch, queue_embedding
from tests.fixtures.broker import UNREACHABLE_BROKER_URL, forget_connections, queued_ids
from tests.helpers import PAINTINGS_DIR, aic_import

pytestmark = pytest.mark.django_db


def test_pipeline_embeds_real_paintings_exactly_once(
    test_encoder_settings: Path, aic_records: list[dict[str, Any]]
) -> None:
    ids = aic_import(aic_records, 5)
    report = embed_artworks(ids=ids, batch_size=2, threads=2)
    assert (report.embedded, report.failed, report.skipped) == (5, 0, 0)
    feature = feature_for(get_encoder())
    rows = {e.artwork_id: e for e in Embedding.objects.filter(feature=feature)}
    assert sorted(rows) == sorted(ids)

    # The stored vector is the encoder's vector of the stored image, unit length.
    artwork = Artwork.objects.get(pk=ids[3])
    with artwork.image.open("rb") as fh:
        image = load_image(fh.read()).image
    expected = get_encoder().encode_images([image])[0]
    stored = np.asarray(rows[ids[3]].vector, dtype=np.float32)
    # stored in half precision (halfvec): float16 keeps about 3 significant digits
    np.testing.assert_allclose(stored, expected, atol=1e-4)
    assert abs(np.linalg.norm(stored) - 1) < 1e-3  # unit length, to half precision
    assert rows[ids[3]].image_sha256 == artwork.image_sha256

    again = embed_artworks(ids=ids)
    assert (again.embedded, again.skipped) == (0, 5)
    assert Embedding.objects.filter(feature=feature).count() == 5
    # The first feature ever becomes active once complete.
    assert active_feature() == feature and feature.__class__.objects.get(pk=feature.pk).is_active


def test_undecodable_image_is_recorded_and_the_batch_goes_on(
    test_encoder_settings: Path, aic_records: list[dict[str, Any]]
) -> None:
    ids = aic_import(aic_records, 3)
    broken = Artwork.objects.get(pk=ids[1])
    with default_storage.open(broken.image.name or "", "wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0 this is not a JPEG any more")
    missing = Artwork.objects.get(pk=ids[2])
    default_storage.delete(missing.image.name or "")

    report = embed_artworks(ids=ids)
    assert (report.embedded, report.failed) == (1, 2)
    failures = {f.artwork_id: f for f in EmbeddingFailure.objects.all()}
    assert "cannot be decoded" in failures[ids[1]].reason
    assert "missing" in failures[ids[2]].reason
    embed_artworks(ids=ids)  # still broken: attempts count up, nothing else changes
    assert EmbeddingFailure.objects.get(artwork_id=ids[1]).attempts == 2

    # Admin: status column and filter.
    active_feature()
    statuses = {pk: search_admin.embedding_status(Artwork.objects.get(pk=pk)) for pk in ids}
    assert "embedded" in statuses[ids[0]]
    assert "failed: The image cannot be decoded" in statuses[ids[1]]
    request = RequestFactory().get("/")
    model_admin = ModelAdmin(Artwork, AdminSite())
    for value, expected in [("embedded", {ids[0]}), ("failed", {ids[1], ids[2]})]:
        flt = search_admin.EmbeddingStatusFilter(
            request, {"embedding": [value]}, Artwork, model_admin
        )
        assert (
            set(flt.queryset(request, Artwork.objects.all()).values_list("pk", flat=True))
            == expected
        )
    pending = aic_import(aic_records, 1, offset=10)
    flt = search_admin.EmbeddingStatusFilter(
        request, {"embedding": ["pending"]}, Artwork, model_admin
    )
    assert (
        list(flt.queryset(request, Artwork.objects.all()).values_list("pk", flat=True)) == pending
    )


def test_a_changed_image_gets_a_new_vector(
    test_encoder_settings: Path,
    aic_records: list[dict[str, Any]],
    embed_broker: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    (artwork_id,) = aic_import(aic_records, 1)
    embed_artworks(ids=[artwork_id])
    old = Embedding.objects.get(artwork_id=artwork_id)
    old_sha = old.image_sha256

    with django_capture_on_commit_callbacks(execute=True):
        result = artwork_upsert(
            source="aic",
            external_id=str(aic_records[0]["id"]),
            metadata={},
            image_data=(PAINTINGS_DIR / aic_records[5]["image"]).read_bytes(),
        )
    assert result.image_changed
    assert not Embedding.objects.filter(artwork_id=artwork_id).exists()  # stale vector gone
    assert queued_ids(embed_broker) == [[artwork_id]]

    # A worker still holding the old image cannot write its vector now.
    assert (
        insert_vectors(
            feature=old.feature,
            items=[Item(artwork_id, "x", old_sha)],
            vectors=np.asarray([old.vector], dtype=np.float32),
        )
        == []
    )
    report = embed_artworks(ids=[artwork_id])
    new = Embedding.objects.get(artwork_id=artwork_id)
    assert report.embedded == 1 and new.image_sha256 == result.artwork.image_sha256 != old_sha
    assert np.abs(np.asarray(new.vector) - np.asarray(old.vector)).max() > 1e-3


def test_imports_queue_in_batches_and_a_down_broker_does_not_break_them(
    test_encoder_settings: Path,
    aic_records: list[dict[str, Any]],
    embed_broker: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.GALLERY_EMBED_TASK_BATCH = "2"
    with embedding_batch(), django_capture_on_commit_callbacks(execute=True):
        ids = aic_import(aic_records, 5)
    assert queued_ids(embed_broker) == [ids[0:2], ids[2:4], ids[4:5]]

    from gallery.celery import app

    app.conf.broker_url = UNREACHABLE_BROKER_URL
    forget_connections(app)
    caplog.set_level(logging.ERROR, logger="search.queueing")
    with django_capture_on_commit_callbacks(execute=True):
        more = aic_import(aic_records, 1, offset=7)
    assert Artwork.objects.filter(pk=more[0]).exists()
    assert "embed --missing" in caplog.text
    assert queue_embedding(ids=more) == 0  # skips the broker for a while, fast


def test_embed_command_sync_and_queued(
    test_encoder_settings: Path,
    aic_records: list[dict[str, Any]],
    embed_broker: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = aic_import(aic_records, 4)
    call_command("embed", "--sync", "--batch-size", "3")
    out = capsys.readouterr().out
    assert "4 artwork(s) to embed" in out and "embedded 4" in out and "is the active feature" in out
    assert Embedding.objects.count() == 4

    call_command("embed", "--sync", "--missing")
    assert "0 artwork(s) to embed" in capsys.readouterr().out
    call_command("embed", "--all", "--batch-size", "3")  # queued, replacing
    assert queued_ids(embed_broker) == [ids[0:3], ids[3:4]]


def test_reembed_action_really_queues(
    test_encoder_settings: Path, aic_records: list[dict[str, Any]], embed_broker: str
) -> None:
    ids = aic_import(aic_records, 3)
    embed_artworks(ids=ids)
    from django.contrib import admin as django_admin

    model_admin = django_admin.ModelAdmin(Artwork, AdminSite())
    from django.contrib.messages import get_messages
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.http import HttpResponse

    request = RequestFactory().post("/")
    for middleware in (SessionMiddleware, MessageMiddleware):  # what the admin's request has
        middleware(lambda request: HttpResponse()).process_request(request)
    search_admin.reembed(model_admin, request, Artwork.objects.filter(pk__in=ids[:2]))
    assert queued_ids(embed_broker) == [ids[:2]]
    assert Embedding.objects.count() == 3  # kept until replaced: searches never lose them
    assert [str(m) for m in get_messages(request)] == [
        "Queued 2 artwork(s) for embedding in 1 task(s)."
    ]


def test_model_switch_fills_in_the_background_then_activates(
    test_encoder_settings: Path,
    second_test_model_dir: Path,
    aic_records: list[dict[str, Any]],
    settings: Settings,
) -> None:
    ids = aic_import(aic_records, 4)
    embed_artworks(ids=ids)
    old = active_feature()

    settings.GALLERY_EMBEDDING_MODEL = str(second_test_model_dir)
    reset_encoder()
    new = feature_for(get_encoder())
    assert new.name != old.name

    embed_artworks(ids=ids[:3], feature=new)  # the switch in progress: 3 of 4
    assert active_feature() == old and not Feature.objects.get(pk=new.pk).is_active
    encoder, feature = query_encoder()  # queries keep using the old model and its vectors
    assert feature == old and encoder.feature_name == old.name
    assert activate_when_complete(feature=new) is False

    embed_artworks(ids=ids[3:], feature=new)
    assert active_feature() == old  # complete, but switched only when asked
    assert activate_when_complete(feature=new) is True
    assert active_feature() == new
    encoder, feature = query_encoder()
    assert feature == new and encoder.feature_name == new.name
    # Vectors of the two models differ; both sets remain stored, searches use one.
    a = np.asarray(Embedding.objects.get(feature=old, artwork_id=ids[0]).vector)
    b = np.asarray(Embedding.objects.get(feature=new, artwork_id=ids[0]).vector)
    assert np.abs(a - b).max() > 1e-3


def test_knn_query_uses_the_hnsw_index(test_encoder_settings: Path) -> None:
    """3,000 rows in two features: the retriever's kNN query (search/knn.py) filtered by the
    active feature walks the HNSW index. Its plan is pinned: with halfvec rows (1.5 KB, kept in
    the heap rather than TOASTed) the planner alone prefers an exact sort at this size."""
    from search.knn import explain_knn, knn

    rng = np.random.default_rng(0)
    artworks = Artwork.objects.bulk_create(
        Artwork(source="local", external_id=f"k{i}", title=f"k{i}") for i in range(1500)
    )
    active = Feature.objects.create(name="knn-a@v1", model_name="x", is_active=True)
    other = Feature.objects.create(name="knn-b@v1", model_name="y")
    vectors = rng.normal(size=(3000, 768)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    Embedding.objects.bulk_create(
        Embedding(artwork=artworks[i % 1500], feature=active if i < 1500 else other, vector=v)
        for i, v in enumerate(vectors)
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE search_embedding")
    plan = explain_knn(feature_id=active.pk, vector=vectors[5], top_k=10)
    found = [row[0] for row in knn(feature_id=active.pk, vector=vectors[5], top_k=10)]
    assert "Index Scan using embedding_vector_hnsw" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert found[0] == artworks[5].pk  # its own vector is the nearest
    active_ids = set(Embedding.objects.filter(feature=active).values_list("artwork_id", flat=True))
    assert set(found) <= active_ids
