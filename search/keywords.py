"""Keyword search: PostgreSQL full-text search over the artwork metadata.

The document is title and artist (weight A), medium (C) and description (D) in the English
configuration; a GIN expression index on exactly this expression (migration
search/0002_retrievers_fts_cache) serves the match. Queries use `websearch_to_tsquery`, so
people may write "quoted phrases", `or` and `-excluded` words; anything they type is valid.
Rows are ranked by `ts_rank_cd` (cover density, weighted), then by id.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from search.filters import Filters, filter_sql

DOCUMENT_SQL = (
    "(setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(artist, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(medium, '')), 'C')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'D'))"
)


def keyword_sql(*, filters: Filters | None) -> tuple[str, list[Any]]:
    """The query, with params for (query text, *filters, top_k)."""
    where, filter_params = filter_sql(filters)
    sql = f"""
        SELECT a.id, ts_rank_cd({DOCUMENT_SQL}, q) AS rank
        FROM gallery_artwork a, websearch_to_tsquery('english'::regconfig, %s) q
        WHERE {DOCUMENT_SQL} @@ q{where}
        ORDER BY rank DESC, a.id
        LIMIT %s
    """
    return sql, filter_params


def keyword_search(
    *, text: str, top_k: int, filters: Filters | None = None
) -> list[tuple[int, float]]:
    """[(artwork id, rank)], best first, at most top_k rows; [] when nothing matches."""
    sql, filter_params = keyword_sql(filters=filters)
    with connection.cursor() as cur:
        cur.execute(sql, [text, *filter_params, top_k])
        return [(int(artwork_id), float(rank)) for artwork_id, rank in cur.fetchall()]
