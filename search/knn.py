"""k-nearest-neighbour search over the stored vectors of one feature (pgvector, HNSW, cosine).

The index is approximate, and two settings decide what it returns:
- `hnsw.ef_search` (the candidate list) is at least top_k: pgvector returns at most ef_search
  rows otherwise. The floor depends on the query's kind (search/config.py `ef_search_for`):
  SEARCH_HNSW_EF_SEARCH for images and stored vectors, the higher SEARCH_HNSW_EF_SEARCH_TEXT
  for text, whose vectors sit apart from the image vectors (the modality gap) where the graph
  is harder to walk.
- `hnsw.iterative_scan = relaxed_order` (pgvector 0.8): when filters (metadata, another
  feature's vectors, the excluded artwork) reject candidates, the scan goes on until top_k rows
  pass. Relaxed order may return rows slightly out of order, so a MATERIALIZED CTE re-sorts them
  by exact distance (then id, for ties).
Vectors are stored as halfvec(768) (migration search/0004); the query vector is sent as
pgvector-python's HalfVector (search/vector_adapters.py), so it is compared as stored.
The plan is pinned (see `_configure`): the planner underestimates what reading every vector
costs, so it would choose a full scan and sort over the index on collections of a few thousand
artworks already, and that scan grows with the collection where the index walk does not
(bench/query.py measures both).

Filtered searches are planned by selectivity, as Qdrant does: the planner's estimate of how many
artworks the filters keep (an EXPLAIN of the filters alone, well under a millisecond) picks
- the exact path when that is at most SEARCH_EXACT_SCAN_MAX_ROWS and at most
  SEARCH_EXACT_SCAN_MAX_PERCENT of the collection: the artworks that pass are read first and
  each one's vector is compared (a nested loop through the embeddings' artwork index), so the
  cost grows with the rows kept, not the collection, and the answer is exact;
- the index path otherwise: the HNSW walk, whose iterative scan must pass over about
  top_k / selectivity candidates, cheap when the filter keeps many.
If the index still returns fewer than top_k rows (a filter rarer than estimated, beyond the
scan's `hnsw.max_scan_tuples` budget, or a collection smaller than top_k), the search is run
again on the exact path, so a filtered search never silently loses rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, Unpack

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from search.config import MAX_TOP_K, ef_search_floor
from search.filters import Filters, filter_sql
from search.vector_adapters import as_float32, as_halfvec, vector_cursor


def knn_sql(*, filters: Filters | None, exclude: bool) -> tuple[str, list[Any]]:
    """The query, with params for (vector, feature_id, [excluded id], *filters, top_k).
    Artworks are joined only when there are filters to test."""
    where, filter_params = filter_sql(filters)
    exclusion = " AND e.artwork_id <> %s" if exclude else ""
    join = " JOIN gallery_artwork a ON a.id = e.artwork_id" if where else ""
    sql = f"""
        WITH nearest AS MATERIALIZED (
            SELECT e.artwork_id, e.vector <=> %s AS distance
            FROM search_embedding e{join}
            WHERE e.feature_id = %s{exclusion}{where}
            ORDER BY e.vector <=> %s
            LIMIT %s
        )
        SELECT artwork_id, distance FROM nearest ORDER BY distance + 0, artwork_id
    """
    # "+ 0": PostgreSQL 17+ carries the CTE's ORDER BY out as a presorted key and would skip
    # the re-sort that relaxed_order needs (pgvector's README does the same).
    return sql, filter_params


KnnPath = Literal["exact", "index"]


@dataclass(frozen=True)
class KnnPlan:
    path: KnnPath
    estimated_rows: int | None  # rows the filters keep (the planner's estimate); None: no filters
    collection_rows: int | None = None  # the artworks table's size as the planner knows it


def exact_scan_max_rows() -> int:
    """Up to this many rows kept by the filters (estimated), a filtered search may scan them
    all instead of walking the index: the exact path's cost grows with the rows it reads."""
    return int(settings.SEARCH_EXACT_SCAN_MAX_ROWS)


