"""Recall of the kNN searches against exact search, and the HNSW levers (ef_search, scan mode,
halfvec).

Exact = brute force over the collection's float32 matrix in memory (regenerated from the seed,
so it is exactly what was loaded); artwork id = row + 1. Approximate = the retriever's own kNN
(search.knn.knn: its SQL, ef_search floor and iterative scan), or the same SQL with the lever
under test changed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from django.db import connection, transaction

from bench.stats import percentiles
from search.filters import Filters, filter_sql


def exact_ids(
    matrix: np.ndarray,
    query: np.ndarray,
    k: int,
    *,
    exclude_id: int | None = None,
    mask: np.ndarray | None = None,
) -> list[int]:
    scores = matrix @ query.astype(np.float32)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    if exclude_id is not None:
        scores[exclude_id - 1] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [int(i) + 1 for i in top]


def recall(approx: list[int], exact: list[int], k: int) -> float:
    truth = exact[:k]
    if not truth:
        return 1.0
    return len(set(approx[:k]) & set(truth)) / len(truth)


def filter_mask(meta: dict[str, np.ndarray], filters: Filters) -> np.ndarray:
    """The rows `filters` admits (the subset search/filters.py supports that the bench uses)."""
    f = filters.normalised()
    mask = np.ones(len(meta["title"]), dtype=bool)
    if f.classification:
        mask &= np.array([c.casefold() == f.classification for c in meta["classification"]])
    if f.source:
        mask &= meta["source"] == f.source
    if f.year_from is not None:
        mask &= meta["end_year"] >= f.year_from
    if f.year_to is not None:
        mask &= meta["begin_year"] <= f.year_to
    if f.artist:
        mask &= np.array([f.artist in a.casefold() for a in meta["artist"]])
    return mask


def sql_knn(
    *,
    feature_id: int,
    vector: np.ndarray,
    top_k: int,
    ef_search: int,
    iterative: str = "relaxed_order",
    filters: Filters | None = None,
    exclude_id: int | None = None,
    halfvec: bool = True,
) -> tuple[list[int], float]:
    """The retriever's kNN SQL (search/knn.py's shape) with the levers exposed; (ids, ms)."""
    from pgvector import Vector

    where, filter_params = filter_sql(filters)
    exclusion = " AND e.artwork_id <> %s" if exclude_id is not None else ""
    # The column is halfvec(768); halfvec=False compares through a float32 cast (the index
    # bench.query's float32 lever builds).
    column = "e.vector" if halfvec else "e.vector::vector(768)"
    cast = "::halfvec" if halfvec else "::vector"
    sql = f"""
        WITH nearest AS MATERIALIZED (
            SELECT e.artwork_id, {column} <=> %s{cast} AS distance
            FROM search_embedding e JOIN gallery_artwork a ON a.id = e.artwork_id
            WHERE e.feature_id = %s{exclusion}{where}
            ORDER BY {column} <=> %s{cast} LIMIT %s
        )
        SELECT artwork_id FROM nearest ORDER BY distance, artwork_id
    """
    literal = Vector(np.asarray(vector, dtype=np.float32)).to_text()  # cast to either kind
    params: list[Any] = [literal, feature_id]
    if exclude_id is not None:
        params.append(exclude_id)
    params += [*filter_params, literal, top_k]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.iterative_scan', %s, true)",
            [str(ef_search), iterative],
        )
        started = time.perf_counter()
        cur.execute(sql, params)
        ids = [int(r[0]) for r in cur.fetchall()]
        ms = (time.perf_counter() - started) * 1000
    return ids, ms


def retriever_knn(
    *,
    feature_id: int,
    vector: np.ndarray,
    top_k: int,
    filters: Filters | None = None,
    exclude_id: int | None = None,
    input_mode: str = "content",
) -> tuple[list[int], float]:
    """The retriever's own kNN function (its ef_search floor for `input_mode`, scan mode and
    exact fallback)."""
    from search.config import ef_search_for
    from search.knn import knn

    started = time.perf_counter()
    rows = knn(
        feature_id=feature_id,
        vector=vector,
        top_k=top_k,
        filters=filters,
        exclude_id=exclude_id,
        ef_search=ef_search_for(input_mode),
    )
    return [r[0] for r in rows], (time.perf_counter() - started) * 1000


def measure_recall(
    *,
    matrix: np.ndarray,
    queries: list[dict[str, Any]],
    feature_id: int,
    top_k: int = 250,
    input_mode: str = "content",
    **sql: Any,
) -> dict[str, Any]:
    """Recall@10 / @250 and kNN latency over `queries` (dicts: vector, filters, exclude_id,
    mask). With no `sql` levers: the retriever's knn() as it runs for `input_mode` (text,
    content, document: each has its own ef_search floor); otherwise sql_knn(**sql)."""
    r10, r250, ms, short = [], [], [], 0
    for q in queries:
        kwargs = {
            "feature_id": feature_id,
            "vector": q["vector"],
            "top_k": top_k,
            "filters": q.get("filters"),
            "exclude_id": q.get("exclude_id"),
        }
        ids, took = (
            sql_knn(**kwargs, **sql) if sql else retriever_knn(**kwargs, input_mode=input_mode)
        )
        truth = exact_ids(
            matrix, q["vector"], top_k, exclude_id=q.get("exclude_id"), mask=q.get("mask")
        )
        short += len(ids) < len(truth)
        r10.append(recall(ids, truth, 10))
        r250.append(recall(ids, truth, top_k))
        ms.append(took)
    return {
        "queries": len(queries),
        "recall@10": round(float(np.mean(r10)), 4),
        f"recall@{top_k}": round(float(np.mean(r250)), 4),
        "min_recall@250": round(float(np.min(r250)), 4),
        "short_results": short,
        "knn_ms": percentiles(ms),
    }
