"""The entry point: a named retriever's inputs -> plan -> cached or run -> a page of results."""

from __future__ import annotations

import time
from collections.abc import Mapping

from django.conf import settings

from search.config import MAX_TOP_K, max_page_size
from search.errors import BadPagination, TopKOutOfRange
from search.filters import Filters
from search.retriever import cache
from search.retriever.cache import CachedPage, FusedList
from search.retriever.inputs import RetrievalInputs
from search.retriever.plan import plan_searches, retriever_config, stored_retriever
from search.retriever.results import RetrievalResult, StageStats, hydrate
from search.retriever.run import run_plan
from search.validation import MAX_NAME_CHARS, check_text

STAGE_NAME = "feature_search"


def execute_retriever(
    *,
    name: str = "default",
    inputs: RetrievalInputs,
    filters: Filters | None = None,
    offset: int = 0,
    limit: int | None = None,
    use_cache: bool = True,
    top_k: int | None = None,
    refresh: bool = False,
    weights: Mapping[str, float] | None = None,
) -> RetrievalResult:
    """Run the retriever `name` (a name, or else an id) on `inputs`; return the page
    [offset, offset + limit) of the fused list (limit: GALLERY_PAGE_SIZE unless given). `top_k`,
    when given, replaces every search's top_k. `weights` replace searches' weights by name
    ("text", "reference:17", or "reference" for every reference; see plan.py): a finite number
    from 0 to search.config.MAX_WEIGHT, else BadWeight. `refresh` reads nothing from the cache
    but still stores what it runs (for a caller that reads the fused list back next). Raises
    RetrievalError (search/errors.py), whose status the API answers with."""
    started = time.perf_counter()
    limit = settings.GALLERY_PAGE_SIZE if limit is None else limit
    if offset < 0:
        raise BadPagination("offset must be 0 or more.")
    if not 1 <= limit <= max_page_size():
        raise BadPagination(f"limit must be between 1 and {max_page_size()}.")
    if top_k is not None and not 1 <= top_k <= MAX_TOP_K:
        raise TopKOutOfRange(f"top_k must be between 1 and {MAX_TOP_K}; got {top_k}.")
    check_text(field="The retriever name", value=name, max_length=MAX_NAME_CHARS)
    # Every text input, used by this retriever or not (their lengths are checked once normalised).
    check_text(field="The text", value=inputs.text)
    check_text(field="The keywords", value=inputs.keywords)
    for search_name in weights or {}:
        check_text(field="A weight's search name", value=search_name, max_length=MAX_NAME_CHARS)
    filters = filters or Filters()
    filters.validate()

    stored = stored_retriever(name=name)
    config = retriever_config(name=name, stored=stored)
    plan = plan_searches(config=config, inputs=inputs, top_k=top_k, weights=weights)
    assert stored.config_text is not None  # retriever_config refused a missing one
    keys = cache.result_keys(
        config_text=stored.config_text,
        plan=plan,
        filters=filters,
        version=stored.version,
        offset=offset,
        limit=limit,
    )
    notices: list[str] = []
    page = cache.get_payload(keys.page, CachedPage) if use_cache and not refresh else None
    cache_hit = page is not None
    if page is None:
        fused = cache.get_payload(keys.fused, FusedList) if use_cache and not refresh else None
        cache_hit = fused is not None
        if fused is None:
            fused = run_plan(
                config=config,
                plan=plan,
                filters=filters,
                notices=notices,
                version=stored.version if use_cache else None,
                read_lists=not refresh,
            )
            if use_cache and not notices:  # a degraded result is not kept
                cache.set_payload(keys.fused, fused)
        page = CachedPage(
            results=hydrate(fused.items[offset : offset + limit]),
            total=len(fused.items),
            searches=fused.searches,
            duration_ms=fused.duration_ms,
        )
        if use_cache and not notices:
            cache.set_payload(keys.page, page)

    stage_ms = (time.perf_counter() - started) * 1000
    stage = StageStats(
        stage_name=STAGE_NAME,
        num_features=len(config.parameters.searches),
        searches_run=len(page.searches),
        fusion_strategy=config.parameters.fusion.strategy,
        total_results=page.total,
        duration_ms=round(stage_ms if cache_hit else page.duration_ms, 2),
        cache_hit=cache_hit,
        searches=page.searches,
    )
    return RetrievalResult(
        results=page.results,
        total=page.total,
        offset=offset,
        limit=limit,
        stages=[stage],
        cache_hit=cache_hit,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        notices=notices,
    )
