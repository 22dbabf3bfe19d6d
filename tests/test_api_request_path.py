"""The API's cache-hit path: a repeated execute reads its facets from the cache beside the fused
list (two round trips to the database, each the collection version read before trusting a cached
entry), a write to the collection is counted at once, and a request that skips the cache runs
its searches once (the facets read the fused list it stored)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gallery.models import Artwork
from search.retriever import RetrievalInputs, execute_retriever
from tests.fixtures.corpus import Corpus

pytestmark = pytest.mark.django_db

EXECUTE = "/api/retrievers/default/execute"


def _similar(client: Any, reference: int, *, use_cache: bool = True) -> dict[str, Any]:
    response = client.post(
        EXECUTE,
        {"inputs": {"document_id": reference}, "limit": 2, "use_cache": use_cache},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def test_a_cache_hit_reads_the_version_and_nothing_else(
    client: Any, corpus: Corpus, django_assert_num_queries: Any
) -> None:
    reference = corpus.id_of("Storm at Sea")
    first = _similar(client, reference)
    # The page's and the facets' collection-version reads; no facet count, no page of ids.
    with django_assert_num_queries(2):
        again = _similar(client, reference)
    assert again["cache_hit"] is True
    assert again["facets"] == first["facets"]
    assert again["results"] == first["results"]


def test_facets_follow_a_write_to_the_collection(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    before = _similar(client, reference)["facets"]["artist"]
    assert not any(value["value"] == "Someone Else" for value in before)
    Artwork.objects.filter(pk=corpus.id_of("Harbor at Night")).update(artist="Someone Else")
    after = _similar(client, reference)["facets"]["artist"]
    assert {"value": "Someone Else", "count": 1} in [
        {"value": value["value"], "count": value["count"]} for value in after
    ]


def test_without_the_cache_the_searches_run_once(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    with CaptureQueriesContext(connection) as one_run:
        execute_retriever(inputs=RetrievalInputs(document_id=reference), use_cache=False)
    with CaptureQueriesContext(connection) as queries:
        fresh = _similar(client, reference, use_cache=False)
    assert fresh["cache_hit"] is False
    assert fresh["facets"]["counted"] == fresh["total"] == 9
    assert _knn(queries) == _knn(one_run) >= 1


def _knn(queries: CaptureQueriesContext) -> int:
    return sum("<=>" in query["sql"] for query in queries.captured_queries)
