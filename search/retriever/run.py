"""Execution: run the planned searches and fuse their lists by RRF.

  text      -> the text tower          -> kNN over the feature's stored vectors
  content   -> the image tower         -> kNN
  document  -> that artwork's stored vector -> kNN, the artwork itself left out
  keywords  -> PostgreSQL full-text search of the metadata
The filters apply inside every search, before its top_k. One list alone keeps its own order.
Negative searches ("less like this") run the same way; fusion subtracts their ranks.

Each search's ranked list is cached on its own (search/retriever/cache.py), so a query that
differs from an earlier one only in its weights runs no search at all.

Searches that need only the database (document, keywords) run on a helper thread, with its own
connection, while this thread encodes the text or image; see `overlap_allowed`.

When the query encoder cannot be loaded, a text search falls back to a keyword search of the
same text and the result carries a notice; an image search is skipped with a notice, and a query
left with nothing to run is refused with EncoderUnavailable (HTTP 503).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection

from search.config import RetrieverConfig, ef_search_for
from search.connections import run_on_helper_connection
from search.errors import EncoderUnavailable
from search.filters import Filters
from search.fusion import rrf
from search.keywords import keyword_search
from search.knn import knn
from search.retriever import cache
from search.retriever.cache import CachedList, FusedList
from search.retriever.plan import PlannedSearch
from search.retriever.results import SearchStats
from search.retriever.vectors import query_vector

logger = logging.getLogger(__name__)

# Searches that need no encoder: they can run on a helper thread while the encoder works.
DATABASE_ONLY = frozenset({"document", "keywords"})
# What the person is told when the model is unavailable: a text search was answered by keywords;
# an uploaded image could not be searched at all.
TEXT_FALLBACK_NOTICE = "The image model is unavailable; showing keyword matches."
IMAGE_SKIPPED_NOTICE = (
    "The image model is unavailable, so the uploaded image could not be searched."
)

Outcome = tuple[list[int], SearchStats]


def run_plan(
    *,
    config: RetrieverConfig,
    plan: list[PlannedSearch],
    filters: Filters,
    notices: list[str],
    version: int | None = None,
    read_lists: bool = True,
) -> FusedList:
    """Run every planned search (or take its list from the cache) and fuse. Appends to
    `notices` when a search had to fall back or be skipped. With the collection `version`
    (read before searching, see plan.stored_retriever), each list is cached for the next query;
    `read_lists` False runs every search anyway."""
    started = time.perf_counter()
    keys = (
        {p.name: cache.list_key(planned=p, filters=filters, version=version) for p in plan}
        if version is not None
        else {}
    )
    cached = cache.get_lists(list(set(keys.values()))) if read_lists else {}
    to_run = [p for p in plan if keys.get(p.name) not in cached]
    outcomes = run_searches(plan=to_run, filters=filters, notices=notices)
    if keys:
        cache.set_lists(
            {
                keys[name]: CachedList(
                    ids=ids, feature=stat.feature, encode_ms=stat.encode_ms, knn_ms=stat.knn_ms
                )
                for name, (ids, stat) in outcomes.items()
                if not stat.fallback  # a degraded list is not kept
            }
        )
    rankings: dict[str, list[int]] = {}
    negatives: dict[str, list[int]] = {}
    stats: list[SearchStats] = []
    for planned in plan:  # plan order, whichever thread ran the search
        found = cached.get(keys.get(planned.name, ""))
        outcome = _cached_outcome(planned, found) if found else outcomes.get(planned.name)
        if outcome is None:  # skipped (its encoder is unavailable)
            continue
        lists = negatives if planned.polarity == "negative" else rankings
        lists[planned.name], stat = outcome
        stats.append(stat)
    if not rankings:
        raise EncoderUnavailable(
            "The image model is unavailable, so this search cannot run right now. "
            "Try again later, or search by text or by an artwork from the collection."
        )
    weights = {planned.name: planned.applied_weight for planned in plan}
    fused = rrf(
        rankings,
        k=config.parameters.fusion.k,
        weights={name: w for name, w in weights.items() if name in rankings or name in negatives},
        negatives=negatives,
        limit=config.parameters.final_top_k,
    )
    return FusedList(
        items=fused,
        searches=stats,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def run_searches(
    *, plan: list[PlannedSearch], filters: Filters, notices: list[str]
) -> dict[str, Outcome]:
    """Each search's outcome by its label; a search skipped for want of its encoder is absent.

    The database-only searches (a document's kNN, keywords) run on a helper thread while this
    one encodes: e.g. text + document costs max(encode + kNN, document kNN) instead of the sum.
    """
    background = [p for p in plan if p.mode in DATABASE_ONLY]
    foreground = [p for p in plan if p.mode not in DATABASE_ONLY]
    if not (background and foreground) or not overlap_allowed():
        return _run_sequentially(plan, filters, notices)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-db") as pool:
        # Its own connection, closed when done: see search.connections.
        future = pool.submit(
            run_on_helper_connection, _run_sequentially, background, filters, notices
        )
        try:
            outcomes = _run_sequentially(foreground, filters, notices)
        finally:
            # Wait for the helper even when this thread failed, so its connection is closed
            # before the request ends; its own error (an unknown artwork) wins if both failed.
            background_outcomes = future.result()
    return {**outcomes, **background_outcomes}


def overlap_allowed() -> bool:
    """Whether searches may run on a second connection. Not inside a transaction: the helper's
    connection would not see this one's uncommitted writes (tests run each test in one, and a
    caller's atomic block may hold data it has not committed), so there the searches run one
    after the other on this connection. SEARCH_OVERLAP_SEARCHES=0 turns overlapping off (e.g.
    behind a connection pooler with very few connections)."""
    if connection.in_atomic_block:
        return False
    return bool(settings.SEARCH_OVERLAP_SEARCHES)


def _run_sequentially(
    plan: list[PlannedSearch], filters: Filters, notices: list[str]
) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for planned in plan:
        try:
            outcomes[planned.name] = run_search(planned, filters)
        except EncoderUnavailable as exc:
            logger.warning("Search %r degraded: %s", planned.name, exc.message)
            if planned.mode == "text":
                # The same text as keywords: the best that can stand in for it.
                outcomes[planned.name] = _keyword_outcome(planned, filters, fallback="keywords")
                notices.append(TEXT_FALLBACK_NOTICE)
            else:  # an image: nothing can stand in for it
                notices.append(IMAGE_SKIPPED_NOTICE)
    return outcomes


def run_search(planned: PlannedSearch, filters: Filters) -> Outcome:
    """One search's ranked artwork ids and figures."""
    if planned.mode == "keywords":
        return _keyword_outcome(planned, filters)
    started = time.perf_counter()
    query = query_vector(planned)
    encoded = time.perf_counter()
    rows = knn(
        feature_id=query.feature.pk,
        vector=query.vector,
        top_k=planned.top_k,
        filters=filters,
        # A reference's neighbours leave it out (the visitor has it); a negative example's
        # list starts with the example itself, so that what is marked goes down the most.
        exclude_id=query.exclude_id if planned.polarity == "positive" else None,
        ef_search=ef_search_for(planned.mode),
    )
    return _outcome(
        planned,
        rows,
        feature=query.feature.name,
        encode_ms=round((encoded - started) * 1000, 2),
        since=encoded,
        vector_cached=query.cached,
    )


def _keyword_outcome(planned: PlannedSearch, filters: Filters, *, fallback: str = "") -> Outcome:
    """A keyword search of the planned text (also a text search's fallback, `fallback` set)."""
    started = time.perf_counter()
    rows = keyword_search(text=planned.text, top_k=planned.top_k, filters=filters)
    return _outcome(planned, rows, feature="", encode_ms=0.0, since=started, fallback=fallback)


def _outcome(
    planned: PlannedSearch,
    rows: list[tuple[int, float]],
    *,
    feature: str,
    encode_ms: float,
    since: float,
    vector_cached: bool = False,
    fallback: str = "",
) -> Outcome:
    ids = [artwork_id for artwork_id, _ in rows]
    return ids, SearchStats(
        name=planned.name,
        input_mode=planned.mode,
        feature=feature,
        top_k=planned.top_k,
        encode_ms=encode_ms,
        knn_ms=round((time.perf_counter() - since) * 1000, 2),
        returned=len(ids),
        vector_cached=vector_cached,
        fallback=fallback,
        polarity=planned.search.polarity,
        weight=planned.applied_weight,
        document_id=planned.document_id,
    )


def _cached_outcome(planned: PlannedSearch, found: CachedList) -> Outcome:
    """A search answered by its cached list: nothing was encoded or searched this time."""
    return list(found.ids), SearchStats(
        name=planned.name,
        input_mode=planned.mode,
        feature=found.feature,
        top_k=planned.top_k,
        encode_ms=0.0,
        knn_ms=0.0,
        returned=len(found.ids),
        vector_cached=False,
        polarity=planned.search.polarity,
        weight=planned.applied_weight,
        document_id=planned.document_id,
        list_cached=True,
    )
