"""The performance changes of the retriever: halfvec storage, ef_search per input mode, the int8
query encoder, one-query cache hits, searches overlapped on a second connection, and the keyword
fallback when the model cannot be loaded."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse

from gallery.models import Artwork
from search.config import ef_search_for
from search.encoder import get_encoder, reset_encoder
from search.knn import explain_knn, stored_vector
from search.models import Retriever
from search.retriever import (
    TEXT_FALLBACK_NOTICE,
    EncoderUnavailable,
    RetrievalInputs,
    execute_retriever,
)
from search.retriever import run as retriever_run
from tests.fixtures.corpus import Corpus, clear_cache, plane_vector


# halfvec storage ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_vectors_are_stored_as_halfvec_and_read_back_as_float32(corpus: Corpus) -> None:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'search_embedding'::regclass AND attname = 'vector'"
        )
        assert cur.fetchone()[0] == "halfvec(768)"
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'embedding_vector_hnsw'")
        assert "halfvec_cosine_ops" in cur.fetchone()[0]
    vector = stored_vector(artwork_id=corpus.ids[3], feature_id=corpus.feature.pk)
    assert vector is not None and vector.dtype == np.float32 and vector.shape == (768,)
    # 24 degrees in half precision: within float16's relative precision of the original
    np.testing.assert_allclose(vector, plane_vector(24.0), atol=1e-3)


@pytest.mark.django_db
def test_knn_plan_uses_the_halfvec_index(corpus: Corpus) -> None:
    plan = explain_knn(feature_id=corpus.feature.pk, vector=plane_vector(10.0), top_k=5)
    assert "embedding_vector_hnsw" in plan


# ef_search per input mode -----------------------------------------------------------------------
def test_ef_search_per_input_mode(settings: Any) -> None:
    assert (ef_search_for("text"), ef_search_for("content"), ef_search_for("document")) == (
        800,
        400,
        400,
    )
    settings.SEARCH_HNSW_EF_SEARCH_TEXT = 900
    settings.SEARCH_HNSW_EF_SEARCH = 300
    assert (ef_search_for("text"), ef_search_for("content")) == (900, 300)


@pytest.mark.django_db
def test_text_searches_use_the_text_ef_search(
    encoded_corpus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retriever passes each search's floor to knn(), which sets it (SET LOCAL)."""
    corpus, _, _ = encoded_corpus
    seen: list[tuple[str, int | None]] = []
    real_knn = retriever_run.knn

    def spy(**kwargs: Any) -> list[tuple[int, float]]:
        mode = "text" if kwargs.get("exclude_id") is None else "document"
        seen.append((mode, kwargs["ef_search"]))
        return real_knn(**kwargs)

    monkeypatch.setattr(retriever_run, "knn", spy)
    execute_retriever(
        inputs=RetrievalInputs(text="a storm at sea", document_id=corpus.ids[0]), use_cache=False
    )
    assert sorted(seen) == [("document", 400), ("text", 800)]


# int8 query encoder ------------------------------------------------------------------------------
def test_int8_only_for_the_query_encoder(test_encoder_settings: Path, settings: Any) -> None:
    import torch

    worker = get_encoder()
    assert get_encoder(for_queries=True).quantized == ""  # off by default: fp32
    settings.GALLERY_QUERY_QUANTIZE = "int8"
    query = get_encoder(for_queries=True)
    assert query is not worker and query.quantized == "int8"
    assert query.feature_name == worker.feature_name  # same space: it searches fp32 vectors
    linear = [m for m in worker.model.modules() if type(m) is torch.nn.Linear]
    assert linear, "the worker's encoder keeps its fp32 Linear layers"
    assert not [m for m in query.model.modules() if type(m) is torch.nn.Linear]
    texts = ["a storm at sea", "a portrait of a woman", "flowers in a vase"]
    cosines = np.sum(worker.encode_texts(texts) * query.encode_texts(texts), axis=1)
    assert np.all(cosines > 0.98), cosines
    assert get_encoder(for_queries=True) is query  # loaded once


# Cache hits -----------------------------------------------------------------------------------
@pytest.fixture
def similar(corpus: Corpus) -> Retriever:
    return Retriever.objects.create(
        name="similar",
        config={
            "stage_id": "feature_search",
            "parameters": {
                "searches": [
                    {
                        "feature": "active",
                        "query": {
                            "input_mode": "document",
                            "document_ref": "{{INPUT.document_id}}",
                        },
                    }
                ]
            },
        },
    )


