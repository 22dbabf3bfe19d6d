"""Running a named retriever: inputs -> one search per input -> RRF -> a page of results.

    execute_retriever(name="default", inputs=RetrievalInputs(text="a storm at sea"))

Each search of the retriever's feature_search stage (search/config.py) maps its input through a
template; a search whose input is empty is skipped (on_empty = "skip"), and when every search is
skipped the caller gets `NothingToSearch` (HTTP 400). Then:
  text      -> the text tower          -> kNN over the feature's stored vectors
  content   -> the image tower         -> kNN
  document  -> that artwork's stored vector -> kNN, the artwork itself left out
  keywords  -> PostgreSQL full-text search of the metadata
The filters apply inside every search, before its top_k. The ranked lists are fused by RRF
(search/fusion.py); one list alone keeps its own order. The fused list (at most final_top_k
long) is cached whole, so paging through it never recomputes it, and each page served is
cached beside it with its artworks' fields, so a repeated page costs one query: the
collection version (read together with the retriever's configuration, whose parsed form is
kept per process). Titles and thumbnails cannot go stale: any write to artworks bumps the
version, which is part of every key.

Searches that need only the database (document, keywords) run on a helper thread, with its own
connection, while this thread encodes the text or image; see `_overlap_allowed`.

When the query encoder cannot be loaded, a text search falls back to a keyword search of the
same text and the result carries a notice; an image search is skipped with a notice, and a query
left with nothing to run is refused with EncoderUnavailable (HTTP 503). Such results are not
cached: the model may be back for the next query.

A search's feature "active" means the feature active at query time (search/features.py), so
switching models needs no retriever edit; a named feature is used as is.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, connections

from gallery.images import ImageError, load_image, sha256_bytes
from gallery.models import Artwork
from search import cache
from search.config import (
    ACTIVE_FEATURE,
    MAX_TOP_K,
    ConfigError,
    RetrieverConfig,
    Search,
    ef_search_for,
    max_page_size,
    max_text_chars,
    parse_config,
    template_name,
)
from search.errors import (
    BadImage,
    BadPagination,
    BadRetrieverConfig,
    EncoderUnavailable,
    FeatureUnavailable,
    ImageTooLarge,
    MissingInput,
    NotEmbedded,
    NothingToSearch,
    RetrievalError,
    TextTooLong,
    TopKOutOfRange,
    UnknownArtwork,
    UnknownRetriever,
)
from search.filters import BadFilter, Filters
from search.fusion import rrf
from search.keywords import keyword_search
from search.knn import knn, stored_vector
from search.models import Feature, Retriever

__all__ = [
    "BadFilter",
    "BadImage",
    "BadPagination",
    "EncoderUnavailable",
    "FeatureUnavailable",
    "Filters",
    "ImageTooLarge",
    "MissingInput",
    "NotEmbedded",
    "NothingToSearch",
    "ResultItem",
    "RetrievalError",
    "RetrievalInputs",
    "RetrievalResult",
    "SearchStats",
    "StageStats",
    "TextTooLong",
    "TopKOutOfRange",
    "UnknownArtwork",
    "UnknownRetriever",
    "decode_base64_image",
    "execute_retriever",
]

logger = logging.getLogger(__name__)

STAGE_NAME = "feature_search"
CACHE_FORMAT = 2  # bump when the cached payload's shape changes
# Searches that need no encoder: they can run on a helper thread while the encoder works.
DATABASE_ONLY = frozenset({"document", "keywords"})
IMAGE_MODEL_UNAVAILABLE_TEXT = "The image model is unavailable; showing keyword matches."
IMAGE_MODEL_UNAVAILABLE_IMAGE = (
    "The image model is unavailable, so the uploaded image could not be searched."
)


@dataclass(frozen=True)
class RetrievalInputs:
    text: str = ""
    image: bytes | None = None
    document_id: int | None = None
    keywords: str = ""


@dataclass(frozen=True)
class SearchStats:
    name: str
    input_mode: str
    feature: str
    top_k: int
    encode_ms: float
    knn_ms: float
    returned: int
    vector_cached: bool = False  # the text's vector came from the cache
    fallback: str = ""  # "keywords": the encoder was unavailable, the text was searched by keywords


@dataclass(frozen=True)
class StageStats:
    stage_name: str
    num_features: int  # searches run
    fusion_strategy: str
    total_results: int
    duration_ms: float
    cache_hit: bool
    searches: list[SearchStats] = field(default_factory=list)


@dataclass(frozen=True)
class ResultItem:
    artwork_id: int
    title: str
    artist: str
    display_date: str
    thumbnail_url: str
    width: int | None
    height: int | None
    score: float
    ranks: dict[str, int]  # search name -> rank (from 1) in that search's list


@dataclass(frozen=True)
class RetrievalResult:
    results: list[ResultItem]
    total: int
    offset: int
    limit: int
    stages: list[StageStats]
    cache_hit: bool
    duration_ms: float
    # Things the person should know about this result (e.g. a search that fell back or was skipped).
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Planned:
    """One search with its input resolved."""

    search: Search
    mode: str
    text: str = ""  # text / keywords, normalised
    image: bytes | None = None
    document_id: int | None = None
    top_k: int = 0

    def key(self) -> dict[str, Any]:
        return {
            "name": self.search.label,
            "mode": self.mode,
            "feature": self.search.feature,
            "text": self.text,
            "image": sha256_bytes(self.image) if self.image is not None else None,
            "document_id": self.document_id,
            "top_k": self.top_k,
            "weight": self.search.weight,
        }


def execute_retriever(
    *,
    name: str = "default",
    inputs: RetrievalInputs,
    filters: Filters | None = None,
    offset: int = 0,
    limit: int = 24,
    use_cache: bool = True,
    top_k: int | None = None,
) -> RetrievalResult:
    """Run the retriever `name` on `inputs`; return the page [offset, offset + limit) of the
    fused list. `top_k`, when given, replaces every search's top_k. Raises RetrievalError."""
    started = time.perf_counter()
    if offset < 0:
        raise BadPagination("offset must be 0 or more.")
    if not 1 <= limit <= max_page_size():
        raise BadPagination(f"limit must be between 1 and {max_page_size()}.")
    if top_k is not None and not 1 <= top_k <= MAX_TOP_K:
        raise TopKOutOfRange(f"top_k must be between 1 and {MAX_TOP_K}; got {top_k}.")
    filters = filters or Filters()
    filters.validate()

    # One round trip: the collection version (read BEFORE searching: see search/cache.py) and
    # the retriever's configuration.
    version, config_text = _version_and_config(name)
    if config_text is None:
        raise UnknownRetriever(f"There is no retriever named {name!r}.")
    config = _parsed_config(name, config_text)

    plan = _plan(config, inputs, top_k)
    key = cache.result_key(
        {
            "format": CACHE_FORMAT,
            "config": config_text,
            "plan": [planned.key() for planned in plan],
            "filters": asdict(filters.normalised()),
            "collection": version,
        }
    )
    page_key = f"{key}:page:{offset}:{limit}"
    page_entry = cache.get_result(page_key) if use_cache else None
    cache_hit = page_entry is not None
    notices: list[str] = []
    if page_entry is None:
        cached = cache.get_result(key) if use_cache else None
        cache_hit = cached is not None
        if cached is None:
            cached = _run(config, plan, filters, notices)
            if use_cache and not notices:  # a degraded result is not kept
                cache.set_result(key, cached)
        fused = cached["items"]
        page_entry = {
            "results": [asdict(item) for item in _hydrate(fused[offset : offset + limit])],
            "total": len(fused),
            "searches": cached["searches"],
            "duration_ms": cached["duration_ms"],
        }
        if use_cache and not notices:
            cache.set_result(page_key, page_entry)

    stage_ms = (time.perf_counter() - started) * 1000
    stage = StageStats(
        stage_name=STAGE_NAME,
        num_features=len(page_entry["searches"]),
        fusion_strategy=config.parameters.fusion.strategy,
        total_results=page_entry["total"],
        duration_ms=round(stage_ms if cache_hit else page_entry["duration_ms"], 2),
        cache_hit=cache_hit,
        searches=[SearchStats(**stats) for stats in page_entry["searches"]],
    )
    return RetrievalResult(
        results=[ResultItem(**item) for item in page_entry["results"]],
        total=page_entry["total"],
        offset=offset,
        limit=limit,
        stages=[stage],
        cache_hit=cache_hit,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        notices=notices,
    )


