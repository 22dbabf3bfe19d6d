"""k-nearest-neighbour search over the stored vectors of one feature (pgvector, HNSW, cosine).

The index is approximate, and two settings decide what it returns:
- `hnsw.ef_search` (the candidate list) is at least top_k: pgvector returns at most ef_search
  rows otherwise. The floor depends on the query's kind (search/config.py `ef_search_for`):
  SEARCH_HNSW_EF_SEARCH (400) for images and stored vectors, SEARCH_HNSW_EF_SEARCH_TEXT (800)
  for text, whose vectors sit apart from the image vectors (the modality gap) where the graph
  is harder to walk.
- `hnsw.iterative_scan = relaxed_order` (pgvector 0.8): when filters (metadata, another
  feature's vectors, the excluded artwork) reject candidates, the scan goes on until top_k rows
  pass. Relaxed order may return rows slightly out of order, so a MATERIALIZED CTE re-sorts them
  by exact distance (then id, for ties).
Vectors are stored as halfvec(768) (migration search/0004); the query vector is sent as
float32 text and cast to halfvec in SQL.
The plan is pinned (see `_configure`): the vectors are TOASTed, so the planner thinks a full
scan and sort is cheap and prefers it already at 3,000 rows; measured here at 120,000 vectors it
takes 560-800 ms against 27-34 ms through the index.
If the index still returns fewer than top_k rows (a filter rarer than the scan's
`hnsw.max_scan_tuples` budget reaches, or a collection smaller than top_k), the search is run
again as an exact scan, so a filtered search never silently loses rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from django.db import connection, transaction

from search.config import MAX_TOP_K, ef_search_floor
from search.filters import Filters, filter_sql


def vector_literal(vector: np.ndarray | Sequence[float]) -> str:
    """pgvector's text form; 9 significant digits round-trip float32 exactly."""
    values = np.asarray(vector, dtype=np.float32).ravel()
    return "[" + ",".join(f"{x:.9g}" for x in values.tolist()) + "]"


def knn_sql(*, filters: Filters | None, exclude: bool) -> tuple[str, list[Any]]:
    """The query, with params for (vector, feature_id, [excluded id], *filters, top_k).
    Artworks are joined only when there are filters to test."""
    where, filter_params = filter_sql(filters)
    exclusion = " AND e.artwork_id <> %s" if exclude else ""
    join = " JOIN gallery_artwork a ON a.id = e.artwork_id" if where else ""
    sql = f"""
        WITH nearest AS MATERIALIZED (
            SELECT e.artwork_id, e.vector <=> %s::halfvec AS distance
            FROM search_embedding e{join}
            WHERE e.feature_id = %s{exclusion}{where}
            ORDER BY e.vector <=> %s::halfvec
            LIMIT %s
        )
        SELECT artwork_id, distance FROM nearest ORDER BY distance + 0, artwork_id
    """
    # "+ 0": PostgreSQL 17+ carries the CTE's ORDER BY out as a presorted key and would skip
    # the re-sort that relaxed_order needs (pgvector's README does the same).
    return sql, filter_params


def knn(
    *,
    feature_id: int,
    vector: np.ndarray,
    top_k: int,
    filters: Filters | None = None,
    exclude_id: int | None = None,
    ef_search: int | None = None,
) -> list[tuple[int, float]]:
    """[(artwork id, cosine distance)], nearest first, at most top_k rows. `ef_search` is the
    candidate list's floor (default SEARCH_HNSW_EF_SEARCH); it is raised to top_k if lower."""
    sql, params = _query(feature_id, vector, top_k, filters, exclude_id)
    with transaction.atomic(), connection.cursor() as cur:
        rows = _fetch(cur, sql, params, top_k=top_k, index=True, ef_search=ef_search)
        if len(rows) < top_k:  # the exact scan; the settings end with the transaction
            rows = _fetch(cur, sql, params, top_k=top_k, index=False, ef_search=ef_search)
    return rows


def _fetch(
    cur: Any, sql: str, params: list[Any], *, top_k: int, index: bool, ef_search: int | None
) -> list[tuple[int, float]]:
    _configure(cur, top_k=top_k, index=index, ef_search=ef_search)
    cur.execute(sql, params)
    return [(int(artwork_id), float(distance)) for artwork_id, distance in cur.fetchall()]


def explain_knn(
    *,
    feature_id: int,
    vector: np.ndarray,
    top_k: int,
    filters: Filters | None = None,
    exclude_id: int | None = None,
    ef_search: int | None = None,
) -> str:
    """The plan of knn()'s first (index) query, under the same settings (tests, diagnosis)."""
    sql, params = _query(feature_id, vector, top_k, filters, exclude_id)
    with transaction.atomic(), connection.cursor() as cur:
        _configure(cur, top_k=top_k, index=True, ef_search=ef_search)
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


def _query(
    feature_id: int,
    vector: np.ndarray,
    top_k: int,
    filters: Filters | None,
    exclude_id: int | None,
) -> tuple[str, list[Any]]:
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValueError(f"top_k must be in 1..{MAX_TOP_K}")
    sql, filter_params = knn_sql(filters=filters, exclude=exclude_id is not None)
    literal = vector_literal(vector)
    params: list[Any] = [literal, feature_id]
    if exclude_id is not None:
        params.append(exclude_id)
    return sql, [*params, *filter_params, literal, top_k]


def _configure(cur: Any, *, top_k: int, index: bool, ef_search: int | None = None) -> None:
    """SET LOCAL (set_config(..., true)): the settings end with the transaction.

    index=True pins the plan we want: walk the HNSW index in distance order (sorting is off, so
    nothing else can give the order) and look each candidate's artwork up by primary key to test
    the filters (hash/merge joins and materialisation are off: with a misestimated filter the
    planner would otherwise compare every candidate against every matching artwork).
    index=False is the exact scan: no index scans, sorting allowed.
    """
    floor = ef_search_floor() if ef_search is None else ef_search
    ef_search = min(MAX_TOP_K, max(top_k, floor))
    on_for_exact = "off" if index else "on"
    cur.execute(
        "SELECT set_config('hnsw.ef_search', %s, true),"
        " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
        " set_config('enable_indexscan', %s, true),"
        " set_config('enable_sort', %s, true),"
        " set_config('enable_hashjoin', %s, true),"
        " set_config('enable_mergejoin', %s, true),"
        " set_config('enable_material', %s, true)",
        [str(ef_search), "on" if index else "off", *[on_for_exact] * 4],
    )


def stored_vector(*, artwork_id: int, feature_id: int) -> np.ndarray | None:
    """The artwork's vector under the feature, or None when it has none."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT vector::text FROM search_embedding WHERE artwork_id = %s AND feature_id = %s",
            [artwork_id, feature_id],
        )
        row = cur.fetchone()
    if row is None:
        return None
    # halfvec's text holds float16 values; as float32 they are exactly what the index compares.
    return np.array(row[0].strip("[]").split(","), dtype=np.float32)