@pytest.mark.django_db
def test_cache_hit_costs_one_query(
    similar: Retriever, corpus: Corpus, django_assert_num_queries: Any
) -> None:
    inputs = RetrievalInputs(document_id=corpus.id_of("Study of Trees"))
    first = execute_retriever(name="similar", inputs=inputs, limit=4)
    with django_assert_num_queries(1):  # the collection version (with the configuration)
        hit = execute_retriever(name="similar", inputs=inputs, limit=4)
    assert hit.cache_hit and hit.results == first.results
    # another page of the cached list: the list is not recomputed, only its artworks are read
    with django_assert_num_queries(2):
        other = execute_retriever(name="similar", inputs=inputs, offset=4, limit=4)
    assert other.cache_hit and [r.ranks["document"] for r in other.results] == [5, 6, 7, 8]


@pytest.mark.django_db
def test_a_changed_title_shows_after_an_edit(similar: Retriever, corpus: Corpus) -> None:
    inputs = RetrievalInputs(document_id=corpus.id_of("Study of Trees"))
    before = execute_retriever(name="similar", inputs=inputs, limit=3)
    assert execute_retriever(name="similar", inputs=inputs, limit=3).cache_hit
    first = before.results[0]
    artwork = Artwork.objects.get(pk=first.artwork_id)
    artwork.title = "Renamed by a curator"
    artwork.save()
    after = execute_retriever(name="similar", inputs=inputs, limit=3)
    assert after.cache_hit is False
    assert after.results[0].artwork_id == first.artwork_id
    assert after.results[0].title == "Renamed by a curator"
    again = execute_retriever(name="similar", inputs=inputs, limit=3)
    assert again.cache_hit and again.results[0].title == "Renamed by a curator"


@pytest.mark.django_db
def test_edited_configuration_is_used_at_once(similar: Retriever, corpus: Corpus) -> None:
    """The parsed configuration is kept per process, keyed on its text: an edit applies to the
    very next query."""
    inputs = RetrievalInputs(document_id=corpus.id_of("Study of Trees"))
    assert execute_retriever(name="similar", inputs=inputs).total == 9
    Retriever.objects.filter(pk=similar.pk).update(  # no save(), no signal
        config={
            "stage_id": "feature_search",
            "parameters": {
                "searches": [
                    {
                        "feature": "active",
                        "top_k": 2,
                        "query": {
                            "input_mode": "document",
                            "document_ref": "{{INPUT.document_id}}",
                        },
                    }
                ]
            },
        }
    )
    assert execute_retriever(name="similar", inputs=inputs).total == 2


