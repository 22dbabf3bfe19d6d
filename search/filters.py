"""Metadata filters, applied inside every search (as SQL on gallery_artwork aliased `a`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce

from gallery.models import Artwork
from search.errors import RetrievalError
from search.validation import text_problem

MAX_FILTER_CHARS = 200
TEXT_FILTERS = ("classification", "artist", "source", "collection")


class BadFilter(RetrievalError):
    status_code = 422
    code = "bad_filter"


@dataclass(frozen=True)
class Filters:
    classification: str = ""  # exact, case-insensitive
    artist: str = ""  # substring, case-insensitive (the trigram index on UPPER(artist))
    year_from: int | None = None  # the artwork's [begin_year, end_year] overlaps the range
    year_to: int | None = None
    source: str = ""  # exact
    collection: str = ""  # a collection's name or id

    def normalised(self) -> Filters:
        # lower(), not casefold(): the SQL compares with lower()/UPPER(), and casefold() turns
        # "ß" into "ss", which a stored "ß" never matches.
        return Filters(
            classification=" ".join(self.classification.split()).lower(),
            artist=" ".join(self.artist.split()).lower(),
            year_from=self.year_from,
            year_to=self.year_to,
            source=self.source.strip(),
            collection=self.collection.strip(),
        )

    def validate(self) -> None:
        if (
            self.year_from is not None
            and self.year_to is not None
            and self.year_from > self.year_to
        ):
            raise BadFilter(f"year_from ({self.year_from}) is after year_to ({self.year_to}).")
        for name in TEXT_FILTERS:
            problem = text_problem(value=getattr(self, name), max_length=MAX_FILTER_CHARS)
            if problem:
                raise BadFilter(f"The {name} filter {problem}.")


def filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    """(" AND ..." conditions on alias `a`, params); empty for no filters."""
    if filters is None:
        return "", []
    f = filters.normalised()
    clauses: list[str] = []
    params: list[Any] = []
    if f.classification:
        clauses.append("lower(a.classification) = %s")
        params.append(f.classification)
    if f.artist:
        # The same form as Django's icontains, so the GIN trigram index on UPPER(artist) serves it.
        clauses.append("UPPER(a.artist::text) LIKE UPPER(%s)")
        params.append("%" + _escape_like(f.artist) + "%")
    if f.source:
        clauses.append("a.source = %s")
        params.append(f.source)
    if f.collection:
        clauses.append(
            "a.collection_id = (SELECT c.id FROM gallery_collection c"
            " WHERE c.name = %s OR c.id::text = %s ORDER BY c.name = %s DESC LIMIT 1)"
        )
        params += [f.collection] * 3
    if f.year_from is not None:
        clauses.append("coalesce(a.end_year, a.begin_year) >= %s")
        params.append(f.year_from)
    if f.year_to is not None:
        clauses.append("coalesce(a.begin_year, a.end_year) <= %s")
        params.append(f.year_to)
    return "".join(f" AND {clause}" for clause in clauses), params


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_artworks(queryset: QuerySet[Artwork], filters: Filters | None) -> QuerySet[Artwork]:
    """The same filters as `filter_sql`, on an Artwork queryset (the artworks list)."""
    if filters is None:
        return queryset
    f = filters.normalised()
    if f.classification:
        queryset = queryset.filter(classification__iexact=f.classification)
    if f.artist:
        queryset = queryset.filter(artist__icontains=f.artist)
    if f.source:
        queryset = queryset.filter(source=f.source)
    if f.collection:
        by_id = Q(collection_id=int(f.collection)) if f.collection.isdigit() else Q()
        queryset = queryset.filter(Q(collection__name=f.collection) | by_id)
    if f.year_from is not None or f.year_to is not None:
        queryset = queryset.annotate(
            _first_year=Coalesce("begin_year", "end_year"),
            _last_year=Coalesce("end_year", "begin_year"),
        )
        if f.year_from is not None:
            queryset = queryset.filter(_last_year__gte=f.year_from)
        if f.year_to is not None:
            queryset = queryset.filter(_first_year__lte=f.year_to)
    return queryset
