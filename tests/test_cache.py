"""The result cache: hits, pagination from the cached list, and invalidation on every change."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pytest_django import Settings

from gallery.models import Artwork, Collection
from search.models import Embedding, Retriever
from search.retriever import Filters, RetrievalInputs, RetrievalResult, execute_retriever
from search.retriever.plan import stored_retriever
from tests.fixtures.corpus import Corpus, plane_vector

pytestmark = pytest.mark.django_db


@pytest.fixture
def words(corpus: Corpus) -> Retriever:
    return Retriever.objects.create(
        name="words",
        config={
            "stage_id": "feature_search",
            "parameters": {
                "searches": [
                    {"query": {"input_mode": "keywords", "value": "{{INPUT.keywords}}"}},
                    {
                        "feature": "active",
                        "query": {
                            "input_mode": "document",
                            "document_ref": "{{INPUT.document_id}}",
                        },
                    },
                ],
                "fusion": "rrf",
            },
        },
    )


def run(keywords: str = "storm", **kwargs: Any) -> RetrievalResult:
    return execute_retriever(name="words", inputs=RetrievalInputs(keywords=keywords), **kwargs)


def test_hit_after_miss_with_normalised_text(words: Retriever) -> None:
    first = run("Storm")
    again = run("  STORM \n")
    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert again.stages[0].cache_hit is True
    assert [r.artwork_id for r in again.results] == [r.artwork_id for r in first.results]
    assert [s.name for s in again.stages[0].searches] == ["keywords"]
    # other inputs, filters, top_k or retriever configuration: other keys
    assert run("storm sea").cache_hit is False
    assert run("storm", filters=Filters(classification="Drawing")).cache_hit is False
    assert run("storm", filters=Filters(classification=" drawing")).cache_hit is True
    assert run("storm", top_k=2).cache_hit is False
    assert run("storm", use_cache=False).cache_hit is False
    words.config["parameters"]["fusion"] = {"strategy": "rrf", "k": 10}
    words.save()
    assert run("storm").cache_hit is False


def test_pages_come_from_the_cached_list(words: Retriever, corpus: Corpus) -> None:
    inputs = RetrievalInputs(document_id=corpus.id_of("Study of Trees"))
    first = execute_retriever(name="words", inputs=inputs, limit=3)
    second = execute_retriever(name="words", inputs=inputs, offset=3, limit=3)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert first.total == second.total == 9
    assert [r.ranks["document"] for r in second.results] == [4, 5, 6]


def test_the_cache_holds_typed_payloads(words: Retriever) -> None:
    """The fused list and each page go through the cache as their own types, read back whole."""
    from search.retriever.cache import CachedPage, FusedList, get_payload, result_keys
    from search.retriever.plan import plan_searches, retriever_config

    first = run("storm", limit=2)
    stored = stored_retriever(name="words")
    assert stored.config_text is not None
    plan = plan_searches(
        config=retriever_config(name="words", stored=stored),
        inputs=RetrievalInputs(keywords="storm"),
        top_k=None,
    )
    keys = result_keys(
        config_text=stored.config_text,
        plan=plan,
        filters=Filters(),
        version=stored.version,
        offset=0,
        limit=2,
    )
    fused = get_payload(keys.fused, FusedList)
    page = get_payload(keys.page, CachedPage)
    assert fused is not None and page is not None
    assert [f.item for f in fused.items][:2] == [r.artwork_id for r in page.results]
    assert page.results == first.results and page.total == len(fused.items) == first.total
    assert [s.name for s in page.searches] == ["keywords"]
    # Another type under the key (an older format, say) is a miss, not an error.
    assert get_payload(keys.page, FusedList) is None


def test_artwork_edit_invalidates(words: Retriever, corpus: Corpus) -> None:
    assert [r.title for r in run("storm").results][0] == "Storm at Sea"
    artwork = Artwork.objects.get(pk=corpus.id_of("Winter Landscape"))
    artwork.title = "Winter Storm"
    artwork.save()
    after = run("storm")
    assert after.cache_hit is False
    assert "Winter Storm" in [r.title for r in after.results]
    # a bulk update (no signals, no auto_now) invalidates too
    Artwork.objects.filter(pk=artwork.pk).update(description="", title="Winter")
    bulk = run("storm")
    assert bulk.cache_hit is False
    assert "Winter" not in [r.title for r in bulk.results]
    Artwork.objects.filter(pk=corpus.id_of("Sea Study")).delete()
    assert [r.title for r in run("storm").results] == ["Storm at Sea", "Ship in a Storm"]


def test_new_embedding_invalidates(words: Retriever, corpus: Corpus) -> None:
    study = RetrievalInputs(document_id=corpus.id_of("Study of Trees"))  # at 24 degrees
    before = execute_retriever(name="words", inputs=study)
    assert before.total == 9
    newcomer = Artwork.objects.create(source="local", external_id="new", title="Newcomer")
    version = collection_version()
    # the worker's bulk path: bulk_create sends no post_save signal
    Embedding.objects.bulk_create(
        [Embedding(artwork=newcomer, feature=corpus.feature, vector=plane_vector(25.0))]
    )
    assert collection_version() > version
    after = execute_retriever(name="words", inputs=study)
    assert after.cache_hit is False
    assert (after.total, after.results[0].title) == (10, "Newcomer")
    # a vector replaced in place (same row, another value) invalidates too
    Embedding.objects.filter(artwork=newcomer).update(vector=plane_vector(200.0).tolist())
    moved = execute_retriever(name="words", inputs=study)
    assert moved.cache_hit is False
    assert moved.results[-1].title == "Newcomer"


def collection_version() -> int:
    """The version every result key carries, as the retriever reads it."""
    return stored_retriever(name="default").version


class Clock:
    """Stands in for the `time` module of Django's cache backends: the test moves it on."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


def test_ttl(words: Retriever, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite's cache (per-process memory) on a clock of the test's own: no waiting.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    clock = Clock()
    monkeypatch.setattr("django.core.cache.backends.base.time", clock)
    monkeypatch.setattr("django.core.cache.backends.locmem.time", clock)
    settings.SEARCH_CACHE_TTL = 1
    assert run("storm").cache_hit is False
    assert run("storm").cache_hit is True
    clock.now += 0.9
    assert run("storm").cache_hit is True
    clock.now += 0.2
    assert run("storm").cache_hit is False


def test_version_is_bumped_by_each_table(corpus: Corpus) -> None:
    from search.models import Feature

    steps = [
        lambda: Artwork.objects.create(source="local", external_id="v", title="v"),
        lambda: Embedding.objects.filter(feature=corpus.feature).delete(),
        lambda: Feature.objects.create(name="v@v1", model_name="m"),
        lambda: Collection.objects.create(name="v"),
        lambda: Collection.objects.filter(name="v").update(description="a feature URI's meaning"),
    ]
    for step in steps:
        version = collection_version()
        step()
        assert collection_version() > version