# Overlapped searches ---------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_document_search_runs_on_its_own_connection_while_encoding(
    encoded_corpus: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Outside a transaction the document's kNN runs on a helper thread with its own connection
    (closed afterwards); the fused result is the same as running them one after the other."""
    corpus, _, _ = encoded_corpus
    clear_cache()
    Retriever.objects.get_or_create(name="both", defaults={"config": _text_and_document()})
    threads: dict[str, str] = {}
    real = retriever_run.run_search

    def spy(planned: Any, filters: Any) -> Any:
        threads[planned.mode] = threading.current_thread().name
        return real(planned, filters)

    monkeypatch.setattr(retriever_run, "run_search", spy)
    inputs = RetrievalInputs(text="a storm at sea", document_id=corpus.ids[2])
    before = _other_backends()  # e.g. earlier live-server threads' persistent connections
    overlapped = execute_retriever(name="both", inputs=inputs, use_cache=False)
    assert threads["text"] == threading.current_thread().name
    assert threads["document"].startswith("search-db")
    settings.SEARCH_OVERLAP_SEARCHES = False
    sequential = execute_retriever(name="both", inputs=inputs, use_cache=False)
    assert threads["document"] == threading.current_thread().name
    assert overlapped.results == sequential.results
    assert {s.name for s in overlapped.stages[0].searches} == {"text", "document"}
    # The helper's connection was closed, not left idle (a backend exits just after its client
    # closes, hence the short wait).
    deadline = time.monotonic() + 5
    while (left := _other_backends() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == set()


def _other_backends() -> set[int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cur.fetchall()}


@pytest.mark.django_db
def test_inside_a_transaction_searches_run_on_this_connection(
    encoded_corpus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, _, _ = encoded_corpus
    assert connection.in_atomic_block  # the test's own transaction
    threads: set[str] = set()
    real = retriever_run.run_search

    def spy(planned: Any, filters: Any) -> Any:
        threads.add(threading.current_thread().name)
        return real(planned, filters)

    monkeypatch.setattr(retriever_run, "run_search", spy)
    result = execute_retriever(
        inputs=RetrievalInputs(text="a storm at sea", document_id=corpus.ids[2]), use_cache=False
    )
    assert threads == {threading.current_thread().name}
    assert result.total > 0


def _text_and_document() -> dict[str, Any]:
    return {
        "stage_id": "feature_search",
        "parameters": {
            "searches": [
                {"feature": "active", "query": {"input_mode": "text", "value": "{{INPUT.text}}"}},
                {
                    "feature": "active",
                    "query": {"input_mode": "document", "document_ref": "{{INPUT.document_id}}"},
                },
            ]
        },
    }


# The model cannot be loaded --------------------------------------------------------------------
@pytest.fixture
def no_model(settings: Any, tmp_path: Path) -> Any:
    """GALLERY_EMBEDDING_MODEL points at a folder that does not exist, with no fallback."""
    settings.GALLERY_EMBEDDING_MODEL = str(tmp_path / "no-such-model")
    settings.GALLERY_EMBEDDING_FALLBACK = False
    reset_encoder()
    yield settings
    reset_encoder()


@pytest.mark.django_db
def test_api_text_falls_back_to_keywords_with_a_notice(
    client: Any, corpus: Corpus, no_model: Any
) -> None:
    response = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={"inputs": {"text": "storm"}},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["notices"] == [TEXT_FALLBACK_NOTICE]
    # the keyword ranking of "storm": title matches (weight A) before the description's
    assert [r["title"] for r in data["results"]] == ["Storm at Sea", "Ship in a Storm", "Sea Study"]
    (search,) = data["stages"][0]["searches"]
    assert (search["name"], search["fallback"]) == ("text", "keywords")
    # a degraded result is not cached: the model may be back for the next query
    again = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={"inputs": {"text": "storm"}},
        content_type="application/json",
    ).json()
    assert again["cache_hit"] is False and again["notices"] == [TEXT_FALLBACK_NOTICE]


@pytest.mark.django_db
def test_api_image_only_without_a_model_is_a_clear_503(
    client: Any, corpus: Corpus, no_model: Any, aic_image_bytes: bytes
) -> None:
    import base64

    response = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={"inputs": {"image": base64.b64encode(aic_image_bytes).decode()}},
        content_type="application/json",
    )
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == EncoderUnavailable.code
    assert "image model is unavailable" in body["detail"]
    # find similar needs no model: it still works
    similar = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={"inputs": {"document_id": corpus.ids[0]}},
        content_type="application/json",
    )
    assert similar.status_code == 200 and similar.json()["notices"] == []


@pytest.mark.django_db
def test_search_page_shows_the_notice(client: Any, corpus: Corpus, no_model: Any) -> None:
    response = client.get(reverse("home"), {"q": "storm"})
    assert response.status_code == 200
    page = response.content.decode()
    assert TEXT_FALLBACK_NOTICE in page
    assert page.index("Storm at Sea") < page.index("Ship in a Storm") < page.index("Sea Study")


@pytest.mark.django_db
def test_a_failed_load_is_not_retried_on_every_query(
    corpus: Corpus, no_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search import encoder as encoder_module

    attempts: list[str] = []
    real = encoder_module._create

    def counting(model_name: str, *, fallback: bool) -> Any:
        attempts.append(model_name)
        return real(model_name, fallback=fallback)

    monkeypatch.setattr(encoder_module, "_create", counting)
    result = execute_retriever(inputs=RetrievalInputs(text="storm"), use_cache=False)
    assert result.notices == [TEXT_FALLBACK_NOTICE]
    # The active feature's checkpoint, then the configured model, each tried once.
    first = list(attempts)
    assert first and len(set(first)) == len(first), first
    assert no_model.GALLERY_EMBEDDING_MODEL in first
    for _ in range(2):
        result = execute_retriever(inputs=RetrievalInputs(text="storm"), use_cache=False)
        assert result.notices == [TEXT_FALLBACK_NOTICE]
    assert attempts == first  # nothing tried again