def exact_scan_max_percent() -> int:
    """... and only while they are at most this share of the collection: the index's cost
    grows as the filter keeps fewer, so on a small collection a broad filter is cheaper
    through the index even when it keeps few rows. bench/query.py's planner sweep measures
    both crossovers."""
    return int(settings.SEARCH_EXACT_SCAN_MAX_PERCENT)


def choose_path(
    *,
    estimated_rows: int | None,
    collection_rows: int | None,
    max_exact_rows: int,
    max_exact_percent: int,
) -> KnnPath:
    """The exact path when filters keep at most `max_exact_rows` rows and at most
    `max_exact_percent` % of the collection; otherwise the index."""
    if estimated_rows is None or estimated_rows > max_exact_rows:
        return "index"
    if collection_rows and estimated_rows * 100 > max_exact_percent * collection_rows:
        return "index"
    return "exact"


def plan_knn(*, filters: Filters | None) -> KnnPlan:
    """How knn() will search with these filters (no filters: the index)."""
    where, params = filter_sql(filters)
    if not where:
        return KnnPlan(path="index", estimated_rows=None)
    estimated, total = estimate_rows(where=where, params=params)
    path = choose_path(
        estimated_rows=estimated,
        collection_rows=total,
        max_exact_rows=exact_scan_max_rows(),
        max_exact_percent=exact_scan_max_percent(),
    )
    return KnnPlan(path=path, estimated_rows=estimated, collection_rows=total)


def estimate_rows(*, where: str, params: list[Any]) -> tuple[int, int]:
    """The planner's estimates of the artworks that pass `where` (" AND ..." on alias `a`) and
    of all artworks: read from the table's statistics, so they cost one planning and no scan."""
    with connection.cursor() as cur:
        cur.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM gallery_artwork a WHERE TRUE{where}", params
        )
        plan = cur.fetchone()[0]
        cur.execute("EXPLAIN (FORMAT JSON) SELECT 1 FROM gallery_artwork")
        whole = cur.fetchone()[0]
    return _plan_rows(plan), _plan_rows(whole)


def _plan_rows(plan: Any) -> int:
    if isinstance(plan, str):  # a driver that does not decode json
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class KnnQuery(TypedDict):
    """What knn() and explain_knn() search for, as keyword arguments."""

    feature_id: int
    vector: np.ndarray
    top_k: int
    filters: NotRequired[Filters | None]
    exclude_id: NotRequired[int | None]
    # The candidate list's floor (default SEARCH_HNSW_EF_SEARCH); raised to top_k if lower.
    ef_search: NotRequired[int | None]


def knn(*, path: KnnPath | None = None, **query: Unpack[KnnQuery]) -> list[tuple[int, float]]:
    """[(artwork id, cosine distance)], nearest first, at most top_k rows. `path` forces a path
    (benchmarks, tests); by default plan_knn() chooses it."""
    top_k, filters = query["top_k"], query.get("filters")
    exclude_id, ef_search = query.get("exclude_id"), query.get("ef_search")
    if path is None:
        path = plan_knn(filters=filters).path
    params = _params(query["feature_id"], query["vector"], top_k, filters, exclude_id)
    with transaction.atomic(), vector_cursor() as cur:
        rows: list[tuple[int, float]] = []
        if path == "index":
            sql, _ = knn_sql(filters=filters, exclude=exclude_id is not None)
            _configure(cur, top_k=top_k, index=True, ef_search=ef_search)
            rows = _fetch(cur, sql, _index_params(params))
        if len(rows) < top_k:  # the exact path; the settings end with the transaction
            sql, _ = exact_sql(filters=filters, exclude=exclude_id is not None)
            _configure(cur, top_k=top_k, index=False, ef_search=ef_search)
            rows = _fetch(cur, sql, params)
    return rows


def exact_sql(*, filters: Filters | None, exclude: bool) -> tuple[str, list[Any]]:
    """The exact search, with params for (vector, feature_id, [excluded id], *filters, top_k).
    Ordered by (distance, id): two keys, which no index order serves, so it is always a scan
    of the rows that pass, then a top-k sort."""
    where, filter_params = filter_sql(filters)
    exclusion = " AND e.artwork_id <> %s" if exclude else ""
    join = " JOIN gallery_artwork a ON a.id = e.artwork_id" if where else ""
    sql = f"""
        SELECT e.artwork_id, e.vector <=> %s AS distance
        FROM search_embedding e{join}
        WHERE e.feature_id = %s{exclusion}{where}
        ORDER BY distance, e.artwork_id
        LIMIT %s
    """
    return sql, filter_params


