"""The result cache and the query-text embedding cache (Django's cache framework).

Result keys hash the normalised inputs, the retriever's configuration and the collection
version. The version is one row that statement-level triggers bump inside every transaction
that writes artworks, embeddings or features (migration search/0002_retrievers_fts_cache), so
bulk inserts by a worker in another process, `QuerySet.update()` and raw SQL change it too
(signals would miss those, and a per-process counter would miss other processes). The bump
commits with the data it describes, so a stale list is never served (see `collection_version`).
Entries also expire after SEARCH_CACHE_TTL seconds. Query-text vectors are cached under the
feature's name and the normalised text; they do not depend on the collection.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection

from search.config import cache_ttl, search_setting

RESULT_PREFIX = "search:result:"
TEXT_PREFIX = "search:text-vector:"


def normalise_text(text: str) -> str:
    """Trimmed, whitespace collapsed, case-folded: "  Blue   SKY " and "blue sky" are one query."""
    return " ".join(text.split()).casefold()


def collection_version() -> int:
    """The current collection version.

    Read it BEFORE running the searches and key the result with it: a write committed after
    the read gives later readers a newer version (so they miss), and a write not yet committed
    when the searches ran is invisible to them and still bumps the version on commit. Either
    way no reader is ever served a list computed before a change it can see.
    """
    with connection.cursor() as cur:
        cur.execute("SELECT version FROM search_collection_version WHERE id = 1")
        row = cur.fetchone()
    return int(row[0]) if row else 0


def result_key(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return RESULT_PREFIX + hashlib.sha256(blob.encode()).hexdigest()


def get_result(key: str) -> dict[str, Any] | None:
    value = cache.get(key)
    return value if isinstance(value, dict) else None


def set_result(key: str, value: dict[str, Any]) -> None:
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
    timeout = search_setting("SEARCH_TEXT_VECTOR_CACHE_TTL", 86400)
    cache.set(text_vector_key(feature_name=feature_name, text=text), data, timeout=timeout)
