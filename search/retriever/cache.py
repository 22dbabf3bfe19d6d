"""The result cache and the query-text vector cache (Django's cache framework).

Result keys hash the normalised inputs, the retriever's configuration and the collection
version. The version is one row that statement-level triggers bump inside every transaction
that writes artworks, embeddings or features (migration search/0002_retrievers_fts_cache), so
bulk inserts by a worker in another process, `QuerySet.update()` and raw SQL change it too
(signals would miss those, and a per-process counter would miss other processes). The bump
commits with the data it describes; read before searching (see plan.stored_retriever), it means
a stale list is never served. Entries also expire after SEARCH_CACHE_TTL seconds.

Two payloads are kept per query: the fused list whole (`FusedList`), so paging through it never
recomputes it, and each page served (`CachedPage`) with its artworks' fields, so a repeated
page costs one query. The fused list's key holds each search's weight. Each search's own ranked
list (`CachedList`) is kept too, keyed by its input, filters and the collection version but not
its weight: a query that only re-weights its searches fuses the cached lists again, with no
encoding and no kNN. Query-text vectors are cached under the feature's name and the normalised
text, and region crops' vectors under the feature, the artwork (or upload) and its image's
SHA-256 and the box; they do not depend on the collection.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
from django.conf import settings
from django.core.cache import cache

from search.config import cache_ttl
from search.filters import Filters
from search.fusion import Fused
from search.retriever.inputs import normalise_text
from search.retriever.plan import PlannedSearch
from search.retriever.results import ResultItem, SearchStats

RESULT_PREFIX = "search:result:"
LIST_PREFIX = "search:list:"
TEXT_PREFIX = "search:text-vector:"
REGION_PREFIX = "search:region-vector:"
CACHE_FORMAT = 4  # bump when a cached payload's shape changes

Payload = TypeVar("Payload", "FusedList", "CachedPage")


@dataclass(frozen=True)
class CachedList:
    """One search's ranked artwork ids and the figures of the run that made them."""

    ids: list[int]
    feature: str
    encode_ms: float
    knn_ms: float


@dataclass(frozen=True)
class FusedList:
    """A run's outcome: the fused ranking (at most final_top_k long) and each search's figures."""

    items: list[Fused[int]]
    searches: list[SearchStats]
    duration_ms: float


@dataclass(frozen=True)
class CachedPage:
    """One page of a fused list, hydrated."""

    results: list[ResultItem]
    total: int
    searches: list[SearchStats]
    duration_ms: float


@dataclass(frozen=True)
class ResultKeys:
    fused: str
    page: str


def result_keys(
    *,
    config_text: str,
    plan: list[PlannedSearch],
    filters: Filters,
    version: int,
    offset: int,
    limit: int,
) -> ResultKeys:
    identity = {
        "format": CACHE_FORMAT,
        "config": config_text,
        "plan": [planned.key() for planned in plan],
        "filters": asdict(filters.normalised()),
        "collection": version,
    }
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    fused = RESULT_PREFIX + hashlib.sha256(blob.encode()).hexdigest()
    return ResultKeys(fused=fused, page=f"{fused}:page:{offset}:{limit}")


def list_key(*, planned: PlannedSearch, filters: Filters, version: int) -> str:
    identity = {
        "format": CACHE_FORMAT,
        "search": planned.list_key(),
        "filters": asdict(filters.normalised()),
        "collection": version,
    }
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return LIST_PREFIX + hashlib.sha256(blob.encode()).hexdigest()


def get_lists(keys: list[str]) -> dict[str, CachedList]:
    """The cached lists among `keys`, in one round trip."""
    if not keys:
        return {}
    found = cache.get_many(keys)
    return {key: value for key, value in found.items() if isinstance(value, CachedList)}


def set_lists(lists: dict[str, CachedList]) -> None:
    if lists:
        cache.set_many(lists, timeout=cache_ttl())


def get_payload(key: str, kind: type[Payload]) -> Payload | None:
    value = cache.get(key)
    return value if isinstance(value, kind) else None


def set_payload(key: str, value: FusedList | CachedPage) -> None:
    cache.set(key, value, timeout=cache_ttl())


def text_vector_key(*, feature_name: str, text: str) -> str:
    digest = hashlib.sha256(f"{feature_name}\0{normalise_text(text)}".encode()).hexdigest()
    return TEXT_PREFIX + digest


def get_text_vector(*, feature_name: str, text: str) -> np.ndarray | None:
    value = cache.get(text_vector_key(feature_name=feature_name, text=text))
    if not isinstance(value, bytes):
        return None
    return np.frombuffer(value, dtype=np.float32).copy()


def set_text_vector(*, feature_name: str, text: str, vector: np.ndarray) -> None:
    # Query vectors depend only on the model, not the collection: a day is a safe default.
    data = np.asarray(vector, dtype=np.float32).tobytes()
    timeout = int(settings.SEARCH_TEXT_VECTOR_CACHE_TTL)
    cache.set(text_vector_key(feature_name=feature_name, text=text), data, timeout=timeout)


def region_vector_key(*, feature_name: str, source: str, box: tuple[float, ...]) -> str:
    """`source`: "artwork:<id>:<image sha256>" or "upload:<sha256>"; `box` rounded already."""
    blob = json.dumps([feature_name, source, list(box)], separators=(",", ":"))
    return REGION_PREFIX + hashlib.sha256(blob.encode()).hexdigest()


def get_region_vector(key: str) -> np.ndarray | None:
    value = cache.get(key)
    if not isinstance(value, bytes):
        return None
    return np.frombuffer(value, dtype=np.float32).copy()


def set_region_vector(key: str, vector: np.ndarray) -> None:
    # Keyed by the image's own digest: a changed picture is another key, so no collection
    # version is needed and a day is as safe as for text vectors.
    data = np.asarray(vector, dtype=np.float32).tobytes()
    cache.set(key, data, timeout=int(settings.SEARCH_TEXT_VECTOR_CACHE_TTL))
