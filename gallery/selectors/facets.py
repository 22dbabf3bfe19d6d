"""The search page's facets: each value of search/facets.py as a link that adds its filters to
the page's URL (or, when they are already there, removes them)."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from gallery.query import SearchQuery
from search.facets import FACET_NAMES, Facets, FacetValue

LABELS = {
    "classification": "Classification",
    "century": "Century",
    "artist": "Artist",
    "source": "Source",
    "collection": "Collection",
}
# The query's fields that each facet's filters set (removing a value clears them).
FIELDS = {"century": ("year_from", "year_to")}


@dataclass(frozen=True)
class FacetLink:
    label: str
    count: int
    url: str
    active: bool  # the page is already filtered by it: the link removes the filter


@dataclass(frozen=True)
class FacetGroup:
    name: str
    label: str
    links: list[FacetLink]


def facet_groups(*, facets: Facets, query: SearchQuery) -> list[FacetGroup]:
    """The facets worth showing: a facet whose one value every result shares narrows nothing,
    and is left out unless the page is filtered by it."""
    groups = []
    for name in FACET_NAMES:
        values: list[FacetValue] = getattr(facets, name)
        links = [_link(name=name, value=value, query=query) for value in values]
        if len(links) > 1 or any(link.active for link in links):
            groups.append(FacetGroup(name=name, label=LABELS[name], links=links))
    return groups


def _link(*, name: str, value: FacetValue, query: SearchQuery) -> FacetLink:
    active = all(_same(getattr(query, key), wanted) for key, wanted in value.filters.items())
    if active:
        target = query.but(**{key: _empty(key) for key in FIELDS.get(name, (name,))})
    else:
        target = query.but(**value.filters)
    return FacetLink(
        label=value.label, count=value.count, url=target.url(reverse("home")), active=active
    )


def _same(current: str | int | None, wanted: str | int) -> bool:
    if isinstance(wanted, str):
        # The text filters compare case-insensitively.
        return isinstance(current, str) and current.lower() == wanted.lower()
    return current == wanted


def _empty(field: str) -> str | None:
    return None if field in {"year_from", "year_to"} else ""