def _version_and_config(name: str) -> tuple[int, str | None]:
    """(collection version, the retriever's configuration as JSON text or None) in one query."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT version FROM search_collection_version WHERE id = 1),"
            f" (SELECT config FROM {Retriever._meta.db_table} WHERE name = %s)",
            [name],
        )
        version, config = cur.fetchone()
    if config is not None and not isinstance(config, str):  # a driver that decodes jsonb
        config = json.dumps(config, sort_keys=True)
    return int(version or 0), config


# Parsed configurations by their JSON text: validating one costs more than the whole cache hit
# it precedes. Keyed on the text itself, so an edited retriever is parsed anew at once.
_parsed: dict[str, RetrieverConfig] = {}
_parsed_lock = threading.Lock()


def _parsed_config(name: str, config_text: str) -> RetrieverConfig:
    config = _parsed.get(config_text)
    if config is not None:
        return config
    try:
        config = parse_config(json.loads(config_text))
    except ConfigError as exc:
        raise BadRetrieverConfig(f"The retriever {name!r} is misconfigured: {exc}") from exc
    with _parsed_lock:
        if len(_parsed) >= 64:  # a handful of retrievers; never grow without bound
            _parsed.clear()
        _parsed[config_text] = config
    return config


def decode_base64_image(value: str) -> bytes:
    """Bytes of a base64 image (a bare string or a data: URL); BadImage/ImageTooLarge if not."""
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    limit = settings.GALLERY_MAX_UPLOAD_BYTES
    if len(value) > (limit // 3 + 1) * 4 + 4:
        raise ImageTooLarge(f"The image is larger than the {limit / 1e6:.0f} MB limit.")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage("The image is not valid base64.") from exc


# Planning --------------------------------------------------------------------------------------
def _plan(config: RetrieverConfig, inputs: RetrievalInputs, top_k: int | None) -> list[_Planned]:
    plan: list[_Planned] = []
    for search in config.parameters.searches:
        planned = _resolve(search, inputs, top_k or search.top_k)
        if planned is None:
            if search.on_empty == "error":
                raise MissingInput(f"The search {search.label!r} needs an input.")
            continue
        plan.append(planned)
    if not plan:
        raise NothingToSearch(
            "Nothing to search: give a text, an image or an artwork to find similar ones"
            + (", or keywords" if _uses_keywords(config) else "")
            + "."
        )
    return plan


def _uses_keywords(config: RetrieverConfig) -> bool:
    return any(s.query.input_mode == "keywords" for s in config.parameters.searches)


def _resolve(search: Search, inputs: RetrievalInputs, top_k: int) -> _Planned | None:
    query = search.query
    mode = query.input_mode
    if mode == "document":
        ref = query.document_ref
        if isinstance(ref, str) and template_name(ref) == "document_id":
            document_id = inputs.document_id
        else:
            document_id = int(str(ref).strip())
        if document_id is None:
            return None
        return _Planned(search=search, mode=mode, document_id=int(document_id), top_k=top_k)
    assert query.value is not None  # the schema guarantees it for the other modes
    source = template_name(query.value)
    if mode == "content":
        if not inputs.image:
            return None
        if len(inputs.image) > settings.GALLERY_MAX_UPLOAD_BYTES:
            raise ImageTooLarge(
                f"The image is {len(inputs.image) / 1e6:.1f} MB; the limit is "
                f"{settings.GALLERY_MAX_UPLOAD_BYTES / 1e6:.0f} MB."
            )
        return _Planned(search=search, mode=mode, image=inputs.image, top_k=top_k)
    raw = {"text": inputs.text, "keywords": inputs.keywords}.get(source or "", query.value)
    text = cache.normalise_text(raw or "")
    if not text:
        return None
    if len(text) > max_text_chars():
        raise TextTooLong(
            f"The {'text' if mode == 'text' else 'keywords'} is {len(text)} characters long; "
            f"the limit is {max_text_chars()}."
        )
    return _Planned(search=search, mode=mode, text=text, top_k=top_k)


# Running ---------------------------------------------------------------------------------------
def _run(
    config: RetrieverConfig, plan: list[_Planned], filters: Filters, notices: list[str]
) -> dict[str, Any]:
    """Run every planned search and fuse; the cacheable payload (ids, scores, ranks, stats).
    Appends to `notices` when a search had to fall back or be skipped."""
    started = time.perf_counter()
    outcomes = _run_searches(plan, filters, notices)
    rankings: dict[str, list[int]] = {}
    stats: list[dict[str, Any]] = []
    for planned in plan:  # plan order, whichever thread ran the search
        outcome = outcomes.get(planned.search.label)
        if outcome is None:  # skipped (its encoder is unavailable)
            continue
        ids, stat = outcome
        rankings[planned.search.label] = ids
        stats.append(asdict(stat))
    if not rankings:
        raise EncoderUnavailable(
            "The image model is unavailable, so this search cannot run right now. "
            "Try again later, or search by text or by an artwork from the collection."
        )
    weights = {planned.search.label: planned.search.weight for planned in plan}
    fused = rrf(rankings, k=config.parameters.fusion.k, weights=weights)
    fused = fused[: config.parameters.final_top_k]
    return {
        "items": [(f.item, f.score, f.ranks) for f in fused],
        "searches": stats,
        "duration_ms": (time.perf_counter() - started) * 1000,
    }


Outcome = tuple[list[int], SearchStats]


def _run_searches(plan: list[_Planned], filters: Filters, notices: list[str]) -> dict[str, Outcome]:
    """Each search's outcome by its label; a search skipped for want of its encoder is absent.

    The database-only searches (a document's kNN, keywords) run on a helper thread while this
    one encodes: e.g. text + document costs max(encode + kNN, document kNN) instead of the sum.
    """
    background = [p for p in plan if p.mode in DATABASE_ONLY]
    foreground = [p for p in plan if p.mode not in DATABASE_ONLY]
    if not (background and foreground) or not _overlap_allowed():
        return _run_sequentially(plan, filters, notices)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-db") as pool:
        future = pool.submit(_on_own_connection, _run_sequentially, background, filters, notices)
        try:
            outcomes = _run_sequentially(foreground, filters, notices)
        finally:
            # Wait for the helper even when this thread failed, so its connection is closed
            # before the request ends; its own error (an unknown artwork) wins if both failed.
            background_outcomes = future.result()
    return {**outcomes, **background_outcomes}


def _overlap_allowed() -> bool:
    """Whether searches may run on a second connection. Not inside a transaction: the helper's
    connection would not see this one's uncommitted writes (tests run each test in one, and a
    caller's atomic block may hold data it has not committed), so there the searches run one
    after the other on this connection. SEARCH_OVERLAP_SEARCHES=0 turns overlapping off (e.g.
    behind a connection pooler with very few connections)."""
    if connection.in_atomic_block:
        return False
    return bool(getattr(settings, "SEARCH_OVERLAP_SEARCHES", True))


def _on_own_connection(function: Callable[..., Any], *args: Any) -> Any:
    """Run `function` on this (helper) thread's own database connection, then close it: Django
    opens one connection per thread, and a helper thread never sees request_finished, so its
    connection would otherwise stay open until the server closed it."""
    try:
        return function(*args)
    finally:
        connections.close_all()  # this thread's connections only


def _run_sequentially(
    plan: list[_Planned], filters: Filters, notices: list[str]
) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for planned in plan:
        try:
            outcomes[planned.search.label] = _run_one(planned, filters)
        except EncoderUnavailable as exc:
            logger.warning("Search %r degraded: %s", planned.search.label, exc.message)
            if planned.mode == "text":
                # The same text as keywords: the best that can stand in for it.
                outcomes[planned.search.label] = _keyword_outcome(
                    planned, filters, fallback="keywords"
                )
                notices.append(IMAGE_MODEL_UNAVAILABLE_TEXT)
            else:  # an image: nothing can stand in for it
                notices.append(IMAGE_MODEL_UNAVAILABLE_IMAGE)
    return outcomes


def _keyword_outcome(planned: _Planned, filters: Filters, *, fallback: str = "") -> Outcome:
    """A keyword search of the planned text (also a text search's fallback, `fallback` set)."""
    started = time.perf_counter()
    rows = keyword_search(text=planned.text, top_k=planned.top_k, filters=filters)
    ids = [artwork_id for artwork_id, _ in rows]
    return ids, SearchStats(
        name=planned.search.label,
        input_mode=planned.mode,
        feature="",
        top_k=planned.top_k,
        encode_ms=0.0,
        knn_ms=_ms(started),
        returned=len(ids),
        fallback=fallback,
    )


def _run_one(planned: _Planned, filters: Filters) -> Outcome:
    if planned.mode == "keywords":
        return _keyword_outcome(planned, filters)
    search = planned.search
    started = time.perf_counter()
    vector_cached = False
    exclude_id: int | None = None
    if planned.mode == "document":
        assert planned.document_id is not None
        try:
            feature = _feature(search.feature)
        except FeatureUnavailable:
            _require_artwork(planned.document_id)  # an unknown artwork is a 404 first
            raise
        vector = _document_vector(planned.document_id, feature)
        exclude_id = planned.document_id
    elif planned.mode == "text":
        feature, encoder = _feature_and_encoder(search.feature)
        found = cache.get_text_vector(feature_name=feature.name, text=planned.text)
        vector_cached = found is not None
        if found is None:
            found = encoder.encode_texts([planned.text])[0]
            cache.set_text_vector(feature_name=feature.name, text=planned.text, vector=found)
        vector = found
    else:  # content
        assert planned.image is not None
        try:  # before loading any model: a bad upload is refused cheaply
            loaded = load_image(planned.image)
        except ImageError as exc:
            raise BadImage(f"The image cannot be used: {exc}") from exc
        feature, encoder = _feature_and_encoder(search.feature)
        vector = encoder.encode_images([loaded.image])[0]
    encoded = time.perf_counter()
    rows = knn(
        feature_id=feature.pk,
        vector=vector,
        top_k=planned.top_k,
        filters=filters,
        exclude_id=exclude_id,
        ef_search=ef_search_for(planned.mode),
    )
    ids = [artwork_id for artwork_id, _ in rows]
    return ids, SearchStats(
        name=search.label,
        input_mode=planned.mode,
        feature=feature.name,
        top_k=planned.top_k,
        encode_ms=round((encoded - started) * 1000, 2),
        knn_ms=_ms(encoded),
        returned=len(ids),
        vector_cached=vector_cached,
    )


def _feature(ref: str | None) -> Feature:
    if ref in (None, "", ACTIVE_FEATURE):
        feature = Feature.objects.filter(is_active=True).first()
        if feature is None:
            raise FeatureUnavailable(
                "No embedding feature is active yet: the collection has not been embedded."
            )
        return feature
    named = Feature.objects.filter(name=ref).first()
    if named is None:
        raise FeatureUnavailable(f"There is no embedding feature named {ref!r}.")
    return named


def _feature_and_encoder(ref: str | None) -> tuple[Feature, Any]:
    """The feature and an encoder whose vectors live in it (the old model during a switch)."""
    from search.encoder import EncoderLoadError, get_encoder
    from search.features import FeatureMismatch, query_encoder

    try:
        if ref in (None, "", ACTIVE_FEATURE):
            encoder, feature = query_encoder()
            return feature, encoder
        feature = _feature(ref)
        encoder = get_encoder(for_queries=True)
        if encoder.feature_name != feature.name:
            encoder = get_encoder(feature.model_name, for_queries=True)
    except EncoderLoadError as exc:
        raise EncoderUnavailable(f"The query encoder cannot be loaded: {exc}") from exc
    except FeatureMismatch as exc:
        raise FeatureUnavailable(f"The query encoder is not available: {exc}") from exc
    if encoder.feature_name != feature.name:
        raise FeatureUnavailable(
            f"The query encoder computes {encoder.feature_name} vectors, not {feature.name}."
        )
    return feature, encoder


def _document_vector(artwork_id: int, feature: Feature) -> np.ndarray:
    vector = stored_vector(artwork_id=artwork_id, feature_id=feature.pk)
    if vector is not None:
        return vector
    _require_artwork(artwork_id)
    raise NotEmbedded(
        f"Artwork {artwork_id} has no embedding yet under {feature.name}; "
        "try again once it has been processed."
    )


def _require_artwork(artwork_id: int) -> None:
    if not Artwork.objects.filter(pk=artwork_id).exists():
        raise UnknownArtwork(f"There is no artwork with id {artwork_id}.")


def _hydrate(page: list[Any]) -> list[ResultItem]:
    ids = [artwork_id for artwork_id, _, _ in page]
    artworks = Artwork.objects.only(
        "id", "title", "artist", "display_date", "thumbnail", "width", "height"
    ).in_bulk(ids)
    results = []
    for artwork_id, score, ranks in page:
        artwork = artworks.get(artwork_id)
        if artwork is None:  # deleted since: the version changed, the next query will not see it
            continue
        results.append(
            ResultItem(
                artwork_id=artwork.pk,
                title=artwork.title,
                artist=artwork.artist,
                display_date=artwork.display_date,
                thumbnail_url=artwork.thumbnail.url if artwork.thumbnail else "",
                width=artwork.width,
                height=artwork.height,
                score=round(float(score), 8),
                ranks=dict(ranks),
            )
        )
    return results


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