def _fetch(cur: Any, sql: str, params: list[Any]) -> list[tuple[int, float]]:
    cur.execute(sql, params)
    return [(int(artwork_id), float(distance)) for artwork_id, distance in cur.fetchall()]


def explain_knn(*, path: KnnPath = "index", **query: Unpack[KnnQuery]) -> str:
    """The plan of knn()'s query on `path`, under the same settings (tests, diagnosis)."""
    top_k, filters = query["top_k"], query.get("filters")
    exclude_id, ef_search = query.get("exclude_id"), query.get("ef_search")
    params = _params(query["feature_id"], query["vector"], top_k, filters, exclude_id)
    exclude = exclude_id is not None
    with transaction.atomic(), vector_cursor() as cur:
        _configure(cur, top_k=top_k, index=path == "index", ef_search=ef_search)
        if path == "index":
            sql, _ = knn_sql(filters=filters, exclude=exclude)
            params = _index_params(params)
        else:
            sql, _ = exact_sql(filters=filters, exclude=exclude)
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


def _params(
    feature_id: int,
    vector: np.ndarray,
    top_k: int,
    filters: Filters | None,
    exclude_id: int | None,
) -> list[Any]:
    """(vector, feature_id, [excluded id], *filters, top_k): exact_sql's parameters; the
    index query takes the vector once more in front (its ORDER BY)."""
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValueError(f"top_k must be in 1..{MAX_TOP_K}")
    _, filter_params = filter_sql(filters)
    params: list[Any] = [as_halfvec(vector), feature_id]
    if exclude_id is not None:
        params.append(exclude_id)
    return [*params, *filter_params, top_k]


def _index_params(params: list[Any]) -> list[Any]:
    """knn_sql's parameters from exact_sql's: the vector again before top_k."""
    return [*params[:-1], params[0], params[-1]]


def _configure(cur: Any, *, top_k: int, index: bool, ef_search: int | None = None) -> None:
    """SET LOCAL (set_config(..., true)): the settings end with the transaction.

    index=True pins the plan we want: walk the HNSW index in distance order (sorting is off, so
    nothing else can give the order) and look each candidate's artwork up by primary key to test
    the filters (hash/merge joins and materialisation are off: with a misestimated filter the
    planner would otherwise compare every candidate against every matching artwork).
    index=False is the exact path: sorting on (the top-k sort), incremental sort off (an index
    walk in distance order then re-sorted by id would be approximate), and still a nested loop:
    the artworks that pass the filters first, then each one's vector through the unique
    (artwork, feature) index, never a scan of every vector to hash-join a few.
    JIT compilation is off: a large exact scan's estimated cost crosses jit_above_cost, and
    compiling costs more than it saves in a query that runs once.
    """
    floor = ef_search_floor() if ef_search is None else ef_search
    ef_search = min(MAX_TOP_K, max(top_k, floor))
    cur.execute(
        "SELECT set_config('hnsw.ef_search', %s, true),"
        " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
        " set_config('enable_sort', %s, true),"
        " set_config('enable_incremental_sort', 'off', true),"
        " set_config('enable_hashjoin', 'off', true),"
        " set_config('enable_mergejoin', 'off', true),"
        " set_config('enable_material', 'off', true),"
        " set_config('jit', 'off', true)",
        [str(ef_search), "off" if index else "on"],
    )


def stored_vector(*, artwork_id: int, feature_id: int) -> np.ndarray | None:
    """The artwork's vector under the feature (float32), or None when it has none."""
    with vector_cursor() as cur:
        cur.execute(
            "SELECT vector FROM search_embedding WHERE artwork_id = %s AND feature_id = %s",
            [artwork_id, feature_id],
        )
        row = cur.fetchone()
    return None if row is None else as_float32(row[0])
