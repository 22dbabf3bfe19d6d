"""Facets of a fused list: how many of its artworks have each classification, century, artist,
source and collection, counted in one SQL query over the list's artwork ids.

Each value carries the filters that select it (search/filters.py), so a page or an API client
narrows a search by adding them to its own. The counts describe the list as it stands: the
filters apply inside every search, before its top_k, so a narrowed search brings in artworks that
were below the cut before, and its list is not simply this one's subset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from django.db import connection
from pydantic import BaseModel, ConfigDict, Field

from gallery.models import Artwork
from search.config import max_page_size
from search.filters import Filters
from search.retriever import RetrievalInputs, execute_retriever

TOP_VALUES = 10  # values kept per facet, the most frequent first
FACET_NAMES = ("classification", "century", "artist", "source", "collection")

# One pass over the listed artworks; each facet groups them its own way, and a window keeps each
# facet's most frequent values. Artists are grouped by name without the parenthesised details
# ("Claude Monet (French, 1840–1926)" -> "Claude Monet", as the pages show them), and a dated
# artwork counts in every century its years overlap, as the year filter selects it.
FACETS_SQL = """
WITH hits AS MATERIALIZED (
    SELECT a.classification, a.source, a.collection_id,
           coalesce(nullif(btrim(split_part(a.artist, ' (', 1)), ''), btrim(a.artist)) AS artist,
           least(coalesce(a.begin_year, a.end_year), coalesce(a.end_year, a.begin_year))
               AS first_year,
           greatest(coalesce(a.begin_year, a.end_year), coalesce(a.end_year, a.begin_year))
               AS last_year
    FROM gallery_artwork a
    WHERE a.id = ANY(%(ids)s)
), counted AS (
    SELECT 'classification' AS facet, min(classification) AS value, count(*) AS n
    FROM hits WHERE classification <> '' GROUP BY lower(classification)
    UNION ALL
    SELECT 'artist', artist, count(*) FROM hits WHERE artist <> '' GROUP BY artist
    UNION ALL
    SELECT 'source', source, count(*) FROM hits GROUP BY source
    UNION ALL
    SELECT 'collection', c.name, count(*)
    FROM hits JOIN gallery_collection c ON c.id = hits.collection_id GROUP BY c.name
    UNION ALL
    SELECT 'century', century::text, count(*)
    FROM hits CROSS JOIN LATERAL generate_series(
        floor(first_year / 100.0)::int, floor(last_year / 100.0)::int) AS century
    WHERE first_year IS NOT NULL GROUP BY century
)
SELECT facet, value, n FROM (
    SELECT facet, value, n,
           row_number() OVER (PARTITION BY facet ORDER BY n DESC, value) AS place
    FROM counted
) ranked
WHERE place <= %(top)s
"""


def _values(description: str) -> Any:
    return Field(description=description, max_length=TOP_VALUES)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class FacetValue(_Frozen):
    value: Annotated[str, Field(description="The value (a century is its first year).")]
    label: Annotated[str, Field(description="The value as a person reads it.")]
    count: Annotated[int, Field(description="Artworks of the fused list that have it.")]
    filters: Annotated[
        dict[str, str | int],
        Field(description="The filters that select it: add them to the request's filters."),
    ]


class Facets(_Frozen):
    """Counts over the whole fused list (not only the page), the most frequent values first
    (centuries in time order), at most ten per facet."""

    counted: Annotated[int, Field(description="Artworks counted: the fused list's length.")]
    classification: Annotated[list[FacetValue], _values("Classifications (case aside).")] = []
    century: Annotated[
        list[FacetValue], _values("Centuries; a work counts in each one its years overlap.")
    ] = []
    artist: Annotated[
        list[FacetValue], _values("Artists, by name without the details in parentheses.")
    ] = []
    source: Annotated[list[FacetValue], _values("Where the records come from.")] = []
    collection: Annotated[list[FacetValue], _values("Collections, by name.")] = []


def facet_counts(*, artwork_ids: Sequence[int], top: int = TOP_VALUES) -> Facets:
    """The facets of the artworks `artwork_ids` (one query)."""
    if not artwork_ids:
        return Facets(counted=0)
    with connection.cursor() as cursor:
        cursor.execute(FACETS_SQL, {"ids": list(artwork_ids), "top": top})
        rows: list[tuple[str, str, int]] = cursor.fetchall()
    grouped: dict[str, list[FacetValue]] = {name: [] for name in FACET_NAMES}
    for facet, value, count in rows:
        grouped[facet].append(_facet_value(facet=facet, value=value, count=count))
    for values in grouped.values():
        values.sort(key=lambda item: (-item.count, item.label))
    grouped["century"].sort(key=lambda item: int(item.value))
    return Facets(counted=len(artwork_ids), **grouped)


def fused_artwork_ids(
    *,
    name: str = "default",
    inputs: RetrievalInputs,
    filters: Filters | None = None,
    top_k: int | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[int]:
    """The ids of the retriever's whole fused list, best first, read a page at a time through
    the retriever (whose cache keeps the fused list whole, so pages after the first cost one
    cache read and one query each)."""
    ids: list[int] = []
    offset, step = 0, max_page_size()
    while True:
        result = execute_retriever(
            name=name,
            inputs=inputs,
            filters=filters,
            offset=offset,
            limit=step,
            top_k=top_k,
            weights=weights,
        )
        ids += [item.artwork_id for item in result.results]
        offset += step
        if offset >= result.total or not result.results:
            return ids


def century_label(century: int) -> str:
    """0 -> '1st century', 18 -> '19th century', -1 -> '1st century BCE'."""
    if century < 0:
        return f"{ordinal(-century)} century BCE"
    return f"{ordinal(century + 1)} century"


def ordinal(number: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _facet_value(*, facet: str, value: str, count: int) -> FacetValue:
    if facet == "century":
        century = int(value)
        first = century * 100
        return FacetValue(
            value=str(first),
            label=century_label(century),
            count=count,
            filters={"year_from": first, "year_to": first + 99},
        )
    label = value
    if facet == "source":
        label = str(dict(Artwork.Source.choices).get(value, value))
    return FacetValue(value=value, label=label, count=count, filters={facet: value})
